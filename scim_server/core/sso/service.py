"""Single sign-on for every tenant: the steps a sign-in takes, in order, free of HTTP.

A sign-in is either SP-initiated (``start`` issues an AuthnRequest, remembered so the
response can be bound to it once) or IdP-initiated (an unsolicited response, if the
tenant allows them). ``consume`` then verifies the response, rules out a replay,
provisions the user just in time and opens a session. Every outcome, good or bad, goes
to the tenant's SSO log with its precise reason; callers show browsers a generic page.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from samlkit.authn_request import AuthnRequest, build_authn_request, new_request_id
from samlkit.bindings import encode_redirect
from scim_server import metrics
from scim_server.core.directory import UserRecord
from scim_server.core.errors import SeatLimitExceeded
from scim_server.core.passwords import hash_password_sync, verify_password_sync
from scim_server.core.provisioning import Provisioning
from scim_server.core.scope import Scope
from scim_server.core.sso.jit import (
    AccountDeactivated,
    JustInTime,
    Profile,
    SignInRefused,
    profile_of,
)
from scim_server.core.sso.sessions import Session, SessionCodec, browser_digest, same_browser
from scim_server.core.sso.settings import (
    Branding,
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
)
from scim_server.storage.events import SSO
from scim_server.storage.sso import PendingRequest, SsoRepository

REQUEST_LIFETIME = timedelta(minutes=10)
PASSWORD_ISSUER = "password"
"""The session's ``idp`` for a password sign-in: no identity provider vouched for it."""
PASSWORD_FAILURES_ALLOWED = 5
PASSWORD_LOCKOUT = timedelta(minutes=15)


@functools.cache
def unknown_user_hash() -> str:
    """Checked against when the user does not exist, so that case costs a real scrypt too;
    made on first use, not at import, since scrypt is deliberately slow."""
    return hash_password_sync(secrets.token_urlsafe(16))


MAX_RELAY_STATE = 1024

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
class TestReport:
    """What a test sign-in found: the assertion as the SP read it, and whom it would sign in."""

    assertion: VerifiedAssertion
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


class SingleSignOn:
    def __init__(
        self, repository: SsoRepository, sessions: SessionCodec, provisioning: Provisioning
    ) -> None:
        self.repository = repository
        self.stored_settings = SettingsStore(repository)
        self.sessions = sessions
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
        settings = await self.settings(tenant)
        test = test_ticket is not None
        if test and not self.sessions.valid_test_ticket(test_ticket, tenant):
            raise await self._failed(
                tenant, origin, now, "the test sign-in link is invalid or has expired", flow="sp"
            )
        if not (settings.ready or (test and settings.idp_sso_url and settings.certificates)):
            raise await self._failed(
                tenant, origin, now, "single sign-on is not enabled or not configured", flow="sp"
            )
        endpoints = await self._endpoints(tenant, origin, settings, now, flow="sp")
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
        separator = "&" if "?" in settings.idp_sso_url else "?"
        location = settings.idp_sso_url + separator + urllib.parse.urlencode(query)
        return Started(location=location, endpoints=endpoints)

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
        encoded = form.get("SAMLResponse")
        if not encoded:
            raise await self._failed(tenant, origin, now, "the POST carries no SAMLResponse")
        config = VerifierConfig(
            sp_entity_id=endpoints.entity_id,
            acs_url=endpoints.acs_url,
            idp_entity_id=settings.idp_entity_id,
            certificates=settings.certificates,
            require_signed_assertion=settings.require_signed_assertion,
            name_id_format=settings.name_id_format,
            skew=timedelta(seconds=settings.clock_skew_seconds),
        )
        try:
            # 1-2 ms of signature checks per response: off the loop, so sign-ins don't stall it.
            assertion = await asyncio.to_thread(consume_response, encoded, config, now)
        except SamlRejected as rejected:
            raise await self._failed(tenant, origin, now, rejected.reason) from None
        if assertion.in_response_to and browser is None and not reposted:
            return RepostNeeded()
        flow = "sp" if assertion.in_response_to else "idp"
        details: dict[str, Any] = {
            "flow": flow,
            "issuer": assertion.issuer,
            "name_id": assertion.name_id,
            "assertion_id": assertion.assertion_id,
        }
        pending = await self._answered_request(
            tenant, origin, settings, assertion, browser, now, details
        )
        if not await self.repository.consume_assertion(
            tenant, assertion.issuer, assertion.assertion_id, assertion.expires
        ):
            raise await self._failed(
                tenant, origin, now, "the assertion was already used (replay)", **details
            )
        test = pending is not None and pending.test
        if not (settings.enabled or test):
            raise await self._failed(tenant, origin, now, "single sign-on is disabled", **details)
        try:
            profile = profile_of(assertion, settings)
            if test:
                return await self._test_report(tenant, origin, settings, assertion, profile, now)
            account = await self.jit.sign_in(
                origin.scope(tenant), assertion.issuer, profile, settings, now
            )
        except SeatLimitExceeded as full:
            raise await self._failed(
                tenant, origin, now, str(full.detail), page="seats", **details
            ) from None
        except (AccountDeactivated, SignInRefused) as refused:
            raise await self._failed(tenant, origin, now, refused.reason, **details) from None
        relay = pending.relay_state if pending else form.get("RelayState")
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
        return self._signed_in(
            tenant, account.user_id, account.user_name, assertion.issuer, settings, now, redirect
        )

    async def _answered_request(
        self,
        tenant: str,
        origin: Origin,
        settings: SsoSettings,
        assertion: VerifiedAssertion,
        browser: str | None,
        now: datetime,
        details: dict[str, Any],
    ) -> PendingRequest | None:
        """The AuthnRequest a solicited response answers, taken out (one use) and started by
        this browser; None when unsolicited, which only an IdP-initiated-friendly tenant
        accepts. A response posted from another browser burns the request all the same."""
        if assertion.in_response_to is None:
            if not settings.allow_idp_initiated:
                raise await self._failed(
                    tenant,
                    origin,
                    now,
                    "unsolicited (IdP-initiated) responses are not allowed for this tenant",
                    **details,
                )
            return None
        pending = await self.repository.take_request(tenant, assertion.in_response_to, now)
        if pending is None:
            raise await self._failed(
                tenant,
                origin,
                now,
                f"InResponseTo "
                f"{assertion.in_response_to!r} answers no outstanding "
                f"request of this SP (unknown, expired or already used)",
                **details,
            )
        if not same_browser(pending.browser, browser):
            raise await self._failed(
                tenant,
                origin,
                now,
                f"the request {assertion.in_response_to!r} is not bound to this browser "
                "(its binding cookie is missing or another's): possible login CSRF",
                **details,
            )
        return pending

    async def _test_report(
        self,
        tenant: str,
        origin: Origin,
        settings: SsoSettings,
        assertion: VerifiedAssertion,
        profile: Profile,
        now: datetime,
    ) -> TestReport:
        user = await self.jit.find(origin.scope(tenant), assertion.issuer, profile.subject)
        await self._log(
            tenant,
            origin,
            now,
            "test",
            flow="sp",
            issuer=assertion.issuer,
            name_id=assertion.name_id,
            assertion_id=assertion.assertion_id,
            user=None if user is None else user.id,
        )
        return TestReport(
            assertion=assertion,
            profile=profile,
            user=user,
            jit=settings.jit,
            assigned_groups=tuple(g for g in profile.groups if settings.group_allowed(g)),
        )

    # -- password sign-in ----------------------------------------------------------------------

    async def password_sign_in(
        self, tenant: str, origin: Origin, user_name: str, password: str, now: datetime
    ) -> SignedIn:
        """Sign in with the password SCIM set, unless the tenant enforces single sign-on.

        Every refusal looks the same to the browser, and an unknown user costs the same
        scrypt work as a wrong password, so neither reveals which accounts exist. After
        ``PASSWORD_FAILURES_ALLOWED`` failures in ``PASSWORD_LOCKOUT`` a user name is refused
        until the window has passed, so a password cannot be guessed at scrypt speed.
        """
        settings = await self.settings(tenant)
        details: dict[str, Any] = {"flow": "password", "user_name": user_name}
        if settings.enforced:
            raise await self._failed(
                tenant,
                origin,
                now,
                "password sign-in is off: single sign-on is enforced for this tenant",
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
        await self._log(tenant, origin, now, "signed_in", **details, user=user.id)
        return self._signed_in(
            tenant, user.id, user.user_name, PASSWORD_ISSUER, settings, now, home_path(tenant)
        )

    # -- sessions ------------------------------------------------------------------------------

    def _signed_in(
        self,
        tenant: str,
        user_id: str,
        user_name: str,
        issuer: str,
        settings: SsoSettings,
        now: datetime,
        redirect: str,
    ) -> SignedIn:
        """A session for the user, signed in through ``issuer``, and where to send the browser."""
        token = self.sessions.encode_session(
            tenant, user_id, user_name, issuer, settings.session_ttl_seconds, now
        )
        return SignedIn(
            token=token,
            ttl_seconds=settings.session_ttl_seconds,
            user_name=user_name,
            redirect=redirect,
        )

    async def session(self, tenant: str, cookie: str | None) -> Session | None:
        """The session a cookie proves, while its user still exists and is active."""
        session = self.sessions.decode_session(cookie, tenant)
        if session is None:
            return None
        user = await self.directory.user(tenant, session.user_id)
        if user is None or not user.active:
            return None
        return session

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

    async def _log(
        self, tenant: str, origin: Origin, now: datetime, outcome: str, **details: Any
    ) -> None:
        """Record a sign-in attempt in the tenant's log, and count it (by protocol and outcome)."""
        protocol = "password" if details.get("flow") == "password" else "saml"
        metrics.SIGN_INS.labels(protocol=protocol, outcome=outcome).inc()
        await self.repository.record(
            tenant, {"at": now, "outcome": outcome, "client": origin.client, **details}
        )
