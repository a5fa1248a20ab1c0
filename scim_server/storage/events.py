"""Provisioning events: pending in the changed document, then in the outbox, in sequence.

A change's event is written by the very update that writes the change: it is pushed onto the
``ev`` array of the user or group document (``pending_event``), so the change and its event
land together or not at all, on any MongoDB, with no transaction. A deletion first marks the
document (``dl``) with its event, the same way (``deletion_mark``), and the document is removed
only once its events are in the outbox (``MembershipRepository.forget``).

The relay (``core/events.py``) then moves each document's pending events, oldest first, into
the ``events`` collection, the outbox: ``_id`` the event id, so that moving an event twice
stores it once, and the tenant's next ``sequence``, unique per tenant, so that two relays can
never give one number twice, nor skip one (a number is only ever the last one stored plus one).
docs/events.md holds the design and its proof; this module is the one that names the fields.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final

from pymongo import ASCENDING, UpdateOne, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from scim_server.storage.database import (
    DUPLICATE_KEY,
    Database,
    Document,
    any_of,
    translate_driver_errors,
)

PENDING: Final = "ev"
"""The array of a user or group document's events not yet in the outbox, oldest first."""
DELETING: Final = "dl"
"""Set on a user or group document whose deletion has landed; it is removed once its events
are in the outbox."""
OUTBOX: Final = "events"
LEASES: Final = "leases"
JOINED: Final = "_outbox"
"""Where a read that confirms the last number (``_confirming``) joins the outbox's event to
each document it finds; no stored field of a document is named so."""

CONTENDED_SECONDS: Final = 10.0
"""How long after another relay took a number this process meant to give, in a tenant, its
reads stop confirming the number it remembers (``EventRepository._confirming``): another
process's relay is busy in the tenant, so the range read of ``_after_last`` is the cheaper way
to the next number there (a number taken costs an insert refused and two reads)."""

RECENTLY_STORED: Final = 256
"""How many of the events this process stored last it remembers, per tenant (``append``)."""

EVENT_IDS: Final = uuid.UUID("6f0d3c5e-2b7a-4f51-9a7e-5d0c8b1e4a21")
"""The namespace of event ids: an event's id is derived from its resource and its write's
key, so that every relay moving it names it alike."""

USER_CREATED: Final = "user.created"
USER_UPDATED: Final = "user.updated"
USER_DEACTIVATED: Final = "user.deactivated"
USER_REACTIVATED: Final = "user.reactivated"
USER_DELETED: Final = "user.deleted"
GROUP_CREATED: Final = "group.created"
GROUP_UPDATED: Final = "group.updated"
GROUP_DELETED: Final = "group.deleted"
GROUP_MEMBERS_ADDED: Final = "group.members_added"
GROUP_MEMBERS_REMOVED: Final = "group.members_removed"
EVENT_TYPES: Final = (
    USER_CREATED,
    USER_UPDATED,
    USER_DEACTIVATED,
    USER_REACTIVATED,
    USER_DELETED,
    GROUP_CREATED,
    GROUP_UPDATED,
    GROUP_DELETED,
    GROUP_MEMBERS_ADDED,
    GROUP_MEMBERS_REMOVED,
)
"""Every event type, in the order docs/events.md lists them."""


@dataclass(frozen=True)
class Client:
    """Who made a change: a SCIM client (its token and IdP family) or a sign-in."""

    via: str
    """``scim`` or ``sso``."""
    token_id: str | None = None
    idp: str | None = None
    """The IdP family its ``User-Agent`` names (``okta``, ``entra``, ``jumpcloud``, ``other``)."""


SSO: Final = Client("sso")
"""The client of just-in-time provisioning at sign-in."""


@dataclass(frozen=True)
class Emission:
    """The event a write carries: what changed and who changed it."""

    type: str
    client: Client
    attributes: tuple[str, ...] = ()
    """The names of the attributes that changed."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """Their new values (None: removed), secrets left out."""
    members: tuple[str, ...] = ()
    """The member ids a members event (or a group's creation) carries."""


@dataclass(frozen=True)
class StoredEvent:
    """An event in the outbox, as the layers above storage see it."""

    id: str
    tenant: str
    sequence: int
    type: str
    time: datetime
    resource_type: str
    resource_id: str
    version: int
    attributes: tuple[str, ...]
    values: Mapping[str, Any]
    members: tuple[str, ...]
    client: Client


@dataclass(frozen=True)
class PendingDocument:
    """A user or group document's pending events, read together with its version."""

    tenant: str
    id: str
    deleting: bool
    events: tuple[StoredEvent, ...]
    """Numbered 0 onwards: the outbox gives their sequence numbers."""
    keys: tuple[str, ...]
    version: int


@dataclass(frozen=True)
class Stored:
    """A number of a tenant's sequence seen stored in the outbox, with its event's id."""

    sequence: int
    id: str


def pending_event(emission: Emission, now: datetime) -> Document:
    """The element a write pushes onto ``ev``: its event, keyed by a new write key."""
    element: Document = {
        "k": uuid.uuid4().hex,
        "t": emission.type,
        "at": now,
        "by": _client_document(emission.client),
        "a": list(emission.attributes),
        "v": _value_pairs(emission.values),
    }
    if emission.members:
        element["m"] = list(emission.members)
    return element


def new_version(
    now: datetime, emission: Emission | None, changes: Mapping[str, Any] | None = None
) -> Document:
    """The update that sets ``changes`` and makes a resource's next version, modified ``now``,
    with its event pending (None only where the event rode on an earlier write: the completion
    of a group created with members, see ``MembershipRepository.add``)."""
    if emission is not None:
        return new_versions(now, [emission], changes)
    return {"$set": {**(changes or {}), "meta.lastModified": now}, "$inc": {"meta.version": 1}}


def new_versions(
    now: datetime, emissions: Sequence[Emission], changes: Mapping[str, Any] | None = None
) -> Document:
    """The update that sets ``changes`` and makes one version per emission, modified ``now``,
    each with its event pending, in order: changes made one after the other on the state read,
    written at once, whose events the relay reads at the versions they made (the last one at
    the document's version, see ``pending_document``)."""
    return _with_events(now, [pending_event(emission, now) for emission in emissions], changes)


def _with_events(
    now: datetime, elements: Sequence[Document], changes: Mapping[str, Any] | None
) -> Document:
    """The update that sets ``changes`` and pushes these pending events, a version each."""
    return {
        "$set": {**(changes or {}), "meta.lastModified": now},
        "$inc": {"meta.version": len(elements)},
        "$push": {PENDING: {"$each": list(elements)}},
    }


def deletion_mark(
    resource_type: str, pending: PendingDocument, emission: Emission, now: datetime
) -> tuple[Document, PendingDocument]:
    """The update that marks a document deleted (``dl``) with its deletion's event, and the
    document's pending events once that update landed on the version ``pending`` was read at.

    Every write that pushes an event makes a new version, so a mark conditioned on the version
    read lands on the events read (less any a relay moved meanwhile, which are in the outbox):
    the deleter knows what to move without reading the document again, the deletion's event
    last, at the next version.
    """
    element = pending_event(emission, now)
    version = pending.version + 1
    event = _event(resource_type, pending.tenant, pending.id, element, version)
    marked = replace(
        pending,
        deleting=True,
        events=(*pending.events, event),
        keys=(*pending.keys, str(element["k"])),
        version=version,
    )
    return _with_events(now, [element], {DELETING: True}), marked


LIVE: Final = {DELETING: {"$exists": False}}
"""The condition of a write that must not land on a document whose deletion has landed."""


def _client_document(client: Client) -> Document:
    """A client as stored: only the fields it has."""
    document: Document = {"via": client.via}
    if client.token_id is not None:
        document["token_id"] = client.token_id
    if client.idp is not None:
        document["idp"] = client.idp
    return document


def _value_pairs(values: Mapping[str, Any]) -> list[Document]:
    """New values as stored: pairs, not a sub-document, since an extension's URN is no field
    name MongoDB keeps as is."""
    return [{"n": name, "v": value} for name, value in values.items()]


def _client(stored: Mapping[str, Any]) -> Client:
    return Client(str(stored["via"]), stored.get("token_id"), stored.get("idp"))


def _event_id(tenant: str, resource_id: str, key: str) -> str:
    return str(uuid.uuid5(EVENT_IDS, f"{tenant}/{resource_id}/{key}"))


def pending_document(resource_type: str, document: Mapping[str, Any]) -> PendingDocument:
    """A document's pending events, each at the version its write made.

    Every version a write makes comes with exactly one event, except the completion of a
    group created with members, whose creation's event was pushed with it (and which the
    relay may report at version 0 or 1, whichever it read). The array's last event is
    therefore the document's version, the one before it the version before, and so on.
    """
    tenant = str(document["tenant"])
    resource_id = str(document["_id"])
    version = int(document["meta"]["version"])
    elements: list[Mapping[str, Any]] = list(document.get(PENDING) or [])
    events = tuple(
        _event(resource_type, tenant, resource_id, element, version - (len(elements) - 1 - n))
        for n, element in enumerate(elements)
    )
    return PendingDocument(
        tenant=tenant,
        id=resource_id,
        deleting=bool(document.get(DELETING)),
        events=events,
        keys=tuple(str(element["k"]) for element in elements),
        version=version,
    )


def _event(
    resource_type: str, tenant: str, resource_id: str, element: Mapping[str, Any], version: int
) -> StoredEvent:
    """A pending event (an element of ``ev``) at the version its write made."""
    return StoredEvent(
        id=_event_id(tenant, resource_id, str(element["k"])),
        tenant=tenant,
        sequence=0,
        type=str(element["t"]),
        time=element["at"],
        resource_type=resource_type,
        resource_id=resource_id,
        version=version,
        attributes=tuple(element.get("a", ())),
        values=MappingProxyType({pair["n"]: pair["v"] for pair in element.get("v", ())}),
        members=tuple(element.get("m", ())),
        client=_client(element["by"]),
    )


def _raise_unless_duplicate(error: BulkWriteError) -> None:
    """An ordered insert into the outbox may stop where an event is stored already or its
    number taken (by another relay); any other refusal is raised."""
    refused = error.details.get("writeErrors") or [{}]
    if refused[0].get("code") != DUPLICATE_KEY:
        raise error


def _holds(document: Document, last: Stored | None, tenant: str) -> bool:
    """Whether the event ``_confirming`` joined to ``document`` (taken off it) is the tenant's
    at the number remembered."""
    joined = document.pop(JOINED, [])
    return last is not None and any(
        event.get("tenant") == tenant and event.get("sequence") == last.sequence for event in joined
    )


def _remember(recent: dict[str, None], events: Sequence[StoredEvent]) -> None:
    """Add the ids of events just stored to a tenant's ``EventRepository._recent``."""
    recent.update(dict.fromkeys(event.id for event in events))
    while len(recent) > RECENTLY_STORED:
        del recent[next(iter(recent))]


def _sequence(stored: Stored) -> int:
    return stored.sequence


def _after(last: Stored | None) -> int:
    """The number after the last stored: 1 for a tenant with none."""
    return 1 if last is None else last.sequence + 1


def _outbox_document(event: StoredEvent, sequence: int) -> Document:
    document: Document = {
        "_id": event.id,
        "tenant": event.tenant,
        "sequence": sequence,
        "type": event.type,
        "time": event.time,
        "resource": {"type": event.resource_type, "id": event.resource_id},
        "version": event.version,
        "attributes": list(event.attributes),
        "values": _value_pairs(event.values),
        "client": _client_document(event.client),
    }
    if event.members:
        document["members"] = list(event.members)
    return document


def stored_event(document: Mapping[str, Any]) -> StoredEvent:
    return StoredEvent(
        id=str(document["_id"]),
        tenant=str(document["tenant"]),
        sequence=int(document["sequence"]),
        type=str(document["type"]),
        time=document["time"],
        resource_type=str(document["resource"]["type"]),
        resource_id=str(document["resource"]["id"]),
        version=int(document["version"]),
        attributes=tuple(document.get("attributes", ())),
        values=MappingProxyType({pair["n"]: pair["v"] for pair in document.get("values", ())}),
        members=tuple(document.get("members", ())),
        client=_client(document["client"]),
    )


@translate_driver_errors
class EventRepository:
    """The pending events of users and groups, the outbox, and the relay's lease."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.outbox = database[OUTBOX]
        self.leases = database[LEASES]
        self._last: dict[str, Stored] = {}
        """Per tenant, the last number this process saw stored: the next is a guess, which the
        unique index checks (a wrong one costs one read of the last number and a retry)."""
        self._contended: dict[str, float] = {}
        """Per tenant, when (``time.monotonic``) an append last met a number or an event
        another relay stored meanwhile."""
        self._recent: dict[str, dict[str, None]] = {}
        """Per tenant, the ids of the last ``RECENTLY_STORED`` events this process stored, oldest
        first: a batch read before this process's relay moved some of its events (a user
        deleted just after a write) leaves them out before its insert, which they would stop."""
        self._appending: dict[str, asyncio.Lock] = {}
        """Per tenant, this process's appends take turns: at once, they all tried the same
        next number, and all but one paid a stop for it (16 deletions at once, five stops
        each)."""

    async def pending(
        self, collection: str, resource_type: str, tenant: str, resource_ids: Sequence[str]
    ) -> tuple[list[PendingDocument], Stored | None]:
        """The pending events of these documents of one tenant, those that have some (a
        document whose deletion landed always has: its own event until it is removed), and,
        read in the same command, the tenant's last number this process remembers if it still
        holds its event (``append``'s ``confirmed``; ``_confirming`` says how)."""
        last, join = self._confirming(tenant)
        found: list[PendingDocument] = []
        confirmed = None
        for wanted in any_of(resource_ids):
            stages: list[Document] = [
                {"$match": {"tenant": tenant, "_id": wanted}},
                {"$project": {"tenant": 1, "meta.version": 1, PENDING: 1, DELETING: 1}},
                *join,
            ]
            async for document in await self.database[collection].aggregate(stages):
                if _holds(document, last, tenant):
                    confirmed = last
                if document.get(PENDING) or document.get(DELETING):
                    found.append(pending_document(resource_type, document))
            join = []  # the first batch's documents have checked the number already
        return found, confirmed

    async def stranded(
        self, collection: str, older_than: datetime, limit: int
    ) -> list[tuple[str, str]]:
        """(tenant, id) of documents holding an event pending since before ``older_than``.

        Across tenants, on the one index that is not tenant-first: a sparse index of the
        pending events' times, which holds only the documents that have some.
        """
        cursor = self.database[collection].find(
            {f"{PENDING}.at": {"$lt": older_than}}, {"tenant": 1}
        )
        documents = await cursor.limit(limit).to_list(None)
        return [(str(document["tenant"]), str(document["_id"])) for document in documents]

    async def append(self, events: Sequence[StoredEvent], confirmed: Stored | None = None) -> None:
        """Store events of one tenant in the outbox, in this order, each under the tenant's
        next sequence number; an event already there is skipped: left out before the insert
        when this process stored it lately (``_recent``), else when the insert meets it.

        The number is the one after the last stored, so none is ever skipped. This process
        remembers it from its last append, but trusts it only once it sees the number before
        it stored and that one free: another process's relay may have taken it since (two
        workers' relays take turns on a busy tenant), or deleted the tenant and its events.
        So: one read on the unique index (none when the caller's own read ``confirmed`` the
        last number: ``read_with_last_stored``), then one ordered ``insert_many``. Where that
        stops (a number another relay took meanwhile, or an event it moved: two workers'
        relays both move the events of a user both wrote), the rest go on in one
        ``insert_many`` again, without those found stored, from the number after the last
        stored: a stop costs two reads and a command, never one command per event left.
        """
        if not events:
            return
        tenant = events[0].tenant
        async with self._appending.setdefault(tenant, asyncio.Lock()):
            await self._append(tenant, events, confirmed)

    async def _append(
        self, tenant: str, events: Sequence[StoredEvent], confirmed: Stored | None
    ) -> None:
        """``append``, the tenant's turn held."""
        if confirmed is None:
            last = await self._last_stored(tenant)
        else:
            # A number this process stored since the caller's read is as sure, and later.
            last = max(confirmed, self._last.get(tenant, confirmed), key=_sequence)
        recent = self._recent.setdefault(tenant, {})
        remaining = [event for event in events if event.id not in recent]
        while remaining:
            sequence = _after(last)
            documents = [_outbox_document(event, sequence + n) for n, event in enumerate(remaining)]
            try:
                await self.outbox.insert_many(documents, ordered=True)
            except BulkWriteError as error:
                _raise_unless_duplicate(error)
                self._contended[tenant] = time.monotonic()
                stored = int(error.details.get("nInserted", 0))
                _remember(recent, remaining[:stored])
                rest = remaining[stored:]
                moved = await self._stored(tenant, [event.id for event in rest])
                remaining = [event for event in rest if event.id not in moved]
                last = await self._after_last(tenant, known=sequence + stored)
                continue
            _remember(recent, remaining)
            last = Stored(sequence + len(remaining) - 1, remaining[-1].id)
            break
        if last is not None:
            self._last[tenant] = last

    async def read_with_last_stored(
        self,
        collection: str,
        resource_id: str,
        projection: Mapping[str, Any],
        tenant: str,
        joins: Sequence[Document] = (),
    ) -> tuple[Document | None, Stored | None]:
        """The document of that id (``projection``, its pending events, ``meta`` and ``dl``)
        and, in the same command, the tenant's last stored number this process remembers,
        if that number still holds its event (``_confirming``): what moving the document's
        events needs, in one read, with whatever the stages ``joins`` join to it. The document
        is found by its id alone, as ``ResourceRepository.get`` finds one, and the caller
        holds it to its tenant.
        """
        last, join = self._confirming(tenant)
        stages: list[Document] = [
            {"$match": {"_id": resource_id}},
            {"$project": {**projection, "tenant": 1, "meta": 1, PENDING: 1, DELETING: 1}},
            *join,
            *joins,
        ]
        documents = await (await self.database[collection].aggregate(stages)).to_list(None)
        if not documents:
            return None, None
        document: Document = documents[0]
        return document, last if _holds(document, last, tenant) else None

    def _confirming(self, tenant: str) -> tuple[Stored | None, list[Document]]:
        """The tenant's last number this process remembers, and the stages that join its
        event to each document a read finds, which ``_holds`` then checks.

        The event is joined by its id, on the outbox's primary key, which every store looks up
        on its index (a join on the sequence, or a sub-pipeline, SecantusDB runs as a scan of
        the outbox). Found at its number, it confirms that number as ``_after_last`` does:
        stored, so the next is free of a gap; a number another relay took since is then the
        insert's to find, on the unique index. Not found (the tenant's events were deleted,
        with the tenant, by another process), or nothing remembered: no confirmation, and
        ``append`` reads the last number itself. It does so without a join too while another
        relay is busy in the tenant (``CONTENDED_SECONDS``): there the number after the one
        remembered is often taken already.
        """
        last = self._last.get(tenant)
        contended = self._contended.get(tenant)
        if last is None or (
            contended is not None and time.monotonic() - contended < CONTENDED_SECONDS
        ):
            return None, []
        return last, [
            {"$set": {JOINED: last.id}},
            {
                "$lookup": {
                    "from": OUTBOX,
                    "localField": JOINED,
                    "foreignField": "_id",
                    "as": JOINED,
                }
            },
        ]

    async def _stored(self, tenant: str, event_ids: Sequence[str]) -> set[str]:
        """Which of these events are in the outbox already."""
        stored: set[str] = set()
        for wanted in any_of(event_ids):
            cursor = self.outbox.find({"_id": wanted, "tenant": tenant}, {"_id": 1})
            stored.update([str(document["_id"]) async for document in cursor])
        return stored

    async def _last_stored(self, tenant: str) -> Stored | None:
        """The tenant's last stored number, read from the one this process remembers."""
        last = self._last.get(tenant)
        return await self._after_last(tenant, known=None if last is None else _after(last))

    async def _after_last(self, tenant: str, known: int | None) -> Stored | None:
        """The tenant's last stored number (None: it has none), read from ``known`` on: a
        number whose one before is stored (this relay stored it, or saw it stored).

        From there on the index holds only the numbers stored since (by other relays), so
        the read costs what they stored. Only without such a number, or with the one before
        it gone (the tenant deleted meanwhile), is the last one looked for from the end of
        the tenant's numbers, which SecantusDB reaches by walking all of them (a quarter of a
        second at 10,000 events): two workers' relays paid that on every stop.
        """
        if known is not None:
            cursor = self.outbox.find(
                {"tenant": tenant, "sequence": {"$gte": known - 1}}, {"sequence": 1}
            )
            numbers = [Stored(int(d["sequence"]), str(d["_id"])) async for d in cursor]
            if any(number.sequence == known - 1 for number in numbers):
                return max(numbers, key=_sequence)
        last = await self.outbox.find_one(
            {"tenant": tenant}, {"sequence": 1}, sort=[("tenant", ASCENDING), ("sequence", -1)]
        )
        return None if last is None else Stored(int(last["sequence"]), str(last["_id"]))

    async def drained(self, collection: str, documents: Sequence[PendingDocument]) -> None:
        """Take events that are in the outbox off their documents: one command for all.

        Exactly the moved events are pulled, so one pushed since stays pending (an emptied
        array leaves the sparse index). Unjournaled: a pull lost in a crash only leaves
        events pending that the next move finds in the outbox already, and skips.

        One conditional ``update_one`` per document, in one unordered bulk, each on its
        ``_id``: not one ``update_many`` of the documents' ids, which SecantusDB plans as a
        scan of the collection (``COLLSCAN`` in its ``explain``). Under 16 concurrent
        creations or PATCHes of other users (10,000 users) that cost the store 0.5 to 1.4 ms
        more per request, and it grows with the collection.
        """
        if not documents:
            return
        pulls = [
            UpdateOne(
                {"_id": document.id, "tenant": document.tenant},
                {"$pull": {PENDING: {"k": {"$in": list(document.keys)}}}},
            )
            for document in documents
        ]
        await self._unjournaled(collection).bulk_write(pulls, ordered=False)

    def _unjournaled(self, collection: str) -> AsyncCollection[Document]:
        return self.database[collection].with_options(write_concern=WriteConcern(w=1))

    async def after(self, tenant: str, sequence: int, limit: int) -> list[StoredEvent]:
        """The tenant's events from ``sequence`` on, in sequence order, at most ``limit``."""
        cursor = self.outbox.find({"tenant": tenant, "sequence": {"$gte": sequence}})
        cursor = cursor.sort([("tenant", ASCENDING), ("sequence", ASCENDING)]).limit(limit)
        return [stored_event(document) for document in await cursor.to_list(None)]

    async def next_sequence(self, tenant: str) -> int:
        """The sequence number the tenant's next event will get."""
        return _after(await self._last_stored(tenant))

    async def take_lease(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Hold the lease ``name`` until ``until`` if it is free, expired or already ours."""
        try:
            result = await self.leases.update_one(
                {"_id": name, "$or": [{"until": {"$lt": now}}, {"holder": holder}]},
                {"$set": {"holder": holder, "until": until}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # held by another: the upsert found no match and met its _id
        return result.matched_count == 1 or result.upserted_id is not None

    async def delete_tenant(self, tenant: str) -> None:
        self._last.pop(tenant, None)
        self._contended.pop(tenant, None)
        self._recent.pop(tenant, None)
        await self.outbox.delete_many({"tenant": tenant})
