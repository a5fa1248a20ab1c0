"""The one place where every failure becomes an RFC 7644 §3.12 error response.

Handlers and the protocol core raise ``SCIMException`` subclasses; aiohttp raises
its own ``HTTPException`` for routing failures; the storage layer raises
``StorageUnavailable`` when the database is away. All of them leave here as
``application/scim+json`` errors (through ``scim_error``, which Bulk shares), and
nothing else (no stack trace) ever reaches a client; under /sso/, where browsers are,
they leave as the SSO pages that say them.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from scim2_models import (
    Error,
    NotFoundException,
    PayloadTooLargeException,
    SCIMException,
    UnauthorizedException,
)

from scim_server.core.errors import (
    HeaderTooLargeException,
    MethodNotAllowedException,
    RetryLater,
    URITooLongException,
    error_document,
    error_status,
    scim_error,
)
from scim_server.web.responses import scim_response
from scim_server.web.sso import BROWSER_PREFIXES, refused_request_page

MAX_URL_BYTES = 8190
"""The longest request target (path and query) served: aiohttp's own default limit.

Longer is 414, with the way out in the detail: a query that long belongs in the body
of ``POST .search``.
"""

MAX_HEADER_BYTES = 8190
"""The longest header value served (aiohttp's own default): longer is 431."""

PARSER_LIMITS = {"max_line_size": 1024 * 1024, "max_field_size": 64 * 1024}
"""aiohttp's parser limits, raised far above ours (``app.py`` passes them as handler_args).

aiohttp answers a request over its own limits itself, with a ``text/plain`` 400 that
no middleware sees; raised, they let such a request reach ``scim_errors``, which
refuses it with a SCIM error. They still bound what a connection may make the server
buffer: a request line over 1 MiB (a header over 64 KiB) is cut off by aiohttp.
"""


def error_response(exc: SCIMException) -> web.Response:
    headers: dict[str, str] = {}
    if isinstance(exc, UnauthorizedException):
        headers["WWW-Authenticate"] = 'Bearer realm="scim"'
    elif isinstance(exc, MethodNotAllowedException):
        headers["Allow"] = ", ".join(exc.allowed)
    elif isinstance(exc, RetryLater):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    return scim_response(error_document(exc), status=error_status(exc), headers=headers)


def _from_http(error: web.HTTPException) -> SCIMException:
    if isinstance(error, web.HTTPMethodNotAllowed):
        return MethodNotAllowedException(
            allowed=frozenset(error.allowed_methods),
            detail=f"{error.method} is not allowed here",
        )
    if isinstance(error, web.HTTPNotFound):
        return NotFoundException(detail="no such endpoint")
    if isinstance(error, web.HTTPRequestEntityTooLarge):
        return PayloadTooLargeException(detail="the body is too large")
    return SCIMException.from_error(Error(status=error.status, detail=error.reason))


def check_request_head(request: web.Request) -> None:
    """Refuse a request target or a header too long to serve (aiohttp's parser refuses a
    target with bytes that are not ASCII; percent-decoding turns bad UTF-8 into U+FFFD)."""
    size = len(request.raw_path)
    if size > MAX_URL_BYTES:
        raise URITooLongException(
            detail=f"the URL is {size} bytes; the limit is {MAX_URL_BYTES}: send long "
            "filters and attribute lists in the body of POST .search"
        )
    for name, value in request.headers.items():
        if len(value) > MAX_HEADER_BYTES:
            raise HeaderTooLargeException(
                detail=f"the {name} header is over the limit of {MAX_HEADER_BYTES} bytes"
            )


@web.middleware
async def scim_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        check_request_head(request)
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _answer(request, _from_http(error))
    except Exception as error:
        return _answer(request, scim_error(error, f"{request.method} {request.path}"))


def _answer(request: web.Request, error: SCIMException) -> web.Response:
    """The SCIM error; on the browser routes under /sso/ (a person is looking), the page that
    says it. The SSO handlers answer their own failures with pages; this is for a request
    refused before any of them runs (over a limit, or a path or method no route serves).
    The server-level sign-in pages (``/signin``) are browser routes too."""
    if request.path.startswith(BROWSER_PREFIXES):
        return refused_request_page(request.path, error)
    return error_response(error)


def body_limit(max_bytes: int, routes: Mapping[str, int] | None = None) -> Middleware:
    """Refuse an announced body over the limit before reading any of it.

    ``routes`` maps a route's pattern (``/scim/v2/{tenant}/Bulk``) to its own limit;
    every other route has ``max_bytes``. A body sent without Content-Length is held
    to the same limit while it is read.
    """
    limits = dict(routes or {})

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        limit = limits.get(resource.canonical, max_bytes) if resource is not None else max_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLargeException(
                detail=f"the body is {request.content_length} bytes; the limit is {limit}"
            )
        if request.client_max_size != limit and request.body_exists:
            request = request.clone(client_max_size=limit)
        return await handler(request)

    return middleware
