"""Recording each SCIM request in its tenant's provisioning journal (see ``journal.py``).

Two middlewares: ``journal_requests`` is the outermost, so it sees the final status,
error responses included; ``journal_bodies`` is the innermost, so it sees the request
object the handler read the body of (``body_limit`` may hand the handler a clone).
A body is journaled only when the handler read it: a body refused unread (413, 401)
is never read for the journal's sake. No header but ``User-Agent`` is recorded, so
neither a bearer token nor any other credential ever reaches the journal.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Handler

from scim_server.core.journal import journal_body, redact_query
from scim_server.core.tenancy import TENANT_NAME
from scim_server.web.access_log import REQUEST_ID_KEY
from scim_server.web.state import SERVICES

log = logging.getLogger(__name__)


@dataclass
class _Capture:
    body: bytes | None = None


PREFIX = "/scim/v2/"
CAPTURE = web.RequestKey("journal_capture", _Capture)


def _target(request: web.Request) -> tuple[str, str | None] | None:
    """The tenant a request is for and the resource type (first path segment after it)."""
    if not request.path.startswith(PREFIX):
        return None
    tenant, _, rest = request.path[len(PREFIX) :].partition("/")
    if not TENANT_NAME.fullmatch(tenant):
        return None
    return tenant, rest.split("/", 1)[0] or None


def _resource_id(request: web.Request, response: web.StreamResponse) -> str | None:
    resource_id = request.match_info.get("id")
    if resource_id is None and response.status == 201:
        location = response.headers.get("Location")
        if location:
            resource_id = location.rstrip("/").rsplit("/", 1)[-1]
    return resource_id


@web.middleware
async def journal_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    target = _target(request)
    services = request.app.get(SERVICES)
    if target is None or services is None or not services.journal.enabled:
        return await handler(request)
    capture = _Capture()
    request[CAPTURE] = capture  # shared with clones: their state is a shallow copy
    at = datetime.now(UTC)
    started = time.perf_counter()
    response = await handler(request)
    try:
        tenant, resource_type = target
        body = journal_body(capture.body)
        services.journal.record(
            {
                "tenant": tenant,
                "at": at,
                "method": request.method,
                "path": request.path,
                "query": redact_query(request.query.items()),
                "status": response.status,
                "user_agent": request.headers.get("User-Agent") or None,
                "resource_type": resource_type,
                "resource_id": _resource_id(request, response),
                "request_body": body.text,
                "truncated": body.truncated,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                "request_id": request.get(REQUEST_ID_KEY),
            }
        )
    except Exception:  # the journal never fails a request
        log.exception("provisioning journal: could not record %s %s", request.method, request.path)
    return response


@web.middleware
async def journal_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    finally:
        capture = request.get(CAPTURE)
        # At EOF with nothing buffered: the handler read the whole body, and read()
        # answers it from aiohttp's cache. Otherwise the body was not read: leave it.
        if capture is not None and request.body_exists and request.content.at_eof():
            with contextlib.suppress(Exception):
                capture.body = await request.read()
