"""The HTML a browser sees during single sign-on: small, self-contained, escaped everywhere.

Failure pages are deliberately generic: why a sign-in failed can help an attacker tune a
forgery, so the reason goes to the tenant's SSO log and the page only says who to ask.
Elements carry stable ids, which the browser tests drive.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from scim_server.core.directory import UserRecord
from scim_server.core.sso.service import TestReport
from scim_server.core.sso.sessions import Session

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;"
    "color:#1d2330}h1{font-size:1.4rem}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccd;padding:.3rem .6rem;text-align:left}"
    "button,.button{display:inline-block;font:inherit;font-size:1rem;padding:.5rem 1.2rem;"
    "border:1px solid #2b59c3;border-radius:.3rem;background:#2b59c3;color:#fff;"
    "text-decoration:none;cursor:pointer}"
    "input{font:inherit;padding:.3rem;width:16rem}label{display:block}"
    ".alt{margin-top:2rem;padding-top:1rem;border-top:1px solid #ccd}"
)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def sign_in_page(
    tenant: str, login_url: str, password_url: str, *, sso: bool, passwords: bool
) -> str:
    """The tenant's landing page for someone not signed in: single sign-on, and the password
    form unless the tenant enforces single sign-on."""
    parts = [f'<h1>Sign in to <span id="tenant">{escape(tenant)}</span></h1>']
    if sso:
        parts.append(
            f'<p><a class="button" id="sign-in-sso" href="{escape(login_url)}">'
            f"Sign in with single sign-on</a></p>"
        )
    if passwords:
        separated = ' class="alt"' if sso else ""
        parts.append(
            f'<form method="post" action="{escape(password_url)}" id="password-form"'
            f"{separated}>"
            '<p><label>User name <input name="username" id="username" '
            'autocomplete="username" required></label></p>'
            '<p><label>Password <input name="password" id="password" type="password" '
            'autocomplete="current-password" required></label></p>'
            '<p><button id="sign-in-password" type="submit">Sign in</button></p></form>'
        )
    if not (sso or passwords):
        parts.append('<p id="sso-disabled">Sign-in is not available for this organisation.</p>')
    return _page(f"Sign in to {tenant}", "".join(parts))


def signed_in_page(session: Session, logout_url: str) -> str:
    return _page(
        f"Signed in to {session.tenant}",
        (
            f"<h1>Signed in</h1>"
            f'<p>You are signed in as <strong id="signed-in-user">{escape(session.user_name)}'
            f'</strong> to <strong id="signed-in-tenant">{escape(session.tenant)}</strong>.</p>'
            f'<p>Identity provider: <span id="signed-in-idp">{escape(session.issuer)}</span></p>'
            f'<form method="post" action="{escape(logout_url)}">'
            f'<button id="sign-out" type="submit">Sign out</button></form>'
        ),
    )


def signed_out_page(tenant: str, home_url: str) -> str:
    return _page(
        "Signed out",
        (
            f'<h1 id="signed-out">You have signed out of {escape(tenant)}</h1>'
            f'<p><a href="{escape(home_url)}">Sign in again</a></p>'
        ),
    )


def failure_page(home_url: str) -> str:
    return _page(
        "Sign-in failed",
        (
            '<h1 id="sso-error">Sign-in failed</h1>'
            "<p>We could not sign you in. Try again from your identity provider; if it keeps "
            "failing, contact your administrator.</p>"
            f'<p><a id="back" href="{escape(home_url)}">Back to the sign-in page</a></p>'
        ),
    )


def repost_page(acs_path: str, fields: Mapping[str, str], script_nonce: str) -> str:
    """The IdP's POST, posted again from this site so that the browser's SameSite=Lax binding
    cookie comes along (see ``service.RepostNeeded``); a script submits it, or the person."""
    inputs = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in fields.items()
    )
    return _page(
        "Signing in",
        (
            f'<form method="post" action="{escape(acs_path)}" id="sso-repost">{inputs}'
            '<p>Signing you in&hellip;</p><noscript><button type="submit">Continue</button>'
            f'</noscript></form><script nonce="{escape(script_nonce)}">'
            'document.getElementById("sso-repost").submit()</script>'
        ),
    )


def seat_limit_page(tenant: str, home_url: str) -> str:
    return _page(
        "No seat available",
        (
            '<h1 id="seat-limit">No seat is available</h1>'
            f"<p>Every seat of <strong>{escape(tenant)}</strong> is in use, so your account "
            "cannot be activated. Ask your administrator to add seats or free one.</p>"
            f'<p><a id="back" href="{escape(home_url)}">Back to the sign-in page</a></p>'
        ),
    )


def test_report_page(report: TestReport) -> str:
    """The admin's test sign-in: what the IdP asserted and whom it matches; no session made."""
    profile = report.profile
    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(', '.join(values))}</td></tr>"
        for name, values in sorted(report.assertion.attributes.items())
    )
    return _page(
        "SSO test result",
        (
            '<h1 id="test-result">Single sign-on test succeeded</h1>'
            "<p>The response was verified. No session was opened and no user was changed.</p>"
            "<table>"
            f'<tr><th>Issuer</th><td id="test-issuer">{escape(report.assertion.issuer)}</td></tr>'
            f'<tr><th>NameID</th><td id="test-name-id">{escape(report.assertion.name_id)}</td></tr>'
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
