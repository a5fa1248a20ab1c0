"""The key the transmitter signs SETs with: one per server, kept in the database.

Every worker and every server on the database signs with the same RSA key (made once, by the
first process that needs it, and stored as a server secret), so a receiver verifies any SET
against the one JWKS. Its ``kid`` is its RFC 7638 thumbprint: a key rolled over gets a new
``kid`` by itself, and the JWKS can list the old key beside the new one meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Final

import jwt

from scim_server.core.sso.oidc import client_jwks, client_key_id, new_client_key, private_key
from scim_server.storage.database import Database

ALGORITHM: Final = "RS256"
SIGNING_KEY: Final = "ssf-signing-key"
"""The server secret holding the transmitter's private key."""
SET_TYPE: Final = "secevent+jwt"
"""RFC 8417 §2.3: the ``typ`` of a SET, which no other JWT can be mistaken for."""


@dataclass(frozen=True)
class SigningKey:
    pem: str
    """The private key, as PKCS#8 PEM."""

    @cached_property
    def kid(self) -> str:
        return client_key_id(self.pem)

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(
            dict(claims),
            private_key(self.pem),
            algorithm=ALGORITHM,
            headers={"kid": self.kid, "typ": SET_TYPE},
        )

    def jwks(self) -> dict[str, Any]:
        """The public half, as the JWKS receivers verify SETs with."""
        return client_jwks(self.pem)


class ServerKey:
    """The server's signing key, read (or made, by the first process that needs it) once per
    process: what the poll endpoint and the push channel sign with, and the JWKS shows."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._key: SigningKey | None = None

    async def get(self) -> SigningKey:
        if self._key is None:
            stored = await self._database.server_secret(SIGNING_KEY, None, generate=new_client_key)
            self._key = SigningKey(stored.value)
        return self._key
