"""Who a SCIM request is for: the tenant in the URL, proven by its bearer token."""

from __future__ import annotations

from aiohttp import web

from scim_server import metrics
from scim_server.core.clients import idp_family
from scim_server.core.scope import Scope
from scim_server.storage.events import Client
from scim_server.web.responses import public_root
from scim_server.web.state import services


def base_url(request: web.Request, tenant: str) -> str:
    return f"{public_root(request, services(request).settings.public_url)}/scim/v2/{tenant}"


async def authenticated_scope(request: web.Request) -> Scope:
    """Authenticate the request for the tenant its URL names (401 otherwise), and count it
    against the tenant's rate limit (429 over it).

    Every SCIM handler starts here, so this is where a SCIM request counts: once, Bulk
    included, and only once authenticated, so that nobody without the tenant's token can
    use its limit up.
    """
    tenant = request.match_info["tenant"]
    token_id = await services(request).tokens.authenticate(
        tenant, request.headers.get("Authorization")
    )
    metrics.attribute_to_tenant(tenant)
    await services(request).rate_limits.admit(tenant)
    client = Client("scim", token_id, idp_family(request.headers.get("User-Agent")))
    return Scope(tenant=tenant, base_url=base_url(request, tenant), client=client)
