"""What the ``wsfed`` suite signs in to, and the STS it signs as.

The RP under test is known by its reply URL (where the STS posts the token) and its realm (the
audience a token must name), and optionally by its login URL, where a browser starts a
solicited sign-in and receives the ``wctx`` the RP expects back. The STS is Entra-shaped
(``idp_sim.wsfed``), signing with a key the RP trusts (the same PEM files the ``saml`` suite
signs with serve, or files of its own).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from idp_sim.saml.shapes import IdpShape, entra_wsfed
from idp_sim.wsfed.token import RelyingParty, TokenVersion, WsFedIdp
from samlkit.certs import SigningKey

TOKEN_VERSIONS: tuple[TokenVersion, ...] = ("2.0", "1.1")
"""Every kind of assertion a token may carry: Entra's SAML 2.0, AD FS's SAML 1.1."""


@dataclass(frozen=True)
class WsFedTarget:
    """The RP under test and the STS (its shape and key) it trusts."""

    reply_url: str
    realm: str
    shape: IdpShape
    key: SigningKey
    login_url: str | None = None

    @property
    def rp(self) -> RelyingParty:
        return RelyingParty(realm=self.realm, reply_url=self.reply_url)

    def sts(self, token: TokenVersion) -> WsFedIdp:
        """The STS issuing tokens whose assertion is SAML ``token``."""
        return WsFedIdp(self.shape, self.key, token)


def default_realm(reply_url: str) -> str:
    """The realm when none is given: the reply URL without its last ``/reply``, as this
    server's (and ``idp-sim idp serve --wsfed-app``'s) convention has it."""
    return reply_url.removesuffix("/").removesuffix("/reply")


def shape(entity_id: str | None = None) -> IdpShape:
    """Entra's STS, under another issuer when the RP expects one."""
    default = entra_wsfed()
    return replace(default, entity_id=entity_id) if entity_id else default


def load(key_path: Path, cert_path: Path) -> SigningKey:
    """The PEM key and certificate; OSError or ValueError if unusable."""
    return SigningKey.from_pem(key_path.read_bytes(), cert_path.read_bytes())
