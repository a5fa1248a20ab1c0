"""The HTML a person sees at the simulated IdP: the launch page, the sign-in page, error pages.

Every page is self-contained (no scripts, no external resources) and every interactive element
carries an ``id`` and a ``data-testid``, because browser tests drive these pages: the ids are the
contract with them, the wording is not. Every interpolated value is HTML-escaped; logins and app
names come from files an operator supplies and RelayState from whoever sent the browser here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from idp_sim.directory import DirectoryUser

VENDOR_LABELS = {"okta": "Okta", "jumpcloud": "JumpCloud"}

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:44rem;padding:0 1rem}"
    "ul{list-style:none;padding:0}li{margin:.4rem 0}"
    ".tile{display:inline-block;border:1px solid #888;border-radius:6px;padding:.6rem 1rem}"
    ".error{color:#a00;font-weight:bold}.inactive{color:#777}"
)


@dataclass(frozen=True)
class AppTile:
    """One hosted application as the launch page lists it."""

    name: str
    vendor: str
    sp_entity_id: str
    launch_url: str
    sso_url: str
    metadata_url: str


def vendor_label(vendor: str) -> str:
    """The product name shown to people: ``Okta`` rather than ``okta``."""
    return VENDOR_LABELS.get(vendor, vendor)


def _testid(value: str) -> str:
    """``id`` and ``data-testid`` with the same value, escaped for an attribute."""
    safe = escape(value)
    return f'id="{safe}" data-testid="{safe}"'


def _page(title: str, page_id: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><main {_testid(page_id)}>\n<h1>{escape(title)}</h1>\n{body}\n"
        "</main></body></html>\n"
    )


def launch_page(tiles: Sequence[AppTile], sessions: dict[str, str]) -> str:
    """The IdP dashboard: one tile per app (IdP-initiated sign-in) and who is signed in where.

    ``sessions`` maps vendor to the login signed in at that simulated IdP.
    """
    items = "\n".join(
        f'<li><a class="tile" href="{escape(tile.launch_url)}" {_testid("app-" + tile.name)}>'
        f"{escape(tile.name)}</a> <small>{escape(vendor_label(tile.vendor))} &rarr; "
        f"{escape(tile.sp_entity_id)} &middot; "
        f'<a href="{escape(tile.metadata_url)}" {_testid("metadata-" + tile.name)}>metadata</a>'
        "</small></li>"
        for tile in tiles
    )
    if sessions:
        status = (
            "".join(
                f"<p {_testid('session-' + vendor)}>Signed in to {escape(vendor_label(vendor))} as "
                f"<strong>{escape(login)}</strong></p>"
                for vendor, login in sorted(sessions.items())
            )
            + f'<p><a href="/signout" {_testid("signout")}>Sign out</a></p>'
        )
    else:
        status = f"<p {_testid('session-none')}>Not signed in.</p>"
    return _page("Simulated IdP: applications", "page-launch", f"{status}\n<ul>\n{items}\n</ul>")


def signin_page(
    *,
    vendor: str,
    app_name: str,
    transaction: str,
    users: Sequence[DirectoryUser],
    unlisted: int = 0,
    error: str | None = None,
) -> str:
    """Pick a simulated person or type a login; there are no passwords to type.

    Inactive people are listed (marked) so a test can try one and see the refusal; ``unlisted``
    people beyond the list can still sign in by typing their login.
    """
    hidden = f'<input type="hidden" name="txn" value="{escape(transaction)}">'
    choices = "\n".join(_user_choice(user) for user in users)
    problem = (
        f'<p class="error" role="alert" {_testid("signin-error")}>{escape(error)}</p>'
        if error
        else ""
    )
    body = (
        f"<p>Signing in to <strong {_testid('signin-app')}>{escape(app_name)}</strong>.</p>\n"
        f"{problem}\n"
        f'<form method="post" action="/signin" {_testid("login-form")}>{hidden}\n'
        '<label for="login-input">Login</label> '
        '<input type="text" name="login" id="login-input" data-testid="login-input" '
        'autocomplete="username" required autofocus> '
        f'<button type="submit" {_testid("login-submit")}>Sign in</button></form>\n'
        f'<h2>Or pick a person</h2>\n<form method="post" action="/signin" '
        f"{_testid('user-list')}>{hidden}\n<ul>\n{choices}\n</ul></form>"
    )
    if unlisted:
        body += f"\n<p {_testid('unlisted')}>{unlisted} more: type their login above.</p>"
    return _page(f"Sign in to {vendor_label(vendor)} (simulated)", "page-signin", body)


def _user_choice(user: DirectoryUser) -> str:
    state = "" if user.active else " (deactivated)"
    css = "" if user.active else ' class="inactive"'
    return (
        f'<li><button type="submit" name="login" value="{escape(user.login)}" '
        f"{_testid('user-' + user.login)}>{escape(user.display_name)}</button> "
        f"<small{css}>{escape(user.login)}{state}</small></li>"
    )


def error_page(title: str, message: str) -> str:
    """What the IdP shows instead of posting anything to the service provider."""
    body = (
        f'<p class="error" role="alert" {_testid("error-message")}>{escape(message)}</p>\n'
        f'<p><a href="/" {_testid("home")}>Back to the applications</a></p>'
    )
    return _page(title, "page-error", body)
