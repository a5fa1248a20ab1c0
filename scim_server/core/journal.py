"""The per-tenant provisioning journal: what each SCIM client did, for QA to read back.

Each SCIM request becomes one entry (method, path, query, status, the client's
User-Agent, resource type and id, time, duration, and the request body with every
password redacted). Recording never slows a request down: ``record`` only puts the
entry on a bounded in-memory queue (a full queue drops the entry and counts it), and a
background task writes batches with one unordered ``insert_many``.

Whatever a client sends, its entry is storable and costs no other entry: ``record``
turns every text field into valid UTF-8 and bounds its length, redaction walks bodies
without recursion and cuts them at a fixed depth, and a batch the database refuses is
split so that only the entries at fault are lost (and counted in ``failed``).

Storage (``scim_server.storage.journal``) does the I/O: one document per entry in the
``journal`` collection, read newest first, expired by a TTL index on ``at``
(``journal_ttl_seconds``, default 7 days) that keeps the journal bounded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from scim_server import metrics
from scim_server.core.background import stop_task
from scim_server.storage.database import Database, Document
from scim_server.storage.journal import JournalEntry, JournalRepository, entry_fields

log = logging.getLogger(__name__)

REDACTED = "<redacted>"
TOO_DEEP = "<nested too deep>"
SECRET_KEYS = frozenset({"password"})
FILTER_KEYS = frozenset({"filter", "path"})
"""Body keys whose string value is a filter (``.search``) or may hold one (a PATCH value path)."""
MAX_BODY_BYTES = 16 * 1024
MAX_DEPTH = 32
"""Containers kept in a journaled body; SCIM bodies nest about 8 deep (Bulk, PATCH values)."""

FIELD_LIMITS = {
    "request_body": MAX_BODY_BYTES,
    "query": 8 * 1024,
    "path": 2 * 1024,
    "user_agent": 512,
}
"""The most characters kept of each text field of an entry; any other one keeps ``FIELD_LIMIT``."""
FIELD_LIMIT = 256

# A comparison on the password in a SCIM filter (RFC 7644 §3.4.2.2), in any case, with or
# without its schema URN or a parent attribute, and its value: a quoted string (an
# unterminated one runs to the end, escapes included) or a bare token.
FILTER_SECRET = re.compile(
    r"""(?<![\w.:$-])((?:[\w.:$-]*[.:])?password\s+(?:eq|ne|co|sw|ew|gt|ge|lt|le))\s*"""
    r"""(?:"(?:[^"\\]|\\.?)*"?|[^\s()\[\]]+)""",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)
def _is_secret(name: str) -> bool:
    """``password``, ``PASSWORD`` or ``urn:...:User:password`` (also as a PATCH path).

    Remembered: a body repeats its keys (each operation of a Bulk names the same ones)."""
    return name.rsplit(":", 1)[-1].rsplit(".", 1)[-1].strip().lower() in SECRET_KEYS


def redact_filter(expression: str) -> str:
    """``expression`` with the value of every comparison on the password redacted.

    Read as text, not parsed: a filter too malformed to parse may still carry a secret.
    """
    return FILTER_SECRET.sub(rf'\1 "{REDACTED}"', expression)


def redact_query(parameters: Iterable[tuple[str, str]]) -> str | None:
    """A query string as the server read it (decoded), with passwords in filters redacted."""
    query = "&".join(f"{name}={redact_filter(value)}" for name, value in parameters)
    return query or None


class Redacted(NamedTuple):
    """A JSON value made fit for the journal, and whether parts nested too deep were cut."""

    value: Any
    truncated: bool


def redact(value: Any, max_depth: int = MAX_DEPTH) -> Redacted:
    """``value`` with every secret replaced by ``<redacted>``, at any depth, in place.

    A key named ``password`` has its value redacted; so has the ``value`` of a PATCH
    operation whose ``path`` names the password (``{"path": "password", "value": ...}``),
    and the password comparisons in a ``filter`` or ``path`` string. Walked with an
    explicit stack, so no nesting exhausts Python's; a container deeper than
    ``max_depth`` is replaced by ``<nested too deep>``.

    ``value`` is changed, not copied: it is the caller's own (``journal_body`` parses the
    body for it), and a Bulk body of a thousand creations is too large to copy for the
    few secrets it may hold.
    """
    if not isinstance(value, dict | list):
        return Redacted(value, truncated=False)
    if max_depth < 1:
        return Redacted(TOO_DEEP, truncated=True)
    truncated = False
    # Containers still to walk, with their depth.
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if isinstance(container, list):
            places: Iterable[tuple[Any, Any]] = enumerate(container)
            secret_path = False
        else:
            places = container.items()
            path = container.get("path")
            secret_path = isinstance(path, str) and _is_secret(path)
        changes: list[tuple[Any, Any]] = []
        for place, child in places:
            if isinstance(place, str) and (
                _is_secret(place) or (secret_path and place.lower() == "value")
            ):
                changes.append((place, REDACTED))
            elif isinstance(child, str):
                if isinstance(place, str) and place.lower() in FILTER_KEYS:
                    changes.append((place, redact_filter(child)))
            elif isinstance(child, dict | list):
                if depth >= max_depth:
                    truncated = True
                    changes.append((place, TOO_DEEP))
                else:
                    stack.append((child, depth + 1))
        for place, changed in changes:
            container[place] = changed
    return Redacted(value, truncated)


class JournalBody(NamedTuple):
    text: str | None
    truncated: bool = False


def journal_body(raw: bytes | None) -> JournalBody:
    """What the journal keeps of a request body: its redacted JSON text.

    Kept as text, so any key a client sends (``$ref``, ``...:2.0:User``) is storable; the
    admin API hands it back as JSON. A body that is not JSON (or nests beyond what the
    JSON parser reads) is not kept at all (it could hold a secret no key names), only its
    size. ``record`` cuts the text to ``MAX_BODY_BYTES``.
    """
    if not raw:
        return JournalBody(None)
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return JournalBody(f"<not JSON, {len(raw)} bytes>")
    redacted = redact(parsed)
    return JournalBody(orjson.dumps(redacted.value).decode(), redacted.truncated)


def valid_utf8(text: str) -> str:
    """``text``, its lone surrogates replaced by U+FFFD so that BSON can store it.

    aiohttp hands bytes that are not UTF-8 (in a header, a path) over as surrogate escapes.
    """
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _fit(entry: Document) -> Document:
    """``entry`` with every text field valid UTF-8 and within its limit; ``truncated`` says
    whether anything was cut."""
    truncated = bool(entry.get("truncated"))
    for key, value in entry.items():
        if isinstance(value, str):
            text, limit = valid_utf8(value), FIELD_LIMITS.get(key, FIELD_LIMIT)
            if len(text) > limit:
                text, truncated = f"{text[:limit]}...<truncated, {len(text)} characters>", True
            entry[key] = text
    entry["truncated"] = truncated
    return entry


def body_view(stored: str | None) -> Any:
    """A stored body as the admin API shows it: JSON again, unless it was truncated."""
    if stored is None:
        return None
    try:
        return orjson.loads(stored)
    except orjson.JSONDecodeError:
        return stored


class ProvisioningJournal:
    """A bounded queue of journal entries and the task writing them through the repository."""

    def __init__(
        self,
        database: Database,
        *,
        enabled: bool = True,
        max_queue: int = 10_000,
        batch_size: int = 200,
        flush_interval: float = 0.5,
    ) -> None:
        self.repository = JournalRepository(database)
        self.enabled = enabled
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.dropped = 0
        """Entries left out because the queue was full."""
        self.failed = 0
        """Entries the database would not take (each one costs only itself)."""
        self._queue: asyncio.Queue[JournalEntry] = asyncio.Queue(maxsize=max_queue)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Future[None] | None = None

    def record(self, entry: Document) -> bool:
        """Queue ``entry`` (never waits); ``False`` when it was dropped because the queue is full.

        ``entry`` holds the fields of a ``JournalEntry``, ``tenant`` and ``at`` at least. It
        gets its id now, so entries recorded in the same millisecond still read back in
        the order they were recorded. Its text fields are made storable now (see ``_fit``),
        whoever built it.
        """
        if not self.enabled:
            return False
        record = JournalEntry(**_fit(entry))
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            metrics.JOURNAL_ENTRIES.labels(outcome="dropped").inc()
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("provisioning journal queue full: %d entries dropped", self.dropped)
            return False
        metrics.JOURNAL_ENTRIES.labels(outcome="queued").inc()
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
            task, self._task = self._task, None
            await stop_task(task)
        if self._writing is not None:
            await self._writing
            self._writing = None
        await self.flush()

    async def flush(self) -> None:
        """Write every entry queued now, and wait for the batch the background task is
        writing, if any: what is read after ``flush`` holds every entry recorded before."""
        writing = self._writing
        while not self._queue.empty():
            await self._write(self._take(self.batch_size))
        if writing is not None:
            await asyncio.shield(writing)  # the background task owns it: never cancel it here

    def _take(self, count: int) -> list[JournalEntry]:
        batch: list[JournalEntry] = []
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

    async def _write(self, batch: list[JournalEntry]) -> None:
        """Insert ``batch``, leaving out entries of tenants that do not exist (or no longer do).

        One entry the database cannot take never costs the others: unordered, the server
        writes every other entry of the batch; an entry BSON cannot even encode is found
        and left out, and the rest sent again.
        """
        if not batch:
            return
        try:
            existing = await self.repository.existing_tenants(entry.tenant for entry in batch)
        except Exception as error:  # the journal must never take the server down
            self._lose(len(batch), error)
            return
        entries = [entry for entry in batch if entry.tenant in existing]
        metrics.JOURNAL_ENTRIES.labels(outcome="discarded").inc(len(batch) - len(entries))
        try:
            refused = await self.repository.insert(entries)
        except Exception:  # not sent at all: find the entries at fault
            storable = [entry for entry in entries if self.repository.storable(entry)]
            self._lose(len(entries) - len(storable), "not encodable as BSON")
            entries = storable
            try:
                refused = await self.repository.insert(entries)
            except Exception as error:
                self._lose(len(entries), error)
                return
        metrics.JOURNAL_ENTRIES.labels(outcome="written").inc(len(entries) - len(refused))
        if refused:
            self._lose(len(refused), refused[0])

    def _lose(self, count: int, reason: object) -> None:
        if count:
            self.failed += count
            metrics.JOURNAL_ENTRIES.labels(outcome="failed").inc(count)
            log.warning(
                "provisioning journal: %d entries not written (%d in all): %s",
                count,
                self.failed,
                reason,
            )

    async def entries(
        self,
        tenant: str,
        *,
        limit: int = 100,
        since: datetime | None = None,
        method: str | None = None,
        status: int | None = None,
    ) -> list[Document]:
        """A tenant's entries, newest first, each as the fields it was recorded with."""
        if method is not None:
            method = method.upper()
        records = await self.repository.entries(
            tenant, limit=limit, since=since, method=method, status=status
        )
        return [entry_fields(record) for record in records]  # the id is the journal's own

    async def delete_tenant(self, tenant: str) -> None:
        await self.repository.delete_tenant(tenant)
