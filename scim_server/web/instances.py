"""The browser pages of cross-instance sign-in (docs/cross-instance.md), at server level.

``/signin`` takes the root email and starts the primary tenant's authentication;
``/sso/{primary}/instances`` (under the primary's home, where its session cookie is sent) hands
that session to ``/signin/instances``, the selection. The hand-off copies the primary's signed
session cookie into ``scim_signin`` (path ``/signin/``): the same session, read and checked as
the primary's pages read it, so signing out there ends it here too. Every failure is the
generic page, its reason in the SSO log of the tenant concerned.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiohttp import web

from scim_server.core.errors import (
    DatabaseUnavailable,
    ServiceUnavailableException,
    error_status,
    scim_error,
)
from scim_server.core.sso.instances import HANDOFF, SELECTION_PATH, CrossInstanceSignIn
from scim_server.core.sso.service import SignInFailed
from scim_server.core.sso.sessions import browser_digest, cookie_name, same_browser
from scim_server.core.tenancy import TENANT_NAME
from scim_server.web import sso_pages as pages
from scim_server.web.sso import (
    NO_STORE,
    SSO,
    ForgedForm,
    UnreadableForm,
    check_form_token,
    form_key,
    form_token,
    html,
    html_errors,
    keep_form_key,
    origin,
    read_form,
    session_redirect,
)
from scim_server.web.state import services

log = logging.getLogger(__name__)

SIGNIN = "/signin"
SIGNIN_COOKIE = "scim_signin"
"""The primary tenant's session cookie as the selection reads it: ``{primary}.{token}``."""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BRAND = pages.SIGNIN_BRAND


def signin_errors(handler: Handler) -> Handler:
    """Every failure of a server-level sign-in page is the generic page: a refused sign-in or
    choice 403, a form without this browser's form token 403 (written to the server's log: no
    tenant is known yet), a form no browser sends 400, the database away 503 with
    ``Retry-After``."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as response:
            if response.status < 400:
                raise
            return _failed(pages.NO_SUCH_PAGE, response.status)
        except SignInFailed:
            return _failed(pages.SIGNIN_REFUSED, 403)
        except ForgedForm as error:
            log.warning("refused a sign-in form from %s: %s", request.remote, error)
            return _failed(pages.FORM_REFUSED, 403)
        except UnreadableForm:
            return _failed(pages.BROKEN, 400)
        except Exception as error:
            failure = scim_error(error, f"{request.method} {request.path}")
            unavailable = isinstance(failure, DatabaseUnavailable)
            page = _failed(
                pages.UNAVAILABLE if unavailable else pages.BROKEN, error_status(failure)
            )
            if isinstance(failure, ServiceUnavailableException):
                page.headers["Retry-After"] = str(failure.retry_after_seconds)
            return page

    return wrapped


def _failed(failure: pages.Failure, status: int) -> web.Response:
    return html(pages.failure_page(BRAND, failure, SIGNIN), BRAND, status)


def _cross_instance(request: web.Request) -> CrossInstanceSignIn:
    return services(request).cross_instance


@signin_errors
async def sign_in_form(request: web.Request) -> web.StreamResponse:
    key = form_key(request)
    response = html(pages.root_sign_in_page(BRAND, SIGNIN, form_token(request, key, SIGNIN)), BRAND)
    keep_form_key(response, request, key)
    return response


@signin_errors
async def sign_in(request: web.Request) -> web.StreamResponse:
    """The root email (and maybe a password): the primary tenant's authentication begins."""
    form = await read_form(request)
    check_form_token(request, form, "cross_instance")
    email = form.get("email", "")
    if not email:
        return _failed(pages.SIGNIN_REFUSED, 400)
    primary, started = await _cross_instance(request).start(
        email, form.get("password") or None, origin(request), datetime.now(UTC)
    )
    if isinstance(started, str):
        return html(pages.continue_page(BRAND, started), BRAND)
    raise session_redirect(request, primary, started)


@html_errors(pages.NO_SUCH_PAGE)
async def hand_off(request: web.Request) -> web.StreamResponse:
    """Under the primary tenant's home: its session, as the selection's cookie."""
    tenant = request.match_info["tenant"]
    token = request.cookies.get(cookie_name(tenant))
    if not TENANT_NAME.fullmatch(tenant) or not token:
        raise web.HTTPSeeOther(SIGNIN, headers=NO_STORE)
    response = web.HTTPSeeOther(SELECTION_PATH, headers=NO_STORE)
    response.set_cookie(
        SIGNIN_COOKIE,
        f"{tenant}.{token}",
        path=f"{SIGNIN}/",
        httponly=True,
        samesite="Lax",
        secure=origin(request).root.startswith("https://"),
    )
    raise response


def _signed_in(request: web.Request) -> tuple[str, str | None, str]:
    """The primary tenant and its session token the selection's cookie holds, and the cookie."""
    cookie = request.cookies.get(SIGNIN_COOKIE, "")
    primary, _, token = cookie.partition(".")
    if not TENANT_NAME.fullmatch(primary):
        raise SignInFailed("no cross-instance sign-in under way in this browser")
    return primary, token or None, cookie


@signin_errors
async def selection(request: web.Request) -> web.StreamResponse:
    """The instances to choose from; someone who administers none is sent to the primary
    tenant, where she is signed in, and never sees a selection."""
    primary, token, cookie = _signed_in(request)
    offered = await _cross_instance(request).selection(
        primary, token, origin(request), datetime.now(UTC)
    )
    if not offered.logins:
        raise web.HTTPSeeOther(f"/sso/{primary}/", headers=NO_STORE)
    logins = {login.tenant: login.user.user_name for login in offered.logins}
    page = pages.instance_selection_page(
        BRAND, offered.root, logins, SELECTION_PATH, browser_digest(cookie)
    )
    return html(page, BRAND)


@signin_errors
async def choose(request: web.Request) -> web.StreamResponse:
    """A choice, posted from the selection this browser was shown: a session there."""
    primary, token, cookie = _signed_in(request)
    form = await read_form(request)
    tenant = form.get("tenant", "")
    signed_in = await _cross_instance(request).choose(
        primary,
        token,
        tenant,
        origin(request),
        datetime.now(UTC),
        bound=same_browser(form.get("state"), cookie),
    )
    raise session_redirect(request, tenant, signed_in)


def add_instance_routes(router: web.UrlDispatcher) -> None:
    """The server-level pages, and the hand-off under each tenant's home (registered before
    the tenant pages' catch-all)."""
    router.add_get(SIGNIN, sign_in_form)
    router.add_post(SIGNIN, sign_in)
    router.add_get(SELECTION_PATH, selection)
    router.add_post(SELECTION_PATH, choose)
    router.add_get(f"{SSO}/{HANDOFF}", hand_off)
