"""One read per key at a time: the callers that want the same key while it is read share it.

A burst of requests that all find a cached answer expired (an IdP's connections, each with the
same token, or the creations that all want a tenant's seat reading) would otherwise each send
the same read. ``SingleFlight`` runs the first caller's read in its own task and lets the
others await that task:

* the read is shielded, so a caller that goes away (a client disconnected) cancels only its
  own wait, never the read the others wait for;
* a key is under way only while its read runs: the next caller after it ends starts a new one;
* ``detach`` makes a read under way no longer the key's (a revocation, a limit set anew): the
  callers already waiting still get its answer, the next ones start a fresh read, and the read
  itself can tell, by ``is_current``, that it must not remember what it found;
* a read's failure is raised to every caller waiting for it and is marked as retrieved, so a
  read whose callers all left logs no "exception was never retrieved".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class SingleFlight(Generic[Key, Value]):
    """The reads under way, one per key."""

    def __init__(self) -> None:
        self._under_way: dict[Key, asyncio.Task[Value]] = {}

    async def read(self, key: Key, read: Callable[[], Awaitable[Value]]) -> Value:
        """The answer of the read of ``key`` under way, else of ``read()``, started now."""
        task = self._under_way.get(key)
        if task is None:
            task = self._under_way[key] = asyncio.ensure_future(read())
            task.add_done_callback(partial(self._ended, key))
        return await asyncio.shield(task)

    def is_current(self, key: Key) -> bool:
        """Whether the running task is the read of ``key`` that its callers wait for (not
        detached meanwhile)."""
        return self._under_way.get(key) is asyncio.current_task()

    def detach(self, key: Key) -> None:
        """Make the read of ``key`` under way, if any, no longer the key's."""
        self._under_way.pop(key, None)

    def detach_where(self, condition: Callable[[Key], bool]) -> None:
        """``detach`` every key under way that meets ``condition``."""
        for key in [key for key in self._under_way if condition(key)]:
            del self._under_way[key]

    def _ended(self, key: Key, task: asyncio.Task[Value]) -> None:
        if self._under_way.get(key) is task:
            del self._under_way[key]
        if not task.cancelled():
            task.exception()  # retrieved: each caller waiting raises it
