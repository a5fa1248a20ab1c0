"""The browser-facing single sign-on endpoints under ``/sso/{tenant}``.

These answer HTML, not SCIM JSON: a person is looking. Every failure becomes one of two
pages (generic, or "no seat available"); the reason is in the tenant's SSO log.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from samlkit.metadata import sp_metadata
from scim_server.core.errors import (
    DatabaseUnavailable,
    ServiceUnavailableException,
    error_status,
    scim_error,
)
from scim_server.core.sso.service import (
    REQUEST_LIFETIME,
    Origin,
    RepostNeeded,
    SignedIn,
    SignInFailed,
)
from scim_server.core.sso.sessions import binding_cookie_name, browser_key, cookie_name
from scim_server.core.sso.settings import home_path, sp_endpoints
from scim_server.core.tenancy import TENANT_NAME
from scim_server.web import sso_pages as pages
from scim_server.web.responses import public_root
from scim_server.web.state import services

log = logging.getLogger(__name__)

SSO = "/sso/{tenant}"
REPOSTED = "reposted"
"""The form field marking an IdP's POST that the ACS has had the browser post again."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _html(body: str, status: int = 200, script_nonce: str | None = None) -> web.Response:
    """A page with a strict policy: no script at all, unless the one carrying ``script_nonce``."""
    scripts = f"; script-src 'nonce-{script_nonce}'" if script_nonce else ""
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; "
            f"style-src 'unsafe-inline'; form-action 'self'{scripts}",
        },
    )


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


def html_errors(handler: Handler) -> Handler:
    """Turn every failure into one of the two pages, never a JSON error or a stack trace: a
    person is looking. Redirects pass through.

    A failure other than a refused sign-in gets the generic page with the status the SCIM
    API would answer (``scim_error``: 503 with ``Retry-After`` when the database is
    unavailable, 404 for a resource gone meanwhile, 500 for a failure of the server's own),
    and is written to the tenant's SSO log when the database can take it.
    """

    async def wrapped(request: web.Request) -> web.StreamResponse:
        tenant = request.match_info["tenant"]
        home = home_path(tenant)
        if not TENANT_NAME.fullmatch(tenant):
            # No tenant is called that, and the name would not even make a cookie name.
            return _html(pages.failure_page(home), status=404)
        try:
            return await handler(request)
        except web.HTTPException as response:
            if response.status < 400:
                raise
            return _html(pages.failure_page(home), status=response.status)
        except UnreadableForm:
            return _html(pages.failure_page(home), status=400)
        except SignInFailed as failed:
            if failed.page == "seats":
                return _html(pages.seat_limit_page(tenant, home), status=403)
            return _html(pages.failure_page(home), status=403)
        except Exception as error:
            failure = scim_error(error, f"{request.method} {request.path}")
            if not isinstance(failure, DatabaseUnavailable):
                await _record_unexpected(request, tenant, error)
            page = _html(pages.failure_page(home), status=error_status(failure))
            if isinstance(failure, ServiceUnavailableException):
                page.headers["Retry-After"] = str(failure.retry_after_seconds)
            return page

    return wrapped


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
        root=public_root(request, public_url), client=request.remote, public_url=public_url
    )


def _now() -> datetime:
    return datetime.now(UTC)


@html_errors
async def home(request: web.Request) -> web.StreamResponse:
    """Who is signed in here, with sign-out; or the way to sign in."""
    tenant = request.match_info["tenant"]
    sso = services(request).sso
    settings = await sso.settings(tenant)
    home = home_path(tenant)
    session = await sso.session(tenant, request.cookies.get(cookie_name(tenant)))
    if session is not None:
        return _html(pages.signed_in_page(session, f"{home}logout"))
    return _html(
        pages.sign_in_page(
            tenant,
            f"{home}saml/login",
            f"{home}password",
            sso=settings.ready,
            passwords=not settings.enforced,
        )
    )


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


@html_errors
async def login(request: web.Request) -> web.StreamResponse:
    """SP-initiated sign-in: send the browser to the IdP with an AuthnRequest."""
    tenant = request.match_info["tenant"]
    browser = browser_key(request.cookies.get(binding_cookie_name(tenant)))
    started = await services(request).sso.start(
        tenant,
        origin(request),
        request.query.get("RelayState"),
        request.query.get("test"),
        browser,
        _now(),
    )
    response = web.HTTPFound(started.location, headers={"Cache-Control": "no-store"})
    _set_binding_cookie(response, tenant, browser, started.endpoints.acs_url)
    raise response


def _set_binding_cookie(
    response: web.StreamResponse, tenant: str, browser: str, acs_url: str
) -> None:
    """The key binding this browser's AuthnRequests, for as long as a request lives.

    The ACS receives a cross-site POST from the IdP, on which browsers send only SameSite=None
    cookies, and those only with Secure: so when the ACS is HTTPS it is SameSite=None; Secure.
    Over plain HTTP Secure is impossible, so it is SameSite=Lax, and a solicited response
    arriving without it is posted once more from this site (:func:`acs`), which carries it.
    Scoped to the SAML endpoints, HttpOnly.
    """
    secure = acs_url.startswith("https://")
    response.set_cookie(
        binding_cookie_name(tenant),
        browser,
        max_age=int(REQUEST_LIFETIME.total_seconds()),
        path=f"/sso/{tenant}/saml/",
        httponly=True,
        samesite="None" if secure else "Lax",
        secure=secure,
    )


@html_errors
async def acs(request: web.Request) -> web.StreamResponse:
    """The Assertion Consumer Service: the IdP's POSTed response signs someone in.

    A solicited response that arrives without the browser's binding cookie (a cross-site POST
    over plain HTTP) is answered with a page that posts it again, marked ``reposted``, from
    this site: that POST carries the cookie, and is refused if it still has none.
    """
    tenant = request.match_info["tenant"]
    fields = await read_form(request)
    browser = request.cookies.get(binding_cookie_name(tenant))
    outcome = await services(request).sso.consume(
        tenant, origin(request), fields, browser, _now(), reposted=REPOSTED in fields
    )
    if isinstance(outcome, RepostNeeded):
        nonce = secrets.token_urlsafe(16)
        again: dict[str, str] = {
            name: fields[name] for name in ("SAMLResponse", "RelayState") if name in fields
        }
        page = pages.repost_page(request.path, {**again, REPOSTED: "1"}, nonce)
        return _html(page, script_nonce=nonce)
    if not isinstance(outcome, SignedIn):
        return _html(pages.test_report_page(outcome))
    raise _session_redirect(request, tenant, outcome)


@html_errors
async def password(request: web.Request) -> web.StreamResponse:
    """Password sign-in, for tenants that do not enforce single sign-on."""
    tenant = request.match_info["tenant"]
    form = await read_form(request)
    user_name, secret = form.get("username"), form.get("password")
    if not (user_name and secret):
        return _html(pages.failure_page(home_path(tenant)), status=400)
    signed_in = await services(request).sso.password_sign_in(
        tenant, origin(request), user_name, secret, _now()
    )
    raise _session_redirect(request, tenant, signed_in)


def _session_redirect(request: web.Request, tenant: str, signed_in: SignedIn) -> web.HTTPSeeOther:
    """303 to where the sign-in leads, carrying the session cookie.

    HttpOnly keeps it from scripts; SameSite=Lax still sends it on the top-level GET the
    IdP's cross-site POST is redirected into; Secure whenever the site is served over HTTPS.
    """
    response = web.HTTPSeeOther(signed_in.redirect, headers={"Cache-Control": "no-store"})
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


@html_errors
async def logout(request: web.Request) -> web.StreamResponse:
    tenant = request.match_info["tenant"]
    response = _html(pages.signed_out_page(tenant, home_path(tenant)))
    response.del_cookie(cookie_name(tenant), path=f"/sso/{tenant}/")
    return response


def add_sso_routes(router: web.UrlDispatcher) -> None:
    router.add_get(f"{SSO}/", home)
    router.add_get(f"{SSO}/saml/metadata", metadata)
    router.add_get(f"{SSO}/saml/login", login)
    router.add_post(f"{SSO}/saml/acs", acs)
    router.add_post(f"{SSO}/password", password)
    router.add_post(f"{SSO}/logout", logout)
