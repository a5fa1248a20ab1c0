"""Group commit: the inserts, and the conditional updates, that concurrent requests make in one
collection, sent together.

A journaled write costs SecantusDB one flush of its journal per command, whatever the number of
documents the command carries, and concurrent commands do not share a flush: one
``insert_one`` (or ``update_one``) per request caps a process at the store's flushes per second
(about 500 on a small machine), while one ``insert_many`` of k documents costs the same single
flush (``python -m bench.write_path``). ``GroupInsert`` gathers the documents handed to it into
unordered ``insert_many`` commands, ``GroupUpdate`` the updates handed to it into unordered
``bulk_write`` commands of ``UpdateOne`` updates, with the collection's write concern (``j: true``):

* At most one command per collection (and kind of write) is in flight. An item handed over
  while none is goes out on the next turn of the event loop, with every other item handed over
  in that turn; items handed over while one is in flight go out together as soon as it
  answers. No timer: a lone write waits for nothing, and no item waits for more than the
  command in flight before its own (the store is busy with that command anyway).
* A command carries at most ``MAX_BATCH`` items; beyond them, items wait for the next.
* Each item gets its own outcome: an unordered command reports the writes it refused by their
  index, so a duplicate key fails only its own write, and the others land. An update's other
  outcome, whether its condition still matched, is not reported per update: see
  ``GroupUpdate``.
* An item handed over is written once, whether or not its caller still waits for it: a
  caller cancelled meanwhile (a client gone) leaves its item in its batch, and no batch is
  ever sent twice. Its fate was unknown to that caller, as an ``insert_one`` cancelled in
  flight leaves it.

On MongoDB, whose journal commits concurrent writes together already, the same batching only
saves round trips. Each command runs in the context of the request whose item opened its
batch, so it is counted among that request's database commands (``CommandCounter``).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pymongo import UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteConcernError, WriteError

from scim_server.storage.database import DUPLICATE_KEY, any_of, translate_driver_errors
from scim_server.storage.events import PENDING, event_id

Document = dict[str, Any]
Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

MAX_BATCH = 1000
"""The most items one command of a ``GroupInsert`` or ``GroupUpdate`` carries."""


@dataclass(frozen=True)
class _Failed:
    """An item's outcome that its caller gets raised: what failed its whole command, or what
    leaves it unknown whether its write is durable."""

    error: Exception


@dataclass
class _Waiting(Generic[Item, Outcome]):
    """An item handed over, and what its caller awaits."""

    item: Item
    outcome: asyncio.Future[Outcome]
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class _Batches(Generic[Item, Outcome]):
    """Items handed over by concurrent callers, sent in batches of whatever arrived together,
    one command in flight at a time; ``_command`` sends one batch and answers each item's
    outcome."""

    def __init__(self, max_batch: int) -> None:
        self.max_batch = max_batch
        self._waiting: list[_Waiting[Item, Outcome]] = []
        self._sending: asyncio.Task[None] | None = None

    async def _command(self, items: Sequence[Item]) -> Sequence[Outcome | _Failed]:
        raise NotImplementedError

    async def _handed(self, item: Item) -> Outcome:
        """``item``'s outcome, once the batch it goes with has been sent."""
        waiting = _Waiting[Item, Outcome](item, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if self._sending is None:
            self._send_next()
        return await waiting.outcome

    def _send_next(self) -> None:
        """Start the command that sends the items waiting, if any; it takes them once it runs,
        so that every item handed over in this turn of the loop goes with it."""
        if not self._waiting:
            self._sending = None
            return
        self._sending = asyncio.create_task(self._send(), context=self._waiting[0].context)
        self._sending.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        """After a command: send the items that arrived meanwhile, unless the loop is shutting
        down (the task cancelled before it took its batch), when none will be."""
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
        outcomes: Sequence[Outcome | _Failed]
        try:
            outcomes = await self._command([waiting.item for waiting in batch])
        except asyncio.CancelledError:
            for waiting in batch:
                waiting.outcome.cancel()
            raise
        except Exception as error:  # the whole command failed: each item's outcome
            outcomes = [_Failed(error)] * len(batch)
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.outcome.done():  # its caller was cancelled: the item is written
                continue
            if isinstance(outcome, _Failed):
                waiting.outcome.set_exception(outcome.error)
            else:
                waiting.outcome.set_result(outcome)


@translate_driver_errors
class GroupInsert(_Batches[Document, WriteError | None]):
    """Inserts into one collection, sent in batches of whatever arrived together."""

    def __init__(self, collection: AsyncCollection[Document], max_batch: int = MAX_BATCH) -> None:
        super().__init__(max_batch)
        self.collection = collection

    async def insert(self, document: Document) -> WriteError | None:
        """Store ``document`` with the next batch: None once it landed, else the store's
        refusal of it (a ``DuplicateKeyError`` for a unique index), for the caller to name.

        What failed its whole batch is raised, as the storage layer's exception (the store
        unreachable, or unable to make the batch durable).
        """
        return await self._handed(document)

    async def _command(self, items: Sequence[Document]) -> Sequence[WriteError | _Failed | None]:
        try:
            await self.collection.insert_many(list(items), ordered=False)
        except BulkWriteError as error:
            failed = _unsure(error)
            return [refusal or failed for refusal in _refusals(error, len(items))]
        return [None] * len(items)


@dataclass(frozen=True, eq=False)
class Update:
    """A conditional update of one resource document that pushes its change's pending events
    (storage/events.py): ``query`` names the document by ``_id`` and holds the condition."""

    tenant: str
    query: Document
    update: Document

    @property
    def key(self) -> str:
        """The write key of the last event the update pushes: found in the document's pending
        events, or in the outbox under the id derived from it, once the update landed."""
        return str(self.update["$push"][PENDING]["$each"][-1]["k"])

    @property
    def event_id(self) -> str:
        return event_id(self.tenant, str(self.query["_id"]), self.key)


@translate_driver_errors
class GroupUpdate(_Batches[Update, bool | WriteError]):
    """Conditional updates of documents of one collection, sent in batches of whatever arrived
    together, as one unordered ``bulk_write``; the writes of one process to one resource take
    turns before they get here (core/writes.py), so a batch holds different resources.

    ``bulk_write`` reports the updates it refused by index, but only how many matched, not
    which. When all that were not refused matched, or none did, that says it; otherwise which
    landed is read from what they wrote: each update pushes pending events under a write key
    drawn at random for it, which no other write carries. An update that landed has its events
    in its document's ``ev`` until the relay has inserted them into the outbox, under an id
    derived from the key, and only then pulls them: read in that order, the documents first and
    the outbox only for the updates not found there (and only when fewer were found than
    matched), a landed update is found in one or the other, and an update that did not land in
    neither. Nothing is written again, so no change is applied twice.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        outbox: AsyncCollection[Document],
        max_batch: int = MAX_BATCH,
    ) -> None:
        super().__init__(max_batch)
        self.collection = collection
        self.outbox = outbox

    async def update(self, update: Update) -> bool | WriteError:
        """Write ``update`` with the next batch: whether it landed (False: its condition no
        longer held), else the store's refusal of it (a ``DuplicateKeyError`` for a unique
        index), for the caller to name.

        What failed its whole batch is raised, as the storage layer's exception (the store
        unreachable, or unable to make the batch durable).
        """
        return await self._handed(update)

    async def _command(self, items: Sequence[Update]) -> Sequence[bool | WriteError | _Failed]:
        writes = [UpdateOne(item.query, item.update) for item in items]
        refusals: list[WriteError | None]
        try:
            result = await self.collection.bulk_write(writes, ordered=False)
        except BulkWriteError as error:
            refusals = _refusals(error, len(items))
            if (failed := _unsure(error)) is not None:
                return [refusal or failed for refusal in refusals]
            matched = int(error.details.get("nMatched", 0))
        else:
            refusals, matched = [None] * len(items), result.matched_count
        written = [n for n, refusal in enumerate(refusals) if refusal is None]
        landed = await self._landed([items[n] for n in written], matched)
        return [
            refusal if refusal is not None else items[n] in landed
            for n, refusal in enumerate(refusals)
        ]

    async def _landed(self, written: Sequence[Update], matched: int) -> set[Update]:
        """Which of the updates ``bulk_write`` did not refuse landed, ``matched`` of them."""
        if matched == len(written):
            return set(written)
        if matched == 0:
            return set()
        by_key = {update.key: update for update in written}
        landed: set[Update] = set()
        ids = {str(update.query["_id"]) for update in written}
        for wanted in any_of(ids):
            cursor = self.collection.find({"_id": wanted}, {f"{PENDING}.k": 1})
            async for document in cursor:
                for element in document.get(PENDING) or []:
                    if (update := by_key.get(element.get("k"))) is not None:
                        landed.add(update)
        if len(landed) < matched:  # the relay moved some already: they are in the outbox
            by_id = {update.event_id: update for update in written if update not in landed}
            for wanted in any_of(by_id):
                cursor = self.outbox.find({"_id": wanted}, {"_id": 1})
                landed.update([by_id[str(document["_id"])] async for document in cursor])
        return landed


def _refusals(error: BulkWriteError, count: int) -> list[WriteError | None]:
    """Each write's refusal in an unordered command that ``error`` answered, by index: its
    ``WriteError`` (a ``DuplicateKeyError`` for a unique index), or None."""
    refusals: list[WriteError | None] = [None] * count
    for refused in error.details.get("writeErrors", []):
        kind = DuplicateKeyError if refused.get("code") == DUPLICATE_KEY else WriteError
        refusals[refused["index"]] = kind(refused.get("errmsg", ""), refused.get("code"), refused)
    return refusals


def _unsure(error: BulkWriteError) -> _Failed | None:
    """What each write an unordered command did not refuse fails with when ``error`` says the
    store could not make the command durable (a write concern error), if it does."""
    concern = error.details.get("writeConcernErrors") or []
    if not concern:
        return None
    first = concern[0]
    return _Failed(WriteConcernError(first.get("errmsg", ""), first.get("code"), first))
