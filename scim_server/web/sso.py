"""The browser-facing single sign-on endpoints under ``/sso/{tenant}``.

These answer HTML, not SCIM JSON: a person is looking. Every failure becomes a page that says
what happened and the way out from where the person came (``sso_pages``); the precise reason
of a refused sign-in is in the tenant's SSO log.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from aiohttp import web
from scim2_models import SCIMException

from samlkit.metadata import sp_metadata
from scim_server.core.errors import (
    DatabaseUnavailable,
    MethodNotAllowedException,
    ServiceUnavailableException,
    error_status,
    scim_error,
)
from scim_server.core.sso.oidc import client_jwks
from scim_server.core.sso.service import (
    MIN_PASSWORD_LENGTH,
    REQUEST_LIFETIME,
    WSIGNOUT,
    WSIGNOUT_CLEANUP,
    Origin,
    RepostNeeded,
    SignedIn,
    SignInFailed,
    TestReport,
    acceptable_new_password,
)
from scim_server.core.sso.sessions import (
    FORM_COOKIE,
    binding_cookie_name,
    browser_key,
    cookie_name,
)
from scim_server.core.sso.settings import (
    SIGNED_OUT,
    Branding,
    Protocol,
    home_path,
    sp_endpoints,
)
from scim_server.core.tenancy import TENANT_NAME
from scim_server.web import sso_pages as pages
from scim_server.web.access_log import REQUEST_ID_KEY
from scim_server.web.responses import public_root
from scim_server.web.state import services

log = logging.getLogger(__name__)

SSO_PREFIX = "/sso/"
BROWSER_PREFIXES = (SSO_PREFIX, "/signin")
"""The paths a person looks at: every error there is a page, never SCIM JSON."""
SSO = "/sso/{tenant}"
NO_STORE = {"Cache-Control": "no-store"}
REPOSTED = "reposted"
"""The form field marking an IdP's POST that the ACS has had the browser post again."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HOST = re.compile(r"[a-z0-9.-]+")
"""A host name (as urlsplit gives it, lowercased) that is safe as it is in a CSP source."""


def html(
    body: str,
    brand: pages.Brand,
    status: int = 200,
    script_nonce: str | None = None,
    form_target: str | None = None,
) -> web.Response:
    """A page with a strict policy: no script at all, unless the one carrying ``script_nonce``;
    images from this site (the icon) and from the tenant's logo URL, exactly, and nowhere else;
    forms to this site, and to the origin ``form_target`` names (browsers apply form-action to
    the redirects a form's answer makes too), if any."""
    scripts = f"; script-src 'nonce-{script_nonce}'" if script_nonce else ""
    images = " ".join(["'self'", *([logo_source(brand.logo_url)] if brand.logo_url else [])])
    forms = " ".join(["'self'", *([form_target] if form_target else [])])
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            **NO_STORE,
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            f"img-src {images}; form-action {forms}; base-uri 'none'; "
            f"frame-ancestors 'none'{scripts}",
        },
    )


def origin_source(url: str) -> str | None:
    """The CSP source expression of ``url``'s origin, or None when its host is not a plain
    name (an admin-set URL goes into a header only when nothing in it can end a directive)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not HOST.fullmatch(host):
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def logo_source(url: str) -> str:
    """The CSP source expression that allows exactly the logo: its origin and path (a CSP
    source has no query). ``configure.logo_url`` admits only characters a CSP source may hold."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"


class UnreadableForm(Exception):
    """A POSTed form no browser sends: bytes that are not text in its charset, an unknown
    charset, or a broken multipart body."""


async def read_form(request: web.Request) -> dict[str, str]:
    """The text fields of the POSTed form (file parts are not read as fields)."""
    try:
        form = await request.post()
    except (ValueError, LookupError) as error:  # UnicodeDecodeError is a ValueError
        raise UnreadableForm(str(error)) from None
    return {key: value for key, value in form.items() if isinstance(value, str)}


class ForgedForm(Exception):
    """A form (a password, a reset, a sign-out) posted without a valid form token of this
    browser: a page of another site posting it (login CSRF: signing the person in as someone
    else, or out), or a page left open past the token's life. ``flow`` names the form, as the
    SSO log does."""

    def __init__(self, path: str, flow: str) -> None:
        super().__init__(
            f"the form posted to {path} carries no valid form token of this browser "
            "(posted from another site's page, or from a page open too long)"
        )
        self.flow = flow


def form_key(request: web.Request) -> str:
    """This browser's form key: the one its cookie holds, else a new one."""
    return browser_key(request.cookies.get(FORM_COOKIE))


def form_token(request: web.Request, key: str, action: str) -> str:
    """The token of the password form posting to ``action`` in the browser holding ``key``."""
    return services(request).sso.sessions.codec.form_token(key, action, _now())


def keep_form_key(response: web.StreamResponse, request: web.Request, key: str) -> None:
    """Give the browser its form key along with a page whose form token names it: HttpOnly,
    SameSite=Lax, Secure whenever the site is served over HTTPS, for the browser's session."""
    response.set_cookie(
        FORM_COOKIE,
        key,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=origin(request).root.startswith("https://"),
    )


def check_form_token(request: web.Request, form: Mapping[str, str], flow: str) -> None:
    """Refuse (``ForgedForm``) a password form that does not carry the token this browser was
    given for it."""
    codec = services(request).sso.sessions.codec
    key = request.cookies.get(FORM_COOKIE)
    if not codec.valid_form_token(form.get(pages.FORM_TOKEN), key, request.path):
        raise ForgedForm(request.path, flow)


def html_errors(refused: pages.Failure) -> Callable[[Handler], Handler]:
    """Turn every failure of the handler into a page (:func:`_failure_page`), never a JSON
    error or a stack trace: a person is looking. Redirects pass through. ``refused`` is the
    page of a sign-in refused at this route: a wrong password is not a refused IdP answer."""

    def decorate(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            tenant = request.match_info["tenant"]
            if not TENANT_NAME.fullmatch(tenant):
                # No tenant is called that, and the name would not even make a cookie name.
                return _failure(pages.Brand.of(tenant, None), tenant, pages.NO_SUCH_PAGE, 404)
            try:
                return await handler(request)
            except web.HTTPException as response:
                if response.status < 400:
                    raise
                return await _failure_page(request, tenant, refused, response)
            except Exception as error:
                return await _failure_page(request, tenant, refused, error)

        return wrapped

    return decorate


async def _failure_page(
    request: web.Request, tenant: str, refused: pages.Failure, error: Exception
) -> web.Response:
    """The page for ``error``: a refused sign-in gets ``refused``; a full seat count, the seat
    page; a tenant or a page that does not exist (or a method a page does not serve), the "not
    found" page; a form no browser sends, the "something went wrong" page with 400.

    Any other failure gets the status the SCIM API would answer (``scim_error``: 503 with
    ``Retry-After`` when the database is unavailable, 404 for a resource gone meanwhile, 500
    for a failure of the server's own) on the page that says so, and is written to the
    tenant's SSO log when the database can take it.
    """
    if isinstance(error, web.HTTPException):
        allow = (
            {"Allow": ", ".join(sorted(error.allowed_methods))}
            if isinstance(error, web.HTTPMethodNotAllowed)
            else {}
        )
        brand = await _failure_brand(request, tenant)
        return _status_page(brand, home_path(tenant), error.status, allow)
    if isinstance(error, UnreadableForm):
        return _failure(await _failure_brand(request, tenant), tenant, pages.BROKEN, 400)
    if isinstance(error, ForgedForm):
        await services(request).sso.record(
            tenant, origin(request), _now(), "refused", flow=error.flow, reason=str(error)
        )
        return _failure(await _failure_brand(request, tenant), tenant, pages.FORM_REFUSED, 403)
    if isinstance(error, SignInFailed):
        brand = await _failure_brand(request, tenant)
        if error.page == "seats":
            return html(pages.seat_limit_page(brand, home_path(tenant)), brand, 403)
        if error.page == "unknown":
            return _failure(brand, tenant, pages.NO_SUCH_PAGE, 404)
        return _failure(brand, tenant, refused, 403)
    failure = scim_error(error, f"{request.method} {request.path}")
    unavailable = isinstance(failure, DatabaseUnavailable)
    if unavailable:
        # Asking the database for the branding would only wait for it again.
        brand = pages.Brand.of(tenant, Branding())
    else:
        await _record_unexpected(request, tenant, error)
        brand = await _failure_brand(request, tenant)
    page = _failure(
        brand, tenant, pages.UNAVAILABLE if unavailable else pages.BROKEN, error_status(failure)
    )
    if isinstance(failure, ServiceUnavailableException):
        page.headers["Retry-After"] = str(failure.retry_after_seconds)
    return page


def refused_request_page(path: str, error: SCIMException) -> web.Response:
    """The page for a request under /sso/ refused before any handler ran (a URL, header or
    body over the limits, a path or method no route serves): the status of ``error``, in the
    default look (the database is not asked), with a way back to the tenant's sign-in page
    when the path names a tenant."""
    tenant = path.removeprefix(SSO_PREFIX).split("/", 1)[0]
    named = bool(TENANT_NAME.fullmatch(tenant))
    headers: dict[str, str] = {}
    if isinstance(error, MethodNotAllowedException):
        headers["Allow"] = ", ".join(sorted(error.allowed))
    elif isinstance(error, ServiceUnavailableException):
        headers["Retry-After"] = str(error.retry_after_seconds)
    brand = pages.Brand.of(tenant, Branding() if named else None)
    return _status_page(brand, home_path(tenant) if named else "/", error_status(error), headers)


def _status_page(
    brand: pages.Brand, home_url: str, status: int, headers: Mapping[str, str]
) -> web.Response:
    """The page of a request that failed with ``status`` rather than a sign-in refused: "not
    found" for a path or method nothing serves, else "something went wrong"."""
    failure = pages.NO_SUCH_PAGE if status in (404, 405) else pages.BROKEN
    page = html(pages.failure_page(brand, failure, home_url), brand, status)
    page.headers.update(headers)
    return page


def _failure(brand: pages.Brand, tenant: str, failure: pages.Failure, status: int) -> web.Response:
    return html(pages.failure_page(brand, failure, home_path(tenant)), brand, status)


async def _brand(request: web.Request, tenant: str) -> pages.Brand:
    """The tenant's brand, for a page of a request that went well so far."""
    return pages.Brand.of(tenant, await services(request).sso.branding(tenant))


async def _failure_brand(request: web.Request, tenant: str) -> pages.Brand:
    """Best effort: the tenant's brand, or the default one if reading it fails as well; a
    failure page must not fail."""
    try:
        return await _brand(request, tenant)
    except Exception as error:
        log.warning("could not read the branding of tenant %r: %s", tenant, error)
        return pages.Brand.of(tenant, Branding())


async def _record_unexpected(request: web.Request, tenant: str, error: Exception) -> None:
    """Best effort: the tenant's SSO log gets the failure too, unless writing it fails as well."""
    try:
        await services(request).sso.record_error(tenant, origin(request), _now(), error)
    except Exception as second:
        log.warning("could not record the failure in the SSO log: %s", second)


def origin(request: web.Request) -> Origin:
    """Where this server is reached (its SP URLs derive from it) and who is asking."""
    public_url = services(request).settings.public_url
    return Origin(
        root=public_root(request, public_url),
        client=request.remote,
        public_url=public_url,
        request_id=request.get(REQUEST_ID_KEY),
    )


def _now() -> datetime:
    return datetime.now(UTC)


@html_errors(pages.NO_SUCH_PAGE)
async def home(request: web.Request) -> web.StreamResponse:
    """Who is signed in here, with sign-out; or the way to sign in."""
    tenant = request.match_info["tenant"]
    sso = services(request).sso
    settings = await sso.settings(tenant)
    brand = pages.Brand.of(tenant, settings.branding)
    home = home_path(tenant)
    cookie = request.cookies.get(cookie_name(tenant))
    session = await sso.sessions.current(tenant, cookie, _now(), settings)
    key = form_key(request)
    if session is not None:
        # A WS-Federation sign-out goes on to the IdP (``logout``), which the policy must allow.
        idp = origin_source(settings.idp_sso_url) if settings.protocol == "wsfed" else None
        logout = f"{home}logout"
        page = pages.signed_in_page(brand, session, logout, form_token(request, key, logout))
        response = html(page, brand, form_target=idp)
        keep_form_key(response, request, key)
        return response
    action = f"{home}password"
    page = pages.sign_in_page(
        brand,
        f"{home}{settings.protocol}/login",
        action,
        form_token(request, key, action),
        sso=settings.ready,
        passwords=settings.password_sign_in_open,
        guests_only=settings.enforced,
    )
    response = html(page, brand)
    if settings.password_sign_in_open:
        keep_form_key(response, request, key)
    return response


@html_errors(pages.NO_SUCH_PAGE)
async def metadata(request: web.Request) -> web.StreamResponse:
    """The SP's metadata, for an IdP admin to import (or fetch from the entity ID)."""
    tenant = request.match_info["tenant"]
    settings = await services(request).sso.stored_settings.get(tenant)
    root = None if settings is None else origin(request).sp_root(settings)
    if settings is None or root is None:
        raise web.HTTPNotFound()
    endpoints = sp_endpoints(root, tenant)
    document = sp_metadata(
        endpoints.entity_id,
        endpoints.acs_url,
        name_id_format=settings.name_id_format,
        want_assertions_signed=settings.require_signed_assertion,
    )
    return web.Response(body=document, content_type="application/samlmetadata+xml")


@html_errors(pages.SSO_UNAVAILABLE)
async def login(request: web.Request) -> web.StreamResponse:
    """SP-initiated SAML sign-in: send the browser to the IdP with an AuthnRequest."""
    raise await _started(request, "saml")


@html_errors(pages.SSO_UNAVAILABLE)
async def oidc_login(request: web.Request) -> web.StreamResponse:
    """SP-initiated OpenID Connect sign-in: send the browser to the IdP's authorization
    endpoint."""
    raise await _started(request, "oidc")


@html_errors(pages.SSO_UNAVAILABLE)
async def wsfed_login(request: web.Request) -> web.StreamResponse:
    """SP-initiated WS-Federation sign-in: send the browser to the IdP's passive endpoint
    with ``wa=wsignin1.0``."""
    raise await _started(request, "wsfed")


async def _started(request: web.Request, protocol: Protocol) -> web.HTTPFound:
    """Start a sign-in through ``protocol``: the redirect to the IdP, with the browser's
    binding cookie."""
    tenant = request.match_info["tenant"]
    browser = browser_key(request.cookies.get(binding_cookie_name(tenant)))
    sso = services(request).sso
    start = {"saml": sso.start, "oidc": sso.start_oidc, "wsfed": sso.start_wsfed}[protocol]
    started = await start(
        tenant,
        origin(request),
        request.query.get("RelayState"),
        request.query.get("test"),
        browser,
        _now(),
    )
    response = web.HTTPFound(started.location, headers=NO_STORE)
    endpoints = started.endpoints
    answer_url = {
        "saml": endpoints.acs_url,
        "oidc": endpoints.redirect_uri,
        "wsfed": endpoints.wsfed_reply_url,
    }[protocol]
    _set_binding_cookie(response, tenant, browser, answer_url, protocol)
    return response


def _set_binding_cookie(
    response: web.StreamResponse, tenant: str, browser: str, answer_url: str, protocol: Protocol
) -> None:
    """The key binding this browser's sign-in requests, for as long as a request lives.

    The SAML ACS receives a cross-site POST from the IdP, on which browsers send only
    SameSite=None cookies, and those only with Secure: so when the ACS is HTTPS it is
    SameSite=None; Secure. Over plain HTTP Secure is impossible, so it is SameSite=Lax, and a
    solicited response arriving without it is posted once more from this site (:func:`acs`),
    which carries it. The WS-Federation reply is such a POST too. The OIDC callback is a
    top-level GET, which carries Lax cookies. Scoped to the protocol's endpoints, HttpOnly.
    """
    secure = answer_url.startswith("https://")
    response.set_cookie(
        binding_cookie_name(tenant),
        browser,
        max_age=int(REQUEST_LIFETIME.total_seconds()),
        path=f"/sso/{tenant}/{protocol}/",
        httponly=True,
        samesite="None" if secure and protocol != "oidc" else "Lax",
        secure=secure,
    )


@html_errors(pages.NO_SUCH_PAGE)
async def oidc_jwks(request: web.Request) -> web.StreamResponse:
    """The public key the tenant's client authenticates with (private_key_jwt), for its IdP."""
    tenant = request.match_info["tenant"]
    settings = await services(request).sso.settings(tenant)
    return web.json_response(client_jwks(settings.oidc.client_key), headers=NO_STORE)


@html_errors(pages.IDP_REFUSED)
async def oidc_callback(request: web.Request) -> web.StreamResponse:
    """The OIDC redirect URI: the IdP sends the browser back with a code (or an error)."""
    tenant = request.match_info["tenant"]
    outcome = await services(request).sso.oidc_callback(
        tenant,
        origin(request),
        dict(request.query),
        request.cookies.get(binding_cookie_name(tenant)),
        _now(),
    )
    if isinstance(outcome, SignedIn):
        raise session_redirect(request, tenant, outcome)
    return _report(await _brand(request, tenant), outcome)


@html_errors(pages.IDP_REFUSED)
async def acs(request: web.Request) -> web.StreamResponse:
    """The Assertion Consumer Service: the IdP's POSTed response signs someone in."""
    return await _posted_sign_in(request, "saml", ("SAMLResponse", "RelayState"))


@html_errors(pages.IDP_REFUSED)
async def wsfed_reply(request: web.Request) -> web.StreamResponse:
    """The WS-Federation reply URL: the IdP's POSTed token (``wa=wsignin1.0``, ``wresult``,
    ``wctx``) signs someone in."""
    return await _posted_sign_in(request, "wsfed", ("wa", "wresult", "wctx"))


async def _posted_sign_in(
    request: web.Request, protocol: Protocol, posted: tuple[str, ...]
) -> web.StreamResponse:
    """Sign in with what the IdP posted through the browser.

    A solicited answer that arrives without the browser's binding cookie (a cross-site POST
    over plain HTTP) is answered with a page that posts its ``posted`` fields again, marked
    ``reposted``, from this site: that POST carries the cookie, and is refused if it still has
    none.
    """
    tenant = request.match_info["tenant"]
    fields = await read_form(request)
    browser = request.cookies.get(binding_cookie_name(tenant))
    sso = services(request).sso
    consume = sso.consume_wsfed if protocol == "wsfed" else sso.consume
    outcome = await consume(
        tenant, origin(request), fields, browser, _now(), reposted=REPOSTED in fields
    )
    if isinstance(outcome, SignedIn):
        raise session_redirect(request, tenant, outcome)
    brand = await _brand(request, tenant)
    if isinstance(outcome, RepostNeeded):
        nonce = secrets.token_urlsafe(16)
        again: dict[str, str] = {name: fields[name] for name in posted if name in fields}
        page = pages.repost_page(brand, request.path, {**again, REPOSTED: "1"}, nonce)
        return html(page, brand, script_nonce=nonce)
    return _report(brand, outcome)


def _report(brand: pages.Brand, outcome: TestReport) -> web.Response:
    return html(pages.test_report_page(brand, outcome), brand)


@html_errors(pages.PASSWORD_REFUSED)
async def password(request: web.Request) -> web.StreamResponse:
    """Password sign-in: for everyone where single sign-on is not enforced, else for guests."""
    tenant = request.match_info["tenant"]
    form = await read_form(request)
    check_form_token(request, form, "password")
    user_name, secret = form.get("username"), form.get("password")
    if not (user_name and secret):
        return _failure(await _brand(request, tenant), tenant, pages.PASSWORD_REFUSED, 400)
    signed_in = await services(request).sso.password_sign_in(
        tenant, origin(request), user_name, secret, _now()
    )
    raise session_redirect(request, tenant, signed_in)


@html_errors(pages.NO_SUCH_PAGE)
async def password_reset_page(request: web.Request) -> web.StreamResponse:
    """The page a reset link opens: the form to set a password (the link's token, in the
    fragment, never reaches this server until the form posts it)."""
    tenant = request.match_info["tenant"]
    settings = await services(request).sso.settings(tenant)
    brand = pages.Brand.of(tenant, settings.branding)
    nonce = secrets.token_urlsafe(16)
    action = f"{home_path(tenant)}password-reset"
    key = form_key(request)
    page = pages.reset_page(
        brand, action, MIN_PASSWORD_LENGTH, nonce, form_token(request, key, action)
    )
    response = html(page, brand, script_nonce=nonce)
    keep_form_key(response, request, key)
    return response


@html_errors(pages.RESET_REFUSED)
async def password_reset(request: web.Request) -> web.StreamResponse:
    """The reset page's form: the link's token and the new password, typed twice. Passwords
    that cannot be kept leave the link unused (400); a link that cannot be used gets the
    generic page (403), its precise reason in the SSO log."""
    tenant = request.match_info["tenant"]
    form = await read_form(request)
    check_form_token(request, form, "password_reset")
    token, password, confirm = form.get("token"), form.get("password", ""), form.get("confirm", "")
    if not token:
        return _failure(await _brand(request, tenant), tenant, pages.RESET_REFUSED, 400)
    if not acceptable_new_password(password, confirm):
        return _failure(await _brand(request, tenant), tenant, pages.PASSWORD_NOT_SET, 400)
    sso = services(request).sso
    user_name = await sso.reset_password(tenant, origin(request), token, password, _now())
    brand = await _brand(request, tenant)
    return html(pages.password_set_page(brand, user_name, home_path(tenant)), brand)


def session_redirect(request: web.Request, tenant: str, signed_in: SignedIn) -> web.HTTPSeeOther:
    """303 to where the sign-in leads, carrying the session cookie.

    HttpOnly keeps it from scripts; SameSite=Lax still sends it on the top-level GET the
    IdP's cross-site POST is redirected into; Secure whenever the site is served over HTTPS.
    """
    response = web.HTTPSeeOther(signed_in.redirect, headers=NO_STORE)
    response.set_cookie(
        cookie_name(tenant),
        signed_in.token,
        max_age=signed_in.ttl_seconds,
        path=f"/sso/{tenant}/",
        httponly=True,
        samesite="Lax",
        secure=origin(request).root.startswith("https://"),
    )
    return response


@html_errors(pages.NO_SUCH_PAGE)
async def logout(request: web.Request) -> web.StreamResponse:
    """End the session, server-side (a copy of the cookie is worthless from now on) and in the
    browser, then POST-redirect-GET: 303 to the signed-out page, so the browser shows that
    page's URL and reloading it posts nothing again. A WS-Federation tenant's browser goes by
    its IdP first (``wa=wsignout1.0``), which ends the IdP session and comes back there."""
    tenant = request.match_info["tenant"]
    check_form_token(request, await read_form(request), "sign_out")
    await _end_session(request, tenant)
    at_idp = await services(request).sso.wsfed_sign_out_url(tenant, origin(request))
    response = web.HTTPSeeOther(at_idp or f"{home_path(tenant)}{SIGNED_OUT}", headers=NO_STORE)
    response.del_cookie(cookie_name(tenant), path=f"/sso/{tenant}/")
    raise response


@html_errors(pages.NO_SUCH_PAGE)
async def wsfed_sign_out(request: web.Request) -> web.StreamResponse:
    """The IdP signing the browser out here (``wa=wsignout1.0``, or ``wa=wsignoutcleanup1.0``
    when another application started it): the session ends, and the answer is the
    signed-out page, which the IdP shows or loads in a frame. Any other ``wa`` is not a
    sign-out: "not found"."""
    tenant = request.match_info["tenant"]
    if request.query.get("wa") not in (WSIGNOUT, WSIGNOUT_CLEANUP):
        raise web.HTTPNotFound()
    sso = services(request).sso
    settings = await sso.settings(tenant)
    await _end_session(request, tenant)
    brand = pages.Brand.of(tenant, settings.branding)
    response = html(pages.signed_out_page(brand, home_path(tenant)), brand)
    response.headers.update(NO_STORE)
    response.del_cookie(cookie_name(tenant), path=f"/sso/{tenant}/")
    return response


async def _end_session(request: web.Request, tenant: str) -> None:
    await services(request).sso.sessions.end(tenant, request.cookies.get(cookie_name(tenant)))


@html_errors(pages.NO_SUCH_PAGE)
async def signed_out(request: web.Request) -> web.StreamResponse:
    """Where sign-out lands. Someone still signed in (a bookmark, another tab that signed in
    again) is sent home rather than told a sign-out happened."""
    tenant = request.match_info["tenant"]
    sso = services(request).sso
    settings = await sso.settings(tenant)
    cookie = request.cookies.get(cookie_name(tenant))
    if await sso.sessions.current(tenant, cookie, _now(), settings) is not None:
        raise web.HTTPSeeOther(home_path(tenant), headers=NO_STORE)
    brand = pages.Brand.of(tenant, settings.branding)
    return html(pages.signed_out_page(brand, home_path(tenant)), brand)


@html_errors(pages.NO_SUCH_PAGE)
async def no_such_page(request: web.Request) -> web.StreamResponse:
    """Any other path under a tenant's /sso: the tenant's "not found" page."""
    raise web.HTTPNotFound()


def wrong_method(allowed: Iterable[str]) -> Handler:
    """The route of a page's path for the methods it does not serve: the tenant's "not found"
    page with 405 and ``Allow``."""

    @html_errors(pages.NO_SUCH_PAGE)
    async def refuse(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    return refuse


async def favicon(request: web.Request) -> web.StreamResponse:
    """The pages' icon; also at /favicon.ico, which browsers ask for when a page names none."""
    return web.Response(
        text=pages.FAVICON_SVG,
        content_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


PAGES: dict[str, dict[str, Handler]] = {
    "/": {"GET": home},
    "/saml/metadata": {"GET": metadata},
    "/saml/login": {"GET": login},
    "/saml/acs": {"POST": acs},
    "/oidc/login": {"GET": oidc_login},
    "/oidc/callback": {"GET": oidc_callback},
    "/oidc/jwks": {"GET": oidc_jwks},
    "/wsfed/login": {"GET": wsfed_login},
    "/wsfed/reply": {"POST": wsfed_reply, "GET": wsfed_sign_out},
    "/password": {"POST": password},
    "/password-reset": {"GET": password_reset_page, "POST": password_reset},
    "/logout": {"POST": logout},
    f"/{SIGNED_OUT}": {"GET": signed_out},
}
"""Every path under ``/sso/{tenant}``, with the handler of each method it serves."""


def add_sso_routes(router: web.UrlDispatcher) -> None:
    """The browser routes. Every path answers its other methods, and every other path under a
    tenant's /sso, with the tenant's own branded page (what the routing refuses elsewhere under
    /sso/ gets the default one, from the error middleware: ``refused_request_page``)."""
    for path, handlers in PAGES.items():
        served = {**handlers, **({"HEAD": handlers["GET"]} if "GET" in handlers else {})}
        for method, handler in served.items():
            router.add_route(method, f"{SSO}{path}", handler)
        router.add_route("*", f"{SSO}{path}", wrong_method(served))
    router.add_route("*", f"{SSO}/{{path:.*}}", no_such_page)
    router.add_get(pages.FAVICON_PATH, favicon)
    router.add_get("/favicon.ico", favicon)
