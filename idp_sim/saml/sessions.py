"""The simulated IdP's browser state: who is signed in, and sign-ins waiting for a person.

An IdP session is a cookie per vendor (one Okta org, one JumpCloud org) so signing in to the Okta
side does not sign anyone in to the JumpCloud side, as with the real products. The cookie is
HMAC-signed with a per-process secret: a simulator needs no persistence, but a test that edits
the cookie must not become someone else.

A sign-in that has to wait for a person (the AuthnRequest's ID and RelayState) is kept in memory
under a random token, bounded in number and age, so a flood of AuthnRequests cannot grow the
process without limit.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

COOKIE_PREFIX = "idp_sim_session_"

T = TypeVar("T")


@dataclass(frozen=True)
class IdpSession:
    """A person signed in at one simulated IdP; ``session_id`` becomes the SessionIndex."""

    login: str
    session_id: str

    @classmethod
    def start(cls, login: str) -> IdpSession:
        return cls(login, "_" + secrets.token_hex(16))


class SessionCookies:
    """Encodes and checks the signed IdP session cookie."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    @staticmethod
    def name(vendor: str) -> str:
        return COOKIE_PREFIX + vendor

    def encode(self, vendor: str, session: IdpSession) -> str:
        payload = _b64(f"{session.session_id}\n{session.login}".encode())
        return f"{payload}.{self._mac(vendor, payload)}"

    def decode(self, vendor: str, value: str | None) -> IdpSession | None:
        """The session in ``value``, or None when absent, malformed or not signed by us."""
        payload, _, mac = (value or "").partition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(vendor, payload)):
            return None
        try:
            session_id, _, login = _unb64(payload).decode("utf-8").partition("\n")
        except (ValueError, binascii.Error):
            return None
        return IdpSession(login, session_id) if login and session_id else None

    def _mac(self, vendor: str, payload: str) -> str:
        message = f"{vendor}\n{payload}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


class PendingLogins(Generic[T]):
    """Sign-ins waiting on the sign-in page, by unguessable token; oldest evicted first."""

    def __init__(
        self,
        *,
        ttl_seconds: float = 600.0,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def add(self, item: T) -> str:
        self._expire()
        while len(self._entries) >= self._capacity:
            self._entries.popitem(last=False)
        token = secrets.token_urlsafe(24)
        self._entries[token] = (self._clock() + self._ttl, item)
        return token

    def get(self, token: str) -> T | None:
        """The waiting sign-in; it stays until :meth:`discard` so a mistyped login can retry."""
        self._expire()
        entry = self._entries.get(token)
        return entry[1] if entry else None

    def discard(self, token: str) -> None:
        self._entries.pop(token, None)

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            token, (deadline, _) = next(iter(self._entries.items()))
            if deadline > now:
                return
            del self._entries[token]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
