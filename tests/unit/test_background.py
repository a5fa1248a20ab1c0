"""Stopping a background task: its own end is quiet, its caller's cancellation is not lost."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from scim_server.core.background import stop_requested, stop_task


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


async def test_a_loop_whose_library_swallowed_the_cancellation_still_stops() -> None:
    """Python 3.11's wait_for (under PyMongo's server selection) can lose a cancellation: the
    task is asked to stop, yet no CancelledError ends its round. A background loop that goes
    on to its next round must still end, or the shutdown waiting for it never does."""
    rounds = 0

    async def swallowing_round() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # what the library did
            await asyncio.sleep(0.05)

    async def loop() -> None:
        nonlocal rounds
        while not stop_requested():
            rounds += 1
            await swallowing_round()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    async with asyncio.timeout(10):  # a bound on a hang, not a timing: it ends at once
        await stop_task(task)
    assert task.done() and rounds == 1


async def test_a_task_whose_library_swallowed_the_cancellation_mid_wait_stops_promptly() -> None:
    """The cancellation lost inside a long library wait (PyMongo selecting a server for 5 s):
    the task is asked again, so its stop does not wait for the library to give up."""

    async def swallowing_then_long_wait() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # what the library did
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)  # the library's own wait goes on

    task = asyncio.create_task(swallowing_then_long_wait())
    await asyncio.sleep(0.01)
    async with asyncio.timeout(10):  # a bound on a hang, not a timing: it ends in a moment
        await stop_task(task)
    assert task.cancelled()
