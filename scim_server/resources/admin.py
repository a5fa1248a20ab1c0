"""The admin API: tenants and their SCIM bearer tokens, guarded by the admin token."""

from __future__ import annotations

import hmac
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from scim2_models import (
    ConflictException,
    InvalidValueException,
    NotFoundException,
    UnauthorizedException,
)

from scim_server.journal import body_view
from scim_server.resources.tenancy import base_url
from scim_server.responses import json_response, read_object
from scim_server.state import services
from scim_server.storage.tenants import TenantExists
from scim_server.wire import header_bytes

TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
JOURNAL_MAX_LIMIT = 1000
MAX_TOKEN_TTL_SECONDS = 100 * 365 * 24 * 3600
"""A century: a longer lifetime is no lifetime a token needs, and far enough beyond it
the expiry date cannot be written (a ``datetime`` ends in the year 9999)."""


def require_admin(request: web.Request) -> None:
    """Refuse (401) a request without the admin token, in constant time.

    The comparison is on the bytes the client sent: ``hmac.compare_digest`` takes
    ``str`` only when it is ASCII.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = services(request).admin_token.encode("utf-8")
    if scheme.lower() != "bearer" or not hmac.compare_digest(header_bytes(token.strip()), expected):
        raise UnauthorizedException(detail="the admin token is required")


def unknown_tenant(name: str) -> NotFoundException:
    return NotFoundException(detail=f"no tenant {name!r}")


async def existing_tenant(request: web.Request) -> str:
    name = request.match_info["name"]
    if await services(request).tenants.get(name) is None:
        raise unknown_tenant(name)
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


def _token_view(
    token_id: str,
    tenant: str,
    created: datetime,
    expires: datetime | None,
    revoked: datetime | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    return {
        "id": token_id,
        "tenant": tenant,
        "created": created.isoformat(),
        "expires": expires.isoformat() if expires else None,
        "revoked": revoked.isoformat() if revoked else None,
        "description": description,
    }


async def create_tenant(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_object(request)
    name = body.get("name")
    if not isinstance(name, str) or not TENANT_NAME.fullmatch(name):
        raise InvalidValueException(
            detail="name is 1-63 lowercase letters, digits, '-' or '_', starting with a letter "
            "or digit"
        )
    state = services(request)
    try:
        await state.tenants.create(name, datetime.now(UTC))
    except TenantExists:
        raise ConflictException(detail=f"tenant {name!r} already exists") from None
    issued = await state.tokens.issue(name, ttl_seconds=_ttl(body), description="initial token")
    return json_response(
        {
            "name": name,
            "scim_base_url": base_url(request, name),
            "token": issued.token,
            "token_id": issued.token_id,
        },
        status=201,
    )


async def list_tenants(request: web.Request) -> web.Response:
    require_admin(request)
    state = services(request)
    tenants = await state.tenants.list()
    usages = [await state.provisioning.seats.of(t) for t in tenants]
    return json_response(
        {
            "tenants": [
                {
                    "name": t["_id"],
                    "scim_base_url": base_url(request, t["_id"]),
                    "created": t["created"].isoformat(),
                    "seats": usage.seats,
                    "seats_used": usage.used,
                }
                for t, usage in zip(tenants, usages, strict=True)
            ]
        }
    )


async def delete_tenant(request: web.Request) -> web.Response:
    require_admin(request)
    name = await existing_tenant(request)
    state = services(request)
    await state.tenants.delete(name)
    state.tokens.forget_tenant(name)
    await state.provisioning.delete_tenant(name)
    await state.journal.flush()  # nothing queued for it lands after the delete
    await state.journal.delete_tenant(name)
    await state.sso.repository.delete_tenant(name)
    return web.Response(status=204)


async def issue_token(request: web.Request) -> web.Response:
    require_admin(request)
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
            "id": issued.token_id,
            "token": issued.token,
            "tenant": name,
            "expires": issued.expires.isoformat() if issued.expires else None,
        },
        status=201,
    )


async def list_tokens(request: web.Request) -> web.Response:
    require_admin(request)
    name = await existing_tenant(request)
    tokens = await services(request).tenants.list_tokens(name)
    return json_response(
        {
            "tokens": [
                _token_view(
                    t["_id"],
                    name,
                    t["created"],
                    t.get("expires"),
                    t.get("revoked"),
                    t.get("description"),
                )
                for t in tokens
            ]
        }
    )


async def revoke_token(request: web.Request) -> web.Response:
    require_admin(request)
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
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidValueException(detail="since is an ISO 8601 date-time") from None
    return since if since.tzinfo is not None else since.replace(tzinfo=UTC)


async def journal(request: web.Request) -> web.Response:
    """A tenant's provisioning journal, newest first; ``limit``, ``since``, ``method``, ``status``
    narrow it."""
    require_admin(request)
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
