"""``scim-server events tail --tenant T`` follows a tenant's events live, one JSON object a
line: from the current end by default, from ``--from-sequence N`` when asked, against a real
``scim-server serve``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from scim_server.embedded import MODULE
from tests.support.scim import ADMIN_TOKEN
from tests.support.served import Server, serving

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(MODULE) is None, reason="needs SecantusDB for the embedded store"
)

CLI = str(Path(sys.executable).with_name("scim-server"))
LINE_SECONDS = 30.0
"""How long a line of the tail's output is waited for before the test fails (not a measure:
a bound, so that a line that never comes fails the test instead of hanging it)."""


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    async with serving(tmp_path / "data") as server:
        yield server


@contextlib.contextmanager
def tailing(server: Server, *options: str) -> Iterator[subprocess.Popen[str]]:
    """``events tail --tenant acme`` running against ``server``, stopped as Ctrl-C stops it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_")}
    with subprocess.Popen(
        [CLI, "events", "tail", "--tenant", "acme", "--url", server.url, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**environment, "SCIM_ADMIN_TOKEN": ADMIN_TOKEN},
    ) as process:
        try:
            yield process
        finally:
            process.send_signal(signal.SIGINT)  # as Ctrl-C
            assert process.wait(timeout=30) == 0


async def _read_line(stream: IO[str] | None) -> str:
    """The next line of a tail's output, given a while to come."""
    assert stream is not None
    return await asyncio.wait_for(asyncio.to_thread(stream.readline), LINE_SECONDS)


async def _started(process: subprocess.Popen[str]) -> str:
    """Once the tail says where it starts, on stderr: what it said."""
    return await _read_line(process.stderr)


async def _event(process: subprocess.Popen[str]) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await _read_line(process.stdout))
    return event


async def test_events_tail_prints_new_events_live_and_from_a_sequence_when_asked(
    server: Server,
) -> None:
    status, ada = await server.create_user("ada")
    assert status == 201
    with tailing(server) as live:
        # Started at the current end: ada's creation is not printed, bob's is, as it comes.
        assert await _started(live) == "events of acme from sequence 2:\n"
        status, bob = await server.create_user("bob")
        assert status == 201
        first = await _event(live)
        assert (first["sequence"], first["type"], first["resource"]["id"]) == (
            2,
            "user.created",
            bob["id"],
        )
        assert first["tenant"] == "acme" and first["values"]["userName"] == "bob"
    with tailing(server, "--from-sequence", "1") as replay:
        assert await _started(replay) == "events of acme from sequence 1:\n"
        assert [(await _event(replay))["resource"]["id"] for _ in range(2)] == [
            ada["id"],
            bob["id"],
        ]
