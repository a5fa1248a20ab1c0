"""Group read: the lookups of one document by a unique key that concurrent requests make in
one collection, sent together.

Each command costs the server PyMongo's path (session, server selection, pool, the command
listener, encoding and a socket write: about a quarter of a millisecond of CPU on a small
machine) and the store its own per-command cost, whatever the number of documents it answers.
Under load, the requests reading one document each (``GET /Users/{id}``, a PATCH's read, a
``userName eq`` lookup) wait for their own command side by side; ``GroupRead`` sends those of
one shape as one ``find`` of ``{key: {"$in": [...]}}`` instead, and hands each caller its own
document (or None), as the read twin of ``group_commit.GroupInsert``:

* At most ``MAX_IN_FLIGHT`` commands per collection are in flight. A lookup made while fewer
  are goes out on the next turn of the event loop, with every other lookup of its shape made
  in that turn; lookups made while that many are in flight go out together as soon as one
  answers. No timer: a lone read waits for nothing, and a read waits for at most the commands
  in flight before its own. More than one in flight keeps the store's own parallelism (MongoDB
  serves concurrent reads on several cores) while each command carries what arrived meanwhile.
* Only lookups of the same shape share a command: the same key field, the same other
  conditions (a tenant) and the same projection. A lone lookup is sent as it was before,
  ``find_one``: the cheapest shape on every store, and one command for one read.
* A command carries at most ``IN_BATCH`` values (``database.any_of`` says why); beyond them,
  lookups wait for the next.
* The key is one a unique index holds (``_id``, or ``userName`` within a tenant), so a value
  matches at most one document, and each document goes to the lookups of its value: what
  ``find_one`` would have answered each of them, read no earlier than its call. Two lookups of
  one value get a copy each, never a shared document.
* A caller cancelled meanwhile (a client gone) is left out of the answers; its lookup may
  still be sent, which reads and changes nothing.

Each command runs in the context of the request whose lookup opened its batch, so it is counted
among that request's database commands (``CommandCounter``), as ``GroupInsert``'s inserts are.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from scim_server.storage.database import IN_BATCH, translate_driver_errors
from scim_server.storage.documents import value_at

Document = dict[str, Any]

MAX_IN_FLIGHT = 4
"""The most commands a ``GroupRead`` has in flight at once (see the module's docstring)."""

Shape = tuple[str, tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...] | None]
"""What lookups must share to go in one command: key field, other conditions, projection."""


@dataclass
class _Waiting:
    """A lookup handed to ``GroupRead.find_one``, and what its caller awaits."""

    value: Any
    found: asyncio.Future[Document | None]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


@translate_driver_errors
class GroupRead:
    """Lookups by a unique key in one collection, sent in batches of whatever arrived together."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_batch: int = IN_BATCH,
    ) -> None:
        self.collection = collection
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self._waiting: dict[Shape, list[_Waiting]] = {}
        self._opening: set[Shape] = set()
        """Shapes whose command is started but has not taken its batch yet: a lookup of one of
        these joins it."""
        self._in_flight = 0

    async def find_one(
        self,
        key: str,
        value: str,
        conditions: Mapping[str, str] | None = None,
        projection: Mapping[str, int] | None = None,
    ) -> Document | None:
        """The document whose ``key`` (a field a unique index holds, kept by ``projection``)
        is ``value`` and that meets ``conditions`` (field equalities), or None: what
        ``find_one({**conditions, key: value}, projection)`` answers, sent with the lookups
        of the same shape made meanwhile."""
        shape: Shape = (
            key,
            tuple(sorted((conditions or {}).items())),
            None if projection is None else tuple(sorted(projection.items())),
        )
        waiting = _Waiting(value, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(shape, []).append(waiting)
        if shape not in self._opening and self._in_flight < self.max_in_flight:
            self._open(shape)
        return await waiting.found

    def _open(self, shape: Shape) -> None:
        """Start the command that sends the lookups of ``shape`` waiting; it takes them once
        it runs, so that every lookup of that shape made in this turn of the loop goes with
        it."""
        self._in_flight += 1
        self._opening.add(shape)
        task = asyncio.create_task(self._send(shape), context=self._waiting[shape][0].context)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        """After a command: send the lookups that arrived meanwhile (as many shapes as may be
        in flight), unless the loop is shutting down (the task cancelled before it took its
        batch), when none will be."""
        self._in_flight -= 1
        if task.cancelled():
            for batch in self._waiting.values():
                for waiting in batch:
                    waiting.found.cancel()
            self._waiting.clear()
            self._opening.clear()
            return
        for shape in list(self._waiting):
            if self._in_flight >= self.max_in_flight:
                return
            if shape not in self._opening:
                self._open(shape)

    async def _send(self, shape: Shape) -> None:
        self._opening.discard(shape)
        waiting = self._waiting[shape]
        batch = waiting[: self.max_batch]
        del waiting[: self.max_batch]
        if not waiting:
            del self._waiting[shape]
        try:
            found = await self._find(shape, [lookup.value for lookup in batch])
        except asyncio.CancelledError:
            for lookup in batch:
                lookup.found.cancel()
            raise
        except Exception as error:  # the whole command failed: each lookup's outcome
            for lookup in batch:
                if not lookup.found.done():
                    lookup.found.set_exception(error)
            return
        handed: set[Any] = set()
        for lookup in batch:
            if lookup.found.done():  # its caller was cancelled
                continue
            document = found.get(lookup.value)
            if document is not None and lookup.value in handed:
                document = copy.deepcopy(document)
            handed.add(lookup.value)
            lookup.found.set_result(document)

    async def _find(self, shape: Shape, values: list[Any]) -> dict[Any, Document]:
        """The documents of these values, by value: ``find_one`` for one, else one ``find``."""
        key, conditions, projection = shape
        fields = None if projection is None else dict(projection)
        distinct = list(dict.fromkeys(values))
        if len(distinct) == 1:
            document = await self.collection.find_one(
                {**dict(conditions), key: distinct[0]}, fields
            )
            return {} if document is None else {distinct[0]: document}
        cursor = self.collection.find({**dict(conditions), key: {"$in": distinct}}, fields)
        return {value_at(document, key): document async for document in cursor}
