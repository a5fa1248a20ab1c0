"""The admin API of an endpoint's deliveries, the same for every channel of the delivery engine
(a webhook, an SSF push stream): its delivery log, its dead letters, and one attempt now at dead
letters (``core/delivery.py``, ``DeliveryRecords``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from scim_server.core.delivery import DeliveryRecords
from scim_server.storage.delivery import DeadLetter, LoggedAttempt
from scim_server.web.admin import existing_tenant, int_parameter
from scim_server.web.responses import json_response, read_object

LOG_MAX_LIMIT = 1000
LOG_DEFAULT_LIMIT = 100
RecordsOf = Callable[[web.Request], DeliveryRecords]
"""The channel's records, from the request's services."""


def _attempt_view(attempt: LoggedAttempt) -> dict[str, Any]:
    return {
        "at": attempt.at.isoformat(),
        "event_id": attempt.event_id,
        "sequence": attempt.sequence,
        "type": attempt.event_type,
        "attempt": attempt.attempt,
        "outcome": attempt.outcome,
        "status": attempt.status,
        "latency_ms": round(attempt.latency_ms, 3),
        "response": attempt.excerpt,
    }


def _dead_letter_view(letter: DeadLetter) -> dict[str, Any]:
    return {
        "event_id": letter.event_id,
        "sequence": letter.sequence,
        "type": letter.event_type,
        "dead_at": letter.at.isoformat(),
        "attempts": letter.attempts,
        "last_status": letter.last_status,
        "last_response": letter.last_excerpt,
    }


def add_delivery_routes(router: web.UrlDispatcher, item: str, records_of: RecordsOf) -> None:
    """Under ``item`` (a path naming the tenant ``{name}`` and the endpoint ``{id}``):
    ``GET deliveries`` (``?limit=``, newest first), ``GET dead-letters`` and ``POST
    dead-letters/redeliver`` (``{"event_ids": [...]}``, all when omitted)."""

    async def deliveries(request: web.Request) -> web.Response:
        tenant = await existing_tenant(request)
        limit = int_parameter(request, "limit", 1, LOG_MAX_LIMIT) or LOG_DEFAULT_LIMIT
        attempts = await records_of(request).deliveries(tenant, request.match_info["id"], limit)
        return json_response({"deliveries": [_attempt_view(attempt) for attempt in attempts]})

    async def dead_letters(request: web.Request) -> web.Response:
        tenant = await existing_tenant(request)
        letters = await records_of(request).dead_letters(tenant, request.match_info["id"])
        return json_response({"dead_letters": [_dead_letter_view(letter) for letter in letters]})

    async def redeliver(request: web.Request) -> web.Response:
        tenant = await existing_tenant(request)
        body = await read_object(request) if request.can_read_body else {}
        done = await records_of(request).redeliver(
            tenant, request.match_info["id"], body.get("event_ids")
        )
        return json_response({"delivered": list(done.delivered), "failed": list(done.failed)})

    router.add_get(f"{item}/deliveries", deliveries)
    router.add_get(f"{item}/dead-letters", dead_letters)
    router.add_post(f"{item}/dead-letters/redeliver", redeliver)
