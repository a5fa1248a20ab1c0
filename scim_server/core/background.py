"""Stopping the server's own background tasks (the journal writer, the events relay)."""

from __future__ import annotations

import asyncio


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has ended.

    Its own ``CancelledError`` is the expected end and is not raised; a cancellation of the
    caller that arrives meanwhile (a shutdown with a deadline, say) is, rather than being
    taken for the task's and swallowed.
    """
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
