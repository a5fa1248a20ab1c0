"""The HTML a browser sees during single sign-on: small, self-contained, escaped everywhere.

Failure pages are deliberately generic: why a sign-in failed can help an attacker tune a
forgery, so the reason goes to the tenant's SSO log. Each page still says what happened as far
as the person can act on it, and the way out from where they came (a wrong password: the form
again; a refused IdP answer: start again; the service away: try again in a moment).
Every page carries the tenant's branding (name, logo, accent colour) in its header.
Elements carry stable ids, which the browser tests drive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from scim_server.core.directory import UserRecord
from scim_server.core.sso.service import TestReport
from scim_server.core.sso.sessions import Session
from scim_server.core.sso.settings import Branding

DEFAULT_ACCENT = "#2b59c3"
DARK_TEXT = "#1d2330"
STYLE = (
    f"body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
    f"color:{DARK_TEXT}}}h1{{font-size:1.4rem}}table{{border-collapse:collapse}}"
    "td,th{border:1px solid #ccd;padding:.3rem .6rem;text-align:left}"
    "button,.button{display:inline-block;font:inherit;font-size:1rem;padding:.5rem 1.2rem;"
    "border:1px solid var(--accent);border-radius:.3rem;background:var(--accent);"
    "color:var(--on-accent);text-decoration:none;cursor:pointer}"
    "a{color:var(--link)}a.button{color:var(--on-accent)}"
    "input{font:inherit;padding:.3rem;width:16rem}label{display:block}"
    ".alt{margin-top:2rem;padding-top:1rem;border-top:1px solid #ccd}"
    "#brand{display:flex;align-items:center;gap:.8rem;padding-bottom:.8rem;"
    "border-bottom:3px solid var(--accent);font-size:1.2rem;font-weight:600}"
    "#brand-logo{max-height:3rem;max-width:12rem}"
)
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    f'<rect width="32" height="32" rx="6" fill="{DEFAULT_ACCENT}"/>'
    '<path d="M11 15v-3a5 5 0 0 1 10 0v3" fill="none" stroke="#fff" stroke-width="2.5"/>'
    '<rect x="8" y="15" width="16" height="11" rx="2" fill="#fff"/></svg>'
)
"""The icon of every page (a padlock on the house colour), served at /favicon.svg and, for
browsers that ask without being told, /favicon.ico."""
FAVICON_PATH = "/favicon.svg"
FORM_TOKEN = "form_token"
"""The hidden field of a password form that carries its form token (login CSRF)."""


def _form_token_input(form_token: str) -> str:
    return f'<input type="hidden" name="{FORM_TOKEN}" value="{escape(form_token)}">'


@dataclass(frozen=True)
class Brand:
    """How one tenant's pages look: its branding with the defaults filled in."""

    name: str
    logo_url: str | None = None
    accent: str = DEFAULT_ACCENT

    @classmethod
    def of(cls, tenant: str, branding: Branding | None) -> Brand:
        """The tenant's brand; a tenant that does not exist gets a neutral one, not its name."""
        if branding is None:
            return cls("Single sign-on")
        return cls(
            branding.display_name or tenant,
            branding.logo_url,
            branding.accent_color or DEFAULT_ACCENT,
        )

    @property
    def on_accent(self) -> str:
        """White or dark text, whichever reads better on the accent colour (WCAG contrast)."""
        accent = _luminance(self.accent)
        white = 1.05 / (accent + 0.05)
        dark = (accent + 0.05) / (_luminance(DARK_TEXT) + 0.05)
        return "#ffffff" if white >= dark else DARK_TEXT

    @property
    def link(self) -> str:
        """Links in the accent colour when it reads on the white page, else in the text's."""
        return self.accent if self.on_accent == "#ffffff" else DARK_TEXT


def _luminance(color: str) -> float:
    """The relative luminance of a ``#rrggbb`` colour (WCAG 2.1)."""
    channels = [int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _page(brand: Brand, title: str, body: str) -> str:
    """A whole page: the tenant's header (logo, name, accent colour) above ``body``."""
    logo = (
        f'<img id="brand-logo" src="{escape(brand.logo_url)}" alt="" referrerpolicy="no-referrer">'
        if brand.logo_url
        else ""
    )
    colours = f":root{{--accent:{brand.accent};--on-accent:{brand.on_accent};--link:{brand.link}}}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width">'
        f"<title>{escape(title)}</title>"
        f'<link rel="icon" href="{FAVICON_PATH}" type="image/svg+xml">'
        f"<style>{STYLE}{colours}</style></head>"
        f'<body><header id="brand">{logo}<span id="brand-name">{escape(brand.name)}</span>'
        f"</header><main>{body}</main></body></html>"
    )


def sign_in_page(
    brand: Brand,
    login_url: str,
    password_url: str,
    form_token: str,
    *,
    sso: bool,
    passwords: bool,
    guests_only: bool = False,
) -> str:
    """The tenant's landing page for someone not signed in: single sign-on, and the password
    form where passwords are accepted (only from guests, and it says so, when the tenant
    enforces single sign-on), carrying ``form_token``."""
    parts = [f'<h1>Sign in to <span id="tenant">{escape(brand.name)}</span></h1>']
    if sso:
        parts.append(
            f'<p><a class="button" id="sign-in-sso" href="{escape(login_url)}">'
            f"Sign in with single sign-on</a></p>"
        )
    if passwords:
        separated = ' class="alt"' if sso else ""
        guests = (
            '<p id="guests-only">Guests of this organisation sign in with their password.</p>'
            if guests_only
            else ""
        )
        parts.append(
            f'<form method="post" action="{escape(password_url)}" id="password-form"'
            f"{separated}>{guests}{_form_token_input(form_token)}"
            '<p><label>User name <input name="username" id="username" '
            'autocomplete="username" required></label></p>'
            '<p><label>Password <input name="password" id="password" type="password" '
            'autocomplete="current-password" required></label></p>'
            '<p><button id="sign-in-password" type="submit">Sign in</button></p></form>'
        )
    if not (sso or passwords):
        parts.append('<p id="sso-disabled">Sign-in is not available for this organisation.</p>')
    return _page(brand, f"Sign in to {brand.name}", "".join(parts))


def reset_page(
    brand: Brand, action: str, min_length: int, script_nonce: str, form_token: str
) -> str:
    """The page a reset link opens: a form to choose a password, carrying ``form_token``. The
    link's token is in its fragment, which no request carries: the script moves it into the
    form (which posts it back, so no other site can post this form for the person) and off the
    address bar."""
    return _page(
        brand,
        "Set a new password",
        (
            "<h1>Set a new password</h1>"
            f'<form method="post" action="{escape(action)}" id="reset-form">'
            '<input type="hidden" name="token" id="reset-token">'
            f"{_form_token_input(form_token)}"
            f'<p><label>New password <input name="password" id="new-password" type="password" '
            f'autocomplete="new-password" minlength="{min_length}" required></label></p>'
            f'<p><label>Repeat it <input name="confirm" id="confirm-password" type="password" '
            f'autocomplete="new-password" minlength="{min_length}" required></label></p>'
            '<p><button id="set-password" type="submit">Set password</button></p></form>'
            "<noscript><p>This page needs JavaScript to read its link.</p></noscript>"
            f'<script nonce="{escape(script_nonce)}">'
            'document.getElementById("reset-token").value=location.hash.slice(1);'
            'history.replaceState(null,"",location.pathname);'
            'const p=document.getElementById("new-password"),'
            'c=document.getElementById("confirm-password");'
            'c.addEventListener("input",()=>c.setCustomValidity('
            'c.value===p.value?"":"The two passwords differ"))</script>'
        ),
    )


def password_set_page(brand: Brand, user_name: str, home_url: str) -> str:
    return _page(
        brand,
        "Password set",
        (
            '<h1 id="password-set">Your password is set</h1>'
            f'<p>The password of <strong id="password-set-user">{escape(user_name)}</strong> '
            "is set, and any session it had has ended.</p>"
            f'<p><a class="button" id="sign-in-again" href="{escape(home_url)}">Sign in</a></p>'
        ),
    )


def signed_in_page(brand: Brand, session: Session, logout_url: str, form_token: str) -> str:
    """Who is signed in, with the sign-out form, carrying ``form_token``: signing a person out
    is a form another site must not post either."""
    return _page(
        brand,
        f"Signed in to {brand.name}",
        (
            f"<h1>Signed in</h1>"
            f'<p>You are signed in as <strong id="signed-in-user">{escape(session.user_name)}'
            f'</strong> to <strong id="signed-in-tenant">{escape(brand.name)}</strong>.</p>'
            f'<p>Identity provider: <span id="signed-in-idp">{escape(session.issuer)}</span></p>'
            f'<form method="post" action="{escape(logout_url)}">{_form_token_input(form_token)}'
            f'<button id="sign-out" type="submit">Sign out</button></form>'
        ),
    )


def signed_out_page(brand: Brand, home_url: str) -> str:
    """Where sign-out lands (by a redirect, so reloading it posts nothing again)."""
    return _page(
        brand,
        "Signed out",
        (
            '<h1 id="signed-out">You are signed out</h1>'
            f"<p>You have signed out of {escape(brand.name)}.</p>"
            f'<p><a id="sign-in-again" href="{escape(home_url)}">Sign in again</a></p>'
        ),
    )


@dataclass(frozen=True)
class Failure:
    """A failure page's words: what happened, and the way out from where the person came."""

    heading: str
    happened: str
    way_out: str
    link: str
    """The text of the link to the tenant's sign-in page."""


PASSWORD_REFUSED = Failure(
    "Sign-in failed",
    "The user name or password is not right, or this account cannot sign in with a password.",
    "Check them and try again. If it keeps failing, ask your administrator.",
    "Try again",
)
IDP_REFUSED = Failure(
    "Sign-in failed",
    "The answer from your identity provider could not be accepted, so you are not signed in.",
    "Start again from the sign-in page, or from your identity provider's list of apps. "
    "If it keeps failing, ask your administrator.",
    "Back to the sign-in page",
)
SSO_UNAVAILABLE = Failure(
    "Single sign-on is not available",
    "Single sign-on could not start: it is not set up for this organisation, or this "
    "sign-in link is no longer valid.",
    "Ask your administrator.",
    "Back to the sign-in page",
)
NO_SUCH_PAGE = Failure(
    "Page not found",
    "There is no such page here.",
    "Check the address, or go to the sign-in page.",
    "Go to the sign-in page",
)
UNAVAILABLE = Failure(
    "Temporarily unavailable",
    "The sign-in service cannot reach its database just now. Nothing was changed.",
    "Try again in a moment.",
    "Try again",
)
RESET_REFUSED = Failure(
    "This link cannot be used",
    "This password reset link has expired, was already used, or is not valid. No password was set.",
    "Ask your administrator for a new link.",
    "Go to the sign-in page",
)
PASSWORD_NOT_SET = Failure(
    "Password not set",
    "The two passwords differ, or the password is too short or too long.",
    "Open the link again and choose another: it has not been used.",
    "Go to the sign-in page",
)
FORM_REFUSED = Failure(
    "This form cannot be accepted",
    "The form was sent from another page, or was left open too long. Nothing was done.",
    "Open the page again and send the form from there.",
    "Go to the sign-in page",
)
BROKEN = Failure(
    "Something went wrong",
    "The sign-in service could not complete this request.",
    "Go back to the sign-in page and try again. If it keeps failing, ask your administrator.",
    "Back to the sign-in page",
)


def failure_page(brand: Brand, failure: Failure, home_url: str) -> str:
    return _page(
        brand,
        failure.heading,
        (
            f'<h1 id="sso-error">{escape(failure.heading)}</h1>'
            f'<p id="what-happened">{escape(failure.happened)}</p>'
            f'<p id="way-out">{escape(failure.way_out)}</p>'
            f'<p><a id="back" href="{escape(home_url)}">{escape(failure.link)}</a></p>'
        ),
    )


def repost_page(brand: Brand, acs_path: str, fields: Mapping[str, str], script_nonce: str) -> str:
    """The IdP's POST, posted again from this site so that the browser's SameSite=Lax binding
    cookie comes along (see ``service.RepostNeeded``); a script submits it, or the person."""
    inputs = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )
    return _page(
        brand,
        "Signing in",
        (
            f'<form method="post" action="{escape(acs_path)}" id="sso-repost">{inputs}'
            '<p>Signing you in&hellip;</p><noscript><button type="submit">Continue</button>'
            f'</noscript></form><script nonce="{escape(script_nonce)}">'
            'document.getElementById("sso-repost").submit()</script>'
        ),
    )


def seat_limit_page(brand: Brand, home_url: str) -> str:
    return _page(
        brand,
        "No seat available",
        (
            '<h1 id="seat-limit">No seat is available</h1>'
            f"<p>Every seat of <strong>{escape(brand.name)}</strong> is in use, so your account "
            "cannot be activated. Ask your administrator to add seats or free one.</p>"
            f'<p><a id="back" href="{escape(home_url)}">Back to the sign-in page</a></p>'
        ),
    )


def test_report_page(brand: Brand, report: TestReport) -> str:
    """The admin's test sign-in: what the IdP asserted and whom it matches; no session made."""
    profile = report.profile
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(', '.join(values))}</td></tr>"
        for name, values in sorted(report.identity.attributes.items())
    )
    return _page(
        brand,
        "SSO test result",
        (
            '<h1 id="test-result">Single sign-on test succeeded</h1>'
            "<p>The response was verified. No session was opened and no user was changed.</p>"
            "<table>"
            f'<tr><th>Issuer</th><td id="test-issuer">{escape(report.identity.issuer)}</td></tr>'
            f"<tr><th>{'sub' if report.identity.protocol == 'oidc' else 'NameID'}</th>"
            f'<td id="test-name-id">{escape(report.identity.subject_id)}</td></tr>'
            f'<tr><th>Subject</th><td id="test-subject">{escape(profile.subject)}</td></tr>'
            f'<tr><th>Email</th><td id="test-email">{escape(profile.email or "")}</td></tr>'
            f'<tr><th>Groups asserted</th><td id="test-groups">'
            f"{escape(', '.join(profile.groups))}</td></tr>"
            f'<tr><th>Groups a sign-in would assign</th><td id="test-assigned-groups">'
            f"{escape(', '.join(report.assigned_groups) or '(none: see allowed_groups)')}</td></tr>"
            "</table>"
            f'<h2>Match</h2><p id="test-match">{escape(_match(report.user, report.jit))}</p>'
            f'<h2>Attributes</h2><table id="test-attributes">{rows}</table>'
        ),
    )


def _match(user: UserRecord | None, jit: bool) -> str:
    if user is None:
        return (
            "No user matches; a sign-in would create one (JIT)."
            if jit
            else "No user matches, and JIT is off: a sign-in would be refused."
        )
    state = "active" if user.active else "deactivated: a sign-in would be refused"
    return f"Matches user {user.user_name} ({state})."


SIGNIN_BRAND = Brand("Sign in to your instances")
"""The look of the server-level cross-instance pages, which belong to no one tenant."""
SIGNIN_REFUSED = Failure(
    "Sign-in failed",
    "You could not be signed in with these details, or this choice is not available to you.",
    "Start again from the sign-in page. If it keeps failing, ask your administrator.",
    "Back to the sign-in page",
)


def root_sign_in_page(brand: Brand, action: str, form_token: str) -> str:
    """The server-level sign-in: the root email, and a password unless single sign-on is used
    (the primary tenant's own sign-in then takes over); the form carries ``form_token``."""
    return _page(
        brand,
        "Sign in",
        (
            "<h1>Sign in</h1>"
            f'<form method="post" action="{escape(action)}" id="root-form">'
            f"{_form_token_input(form_token)}"
            '<p><label>Email <input name="email" id="email" type="email" '
            'autocomplete="username" required></label></p>'
            '<p><label>Password (leave it empty to use single sign-on) <input name="password" '
            'id="password" type="password" autocomplete="current-password"></label></p>'
            '<p><button id="continue" type="submit">Continue</button></p></form>'
        ),
    )


def instance_selection_page(
    brand: Brand, root: str, logins: Mapping[str, str], action: str, state: str
) -> str:
    """The instances where ``root`` has an administrator login (tenant -> that login), each a
    button posting its choice with ``state``, which binds the form to this browser."""
    choices = "".join(
        f'<li><form method="post" action="{escape(action)}">'
        f'<input type="hidden" name="tenant" value="{escape(tenant)}">'
        f'<input type="hidden" name="state" value="{escape(state)}">'
        f'<button type="submit" id="instance-{escape(tenant)}">{escape(tenant)}</button> '
        f'as <span class="login">{escape(login)}</span></form></li>'
        for tenant, login in logins.items()
    )
    return _page(
        brand,
        "Choose an instance",
        (
            '<h1 id="choose-instance">Choose an instance</h1>'
            f'<p>Signed in as <strong id="root-login">{escape(root)}</strong>.</p>'
            f'<ul id="instances">{choices}</ul>'
        ),
    )


def continue_page(brand: Brand, url: str) -> str:
    """On to a same-site URL that leads to the identity provider, by a navigation rather than
    the answer to a form: a form's ``form-action`` would cover the redirects to the IdP, whose
    origin the page posting the form could not name. A refresh goes on at once; the link is
    there for a browser that does not follow it."""
    return _page(
        brand,
        "Continue to single sign-on",
        (
            f'<meta http-equiv="refresh" content="0;url={escape(url)}">'
            "<h1>Continue to single sign-on</h1>"
            f'<p><a class="button" id="continue-sso" href="{escape(url)}">Continue</a></p>'
        ),
    )
