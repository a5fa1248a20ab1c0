"""SCIM bearer tokens: JWTs the server signs per tenant, revocable through MongoDB.

The signature proves the server issued the token for that tenant; the token id
(``jti``) is looked up so an admin can revoke it. Lookups are cached for a few
seconds per (tenant, token id), so a revocation takes effect within that time
and a cache entry can never answer for another tenant.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from scim2_models import UnauthorizedException

from scim_server.storage.tenants import TenantRepository
from scim_server.wire import header_bytes

ALGORITHM = "HS256"
ISSUER = "scim-server"
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str
    expires: datetime | None


class TokenAuthority:
    def __init__(self, secret: str, tenants: TenantRepository) -> None:
        self._secret = secret
        self._tenants = tenants
        self._valid_until: dict[tuple[str, str], float] = {}

    async def issue(
        self, tenant: str, *, ttl_seconds: int | None = None, description: str | None = None
    ) -> IssuedToken:
        now = datetime.now(UTC)
        token_id = uuid.uuid4().hex
        claims: dict[str, object] = {
            "iss": ISSUER,
            "sub": tenant,
            "jti": token_id,
            "iat": int(now.timestamp()),
        }
        expires = now + timedelta(seconds=ttl_seconds) if ttl_seconds else None
        if expires is not None:
            claims["exp"] = int(expires.timestamp())
        await self._tenants.add_token(tenant, token_id, now, expires, description)
        return IssuedToken(token_id, jwt.encode(claims, self._secret, algorithm=ALGORITHM), expires)

    async def revoke(self, tenant: str, token_id: str) -> bool:
        self._valid_until.pop((tenant, token_id), None)
        return await self._tenants.revoke_token(tenant, token_id, datetime.now(UTC))

    def forget_tenant(self, tenant: str) -> None:
        """Drop the cached validity of a deleted tenant's tokens (their records are gone)."""
        for key in [key for key in self._valid_until if key[0] == tenant]:
            del self._valid_until[key]

    async def authenticate(self, tenant: str, authorization: str | None) -> str:
        """Check the Authorization header for ``tenant``; answers the token id.

        Okta sends the raw token with no scheme, so both ``Bearer <jwt>`` and
        ``<jwt>`` are accepted.
        """
        token = _token_from_header(authorization)
        try:
            claims = jwt.decode(
                header_bytes(token),
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["sub", "jti", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthorizedException(detail="the bearer token has expired") from None
        except jwt.InvalidTokenError:
            raise UnauthorizedException(detail="the bearer token is not valid") from None
        if claims["sub"] != tenant:
            raise UnauthorizedException(detail="the bearer token is not valid for this tenant")
        token_id = str(claims["jti"])
        if not await self._is_live(tenant, token_id):
            raise UnauthorizedException(detail="the bearer token has been revoked")
        return token_id

    async def _is_live(self, tenant: str, token_id: str) -> bool:
        key = (tenant, token_id)
        now = time.monotonic()
        if self._valid_until.get(key, 0.0) > now:
            return True
        record = await self._tenants.token(tenant, token_id)
        if record is None or record.revoked is not None:
            self._valid_until.pop(key, None)
            return False
        self._valid_until[key] = now + CACHE_SECONDS
        return True


def _token_from_header(authorization: str | None) -> str:
    if not authorization or not authorization.strip():
        raise UnauthorizedException(detail="a bearer token is required")
    scheme, _, rest = authorization.strip().partition(" ")
    if not rest:
        return scheme
    if scheme.lower() != "bearer":
        raise UnauthorizedException(detail="use the Bearer authentication scheme")
    return rest.strip()
