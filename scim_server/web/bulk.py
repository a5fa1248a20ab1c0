"""``POST /{tenant}/Bulk`` (RFC 7644 §3.7): the HTTP side of ``scim_server.core.bulk``.

The payload limit (``maxPayloadSize``) is enforced before the body is read, by the
``body_limit`` middleware; the operation count (``maxOperations``) right after parsing.
"""

from __future__ import annotations

from aiohttp import web

from scim_server.core import bulk as protocol
from scim_server.web.responses import read_object, scim_response
from scim_server.web.state import services
from scim_server.web.tenancy import authenticated_scope


async def bulk(request: web.Request) -> web.Response:
    scope = await authenticated_scope(request)
    state = services(request)
    parsed = protocol.parse_request(
        await read_object(request), max_operations=state.settings.bulk_max_operations
    )
    return scim_response(await protocol.execute(state.provisioning, scope, parsed))
