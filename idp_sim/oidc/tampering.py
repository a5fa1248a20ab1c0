"""Deliberately broken OpenID Connect sign-ins: the attacks of docs/oidc.md, as the simulator
can stage them. A correct relying party refuses every one, each for its own reason.

Three kinds:

- ``id_token``: the token endpoint answers a forged or altered ID token (:attr:`Variant.token`
  turns the genuine claims into the token sent): another audience or issuer, expired, ``alg:
  none``, signed with another key under the genuine ``kid``, HS256 keyed with the provider's
  public key (key confusion), another nonce.
- ``authorization``: the redirect back to the client is altered: ``mix_up`` names another
  issuer in the RFC 9207 ``iss`` parameter, as an attacker's IdP answering with the honest
  state would.
- ``flow``: steps an attacker takes with genuine messages, which a test performs itself:
  ``replayed_code`` presents a code already exchanged, with a fresh state; ``missing_pkce``
  presents a code the attacker obtained without a PKCE challenge (so no verifier can match it).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from idp_sim.oidc.provider import OidcProvider, b64url
from samlkit.certs import SigningKey

Kind = Literal["id_token", "authorization", "flow"]
Forge = Callable[[OidcProvider, dict[str, Any]], str]
EVIL_ISSUER = "https://evil.example/oauth2/default"


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    kind: Kind
    token: Forge | None = None
    """For ``id_token`` variants: the token sent instead of the genuine one."""


@functools.cache
def attacker_key() -> SigningKey:
    """The attacker's own RSA key, made once per process."""
    return SigningKey.generate("attacker.evil.example")


def _compact(header: dict[str, Any], claims: dict[str, Any]) -> bytes:
    def part(value: dict[str, Any]) -> str:
        return b64url(json.dumps(value, separators=(",", ":")).encode())

    return f"{part(header)}.{part(claims)}".encode()


def _altered(**changes: Any) -> Forge:
    """The genuine token, signed by the provider, with some claims changed."""

    def forge(provider: OidcProvider, claims: dict[str, Any]) -> str:
        return provider.sign({**claims, **changes})

    return forge


def _expired(provider: OidcProvider, claims: dict[str, Any]) -> str:
    hour = int(timedelta(hours=1).total_seconds())
    return provider.sign({**claims, "iat": claims["iat"] - 2 * hour, "exp": claims["iat"] - hour})


def _unsigned(provider: OidcProvider, claims: dict[str, Any]) -> str:
    return _compact({"alg": "none", "typ": "JWT"}, claims).decode() + "."


def _wrong_key(provider: OidcProvider, claims: dict[str, Any]) -> str:
    """Signed with the attacker's key, naming the provider's ``kid``."""
    return OidcProvider(provider.shape, attacker_key(), provider.kid).sign(claims)


def _key_confusion(provider: OidcProvider, claims: dict[str, Any]) -> str:
    """HS256 whose secret is the provider's public key (PEM): what a verifier that lets the
    token pick the algorithm would check it with. pyjwt rightly refuses to make one."""
    public = provider.key.private_key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _compact({"alg": "HS256", "typ": "JWT", "kid": provider.kid}, claims)
    mac = hmac.new(public, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64url(mac)}"


VARIANTS: tuple[Variant, ...] = (
    Variant("wrong_audience", "an ID token for another client", "id_token", _altered(aud="x")),
    Variant("wrong_issuer", "an ID token of another issuer", "id_token", _altered(iss=EVIL_ISSUER)),
    Variant("expired", "an ID token that expired an hour ago", "id_token", _expired),
    Variant("alg_none", "an unsigned ID token (alg: none)", "id_token", _unsigned),
    Variant("wrong_key", "signed with another key, under the genuine kid", "id_token", _wrong_key),
    Variant(
        "hs256_key_confusion",
        "HS256 keyed with the provider's public key",
        "id_token",
        _key_confusion,
    ),
    Variant(
        "nonce_mismatch",
        "an ID token minted for another sign-in's nonce",
        "id_token",
        _altered(nonce="not-the-nonce-that-was-sent"),
    ),
    Variant("mix_up", "the authorization response names another issuer", "authorization"),
    Variant("replayed_code", "a code already exchanged, presented again", "flow"),
    Variant("missing_pkce", "a code obtained without a PKCE challenge", "flow"),
)
BY_NAME = {variant.name: variant for variant in VARIANTS}
