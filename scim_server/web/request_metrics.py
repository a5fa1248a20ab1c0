"""Counting every request for Prometheus: ``scim_requests_total`` and its companions.

``count_requests`` is the outermost middleware, so it sees each request's final status
(errors included) and its whole duration. Each request is labelled with a bounded set of
values: the tenant it was proven to be for (``metrics.NO_TENANT`` otherwise), a short name
for its operation taken from the route it matched (``other`` when none did), its status code
and the IdP family of its ``User-Agent``. The database commands it started are counted into
its ``RequestTally`` by the storage layer's command listener.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import Counter, Histogram

from scim_server import metrics
from scim_server.core.clients import idp_family
from scim_server.models import CUSTOM_KINDS, KINDS
from scim_server.web.metrics import PATH as METRICS_PATH
from scim_server.web.routes import SCIM
from scim_server.web.sso import SSO

REQUEST_TALLY = web.RequestKey("request_tally", metrics.RequestTally)
"""The request's tally, also kept on the request for what runs after the middleware (the
``on_response_prepare`` signal), when the context variable is no longer set."""

RESOURCE_ENDPOINTS = frozenset(kind.endpoint for kind in (*KINDS, *CUSTOM_KINDS))
SCIM_OPERATIONS = {
    "Bulk": "bulk",
    ".search": "search",
    "Me": "me",
    "ServiceProviderConfig": "discovery",
    "ResourceTypes": "discovery",
    "Schemas": "discovery",
}
"""The operation of each SCIM route that is not a resource type's (``users.get`` and so on)."""
ROOT_OPERATIONS = {"/healthz": "health", "/readyz": "ready", METRICS_PATH: "metrics"}
OTHER = "other"


def operation_name(request: web.Request) -> str:
    """A short name for what the request does, from the route it matched.

    ``users.get``, ``groups.list``, ``users.search`` (the resource type's endpoint and its
    handler), ``bulk``, ``search``, ``discovery``, ``me``; ``admin.`` and the admin handler
    (``admin.create_tenant``); ``sso.`` and the sign-in page (``sso.acs``, ``sso.home``);
    ``health``, ``ready``, ``metrics``; ``other`` for a request that matched no route.
    """
    match = request.match_info
    resource = match.route.resource
    if match.http_exception is not None or resource is None:
        return OTHER
    path = resource.canonical
    if path.startswith(f"{SCIM}/"):
        head = path[len(SCIM) + 1 :].split("/", 1)[0]
        if head in RESOURCE_ENDPOINTS:
            return f"{head.lower()}.{match.route.handler.__name__}"
        return SCIM_OPERATIONS.get(head, OTHER)
    if path.startswith("/admin/"):
        return f"admin.{match.route.handler.__name__}"
    if path.startswith(f"{SSO}/"):
        return f"sso.{path.rsplit('/', 1)[-1] or 'home'}"
    return ROOT_OPERATIONS.get(path, OTHER)


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    tally = metrics.RequestTally()
    request[REQUEST_TALLY] = tally
    started = time.perf_counter()
    try:
        with metrics.tallying(tally):
            response = await handler(request)
    except web.HTTPException as answer:  # a redirect, raised (the errors are answered below)
        _count(request, tally, answer.status, started)
        raise
    except Exception:  # nothing below lets one through: were it to, the client gets a 500
        _count(request, tally, 500, started)
        raise
    # A request cancelled (the server stopping) was not answered, and is not counted.
    _count(request, tally, response.status, started)
    return response


Series = tuple[Counter, Histogram, Histogram]

_SERIES: dict[tuple[str, str, int, str], Series] = {}
"""The series each combination of labels counts into, found once: ``labels()`` checks and
looks its labels up under a lock on every call, a cost of every request. The labels are
bounded (see the module's docstring), and so is this."""


def _series(tenant: str, operation: str, status: int, idp: str) -> Series:
    key = (tenant, operation, status, idp)
    series = _SERIES.get(key)
    if series is None:
        labels = {"tenant": tenant, "operation": operation, "status": str(status), "idp": idp}
        series = _SERIES[key] = (
            metrics.REQUESTS.labels(**labels),
            metrics.REQUEST_DURATION.labels(**labels),
            metrics.DATABASE_COMMANDS.labels(operation=operation),
        )
    return series


_BY_NAME: dict[tuple[str, str, str], Counter] = {}
"""``scim_database_commands_total``'s series, found once as ``_SERIES`` are: bounded too, by
the operations and the server's own collections and commands."""


def _by_name(operation: str, collection: str, command: str) -> Counter:
    key = (operation, collection, command)
    series = _BY_NAME.get(key)
    if series is None:
        series = _BY_NAME[key] = metrics.DATABASE_COMMANDS_BY_NAME.labels(*key)
    return series


def _count(request: web.Request, tally: metrics.RequestTally, status: int, started: float) -> None:
    idp = idp_family(request.headers.get("User-Agent"))
    operation = operation_name(request)
    requests, duration, commands = _series(tally.tenant, operation, status, idp)
    requests.inc()
    duration.observe(time.perf_counter() - started)
    commands.observe(tally.command_count)
    for (collection, command), count in tally.commands.items():
        _by_name(operation, collection, command).inc(count)
