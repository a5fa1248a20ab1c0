"""The admin API of custom resource types: which a tenant serves, and the app's resources.

``PUT .../resource-types`` names the types (``Role``, ``Entitlement``, ``License``) the
tenant's SCIM base URL serves and advertises; ``POST .../resources/{endpoint}`` loads the
app's resources of one type (replacing each of the same ``externalId``); ``DELETE
.../resources/{endpoint}/{id}`` removes one. SCIM itself only reads them.
"""

from __future__ import annotations

from aiohttp import web

from scim_server.core.scope import Scope
from scim_server.models import ResourceKind
from scim_server.storage.events import Client
from scim_server.web.responses import json_response, read_object
from scim_server.web.state import services
from scim_server.web.tenancy import base_url

SETTING = "resource_types"

ADMIN = Client("admin")
"""Who loads custom resources: the app, through the admin API."""


def _answer(kinds: tuple[ResourceKind, ...]) -> web.Response:
    return json_response(
        {SETTING: [{"name": kind.name, "endpoint": f"/{kind.endpoint}"} for kind in kinds]}
    )


async def get_resource_types(request: web.Request) -> web.Response:
    return _answer(await services(request).custom.kinds(request.match_info["name"]))


async def set_resource_types(request: web.Request) -> web.Response:
    """Serve exactly the custom resource types named, from the next request on."""
    names = (await read_object(request)).get(SETTING)
    return _answer(await services(request).custom.serve(request.match_info["name"], names))


async def load_resources(request: web.Request) -> web.Response:
    """Load the app's resources of one type: ``{"Resources": [...]}``, answered as stored."""
    tenant = request.match_info["name"]
    scope = Scope(tenant=tenant, base_url=base_url(request, tenant), client=ADMIN)
    body = await read_object(request)
    answers = await services(request).custom.load(
        scope, request.match_info["endpoint"], body.get("Resources")
    )
    return json_response({"loaded": len(answers), "Resources": [a.payload for a in answers]})


async def remove_resource(request: web.Request) -> web.Response:
    info = request.match_info
    await services(request).custom.remove(info["name"], info["endpoint"], info["id"])
    return web.Response(status=204)
