"""A simulated OpenID Connect provider in Okta's or Entra ID's shape: its discovery document, its
keys, and the ID tokens it mints (docs/oidc.md).

- Okta (a custom authorization server): issuer ``{base}/oauth2/default``, endpoints under
  ``/oauth2/default/v1/``, ``sub`` the user's id (``00u…``), and a ``groups`` claim.
- Entra ID (v2.0): issuer ``{base}/{tenant id}/v2.0``, ``sub`` an opaque id per application,
  ``oid`` the user's object id and ``tid`` the tenant; more groups than ``overage_at`` are left
  out of the token, which names where to read them instead (``_claim_names``/``_claim_sources``,
  the "groups overage"); this simulator serves them from its userinfo endpoint.

:meth:`OidcProvider.mint_id_token` is the library call tests use to make a token; the web app
(``idp_sim.oidc.webapp``) signs the same :meth:`OidcProvider.claims`, or a tampering variant's
forgery of them.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import jwt
from jwt.algorithms import RSAAlgorithm

from idp_sim.saml.response import SamlSubject
from samlkit.certs import SigningKey

OidcVendor = Literal["okta", "entra"]
ENTRA_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
ID_TOKEN_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class OidcShape:
    """Where one simulated provider's endpoints are, and what its tokens carry."""

    vendor: OidcVendor
    issuer_path: str
    authorize_path: str
    token_path: str
    keys_path: str
    userinfo_path: str
    groups_claim: str | None = "groups"
    overage_at: int | None = None
    """More groups than this go to userinfo instead of the ID token (Entra's overage)."""
    iss_parameter: bool = False
    """Whether the authorization response carries ``iss`` (RFC 9207)."""

    @property
    def discovery_path(self) -> str:
        return f"{self.issuer_path}/.well-known/openid-configuration"

    @property
    def paths(self) -> tuple[str, ...]:
        return (
            self.discovery_path,
            self.authorize_path,
            self.token_path,
            self.keys_path,
            self.userinfo_path,
        )


def okta_oidc(authorization_server: str = "default", *, iss_parameter: bool = True) -> OidcShape:
    """Okta's custom authorization server (``/oauth2/default``), which sends ``iss`` back."""
    root = f"/oauth2/{authorization_server}"
    return OidcShape(
        vendor="okta",
        issuer_path=root,
        authorize_path=f"{root}/v1/authorize",
        token_path=f"{root}/v1/token",
        keys_path=f"{root}/v1/keys",
        userinfo_path=f"{root}/v1/userinfo",
        iss_parameter=iss_parameter,
    )


def entra_oidc(tenant_id: str = ENTRA_TENANT_ID, *, overage_at: int = 200) -> OidcShape:
    """Entra ID's v2.0 endpoints for one tenant; 200 groups is its limit in a JWT."""
    return OidcShape(
        vendor="entra",
        issuer_path=f"/{tenant_id}/v2.0",
        authorize_path=f"/{tenant_id}/oauth2/v2.0/authorize",
        token_path=f"/{tenant_id}/oauth2/v2.0/token",
        keys_path=f"/{tenant_id}/discovery/v2.0/keys",
        userinfo_path=f"/{tenant_id}/oidc/userinfo",
        overage_at=overage_at,
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def token_hash(value: str) -> str:
    """``at_hash`` / ``c_hash`` of an RS256 token: the left half of the value's SHA-256."""
    return b64url(hashlib.sha256(value.encode("ascii")).digest()[:16])


@dataclass(frozen=True)
class OidcProvider:
    """One simulated OpenID provider: its shape and its signing key (``kid`` names it)."""

    shape: OidcShape
    key: SigningKey
    kid: str = "sim-key-1"

    def issuer(self, base_url: str) -> str:
        return base_url.rstrip("/") + self.shape.issuer_path

    def discovery(self, base_url: str) -> dict[str, Any]:
        base = base_url.rstrip("/")
        return {
            "issuer": self.issuer(base),
            "authorization_endpoint": base + self.shape.authorize_path,
            "token_endpoint": base + self.shape.token_path,
            "jwks_uri": base + self.shape.keys_path,
            "userinfo_endpoint": base + self.shape.userinfo_path,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public" if self.shape.vendor == "okta" else "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "authorization_response_iss_parameter_supported": self.shape.iss_parameter,
        }

    def jwks(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.key.private_key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def subject_of(self, person: SamlSubject, client_id: str) -> str:
        """``sub``: Okta's user id; Entra's pairwise id, the same person differing per app."""
        if self.shape.vendor == "okta":
            return person.user_id
        return b64url(hashlib.sha256(f"{client_id}\n{person.user_id}".encode()).digest())[:43]

    @staticmethod
    def profile(person: SamlSubject) -> dict[str, Any]:
        """The standard profile claims, in the ID token and at userinfo alike."""
        return {
            "email": person.email,
            "given_name": person.first_name,
            "family_name": person.last_name,
            "preferred_username": person.login,
        }

    def claims(
        self,
        person: SamlSubject,
        client_id: str,
        nonce: str | None,
        now: datetime,
        base_url: str,
        access_token: str | None = None,
    ) -> dict[str, Any]:
        """The ID token's claims for ``person``, in this vendor's shape."""
        issued = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer(base_url),
            "sub": self.subject_of(person, client_id),
            "aud": client_id,
            "iat": issued,
            "exp": issued + int(ID_TOKEN_LIFETIME.total_seconds()),
            "auth_time": issued,
            "jti": "ID." + secrets.token_urlsafe(24),
            "name": f"{person.first_name} {person.last_name}",
            **self.profile(person),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["at_hash"] = token_hash(access_token)
        if self.shape.vendor == "entra":
            tenant_id = self.shape.issuer_path.strip("/").split("/")[0]
            claims.update(oid=person.user_id, tid=tenant_id, nbf=issued, ver="2.0")
        groups = self.shape.groups_claim
        if groups:
            if self.shape.overage_at is not None and len(person.groups) > self.shape.overage_at:
                claims["_claim_names"] = {groups: "src1"}
                claims["_claim_sources"] = {
                    "src1": {"endpoint": base_url.rstrip("/") + self.shape.userinfo_path}
                }
            else:
                claims[groups] = list(person.groups)
        return claims

    def sign(self, claims: dict[str, Any]) -> str:
        """An RS256 JWT of ``claims`` under this provider's key."""
        return jwt.encode(
            claims, self.key.private_key, algorithm="RS256", headers={"kid": self.kid}
        )

    def mint_id_token(
        self,
        person: SamlSubject,
        client_id: str,
        nonce: str | None,
        now: datetime,
        base_url: str,
        access_token: str | None = None,
    ) -> str:
        """A genuine ID token: the library call tests mint with (the token endpoint signs the
        same :meth:`claims`, or a tampering variant's forgery of them)."""
        return self.sign(self.claims(person, client_id, nonce, now, base_url, access_token))

    def userinfo(self, person: SamlSubject, client_id: str) -> dict[str, Any]:
        """What userinfo answers: the profile, and every group (overage or not)."""
        info: dict[str, Any] = {"sub": self.subject_of(person, client_id), **self.profile(person)}
        if self.shape.groups_claim:
            info[self.shape.groups_claim] = list(person.groups)
        return info
