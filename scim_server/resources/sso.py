"""The browser-facing single sign-on endpoints under ``/sso/{tenant}``.

These answer HTML, not SCIM JSON: a person is looking. Every failure becomes one of two
pages (generic, or "no seat available"); the reason is in the tenant's SSO log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from samlkit.metadata import sp_metadata
from scim_server.errors import DATABASE_UNAVAILABLE
from scim_server.resources.admin import TENANT_NAME
from scim_server.responses import public_root
from scim_server.sso import pages
from scim_server.sso.service import Origin, SignedIn, SignInFailed
from scim_server.sso.sessions import cookie_name
from scim_server.state import services

log = logging.getLogger(__name__)

SSO = "/sso/{tenant}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'none'; "
            "style-src 'unsafe-inline'; form-action 'self'",
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
    """Turn a failed sign-in (or an unreachable database) into a page, never a JSON error."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        tenant = request.match_info["tenant"]
        home = origin(request).endpoints(tenant).home_path
        if not TENANT_NAME.fullmatch(tenant):
            # No tenant is called that, and the name would not even make a cookie name.
            return _html(pages.failure_page(home), status=404)
        try:
            return await handler(request)
        except UnreadableForm:
            return _html(pages.failure_page(home), status=400)
        except SignInFailed as failed:
            if failed.page == "seats":
                return _html(pages.seat_limit_page(tenant, home), status=403)
            return _html(pages.failure_page(home), status=403)
        except DATABASE_UNAVAILABLE as error:
            log.warning("database unavailable during sign-in: %s", error)
            return _html(pages.failure_page(home), status=503)

    return wrapped


def origin(request: web.Request) -> Origin:
    """Where this server is reached (its SP URLs derive from it) and who is asking."""
    return Origin(
        root=public_root(request, services(request).settings.public_url), client=request.remote
    )


def _now() -> datetime:
    return datetime.now(UTC)


@html_errors
async def home(request: web.Request) -> web.StreamResponse:
    """Who is signed in here, with sign-out; or the way to sign in."""
    tenant = request.match_info["tenant"]
    sso = services(request).sso
    settings = await sso.settings(tenant)
    endpoints = origin(request).endpoints(tenant)
    session = await sso.session(tenant, request.cookies.get(cookie_name(tenant)))
    if session is not None:
        return _html(pages.signed_in_page(session, f"{endpoints.home_path}logout"))
    return _html(
        pages.sign_in_page(
            tenant,
            endpoints.login_url,
            f"{endpoints.home_path}password",
            sso=settings.ready,
            passwords=not settings.enforced,
        )
    )


async def metadata(request: web.Request) -> web.StreamResponse:
    """The SP's metadata, for an IdP admin to import (or fetch from the entity ID)."""
    tenant = request.match_info["tenant"]
    settings = await services(request).sso.repository.settings(tenant)
    if settings is None:
        raise web.HTTPNotFound()
    endpoints = origin(request).endpoints(tenant)
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
    location = await services(request).sso.start(
        tenant, origin(request), request.query.get("RelayState"), request.query.get("test"), _now()
    )
    raise web.HTTPFound(location, headers={"Cache-Control": "no-store"})


@html_errors
async def acs(request: web.Request) -> web.StreamResponse:
    """The Assertion Consumer Service: the IdP's POSTed response signs someone in."""
    tenant = request.match_info["tenant"]
    fields = await read_form(request)
    outcome = await services(request).sso.consume(tenant, origin(request), fields, _now())
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
        return _html(pages.failure_page(origin(request).endpoints(tenant).home_path), status=400)
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
    endpoints = origin(request).endpoints(tenant)
    response = _html(pages.signed_out_page(tenant, endpoints.home_path))
    response.del_cookie(cookie_name(tenant), path=f"/sso/{tenant}/")
    return response


def add_sso_routes(router: web.UrlDispatcher) -> None:
    router.add_get(f"{SSO}/", home)
    router.add_get(f"{SSO}/saml/metadata", metadata)
    router.add_get(f"{SSO}/saml/login", login)
    router.add_post(f"{SSO}/saml/acs", acs)
    router.add_post(f"{SSO}/password", password)
    router.add_post(f"{SSO}/logout", logout)
