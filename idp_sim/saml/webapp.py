"""The simulated SAML IdP as an aiohttp app: metadata, SSO endpoints, sign-in and launch pages.

It hosts one or more applications, each an Okta- or JumpCloud-shaped :class:`IdpShape` bound to
one registered service provider. As at the real IdPs, the response only ever goes to the ACS URL
registered for that SP: an AuthnRequest from another issuer or naming another ACS gets an IdP
error page, never a post somewhere else.

Routes (per app, from its shape): ``GET {metadata_path}``; ``GET|POST {sso_path}`` with a
``SAMLRequest`` (HTTP-Redirect or HTTP-POST binding) for SP-initiated sign-in, and a plain GET on
it for IdP-initiated sign-in; for Okta also ``GET /home/{app}/{key}`` (the dashboard tile link).
Per OpenID Connect app (``idp_sim.oidc.webapp``): discovery, keys, authorize, token, userinfo.
Per WS-Federation app (``idp_sim.wsfed.webapp``): the passive endpoint and federation metadata.
Shared: ``GET /`` (launch page), ``GET|POST /signin`` (pick a person), ``GET /signout``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from idp_sim.directory import Directory, DirectoryUser
from idp_sim.oidc.webapp import HostedOidcApp, OidcEndpoints, OidcPending, base_url
from idp_sim.saml.pages import AppTile, error_page, launch_page, signin_page
from idp_sim.saml.response import IdentityProvider, SamlSubject, ServiceProvider
from idp_sim.saml.sessions import IdpSession, PendingLogins, SessionCookies
from idp_sim.saml.shapes import IdpShape
from idp_sim.wsfed.webapp import (
    WSIGNIN,
    WSIGNOUT,
    HostedWsFedApp,
    ServedWsFedApp,
    WsFedPending,
)
from samlkit.authn_request import AuthnRequest, parse_authn_request
from samlkit.bindings import decode_post, decode_redirect, post_form
from samlkit.certs import SigningKey
from samlkit.namespaces import UNSPECIFIED_11, UNSPECIFIED_20

MAX_RELAY_STATE = 2048
MAX_LISTED_USERS = 200
_RESERVED_PATHS = frozenset({"/", "/signin", "/signout"})
_HTML_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}


@dataclass(frozen=True)
class HostedApp:
    """One application at the IdP: its vendor shape and the one SP it is registered for.

    ``name`` (tile and test id) defaults to the app segment of the SSO path: Okta's app name,
    JumpCloud's custom value.
    """

    shape: IdpShape
    sp: ServiceProvider
    default_relay_state: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        segments = self.shape.sso_path.strip("/").split("/")
        return self.name or segments[min(1, len(segments) - 1)]

    @property
    def launch_path(self) -> str:
        """Okta's tiles link to ``/home/{app}/{key}``; JumpCloud launches on the SSO URL itself."""
        sso = self.shape.sso_path
        if self.shape.vendor == "okta" and sso.startswith("/app/") and sso.endswith("/sso/saml"):
            return "/home/" + sso.removeprefix("/app/").removesuffix("/sso/saml")
        return sso


@dataclass(frozen=True)
class IdpServerConfig:
    """Everything the IdP web app serves: one signing key, the people, the hosted apps.

    ``public_url`` is the origin browsers use (``https://idp.example``); without it, URLs in
    metadata are built from each request's scheme and Host.
    """

    key: SigningKey
    directory: Directory
    apps: Sequence[HostedApp]
    public_url: str | None = None
    oidc_apps: Sequence[HostedOidcApp] = ()
    wsfed_apps: Sequence[HostedWsFedApp] = ()


@dataclass(frozen=True)
class PendingLogin:
    """A sign-in waiting for a person: what the eventual response must answer."""

    app: HostedApp
    request_id: str | None
    relay_state: str | None
    force_authn: bool = False


@dataclass(frozen=True)
class ServedApp:
    """A hosted app with the IdentityProvider that signs its responses (key loaded once)."""

    app: HostedApp
    idp: IdentityProvider


Pending = PendingLogin | OidcPending | WsFedPending
"""A sign-in waiting for a person, whichever protocol asked."""


@dataclass
class IdpState:
    """The running IdP: config, signers per app, routes to apps, sessions, waiting sign-ins."""

    config: IdpServerConfig
    oidc: OidcEndpoints
    sso: dict[str, ServedApp] = field(default_factory=dict)
    metadata: dict[str, ServedApp] = field(default_factory=dict)
    launch: dict[str, ServedApp] = field(default_factory=dict)
    wsfed: dict[str, ServedWsFedApp] = field(default_factory=dict)
    wsfed_metadata: dict[str, ServedWsFedApp] = field(default_factory=dict)
    cookies: SessionCookies = field(default_factory=SessionCookies)
    pending: PendingLogins[Pending] = field(default_factory=PendingLogins)

    @property
    def vendors(self) -> list[str]:
        saml = {hosted.app.shape.vendor for hosted in self.sso.values()}
        wsfed = {hosted.app.shape.vendor for hosted in self.wsfed.values()}
        return sorted(saml | wsfed | {app.shape.vendor for app in self.oidc.apps})


IDP_STATE = web.AppKey("idp_state", IdpState)


def create_idp_app(config: IdpServerConfig) -> web.Application:
    """The IdP web app; ValueError when two apps would share a name or a path."""
    state = _build_state(config)
    app = web.Application()
    app[IDP_STATE] = state
    app.router.add_get("/", _launch_page)
    app.router.add_get("/signin", _signin_page)
    app.router.add_post("/signin", _signin)
    app.router.add_get("/signout", _signout)
    for path in state.sso:
        app.router.add_get(path, _sso)
        app.router.add_post(path, _sso)
    for path in state.metadata:
        app.router.add_get(path, _metadata)
    for path in state.launch.keys() - state.sso.keys():
        app.router.add_get(path, _launch)
    for hosted in config.oidc_apps:
        shape = hosted.shape
        app.router.add_get(shape.discovery_path, state.oidc.discovery)
        app.router.add_get(shape.keys_path, state.oidc.keys)
        app.router.add_get(shape.authorize_path, _oidc_authorize)
        app.router.add_post(shape.token_path, state.oidc.token)
        app.router.add_get(shape.userinfo_path, state.oidc.userinfo)
    for path in state.wsfed:
        app.router.add_get(path, _wsfed)
    for path in state.wsfed_metadata:
        app.router.add_get(path, _metadata)
    return app


def _build_state(config: IdpServerConfig) -> IdpState:
    if not (config.apps or config.oidc_apps or config.wsfed_apps):
        raise ValueError("the IdP needs at least one hosted app")
    state = IdpState(config, OidcEndpoints(config.oidc_apps, config.key, config.public_url))
    names: set[str] = {app.label for app in config.oidc_apps}
    if len(names) != len(config.oidc_apps):
        raise ValueError("two hosted OIDC apps share a name; give one a name")
    for app in config.apps:
        hosted = ServedApp(app, IdentityProvider(app.shape, config.key))
        if app.label in names:
            raise ValueError(f"two hosted apps are named {app.label!r}; give one a name")
        names.add(app.label)
        for table, path in (
            (state.sso, app.shape.sso_path),
            (state.metadata, app.shape.metadata_path),
            (state.launch, app.launch_path),
        ):
            if path in _RESERVED_PATHS or path in table:
                raise ValueError(f"path {path} of app {app.label!r} is already taken")
            table[path] = hosted
    for wsfed in config.wsfed_apps:
        served = ServedWsFedApp.of(wsfed, config.key)
        if wsfed.label in names:
            raise ValueError(f"two hosted apps are named {wsfed.label!r}; give one a name")
        names.add(wsfed.label)
        for routes, path in (
            (state.wsfed, wsfed.shape.sso_path),
            (state.wsfed_metadata, wsfed.shape.metadata_path),
        ):
            if path in _RESERVED_PATHS or path in routes:
                raise ValueError(f"path {path} of app {wsfed.label!r} is already taken")
            routes[path] = served
    paths = [*state.sso, *state.metadata, *state.wsfed, *state.wsfed_metadata]
    if len(set(paths)) != len(paths):
        raise ValueError("an SSO path of one app is the metadata path of another")
    return state


# ---- handlers ----------------------------------------------------------------------------------
async def _metadata(request: web.Request) -> web.Response:
    """An app's metadata: SAML metadata, or a WS-Federation STS's federation metadata."""
    state, path = request.app[IDP_STATE], _route_path(request)
    hosted = state.metadata[path] if path in state.metadata else state.wsfed_metadata[path]
    return web.Response(
        body=hosted.idp.metadata_xml(_base_url(request)), content_type="application/xml"
    )


async def _sso(request: web.Request) -> web.StreamResponse:
    """SP-initiated sign-in, or IdP-initiated when a plain GET carries no SAMLRequest."""
    hosted = request.app[IDP_STATE].sso[_route_path(request)]
    redirect_binding = request.method != "POST"
    values = request.query if redirect_binding else await request.post()
    encoded = _text(values, "SAMLRequest")
    if encoded is None:
        if redirect_binding:
            return _start(request, _unsolicited(hosted.app))
        return _error(400, "Missing SAML request", "The POST carried no SAMLRequest field.")
    relay_state = _text(values, "RelayState")
    if relay_state is not None and len(relay_state) > MAX_RELAY_STATE:
        return _error(
            400, "Invalid SAML request", f"RelayState is longer than {MAX_RELAY_STATE} characters."
        )
    try:
        xml = decode_redirect(encoded) if redirect_binding else decode_post(encoded)
        authn = parse_authn_request(xml)
    except ValueError as exc:
        return _error(400, "Invalid SAML request", f"The SAMLRequest could not be read: {exc}.")
    problem = _refusal(authn, hosted.app)
    if problem:
        return _error(400, "SAML request refused", problem)
    return _start(request, PendingLogin(hosted.app, authn.id, relay_state, authn.force_authn))


async def _wsfed(request: web.Request) -> web.StreamResponse:
    """The passive endpoint: a sign-in for the registered realm, or a sign-out."""
    served = request.app[IDP_STATE].wsfed[_route_path(request)]
    query = request.query
    action = query.get("wa")
    if action == WSIGNOUT:
        response = _redirect(served.sign_out_return(query.get("wreply")) or "/")
        response.del_cookie(SessionCookies.name(served.app.shape.vendor), path="/")
        return response
    if action != WSIGNIN:
        return _error(400, "Invalid WS-Federation request", f"wa={action!r} is not supported.")
    problem = served.refusal(query.get("wtrealm"), query.get("wreply"))
    if problem:
        return _error(400, "WS-Federation request refused", problem)
    return _start(request, WsFedPending(served.app, query.get("wctx")))


async def _oidc_authorize(request: web.Request) -> web.StreamResponse:
    """An OIDC authorization request: refused, or on to the person (as a SAML request is)."""
    authorization = request.app[IDP_STATE].oidc.authorization(request)
    if isinstance(authorization, web.Response):
        return authorization
    return _start(request, authorization)


async def _launch(request: web.Request) -> web.StreamResponse:
    """The dashboard tile: an unsolicited response to the app's registered ACS."""
    hosted = request.app[IDP_STATE].launch[_route_path(request)]
    return _start(request, _unsolicited(hosted.app))


async def _signin_page(request: web.Request) -> web.Response:
    token = request.query.get("txn", "")
    pending = request.app[IDP_STATE].pending.get(token)
    if pending is None:
        return _expired()
    return _signin_form(request, token, pending)


async def _signin(request: web.Request) -> web.StreamResponse:
    state = request.app[IDP_STATE]
    form = await request.post()
    token = _text(form, "txn") or ""
    pending = state.pending.get(token)
    if pending is None:
        return _expired()
    login = (_text(form, "login") or "").strip()
    user = _find_user(state.config.directory, login)
    if user is None:
        return _signin_form(request, token, pending, error=f"No user with the login {login!r}.")
    state.pending.discard(token)
    return _complete(request, pending, user, IdpSession.start(user.login), fresh=True)


async def _signout(request: web.Request) -> web.Response:
    response = _redirect("/")
    for vendor in request.app[IDP_STATE].vendors:
        response.del_cookie(SessionCookies.name(vendor), path="/")
    return response


async def _launch_page(request: web.Request) -> web.Response:
    state = request.app[IDP_STATE]
    base = _base_url(request)
    tiles = [
        AppTile(
            name=hosted.app.label,
            vendor=hosted.app.shape.vendor,
            sp_entity_id=hosted.app.sp.entity_id,
            launch_url=base + hosted.app.launch_path,
            sso_url=base + hosted.app.shape.sso_path,
            metadata_url=base + hosted.app.shape.metadata_path,
        )
        for hosted in state.sso.values()
    ]
    sessions = {
        vendor: session.login
        for vendor in state.vendors
        if (session := _session(request, vendor)) is not None
    }
    return _html(launch_page(tiles, sessions))


# ---- the sign-in flow --------------------------------------------------------------------------
def _unsolicited(app: HostedApp) -> PendingLogin:
    return PendingLogin(app, request_id=None, relay_state=app.default_relay_state)


def _refusal(authn: AuthnRequest, app: HostedApp) -> str | None:
    """Why this IdP will not answer, or None: an SP only ever gets its own registered ACS."""
    if authn.issuer != app.sp.entity_id:
        return (
            f"The request's issuer {authn.issuer!r} is not the service provider registered "
            f"for {app.label!r}."
        )
    if authn.acs_url is not None and authn.acs_url != app.sp.acs_url:
        return (
            f"The AssertionConsumerServiceURL {authn.acs_url!r} is not the ACS URL "
            f"registered for {app.label!r}."
        )
    requested = authn.name_id_format
    if requested not in (None, UNSPECIFIED_11, UNSPECIFIED_20, app.shape.name_id_format):
        return (
            f"The NameIDPolicy format {requested!r} does not match the NameID format "
            f"{app.shape.name_id_format!r} configured for {app.label!r}."
        )
    return None


def _start(request: web.Request, pending: Pending) -> web.StreamResponse:
    """Answer at once for a signed-in browser, otherwise send the person to the sign-in page."""
    state = request.app[IDP_STATE]
    session = _session(request, pending.app.shape.vendor)
    user = _find_user(state.config.directory, session.login) if session else None
    if session is not None and user is not None and not pending.force_authn:
        return _complete(request, pending, user, session, fresh=False)
    return _redirect(f"/signin?txn={state.pending.add(pending)}")


def _complete(
    request: web.Request,
    pending: Pending,
    user: DirectoryUser,
    session: IdpSession,
    *,
    fresh: bool,
) -> web.Response:
    """The auto-posting form to the registered ACS (SAML) or reply URL (WS-Federation), or
    the redirect with a code (OIDC); or a refusal for a deactivated person."""
    state = request.app[IDP_STATE]
    app = pending.app
    cookie = SessionCookies.name(app.shape.vendor)
    if not user.active:
        response = _error(
            403,
            "Account deactivated",
            f"The account {user.login} is deactivated in the directory and cannot "
            "sign in. Ask your administrator.",
        )
        response.del_cookie(cookie, path="/")
        return response
    subject = SamlSubject.from_directory(user, groups=_group_names(state.config.directory, user))
    if isinstance(pending, OidcPending):
        response = state.oidc.answer(request, pending, subject)
    elif isinstance(pending, WsFedPending):
        served = state.wsfed[pending.app.shape.sso_path]
        response = _html(served.answer(pending, subject))
    else:
        response = _saml_answer(state, pending, subject, session)
    if fresh:
        secure = _base_url(request).startswith("https://")
        # Lax keeps the session on the SP's top-level redirect; cross-site POST-binding requests
        # need None, which browsers only accept on Secure cookies.
        response.set_cookie(
            cookie,
            state.cookies.encode(app.shape.vendor, session),
            path="/",
            httponly=True,
            secure=secure,
            samesite="None" if secure else "Lax",
        )
    return response


def _saml_answer(
    state: IdpState, pending: PendingLogin, subject: SamlSubject, session: IdpSession
) -> web.Response:
    """The auto-posting form that carries the signed response to the app's registered ACS."""
    app = pending.app
    hosted = state.sso[app.shape.sso_path]
    fields = {
        "SAMLResponse": hosted.idp.response_b64(
            subject, app.sp, in_response_to=pending.request_id, session_index=session.session_id
        )
    }
    if pending.relay_state is not None:
        fields["RelayState"] = pending.relay_state
    return _html(post_form(app.sp.acs_url, fields, title=f"Signing in to {app.label}"))


def _signin_form(
    request: web.Request, token: str, pending: Pending, error: str | None = None
) -> web.Response:
    users = request.app[IDP_STATE].config.directory.users
    return _html(
        signin_page(
            vendor=pending.app.shape.vendor,
            app_name=pending.app.label,
            transaction=token,
            users=users[:MAX_LISTED_USERS],
            unlisted=max(0, len(users) - MAX_LISTED_USERS),
            error=error,
        )
    )


def _expired() -> web.Response:
    return _error(
        400,
        "Sign-in expired",
        "This sign-in is unknown or has expired. Start again from the application.",
    )


# ---- helpers -----------------------------------------------------------------------------------
def _session(request: web.Request, vendor: str) -> IdpSession | None:
    state = request.app[IDP_STATE]
    return state.cookies.decode(vendor, request.cookies.get(SessionCookies.name(vendor)))


def _find_user(directory: Directory, login: str) -> DirectoryUser | None:
    """Logins compare case-insensitively, as the IdPs' sign-in forms do."""
    wanted = login.casefold()
    if not wanted:
        return None
    return next((u for u in directory.users if u.login.casefold() == wanted), None)


def _group_names(directory: Directory, user: DirectoryUser) -> tuple[str, ...]:
    return tuple(group.name for group in directory.groups if user.id in group.member_ids)


def _text(values: Mapping[str, object], name: str) -> str | None:
    """A form or query value, or None when absent or not text (an uploaded file, say)."""
    value = values.get(name)
    return value if isinstance(value, str) else None


def _route_path(request: web.Request) -> str:
    """The path of the route that matched (its template, not the request's own path)."""
    resource = request.match_info.route.resource
    return request.path if resource is None else resource.canonical


def _base_url(request: web.Request) -> str:
    return base_url(request, request.app[IDP_STATE].config.public_url)


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **_HTML_HEADERS})


def _html(page: str, status: int = 200) -> web.Response:
    return web.Response(text=page, status=status, content_type="text/html", headers=_HTML_HEADERS)


def _error(status: int, title: str, message: str) -> web.Response:
    return _html(error_page(title, message), status)
