"""Group commit: the inserts that concurrent requests make into one collection, sent together.

A journaled write costs SecantusDB one flush of its journal per command, whatever the number of
documents the command carries, and concurrent commands do not share a flush: one
``insert_one`` per request caps a process at the store's flushes per second (about 500 on a
small machine), while one ``insert_many`` of k documents costs the same single flush
(``python -m bench.write_path``). ``GroupInsert`` gathers the documents handed to it into
unordered ``insert_many`` commands, with the collection's write concern (``j: true``):

* At most one command per collection is in flight. A document handed over while none is goes
  out on the next turn of the event loop, with every other document handed over in that turn;
  documents handed over while one is in flight go out together as soon as it answers. No
  timer: a lone insert waits for nothing, and no document waits for more than the command in
  flight before its own (the store is busy with that command anyway).
* A command carries at most ``MAX_BATCH`` documents; beyond them, documents wait for the next.
* Each document gets its own outcome: an unordered insert reports the documents it refused by
  their index, so a duplicate key fails only its own insert, and the others land.
* A document handed over is written once, whether or not its caller still waits for it: a
  caller cancelled meanwhile (a client gone) leaves its document in its batch, and no batch
  is ever sent twice. Its fate was unknown to that caller, as an ``insert_one`` cancelled in
  flight leaves it.

On MongoDB, whose journal commits concurrent writes together already, the same batching only
saves round trips. Each command runs in the context of the request whose document opened its
batch, so it is counted among that request's database commands (``CommandCounter``).
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteConcernError, WriteError

from scim_server.storage.database import DUPLICATE_KEY, translate_driver_errors

Document = dict[str, Any]

MAX_BATCH = 1000
"""The most documents one ``insert_many`` of a ``GroupInsert`` carries."""


@dataclass
class _Waiting:
    """A document handed to ``GroupInsert.insert``, and what its caller awaits."""

    document: Document
    outcome: asyncio.Future[WriteError | None]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


@translate_driver_errors
class GroupInsert:
    """Inserts into one collection, sent in batches of whatever arrived together."""

    def __init__(self, collection: AsyncCollection[Document], max_batch: int = MAX_BATCH) -> None:
        self.collection = collection
        self.max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._sending: asyncio.Task[None] | None = None

    async def insert(self, document: Document) -> WriteError | None:
        """Store ``document`` with the next batch: None once it landed, else the store's
        refusal of it (a ``DuplicateKeyError`` for a unique index), for the caller to name.

        What failed its whole batch is raised, as the storage layer's exception (the store
        unreachable, or unable to make the batch durable).
        """
        waiting = _Waiting(document, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if self._sending is None:
            self._send_next()
        return await waiting.outcome

    def _send_next(self) -> None:
        """Start the command that sends the documents waiting, if any; it takes them once it
        runs, so that every document handed over in this turn of the loop goes with it."""
        if not self._waiting:
            self._sending = None
            return
        self._sending = asyncio.create_task(self._send(), context=self._waiting[0].context)
        self._sending.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        """After a command: send the documents that arrived meanwhile, unless the loop is
        shutting down (the task cancelled before it took its batch), when none will be."""
        if task.cancelled():
            for waiting in self._waiting:
                waiting.outcome.cancel()
            self._waiting.clear()
            self._sending = None
            return
        self._send_next()

    async def _send(self) -> None:
        batch = self._waiting[: self.max_batch]
        del self._waiting[: self.max_batch]
        try:
            await self.collection.insert_many(
                [waiting.document for waiting in batch], ordered=False
            )
        except BulkWriteError as error:
            outcomes = _outcomes(error, len(batch))
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.outcome.cancel()
            raise
        except Exception as error:  # the whole command failed: each insert's outcome
            outcomes = [error] * len(batch)
        else:
            outcomes = [None] * len(batch)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.outcome.done():  # its caller was cancelled: the document is written
                continue
            if outcome is None or isinstance(outcome, WriteError):
                waiting.outcome.set_result(outcome)
            else:
                waiting.outcome.set_exception(outcome)


def _outcomes(error: BulkWriteError, count: int) -> list[Exception | None]:
    """Each document's outcome in an unordered ``insert_many`` that ``error`` answered."""
    details = error.details
    concern = details.get("writeConcernErrors") or []
    landed: Exception | None = None
    if concern:
        first = concern[0]
        landed = WriteConcernError(first.get("errmsg", ""), first.get("code"), first)
    outcomes: list[Exception | None] = [landed] * count
    for refused in details.get("writeErrors", []):
        kind = DuplicateKeyError if refused.get("code") == DUPLICATE_KEY else WriteError
        outcomes[refused["index"]] = kind(refused.get("errmsg", ""), refused.get("code"), refused)
    return outcomes
