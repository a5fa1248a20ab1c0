"""The admin API: tenants and their SCIM bearer tokens, in a sub-application behind the admin token.

``routes`` mounts the admin routes (these and the seats and SSO ones) on their own aiohttp
sub-application under ``/admin``, whose one middleware, ``admin_token_required``, guards every
one of them: no handler checks the token itself, and no route can be added without the check.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from scim2_models import InvalidValueException, NotFoundException, UnauthorizedException

from scim_server import metrics
from scim_server.core.events import MAX_SEQUENCE
from scim_server.core.journal import body_view
from scim_server.storage.tenants import TokenRecord
from scim_server.web.responses import json_response, read_object
from scim_server.web.seats_admin import seats_view
from scim_server.web.state import services
from scim_server.web.tenancy import base_url
from scim_server.wire import client_instant, header_bytes

JOURNAL_MAX_LIMIT = 1000
MAX_TOKEN_TTL_SECONDS = 100 * 365 * 24 * 3600
"""A century: a longer lifetime is no lifetime a token needs, and far enough beyond it
the expiry date cannot be written (a ``datetime`` ends in the year 9999)."""


def check_admin_token(request: web.Request) -> None:
    """Refuse (401) a request without ``Authorization: Bearer <admin token>``."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedException(detail="the admin token is required")
    # Compared in constant time on the bytes the client sent (hmac.compare_digest takes str
    # only when it is ASCII).
    expected = services(request).admin_token.encode("utf-8")
    if not hmac.compare_digest(header_bytes(token.strip()), expected):
        raise UnauthorizedException(detail="the admin token is not valid")


@web.middleware
async def admin_token_required(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every admin route needs the admin token."""
    check_admin_token(request)
    return await handler(request)


async def existing_tenant(request: web.Request) -> str:
    """The ``{name}`` of the route, once it is known to be a tenant (404 otherwise)."""
    name = (await services(request).tenancy.require(request.match_info["name"])).name
    metrics.attribute_to_tenant(name)
    return name


def _ttl(body: dict[str, Any]) -> int | None:
    ttl = body.get("ttl_seconds")
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TOKEN_TTL_SECONDS
    ):
        raise InvalidValueException(
            detail=f"ttl_seconds is a positive integer of at most {MAX_TOKEN_TTL_SECONDS}"
        )
    return ttl


def _token_names(token_id: str) -> dict[str, str]:
    """A token is named ``token_id`` wherever the admin API shows one (as tenant creation does);
    ``id``, its former name in the token views, is kept alongside for clients that read it."""
    return {"token_id": token_id, "id": token_id}


def _token_view(token: TokenRecord) -> dict[str, Any]:
    return {
        **_token_names(token.id),
        "tenant": token.tenant,
        "created": token.created.isoformat(),
        "expires": token.expires.isoformat() if token.expires else None,
        "revoked": token.revoked.isoformat() if token.revoked else None,
        "description": token.description,
    }


async def create_tenant(request: web.Request) -> web.Response:
    body = await read_object(request)
    created = await services(request).tenancy.create(body.get("name"), ttl_seconds=_ttl(body))
    return json_response(
        {
            "name": created.name,
            "scim_base_url": base_url(request, created.name),
            "token": created.token.token,
            "token_id": created.token.token_id,
        },
        status=201,
    )


async def list_tenants(request: web.Request) -> web.Response:
    summaries = await services(request).tenancy.summaries()
    return json_response(
        {
            "tenants": [
                {
                    "name": tenant.name,
                    "scim_base_url": base_url(request, tenant.name),
                    "created": tenant.created.isoformat(),
                    **seats_view(tenant.seats),
                    # The former name of used, kept for clients that read it.
                    "seats_used": tenant.seats.used,
                }
                for tenant in summaries
            ]
        }
    )


async def delete_tenant(request: web.Request) -> web.Response:
    await services(request).tenancy.delete(request.match_info["name"])
    return web.Response(status=204)


async def issue_token(request: web.Request) -> web.Response:
    name = await existing_tenant(request)
    body = await read_object(request) if request.can_read_body else {}
    description = body.get("description")
    issued = await services(request).tokens.issue(
        name,
        ttl_seconds=_ttl(body),
        description=description if isinstance(description, str) else None,
    )
    return json_response(
        {
            **_token_names(issued.token_id),
            "token": issued.token,
            "tenant": name,
            "expires": issued.expires.isoformat() if issued.expires else None,
        },
        status=201,
    )


async def list_tokens(request: web.Request) -> web.Response:
    tokens = await services(request).tenancy.tokens_of(request.match_info["name"])
    return json_response({"tokens": [_token_view(token) for token in tokens]})


async def revoke_token(request: web.Request) -> web.Response:
    name = await existing_tenant(request)
    token_id = request.match_info["token_id"]
    if not await services(request).tokens.revoke(name, token_id):
        raise NotFoundException(detail=f"no token {token_id!r} for tenant {name!r}")
    return web.Response(status=204)


def int_parameter(request: web.Request, name: str, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise InvalidValueException(detail=f"{name} is an integer from {low} to {high}")
    return value


def _since(request: web.Request) -> datetime | None:
    raw = request.query.get("since")
    if raw is None:
        return None
    since = client_instant(raw)
    if since is None:
        raise InvalidValueException(detail="since is an ISO 8601 date-time")
    return since


async def journal(request: web.Request) -> web.Response:
    """A tenant's provisioning journal, newest first; ``limit``, ``since``, ``method``, ``status``
    narrow it."""
    name = await existing_tenant(request)
    limit = int_parameter(request, "limit", 1, JOURNAL_MAX_LIMIT) or 100
    status = int_parameter(request, "status", 100, 599)
    since = _since(request)
    state = services(request)
    await state.journal.flush()  # this worker's own recent requests are all there
    entries = await state.journal.entries(
        name, limit=limit, since=since, method=request.query.get("method"), status=status
    )
    return json_response(
        {
            "entries": [
                {
                    **entry,
                    "at": entry["at"].isoformat(),
                    "request_body": body_view(entry.get("request_body")),
                }
                for entry in entries
            ]
        }
    )


EVENTS_MAX_LIMIT = 1000


async def events(request: web.Request) -> web.Response:
    """A tenant's provisioning events in sequence order from ``from_sequence`` (by default the
    current end: none yet), at most ``limit``; ``next_sequence`` is where to read on from."""
    name = await existing_tenant(request)
    limit = int_parameter(request, "limit", 1, EVENTS_MAX_LIMIT) or 100
    relay = services(request).provisioning.relay
    start = int_parameter(request, "from_sequence", 1, MAX_SEQUENCE)
    if start is None:
        return json_response({"events": [], "next_sequence": await relay.next_sequence(name)})
    found = await relay.read(name, start, limit)
    following = found[-1].sequence + 1 if found else start
    return json_response(
        {"events": [event.to_json() for event in found], "next_sequence": following}
    )
