"""Provisioning events: what each change emits, and the relay that moves them to the outbox.

Every write of a user or group carries its event in the same single-document write
(``storage/events.py``); this module decides what that event says (``user_emission``,
``group_emission``, ``deletion``), and runs the ``Relay``, which moves pending events into the
outbox, where each gets the tenant's next sequence number. The design and the argument that
every landed change is emitted exactly once, in order, are in docs/events.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from scim_server.core.background import stop_requested, stop_task
from scim_server.models import GROUPS, KINDS, ResourceKind, is_users
from scim_server.storage.documents import StoredResource
from scim_server.storage.events import (
    GROUP_CREATED,
    GROUP_DELETED,
    GROUP_UPDATED,
    USER_CREATED,
    USER_DEACTIVATED,
    USER_DELETED,
    USER_REACTIVATED,
    USER_UPDATED,
    Client,
    Emission,
    EventRepository,
    PendingDocument,
    Stored,
    StoredEvent,
)
from scim_server.storage.memberships import MembershipRepository

log = logging.getLogger(__name__)

POLL_SECONDS: Final = 1.0
"""How often the relay looks for events no write woke it for: those of another process that
stopped before moving them."""
GATHER_SECONDS: Final = 0.02
"""How long the relay, woken by a write, lets more writes come before it moves their events:
under load, one batch (a read, an insert, a bulk of pulls) carries many writes' events
instead of each write paying for its own."""
GRACE_SECONDS: Final = 2.0
"""How old a pending event must be before the safety net moves it: younger ones are still
the business of the process that wrote them."""
LEASE_SECONDS: Final = 3.0
"""How long the safety net's lease lasts unless renewed: each poll renews it, so a holder
misses three polls before another process takes over."""
LEASE: Final = "events-relay"
TASK: Final = "events-relay"
"""The name of each process's relay task (what tells its database commands from a request's)."""
SWEEP_BATCH: Final = 100
MAX_SEQUENCE: Final = 2**62
"""The largest sequence number a client may name: far beyond any tenant's events, and within
the 64-bit integers MongoDB compares."""
FINAL_DRAIN_SECONDS: Final = 1.0


@dataclasses.dataclass(frozen=True)
class Event(StoredEvent):
    """A provisioning event, as consumers read it (``to_json``)."""

    @classmethod
    def of(cls, stored: StoredEvent) -> Event:
        return cls(**{f.name: getattr(stored, f.name) for f in dataclasses.fields(stored)})

    def to_json(self) -> dict[str, Any]:
        """The public shape: one JSON object per event."""
        client: dict[str, Any] = {"via": self.client.via}
        if self.client.token_id is not None:
            client["token_id"] = self.client.token_id
        if self.client.idp is not None:
            client["idp"] = self.client.idp
        shape: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "tenant": self.tenant,
            "sequence": self.sequence,
            "time": self.time.astimezone(UTC).isoformat(),
            "resource": {
                "type": self.resource_type,
                "id": self.resource_id,
                "version": self.version,
            },
            "attributes": list(self.attributes),
            "values": dict(self.values),
            "client": client,
        }
        if self.members or self.type.startswith("group.members_"):
            shape["members"] = list(self.members)
        return shape


def _changes(
    before: Mapping[str, Any], after: Mapping[str, Any], password_set: bool
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The names of the top-level attributes that differ, and their new values (None: gone).

    A password set is named, never valued (only its hash is stored, and not here either).
    """
    names = sorted(name for name in {*before, *after} if before.get(name) != after.get(name))
    values = {name: after.get(name) for name in names}
    if password_set:
        names = sorted([*names, "password"])
    return tuple(names), values


def _active(attributes: Mapping[str, Any]) -> bool:
    return attributes.get("active") is not False


def emission(
    kind: ResourceKind,
    client: Client,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    *,
    password_set: bool = False,
    members: tuple[str, ...] = (),
) -> Emission:
    """The event of a creation (``before`` None) or of an update of a user or group."""
    attributes, values = _changes(before or {}, after, password_set)
    if kind is GROUPS:
        kind_of_change = GROUP_CREATED if before is None else GROUP_UPDATED
    elif before is None:
        kind_of_change = USER_CREATED
    elif _active(before) == _active(after):
        kind_of_change = USER_UPDATED
    else:
        kind_of_change = USER_REACTIVATED if _active(after) else USER_DEACTIVATED
    if members:
        attributes = tuple(sorted({*attributes, "members"}))
    return Emission(kind_of_change, client, attributes, values, members)


def deletion(kind: ResourceKind, client: Client) -> Emission:
    return Emission(USER_DELETED if is_users(kind) else GROUP_DELETED, client)


class Relay:
    """Moves pending events into the outbox: promptly for this process's own writes, which
    wake it, and, under a lease held by one process of those sharing the database, for any
    left pending longer than ``GRACE_SECONDS`` (a process that stopped before moving them).

    Moving is idempotent and keeps each tenant's sequence gap-free whoever does it, so two
    relays moving the same events at once are only wasted work, never wrong (docs/events.md).
    """

    def __init__(
        self,
        events: EventRepository,
        memberships: MembershipRepository,
        *,
        poll_seconds: float = POLL_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
    ) -> None:
        self.events = events
        self.memberships = memberships
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        self.holder = uuid.uuid4().hex
        self._dirty: dict[tuple[ResourceKind, str, str], None] = {}
        self._created: dict[tuple[ResourceKind, str, str], PendingDocument] = {}
        """Of the resources noted in ``_dirty``, those whose only events are the ones their
        insert stored, as it stored them: moved without reading them back."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[str], None]] = []
        self._removing: dict[tuple[str, str, str], asyncio.Event] = {}
        """Deleted documents a task of this process is removing, with their memberships."""

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call ``listener`` with the tenant whenever this relay has moved events of that
        tenant into the outbox (the delivery engine, which then delivers them)."""
        self._listeners.append(listener)

    def written(self, kind: ResourceKind, tenant: str, resource_ids: list[str]) -> None:
        """Resources this process just wrote: their events are to move now."""
        for resource_id in resource_ids:
            self._dirty[(kind, tenant, resource_id)] = None
            # Written again since its creation: its events are read, whatever they are now.
            self._created.pop((kind, tenant, resource_id), None)
        if resource_ids:
            self._wake.set()

    def created(self, kind: ResourceKind, tenant: str, resources: list[StoredResource]) -> None:
        """Resources this process just inserted, with the events their insert stored: those
        are moved as the writer knows them, without the read of ``move``.

        Nothing can come before a creation's event in its document, so moving it first is
        in order whatever was written since; a later event of the document is its own
        writer's to move (``written``), which reads the document (and skips the creation's
        event if it is in the outbox by then, or moves it first if not).
        """
        self.written(kind, tenant, [resource.id for resource in resources])
        for resource in resources:
            if resource.created_events is not None:
                self._created[(kind, tenant, resource.id)] = resource.created_events

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=TASK)

    async def stop(self) -> None:
        """Stop the background task, then move what this process wrote last, for a second at
        most (what is left is the safety net's, in whichever process holds the lease)."""
        if self._task is not None:
            task, self._task = self._task, None
            await stop_task(task)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), FINAL_DRAIN_SECONDS)

    async def _run(self) -> None:
        swept = 0.0
        loop = asyncio.get_running_loop()
        while not stop_requested():
            # asyncio.timeout, not asyncio.wait_for: on Python 3.11, a wake-up and a
            # cancellation reaching wait_for together let the wake-up win and swallow the
            # cancellation, and the relay then ran on while its stop waited for it forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
                await asyncio.sleep(GATHER_SECONDS)
            self._wake.clear()
            try:
                await self.drain()
                if loop.time() - swept >= self.poll_seconds:
                    swept = loop.time()
                    await self.sweep()
            except Exception:  # the database away, say: the next round tries again
                log.exception("events relay: a round failed; the next one retries")

    async def drain(self) -> None:
        """Move the events of every resource this process wrote and has not moved yet: those
        noted meanwhile, a batch per resource type and tenant. A write noted while its batch
        moves is in the next batch; a batch that fails is noted again."""
        while self._dirty:
            noted, self._dirty = self._dirty, {}
            known = {key: self._created.pop(key) for key in noted if key in self._created}
            batches: dict[tuple[ResourceKind, str], list[str]] = defaultdict(list)
            for kind, tenant, resource_id in noted:
                batches[(kind, tenant)].append(resource_id)
            moved: dict[ResourceKind, list[PendingDocument]] = defaultdict(list)
            try:
                for (kind, tenant), resource_ids in batches.items():
                    created = {
                        resource_id: known[(kind, tenant, resource_id)]
                        for resource_id in resource_ids
                        if (kind, tenant, resource_id) in known
                    }
                    moved[kind] += await self._moved(kind, tenant, resource_ids, created)
            except BaseException:
                # What was written again since is read again; the rest is known still.
                again = {key: value for key, value in known.items() if key not in self._dirty}
                self._dirty = {**noted, **self._dirty}
                self._created.update(again)
                raise
            finally:
                # Every tenant's moved events taken off at once: one command per resource
                # type, not one per tenant (a round of a busy server holds several tenants).
                for kind, documents in moved.items():
                    await self.events.drained(kind.collection, documents)

    async def sweep(self) -> int:
        """Under the lease, move the events left pending longer than the grace; answers how
        many documents it moved events of (0 without the lease)."""
        now = datetime.now(UTC)
        if not await self.events.take_lease(
            LEASE, self.holder, now, now + timedelta(seconds=LEASE_SECONDS)
        ):
            return 0
        older_than = now - timedelta(seconds=self.grace_seconds)
        moved = 0
        for kind in KINDS:
            by_tenant: dict[str, list[str]] = defaultdict(list)
            for tenant, resource_id in await self.events.stranded(
                kind.collection, older_than, SWEEP_BATCH
            ):
                by_tenant[tenant].append(resource_id)
            for tenant, resource_ids in by_tenant.items():
                await self.move(kind, tenant, resource_ids)
                moved += len(resource_ids)
        return moved

    async def move(
        self,
        kind: ResourceKind,
        tenant: str,
        resource_ids: list[str],
        created: Mapping[str, PendingDocument] | None = None,
    ) -> None:
        """Move these resources' pending events to the outbox, each resource's oldest first,
        then take them off their documents; a resource whose deletion landed is removed
        instead, and so are its memberships.

        ``created``: of these resources, those whose pending events are known, as their
        insert stored them (``created``), and not read.
        """
        await self.events.drained(
            kind.collection, await self._moved(kind, tenant, resource_ids, created)
        )

    async def _moved(
        self,
        kind: ResourceKind,
        tenant: str,
        resource_ids: list[str],
        created: Mapping[str, PendingDocument] | None,
    ) -> list[PendingDocument]:
        """``move`` but for taking the events off their documents: answers the documents
        to take them off (``EventRepository.drained``), which a round does for all its
        tenants at once."""
        known = created or {}
        unknown = [resource_id for resource_id in resource_ids if resource_id not in known]
        pending = [*known.values()]
        confirmed = None
        if unknown:
            read, confirmed = await self.events.pending(kind.collection, kind.name, tenant, unknown)
            pending += read
        await self._append([event for document in pending for event in document.events], confirmed)
        for deleted in (document for document in pending if document.deleting):
            await self._remove(kind, deleted, in_no_group=False)
        for resource_id in resource_ids:
            # Removed before this move read it, by a task still forgetting its memberships.
            elsewhere = self._removing.get((kind.name, tenant, resource_id))
            if elsewhere is not None:
                await elsewhere.wait()
        return [document for document in pending if not document.deleting]

    async def remove(
        self,
        kind: ResourceKind,
        marked: PendingDocument,
        confirmed: Stored | None,
        *,
        in_no_group: bool,
    ) -> None:
        """The deleter's move: the pending events of a document it marked deleted, known from
        its read before the mark (``deletion_mark``), to the outbox, after the tenant's last
        number that read ``confirmed``; then the document and its memberships are removed,
        none looked up for a document read ``in_no_group`` (``MembershipRepository.forget``).
        """
        await self._append(marked.events, confirmed)
        await self._remove(kind, marked, in_no_group=in_no_group)

    async def _append(self, events: Sequence[StoredEvent], confirmed: Stored | None = None) -> None:
        """Store events of one tenant in the outbox, then tell the listeners."""
        await self.events.append(events, confirmed)
        if events:
            for listener in self._listeners:
                listener(events[0].tenant)

    async def _remove(
        self, kind: ResourceKind, deleted: PendingDocument, *, in_no_group: bool
    ) -> None:
        """Remove a document whose deletion landed and whose events are in the outbox, then
        its memberships, unless a task of this process is doing it."""
        key = (kind.name, deleted.tenant, deleted.id)
        removing = self._removing.get(key)
        if removing is not None:
            # Another task of this process (the background relay, or the deleter) is
            # removing it: a deleter answers only once its memberships are gone and its
            # groups have their new versions, whichever task did it.
            await removing.wait()
            return
        removing = self._removing[key] = asyncio.Event()
        try:
            # The deletion's own event is the last one: its client removes the memberships.
            groups = await self.memberships.forget(
                deleted.tenant,
                deleted.id,
                deleted.events[-1].client,
                is_group=kind is GROUPS,
                in_no_group=in_no_group,
            )
            if groups:
                self.written(GROUPS, deleted.tenant, groups)
        finally:
            removing.set()
            del self._removing[key]

    async def read(self, tenant: str, sequence: int, limit: int) -> list[Event]:
        """The tenant's events from ``sequence`` on, in order."""
        return [Event.of(stored) for stored in await self.events.after(tenant, sequence, limit)]

    async def next_sequence(self, tenant: str) -> int:
        return await self.events.next_sequence(tenant)

    async def delete_tenant(self, tenant: str) -> None:
        # The tenant's creations noted and not moved yet have gone with it: none is moved
        # into its outbox from what their writers knew.
        for key in [key for key in self._created if key[1] == tenant]:
            del self._created[key]
        await self.events.delete_tenant(tenant)
