"""Discovery endpoints (RFC 7644 §4): what this server is, per tenant base URL."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from scim2_models import NotFoundException

from scim_server.core import discovery
from scim_server.core.scope import Scope
from scim_server.models import USERS
from scim_server.web.responses import scim_response
from scim_server.web.state import services
from scim_server.web.tenancy import authenticated_scope


def capabilities(request: web.Request) -> discovery.Capabilities:
    settings = services(request).settings
    # The bulk route has its own body limit, so the largest body read is the larger of both.
    return discovery.Capabilities(
        max_results=settings.max_results,
        bulk_supported=True,
        bulk_max_operations=settings.bulk_max_operations,
        bulk_max_payload_size=settings.bulk_max_payload_bytes,
        max_body_bytes=max(settings.max_body_bytes, settings.bulk_max_payload_bytes),
        cursor_timeout_seconds=settings.cursor_timeout_seconds,
    )


async def service_provider_config(request: web.Request) -> web.Response:
    scope = await authenticated_scope(request)
    return scim_response(discovery.service_provider_config(scope.base_url, capabilities(request)))


async def _custom(request: web.Request, scope: Scope) -> discovery.Custom:
    """What the tenant's discovery documents add: its own User (with its extensions) and the
    custom resource types it serves."""
    users = await services(request).provisioning.user_extensions.kind(USERS, scope.tenant)
    return (users, *await services(request).custom.kinds(scope.tenant))


async def resource_types(request: web.Request) -> web.Response:
    scope = await authenticated_scope(request)
    documents = discovery.resource_types(scope.base_url, await _custom(request, scope))
    return scim_response(discovery.list_response(documents))


def _found(document: dict[str, Any] | None, what: str) -> web.Response:
    if document is None:
        raise NotFoundException(detail=f"no {what}")
    return scim_response(document)


async def resource_type(request: web.Request) -> web.Response:
    scope = await authenticated_scope(request)
    name = request.match_info["name"]
    document = discovery.resource_type(name, scope.base_url, await _custom(request, scope))
    return _found(document, f"resource type {name!r}")


async def schemas(request: web.Request) -> web.Response:
    scope = await authenticated_scope(request)
    documents = discovery.schemas(scope.base_url, await _custom(request, scope))
    return scim_response(discovery.list_response(documents))


async def schema(request: web.Request) -> web.Response:
    scope = await authenticated_scope(request)
    urn = request.match_info["urn"]
    document = discovery.schema(urn, scope.base_url, await _custom(request, scope))
    return _found(document, f"schema {urn!r}")
