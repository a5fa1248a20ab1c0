"""``GET /metrics``: every series of ``scim_server.metrics`` in the Prometheus text format.

Guarded like the admin API: on the main port it needs the admin token (a tenant's token is
refused). With ``SCIM_METRICS_BIND`` set it is served instead, without a token, on a listener
of its own meant for a private network (``metrics_application``), and the main port does not
serve it at all. Scrapes are not journaled (the journal keeps tenants' SCIM requests only).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from scim_server import metrics
from scim_server.web.admin import check_admin_token
from scim_server.web.middleware import scim_errors

PATH = "/metrics"


async def exposition(request: web.Request) -> web.Response:
    """The series, added up over every worker (their files are read off the event loop)."""
    body = await asyncio.to_thread(metrics.exposition)
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


async def guarded_exposition(request: web.Request) -> web.Response:
    """``/metrics`` on the main port: the admin token is required."""
    check_admin_token(request)
    return await exposition(request)


def metrics_application() -> web.Application:
    """The separate listener's application: ``/metrics`` without a token, and nothing else
    (any other request gets a SCIM error, as on the main port)."""
    app = web.Application(middlewares=[scim_errors])
    app.router.add_get(PATH, exposition)
    return app
