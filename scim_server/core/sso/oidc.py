"""OpenID Connect, the relying party's side: discovery, keys, the authorization request and the
checks of an ID token, free of HTTP (the requests to the IdP go through an :class:`IdpHttp`).

The JOSE work is pyjwt's (signatures, the JWK set, the hash of ``at_hash``); what is decided
here is what an ID token must be to sign anyone in (docs/oidc.md):

- its ``alg`` is on the tenant's allow-list: never ``none``, and a MAC (HS*, keyed with the
  client secret) only when the admin listed it, so a token "signed" with the IdP's public key
  as an HMAC secret (key confusion) is refused before any key is looked at;
- its signature verifies with the IdP's key of that ``kid``, from the JWKS the discovery
  document names, fetched again (at most every ``JWKS_REFRESH_COOLDOWN``) when the ``kid``
  is unknown, which is how an IdP's key rollover reaches us;
- ``iss`` is the tenant's issuer, ``aud`` holds the client id (and a token for several
  audiences names us as ``azp``), ``exp``, ``iat`` and ``nbf`` hold with the tenant's clock skew,
  ``nonce`` is the one this sign-in sent, and ``at_hash`` and ``c_hash``, when present, are
  those of the access token and the code.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from scim_server.core.sso.settings import SECRET_ALGORITHMS, OidcSettings

DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_LIFETIME = timedelta(hours=1)
JWKS_LIFETIME = timedelta(hours=1)
JWKS_REFRESH_COOLDOWN = timedelta(seconds=10)
"""An unknown ``kid`` fetches the JWKS again, but no more often than this: forged tokens with
made-up key ids must not turn the server into a load generator against the IdP."""
REQUIRED_CLAIMS = ("iss", "sub", "aud", "exp", "iat")
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLIENT_ASSERTION_LIFETIME = timedelta(minutes=1)


class OidcRejected(Exception):
    """A sign-in the OIDC steps refuse; ``reason`` is for the admin's log, never the browser."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdpHttp(Protocol):
    """The server's requests to an IdP: bounded in time and size by the implementation, and
    answering a JSON object or raising :class:`OidcRejected` with what went wrong."""

    async def get_json(self, url: str, what: str, bearer: str | None = None) -> dict[str, Any]:
        """GET ``url`` (``what`` it is, for the reason), with an access token if given."""
        ...

    async def post_form(
        self, url: str, what: str, form: Mapping[str, str], client: tuple[str, str] | None
    ) -> dict[str, Any]:
        """POST ``form`` to ``url``, authenticated as ``client`` (id, secret) with HTTP Basic
        when given (a private_key_jwt client authenticates in the form)."""
        ...


@dataclass(frozen=True)
class Discovery:
    """What the IdP's discovery document says, as far as this relying party uses it."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    iss_parameter: bool
    """Whether authorization responses carry ``iss`` (RFC 9207), so one without it is refused."""


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + DISCOVERY_PATH


def read_discovery(document: Mapping[str, Any], issuer: str) -> Discovery:
    """The endpoints of a discovery document, which must be the configured issuer's own
    (OpenID Connect Discovery §4.3: a document naming another issuer is a mix-up)."""
    if document.get("issuer") != issuer:
        raise OidcRejected(
            f"the discovery document names the issuer {document.get('issuer')!r}, not {issuer!r}"
        )

    def url(name: str, required: bool = True) -> str | None:
        value = document.get(name)
        if value is None and not required:
            return None
        parts = urllib.parse.urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise OidcRejected(f"the discovery document's {name} is not an http(s) URL")
        return str(value)

    return Discovery(
        issuer=issuer,
        authorization_endpoint=str(url("authorization_endpoint")),
        token_endpoint=str(url("token_endpoint")),
        jwks_uri=str(url("jwks_uri")),
        userinfo_endpoint=url("userinfo_endpoint", required=False),
        iss_parameter=document.get("authorization_response_iss_parameter_supported") is True,
    )


@dataclass
class _Keys:
    keys: dict[str, jwt.PyJWK]
    fetched: datetime


@dataclass
class ProviderCache:
    """Each issuer's discovery document and signing keys, kept in this process for an hour."""

    http: IdpHttp
    _discovery: dict[str, tuple[Discovery, datetime]] = field(default_factory=dict)
    _keys: dict[str, _Keys] = field(default_factory=dict)

    async def discovery(self, issuer: str, now: datetime) -> Discovery:
        cached = self._discovery.get(issuer)
        if cached is not None and now - cached[1] < DISCOVERY_LIFETIME:
            return cached[0]
        document = await self.http.get_json(discovery_url(issuer), "discovery document")
        discovery = read_discovery(document, issuer)
        self._discovery[issuer] = (discovery, now)
        return discovery

    async def key(self, discovery: Discovery, kid: str | None, now: datetime) -> jwt.PyJWK:
        """The IdP's key of that ``kid`` (the only key, when the token names none)."""
        cached = self._keys.get(discovery.jwks_uri)
        if cached is None or self._refetch(cached, kid, now):
            cached = await self._fetch_keys(discovery, now)
        if kid is None and len(cached.keys) == 1:
            return next(iter(cached.keys.values()))
        key = cached.keys.get(kid or "")
        if key is None:
            raise OidcRejected(f"the IdP's JWKS has no key {kid!r} to verify the ID token with")
        return key

    @staticmethod
    def _refetch(cached: _Keys, kid: str | None, now: datetime) -> bool:
        """Whether to fetch the keys again: an hour old, or no key of that ``kid`` (a rollover)
        and not fetched within the cooldown."""
        age = now - cached.fetched
        return age >= JWKS_LIFETIME or (kid not in cached.keys and age >= JWKS_REFRESH_COOLDOWN)

    async def _fetch_keys(self, discovery: Discovery, now: datetime) -> _Keys:
        document = await self.http.get_json(discovery.jwks_uri, "JWKS")
        try:
            keys = jwt.PyJWKSet.from_dict(document).keys
        except jwt.PyJWTError as error:
            raise OidcRejected(f"the IdP's JWKS is not usable: {error}") from None
        # A JWK set may list keys for encryption too; only signing keys verify ID tokens.
        signing = {str(k.key_id): k for k in keys if k.public_key_use in (None, "sig")}
        fetched = _Keys(signing, now)
        self._keys[discovery.jwks_uri] = fetched
        return fetched


@dataclass(frozen=True)
class Authorization:
    """The secrets of one authorization request, kept server-side until its callback."""

    state: str
    nonce: str
    verifier: str


def new_authorization() -> Authorization:
    """A fresh state, nonce and PKCE code verifier (RFC 7636: 43 characters of 32 random bytes)."""
    return Authorization(
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(32),
    )


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def code_challenge(verifier: str) -> str:
    """PKCE's S256 challenge of a verifier."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def authorization_url(
    discovery: Discovery, oidc: OidcSettings, redirect_uri: str, authorization: Authorization
) -> str:
    """Where the browser is sent: the code flow, with PKCE S256, the state and the nonce."""
    query = {
        "response_type": "code",
        "client_id": oidc.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(oidc.scopes),
        "state": authorization.state,
        "nonce": authorization.nonce,
        "code_challenge": code_challenge(authorization.verifier),
        "code_challenge_method": "S256",
    }
    endpoint = discovery.authorization_endpoint
    separator = "&" if "?" in endpoint else "?"
    return endpoint + separator + urllib.parse.urlencode(query)


@dataclass(frozen=True)
class Expected:
    """What the ID token of one sign-in must say."""

    issuer: str
    client_id: str
    nonce: str
    skew: timedelta
    code: str
    access_token: str | None


async def verify_id_token(
    token: str,
    oidc: OidcSettings,
    expected: Expected,
    discovery: Discovery,
    cache: ProviderCache,
    now: datetime,
) -> dict[str, Any]:
    """The claims of a genuine ID token for this sign-in; :class:`OidcRejected` otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise OidcRejected(f"the ID token is not a JWT: {error}") from None
    algorithm = header.get("alg")
    if algorithm not in oidc.algorithms:
        raise OidcRejected(
            f"the ID token is signed with {algorithm!r}, which this tenant does not accept "
            f"(oidc.algorithms: {', '.join(oidc.algorithms)})"
        )
    if algorithm in SECRET_ALGORITHMS:
        key: Any = oidc.client_secret.encode()
    else:
        kid = header.get("kid")
        key = (await cache.key(discovery, kid if isinstance(kid, str) else None, now)).key
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[str(algorithm)],
            # The time claims are checked below against the sign-in's own clock, with the skew.
            options={"verify_aud": False, "verify_iss": False, "verify_exp": False,
                     "verify_iat": False, "verify_nbf": False},
        )  # fmt: skip
    except jwt.InvalidSignatureError:
        raise OidcRejected("the ID token's signature does not verify with the IdP's key") from None
    except jwt.PyJWTError as error:
        raise OidcRejected(f"the ID token cannot be read: {error}") from None
    check_claims(claims, expected, str(algorithm), now)
    return claims


def check_claims(
    claims: Mapping[str, Any], expected: Expected, algorithm: str, now: datetime
) -> None:
    """The claims of a signature-checked ID token, against what this sign-in expects."""
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise OidcRejected("the ID token lacks the claims " + ", ".join(missing))
    if claims["iss"] != expected.issuer:
        raise OidcRejected(f"the ID token's issuer {claims['iss']!r} is not {expected.issuer!r}")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if expected.client_id not in audiences:
        raise OidcRejected(
            f"the ID token's audience {claims['aud']!r} does not include the client id "
            f"{expected.client_id!r}"
        )
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != expected.client_id:
        raise OidcRejected(
            f"the ID token's azp {azp!r} is not the client id {expected.client_id!r}"
        )
    _check_times(claims, expected.skew, now)
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce, expected.nonce):
        raise OidcRejected("the ID token's nonce is not the one this sign-in sent")
    for claim, value in (("at_hash", expected.access_token), ("c_hash", expected.code)):
        if claim in claims and (value is None or claims[claim] != token_hash(algorithm, value)):
            raise OidcRejected(f"the ID token's {claim} does not match what came with it")


def _check_times(claims: Mapping[str, Any], skew: timedelta, now: datetime) -> None:
    def instant(name: str) -> datetime | None:
        value = claims.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OidcRejected(f"the ID token's {name} is not a number of seconds")
        return datetime.fromtimestamp(value, UTC)

    expires, issued, not_before = instant("exp"), instant("iat"), instant("nbf")
    if expires is not None and now >= expires + skew:
        raise OidcRejected(f"the ID token expired at {expires.isoformat()} (skew {skew})")
    if issued is not None and issued > now + skew:
        raise OidcRejected(f"the ID token was issued in the future, at {issued.isoformat()}")
    if not_before is not None and not_before > now + skew:
        raise OidcRejected(f"the ID token is not valid before {not_before.isoformat()}")


def token_hash(algorithm: str, value: str) -> str:
    """``at_hash`` / ``c_hash``: the left half of the value's hash by the token's algorithm."""
    try:
        digest = jwt.get_algorithm_by_name(algorithm).compute_hash_digest(value.encode("ascii"))
    except (NotImplementedError, ValueError, UnicodeEncodeError):
        raise OidcRejected(
            f"cannot check a hash claim of an ID token signed with {algorithm}"
        ) from None
    return _b64url(digest[: len(digest) // 2])


def claim_values(claims: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The claims as attributes: text values (a list gives each of its items)."""

    def text(value: Any) -> str:
        return value if isinstance(value, str) else str(value)

    return {
        name: tuple(text(v) for v in value) if isinstance(value, list) else (text(value),)
        for name, value in claims.items()
        if value is not None and not isinstance(value, dict)
    }


def overage(claims: Mapping[str, Any], groups_claim: str | None) -> bool:
    """Whether the groups were left out of the ID token for being too many (Entra ID's
    "groups overage": ``_claim_names`` names the claim, to be read elsewhere)."""
    names = claims.get("_claim_names")
    return bool(groups_claim) and isinstance(names, dict) and groups_claim in names


# -- private_key_jwt (RFC 7523, OpenID Connect Core §9) ------------------------------------------


def new_client_key() -> str:
    """A fresh RSA key for a tenant's client authentication, as PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


PARSED_KEYS = 256
"""How many parsed private keys a process keeps (one per tenant using private_key_jwt, and
the SSF transmitter's)."""


@functools.lru_cache(maxsize=PARSED_KEYS)
def private_key(pem: str) -> rsa.RSAPrivateKey:
    """The key of a PEM, parsed once per process: parsing checks the RSA key, some 70 to 100 ms
    of CPU that would otherwise stall the event loop at every signature or JWKS served."""
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    assert isinstance(key, rsa.RSAPrivateKey), "client keys are made RSA (new_client_key)"
    return key


def _public_jwk(pem: str) -> dict[str, Any]:
    public: dict[str, Any] = RSAAlgorithm.to_jwk(private_key(pem).public_key(), as_dict=True)
    return public


def client_key_id(pem: str) -> str:
    """The key's RFC 7638 thumbprint: its ``kid``, the same for the same key."""
    jwk = _public_jwk(pem)
    canonical = json.dumps({name: jwk[name] for name in ("e", "kty", "n")}, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def client_jwks(pem: str | None) -> dict[str, Any]:
    """The JWKS the SP publishes for its client key (none yet: no keys)."""
    if not pem:
        return {"keys": []}
    jwk = {**_public_jwk(pem), "kid": client_key_id(pem), "use": "sig", "alg": "RS256"}
    return {"keys": [jwk]}


def client_assertion(oidc: OidcSettings, token_endpoint: str, now: datetime) -> str:
    """The JWT that authenticates the client at the token endpoint: issued by and about the
    client, for that endpoint, once (``jti``), for a minute."""
    assert oidc.client_key, "a private_key_jwt client has its key (configure.apply makes it)"
    claims = {
        "iss": oidc.client_id,
        "sub": oidc.client_id,
        "aud": token_endpoint,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + CLIENT_ASSERTION_LIFETIME,
    }
    key = private_key(oidc.client_key)
    return jwt.encode(
        claims, key, algorithm="RS256", headers={"kid": client_key_id(oidc.client_key)}
    )
