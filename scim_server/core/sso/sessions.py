"""What a browser carries (the session cookie, the admin's test ticket, the binding of an
AuthnRequest to the browser that started it, and the form token of a password form), and the
sessions the server keeps.

The session cookie and the ticket are short JWTs (pyjwt, HS256) under a secret only the server
holds, each with its own audience so one can never be presented as the other, and each bound to
one tenant. The session cookie carries nothing but a random session key: the session itself
(who, through which IdP, until when) is stored server-side under the key's digest
(``storage/sessions.py``), so signing out or an admin's revocation ends it everywhere at once.
Every use reads the session together with its user's standing, in one command: a user deleted
or deactivated since has no session, and one deactivated after the session began gets none of
its old sessions back when reactivated. Nothing is cached in a process, so every worker and
every server on the database answers the same. The binding is a random key in a cookie; the
request remembers only its digest.

The password forms (sign-in, ``/signin``, the reset link's) carry a form token against login
CSRF: a short JWT, signed like the others under its own audience, naming the path the form
posts to and the digest of the browser's form key, a random key in a cookie set with the page.
Another site can make a browser post a form, but not read the key that browser holds: the
token it could fetch for itself names its own key, not the victim's.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from scim_server.core.sso.settings import SsoSettings
from scim_server.storage.sessions import NewSession, SessionRepository, StoredSession
from scim_server.wire import header_bytes

ALGORITHM = "HS256"
SESSION_AUDIENCE = "sso-session"
TEST_AUDIENCE = "sso-test"
TEST_TICKET_SECONDS = 600
FORM_AUDIENCE = "sso-form"
FORM_TOKEN_SECONDS = 3600
"""A form left open over an hour must be opened again before it signs anyone in."""
COOKIE_PREFIX = "scim_sso_"
BINDING_COOKIE_PREFIX = "scim_saml_"
FORM_COOKIE = "scim_form"
"""The browser's form key, which the password forms' tokens are bound to."""
BINDING_KEY_BYTES = 32
SESSION_KEY_BYTES = 32
PASSWORD_ISSUER = "password"
"""The session's ``issuer`` for a password sign-in: no identity provider vouched for it."""
BINDING_KEY = re.compile(r"[A-Za-z0-9_-]{43}")
"""What ``secrets.token_urlsafe(BINDING_KEY_BYTES)`` makes: any other cookie value is replaced."""


@dataclass(frozen=True)
class Session:
    """Who is signed in to which tenant, and through which IdP; ``id`` is the stored
    session's, never the key in the cookie."""

    id: str
    tenant: str
    user_id: str
    user_name: str
    """The user's current name (a rename shows at once)."""
    issuer: str
    created: datetime
    expires: datetime


def cookie_name(tenant: str) -> str:
    """One cookie per tenant, so signing in to one tenant never signs anyone out of another."""
    return f"{COOKIE_PREFIX}{tenant}"


def binding_cookie_name(tenant: str) -> str:
    """The cookie binding a tenant's AuthnRequests to the browser that started them."""
    return f"{BINDING_COOKIE_PREFIX}{tenant}"


def browser_key(cookie: str | None) -> str:
    """The browser's binding key: the one its cookie already holds (so sign-ins started in two
    tabs both complete), else a new random one."""
    if cookie and BINDING_KEY.fullmatch(cookie):
        return cookie
    return secrets.token_urlsafe(BINDING_KEY_BYTES)


def browser_digest(key: str) -> str:
    """What the server keeps of a key a browser holds (a binding key, a session key): enough to
    recognise the browser, not to be it."""
    return hashlib.sha256(key.encode()).hexdigest()


def same_browser(digest: str | None, cookie: str | None) -> bool:
    """Whether ``cookie`` is the key whose digest a request was bound to."""
    if not digest or not cookie:
        return False
    return hmac.compare_digest(digest, browser_digest(cookie))


class SessionCodec:
    """Signs and reads the session cookie and the admin's test ticket."""

    def __init__(self, secret: str) -> None:
        self._secret = secret

    def encode_session(
        self, tenant: str, key: str, ttl_seconds: int, now: datetime | None = None
    ) -> str:
        """The cookie of the session stored under ``browser_digest(key)``."""
        now = now or datetime.now(UTC)
        claims = {
            "aud": SESSION_AUDIENCE,
            "tenant": tenant,
            "sid": key,
            "iat": now,
            "exp": now + timedelta(seconds=ttl_seconds),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def session_key(self, token: str | None, tenant: str) -> str | None:
        """The session key a cookie carries, or None when it is absent, forged, expired or
        foreign. Whether that session still stands is the store's to say."""
        claims = self._claims(token, SESSION_AUDIENCE)
        if claims is None or claims.get("tenant") != tenant:
            return None
        key = claims.get("sid")
        return key if isinstance(key, str) else None

    def test_ticket(self, tenant: str, now: datetime | None = None) -> str:
        """A ticket that lets one browser start a test sign-in for ``tenant`` for ten minutes."""
        now = now or datetime.now(UTC)
        claims = {
            "aud": TEST_AUDIENCE,
            "tenant": tenant,
            "iat": now,
            "exp": now + timedelta(seconds=TEST_TICKET_SECONDS),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def valid_test_ticket(self, token: str | None, tenant: str) -> bool:
        claims = self._claims(token, TEST_AUDIENCE)
        return claims is not None and claims.get("tenant") == tenant

    def form_token(self, form_key: str, action: str, now: datetime | None = None) -> str:
        """The token the form posting to ``action`` carries in the browser whose form key is
        ``form_key``: valid there, for that form, for ``FORM_TOKEN_SECONDS``."""
        now = now or datetime.now(UTC)
        claims = {
            "aud": FORM_AUDIENCE,
            "form": action,
            "browser": browser_digest(form_key),
            "iat": now,
            "exp": now + timedelta(seconds=FORM_TOKEN_SECONDS),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def valid_form_token(self, token: str | None, form_key: str | None, action: str) -> bool:
        """Whether ``token`` was made for the form posting to ``action`` in the browser whose
        cookie holds ``form_key``, and has not expired."""
        claims = self._claims(token, FORM_AUDIENCE)
        if claims is None or claims.get("form") != action:
            return False
        browser = claims.get("browser")
        return isinstance(browser, str) and same_browser(browser, form_key)

    def _claims(self, token: str | None, audience: str) -> dict[str, Any] | None:
        if not token:
            return None
        try:
            return jwt.decode(
                header_bytes(token),
                self._secret,
                algorithms=[ALGORITHM],
                audience=audience,
                options={"require": ["exp", "aud"]},
            )
        except jwt.PyJWTError:
            return None


def standing_session(stored: StoredSession, tenant: str, settings: SsoSettings) -> Session | None:
    """The session ``stored`` proves, if its user stands (``_user_stands``); for a password
    session opened since SSO is enforced, if its user is still a guest (nobody else could open
    it now, so nobody else keeps it; one opened before enforcement began stands until it
    expires); and, for one opened on a session of another tenant (cross-instance sign-in),
    while that one is still there and its user stands too: a sign-out there, a deactivation
    or a password set since there, ends it as it ends that one."""
    user = stored.user
    if user is None or not _user_stands(stored):
        return None
    if stored.parent is not None and (
        stored.opened_on is None or not _user_stands(stored.opened_on)
    ):
        return None
    since = settings.enforced_since
    if (
        stored.issuer == PASSWORD_ISSUER
        and settings.enforced
        and since is not None
        and stored.created >= since
        and not settings.is_guest(user.user_type)
    ):
        return None
    return Session(
        id=stored.id,
        tenant=tenant,
        user_id=stored.user_id,
        user_name=user.user_name,
        issuer=stored.issuer,
        created=stored.created,
        expires=stored.expires,
    )


def _user_stands(stored: StoredSession) -> bool:
    """Whether the session's user still exists, is active, and was not deactivated since the
    session began (a reactivated user does not get it back); and, if it was opened with a
    password, whether that password is still the user's (a password set since, by a reset
    link or by SCIM, ends it, even one set while the sign-in was checking the old one)."""
    user = stored.user
    if user is None or not user.active:
        return False
    if user.deactivated is not None and user.deactivated >= stored.created:
        return False
    return stored.credential is None or stored.credential == user.credential


class Sessions:
    """The server-side sessions of every tenant: opened at sign-in, checked on every use,
    ended by sign-out or by an admin; the tenant comes with each call."""

    def __init__(self, codec: SessionCodec, repository: SessionRepository) -> None:
        self.codec = codec
        self._repository = repository

    async def open(
        self,
        tenant: str,
        user_id: str,
        issuer: str,
        ttl_seconds: int,
        now: datetime,
        credential: str | None = None,
        parent: str | None = None,
    ) -> str:
        """Store a new session for the user and answer its cookie.

        ``now`` is when the sign-in began, before its user was read: a deactivation that
        lands meanwhile is not older than the session, so it voids it. ``credential`` is that
        of the password the sign-in checked, read with the user: a password set meanwhile is
        another, so it voids the session too. ``parent``: the id of the session of another
        tenant that this sign-in stands on (cross-instance sign-in), which it ends with.
        """
        key = secrets.token_urlsafe(SESSION_KEY_BYTES)
        await self._repository.insert(
            tenant,
            NewSession(
                id=browser_digest(key),
                user_id=user_id,
                issuer=issuer,
                created=now,
                expires=now + timedelta(seconds=ttl_seconds),
                credential=credential,
                parent=parent,
            ),
        )
        return self.codec.encode_session(tenant, key, ttl_seconds, now)

    async def current(
        self, tenant: str, cookie: str | None, now: datetime, settings: SsoSettings
    ) -> Session | None:
        """The session a cookie proves now, under the tenant's ``settings``: signed, stored,
        unexpired, its user in good standing. One command; a cookie that is not even signed
        costs none."""
        key = self.codec.session_key(cookie, tenant)
        if key is None:
            return None
        stored = await self._repository.get(tenant, browser_digest(key), now)
        return None if stored is None else standing_session(stored, tenant, settings)

    async def end(self, tenant: str, cookie: str | None) -> None:
        """Sign-out: the cookie's session is deleted, so a copy of the cookie is worthless."""
        key = self.codec.session_key(cookie, tenant)
        if key is not None:
            await self._repository.delete(tenant, browser_digest(key))

    async def live(
        self,
        tenant: str,
        now: datetime,
        limit: int,
        settings: SsoSettings,
        user_id: str | None = None,
    ) -> list[Session]:
        """The tenant's sessions that would be accepted now under its ``settings`` (only the
        user's, if named), newest first, at most ``limit``. Stored sessions that would be
        refused (their users deactivated or deleted since, or no longer guests) are passed over
        (they wait for their expiry, or for ``revoke_user``)."""
        found: list[Session] = []
        after: StoredSession | None = None
        while len(found) < limit:
            page = await self._repository.live(tenant, now, limit, user_id, after)
            standing = (standing_session(stored, tenant, settings) for stored in page)
            found += [session for session in standing if session is not None]
            if len(page) < limit:
                break
            after = page[-1]
        return found[:limit]

    async def revoke(self, tenant: str, session_id: str) -> bool:
        """End one session by its id; whether there was one."""
        return await self._repository.delete(tenant, session_id)

    async def revoke_user(self, tenant: str, user_id: str) -> int:
        """End every session of a user; how many there were."""
        return await self._repository.delete_user_sessions(tenant, user_id)
