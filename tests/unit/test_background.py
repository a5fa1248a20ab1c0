"""Stopping a background task: its own end is quiet, its caller's cancellation is not lost."""

from __future__ import annotations

import asyncio

import pytest

from scim_server.core.background import stop_task


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_a_stopped_task_has_ended_and_its_cancellation_is_not_raised() -> None:
    task = asyncio.create_task(_forever())
    await asyncio.sleep(0)
    await stop_task(task)
    assert task.cancelled()


async def test_a_caller_cancelled_while_the_task_winds_down_is_cancelled_too() -> None:
    """A task that takes a while to end after its cancellation (say, a last flush): a shutdown
    deadline cancelling the caller meanwhile must reach the caller, not be taken for the task's
    own end and swallowed."""

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.shield(asyncio.sleep(0.2))

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    caller = asyncio.create_task(stop_task(task))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.gather(task, return_exceptions=True)
