"""Passwords are write-only: only a salted, deliberately slow scrypt hash is ever stored."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os

# RFC 7914 parameters sized for an interactive login (~50 ms, 16 MiB) on one core.
N, R, P = 2**14, 8, 1
SALT_BYTES = 16


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32
    )


def hash_password_sync(password: str) -> str:
    salt = os.urandom(SALT_BYTES)
    digest = _derive(password, salt, N, R, P)
    encode = base64.b64encode
    return f"scrypt${N}${R}${P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password_sync(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    candidate = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))


async def hash_password(password: str) -> str:
    """Hash off the event loop: scrypt holds a core for tens of milliseconds."""
    return await asyncio.to_thread(hash_password_sync, password)
