"""Connecting to MongoDB and laying out the collections and their indexes.

Every collection is shared by all tenants and every index starts with ``tenant``,
so a query can only ever reach one tenant's data through an index prefix. The two
exceptions: the journal's TTL index on ``at`` (MongoDB only expires documents through
a single-field index), and the sparse index of pending events that the events relay's
safety net reads across tenants (``storage/events.py``).

It is also where PyMongo's exceptions end: ``driver_errors`` translates them into the
storage layer's own (``scim_server.storage.errors``), and ``translate_driver_errors``
puts every public coroutine of a repository class inside it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, ParamSpec, TypeVar

import pymongo
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, WriteConcern, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    WriteError,
)

from scim_server import metrics
from scim_server.models import CUSTOM_COLLECTION, EnterpriseUser, storage_key
from scim_server.storage.errors import StorageError, StorageUnavailable, WriteRefused

Document = dict[str, Any]

log = logging.getLogger(__name__)

ENTERPRISE_FIELD = storage_key(str(EnterpriseUser.__schema__))
"""The field a user's enterprise extension is stored under, in ``r`` and in ``c``."""

MANAGER_VALUE = f"c.{ENTERPRISE_FIELD}.manager.value"
"""The stored field of a user's enterprise ``manager.value`` (caseExact: as sent)."""

RESOURCE_TYPE = "rt"
"""In the collection of custom resources, the name of each document's resource type."""

SHARED_NAME = "sn"
"""A group's own id, on a group allowed to share its displayName (see ``INDEXES``)."""

JOURNAL = "journal"
"""The provisioning journal's collection (``storage/journal.py``)."""

PENDING_EVENTS = IndexModel([("ev.at", ASCENDING)], sparse=True, name="pending_events")
"""The documents holding events not yet in the outbox (``storage/events.py``), across tenants:
the relay's safety net looks for those left behind. Sparse, so it holds only those."""

INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel(
            [("tenant", ASCENDING), ("c.userName", ASCENDING)],
            unique=True,
            name="tenant_userName_unique",
        ),
        IndexModel([("tenant", ASCENDING), ("c.externalId", ASCENDING)], name="tenant_externalId"),
        IndexModel([("tenant", ASCENDING), ("c.emails.value", ASCENDING)], name="tenant_emails"),
        IndexModel(
            [("tenant", ASCENDING), ("c.displayName", ASCENDING)], name="tenant_displayName"
        ),
        IndexModel([("tenant", ASCENDING), ("_id", ASCENDING)], name="tenant_id"),
        # Counts the users holding a seat, when seats are recounted.
        IndexModel([("tenant", ASCENDING), ("c.active", ASCENDING)], name="tenant_active"),
        # The users a deleted user managed, whose manager is then cleared (and Entra's
        # ``manager eq`` reference check).
        IndexModel([("tenant", ASCENDING), (MANAGER_VALUE, ASCENDING)], name="tenant_manager"),
        PENDING_EVENTS,
    ],
    "groups": [
        # displayName is unique per tenant, compared case-insensitively (on ``c``). A group a
        # tenant allowed to share its name, or one stored before names were unique, carries
        # its own id in ``sn`` (``SHARED_NAME``) and so never collides.
        IndexModel(
            [("tenant", ASCENDING), ("c.displayName", ASCENDING), (SHARED_NAME, ASCENDING)],
            unique=True,
            name="tenant_displayName_unique",
        ),
        IndexModel([("tenant", ASCENDING), ("c.externalId", ASCENDING)], name="tenant_externalId"),
        IndexModel([("tenant", ASCENDING), ("_id", ASCENDING)], name="tenant_id"),
        PENDING_EVENTS,
    ],
    # Every tenant's Roles, Entitlements, Licenses...: each index starts (tenant, type), so
    # one type's lists, filters, sorts and counts run on its own range of the index.
    CUSTOM_COLLECTION: [
        IndexModel(
            [("tenant", ASCENDING), (RESOURCE_TYPE, ASCENDING), ("_id", ASCENDING)],
            name="tenant_type_id",
        ),
        IndexModel(
            [("tenant", ASCENDING), (RESOURCE_TYPE, ASCENDING), ("c.displayName", ASCENDING)],
            name="tenant_type_displayName",
        ),
        # The app's key: a load replaces the resource of its externalId, so no two may share
        # one, even when two loads race (partial: resources without one are not compared).
        IndexModel(
            [("tenant", ASCENDING), (RESOURCE_TYPE, ASCENDING), ("c.externalId", ASCENDING)],
            unique=True,
            partialFilterExpression={"c.externalId": {"$exists": True}},
            name="tenant_type_externalId_unique",
        ),
    ],
    # One document per (group, member): a group of a million members is a million
    # small documents, and adding one costs an index insert, whatever the group size.
    "memberships": [
        IndexModel(
            [("tenant", ASCENDING), ("group", ASCENDING), ("member", ASCENDING)],
            unique=True,
            name="tenant_group_member_unique",
        ),
        IndexModel([("tenant", ASCENDING), ("member", ASCENDING)], name="tenant_member"),
    ],
    "tokens": [IndexModel([("tenant", ASCENDING), ("_id", ASCENDING)], name="tenant_token")],
    # The outbox of provisioning events, read in sequence order from a given number; the
    # unique key is what keeps each tenant's sequence gap-free under several relays.
    "events": [
        IndexModel(
            [("tenant", ASCENDING), ("sequence", ASCENDING)],
            unique=True,
            name="tenant_sequence_unique",
        )
    ],
    # The provisioning journal, read newest first (at, then _id, descending); also expired
    # through the index journal_ttl_index builds.
    JOURNAL: [
        IndexModel(
            [("tenant", ASCENDING), ("at", ASCENDING), ("_id", ASCENDING)], name="tenant_at_id"
        )
    ],
}

CLOSE_TIMEOUT_SECONDS = 0.5
"""How long closing the client may wait to end its sessions, a courtesy (the server expires
them anyway): a server that is gone would otherwise hold the close up for a whole
server-selection timeout."""

JOURNAL_TTL_INDEX = "at_ttl"


def _tenant_key(field: str, partition: Iterable[str]) -> list[tuple[str, int]]:
    """An index key led by the tenant (and ``partition``), then ``field``, all ascending."""
    return [(name, ASCENDING) for name in ("tenant", *partition, field)]


def tenant_index(
    collection: str, field: str, partition: Iterable[str] = ()
) -> list[tuple[str, int]] | None:
    """The key of ``collection``'s index led by ``(tenant, *partition, field)``, if there is one.

    What a query hints to be read in ``field`` order within its tenant (and, in the custom
    resources, within its type: ``partition`` names ``RESOURCE_TYPE``): a hint names an
    index the server must hold, on MongoDB as on SecantusDB, so only these are hinted. A
    partial index never is: it lacks the documents its filter leaves out.
    """
    wanted = _tenant_key(field, partition)
    for index in INDEXES.get(collection, []):
        key = list(index.document["key"].items())
        if key[: len(wanted)] == wanted and "partialFilterExpression" not in index.document:
            return key
    return None


def unique_within_tenant(collection: str, field: str, partition: Iterable[str] = ()) -> bool:
    """Whether an index of ``collection`` holds ``field`` unique within each tenant (and type:
    ``partition``), so that its values alone order a tenant's documents, ties and all.

    Only a unique index keyed exactly ``(tenant, *partition, field)`` says so; a partial one
    leaves documents out, and one with more keys lets two documents share the value.
    """
    wanted = _tenant_key(field, partition)
    return any(
        list(index.document["key"].items()) == wanted
        and index.document.get("unique", False)
        and "partialFilterExpression" not in index.document
        for index in INDEXES.get(collection, [])
    )


@dataclass(frozen=True)
class Planner:
    """What the store's planner makes of the query shapes where MongoDB and SecantusDB part
    (``learn_planner``): each is a cost, never a result, so the code is correct either way."""

    hints: bool = True
    """Whether a hinted index scan is bounded by the query, as MongoDB bounds it unhinted.
    SecantusDB walks the whole hinted index instead (every tenant's entries, read and decoded,
    though ``explain()`` shows the plan bounded by the query)."""
    modifies_by_key: bool = True
    """Whether a ``findAndModify`` of one document by its ``_id`` is planned on ``_id``, as on
    MongoDB. SecantusDB finds the document by its key, then runs the write as a scan of the
    whole collection (it re-asserts the query under a top-level ``$and``, which it plans as a
    scan: 50 to 70 ms at 10,000 users, under the collection's lock), so there a read and an
    update by key, under a millisecond each, cost less than the one command."""


async def learn_planner(db: AsyncDatabase[Any]) -> Planner:
    """Ask the store which planner it has: SecantusDB names its own version in ``buildInfo``."""
    embedded = "secantusVersion" in await db.command("buildInfo")
    return Planner(hints=not embedded, modifies_by_key=not embedded)


TENANTS = "tenants"
"""The collection of the tenant documents, ``_id`` the tenant's name."""

IN_BATCH = 100
"""The most values one query's ``$in`` carries (``any_of``).

SecantusDB finds the documents of an ``$in`` on the index, one lookup per value, but then
matches each document found against every value of the list: ``$in`` over k ids costs k²
comparisons (a 1,000-id lookup took a second, a 2,000-member PATCH 12.6 s). Cut into lists of
a fixed size, the cost is linear in k. MongoDB runs each batch on the same index bounds, so
there it costs only a command per hundred ids; a hundred keeps that small on both."""


def any_of(ids: Iterable[str]) -> Iterator[str | Document]:
    """Query values that match ``ids`` together: ``{"$in": [...]}`` of at most ``IN_BATCH``
    ids each, or one id alone, the cheaper shape (none for no ids)."""
    values = iter(ids)
    while batch := list(itertools.islice(values, IN_BATCH)):
        yield batch[0] if len(batch) == 1 else {"$in": batch}


DUPLICATE_KEY = 11000
"""The server's error code for a write a unique index refused."""

INDEX_OPTIONS_CONFLICT = frozenset({85, 86})  # IndexOptionsConflict, IndexKeySpecsConflict


async def ensure_ttl_index(collection: AsyncCollection[Document], name: str, seconds: int) -> None:
    """A TTL index on ``at`` that expires documents ``seconds`` after it (single-field, as
    MongoDB requires of TTL indexes); a setting changed since it was built is changed in
    place."""
    index = IndexModel([("at", ASCENDING)], expireAfterSeconds=seconds, name=name)
    try:
        await collection.create_indexes([index])
    except OperationFailure as error:
        if error.code not in INDEX_OPTIONS_CONFLICT:
            raise
        await collection.database.command(
            {"collMod": collection.name, "index": {"name": name, "expireAfterSeconds": seconds}}
        )


@contextlib.contextmanager
def driver_errors() -> Iterator[None]:
    """Raise the storage layer's exception for any PyMongo exception raised inside.

    Unreachable (no server selected, a connection lost) or out of time (a network
    timeout, ``maxTimeMS``, ``pymongo.timeout``): ``StorageUnavailable``. A write the
    server answered and refused: ``WriteRefused``. Anything else of the driver's:
    ``StorageError``. The driver's exception stays chained as the cause, for the logs.
    """
    try:
        yield
    except PyMongoError as error:
        if isinstance(error, ConnectionFailure) or error.timeout:
            raise StorageUnavailable(str(error)) from error
        if isinstance(error, WriteError | BulkWriteError):
            raise WriteRefused(str(error)) from error
        raise StorageError(str(error)) from error


P = ParamSpec("P")
R = TypeVar("R")
Y = TypeVar("Y")
C = TypeVar("C", bound=type)


def _translated(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> R:
        with driver_errors():
            return await method(*args, **kwargs)

    return translated


def _translated_stream(method: Callable[P, AsyncIterator[Y]]) -> Callable[P, AsyncIterator[Y]]:
    @functools.wraps(method)
    async def translated(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[Y]:
        with driver_errors():
            async for item in method(*args, **kwargs):
                yield item

    return translated


def translate_driver_errors(cls: C) -> C:
    """Class decorator: every public coroutine method (and async generator method) of ``cls``
    runs inside ``driver_errors``, so no PyMongo exception leaves the class.

    Only public methods are wrapped: they are the storage boundary, and a private
    helper's driver errors reach the caller through them. A public method must not hand
    out a driver object that talks to the database later (a cursor, a collection): its
    errors would escape the translation; answer lists, or iterate in an async generator.
    """
    for name, member in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if inspect.isasyncgenfunction(member):
            setattr(cls, name, _translated_stream(member))
        elif inspect.iscoroutinefunction(member):
            setattr(cls, name, _translated(member))
    return cls


class CommandCounter(monitoring.CommandListener):
    """Counts every command the server's client starts into the request it serves.

    PyMongo calls ``started`` in the task running the command, so the request's tally
    (``metrics.tallying``) is the one in that task's context; commands of no request (the
    journal's background writes) count nowhere.
    """

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        metrics.count_command(target if isinstance(target, str) else "", event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Only starts are counted."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Only starts are counted."""


class ServerSecret(NamedTuple):
    """A server-wide secret and whether the call that returned it generated it."""

    value: str
    generated: bool


@translate_driver_errors
@dataclass
class Database:
    """The collections the server uses, on one client bound to the running event loop."""

    client: AsyncMongoClient[Document]
    db: AsyncDatabase[Document]
    planner: Planner = Planner()
    """What the store's planner does with a hint and a ``findAndModify`` (``learn_store``)."""

    @classmethod
    def connect(cls, uri: str, name: str) -> Database:
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=5000,
            connectTimeoutMS=5000,
            tz_aware=True,
            event_listeners=[CommandCounter()],
        )
        # Provisioning data must survive a crash: every write waits for the journal.
        database = client.get_database(name, write_concern=WriteConcern(w=1, j=True))
        return cls(client=client, db=database)

    def __getitem__(self, collection: str) -> AsyncCollection[Document]:
        return self.db[collection]

    @property
    def memberships(self) -> AsyncCollection[Document]:
        return self.db["memberships"]

    @property
    def tenants(self) -> AsyncCollection[Document]:
        return self.db[TENANTS]

    @property
    def tokens(self) -> AsyncCollection[Document]:
        return self.db["tokens"]

    async def learn_store(self) -> None:
        """Ask the store which planner it has (``planner``)."""
        self.planner = await learn_planner(self.db)

    async def ensure_indexes(self, journal_ttl_seconds: int = 7 * 24 * 3600) -> None:
        for collection, indexes in INDEXES.items():
            try:
                await self.db[collection].create_indexes(indexes)
            except DuplicateKeyError:
                if collection != "groups":
                    raise
                # Groups stored before their names were unique: keep them, then build it.
                await self._share_duplicate_group_names()
                await self.db[collection].create_indexes(indexes)
        await ensure_ttl_index(self.db[JOURNAL], JOURNAL_TTL_INDEX, journal_ttl_seconds)

    async def _share_duplicate_group_names(self) -> None:
        """Let the groups whose displayName an older group of their tenant holds keep it.

        Each such group gets its own id in ``sn``, so the unique index on displayName can be
        built while they keep their names; new duplicates are refused from then on. Every set
        of duplicates is logged (tenant, name, the group that keeps the name alone, the
        others), for the tenant's admin to rename or remove them.
        """
        groups = self.db["groups"]
        duplicates = await groups.aggregate(
            [
                {"$match": {SHARED_NAME: None}},
                {"$sort": {"meta.created": 1, "_id": 1}},
                {
                    "$group": {
                        "_id": {"tenant": "$tenant", "name": "$c.displayName"},
                        "ids": {"$push": "$_id"},
                    }
                },
                {"$match": {"ids.1": {"$exists": True}}},
            ]
        )
        async for duplicate in duplicates:
            first, *others = duplicate["ids"]
            for group_id in others:
                await groups.update_one({"_id": group_id}, {"$set": {SHARED_NAME: group_id}})
            log.warning(
                "tenant %r holds %d groups of the duplicate displayName %r: %s keeps it, and "
                "%s keep it as duplicates (new duplicates are refused; rename or delete them)",
                duplicate["_id"]["tenant"],
                len(others) + 1,
                duplicate["_id"]["name"],
                first,
                ", ".join(others),
            )

    async def server_secret(
        self,
        name: str,
        configured: str | None,
        generate: Callable[[], str] = lambda: secrets.token_urlsafe(32),
    ) -> ServerSecret:
        """A secret shared by every worker: the configured one, else one generated once and kept.

        Keeping generated secrets in the database means tokens stay valid across
        restarts and across worker processes without any configuration. The answer
        says whether this very call generated the value: only that caller may show it.
        ``generate`` makes a new value (a random token unless told otherwise, a key for one).
        """
        if configured:
            return ServerSecret(configured, generated=False)
        settings = self.db["server_settings"]
        generated = generate()
        try:
            await settings.insert_one({"_id": name, "value": generated})
        except DuplicateKeyError:
            # Another worker, or an earlier run, generated it first: then use theirs.
            stored = await settings.find_one({"_id": name})
            assert stored is not None
            return ServerSecret(str(stored["value"]), generated=False)
        return ServerSecret(generated, generated=True)

    async def ping(self, timeout: float) -> None:
        """Raise one of PyMongo's connection errors unless the server answers within ``timeout``."""
        with pymongo.timeout(timeout):
            await self.db.command("ping")

    async def close(self) -> None:
        with pymongo.timeout(CLOSE_TIMEOUT_SECONDS):
            await self.client.close()
