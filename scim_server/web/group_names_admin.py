"""The admin API for whether a tenant's groups may share a displayName (by default they may not)."""

from __future__ import annotations

from aiohttp import web
from scim2_models import InvalidValueException

from scim_server.web.responses import json_response, read_object
from scim_server.web.state import services

SETTING = "allow_duplicates"


def _answer(allowed: bool) -> web.Response:
    return json_response({SETTING: allowed})


async def get_group_names(request: web.Request) -> web.Response:
    tenancy = services(request).tenancy
    return _answer(await tenancy.duplicate_group_names(request.match_info["name"]))


async def set_group_names(request: web.Request) -> web.Response:
    """Allow or refuse duplicate group names from the next write on; groups that already
    share a name keep it either way."""
    allowed = (await read_object(request)).get(SETTING)
    if not isinstance(allowed, bool):
        raise InvalidValueException(detail=f'send {{"{SETTING}": true}} or {{"{SETTING}": false}}')
    tenancy = services(request).tenancy
    return _answer(await tenancy.allow_duplicate_group_names(request.match_info["name"], allowed))
