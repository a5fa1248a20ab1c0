"""Each request's id, and its one line in the access log.

``request_context`` is the outermost middleware, so it sees every response as the client gets
it: SCIM errors, 404s, the admin API, the ``/sso`` pages, ``/healthz``. For each request it

- takes the client's ``X-Request-Id`` when it is a plausible id (at most 128 characters of
  letters, digits and ``._:+/=@-``), and otherwise, or when there is none, makes one (a
  uuid4 in hex): a bad id is replaced, never refused;
- binds it as ``request_id`` (``structlog.contextvars``) while the request is handled, so every
  line logged meanwhile, a traceback of a 500 included, carries it;
- echoes it in the response's ``X-Request-Id``;
- unless the access log is off, logs one ``request`` line: ``tenant`` (the route's ``{tenant}``
  when it is a valid tenant name), ``method``, ``route`` (the route's template, never the path
  with its ids; none when no route matched), ``status``, ``duration_ms`` and ``client`` (the
  identity-provider family of the ``User-Agent``).

No header value but the request id, no query, cookie or body is ever logged. A request
cancelled before its answer (aiohttp cancels the handlers a shutdown's grace did not see
finish) is logged with status 499, nginx's "client closed request".
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from typing import Final

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from scim_server.core.clients import idp_family
from scim_server.core.tenancy import TENANT_NAME

log = logging.getLogger("scim_server.access")

REQUEST_ID_HEADER: Final = "X-Request-Id"
REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:+/=@-]{1,128}")
"""An incoming request id kept as it is: the characters of UUIDs, hex, base64 and the ids of
common proxies, none of which can break a log line or a header."""

REQUEST_ID_KEY: Final = web.RequestKey("request_id", str)
"""Where the middleware leaves the request's id for the handlers that record it (the journal,
the SSO log), so that a record and the response and log lines of its request share one id."""
CLIENT_CLOSED_REQUEST: Final = 499
"""The status logged for a request cancelled before its answer."""


def request_id(incoming: str | None) -> str:
    """The client's request id when it is a plausible one, else a fresh one."""
    if incoming is not None and REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def request_context(*, access_log: bool) -> Middleware:
    """The middleware giving each request its id, and its access-log line if ``access_log``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request_id(request.headers.get(REQUEST_ID_HEADER))
        request[REQUEST_ID_KEY] = rid
        started = time.perf_counter()
        status = web.HTTPInternalServerError.status_code
        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                response = await handler(request)
                status = response.status
                if not response.prepared:
                    response.headers[REQUEST_ID_HEADER] = rid
                return response
            except web.HTTPException as raised:  # a redirect: raised rather than returned
                status = raised.status
                raised.headers[REQUEST_ID_HEADER] = rid
                raise
            except asyncio.CancelledError:
                status = CLIENT_CLOSED_REQUEST
                raise
            finally:
                if access_log:
                    _log_request(request, status, time.perf_counter() - started)

    return middleware


def _log_request(request: web.Request, status: int, seconds: float) -> None:
    if not log.isEnabledFor(logging.INFO):  # SCIM_LOG_LEVEL=WARNING: not worth composing
        return
    tenant = request.match_info.get("tenant")
    resource = request.match_info.route.resource
    log.info(
        "request",
        extra={
            "tenant": tenant if tenant is not None and TENANT_NAME.fullmatch(tenant) else None,
            "method": request.method,
            "route": resource.canonical if resource is not None else None,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "client": idp_family(request.headers.get("User-Agent")),
        },
    )
