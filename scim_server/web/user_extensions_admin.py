"""The admin API of a tenant's own User extensions (``core/user_extensions.py``).

``PUT .../user-extensions/{urn}`` defines one (an RFC 7643 §7 schema document), ``GET`` reads
one or all, ``DELETE`` removes one. The tenant's ``/Schemas`` and ``/ResourceTypes`` show them,
and its users take their attributes, from the next request on (within a few seconds in the
server's other processes).
"""

from __future__ import annotations

from aiohttp import web

from scim_server.web.responses import json_response, read_json
from scim_server.web.state import services

SETTING = "user_extensions"


async def list_extensions(request: web.Request) -> web.Response:
    extensions = services(request).provisioning.user_extensions
    return json_response({SETTING: await extensions.definitions(request.match_info["name"])})


async def get_extension(request: web.Request) -> web.Response:
    extensions = services(request).provisioning.user_extensions
    info = request.match_info
    return json_response(await extensions.definition(info["name"], info["urn"]))


async def define_extension(request: web.Request) -> web.Response:
    """Add the extension, or replace the tenant's definition of it; answers it as stored."""
    extensions = services(request).provisioning.user_extensions
    info = request.match_info
    definition = await extensions.define(info["name"], info["urn"], await read_json(request))
    return json_response(definition)


async def remove_extension(request: web.Request) -> web.Response:
    extensions = services(request).provisioning.user_extensions
    await extensions.remove(request.match_info["name"], request.match_info["urn"])
    return web.Response(status=204)
