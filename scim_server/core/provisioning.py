"""The SCIM resource operations: create, read, list, replace, patch and delete.

This is the protocol core, free of HTTP: handlers call it with parsed input and
turn what it answers (or raises) into responses. It owns the rules that span
storage pieces: validation against the schema, uniqueness, versions and
retries, passwords, and group membership with derived ``User.groups``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidValueException,
    MutabilityException,
    PreconditionFailedException,
    Resource,
)

from scim_server.config import Settings
from scim_server.core.cursors import (
    CursorCodec,
    Direction,
    Position,
    fingerprint,
    keyset_condition,
    sort_value,
    traversal,
)
from scim_server.core.directory import Directory
from scim_server.core.errors import (
    TooManyConcurrentChanges,
    from_validation_error,
    resource_not_found,
)
from scim_server.core.filters import compile_filter, compile_sort
from scim_server.core.listing import ListQuery, list_response
from scim_server.core.passwords import hash_password
from scim_server.core.patch import MemberChange, apply_operations, plan_patch
from scim_server.core.projection import Selection
from scim_server.core.rendering import Renderer
from scim_server.core.scope import Scope
from scim_server.core.seats import Seats, seat_change
from scim_server.models import GROUPS, KINDS, USERS, Member, ResourceKind, parse_members
from scim_server.storage.database import Database, Document
from scim_server.storage.documents import etag, stored_attributes, to_payload
from scim_server.storage.memberships import MembershipRepository
from scim_server.storage.resources import ResourceRepository, SortSpec, summary
from scim_server.storage.seats import SeatCounter

Payload = dict[str, Any]

MAX_WRITE_ATTEMPTS = 20
"""Optimistic-concurrency retries before a PATCH gives up (each retry re-reads and re-applies)."""


@dataclass(frozen=True)
class Preconditions:
    """``If-Match`` / ``If-None-Match`` ETags (RFC 7644 §3.14); None when absent."""

    if_match: tuple[str, ...] | None = None
    if_none_match: tuple[str, ...] | None = None

    @staticmethod
    def matches(tags: tuple[str, ...], version: int) -> bool:
        current = etag(version)
        return any(tag == "*" or _weak(tag) == current for tag in tags)

    def expected_version(self, document: Document) -> int | None:
        """The version a write must find, or None when the client did not ask; stale: 412."""
        if self.if_match is None:
            return None
        version = int(document["meta"]["version"])
        if not self.matches(self.if_match, version):
            raise PreconditionFailedException(detail="the resource has changed (If-Match)")
        return version


def _weak(tag: str) -> str:
    return tag if tag.startswith("W/") else f"W/{tag}"


UNCONDITIONAL = Preconditions()
ALL_ATTRIBUTES = Selection()


@dataclass(frozen=True)
class Answer:
    payload: Payload
    version: int


class Provisioning:
    """Resource operations for one database; tenant and base URL come with each call."""

    def __init__(
        self,
        database: Database,
        *,
        max_results: int,
        cursors: CursorCodec,
        patch_max_operations: int = Settings.patch_max_operations,
    ) -> None:
        self.max_results = max_results
        self.patch_max_operations = patch_max_operations
        self.cursors = cursors
        self.repositories = {kind.name: ResourceRepository(database, kind) for kind in KINDS}
        self.memberships = MembershipRepository(database)
        self.renderer = Renderer(self.memberships, self.repositories[GROUPS.name])
        # The read-only queries of users and groups that sign-in needs, as typed records.
        self.directory = Directory(
            self.repositories[USERS.name], self.repositories[GROUPS.name], self.memberships
        )
        self.seats = Seats(SeatCounter(database))
        self._writers: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def repository(self, kind: ResourceKind) -> ResourceRepository:
        return self.repositories[kind.name]

    def _writing(self, kind: ResourceKind, tenant: str, resource_id: str) -> asyncio.Lock:
        """One lock per resource: this process's read-modify-writes of it take turns.

        Without it, N concurrent writers all read the same version and all but one
        lose, round after round, so the last needs N attempts and more than
        ``MAX_WRITE_ATTEMPTS`` writers got 412 without ever sending If-Match. The
        conditional write and its retry still guard against other processes.
        """
        key = (kind.name, tenant, resource_id)
        lock = self._writers.get(key)
        if lock is None:
            lock = self._writers[key] = asyncio.Lock()
        return lock

    # -- reading -----------------------------------------------------------------

    async def get(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        selection: Selection = ALL_ATTRIBUTES,
    ) -> Answer:
        document = await self.repository(kind).get(scope.tenant, resource_id)
        if document is None:
            raise resource_not_found(kind.endpoint, resource_id)
        payloads = await self.renderer.render(kind, scope, [document], selection)
        return Answer(payloads[0], int(document["meta"]["version"]))

    async def list(self, kind: ResourceKind, scope: Scope, query: ListQuery) -> Payload:
        mongo_query = compile_filter(query.filter, kind.model) if query.filter else {}
        if query.cursor is not None:
            return await self._list_by_cursor(kind, scope, query, mongo_query)
        repository = self.repository(kind)
        size = query.page_size(self.max_results)
        documents: list[Document] = []
        if size > 0:
            documents = await repository.find(
                scope.tenant,
                mongo_query,
                self._sort(kind, query),
                skip=query.start_index - 1,
                limit=size,
            )
        if 0 < len(documents) < size or (size > 0 and not documents and query.start_index == 1):
            # A page that is not full is the last one: the total is known without counting,
            # which spares the lookups IdPs make most (``userName eq``) a second query.
            total = query.start_index - 1 + len(documents)
        else:
            total = await repository.count(scope.tenant, mongo_query)
        resources = await self.renderer.render(kind, scope, documents, query.selection)
        return list_response(resources, total, query.start_index)

    async def _list_by_cursor(
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
            condition = {"$and": [mongo_query, keyset_condition(sort, position)]}
        # One extra document tells whether there is a page beyond this one.
        documents = await self.repository(kind).find(
            scope.tenant, condition, traversal(sort, direction), skip=0, limit=size + 1
        )
        more = len(documents) > size
        documents = documents[:size]
        if direction == "previous":
            documents.reverse()
        field = sort[0][0]

        def cursor_at(document: Document, towards: Direction) -> str:
            value = sort_value(document, field)
            if isinstance(value, list):
                raise InvalidValueException(
                    detail="cursor pagination sorts by a single-valued attribute"
                )
            position = Position(towards, value, document["_id"])
            return self.cursors.encode(scope.tenant, bound_to, position)

        resources = await self.renderer.render(kind, scope, documents, query.selection)
        response = list_response(resources, None, None)
        has_next = more if direction == "next" else position is not None
        has_previous = position is not None if direction == "next" else more
        if documents and has_next:
            response["nextCursor"] = cursor_at(documents[-1], "next")
        if documents and has_previous:
            response["previousCursor"] = cursor_at(documents[0], "previous")
        return response

    async def search_all(self, scope: Scope, query: ListQuery) -> Payload:
        """Root ``/.search`` across every resource type (RFC 7644 §3.4.3)."""
        if query.sort_by:
            raise InvalidValueException(detail="sortBy is not supported across resource types")
        size = query.page_size(self.max_results)
        first, end = query.start_index - 1, query.start_index - 1 + size
        total = 0
        pages: list[tuple[ResourceKind, list[Document]]] = []
        for kind in KINDS:
            # The page is a window over the concatenation Users + Groups, each in id order.
            mongo_query = (
                compile_filter(query.filter, kind.model, strict=False) if query.filter else {}
            )
            repository = self.repository(kind)
            count = await repository.count(scope.tenant, mongo_query)
            low, high = max(first, total), min(end, total + count)
            documents = []
            if high > low:
                documents = await repository.find(
                    scope.tenant, mongo_query, [("_id", 1)], skip=low - total, limit=high - low
                )
            total += count
            pages.append((kind, documents))
        resources = [
            payload
            for kind, documents in pages
            for payload in await self.renderer.render(kind, scope, documents, query.selection)
        ]
        return list_response(resources, total, query.start_index)

    def _sort(self, kind: ResourceKind, query: ListQuery) -> SortSpec:
        direction = -1 if query.descending else 1
        if not query.sort_by:
            return [("_id", 1)]
        # _id breaks ties, so equal sort keys still page deterministically.
        return [(compile_sort(query.sort_by, kind.model), direction), ("_id", direction)]

    # -- writing -----------------------------------------------------------------

    async def create(self, kind: ResourceKind, scope: Scope, body: Payload) -> Answer:
        resource = _validate(kind, body, Context.RESOURCE_CREATION_REQUEST)
        members = await self._check_members(scope, None, _declared_members(kind, body))
        now = datetime.now(UTC)
        resource_id = str(uuid.uuid4())
        document = await self._document(kind, resource, resource_id, scope.tenant, now)
        if members:
            # Adding the members bumps the version after they land (storage/memberships.py),
            # so the group starts one below: complete, it is at version 1 like any new resource.
            document["meta"]["version"] = 0
        await self.seats.around(
            scope.tenant,
            _seats_taken(kind, None, document["r"]),
            partial(self._insert, kind, document),
        )
        if members:
            meta = await self.memberships.add(scope.tenant, resource_id, members)
            document["meta"] = meta or document["meta"]
        # Rendered from what was just written: a new resource is only related to the
        # members it was created with, so there is nothing else to read back.
        payloads = await self.renderer.render(
            kind, scope, [document], ALL_ATTRIBUTES, related=bool(members)
        )
        return Answer(payloads[0], int(document["meta"]["version"]))

    async def replace(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        body: Payload,
        preconditions: Preconditions = UNCONDITIONAL,
    ) -> Answer:
        """PUT: the body becomes the resource; readOnly attributes and the password are kept."""
        if body.get("id") not in (None, resource_id):
            raise MutabilityException(detail="id is immutable")
        members = await self._check_members(scope, resource_id, _declared_members(kind, body))

        def replaced(original: Resource[Any]) -> Resource[Any]:
            replacement = _validate(kind, body, Context.RESOURCE_REPLACEMENT_REQUEST)
            try:
                replacement.replace(original)
            except ValidationError as error:
                raise from_validation_error(error) from None
            return replacement

        await self._rewrite(kind, scope, resource_id, preconditions, replaced)
        if kind is GROUPS:
            await self._replace_members(scope.tenant, resource_id, members)
        return await self.get(kind, scope, resource_id)

    async def patch(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        body: Any,
        preconditions: Preconditions = UNCONDITIONAL,
        selection: Selection | None = ALL_ATTRIBUTES,
    ) -> Answer:
        """Apply a PatchOp; ``selection=None`` answers the new version only, with no payload."""
        # Planning walks every operation and entry: as the application of the plan, off the loop.
        plan = await asyncio.to_thread(plan_patch, kind, body, self.patch_max_operations)
        # Every member id is checked before anything is written: a bad one fails the whole PATCH.
        resolved = [
            await self._check_members(scope, resource_id, change.members)
            if change.op in ("add", "replace")
            else change.members
            for change in plan.member_changes
        ]

        def patched(resource: Resource[Any]) -> Resource[Any] | None:
            return resource if apply_operations(kind, resource, plan.operations) else None

        await self._rewrite(kind, scope, resource_id, preconditions, patched)
        # Each member change that changes something bumps the version after it lands.
        for change, members in zip(plan.member_changes, resolved, strict=True):
            await self._apply_member_change(scope.tenant, resource_id, change, members)
        if selection is None:
            return Answer({}, await self._version(kind, scope, resource_id))
        return await self.get(kind, scope, resource_id, selection)

    async def _rewrite(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        preconditions: Preconditions,
        transform: Callable[[Resource[Any]], Resource[Any] | None],
    ) -> bool:
        """Read, transform and conditionally write one resource; answers whether it wrote.

        The write only lands on the version that was read. When another writer got
        there first, the resource is read again and the transform re-applied, so
        concurrent writers never drop each other's changes; with ``If-Match`` the
        client asked for exactly the version it saw, so a conflict is its 412.
        ``transform`` answers None when there is nothing to write.
        """
        repository = self.repository(kind)
        location = scope.location(kind, resource_id)
        async with self._writing(kind, scope.tenant, resource_id):
            for attempt in range(MAX_WRITE_ATTEMPTS):
                document = await repository.get(scope.tenant, resource_id)
                if document is None:
                    raise resource_not_found(kind.endpoint, resource_id)
                expected = preconditions.expected_version(document)
                # Validating the stored state, transforming it and dumping the result is CPU
                # work that grows with the resource and the request (a thousand emails, a
                # thousand operations): a worker thread keeps the event loop serving every
                # other tenant meanwhile.
                stored = await asyncio.to_thread(
                    _transformed, kind, to_payload(kind, document, location), transform
                )
                if stored is None:
                    return False
                changes = await _with_password_hash(*stored)
                write = partial(
                    repository.update,
                    scope.tenant,
                    resource_id,
                    int(document["meta"]["version"]),
                    changes,
                    datetime.now(UTC),
                )
                if await self.seats.around(
                    scope.tenant, _seats_taken(kind, document["r"], changes["r"]), write
                ):
                    renamed = summary({"r": changes["r"]}).name
                    if renamed != summary(document).name:
                        # The name shows in every group the resource belongs to.
                        await self.memberships.rename_member(scope.tenant, resource_id, renamed)
                    return True
                if expected is not None:
                    raise PreconditionFailedException(detail="the resource has changed (If-Match)")
                # Another process won this round: back off a little, with jitter, and retry.
                await _back_off(attempt)
        raise TooManyConcurrentChanges(detail="too many concurrent changes to this resource")

    async def _version(self, kind: ResourceKind, scope: Scope, resource_id: str) -> int:
        document = await self.repository(kind).get(scope.tenant, resource_id, {"meta.version": 1})
        if document is None:
            raise resource_not_found(kind.endpoint, resource_id)
        return int(document["meta"]["version"])

    async def delete(
        self,
        kind: ResourceKind,
        scope: Scope,
        resource_id: str,
        preconditions: Preconditions = UNCONDITIONAL,
    ) -> None:
        """Delete the version that was read, so whether it held a seat is known, not raced.

        A PATCH landing between the read and the delete changes the version: the
        delete then misses and reads again, as ``_rewrite`` does.
        """
        repository = self.repository(kind)
        async with self._writing(kind, scope.tenant, resource_id):
            for attempt in range(MAX_WRITE_ATTEMPTS):
                document = await repository.get(
                    scope.tenant, resource_id, {"meta.version": 1, "r.active": 1}
                )
                if document is None:
                    raise resource_not_found(kind.endpoint, resource_id)
                expected = preconditions.expected_version(document)
                deleted: list[Document] = []
                version = int(document["meta"]["version"])
                write = partial(_delete, repository, scope.tenant, resource_id, version, deleted)
                if await self.seats.around(
                    scope.tenant, _seats_taken(kind, document.get("r", {}), None), write
                ):
                    # Only once the document is gone: see storage/memberships.py.
                    await self.memberships.forget(scope.tenant, deleted[0], is_group=kind is GROUPS)
                    return
                if expected is not None:
                    raise PreconditionFailedException(detail="the resource has changed (If-Match)")
                await _back_off(attempt)
        raise TooManyConcurrentChanges(detail="too many concurrent changes to this resource")

    async def delete_tenant(self, tenant: str) -> None:
        for repository in self.repositories.values():
            await repository.delete_tenant(tenant)
        await self.memberships.delete_tenant(tenant)

    # -- helpers -----------------------------------------------------------------

    async def _insert(self, kind: ResourceKind, document: Document) -> bool:
        """An insert in the shape ``Seats.around`` wraps: it lands, or it raises."""
        await self.repository(kind).insert(document)
        return True

    async def _document(
        self,
        kind: ResourceKind,
        resource: Resource[Any],
        resource_id: str,
        tenant: str,
        now: datetime,
    ) -> Document:
        document: Document = {
            "_id": resource_id,
            "tenant": tenant,
            "meta": {"created": now, "lastModified": now, "version": 1},
        }
        document.update(await self._changes(kind, resource))
        return document

    async def _changes(self, kind: ResourceKind, resource: Resource[Any]) -> Document:
        """The stored fields a resource state becomes: ``r``, ``c`` and a new password hash."""
        return await _with_password_hash(*_stored(kind, resource))

    async def _check_members(
        self, scope: Scope, group_id: str | None, members: tuple[Member, ...]
    ) -> tuple[Member, ...]:
        """Resolve each member's type in this tenant; unknown ids are 400 invalidValue."""
        if not members:
            return members
        ids = {member.value for member in members}
        if group_id is not None and group_id in ids:
            raise InvalidValueException(detail="a group cannot be a member of itself")
        resolved: dict[str, str] = {}
        names: dict[str, str | None] = {}
        for kind in KINDS:
            found = await self.repository(kind).summaries(scope.tenant, ids - resolved.keys())
            resolved |= dict.fromkeys(found, kind.name)
            names |= {resource: summary.name for resource, summary in found.items()}
        unknown = sorted(ids - resolved.keys())
        if unknown:
            raise InvalidValueException(detail=f"unknown member id(s): {', '.join(unknown)}")
        mistyped = [m.value for m in members if m.type and m.type != resolved[m.value]]
        if mistyped:
            raise InvalidValueException(detail=f"member type does not match: {', '.join(mistyped)}")
        return tuple(replace(m, type=resolved[m.value], name=names[m.value]) for m in members)

    async def _apply_member_change(
        self, tenant: str, group: str, change: MemberChange, members: tuple[Member, ...]
    ) -> None:
        if change.op == "add":
            await self.memberships.add(tenant, group, members)
        elif change.op == "remove":
            await self.memberships.remove(tenant, group, [m.value for m in members])
        elif change.op == "clear":
            await self.memberships.clear(tenant, group)
        else:
            await self._replace_members(tenant, group, members)

    async def _replace_members(self, tenant: str, group: str, members: tuple[Member, ...]) -> None:
        """Set the members to exactly ``members``, touching only the differences."""
        current = await self.memberships.member_ids(tenant, group)
        wanted = {member.value for member in members}
        await self.memberships.remove(tenant, group, current - wanted)
        await self.memberships.add(tenant, group, [m for m in members if m.value not in current])
        for member in members:
            if member.value in current and member.display is not None:
                await self.memberships.set_display(tenant, group, member)


async def _delete(
    repository: ResourceRepository,
    tenant: str,
    resource_id: str,
    version: int,
    deleted: list[Document],
) -> bool:
    """A delete in the shape ``Seats.around`` wraps; what it deleted goes to ``deleted``."""
    gone = await repository.delete(tenant, resource_id, version)
    if gone is not None:
        deleted.append(gone)
    return gone is not None


async def _back_off(attempt: int) -> None:
    """A short, jittered, growing pause before an optimistic write's next round."""
    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))


def _seats_taken(
    kind: ResourceKind, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> int:
    """The seats a write takes (1), frees (-1) or neither; only users hold seats."""
    return seat_change(before, after) if kind is USERS else 0


def _transformed(
    kind: ResourceKind,
    payload: Payload,
    transform: Callable[[Resource[Any]], Resource[Any] | None],
) -> tuple[Document, str | None] | None:
    """A stored resource's payload validated, transformed and made stored fields (``_stored``).

    None when the transform has nothing to write (see ``_rewrite``).
    """
    changed = transform(_validate(kind, payload, Context.DEFAULT))
    return None if changed is None else _stored(kind, changed)


def _stored(kind: ResourceKind, resource: Resource[Any]) -> tuple[Document, str | None]:
    """The stored fields ``r`` and ``c`` of a resource state, and the password it sets, if any."""
    payload = resource.model_dump(scim_ctx=Context.DEFAULT)
    raw, comparison = stored_attributes(kind, payload)
    password = payload.get("password") if kind is USERS else None
    return {"r": raw, "c": comparison}, password or None


async def _with_password_hash(changes: Document, password: str | None) -> Document:
    """The stored fields, with the hash of the password they set (scrypt, off the loop)."""
    if password:
        changes["pw"] = await hash_password(password)
    return changes


def _validate(kind: ResourceKind, body: Payload, context: Context) -> Resource[Any]:
    if not isinstance(body, dict):
        raise InvalidValueException(detail="the body is a JSON object")
    payload = {
        key: value
        for key, value in body.items()
        if not (kind is GROUPS and key.lower() == "members")
    }
    if isinstance(payload.get("schemas"), list):
        payload["schemas"] = _served_schemas(kind, payload)
    try:
        return kind.model.model_validate(payload, scim_ctx=context)
    except ValidationError as error:
        raise from_validation_error(error) from None


def _served_schemas(kind: ResourceKind, payload: Payload) -> list[Any]:
    """``schemas`` without the URNs this server does not serve and the body carries nothing of.

    Entra ID lists ``http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group``
    on every group it creates, with no attribute under it. Dropping such a bare URN loses
    nothing; a URN that does carry attributes is still refused, since they could not be kept.
    """
    served = {urn.lower() for urn in (kind.schema, *kind.extensions)}
    carried = {key.lower() for key in payload}
    return [
        urn
        for urn in payload["schemas"]
        if not isinstance(urn, str) or urn.lower() in served or urn.lower() in carried
    ]


def _declared_members(kind: ResourceKind, body: Payload) -> tuple[Member, ...]:
    """A group body's ``members`` (empty when absent or null)."""
    if kind is not GROUPS:
        return ()
    key = next((k for k in body if k.lower() == "members"), None)
    if key is None or body[key] is None:
        return ()
    if not isinstance(body[key], list):
        raise InvalidValueException(detail="members is a list of objects with a string value")
    return parse_members(body[key])
