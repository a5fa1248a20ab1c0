"""The three commands, their output piped into a reader that has gone (``| true``, ``| head``):
they end quietly with the status of a command SIGPIPE ended, never with a ``BrokenPipeError``
traceback. Real console scripts, each writing into a real pipe whose reading end is closed;
``scim-server``'s admin command asks the live test server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.scim import ADMIN_TOKEN
from toolkit_cli import CLOSED_PIPE_STATUS

OKTA_APP = "okta:https://sp.example/,https://sp.example/acs"


async def _into_closed_pipe(*command: str) -> tuple[int, str]:
    """Run a console script with its standard output a pipe nobody reads any more: its status
    and what it wrote to standard error."""
    reading, writing = os.pipe()
    os.close(reading)
    try:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name(command[0])),
            *command[1:],
            stdout=writing,
            stderr=asyncio.subprocess.PIPE,
        )
    finally:
        os.close(writing)
    _, errors = await asyncio.wait_for(process.communicate(), timeout=60)
    return int(process.returncode or 0), errors.decode()


@pytest.mark.parametrize(
    "command",
    [
        ["scim-conformance", "--list"],
        ["idp-sim", "idp", "metadata", "--app", OKTA_APP],
        ["scim-conformance", "--help"],
    ],
)
async def test_a_command_whose_reader_has_gone_ends_quietly(command: list[str]) -> None:
    status, errors = await _into_closed_pipe(*command)
    assert errors == ""
    # argparse's --help gives up on a closed pipe itself, and ends as it would have.
    assert status == (0 if "--help" in command else CLOSED_PIPE_STATUS)


async def test_an_admin_command_whose_reader_has_gone_ends_quietly(
    client: TestClient[Any, Any],
) -> None:
    url = str(client.make_url("")).rstrip("/")
    status, errors = await _into_closed_pipe(
        "scim-server", "tenants", "list", "--url", url, "--admin-token", ADMIN_TOKEN
    )
    assert (status, errors) == (CLOSED_PIPE_STATUS, "")


async def test_a_command_whose_reader_stays_answers_as_before() -> None:
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("scim-conformance")),
        "--list",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    listed, errors = await asyncio.wait_for(process.communicate(), timeout=60)
    assert (process.returncode, errors) == (0, b"")
    assert listed.decode().splitlines()[0].strip()
