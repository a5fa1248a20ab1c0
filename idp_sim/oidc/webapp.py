"""The simulated IdP's OpenID Connect endpoints, served by the same web app as its SAML apps
(``idp_sim.saml.webapp``) for the same people, with the same sign-in page and sessions.

Per hosted OIDC app (one client registered at one provider): the discovery document, the JWKS,
the authorization endpoint (the code flow; PKCE S256 when the client sends a challenge), the
token endpoint (client_secret_basic or _post; each code once, for its client, redirect URI and
verifier) and userinfo. As at the real IdPs, an unknown client or an unregistered redirect URI
gets an error page, never a redirect. ``tampering`` makes the provider misbehave on purpose
(``idp_sim.oidc.tampering``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt
from aiohttp import web

from idp_sim.oidc.provider import OidcProvider, OidcShape, b64url
from idp_sim.oidc.tampering import EVIL_ISSUER, Variant
from idp_sim.saml.pages import error_page
from idp_sim.saml.response import SamlSubject
from samlkit.certs import SigningKey

CODE_SECONDS = 300
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_CODES = 10_000
_HTML_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}


@dataclass(frozen=True)
class HostedOidcApp:
    """One client registered at one simulated OpenID provider."""

    shape: OidcShape
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    name: str | None = None
    jwks_uri: str | None = None
    """Where the client publishes its key: it authenticates with private_key_jwt (RFC 7523)."""

    @property
    def label(self) -> str:
        return self.name or f"{self.shape.vendor}-oidc"


@dataclass(frozen=True)
class OidcPending:
    """An authorization request waiting for a person (the sign-in page) or answered at once."""

    app: HostedOidcApp
    redirect_uri: str
    state: str | None
    nonce: str | None
    challenge: str | None
    force_authn: bool = False


@dataclass(frozen=True)
class _Code:
    pending: OidcPending
    person: SamlSubject
    expires: float


@dataclass(frozen=True)
class _Served:
    app: HostedOidcApp
    provider: OidcProvider


def base_url(request: web.Request, public_url: str | None) -> str:
    """The origin browsers use: the configured public URL, else the request's own."""
    return public_url.rstrip("/") if public_url else f"{request.scheme}://{request.host}"


@dataclass
class OidcEndpoints:
    """Every hosted OIDC app's endpoints, and the codes and access tokens they issued."""

    apps: Sequence[HostedOidcApp]
    key: SigningKey
    public_url: str | None = None
    tampering: Variant | None = None
    """When set, the provider misbehaves this way (an ``id_token`` or ``authorization`` kind)."""
    _by_path: dict[str, _Served] = field(default_factory=dict)
    _codes: dict[str, _Code] = field(default_factory=dict)
    _used_codes: set[str] = field(default_factory=set)
    _access: dict[str, tuple[_Served, SamlSubject]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for app in self.apps:
            served = _Served(app, OidcProvider(app.shape, self.key))
            for path in app.shape.paths:
                if path in self._by_path:
                    raise ValueError(f"path {path} of app {app.label!r} is already taken")
                self._by_path[path] = served

    def served(self, request: web.Request) -> _Served:
        resource = request.match_info.route.resource
        return self._by_path[request.path if resource is None else resource.canonical]

    # -- metadata --------------------------------------------------------------------------------

    async def discovery(self, request: web.Request) -> web.Response:
        provider = self.served(request).provider
        return web.json_response(provider.discovery(base_url(request, self.public_url)))

    async def keys(self, request: web.Request) -> web.Response:
        return web.json_response(self.served(request).provider.jwks())

    # -- authorization ---------------------------------------------------------------------------

    def authorization(self, request: web.Request) -> OidcPending | web.Response:
        """The authorization request read, or the page or redirect refusing it."""
        app = self.served(request).app
        query = request.query
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != app.client_id or redirect_uri not in app.redirect_uris:
            return _page(
                400,
                "Invalid authorization request",
                "The client_id is unknown, or the redirect_uri is not registered for it.",
            )
        state = query.get("state")
        problem = None
        if query.get("response_type") != "code":
            problem = ("unsupported_response_type", "only the code flow is served")
        elif "openid" not in query.get("scope", "").split():
            problem = ("invalid_scope", "the scope must include openid")
        elif "code_challenge" in query and query.get("code_challenge_method") != "S256":
            problem = ("invalid_request", "code_challenge_method must be S256")
        if problem:
            return _redirect(
                redirect_uri, {"error": problem[0], "error_description": problem[1]}, state
            )
        return OidcPending(
            app,
            redirect_uri,
            state,
            query.get("nonce"),
            query.get("code_challenge"),
            force_authn=query.get("prompt") == "login",
        )

    def answer(
        self, request: web.Request, pending: OidcPending, person: SamlSubject
    ) -> web.Response:
        """Send the browser back to the client with a fresh code (and ``iss``, RFC 9207)."""
        if len(self._codes) >= MAX_CODES:
            self._forget_expired()
        code = secrets.token_urlsafe(32)
        self._codes[code] = _Code(pending, person, time.monotonic() + CODE_SECONDS)
        issuer = self._by_path[pending.app.shape.authorize_path].provider.issuer(
            base_url(request, self.public_url)
        )
        values = {"code": code}
        mix_up = self.tampering is not None and self.tampering.name == "mix_up"
        if mix_up or pending.app.shape.iss_parameter:
            values["iss"] = EVIL_ISSUER if mix_up else issuer
        return _redirect(pending.redirect_uri, values, pending.state)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for code in [c for c, issued in self._codes.items() if issued.expires <= now]:
            del self._codes[code]

    # -- tokens ----------------------------------------------------------------------------------

    async def token(self, request: web.Request) -> web.Response:
        served = self.served(request)
        app = served.app
        form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        refusal = await self._authenticate(request, app, form)
        if refusal is not None:
            return _oauth_error(401, "invalid_client", refusal)
        if form.get("grant_type") != "authorization_code":
            return _oauth_error(400, "unsupported_grant_type", "only authorization_code")
        code = form.get("code", "")
        if code in self._used_codes:
            return _oauth_error(400, "invalid_grant", "the code was already used")
        issued = self._codes.pop(code, None)
        if issued is None or issued.expires <= time.monotonic():
            return _oauth_error(400, "invalid_grant", "the code is unknown or expired")
        self._used_codes.add(code)
        pending = issued.pending
        if pending.app != app or form.get("redirect_uri") != pending.redirect_uri:
            return _oauth_error(400, "invalid_grant", "the code was issued to another client")
        verifier = form.get("code_verifier")
        if pending.challenge is None and verifier is not None:
            return _oauth_error(
                400, "invalid_grant", "a code_verifier for a code issued without a code_challenge"
            )
        if pending.challenge is not None and (
            verifier is None
            or b64url(hashlib.sha256(verifier.encode()).digest()) != pending.challenge
        ):
            return _oauth_error(400, "invalid_grant", "PKCE verification failed")
        access_token = secrets.token_urlsafe(32)
        self._access[access_token] = (served, issued.person)
        claims = served.provider.claims(
            issued.person,
            app.client_id,
            pending.nonce,
            datetime.now(UTC),
            base_url(request, self.public_url),
            access_token,
        )
        variant = self.tampering
        forge = variant.token if variant is not None and variant.token is not None else None
        id_token = forge(served.provider, claims) if forge else served.provider.sign(claims)
        return web.json_response(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "openid",
                "id_token": id_token,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def _authenticate(
        self, request: web.Request, app: HostedOidcApp, form: Mapping[str, str]
    ) -> str | None:
        """Why the client is not who it claims to be, or None: its secret (Basic or in the
        form), or for a private_key_jwt client a JWT signed with a key of its JWKS."""
        if app.jwks_uri is None:
            client = _client(request, form)
            if (
                client is None
                or client[0] != app.client_id
                or not hmac.compare_digest(client[1], app.client_secret)
            ):
                return "client authentication failed"
            return None
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return "this client authenticates with private_key_jwt"
        token_endpoint = base_url(request, self.public_url) + app.shape.token_path
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.get(app.jwks_uri) as response,
            ):
                keys = jwt.PyJWKSet.from_dict(await response.json())
            assertion = form.get("client_assertion", "")
            kid = jwt.get_unverified_header(assertion).get("kid")
            key = next(k for k in keys.keys if k.key_id == kid)
            claims = jwt.decode(
                assertion,
                key.key,
                algorithms=["RS256", "PS256", "ES256"],
                audience=token_endpoint,
                issuer=app.client_id,
                options={"require": ["exp", "iss", "sub", "aud", "jti"]},
            )
        except (aiohttp.ClientError, TimeoutError, ValueError, StopIteration, jwt.PyJWTError) as e:
            return f"the client assertion cannot be verified: {e or type(e).__name__}"
        if claims["sub"] != app.client_id:
            return "the client assertion is about another client"
        return None

    async def userinfo(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        found = self._access.get(token) if scheme.lower() == "bearer" else None
        if found is None:
            return _oauth_error(401, "invalid_token", "unknown access token")
        served, person = found
        return web.json_response(served.provider.userinfo(person, served.app.client_id))


def _client(request: web.Request, form: Mapping[str, str]) -> tuple[str, str] | None:
    """The client's credentials: HTTP Basic (form-encoded parts) or in the form."""
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    return None


def _redirect(uri: str, values: dict[str, str], state: str | None) -> web.Response:
    query = {**values, **({"state": state} if state is not None else {})}
    separator = "&" if "?" in uri else "?"
    location = uri + separator + urllib.parse.urlencode(query)
    return web.Response(status=302, headers={"Location": location, **_HTML_HEADERS})


def _page(status: int, title: str, message: str) -> web.Response:
    return web.Response(
        text=error_page(title, message),
        status=status,
        content_type="text/html",
        headers=_HTML_HEADERS,
    )


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    body: dict[str, Any] = {"error": error, "error_description": description}
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})
