"""The admin API for a tenant's seats: read and set the limit, and recount the seats in use."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scim_server.core.seats import SeatUsage
from scim_server.web.responses import json_response, limit_in, read_object
from scim_server.web.state import services

MAX_SEATS = 1_000_000_000
"""Far beyond any tenant, and well inside the 64-bit integers MongoDB stores."""


def seats_view(usage: SeatUsage) -> dict[str, Any]:
    """``over``: seats in use beyond a limit that was lowered below the use."""
    return {
        "seats": usage.seats,
        "used": usage.used,
        "available": usage.available,
        "over": usage.over,
    }


async def get_seats(request: web.Request) -> web.Response:
    usage = await services(request).tenancy.seats_of(request.match_info["name"])
    return json_response(seats_view(usage))


async def set_seats(request: web.Request) -> web.Response:
    """Set the limit; below the seats in use is allowed, and ``over`` says by how many."""
    limit = limit_in(await read_object(request), "seats", 0, MAX_SEATS, "unlimited")
    usage = await services(request).tenancy.set_seats(request.match_info["name"], limit)
    return json_response(seats_view(usage))


async def recount_seats(request: web.Request) -> web.Response:
    """Recount the seats in use from the users, to repair a counter a crash left too high."""
    usage = await services(request).tenancy.recount_seats(request.match_info["name"])
    return json_response(seats_view(usage))
