"""Single sign-on for every tenant: the steps a sign-in takes, in order, free of HTTP.

Each protocol is an adapter that ends in a :class:`VerifiedIdentity`; from there one step,
:meth:`SingleSignOn.admit`, does the rest for all of them: Test mode, just-in-time
provisioning (account links, seats, groups), the session and the log.

SAML: a sign-in is either SP-initiated (``start`` issues an AuthnRequest, remembered so the
response can be bound to it once) or IdP-initiated (an unsolicited response, if the
tenant allows them). ``consume`` then verifies the response and rules out a replay.
OpenID Connect: ``oidc.OidcSignIn`` (the authorization code flow). WS-Federation (the passive
requestor profile): ``start_wsfed`` sends ``wa=wsignin1.0`` with a ``wctx`` remembered like an
AuthnRequest, and ``consume_wsfed`` verifies the posted token as SAML's ``consume`` does. Every
outcome, good or bad, goes to the tenant's SSO log with its precise reason; callers show
browsers a generic page.

Beside single sign-on, the password: a password sign-in (refused, while SSO is enforced, to all
but the tenant's guests), and the one-time reset link an admin issues so that a user can set a
password when the IdP is down (docs/sso-rules.md).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from scim2_models import ConflictException, PatchOp

from samlkit.authn_request import AuthnRequest, build_authn_request, new_request_id
from samlkit.bindings import encode_redirect
from samlkit.timefmt import format_instant
from scim_server import metrics
from scim_server.core.directory import UserRecord
from scim_server.core.errors import SeatLimitExceeded, resource_not_found
from scim_server.core.passwords import hash_password_sync, verify_password_sync
from scim_server.core.provisioning import Provisioning
from scim_server.core.scope import Scope
from scim_server.core.sso import oidc
from scim_server.core.sso.jit import (
    AccountDeactivated,
    JustInTime,
    Profile,
    SignInRefused,
    VerifiedIdentity,
    profile_of,
)
from scim_server.core.sso.sessions import (
    PASSWORD_ISSUER,
    SessionCodec,
    Sessions,
    browser_digest,
    same_browser,
)
from scim_server.core.sso.settings import (
    SIGNED_OUT,
    Branding,
    Protocol,
    SettingsStore,
    SpEndpoints,
    SsoSettings,
    home_path,
    sp_endpoints,
)
from scim_server.core.sso.verify import (
    SamlRejected,
    VerifiedAssertion,
    VerifierConfig,
    consume_response,
    consume_wresult,
)
from scim_server.models import USERS
from scim_server.storage.documents import credential
from scim_server.storage.events import SSO
from scim_server.storage.sso import PendingRequest, RequestProtocol, SsoRepository

REQUEST_LIFETIME = timedelta(minutes=10)
PASSWORD_FAILURES_ALLOWED = 5
PASSWORD_LOCKOUT = timedelta(minutes=15)
PASSWORD_FLOWS = frozenset({"password", "password_reset", "sign_out"})
"""The log's flows that involve no identity provider: counted under the protocol "password"."""
RESET_TOKEN_BYTES = 32
RESET_LINK_LIFETIME = timedelta(minutes=15)
MIN_RESET_LINK_SECONDS = 60
MAX_RESET_LINK_SECONDS = 3600
"""A reset link lives 15 minutes unless the admin asks for 1 to 60."""
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024


def acceptable_new_password(password: str, confirm: str) -> bool:
    """Whether a password set through a reset link may be kept: typed the same twice, at least
    ``MIN_PASSWORD_LENGTH`` characters long, and not so long that hashing it is a burden."""
    return password == confirm and MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH


@functools.cache
def unknown_user_hash() -> str:
    """Checked against when the user does not exist, so that case costs a real scrypt too;
    made on first use, not at import, since scrypt is deliberately slow."""
    return hash_password_sync(secrets.token_urlsafe(16))


MAX_RELAY_STATE = 1024
WSIGNIN = "wsignin1.0"
WSIGNOUT = "wsignout1.0"
WSIGNOUT_CLEANUP = "wsignoutcleanup1.0"

FailurePage = Literal["failed", "seats", "unknown"]
"""Which page a browser gets for a sign-in that did not happen: the page of a refusal at the
route it came through, the page that says no seat is free, or the one for a tenant that does
not exist."""


class SignInFailed(Exception):
    """A sign-in that did not happen; ``reason`` goes to the log, ``page`` to the browser."""

    def __init__(self, reason: str, page: FailurePage = "failed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.page = page


@dataclass(frozen=True)
class SignedIn:
    token: str
    ttl_seconds: int
    user_name: str
    redirect: str


@dataclass(frozen=True)
class ResetLink:
    """A one-time link that lets a user set a password: the token is only in ``url``'s
    fragment, which browsers never send to a server."""

    url: str
    expires: datetime
    user_id: str
    user_name: str


@dataclass(frozen=True)
class TestReport:
    """What a test sign-in found: the identity as the SP read it, and whom it would sign in."""

    identity: VerifiedIdentity
    profile: Profile
    user: UserRecord | None
    jit: bool
    assigned_groups: tuple[str, ...]
    """The asserted groups the allowlist lets through: what a real sign-in would assign."""


@dataclass(frozen=True)
class RepostNeeded:
    """A solicited response arrived without the browser's binding cookie. Over plain HTTP the
    cookie is SameSite=Lax, which a cross-site POST from the IdP does not carry; posted again
    from this site, once, it comes along. Nothing was consumed: the second post starts over."""


@dataclass(frozen=True)
class Started:
    """An SP-initiated sign-in under way: where to send the browser, and the SP it asked for."""

    location: str
    endpoints: SpEndpoints


@dataclass(frozen=True)
class Origin:
    """Where this server is reached and who is asking: for URLs and for the log."""

    root: str
    """The request's public root (the configured public URL, else its own host): for SCIM URLs."""
    client: str | None = None
    public_url: str | None = None
    """The configured public URL (``SCIM_PUBLIC_URL``), if any."""
    request_id: str | None = None
    """The request's id (``X-Request-Id``), which its log entry carries too."""

    def sp_root(self, settings: SsoSettings) -> str | None:
        """The root of the SP's SAML identity: the tenant's pinned base URL, else the configured
        public URL; never the Host header of a request, which anyone can set."""
        return settings.sp_base_url or self.public_url

    def scope(self, tenant: str) -> Scope:
        return Scope(tenant=tenant, base_url=f"{self.root}/scim/v2/{tenant}", client=SSO)


def safe_relay(value: str | None, fallback: str) -> str:
    """A RelayState as a redirect target: only a same-site relative path, else ``fallback``.

    Anything with a scheme or a host, protocol-relative (``//evil``), backslash tricks
    (``/\\evil``) or control characters could send the browser off-site: an open redirect.
    """
    if not value or len(value) > MAX_RELAY_STATE or not value.startswith("/"):
        return fallback
    if value.startswith(("//", "/\\")) or any(ord(c) < 0x20 or c == "\\" for c in value):
        return fallback
    parts = urllib.parse.urlsplit(value)
    return value if not parts.scheme and not parts.netloc else fallback


def with_query(url: str, query: Mapping[str, str]) -> str:
    """``url`` with ``query`` appended to whatever query it already has (an IdP's endpoint
    may carry one of its own, such as an app ID)."""
    separator = "&" if "?" in url else "?"
    return url + separator + urllib.parse.urlencode(query)


class SingleSignOn:
    def __init__(
        self,
        repository: SsoRepository,
        codec: SessionCodec,
        provisioning: Provisioning,
        idp_http: oidc.IdpHttp,
    ) -> None:
        self.repository = repository
        self.oidc_providers = oidc.ProviderCache(idp_http)
        self.stored_settings = SettingsStore(repository)
        self.codec = codec
        self.sessions = Sessions(codec, repository.sessions)
        self.provisioning = provisioning
        self.directory = provisioning.directory
        self.jit = JustInTime(provisioning, repository)

    async def log_entries(self, tenant: str, limit: int) -> list[dict[str, Any]]:
        """The tenant's sign-in attempts, newest first."""
        return await self.repository.entries(tenant, limit)

    async def settings(self, tenant: str) -> SsoSettings:
        settings = await self.stored_settings.get(tenant)
        if settings is None:
            raise SignInFailed(f"no tenant {tenant!r}", page="unknown")
        metrics.attribute_to_tenant(tenant)
        return settings

    async def branding(self, tenant: str) -> Branding | None:
        """How the tenant's pages present it; None when there is no such tenant."""
        settings = await self.stored_settings.get(tenant)
        return None if settings is None else settings.branding

    # -- starting ----------------------------------------------------------------------------

    async def start(
        self,
        tenant: str,
        origin: Origin,
        relay_state: str | None,
        test_ticket: str | None,
        browser: str,
        now: datetime,
    ) -> Started:
        """Issue an AuthnRequest; answers the IdP URL (HTTP-Redirect binding) to send the
        browser to. A valid admin test ticket makes it a test sign-in, allowed before SSO is
        enabled, so the admin can try the connection first.

        ``browser`` is the binding key the starting browser carries in a cookie; the request
        keeps its digest, and only a browser presenting the key may complete it (login CSRF).
        """
        settings, test, endpoints = await self._starting(tenant, origin, test_ticket, now, "saml")
        relay = safe_relay(relay_state, endpoints.home_path)
        request = AuthnRequest(
            id=new_request_id(),
            issuer=endpoints.entity_id,
            destination=settings.idp_sso_url,
            acs_url=endpoints.acs_url,
            issue_instant=now,
            name_id_format=settings.name_id_format,
            force_authn=False,
        )
        await self.repository.remember_request(
            tenant,
            PendingRequest(
                id=request.id, relay_state=relay, test=test, browser=browser_digest(browser)
            ),
            expires=now + REQUEST_LIFETIME,
        )
        query = {"SAMLRequest": encode_redirect(build_authn_request(request)), "RelayState": relay}
        return Started(location=with_query(settings.idp_sso_url, query), endpoints=endpoints)

    async def start_wsfed(
        self,
        tenant: str,
        origin: Origin,
        relay_state: str | None,
        test_ticket: str | None,
        browser: str,
        now: datetime,
    ) -> Started:
        """Send the browser to the IdP's passive endpoint (``wa=wsignin1.0``) for the realm,
        with the reply URL and a fresh ``wctx``: remembered, bound to ``browser``, as an
        AuthnRequest is, and echoed back by the IdP with the token. A valid admin test ticket
        makes it a test sign-in, as for SAML."""
        settings, test, endpoints = await self._starting(tenant, origin, test_ticket, now, "wsfed")
        context = secrets.token_urlsafe(24)
        await self.repository.remember_request(
            tenant,
            PendingRequest(
                id=context,
                relay_state=safe_relay(relay_state, endpoints.home_path),
                test=test,
                browser=browser_digest(browser),
                protocol="wsfed",
            ),
            expires=now + REQUEST_LIFETIME,
        )
        query = {
            "wa": WSIGNIN,
            "wtrealm": endpoints.realm(settings),
            "wctx": context,
            "wreply": endpoints.wsfed_reply_url,
            "wct": format_instant(now),
        }
        return Started(location=with_query(settings.idp_sso_url, query), endpoints=endpoints)

    async def wsfed_sign_out_url(self, tenant: str, origin: Origin) -> str | None:
        """Where a browser signed out here goes to be signed out at the WS-Federation IdP too
        (``wa=wsignout1.0``, coming back to the signed-out page); None when the tenant does not
        sign in with WS-Federation, or its IdP or SP is not described."""
        settings = await self.settings(tenant)
        root = origin.sp_root(settings)
        if settings.protocol != "wsfed" or not settings.idp_sso_url or root is None:
            return None
        endpoints = sp_endpoints(root, tenant)
        query = {
            "wa": WSIGNOUT,
            "wtrealm": endpoints.realm(settings),
            "wreply": f"{endpoints.home_url}{SIGNED_OUT}",
        }
        return with_query(settings.idp_sso_url, query)

    async def _starting(
        self,
        tenant: str,
        origin: Origin,
        test_ticket: str | None,
        now: datetime,
        protocol: Protocol,
    ) -> tuple[SsoSettings, bool, SpEndpoints]:
        """The settings, whether it is a test, and the SP's values, for a sign-in through
        ``protocol`` about to start; refused unless the tenant uses that protocol and its IdP
        is described, and before SSO is enabled, unless a valid admin test ticket comes along."""
        settings = await self.settings(tenant)
        test = test_ticket is not None
        # The log entry (and the sign-in metric) of a refusal names the protocol it came by.
        details: dict[str, Any] = {"protocol": protocol, "flow": "sp"}
        if test and not self.codec.valid_test_ticket(test_ticket, tenant):
            raise await self._failed(
                tenant, origin, now, "the test sign-in link is invalid or has expired", **details
            )
        if settings.protocol != protocol:
            raise await self._failed(
                tenant,
                origin,
                now,
                f"this tenant signs in with {settings.protocol}, not {protocol}",
                **details,
            )
        if settings.missing_idp_fields() or not (settings.enabled or test):
            raise await self._failed(
                tenant,
                origin,
                now,
                "single sign-on is not enabled or not configured",
                **details,
            )
        return settings, test, await self._endpoints(tenant, origin, settings, now, **details)

    async def _endpoints(
        self, tenant: str, origin: Origin, settings: SsoSettings, now: datetime, **details: Any
    ) -> SpEndpoints:
        """The SP's own values for this tenant, or a refusal the admin can act on."""
        root = origin.sp_root(settings)
        if root is None:
            raise await self._failed(
                tenant,
                origin,
                now,
                "the SP base URL is not pinned: set the tenant's sp_base_url "
                "(or the server's SCIM_PUBLIC_URL)",
                **details,
            )
        return sp_endpoints(root, tenant)

    # -- consuming -----------------------------------------------------------------------------

    async def consume(
        self,
        tenant: str,
        origin: Origin,
        form: Mapping[str, str],
        browser: str | None,
        now: datetime,
        *,
        reposted: bool = False,
    ) -> SignedIn | TestReport | RepostNeeded:
        """Verify a posted response and sign its subject in (or report on it, in test mode).

        ``browser`` is the binding key the posting browser carries, if any: a solicited
        response is accepted only from the browser that started its request. Without one, a
        solicited response not yet ``reposted`` is handed back to be posted again from this
        site (see :class:`RepostNeeded`); a reposted one without the key is refused.
        """
        settings = await self.settings(tenant)
        endpoints = await self._endpoints(tenant, origin, settings, now)
        if settings.protocol != "saml":
            raise await self._failed(
                tenant, origin, now, f"this tenant signs in with {settings.protocol}, not saml"
            )
        encoded = form.get("SAMLResponse")
        if not encoded:
            raise await self._failed(tenant, origin, now, "the POST carries no SAMLResponse")
        config = _verifier_config(settings, endpoints.entity_id, endpoints.acs_url)
        try:
            # 1-2 ms of signature checks per response: off the loop, so sign-ins don't stall it.
            assertion = await asyncio.to_thread(consume_response, encoded, config, now)
        except SamlRejected as rejected:
            raise await self._failed(tenant, origin, now, rejected.reason) from None
        if assertion.in_response_to and browser is None and not reposted:
            return RepostNeeded()
        details = _assertion_details(assertion, solicited=bool(assertion.in_response_to))
        pending = await self._answered_request(
            tenant, origin, settings, assertion.in_response_to, "saml", browser, now, details
        )
        relay = pending.relay_state if pending else form.get("RelayState")
        return await self._admit_assertion(
            tenant, origin, settings, endpoints, assertion, pending, relay, now, details, "saml"
        )

    async def consume_wsfed(
        self,
        tenant: str,
        origin: Origin,
        form: Mapping[str, str],
        browser: str | None,
        now: datetime,
        *,
        reposted: bool = False,
    ) -> SignedIn | TestReport | RepostNeeded:
        """Verify a posted WS-Federation token (``wresult``) and sign its subject in, as
        :meth:`consume` does a SAMLResponse. The ``wctx`` the IdP echoes names the sign-in this
        SP started (bound to its browser, one use); without one the token is unsolicited, which
        only an IdP-initiated-friendly tenant accepts."""
        settings = await self.settings(tenant)
        details: dict[str, Any] = {"protocol": "wsfed"}
        endpoints = await self._endpoints(tenant, origin, settings, now, **details)
        action = form.get("wa")
        problem = (
            f"this tenant signs in with {settings.protocol}, not wsfed"
            if settings.protocol != "wsfed"
            else f"the POST is not a WS-Federation sign-in (wa={action!r})"
            if action != WSIGNIN
            else "the POST carries no wresult"
            if not form.get("wresult")
            else None
        )
        if problem is not None:
            raise await self._failed(tenant, origin, now, problem, **details)
        realm = endpoints.realm(settings)
        config = _verifier_config(settings, realm, endpoints.wsfed_reply_url)
        try:
            assertion = await asyncio.to_thread(consume_wresult, form["wresult"], config, now)
        except SamlRejected as rejected:
            raise await self._failed(tenant, origin, now, rejected.reason, **details) from None
        context = form.get("wctx") or None
        if context and browser is None and not reposted:
            return RepostNeeded()
        details |= _assertion_details(assertion, solicited=context is not None)
        pending = await self._answered_request(
            tenant, origin, settings, context, "wsfed", browser, now, details
        )
        relay = pending.relay_state if pending else None
        return await self._admit_assertion(
            tenant, origin, settings, endpoints, assertion, pending, relay, now, details, "wsfed"
        )

    async def _admit_assertion(
        self,
        tenant: str,
        origin: Origin,
        settings: SsoSettings,
        endpoints: SpEndpoints,
        assertion: VerifiedAssertion,
        pending: PendingRequest | None,
        relay: str | None,
        now: datetime,
        details: dict[str, Any],
        protocol: Protocol,
    ) -> SignedIn | TestReport:
        """A verified SAML assertion (from a SAMLResponse or a WS-Federation token), used once
        (the replay cache), admitted as the identity it vouches for."""
        if not await self.repository.consume_assertion(
            tenant, assertion.issuer, assertion.assertion_id, assertion.expires
        ):
            raise await self._failed(
                tenant, origin, now, "the assertion was already used (replay)", **details
            )
        identity = VerifiedIdentity(
            protocol=protocol,
            issuer=assertion.issuer,
            subject_id=assertion.name_id,
            attributes=assertion.attributes,
            details=details,
        )
        test = pending is not None and pending.test
        return await self.admit(tenant, origin, settings, endpoints, identity, test, relay, now)

    # -- OpenID Connect ------------------------------------------------------------------------

    async def start_oidc(
        self,
        tenant: str,
        origin: Origin,
        relay_state: str | None,
        test_ticket: str | None,
        browser: str,
        now: datetime,
    ) -> Started:
        """Send the browser to the IdP's authorization endpoint (the code flow, PKCE S256, a
        state and a nonce), remembering the request, bound to ``browser``, for its callback.
        A valid admin test ticket makes it a test sign-in, as for SAML."""
        settings, test, endpoints = await self._starting(tenant, origin, test_ticket, now, "oidc")
        details = {"protocol": "oidc", "flow": "sp", "issuer": settings.oidc.issuer}
        discovery = await self._discovery(tenant, origin, settings, now, details)
        authorization = oidc.new_authorization()
        await self.repository.remember_request(
            tenant,
            PendingRequest(
                id=authorization.state,
                relay_state=safe_relay(relay_state, endpoints.home_path),
                test=test,
                browser=browser_digest(browser),
                protocol="oidc",
                nonce=authorization.nonce,
                verifier=authorization.verifier,
                issuer=settings.oidc.issuer,
            ),
            expires=now + REQUEST_LIFETIME,
        )
        location = oidc.authorization_url(
            discovery, settings.oidc, endpoints.redirect_uri, authorization
        )
        return Started(location=location, endpoints=endpoints)

    async def oidc_callback(
        self,
        tenant: str,
        origin: Origin,
        query: Mapping[str, str],
        browser: str | None,
        now: datetime,
    ) -> SignedIn | TestReport:
        """The IdP's answer to an authorization request: the state taken out (one use, this
        browser's), the issuer the one the browser was sent to (mix-up, RFC 9207), the code
        used once and exchanged with the PKCE verifier, the ID token verified; then the
        identity signs in like any other (:meth:`admit`)."""
        settings = await self.settings(tenant)
        details: dict[str, Any] = {"protocol": "oidc", "flow": "sp"}
        endpoints = await self._endpoints(tenant, origin, settings, now, **details)

        async def refuse(reason: str) -> SignInFailed:
            return await self._failed(tenant, origin, now, reason, **details)

        if "error" in query:
            description = query.get("error_description")
            raise await refuse(
                f"the IdP answered {query['error']!r}" + (f": {description}" if description else "")
            )
        state, code = query.get("state"), query.get("code")
        if not state or not code:
            raise await refuse("the callback carries no state or no code")
        pending = await self.repository.take_request(tenant, state, now, protocol="oidc")
        if pending is None or pending.issuer is None:
            raise await refuse(
                "the state answers no outstanding sign-in of this SP "
                "(unknown, expired or already used)"
            )
        details["issuer"] = pending.issuer
        if not same_browser(pending.browser, browser):
            raise await refuse(
                "the state is not bound to this browser (its binding cookie is missing or "
                "another's): possible login CSRF"
            )
        if settings.protocol != "oidc" or settings.oidc.issuer != pending.issuer:
            raise await refuse(
                f"the sign-in was sent to the issuer {pending.issuer!r}, which is no longer "
                "this tenant's OIDC provider"
            )
        discovery = await self._discovery(tenant, origin, settings, now, details)
        answered_by = query.get("iss")
        if answered_by is not None and answered_by != pending.issuer:
            raise await refuse(
                f"mix-up: the authorization response comes from the issuer {answered_by!r}, "
                f"not {pending.issuer!r} where this sign-in was sent"
            )
        if answered_by is None and discovery.iss_parameter:
            raise await refuse(
                "mix-up: the IdP sends the iss parameter (RFC 9207), and this response has none"
            )
        code_id = "code:" + hashlib.sha256(code.encode()).hexdigest()
        if not await self.repository.consume_assertion(
            tenant, pending.issuer, code_id, now + REQUEST_LIFETIME
        ):
            raise await refuse("the authorization code was already used (replay)")
        try:
            identity = await self._oidc_identity(
                settings, discovery, pending, code, endpoints.redirect_uri, now
            )
        except oidc.OidcRejected as rejected:
            raise await refuse(rejected.reason) from None
        return await self.admit(
            tenant, origin, settings, endpoints, identity, pending.test, pending.relay_state, now
        )

    async def _discovery(
        self,
        tenant: str,
        origin: Origin,
        settings: SsoSettings,
        now: datetime,
        details: Mapping[str, Any],
    ) -> oidc.Discovery:
        """The tenant's IdP's discovery document, or a refusal saying why it could not be had."""
        try:
            return await self.oidc_providers.discovery(settings.oidc.issuer, now)
        except oidc.OidcRejected as rejected:
            raise await self._failed(tenant, origin, now, rejected.reason, **details) from None

    async def _oidc_identity(
        self,
        settings: SsoSettings,
        discovery: oidc.Discovery,
        pending: PendingRequest,
        code: str,
        redirect_uri: str,
        now: datetime,
    ) -> VerifiedIdentity:
        """Exchange the code (with the PKCE verifier) and verify the ID token it brings; the
        groups come from userinfo when the ID token has too many to carry them (overage)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": pending.verifier or "",
        }
        client: tuple[str, str] | None = (settings.oidc.client_id, settings.oidc.client_secret)
        if settings.oidc.client_auth == "private_key_jwt":
            client = None
            form |= {
                "client_id": settings.oidc.client_id,
                "client_assertion_type": oidc.CLIENT_ASSERTION_TYPE,
                "client_assertion": oidc.client_assertion(
                    settings.oidc, discovery.token_endpoint, now
                ),
            }
        tokens = await self.oidc_providers.http.post_form(
            discovery.token_endpoint, "token endpoint", form, client
        )
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str):
            raise oidc.OidcRejected("the token endpoint's answer has no id_token")
        access = access_token if isinstance(access_token, str) else None
        expected = oidc.Expected(
            issuer=discovery.issuer,
            client_id=settings.oidc.client_id,
            nonce=pending.nonce or "",
            skew=timedelta(seconds=settings.clock_skew_seconds),
            code=code,
            access_token=access,
        )
        claims = await oidc.verify_id_token(
            id_token, settings.oidc, expected, discovery, self.oidc_providers, now
        )
        groups = settings.oidc.claims.groups
        if groups and oidc.overage(claims, groups):
            claims = {
                **claims,
                groups: await self._userinfo_groups(discovery, claims, groups, access),
            }
        return VerifiedIdentity(
            protocol="oidc",
            issuer=discovery.issuer,
            subject_id=str(claims["sub"]),
            attributes=oidc.claim_values(claims),
            details={
                "protocol": "oidc",
                "flow": "sp",
                "issuer": discovery.issuer,
                "subject": str(claims["sub"]),
            },
        )

    async def _userinfo_groups(
        self,
        discovery: oidc.Discovery,
        claims: Mapping[str, Any],
        groups: str,
        access_token: str | None,
    ) -> Any:
        """The groups an overage left out of the ID token, read from userinfo, which must be
        about the same ``sub`` (OpenID Connect Core §5.3.2)."""
        if discovery.userinfo_endpoint is None or access_token is None:
            raise oidc.OidcRejected(
                "the ID token's groups are elsewhere (overage), and there is no userinfo "
                "endpoint or access token to read them from"
            )
        info = await self.oidc_providers.http.get_json(
            discovery.userinfo_endpoint, "userinfo", bearer=access_token
        )
        if info.get("sub") != claims["sub"]:
            raise oidc.OidcRejected("userinfo is about another subject than the ID token")
        return info.get(groups)

    # -- every protocol, once verified -----------------------------------------------------------

    async def admit(
        self,
        tenant: str,
        origin: Origin,
        settings: SsoSettings,
        endpoints: SpEndpoints,
        identity: VerifiedIdentity,
        test: bool,
        relay: str | None,
        now: datetime,
    ) -> SignedIn | TestReport:
        """The step every protocol ends in: an identity its IdP vouched for signs in (just in
        time provisioned, linked, seated, its groups assigned) and gets a session; in Test
        mode, only a report of whom it would sign in. Logged either way."""
        details = dict(identity.details)
        if not (settings.enabled or test):
            raise await self._failed(tenant, origin, now, "single sign-on is disabled", **details)
        try:
            profile = profile_of(identity, settings)
            if test:
                return await self._test_report(tenant, origin, settings, identity, profile, now)
            account = await self.jit.sign_in(
                origin.scope(tenant), identity.issuer, profile, settings, now
            )
        except SeatLimitExceeded as full:
            raise await self._failed(
                tenant, origin, now, str(full.detail), page="seats", **details
            ) from None
        except (AccountDeactivated, SignInRefused) as refused:
            raise await self._failed(tenant, origin, now, refused.reason, **details) from None
        redirect = safe_relay(relay, endpoints.home_path)
        await self._log(
            tenant,
            origin,
            now,
            "signed_in",
            **details,
            user=account.user_id,
            user_name=account.user_name,
            jit=account.action,
        )
        return await self._signed_in(
            tenant, account.user_id, account.user_name, identity.issuer, settings, now, redirect
        )

    async def _answered_request(
        self,
        tenant: str,
        origin: Origin,
        settings: SsoSettings,
        request_id: str | None,
        protocol: RequestProtocol,
        browser: str | None,
        now: datetime,
        details: dict[str, Any],
    ) -> PendingRequest | None:
        """The request a solicited answer names (a SAML InResponseTo, a WS-Federation wctx),
        taken out (one use) and started by this browser; None when unsolicited, which only an
        IdP-initiated-friendly tenant accepts. An answer posted from another browser burns the
        request all the same."""
        named = "InResponseTo" if protocol == "saml" else "wctx"
        if request_id is None:
            if not settings.allow_idp_initiated:
                raise await self._failed(
                    tenant,
                    origin,
                    now,
                    "unsolicited (IdP-initiated) responses are not allowed for this tenant",
                    **details,
                )
            return None
        pending = await self.repository.take_request(tenant, request_id, now, protocol)
        if pending is None:
            raise await self._failed(
                tenant,
                origin,
                now,
                f"{named} {request_id!r} answers no outstanding "
                f"request of this SP (unknown, expired or already used)",
                **details,
            )
        if not same_browser(pending.browser, browser):
            raise await self._failed(
                tenant,
                origin,
                now,
                f"the request {request_id!r} is not bound to this browser "
                "(its binding cookie is missing or another's): possible login CSRF",
                **details,
            )
        return pending

    async def _test_report(
        self,
        tenant: str,
        origin: Origin,
        settings: SsoSettings,
        identity: VerifiedIdentity,
        profile: Profile,
        now: datetime,
    ) -> TestReport:
        user = await self.jit.find(origin.scope(tenant), identity.issuer, profile)
        await self._log(
            tenant, origin, now, "test", **identity.details, user=None if user is None else user.id
        )
        return TestReport(
            identity=identity,
            profile=profile,
            user=user,
            jit=settings.jit,
            assigned_groups=tuple(g for g in profile.groups if settings.group_allowed(g)),
        )

    # -- password sign-in ----------------------------------------------------------------------

    async def password_sign_in(
        self, tenant: str, origin: Origin, user_name: str, password: str, now: datetime
    ) -> SignedIn:
        """Sign in with the password SCIM set; while the tenant enforces single sign-on, only
        its guests may (``SsoSettings.guest_user_type``).

        Every refusal looks the same to the browser, and an unknown user costs the same
        scrypt work as a wrong password, so neither reveals which accounts exist; nor does
        being refused as a non-guest, which is decided only once the password is right. After
        ``PASSWORD_FAILURES_ALLOWED`` failures in ``PASSWORD_LOCKOUT`` a user name is refused
        until the window has passed, so a password cannot be guessed at scrypt speed.
        """
        settings = await self.settings(tenant)
        details: dict[str, Any] = {"flow": "password", "user_name": user_name}
        if not settings.password_sign_in_open:
            raise await self._failed(
                tenant,
                origin,
                now,
                "password sign-in is off: single sign-on is enforced for this tenant, "
                "which has no guests (guest_user_type is null)",
                **details,
            )
        key = user_name.lower()
        failures = await self.repository.password_failures_since(
            tenant, key, now - PASSWORD_LOCKOUT
        )
        if failures >= PASSWORD_FAILURES_ALLOWED:
            raise await self._failed(
                tenant,
                origin,
                now,
                f"{failures} failed password sign-ins in {PASSWORD_LOCKOUT}: locked for now",
                **details,
            )
        user = await self.directory.user_named(tenant, user_name)
        stored = None if user is None else user.password_hash
        matches = await asyncio.to_thread(
            verify_password_sync, password, stored or unknown_user_hash()
        )
        if user is None or not stored or not matches:
            await self.repository.record_password_failure(tenant, key, now, now + PASSWORD_LOCKOUT)
            raise await self._failed(tenant, origin, now, "wrong user name or password", **details)
        await self.repository.clear_password_failures(tenant, key)
        if not user.active:
            raise await self._failed(
                tenant, origin, now, f"user {user_name!r} is deactivated", **details
            )
        guest = _guest(settings, user)
        if settings.enforced and not guest:
            raise await self._failed(
                tenant,
                origin,
                now,
                "password sign-in is off: single sign-on is enforced for this tenant, and "
                f"{user_name!r} is not a guest (userType {settings.guest_user_type!r})",
                **details,
            )
        await self._log(tenant, origin, now, "signed_in", **details, user=user.id, guest=guest)
        return await self._signed_in(
            tenant,
            user.id,
            user.user_name,
            PASSWORD_ISSUER,
            settings,
            now,
            home_path(tenant),
            credential(stored),
        )

    # -- the reset link ------------------------------------------------------------------------

    async def issue_reset_link(
        self,
        tenant: str,
        settings: SsoSettings,
        origin: Origin,
        user_id: str,
        lifetime: timedelta,
        now: datetime,
    ) -> ResetLink:
        """A one-time link for the user to set a password, valid for ``lifetime``, under the
        tenant's ``settings`` (as the admin request read them with the tenant).

        Refused (409) for a deactivated user, and while SSO is enforced for anyone but a
        guest: that password could not sign in, and a link planted then would be a way in
        the day enforcement is lifted that nobody asked for. When the IdP is down, the admin
        turns enforcement off first, then issues the links. Only the token's digest is
        stored; the log records the link's user and expiry, never the token.
        """
        user = await self.directory.user(tenant, user_id)
        if user is None:
            raise resource_not_found(USERS.endpoint, user_id)
        if not user.active:
            raise ConflictException(
                detail=f"user {user_id!r} is deactivated: reactivate it before a password reset"
            )
        if settings.enforced and not _guest(settings, user):
            raise ConflictException(
                detail="single sign-on is enforced for this tenant and the user is not a guest, "
                "so a password could not be used: turn enforcement off first "
                '(PATCH .../sso {"enforced": false})'
            )
        token = secrets.token_urlsafe(RESET_TOKEN_BYTES)
        expires = now + lifetime
        await self.repository.remember_reset(tenant, browser_digest(token), user.id, expires)
        await self._log(
            tenant,
            origin,
            now,
            "reset_link_issued",
            flow="password_reset",
            user=user.id,
            user_name=user.user_name,
            expires=expires,
        )
        root = origin.sp_root(settings) or origin.root
        return ResetLink(
            url=f"{sp_endpoints(root, tenant).password_reset_url}#{token}",
            expires=expires,
            user_id=user.id,
            user_name=user.user_name,
        )

    async def reset_password(
        self, tenant: str, origin: Origin, token: str, password: str, now: datetime
    ) -> str:
        """Consume a reset link and set the password it was issued for (through SCIM's own
        rules, as a PATCH of ``password``); every session of the user ends. Answers the user's
        name. A link that is unknown, used, expired, for a user gone or deactivated, or (SSO
        enforced since it was issued) for a user who is not a guest is refused, and spent."""
        settings = await self.settings(tenant)
        details: dict[str, Any] = {"flow": "password_reset"}
        taken = await self.repository.take_reset(tenant, browser_digest(token))
        if taken is None:
            raise await self._failed(
                tenant, origin, now, "the reset link is unknown or already used", **details
            )
        details["user"] = taken.user
        if taken.expires <= now:
            raise await self._failed(
                tenant,
                origin,
                now,
                f"the reset link expired at {taken.expires.isoformat()}",
                **details,
            )
        user = await self.directory.user(tenant, taken.user)
        if user is None or not user.active:
            state = "deleted" if user is None else "deactivated"
            raise await self._failed(
                tenant, origin, now, f"the reset link's user is {state}", **details
            )
        details["user_name"] = user.user_name
        if settings.enforced and not _guest(settings, user):
            raise await self._failed(
                tenant,
                origin,
                now,
                "single sign-on was enforced after the reset link was issued, and the user is "
                "not a guest: a password could not be used",
                **details,
            )
        operation = {"op": "replace", "path": "password", "value": password}
        await self.provisioning.patch(
            USERS,
            origin.scope(tenant),
            user.id,
            {"schemas": [PatchOp.__schema__], "Operations": [operation]},
            selection=None,
        )
        ended = await self.sessions.revoke_user(tenant, user.id)
        await self._log(tenant, origin, now, "password_set", **details, sessions_ended=ended)
        return user.user_name

    # -- sessions ------------------------------------------------------------------------------

    async def _signed_in(
        self,
        tenant: str,
        user_id: str,
        user_name: str,
        issuer: str,
        settings: SsoSettings,
        now: datetime,
        redirect: str,
        credential: str | None = None,
    ) -> SignedIn:
        """A new session for the user, signed in through ``issuer`` (with the password whose
        ``credential`` is given, if by a password), and where to send the browser."""
        token = await self.sessions.open(
            tenant, user_id, issuer, settings.session_ttl_seconds, now, credential
        )
        return SignedIn(
            token=token,
            ttl_seconds=settings.session_ttl_seconds,
            user_name=user_name,
            redirect=redirect,
        )

    # -- the log -------------------------------------------------------------------------------

    async def _failed(
        self,
        tenant: str,
        origin: Origin,
        now: datetime,
        reason: str,
        page: FailurePage = "failed",
        **details: Any,
    ) -> SignInFailed:
        await self._log(tenant, origin, now, "refused", reason=reason, **details)
        return SignInFailed(reason, page)

    async def record_error(
        self, tenant: str, origin: Origin, now: datetime, error: Exception
    ) -> None:
        """An unforeseen failure, for the admin; the browser gets the generic page as usual."""
        reason = f"unexpected {type(error).__name__}: {error}"
        await self._log(tenant, origin, now, "error", reason=reason)

    async def record(
        self, tenant: str, origin: Origin, now: datetime, outcome: str, **details: Any
    ) -> None:
        """Log a decision of a flow built on these steps (cross-instance sign-in)."""
        await self._log(tenant, origin, now, outcome, **details)

    async def _log(
        self, tenant: str, origin: Origin, now: datetime, outcome: str, **details: Any
    ) -> None:
        """Record a sign-in attempt in the tenant's log, and count it (by protocol and outcome)."""
        protocol = details.get("protocol") or (
            "password" if details.get("flow") in PASSWORD_FLOWS else "saml"
        )
        metrics.SIGN_INS.labels(protocol=protocol, outcome=outcome).inc()
        await self.repository.record(
            tenant,
            {
                "at": now,
                "outcome": outcome,
                "client": origin.client,
                "request_id": origin.request_id,
                **details,
            },
        )


def _guest(settings: SsoSettings, user: UserRecord) -> bool:
    """Whether the user is one of the tenant's guests, by the ``userType`` its IdP provisioned."""
    return settings.is_guest(user.attributes.get("userType"))


def _assertion_details(assertion: VerifiedAssertion, *, solicited: bool) -> dict[str, Any]:
    """What the SSO log says of a verified assertion: the flow, and which message it was."""
    return {
        "flow": "sp" if solicited else "idp",
        "issuer": assertion.issuer,
        "name_id": assertion.name_id,
        "assertion_id": assertion.assertion_id,
    }


def _verifier_config(settings: SsoSettings, audience: str, recipient: str) -> VerifierConfig:
    """What an assertion must match for this tenant: its audience (the SP's entity ID, or the
    WS-Federation realm), the URL it is posted to, and the tenant's IdP."""
    return VerifierConfig(
        sp_entity_id=audience,
        acs_url=recipient,
        idp_entity_id=settings.idp_entity_id,
        certificates=settings.certificates,
        require_signed_assertion=settings.require_signed_assertion,
        name_id_format=settings.name_id_format,
        skew=timedelta(seconds=settings.clock_skew_seconds),
    )
