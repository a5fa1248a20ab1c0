"""The admin API of instance groups: tenants linked for cross-instance sign-in and, if asked,
the one-team policy (``core/instances.py``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scim_server.core.instances import InstanceGroupRecord
from scim_server.web.responses import json_response, read_object
from scim_server.web.state import services


def group_view(group: InstanceGroupRecord) -> dict[str, Any]:
    return {
        "name": group.name,
        "primary": group.primary,
        "domain": group.domain,
        "tenants": list(group.tenants),
        "admin_role": group.admin_role,
        "one_team": group.one_team,
        "created": group.created.isoformat(),
    }


async def create_group(request: web.Request) -> web.Response:
    created = await services(request).instances.create(await read_object(request))
    return json_response(group_view(created), status=201)


async def list_groups(request: web.Request) -> web.Response:
    groups = await services(request).instances.all()
    return json_response({"instance_groups": [group_view(group) for group in groups]})


async def get_group(request: web.Request) -> web.Response:
    group = await services(request).instances.require(request.match_info["group"])
    return json_response(group_view(group))


async def update_group(request: web.Request) -> web.Response:
    """PATCH: the fields sent change (``tenants`` replaces the list of members)."""
    instances = services(request).instances
    updated = await instances.update(request.match_info["group"], await read_object(request))
    return json_response(group_view(updated))


async def delete_group(request: web.Request) -> web.Response:
    await services(request).instances.delete(request.match_info["group"])
    return web.Response(status=204)
