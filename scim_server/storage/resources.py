"""Users and Groups in MongoDB: one document per resource, always addressed with its tenant.

The repository hands out ``StoredResource`` records and takes ``StoredForm`` states;
the document layout stays in ``documents.py``. ``get`` and ``find`` still answer the
documents themselves, for the sign-in code that reads them until it goes through
``core/directory.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from types import MappingProxyType
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError
from scim2_models import UniquenessException

from scim_server.models import USERS, ResourceKind, scim_key, storage_key
from scim_server.storage.database import (
    DUPLICATE_KEY,
    ENTERPRISE_FIELD,
    MANAGER_VALUE,
    RESOURCE_TYPE,
    SHARED_NAME,
    Database,
    Document,
    any_of,
    tenant_index,
    translate_driver_errors,
    unique_within_tenant,
)
from scim_server.storage.documents import (
    MANAGES,
    MEMBER_OF,
    NAME_FIELDS,
    StoredForm,
    StoredResource,
    changed_fields,
    member_of_hint,
    new_document,
    resource_name,
    rewritten,
    stored_resource,
    value_at,
)
from scim_server.storage.errors import WriteRefused
from scim_server.storage.events import (
    DELETING,
    LIVE,
    Emission,
    EventRepository,
    PendingDocument,
    Stored,
    deletion_mark,
    new_version,
    new_versions,
    pending_document,
)
from scim_server.storage.group_commit import GroupInsert
from scim_server.storage.group_read import GroupRead
from scim_server.storage.seats import WITH_LIMIT, joined_limit

SortSpec = list[tuple[str, int]]

UPSERT_ATTEMPTS = 3
"""How often ``put`` upserts a custom resource. On MongoDB, an upsert that loses the race to
insert an ``externalId`` another load inserted first fails on the unique index (a duplicate
key error, nothing written): the resource is there by then, and the next attempt replaces
it. SecantusDB lands such an upsert as an update but may answer no document for it: the
document is then read back."""


@dataclass(frozen=True)
class NewResource:
    """A resource to store with ``insert_many``: its id, state, password hash and event."""

    id: str
    form: StoredForm
    password_hash: str | None
    emission: Emission


@dataclass(frozen=True)
class Deleting:
    """A resource read for its deletion (``ResourceRepository.read_for_deletion``)."""

    resource: StoredResource
    pending: PendingDocument
    """Its pending events, at the version read."""
    last: Stored | None
    """The tenant's last outbox number, confirmed by the same read (None: not confirmed)."""
    seat_limited: bool | None = None
    """Whether the tenant has a seat limit, read with a user (None: not read, not a user)."""


@dataclass(frozen=True)
class Summary:
    name: str | None
    """displayName, else userName: what a member or a group shows as ``display``."""
    member_of: bool
    """Whether it may be a member of some group (the ``gm`` hint)."""


def _projection(attributes: Iterable[str]) -> Document:
    """What ``read`` reads of a resource read for these (top-level) attributes only."""
    return {"meta": 1, MEMBER_OF: 1, MANAGES: 1, **{f"r.{name}": 1 for name in attributes}}


def summary(document: Document) -> Summary:
    return Summary(resource_name(document), member_of_hint(document))


@dataclass(frozen=True)
class UserRecord:
    """A stored user as the code outside storage may see it: typed, never a stored document."""

    id: str
    user_name: str
    active: bool
    """False only when SCIM deactivated the user; a user with no ``active`` is active."""
    version: int
    password_hash: str | None
    """The hash of the password SCIM set, if any (never the password)."""
    attributes: Mapping[str, Any]
    """The SCIM attributes as written (extensions under their schema URN), read-only."""


def user_record(document: Document) -> UserRecord:
    """The typed record of a stored user document: the one place its fields are read."""
    raw: Mapping[str, Any] = document["r"]
    return UserRecord(
        id=str(document["_id"]),
        user_name=str(raw["userName"]),
        active=raw.get("active") is not False,
        version=int(document["meta"]["version"]),
        password_hash=document.get("pw"),
        attributes=MappingProxyType({scim_key(k): v for k, v in raw.items()}),
    )


BOUNDED = frozenset({"$eq", "$in", "$gt", "$gte", "$lt", "$lte"})
"""Conditions any planner turns into bounds on the field's index: no hint needed."""


def _unbounded_field(query: Mapping[str, Any]) -> str | None:
    """The one field a query conditions, if it is the only one and no index bounds it.

    Such a condition (``co``, ``ew``: a ``$regex``; ``ne``; ``pr``) may be planned on MongoDB
    on any tenant-first index, so the field's own is hinted. An equality or a range is left
    to the planner, which bounds it on that index on every store.
    """
    if len(query) != 1:
        return None
    ((field, condition),) = query.items()
    if field.startswith("$"):
        return None
    bounded = not isinstance(condition, Mapping) or (bool(condition) and set(condition) <= BOUNDED)
    return None if bounded else str(field)


def _unique_value(query: Mapping[str, Any]) -> tuple[str, str] | None:
    """The field and value of a query that is one field's equality to a string, if it is."""
    if len(query) != 1:
        return None
    ((field, value),) = query.items()
    return (str(field), value) if isinstance(value, str) and not field.startswith("$") else None


_UNIQUE_NAME = {"User": "userName", "Group": "displayName"}
"""The attribute each resource type's unique index holds unique within a tenant."""


def _uniqueness(kind: ResourceKind) -> UniquenessException:
    return UniquenessException(
        detail=f"a {kind.name} with the same {_UNIQUE_NAME[kind.name]} already exists"
    )


@translate_driver_errors
class ResourceRepository:
    """The stored documents of one resource type."""

    def __init__(self, database: Database, kind: ResourceKind) -> None:
        self.kind = kind
        self.database = database
        self.collection = database[kind.collection]
        self.partition: Document = {RESOURCE_TYPE: kind.name} if kind.custom else {}
        """What sets this type's documents apart in a collection several types share."""
        self._inserts = GroupInsert(self.collection)
        """The single inserts of concurrent requests, sent together (``group_commit.py``)."""
        self._reads = GroupRead(self.collection)
        """The lookups by id (or by a name unique in the tenant) of concurrent requests, sent
        together (``group_read.py``)."""

    def _within(self, tenant: str) -> Document:
        """The condition every query of this repository carries: its tenant (and type)."""
        return {"tenant": tenant, **self.partition}

    def order_by(self, field: str, direction: int) -> SortSpec:
        """The sort that orders a tenant's resources by ``field`` totally: ``field`` alone
        where an index holds it unique within the tenant (``userName``), else ``field`` then
        ``_id`` to break its ties.

        The shorter one is what the field's index yields in order on MongoDB (an ``_id``
        tiebreak it does not hold made it sort the whole tenant in memory), and what lets a
        cursor page continue from a plain range of the field (``cursors.keyset_condition``).
        """
        if unique_within_tenant(self.kind.collection, field, self.partition):
            return [(field, direction)]
        return [(field, direction), ("_id", direction)]

    async def insert(
        self,
        tenant: str,
        resource_id: str,
        form: StoredForm,
        password_hash: str | None,
        now: datetime,
        emission: Emission,
        *,
        version: int = 1,
        shared_name: bool = False,
    ) -> StoredResource:
        """Store a new resource, created ``now`` at ``version`` with its event; answers it as
        stored.

        ``shared_name`` lets a group share its displayName with others (``SHARED_NAME``). The
        document goes to the store with those of the other requests creating resources of the
        collection at the same time, in one journaled command (``group_commit.py``).
        """
        document = new_document(tenant, resource_id, form, password_hash, now, version, emission)
        if shared_name:
            document[SHARED_NAME] = resource_id
        refused = await self._inserts.insert(document)
        if isinstance(refused, DuplicateKeyError):
            raise _uniqueness(self.kind)
        if refused is not None:
            raise WriteRefused(str(refused)) from refused
        return self._inserted(document)

    async def insert_many(
        self, tenant: str, resources: Sequence[NewResource], now: datetime
    ) -> list[StoredResource | UniquenessException | WriteRefused]:
        """Store new resources at version 1 with one unordered ``insert_many``.

        Answers, in the order given, each as stored or why the server refused it (a
        unique index: ``UniquenessException``); a refused one does not keep the others
        from landing. Nothing is sent for no resources.
        """
        documents = [
            new_document(tenant, new.id, new.form, new.password_hash, now, 1, new.emission)
            for new in resources
        ]
        answers: list[StoredResource | UniquenessException | WriteRefused] = [
            self._inserted(document) for document in documents
        ]
        if not documents:
            return answers
        try:
            await self.collection.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            for refused in error.details.get("writeErrors", []):
                answers[refused["index"]] = (
                    _uniqueness(self.kind)
                    if refused.get("code") == DUPLICATE_KEY
                    else WriteRefused(str(refused.get("errmsg")))
                )
        return answers

    def _inserted(self, document: Document) -> StoredResource:
        """The record of a document as this repository inserted it, its creation's events
        with it (``StoredResource.created_events``)."""
        created = pending_document(self.kind.name, document)
        return replace(stored_resource(document), created_events=created)

    async def read(
        self, tenant: str, resource_id: str, *, attributes: Iterable[str] | None = None
    ) -> StoredResource | None:
        """The resource of that id, or None; ``attributes`` reads only those (top-level) ones."""
        projection = None if attributes is None else _projection(attributes)
        document = await self.get(tenant, resource_id, projection)
        return None if document is None else stored_resource(document)

    async def read_for_deletion(
        self, tenant: str, resource_id: str, attributes: Iterable[str], events: EventRepository
    ) -> Deleting | None:
        """The live resource of that id (``attributes`` only, as ``read``), its pending events
        and the tenant's last outbox number, and for a user, which may free a seat, whether
        the tenant has a seat limit: in one command (``read_with_last_stored``). None when it
        is gone or its deletion has landed."""
        projection = self._with_owner(_projection(attributes))
        users = self.kind is USERS
        document, last = await events.read_with_last_stored(
            self.kind.collection, resource_id, projection, tenant, WITH_LIMIT if users else ()
        )
        if document is None or not self._owned(document, tenant):
            return None
        return Deleting(
            stored_resource(document),
            pending_document(self.kind.name, document),
            last,
            joined_limit(document) if users else None,
        )

    async def get(
        self, tenant: str, resource_id: str, projection: Mapping[str, int] | None = None
    ) -> Document | None:
        """The document of that id, unless it is gone or its deletion has landed.

        Found by its primary key alone, then held to its tenant (and type) and to not being
        deleted by ``_owned``: ``_id`` is unique in the collection, whatever the tenant, so
        this answers what the query with those conditions would. That query is one every
        store plans, where ``{"_id": id}`` alone is a direct lookup on MongoDB (its IDHACK) as
        on SecantusDB (which spent 0.6 ms of its CPU on the planned read, 0.2 on the lookup).
        The lookups of concurrent requests go together, whatever their tenants: one
        ``{"_id": {"$in": [...]}}``, each document then held to its own caller's tenant.
        """
        fields = None if projection is None else self._with_owner(projection)
        document = await self._reads.find_one("_id", resource_id, projection=fields)
        return document if document is not None and self._owned(document, tenant) else None

    def _with_owner(self, projection: Mapping[str, int]) -> dict[str, int]:
        """``projection`` and the fields ``_owned`` reads."""
        return {**projection, "tenant": 1, **dict.fromkeys(self.partition, 1), DELETING: 1}

    def _owned(self, document: Mapping[str, Any], tenant: str) -> bool:
        """Whether a document found by its id alone is this tenant's (and type's), and live."""
        if DELETING in document:
            return False
        return all(document.get(field) == value for field, value in self._within(tenant).items())

    async def update(
        self,
        tenant: str,
        stored: StoredResource,
        form: StoredForm,
        password_hash: str | None,
        now: datetime,
        emissions: Sequence[Emission],
        *,
        in_no_group: bool = False,
        shared_name: bool = False,
    ) -> StoredResource | None:
        """Store the new state with its events, a version each, if the stored version is the
        one read (several: changes made one after the other on ``stored``, written at once).

        Answers the resource as written, or None when it is gone or was changed by someone
        else since it was read (the caller decides whether to retry or to answer 412).
        ``in_no_group`` also requires the member-of hint to still say what ``stored`` read:
        in no group (see ``MembershipRepository.rename_member``). ``shared_name`` lets a
        group share its new displayName with others, as ``insert``'s does. A plain conditional
        ``update_one`` on ``_id`` is the one shape every MongoDB, SecantusDB included, runs
        on an index. (Membership changes bump a group's version in ``MembershipRepository``.)
        """
        query: Document = {"_id": stored.id, "tenant": tenant, "meta.version": stored.version}
        if in_no_group:
            query[MEMBER_OF] = {"$not": {"$gt": 0}}
        changes = changed_fields(form, password_hash, now)
        if shared_name:
            changes[SHARED_NAME] = stored.id
        try:
            result = await self.collection.update_one(query, new_versions(now, emissions, changes))
        except DuplicateKeyError:
            raise _uniqueness(self.kind) from None
        if result.matched_count != 1:
            return None
        return rewritten(stored, form, password_hash, now, versions=len(emissions))

    async def delete(
        self,
        tenant: str,
        pending: PendingDocument,
        emission: Emission,
        now: datetime,
        *,
        manages_nobody: bool = False,
    ) -> PendingDocument | None:
        """Delete the resource if the stored version is still the one ``pending`` was read at;
        answers its pending events once deleted (``deletion_mark``), or None when it missed.

        The deletion lands as a mark on the document, with its event (storage/events.py):
        from then on the resource reads as gone and takes no write. The deleter moves its
        events to the outbox, then ``MembershipRepository.forget`` removes the document and its
        memberships. ``manages_nobody`` also requires the manager hint to be
        still unset, as the caller read it: a user made someone's manager meanwhile makes the
        delete miss, and the caller reads it again and then clears the reference
        (``clear_manager``).
        """
        query = {"_id": pending.id, "tenant": tenant, "meta.version": pending.version, **LIVE}
        if manages_nobody:
            query[MANAGES] = {"$ne": True}
        update, marked = deletion_mark(self.kind.name, pending, emission, now)
        result = await self.collection.update_one(query, update)
        return marked if result.matched_count == 1 else None

    async def mark_managers(self, tenant: str, user_ids: Iterable[str]) -> None:
        """Set the manager hint on these users, before any user names one as its manager.

        The hint is never cleared: it may say a user manages someone when it no longer
        does (which costs its deletion one ``clear_manager``), never the reverse.
        """
        wanted = sorted(set(user_ids))
        if len(wanted) == 1:
            await self.collection.update_one(
                {"_id": wanted[0], "tenant": tenant}, {"$set": {MANAGES: True}}
            )
        elif wanted:
            await self.collection.update_many(
                {"_id": {"$in": wanted}, "tenant": tenant}, {"$set": {MANAGES: True}}
            )

    async def clear_manager(
        self, tenant: str, manager_id: str, now: datetime, emission: Emission
    ) -> list[str]:
        """Remove ``manager`` from every user of the tenant whose manager was this one, each at
        a new version with its event (on the ``(tenant, manager.value)`` index); answers them.

        They are found first, so that the relay can be told which documents hold new events;
        one assigned this manager in between is cleared all the same, and found by the relay's
        safety net."""
        managed = self.collection.find({"tenant": tenant, MANAGER_VALUE: manager_id}, {"_id": 1})
        ids = [document["_id"] async for document in managed]
        manager = f"{ENTERPRISE_FIELD}.manager"
        if ids:
            await self.collection.update_many(
                {"tenant": tenant, MANAGER_VALUE: manager_id, **LIVE},
                {**new_version(now, emission), "$unset": {f"r.{manager}": "", f"c.{manager}": ""}},
            )
        return ids

    async def find(
        self,
        tenant: str,
        query: Mapping[str, Any],
        sort: SortSpec,
        skip: int,
        limit: int,
        projection: Mapping[str, Any] | None = None,
        *,
        in_sort_order: bool = False,
    ) -> list[Document]:
        """The documents ``query`` matches, in ``sort`` order, from ``skip`` on.

        The scan is hinted to a tenant-first index where one fits, so that it stays within
        the tenant. ``in_sort_order`` picks the index on the first sort key, for a query
        no index of its own narrows (no filter, or only a cursor's keyset): the scan
        starts at the cursor, and MongoDB reads it in sort order (SecantusDB still sorts
        what it reads). Otherwise a query on one field no index bounds gets that field's
        index (see ``_unbounded_field``). Left to itself, a planner may pick any tenant-first
        index and sort the whole tenant. A hint never changes what a query matches. On a
        store that runs a hinted query as a walk of the whole index, every tenant's entries
        (SecantusDB: ``Planner.hints`` is off), nothing is hinted: its planner's own choice,
        even a scan of the collection, reads less.

        A query of one value of a field unique within the tenant (``userName eq``: the lookup
        IdPs make most) matches one document at most, in any order: it goes with the
        concurrent lookups of that field in the tenant, in one command (``group_read.py``).
        """
        lookup = _unique_value(query) if skip == 0 and projection is None else None
        if lookup is not None and unique_within_tenant(
            self.kind.collection, lookup[0], self.partition
        ):
            found = await self._reads.find_one(*lookup, conditions=self._within(tenant))
            return [] if found is None else [found]
        cursor = self.collection.find({**query, **self._within(tenant)}, projection)
        field = sort[0][0] if in_sort_order else _unbounded_field(query)
        index = (
            tenant_index(self.kind.collection, field, self.partition) if field is not None else None
        )
        if index is not None and self.database.planner.hints:
            cursor = cursor.hint(index)
        return await cursor.sort(sort).skip(skip).limit(limit).to_list(None)

    async def first_id(self, tenant: str, query: Mapping[str, Any]) -> str | None:
        """The id of the first resource (in id order) that ``query`` matches, if any."""
        found = await self.find(tenant, query, [("_id", 1)], skip=0, limit=1, projection={"_id": 1})
        return str(found[0]["_id"]) if found else None

    async def user(self, tenant: str, user_id: str) -> UserRecord | None:
        """The user of that id, as a record (on the users' repository)."""
        document = await self.get(tenant, user_id)
        return None if document is None else user_record(document)

    async def first_user(self, tenant: str, query: Mapping[str, Any]) -> UserRecord | None:
        """The first user (in id order) that ``query`` matches, as a record, if any."""
        found = await self.find(tenant, query, [("_id", 1)], skip=0, limit=1)
        return user_record(found[0]) if found else None

    async def records(
        self,
        tenant: str,
        query: Mapping[str, Any],
        sort: SortSpec,
        skip: int,
        limit: int,
        *,
        in_sort_order: bool = False,
    ) -> list[StoredResource]:
        """The resources ``query`` matches, in ``sort`` order, from ``skip`` on (see ``find``)."""
        documents = await self.find(tenant, query, sort, skip, limit, in_sort_order=in_sort_order)
        return [stored_resource(document) for document in documents]

    async def keyed_records(
        self,
        tenant: str,
        query: Mapping[str, Any],
        sort: SortSpec,
        limit: int,
        *,
        in_sort_order: bool = False,
    ) -> list[tuple[StoredResource, Any]]:
        """``records`` from the first, each with its value at the first sort key (a keyset)."""
        documents = await self.find(tenant, query, sort, 0, limit, in_sort_order=in_sort_order)
        return [(stored_resource(d), value_at(d, sort[0][0])) for d in documents]

    async def holds_any(self, tenant: str, extension: str, attributes: Iterable[str]) -> bool:
        """Whether some resource of the tenant holds a value of one of an extension's
        attributes (one query, on the tenant's range of its index)."""
        prefix = f"r.{storage_key(extension)}"
        held = [{f"{prefix}.{name}": {"$ne": None}} for name in attributes]
        if not held:
            return False
        query = {**self._within(tenant), "$or": held}
        return await self.collection.find_one(query, {"_id": 1}) is not None

    async def count(self, tenant: str, query: Mapping[str, Any]) -> int:
        return await self.collection.count_documents({**query, **self._within(tenant)})

    async def summaries(self, tenant: str, ids: Iterable[str]) -> dict[str, Summary]:
        """What other resources need to know of these: that they exist, and their names."""
        fields = self._with_owner({**NAME_FIELDS, MEMBER_OF: 1})
        found: dict[str, Summary] = {}
        for wanted in any_of(set(ids)):
            # By primary keys alone, as ``get`` reads one, and held to the tenant here.
            cursor = self.collection.find({"_id": wanted}, fields)
            found |= {
                document["_id"]: summary(document)
                async for document in cursor
                if self._owned(document, tenant)
            }
        return found

    async def delete_tenant(self, tenant: str) -> None:
        await self.collection.delete_many(self._within(tenant))

    async def put(
        self, tenant: str, form: StoredForm, now: datetime, new_id: str
    ) -> StoredResource:
        """Store a custom resource as the app loads it; answers it as stored.

        The resource of the same ``externalId`` (the app's own key) in the tenant and type
        is replaced, at its next version; with none, or no ``externalId``, one is created
        with ``new_id``. Custom resources are the app's, never written through SCIM, so
        their writes emit no provisioning event.
        """
        external_id = form.comparison.get("externalId")
        on_insert: Document = {"meta.created": now}
        if external_id is None:
            key: Document = {"_id": new_id}
        else:
            key, on_insert["_id"] = {"c.externalId": external_id}, new_id
        query = {**self._within(tenant), **key}
        upsert = partial(
            self.collection.find_one_and_update,
            query,
            {
                "$set": {**changed_fields(form, None, now), "meta.lastModified": now},
                "$inc": {"meta.version": 1},
                "$setOnInsert": on_insert,
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        for _ in range(UPSERT_ATTEMPTS):
            try:
                document = await upsert() or await self.collection.find_one(query)
            except DuplicateKeyError:
                continue
            if document is not None:
                return stored_resource(document)
        raise WriteRefused(f"no {self.kind.name} could be stored with that externalId")

    async def remove(self, tenant: str, resource_id: str) -> bool:
        """Delete a custom resource outright (no event: see ``put``); whether it was there."""
        result = await self.collection.delete_one({"_id": resource_id, **self._within(tenant)})
        return result.deleted_count == 1
