"""Writing resources: create, replace, patch and delete, without lost updates.

Every write of an existing resource is optimistic: it reads the resource, computes the
new state, and writes it only onto the version it read. A writer that lost the race
reads again and re-applies its change (``_rewrite``); with ``If-Match`` the client asked
for exactly the version it saw, so losing is its 412. Seats are reserved around the
writes that change whether a user holds one, and members are applied through
``members.py`` after the resource's own attributes.
"""

from __future__ import annotations

import asyncio
import random
import uuid
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidValueException,
    MutabilityException,
    Resource,
)

from scim_server.core.errors import (
    ServiceUnavailableException,
    from_validation_error,
    resource_not_found,
)
from scim_server.core.members import Members, declared_members
from scim_server.core.passwords import hash_password
from scim_server.core.patch import apply_operations, plan_patch
from scim_server.core.preconditions import UNCONDITIONAL, Preconditions, resource_changed
from scim_server.core.projection import Selection
from scim_server.core.queries import ALL_ATTRIBUTES, Answer, Queries
from scim_server.core.rendering import Renderer, to_payload
from scim_server.core.scope import Scope
from scim_server.core.seats import Seats, seat_change
from scim_server.models import GROUPS, USERS, ResourceKind
from scim_server.storage.database import Document
from scim_server.storage.documents import stored_attributes
from scim_server.storage.memberships import MembershipRepository
from scim_server.storage.resources import ResourceRepository, summary

Payload = dict[str, Any]

MAX_WRITE_ATTEMPTS = 20
"""Optimistic-concurrency retries before a PATCH gives up (each retry re-reads and re-applies)."""


class Writes:
    """The write side of ``Provisioning``: tenant and base URL come with each call."""

    def __init__(
        self,
        repositories: dict[str, ResourceRepository],
        memberships: MembershipRepository,
        renderer: Renderer,
        seats: Seats,
        queries: Queries,
        *,
        patch_max_operations: int,
    ) -> None:
        self.repositories = repositories
        self.memberships = memberships
        self.members = Members(repositories, memberships)
        self.renderer = renderer
        self.seats = seats
        self.queries = queries
        self.patch_max_operations = patch_max_operations
        self._writers: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

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

    async def create(self, kind: ResourceKind, scope: Scope, body: Payload) -> Answer:
        resource = validate(kind, body, Context.RESOURCE_CREATION_REQUEST)
        members = await self.members.check(scope, None, declared_members(kind, body))
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
        members = await self.members.check(scope, resource_id, declared_members(kind, body))

        def replaced(original: Resource[Any]) -> Resource[Any]:
            replacement = validate(kind, body, Context.RESOURCE_REPLACEMENT_REQUEST)
            try:
                replacement.replace(original)
            except ValidationError as error:
                raise from_validation_error(error) from None
            return replacement

        await self._rewrite(kind, scope, resource_id, preconditions, replaced)
        if kind is GROUPS:
            await self.members.replace(scope.tenant, resource_id, members)
        return await self.queries.get(kind, scope, resource_id)

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
            await self.members.check(scope, resource_id, change.members)
            if change.op in ("add", "replace")
            else change.members
            for change in plan.member_changes
        ]

        def patched(resource: Resource[Any]) -> Resource[Any] | None:
            return resource if apply_operations(kind, resource, plan.operations) else None

        await self._rewrite(kind, scope, resource_id, preconditions, patched)
        # Each member change that changes something bumps the version after it lands.
        for change, members in zip(plan.member_changes, resolved, strict=True):
            await self.members.apply(scope.tenant, resource_id, change, members)
        if selection is None:
            return Answer({}, await self.queries.version(kind, scope, resource_id))
        return await self.queries.get(kind, scope, resource_id, selection)

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
        repository = self.repositories[kind.name]
        location = scope.location(kind, resource_id)
        async with self._writing(kind, scope.tenant, resource_id):
            for attempt in range(MAX_WRITE_ATTEMPTS):
                document = await repository.get(scope.tenant, resource_id)
                if document is None:
                    raise resource_not_found(kind.endpoint, resource_id)
                version = int(document["meta"]["version"])
                expected = preconditions.expected_version(version)
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
                    version,
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
                    raise resource_changed()
                # Another process won this round: back off a little, with jitter, and retry.
                await _back_off(attempt)
        raise ServiceUnavailableException(detail="too many concurrent changes to this resource")

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
        repository = self.repositories[kind.name]
        async with self._writing(kind, scope.tenant, resource_id):
            for attempt in range(MAX_WRITE_ATTEMPTS):
                document = await repository.get(
                    scope.tenant, resource_id, {"meta.version": 1, "r.active": 1}
                )
                if document is None:
                    raise resource_not_found(kind.endpoint, resource_id)
                version = int(document["meta"]["version"])
                expected = preconditions.expected_version(version)
                deleted: list[Document] = []
                write = partial(_delete, repository, scope.tenant, resource_id, version, deleted)
                if await self.seats.around(
                    scope.tenant, _seats_taken(kind, document.get("r", {}), None), write
                ):
                    # Only once the document is gone: see storage/memberships.py.
                    await self.memberships.forget(scope.tenant, deleted[0], is_group=kind is GROUPS)
                    return
                if expected is not None:
                    raise resource_changed()
                await _back_off(attempt)
        raise ServiceUnavailableException(detail="too many concurrent changes to this resource")

    async def _insert(self, kind: ResourceKind, document: Document) -> bool:
        """An insert in the shape ``Seats.around`` wraps: it lands, or it raises."""
        await self.repositories[kind.name].insert(document)
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
        document.update(await _with_password_hash(*_stored(kind, resource)))
        return document


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
    changed = transform(validate(kind, payload, Context.DEFAULT))
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


def validate(kind: ResourceKind, body: Payload, context: Context) -> Resource[Any]:
    """A request body (or a stored state) as the resource type's scim2-models model."""
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
