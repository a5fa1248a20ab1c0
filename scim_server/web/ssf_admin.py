"""The admin API of the Shared Signals transmitter: a tenant's receiver tokens and streams, and
a push stream's delivery log and dead letters (``web/deliveries_admin.py``, as for webhooks).

A receiver token is what an SSF receiver authenticates with to manage the tenant's streams and
poll them; it is shown once, when issued, and is never a SCIM token (nor a SCIM token one).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from scim2_models import NotFoundException

from scim_server.storage.ssf import ReceiverTokenRecord
from scim_server.web.admin import existing_tenant
from scim_server.web.deliveries_admin import add_delivery_routes
from scim_server.web.responses import json_response, read_object
from scim_server.web.ssf import issuer, status_view, stream_view
from scim_server.web.state import services


def _receiver_view(receiver: ReceiverTokenRecord) -> dict[str, Any]:
    return {
        "token_id": receiver.id,
        "tenant": receiver.tenant,
        "created": receiver.created.isoformat(),
        "revoked": receiver.revoked.isoformat() if receiver.revoked else None,
        "description": receiver.description,
    }


async def issue_receiver_token(request: web.Request) -> web.Response:
    """``{"description"}`` (optional) → ``201 {"token_id", "token", "tenant", "issuer"}``."""
    name = await existing_tenant(request)
    body = await read_object(request) if request.can_read_body else {}
    description = body.get("description")
    issued = await services(request).transmitter.issue_receiver_token(
        name, description if isinstance(description, str) else None
    )
    return json_response(
        {
            "token_id": issued.token_id,
            "token": issued.token,
            "tenant": name,
            "issuer": issuer(request, name),
        },
        status=201,
    )


async def list_receiver_tokens(request: web.Request) -> web.Response:
    name = await existing_tenant(request)
    receivers = await services(request).transmitter.receiver_tokens(name)
    return json_response({"receivers": [_receiver_view(receiver) for receiver in receivers]})


async def revoke_receiver_token(request: web.Request) -> web.Response:
    name = await existing_tenant(request)
    token_id = request.match_info["token_id"]
    if not await services(request).transmitter.revoke_receiver_token(name, token_id):
        raise NotFoundException(detail=f"no SSF receiver token {token_id!r} for tenant {name!r}")
    return web.Response(status=204)


async def list_streams(request: web.Request) -> web.Response:
    """Every stream of the tenant: its configuration, status and outbox position."""
    name = await existing_tenant(request)
    streams = await services(request).transmitter.streams(name)
    return json_response(
        {
            "streams": [
                {
                    **stream_view(request, stream),
                    **status_view(stream),
                    "position": stream.position,
                    "created": stream.created.isoformat(),
                }
                for stream in streams
            ]
        }
    )


def add_ssf_admin_routes(router: web.UrlDispatcher) -> None:
    """Receiver tokens, streams, and each push stream's deliveries under its stream id."""
    ssf = "/tenants/{name}/ssf"
    router.add_post(f"{ssf}/receivers", issue_receiver_token)
    router.add_get(f"{ssf}/receivers", list_receiver_tokens)
    router.add_delete(f"{ssf}/receivers/{{token_id}}", revoke_receiver_token)
    router.add_get(f"{ssf}/streams", list_streams)
    add_delivery_routes(
        router,
        f"{ssf}/streams/{{id}}",
        lambda request: services(request).transmitter.push_deliveries,
    )
