"""Reading resources: one by id, a page of a list (by index or by cursor), the root search.

Filters, ``sortBy`` and cursor positions are compiled here to MongoDB query and sort
documents (``filters.py``, ``cursors.py``, ``_sort`` below) and run in the database on its
indexes. That query language is the one part of the stored layout the core speaks: the
repositories run it and answer ``StoredResource`` records, which ``rendering.py`` turns
into payloads with the derived attributes the selection asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim2_models import InvalidValueException

from scim_server.core.cursors import (
    CursorCodec,
    Direction,
    Position,
    fingerprint,
    keyset_condition,
    traversal,
)
from scim_server.core.errors import resource_not_found
from scim_server.core.filters import (
    Query,
    all_of,
    compile_filter,
    compile_sort,
    member_ids,
    with_member_groups,
)
from scim_server.core.listing import ListQuery, list_response
from scim_server.core.projection import Selection
from scim_server.core.rendering import Renderer
from scim_server.core.scope import Scope
from scim_server.models import KINDS, ResourceKind
from scim_server.storage.documents import StoredResource
from scim_server.storage.memberships import MembershipRepository
from scim_server.storage.resources import ResourceRepository, SortSpec

Payload = dict[str, Any]

ALL_ATTRIBUTES = Selection()


@dataclass(frozen=True)
class Answer:
    """A resource as the client receives it, and its version (the ETag's number)."""

    payload: Payload
    version: int


class Queries:
    """The read side of ``Provisioning``: tenant and base URL come with each call."""

    def __init__(
        self,
        repositories: dict[str, ResourceRepository],
        memberships: MembershipRepository,
        renderer: Renderer,
        *,
        max_results: int,
        cursors: CursorCodec,
    ) -> None:
        self.repositories = repositories
        self.memberships = memberships
        self.renderer = renderer
        self.max_results = max_results
        self.cursors = cursors

    async def get(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        selection: Selection = ALL_ATTRIBUTES,
    ) -> Answer:
        resource = await self.repositories[kind.name].read(scope.tenant, resource_id)
        if resource is None:
            raise resource_not_found(kind.endpoint, resource_id)
        payloads = await self.renderer.render(kind, scope, [resource], selection)
        return Answer(payloads[0], resource.version)

    async def list_page(self, kind: ResourceKind, scope: Scope, query: ListQuery) -> Payload:
        """One page of a list or ``.search`` (RFC 7644 §3.4.2), by index or by cursor."""
        mongo_query = await self._compiled(scope, query.filter, kind)
        if query.cursor is not None:
            return await self._cursor_page(kind, scope, query, mongo_query)
        repository = self.repositories[kind.name]
        size = query.page_size(self.max_results)
        resources: list[StoredResource] = []
        if size > 0:
            resources = await repository.records(
                scope.tenant,
                mongo_query,
                self._sort(kind, query),
                skip=query.start_index - 1,
                limit=size,
                in_sort_order=not mongo_query,
            )
        if 0 < len(resources) < size or (size > 0 and not resources and query.start_index == 1):
            # A page that is not full is the last one: the total is known without counting,
            # which spares the lookups IdPs make most (``userName eq``) a second query.
            total = query.start_index - 1 + len(resources)
        else:
            total = await repository.count(scope.tenant, mongo_query)
        payloads = await self.renderer.render(kind, scope, resources, query.selection)
        return list_response(payloads, total, query.start_index)

    async def _cursor_page(
        self, kind: ResourceKind, scope: Scope, query: ListQuery, mongo_query: dict[str, Any]
    ) -> Payload:
        """One RFC 9865 page: a keyset range after (or before) the cursor's position."""
        sort = self._sort(kind, query)
        bound_to = fingerprint(kind.name, query.filter, sort)
        size = query.page_size(self.max_results)
        position = (
            self.cursors.decode(query.cursor, scope.tenant, bound_to) if query.cursor else None
        )
        direction = position.direction if position else "next"
        condition = mongo_query
        if position is not None:
            # One document where the fields allow, beside the tenant: a top-level "$and"
            # hides the tenant from SecantusDB's planner, which then scans every tenant.
            condition = all_of([mongo_query, keyset_condition(sort, position)])
        # One extra resource tells whether there is a page beyond this one.
        keyed = await self.repositories[kind.name].keyed_records(
            scope.tenant,
            condition,
            traversal(sort, direction),
            limit=size + 1,
            in_sort_order=not mongo_query,
        )
        more = len(keyed) > size
        keyed = keyed[:size]
        if direction == "previous":
            keyed.reverse()

        def cursor_at(resource: StoredResource, value: Any, towards: Direction) -> str:
            if isinstance(value, list):
                raise InvalidValueException(
                    detail="cursor pagination sorts by a single-valued attribute"
                )
            position = Position(towards, value, resource.id)
            return self.cursors.encode(scope.tenant, bound_to, position)

        resources = [resource for resource, _ in keyed]
        payloads = await self.renderer.render(kind, scope, resources, query.selection)
        response = list_response(payloads, None, None)
        has_next = more if direction == "next" else position is not None
        has_previous = position is not None if direction == "next" else more
        if keyed and has_next:
            response["nextCursor"] = cursor_at(*keyed[-1], "next")
        if keyed and has_previous:
            response["previousCursor"] = cursor_at(*keyed[0], "previous")
        return response

    async def search_all(
        self, scope: Scope, query: ListQuery, kinds: tuple[ResourceKind, ...] = KINDS
    ) -> Payload:
        """Root ``/.search`` across every resource type (RFC 7644 §3.4.3): ``kinds``, as the
        tenant serves them."""
        if query.sort_by:
            raise InvalidValueException(detail="sortBy is not supported across resource types")
        size = query.page_size(self.max_results)
        first, end = query.start_index - 1, query.start_index - 1 + size
        total = 0
        pages: list[tuple[ResourceKind, list[StoredResource]]] = []
        for kind in kinds:
            # The page is a window over the concatenation Users + Groups, each in id order.
            mongo_query = await self._compiled(scope, query.filter, kind, strict=False)
            repository = self.repositories[kind.name]
            count = await repository.count(scope.tenant, mongo_query)
            low, high = max(first, total), min(end, total + count)
            resources = []
            if high > low:
                resources = await repository.records(
                    scope.tenant,
                    mongo_query,
                    [("_id", 1)],
                    skip=low - total,
                    limit=high - low,
                    in_sort_order=not mongo_query,
                )
            total += count
            pages.append((kind, resources))
        payloads = [
            payload
            for kind, resources in pages
            for payload in await self.renderer.render(kind, scope, resources, query.selection)
        ]
        return list_response(payloads, total, query.start_index)

    async def _compiled(
        self, scope: Scope, text: str | None, kind: ResourceKind, *, strict: bool = True
    ) -> Query:
        """A filter as the query to run: compiled, and the groups of the members it names
        read from the membership relation (one query, whatever the groups' sizes)."""
        if not text:
            return {}
        compiled = compile_filter(text, kind.model, strict=strict, resource_type=kind.name)
        members = member_ids(compiled)
        if not members:
            return compiled
        groups = await self.memberships.groups_holding(scope.tenant, members)
        return dict(with_member_groups(compiled, groups))

    def _sort(self, kind: ResourceKind, query: ListQuery) -> SortSpec:
        direction = -1 if query.descending else 1
        if not query.sort_by:
            return [("_id", 1)]
        # Ties are broken (by _id unless the key is unique), so pages stay deterministic.
        return self.repositories[kind.name].order_by(
            compile_sort(query.sort_by, kind.model), direction
        )
