"""Stopping the server's own background tasks (the journal writer, the events relay, the
delivery engine)."""

from __future__ import annotations

import asyncio

RECANCEL_SECONDS = 0.25
"""How long a task asked to stop is given before it is asked again."""


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended.

    Its own ``CancelledError`` is the expected end and is not raised; a cancellation of the
    caller that arrives meanwhile (a shutdown with a deadline, say) is, rather than being
    taken for the task's and swallowed. A task still running ``RECANCEL_SECONDS`` later is
    cancelled again: a library it awaited may have swallowed the request (see
    ``stop_requested``), and would otherwise hold the stop for as long as its own wait.
    """
    task.cancel()
    while not (await asyncio.wait({task}, timeout=RECANCEL_SECONDS))[0]:
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


def stop_requested() -> bool:
    """Whether the running task has been asked to stop, though no ``CancelledError`` ended it.

    A library can swallow a cancellation: Python 3.11's ``asyncio.wait_for``, which PyMongo
    awaits while it waits for a server to select, loses one that meets a wake-up. The task's
    ``cancelling()`` count still records the request, so a loop that catches its rounds'
    failures asks this before each round, and ends instead of running on while its stop
    waits for it forever.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
