"""``SingleFlight``: callers wanting one key while it is read share that read."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import pytest

from scim_server.core.single_flight import SingleFlight


class Reads:
    """Reads that wait until released; each answers its key and the order it started in."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release = asyncio.Event()
        self.current: list[bool] = []

    def of(
        self, flight: SingleFlight[str, str], key: str, *, fail: bool = False
    ) -> Callable[[], Awaitable[str]]:
        async def read() -> str:
            self.started.append(key)
            number = len(self.started)
            await self.release.wait()
            self.current.append(flight.is_current(key))
            if fail:
                raise RuntimeError(f"{key} unreadable")
            return f"{key}:{number}"

        return read


async def test_callers_of_one_key_share_its_read_and_other_keys_read_apart() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    reads = Reads()
    waiting = [asyncio.create_task(flight.read(key, reads.of(flight, key))) for key in "aaab"]
    await asyncio.sleep(0)
    reads.release.set()
    assert await asyncio.gather(*waiting) == ["a:1", "a:1", "a:1", "b:2"]
    assert reads.started == ["a", "b"]
    assert reads.current == [True, True]


async def test_a_key_is_read_again_once_its_read_has_ended() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    reads = Reads()
    reads.release.set()
    assert await flight.read("a", reads.of(flight, "a")) == "a:1"
    assert await flight.read("a", reads.of(flight, "a")) == "a:2"


async def test_a_caller_that_goes_away_leaves_the_read_to_the_others() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    reads = Reads()
    leaving = asyncio.create_task(flight.read("a", reads.of(flight, "a")))
    staying = asyncio.create_task(flight.read("a", reads.of(flight, "a")))
    await asyncio.sleep(0)
    leaving.cancel()
    await asyncio.sleep(0)
    reads.release.set()
    assert await staying == "a:1"
    assert leaving.cancelled()


async def test_a_detached_read_answers_its_callers_but_not_the_next_ones() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    reads = Reads()
    first = asyncio.create_task(flight.read("a", reads.of(flight, "a")))
    await asyncio.sleep(0)
    flight.detach("a")
    second = asyncio.create_task(flight.read("a", reads.of(flight, "a")))
    await asyncio.sleep(0)
    reads.release.set()
    assert await asyncio.gather(first, second) == ["a:1", "a:2"]
    assert reads.started == ["a", "a"]
    assert sorted(reads.current) == [False, True]


async def test_detach_where_detaches_only_the_keys_it_names() -> None:
    flight: SingleFlight[tuple[str, str], str] = SingleFlight()
    started: list[tuple[str, str]] = []
    release = asyncio.Event()
    current: dict[tuple[str, str], bool] = {}

    def reading(key: tuple[str, str]) -> Callable[[], Awaitable[str]]:
        async def read() -> str:
            started.append(key)
            await release.wait()
            current[key] = flight.is_current(key)
            return "/".join(key)

        return read

    keys = [("acme", "1"), ("acme", "2"), ("globex", "1")]
    waiting = [asyncio.create_task(flight.read(key, reading(key))) for key in keys]
    await asyncio.sleep(0)
    flight.detach_where(lambda key: key[0] == "acme")
    release.set()
    assert await asyncio.gather(*waiting) == ["acme/1", "acme/2", "globex/1"]
    assert current == {("acme", "1"): False, ("acme", "2"): False, ("globex", "1"): True}


async def test_a_failed_read_fails_every_caller_waiting_for_it() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    reads = Reads()
    waiting = [asyncio.create_task(flight.read("a", reads.of(flight, "a", fail=True)))] * 2
    await asyncio.sleep(0)
    reads.release.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert [str(outcome) for outcome in outcomes] == ["a unreadable"] * 2


async def test_a_failed_read_all_its_callers_left_warns_of_nothing_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    reads = Reads()
    left = asyncio.create_task(flight.read("a", reads.of(flight, "a", fail=True)))
    await asyncio.sleep(0)
    left.cancel()
    reads.release.set()
    for _ in range(3):
        await asyncio.sleep(0)
    gc.collect()
    assert reads.started == ["a"]
    assert "never retrieved" not in caplog.text
