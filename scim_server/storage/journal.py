"""The ``journal`` collection: provisioning journal entries, written in batches, read newest first.

One document per SCIM request, the fields of :class:`JournalEntry` under the same names
(``id`` stored as ``_id``). Writes are best effort (``w: 1``, no wait for the storage
engine's journal): an entry lost in a crash is acceptable, a slower request is not. What
an entry holds, and what becomes of one the database refuses, is the core's
(``scim_server.core.journal``); the indexes, the TTL included, are laid out with every
other in ``database.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime

import bson
from bson import ObjectId
from pymongo import WriteConcern
from pymongo.errors import BulkWriteError

from scim_server.storage.database import (
    DUPLICATE_KEY,
    JOURNAL,
    Database,
    Document,
    translate_driver_errors,
)

MAX_BSON_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class JournalEntry:
    """One SCIM request as the journal keeps it."""

    tenant: str
    at: datetime
    method: str
    path: str
    status: int
    query: str | None = None
    user_agent: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    request_body: str | None = None
    """The body's redacted JSON text, or a note saying why it is not kept."""
    truncated: bool = False
    duration_ms: float | None = None
    request_id: str | None = None
    """The id the request's response and log lines carry (``X-Request-Id``)."""
    id: ObjectId = field(default_factory=ObjectId)
    """Given when the entry is made, so entries made in the same millisecond keep their order."""


STORED = tuple(f.name for f in fields(JournalEntry) if f.name != "id")
"""The fields stored under their own names, in their order."""


def entry_fields(entry: JournalEntry) -> Document:
    """The fields stored under their own names, with their values.

    Every field is a scalar, so the values are read as they are: ``dataclasses.asdict``
    deep-copies each one, which cost 0.27 ms of CPU per request (of a GET's 3.5 ms under
    cProfile) when each entry was written.
    """
    return {name: getattr(entry, name) for name in STORED}


def _document(entry: JournalEntry) -> Document:
    return {"_id": entry.id, **entry_fields(entry)}


def _entry(document: Document) -> JournalEntry:
    """The entry ``document`` stores; a field an older version stored and this one does not
    know is left out."""
    known = {name: value for name, value in document.items() if name in STORED}
    return JournalEntry(id=document["_id"], **known)


@translate_driver_errors
class JournalRepository:
    """Every tenant's journal entries, in one collection; each entry names its tenant."""

    def __init__(self, database: Database) -> None:
        self.journal = database.db.get_collection(JOURNAL, write_concern=WriteConcern(w=1))
        self.tenants = database.tenants

    async def existing_tenants(self, names: Iterable[str]) -> set[str]:
        """Which of ``names`` are tenants now (in one query)."""
        query = {"_id": {"$in": list(set(names))}}
        return {tenant["_id"] async for tenant in self.tenants.find(query, {"_id": 1})}

    @staticmethod
    def storable(entry: JournalEntry) -> bool:
        """Whether ``entry`` encodes as one BSON document MongoDB can store."""
        try:
            return len(bson.encode(_document(entry))) <= MAX_BSON_BYTES
        except Exception:  # whatever BSON refuses (an integer beyond 64 bits, ...)
            return False

    async def insert(self, entries: Sequence[JournalEntry]) -> list[str]:
        """Insert ``entries`` unordered: each one the server refuses costs only itself.

        Answers why each refused entry was refused (empty when all were written). An
        entry already stored under its id (sent by an attempt whose answer was lost) counts
        as written. Raises when the batch could not be sent at all, as when an entry does
        not encode (see :meth:`storable`).
        """
        if not entries:
            return []
        try:
            await self.journal.insert_many([_document(e) for e in entries], ordered=False)
        except BulkWriteError as error:
            errors = error.details["writeErrors"]
            return [str(e.get("errmsg")) for e in errors if e["code"] != DUPLICATE_KEY]
        return []

    async def entries(
        self,
        tenant: str,
        *,
        limit: int,
        since: datetime | None = None,
        method: str | None = None,
        status: int | None = None,
    ) -> list[JournalEntry]:
        """The tenant's newest ``limit`` entries at or after ``since``, of that ``method`` and
        ``status`` when given, newest first (on the ``(tenant, at, _id)`` index)."""
        query: Document = {"tenant": tenant}
        if since is not None:
            query["at"] = {"$gte": since}
        if method is not None:
            query["method"] = method
        if status is not None:
            query["status"] = status
        cursor = self.journal.find(query).sort([("at", -1), ("_id", -1)]).limit(limit)
        return [_entry(document) async for document in cursor]

    async def delete_tenant(self, tenant: str) -> None:
        await self.journal.delete_many({"tenant": tenant})
