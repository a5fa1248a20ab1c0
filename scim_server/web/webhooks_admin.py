"""The admin API for a tenant's webhooks: register, list, change, delete, rotate the secret,
read the delivery log and the dead letters, redeliver, replay (``core/webhooks.py``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scim_server.storage.delivery import DeadLetter, LoggedAttempt, Subscription
from scim_server.web.admin import existing_tenant, int_parameter
from scim_server.web.responses import json_response, read_object
from scim_server.web.state import services

LOG_MAX_LIMIT = 1000


def webhook_view(webhook: Subscription) -> dict[str, Any]:
    """A webhook as the admin API shows it: never its secret (only creation and rotation do)."""
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": None if webhook.types is None else list(webhook.types),
        "enabled": webhook.enabled,
        "disabled_reason": webhook.disabled_reason,
        "created": webhook.created.isoformat(),
        "next_sequence": webhook.position,
        "failed_attempts": webhook.attempts,
        "failing_since": webhook.failing_since.isoformat() if webhook.failing_since else None,
        "previous_secret_expires": (
            webhook.previous_until.isoformat() if webhook.previous_until else None
        ),
    }


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


async def create(request: web.Request) -> web.Response:
    tenant = await existing_tenant(request)
    webhook = await services(request).webhooks.create(tenant, await read_object(request))
    return json_response(
        {
            "id": webhook.id,
            "url": webhook.url,
            "events": None if webhook.types is None else list(webhook.types),
            "secret": webhook.secret,
        },
        status=201,
    )


async def list_webhooks(request: web.Request) -> web.Response:
    tenant = await existing_tenant(request)
    webhooks = await services(request).webhooks.all(tenant)
    return json_response({"webhooks": [webhook_view(webhook) for webhook in webhooks]})


async def show(request: web.Request) -> web.Response:
    tenant = await existing_tenant(request)
    webhook = await services(request).webhooks.get(tenant, request.match_info["id"])
    return json_response(webhook_view(webhook))


async def update(request: web.Request) -> web.Response:
    tenant = await existing_tenant(request)
    body = await read_object(request)
    webhook = await services(request).webhooks.update(tenant, request.match_info["id"], body)
    return json_response(webhook_view(webhook))


async def delete(request: web.Request) -> web.Response:
    tenant = await existing_tenant(request)
    await services(request).webhooks.delete(tenant, request.match_info["id"])
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    """A new secret; the previous one signs too for ``grace_seconds`` (default a day)."""
    tenant = await existing_tenant(request)
    body = await read_object(request) if request.can_read_body else {}
    webhook = await services(request).webhooks.rotate(
        tenant, request.match_info["id"], body.get("grace_seconds")
    )
    return json_response(
        {
            "id": webhook.id,
            "secret": webhook.secret,
            "previous_secret_expires": (
                webhook.previous_until.isoformat() if webhook.previous_until else None
            ),
        }
    )


async def deliveries(request: web.Request) -> web.Response:
    """The delivery log: attempts, newest first."""
    tenant = await existing_tenant(request)
    limit = int_parameter(request, "limit", 1, LOG_MAX_LIMIT) or 100
    attempts = await services(request).webhooks.deliveries(tenant, request.match_info["id"], limit)
    return json_response({"deliveries": [_attempt_view(attempt) for attempt in attempts]})


async def dead_letters(request: web.Request) -> web.Response:
    tenant = await existing_tenant(request)
    letters = await services(request).webhooks.dead_letters(tenant, request.match_info["id"])
    return json_response({"dead_letters": [_dead_letter_view(letter) for letter in letters]})


async def redeliver(request: web.Request) -> web.Response:
    """One attempt now at the dead letters named (``event_ids``; all when omitted)."""
    tenant = await existing_tenant(request)
    body = await read_object(request) if request.can_read_body else {}
    done = await services(request).webhooks.redeliver(
        tenant, request.match_info["id"], body.get("event_ids")
    )
    return json_response({"delivered": list(done.delivered), "failed": list(done.failed)})


async def replay(request: web.Request) -> web.Response:
    """Deliver again from ``from_sequence`` or from ``since`` (an ISO 8601 time)."""
    tenant = await existing_tenant(request)
    position = await services(request).webhooks.replay(
        tenant, request.match_info["id"], await read_object(request)
    )
    return json_response({"next_sequence": position})


def add_webhook_routes(router: web.UrlDispatcher) -> None:
    collection = "/tenants/{name}/webhooks"
    item = f"{collection}/{{id}}"
    router.add_post(collection, create)
    router.add_get(collection, list_webhooks)
    router.add_get(item, show)
    router.add_patch(item, update)
    router.add_delete(item, delete)
    router.add_post(f"{item}/rotate-secret", rotate_secret)
    router.add_get(f"{item}/deliveries", deliveries)
    router.add_get(f"{item}/dead-letters", dead_letters)
    router.add_post(f"{item}/dead-letters/redeliver", redeliver)
    router.add_post(f"{item}/replay", replay)
