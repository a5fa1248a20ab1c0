"""The admin API for a tenant's webhooks: register, list, change, delete, rotate the secret,
read the delivery log and the dead letters, redeliver (``web/deliveries_admin.py``, as for every
channel), replay (``core/webhooks.py``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scim_server.storage.delivery import Subscription
from scim_server.web.admin import existing_tenant
from scim_server.web.deliveries_admin import add_delivery_routes
from scim_server.web.responses import json_response, read_object
from scim_server.web.state import services


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
    add_delivery_routes(router, item, lambda request: services(request).webhooks)
    router.add_post(f"{item}/replay", replay)
