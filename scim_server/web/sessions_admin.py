"""The admin API for a tenant's single sign-on sessions, behind the admin token like the rest
of /admin: list the sessions that would be accepted now, revoke one, or revoke all of a user's.

A session is named by its ``session_id``, the digest of the key its browser holds: listing
sessions never reveals anything that would sign a browser in.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from scim2_models import InvalidValueException, NotFoundException

from scim_server.core.sso.sessions import Session
from scim_server.web.admin import existing_tenant, int_parameter
from scim_server.web.responses import json_response
from scim_server.web.sso_admin import tenant_settings
from scim_server.web.state import services

SESSIONS_MAX_LIMIT = 1000
SESSIONS_DEFAULT_LIMIT = 100


def _session_view(session: Session) -> dict[str, Any]:
    return {
        "session_id": session.id,
        "user_id": session.user_id,
        "user_name": session.user_name,
        "issuer": session.issuer,
        "created": session.created.isoformat(),
        "expires": session.expires.isoformat(),
    }


async def list_sessions(request: web.Request) -> web.Response:
    """The tenant's live sessions, newest first (``user_id``: only that user's; ``limit``)."""
    tenant, settings = await tenant_settings(request)
    limit = int_parameter(request, "limit", 1, SESSIONS_MAX_LIMIT) or SESSIONS_DEFAULT_LIMIT
    sessions = await services(request).sso.sessions.live(
        tenant, datetime.now(UTC), limit, settings, request.query.get("user_id")
    )
    return json_response({"sessions": [_session_view(session) for session in sessions]})


async def revoke_session(request: web.Request) -> web.Response:
    """End one session at once, on every worker."""
    tenant = await existing_tenant(request)
    session_id = request.match_info["session_id"]
    if not await services(request).sso.sessions.revoke(tenant, session_id):
        raise NotFoundException(detail=f"no session {session_id!r} for tenant {tenant!r}")
    return web.Response(status=204)


async def revoke_user_sessions(request: web.Request) -> web.Response:
    """End every session of the user ``user_id`` names (required, so that no slip of a
    request signs a whole tenant out); answers how many there were."""
    tenant = await existing_tenant(request)
    user_id = request.query.get("user_id")
    if not user_id:
        raise InvalidValueException(detail="user_id is required: the user whose sessions to end")
    revoked = await services(request).sso.sessions.revoke_user(tenant, user_id)
    return json_response({"revoked": revoked})
