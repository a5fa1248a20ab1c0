"""The admin API for a tenant's rate limit: read it, give the tenant its own, or the default."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scim_server.core.errors import unknown_tenant
from scim_server.core.rate_limits import EffectiveLimit
from scim_server.web.responses import json_response, limit_in, read_object
from scim_server.web.state import services

MAX_REQUESTS_PER_SECOND = 1_000_000
"""Far beyond what one server answers: a limit above it would be no limit."""


def rate_limit_view(limit: EffectiveLimit) -> dict[str, Any]:
    return {
        "requests_per_second": limit.requests_per_second,
        "default": limit.default,
        "enforced": limit.enforced,
    }


def _answer(request: web.Request, limit: EffectiveLimit | None) -> web.Response:
    if limit is None:
        raise unknown_tenant(request.match_info["name"])
    return json_response(rate_limit_view(limit))


async def get_rate_limit(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return _answer(request, await services(request).rate_limits.limit_of(name))


async def set_rate_limit(request: web.Request) -> web.Response:
    """Give the tenant its own limit (null: back to the default), from each worker's next
    reservation on."""
    body = await read_object(request)
    limit = limit_in(body, "requests_per_second", 1, MAX_REQUESTS_PER_SECOND, "the default")
    name = request.match_info["name"]
    return _answer(request, await services(request).rate_limits.set_limit(name, limit))


async def clear_rate_limit(request: web.Request) -> web.Response:
    """Back to the server's default, as a PUT of null."""
    name = request.match_info["name"]
    return _answer(request, await services(request).rate_limits.set_limit(name, None))
