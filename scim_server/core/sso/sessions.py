"""What a browser carries: the session cookie, the admin's test ticket, and the binding of an
AuthnRequest to the browser that started it.

The session and the ticket are short JWTs (pyjwt, HS256) under a secret only the server holds,
each with its own audience so one can never be presented as the other, and each bound to one
tenant. The binding is a random key in a cookie; the request remembers only its digest.
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

from scim_server.wire import header_bytes

ALGORITHM = "HS256"
SESSION_AUDIENCE = "sso-session"
TEST_AUDIENCE = "sso-test"
TEST_TICKET_SECONDS = 600
COOKIE_PREFIX = "scim_sso_"
BINDING_COOKIE_PREFIX = "scim_saml_"
BINDING_KEY_BYTES = 32
BINDING_KEY = re.compile(r"[A-Za-z0-9_-]{43}")
"""What ``secrets.token_urlsafe(BINDING_KEY_BYTES)`` makes: any other cookie value is replaced."""


@dataclass(frozen=True)
class Session:
    """Who is signed in to which tenant, and through which IdP."""

    tenant: str
    user_id: str
    user_name: str
    issuer: str
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
    """What a pending request keeps of the key: enough to recognise the browser, not to be it."""
    return hashlib.sha256(key.encode()).hexdigest()


def same_browser(digest: str | None, cookie: str | None) -> bool:
    """Whether ``cookie`` is the key whose digest a request was bound to."""
    if not digest or not cookie:
        return False
    return hmac.compare_digest(digest, browser_digest(cookie))


class SessionCodec:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def encode_session(
        self,
        tenant: str,
        user_id: str,
        user_name: str,
        issuer: str,
        ttl_seconds: int,
        now: datetime | None = None,
    ) -> str:
        now = now or datetime.now(UTC)
        claims = {
            "aud": SESSION_AUDIENCE,
            "tenant": tenant,
            "sub": user_id,
            "name": user_name,
            "idp": issuer,
            "iat": now,
            "exp": now + timedelta(seconds=ttl_seconds),
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode_session(self, token: str | None, tenant: str) -> Session | None:
        """The session a cookie proves, or None when it is absent, forged, expired or foreign."""
        claims = self._claims(token, SESSION_AUDIENCE)
        if claims is None or claims.get("tenant") != tenant:
            return None
        return Session(
            tenant=tenant,
            user_id=str(claims["sub"]),
            user_name=str(claims["name"]),
            issuer=str(claims["idp"]),
            expires=datetime.fromtimestamp(int(claims["exp"]), UTC),
        )

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
