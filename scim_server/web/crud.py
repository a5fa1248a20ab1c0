"""Resource endpoints (RFC 7644 §3.3-§3.6): one handler set per resource type.

Users and Groups take every method; a custom resource type (Roles, Entitlements, Licenses:
``core/custom.py``) is read the same way, but only where its tenant serves it (404
elsewhere), and never written through SCIM (405): its resources are the app's.
"""

from __future__ import annotations

from aiohttp import web

from scim_server.core.errors import MethodNotAllowedException
from scim_server.core.listing import ListQuery
from scim_server.core.preconditions import Preconditions, etag
from scim_server.core.projection import Selection
from scim_server.core.queries import Answer
from scim_server.core.scope import Scope
from scim_server.models import GROUPS, ResourceKind
from scim_server.web.responses import read_json, read_object, send_scim
from scim_server.web.state import services
from scim_server.web.tenancy import authenticated_scope


def _selection(request: web.Request) -> Selection:
    query = {key.lower(): value for key, value in request.query.items()}
    return Selection.parse(query.get("attributes"), query.get("excludedattributes"))


def _preconditions(request: web.Request) -> Preconditions:
    def tags(header: str) -> tuple[str, ...] | None:
        value = request.headers.get(header)
        if value is None:
            return None
        return tuple(tag.strip() for tag in value.split(",") if tag.strip())

    return Preconditions(if_match=tags("If-Match"), if_none_match=tags("If-None-Match"))


async def _resource_response(
    request: web.Request, answer: Answer, *, status: int = 200
) -> web.StreamResponse:
    headers = {"ETag": etag(answer.version)}
    if status == 201:
        headers["Location"] = answer.payload["meta"]["location"]
    return await send_scim(request, answer.payload, status=status, headers=headers)


class ResourceEndpoints:
    """The handlers of ``/{tenant}/Users`` or ``/{tenant}/Groups``."""

    def __init__(self, kind: ResourceKind) -> None:
        self.kind = kind

    async def _scoped(self, request: web.Request) -> Scope:
        """The request's scope, once the resource type is known to be served there."""
        return await authenticated_scope(request)

    async def list(self, request: web.Request) -> web.StreamResponse:
        scope = await self._scoped(request)
        query = ListQuery.from_query(request.query)
        page = await services(request).provisioning.list_page(self.kind, scope, query)
        return await send_scim(request, page)

    async def search(self, request: web.Request) -> web.StreamResponse:
        scope = await self._scoped(request)
        query = ListQuery.from_search(await read_object(request))
        page = await services(request).provisioning.list_page(self.kind, scope, query)
        return await send_scim(request, page)

    async def create(self, request: web.Request) -> web.StreamResponse:
        scope = await authenticated_scope(request)
        answer = await services(request).provisioning.create(
            self.kind, scope, await read_object(request)
        )
        return await _resource_response(request, answer, status=201)

    async def get(self, request: web.Request) -> web.StreamResponse:
        scope = await self._scoped(request)
        answer = await services(request).provisioning.get(
            self.kind, scope, request.match_info["id"], _selection(request)
        )
        if _preconditions(request).not_modified(answer.version):
            return web.Response(status=304, headers={"ETag": etag(answer.version)})
        return await _resource_response(request, answer)

    async def replace(self, request: web.Request) -> web.StreamResponse:
        scope = await authenticated_scope(request)
        answer = await services(request).provisioning.replace(
            self.kind,
            scope,
            request.match_info["id"],
            await read_object(request),
            _preconditions(request),
            _selection(request),
        )
        return await _resource_response(request, answer)

    async def patch(self, request: web.Request) -> web.StreamResponse:
        scope = await authenticated_scope(request)
        selection = _selection(request)
        no_content = (
            self.kind is GROUPS
            and services(request).settings.group_patch_response == "no-content"
            and not selection.attributes
            and not selection.excluded
        )
        answer = await services(request).provisioning.patch(
            self.kind,
            scope,
            request.match_info["id"],
            await read_json(request),
            _preconditions(request),
            None if no_content else selection,
        )
        if no_content:
            # RFC 7644 §3.5.2 allows 204: a member change then costs the same at any group size.
            return web.Response(status=204, headers={"ETag": etag(answer.version)})
        return await _resource_response(request, answer)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        scope = await authenticated_scope(request)
        await services(request).provisioning.delete(
            self.kind, scope, request.match_info["id"], _preconditions(request)
        )
        return web.Response(status=204)


READ_METHODS = frozenset({"GET", "HEAD"})


class CustomEndpoints(ResourceEndpoints):
    """The handlers of a custom resource type: read as users and groups are, written by the
    app alone (admin API), so every SCIM write is 405 where the type is served."""

    async def _scoped(self, request: web.Request) -> Scope:
        scope = await authenticated_scope(request)
        await services(request).custom.served(scope.tenant, self.kind.endpoint)
        return scope

    async def refused(self, request: web.Request) -> web.StreamResponse:
        await self._scoped(request)
        raise MethodNotAllowedException(
            allowed=READ_METHODS,
            detail=f"{self.kind.endpoint} are the app's: SCIM reads them and never writes them",
        )

    create = replace = patch = delete = refused


async def search_all(request: web.Request) -> web.StreamResponse:
    """``POST /{tenant}/.search`` across every resource type."""
    scope = await authenticated_scope(request)
    query = ListQuery.from_search(await read_object(request))
    return await send_scim(request, await services(request).provisioning.search_all(scope, query))
