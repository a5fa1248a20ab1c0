"""The per-tenant provisioning journal: what each SCIM client did, for QA to read back.

Each SCIM request becomes one entry (method, path, query, status, the client's
User-Agent, resource type and id, time, duration, and the request body with every
password redacted). Recording never slows a request down: ``record`` only puts the
entry on a bounded in-memory queue (a full queue drops the entry and counts it), and a
background task writes batches with one unordered ``insert_many``.

Storage: the ``journal`` collection, shared by all tenants like every other one. Its
``(tenant, at, _id)`` index starts with ``tenant`` as all indexes do; its TTL index on
``at`` (``journal_ttl_seconds``, default 7 days) is the one exception, because MongoDB
only expires documents through a single-field index. The TTL keeps the journal bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

import orjson
from bson import ObjectId
from pymongo import WriteConcern

from scim_server.storage.database import Database, Document

log = logging.getLogger(__name__)

REDACTED = "<redacted>"
SECRET_KEYS = frozenset({"password"})
MAX_BODY_BYTES = 16 * 1024
DEFAULT_TTL_SECONDS = 7 * 24 * 3600


def _is_secret(name: str) -> bool:
    """``password``, ``PASSWORD`` or ``urn:...:User:password`` (also as a PATCH path)."""
    return name.rsplit(":", 1)[-1].rsplit(".", 1)[-1].strip().lower() in SECRET_KEYS


def redact(value: Any) -> Any:
    """``value`` with every secret replaced by ``<redacted>``, at any depth.

    A key named ``password`` has its value redacted; so has the ``value`` of a PATCH
    operation whose ``path`` names the password (``{"path": "password", "value": ...}``).
    """
    if isinstance(value, dict):
        path = value.get("path")
        secret_path = isinstance(path, str) and _is_secret(path)
        return {
            key: REDACTED
            if _is_secret(str(key)) or (secret_path and key.lower() == "value")
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def journal_body(raw: bytes | None, limit: int = MAX_BODY_BYTES) -> str | None:
    """What the journal keeps of a request body: its redacted JSON text, cut at ``limit``.

    Kept as text, so any key a client sends (``$ref``, ``...:2.0:User``) is storable; the
    admin API hands it back as JSON. A body that is not JSON is not kept at all (it could
    hold a secret no key names), only its size.
    """
    if not raw:
        return None
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return f"<not JSON, {len(raw)} bytes>"
    text = orjson.dumps(redact(parsed)).decode()
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...<truncated, {len(text)} characters>"


def body_view(stored: str | None) -> Any:
    """A stored body as the admin API shows it: JSON again, unless it was truncated."""
    if stored is None:
        return None
    try:
        return orjson.loads(stored)
    except orjson.JSONDecodeError:
        return stored


class ProvisioningJournal:
    """A bounded queue of journal entries and the task writing them to MongoDB."""

    def __init__(
        self,
        database: Database,
        *,
        enabled: bool = True,
        max_queue: int = 10_000,
        batch_size: int = 200,
        flush_interval: float = 0.5,
    ) -> None:
        # Best effort: a journal entry need not wait for the storage engine's journal.
        self.collection = database.db.get_collection("journal", write_concern=WriteConcern(w=1))
        self.tenants = database.tenants
        self.enabled = enabled
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.dropped = 0
        self._queue: asyncio.Queue[Document] = asyncio.Queue(maxsize=max_queue)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[None] | None = None

    def record(self, entry: Document) -> bool:
        """Queue ``entry`` (never waits); ``False`` when it was dropped because the queue is full.

        ``entry`` needs ``tenant`` and ``at``; it gets an ``_id`` now, so entries recorded
        in the same millisecond still read back in the order they were recorded.
        """
        if not self.enabled:
            return False
        entry.setdefault("_id", ObjectId())
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("provisioning journal queue full: %d entries dropped", self.dropped)
            return False
        self._wake.set()
        return True

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="provisioning-journal")

    async def stop(self) -> None:
        """Stop the background task, then write what is still queued."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._writing is not None:
            await self._writing
            self._writing = None
        await self.flush()

    async def flush(self) -> None:
        """Write every entry queued now (the background task does this on its own)."""
        while not self._queue.empty():
            await self._write(self._take(self.batch_size))

    def _take(self, count: int) -> list[Document]:
        batch: list[Document] = []
        while len(batch) < count and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self._queue.qsize() < self.batch_size:
                await asyncio.sleep(self.flush_interval)
            self._wake.clear()
            # Shielded: stop() cancels this task, never a batch half-way through its insert.
            self._writing = asyncio.ensure_future(self._write(self._take(self.batch_size)))
            await asyncio.shield(self._writing)
            self._writing = None
            if not self._queue.empty():
                self._wake.set()

    async def _write(self, batch: list[Document]) -> None:
        """Insert ``batch``, leaving out entries of tenants that do not exist (or no longer do)."""
        if not batch:
            return
        try:
            names = list({entry["tenant"] for entry in batch})
            existing = {
                t["_id"] async for t in self.tenants.find({"_id": {"$in": names}}, {"_id": 1})
            }
            documents = [entry for entry in batch if entry["tenant"] in existing]
            if documents:
                await self.collection.insert_many(documents, ordered=False)
        except Exception as error:  # the journal must never take the server down
            log.warning("provisioning journal: %d entries not written: %s", len(batch), error)

    async def entries(
        self,
        tenant: str,
        *,
        limit: int = 100,
        since: datetime | None = None,
        method: str | None = None,
        status: int | None = None,
    ) -> list[Document]:
        """A tenant's entries, newest first."""
        query: Document = {"tenant": tenant}
        if since is not None:
            query["at"] = {"$gte": since}
        if method is not None:
            query["method"] = method.upper()
        if status is not None:
            query["status"] = status
        cursor = self.collection.find(query, {"_id": 0}).sort([("at", -1), ("_id", -1)])
        return await cursor.limit(limit).to_list(None)

    async def delete_tenant(self, tenant: str) -> None:
        await self.collection.delete_many({"tenant": tenant})
