"""``scim-server serve --workers N``: one port, N processes, graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from scim_server.embedded import free_port
from tests.support.served import announced

ADMIN = "workers-admin-token"


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            command = (status.parent / "cmdline").read_bytes()
            if b"resource_tracker" not in command:
                found.add(int(status.parent.name))
    return found


def _gone(pids: set[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


Begun = tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]


async def _begun_create(port: int, token: str, i: int) -> Begun:
    """A user creation a worker has begun, its body still to send.

    The headers go with ``Expect: 100-continue``; aiohttp answers ``100 Continue`` from the
    worker's handling of that request, so once it is read the request is in the worker.
    """
    body = json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"user{i}",
            "password": f"Secret-{i}!",
        }
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /scim/v2/acme/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer %s\r\nContent-Type: application/scim+json\r\n"
        b"Content-Length: %d\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        % (token.encode(), len(body))
    )
    await writer.drain()
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    return reader, writer, body


async def _send_body(request: Begun) -> None:
    """Send the rest of a begun request: all of it is then in the worker's socket buffer."""
    _, writer, body = request
    writer.write(body)
    await writer.drain()


async def _answer(request: Begun) -> bytes:
    """The status line a begun request is answered with (empty if it was cut off)."""
    reader, writer, _ = request
    try:
        return (await reader.readline()).strip()
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.fixture
def workers_server(mongodb_uri: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "scim_server",
        "serve",
        "--workers",
        "2",
        "--port",
        str(port),
        "--mongodb-uri",
        mongodb_uri,
        "--database",
        f"workers_{uuid.uuid4().hex[:8]}",
        "--admin-token",
        ADMIN,
        "--token-secret",
        "w" * 32,
        "--log-level",
        "WARNING",
    ]
    with announced(command) as process:
        yield process, f"http://127.0.0.1:{port}"


async def test_two_workers_serve_one_port_and_drain_in_flight_requests_on_sigterm(
    workers_server: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = workers_server
    deadline = time.monotonic() + 20
    while len(_children(process.pid)) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    workers = _children(process.pid)
    assert len(workers) >= 2

    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/admin/tenants",
            json={"name": "acme"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        ) as response:
            assert response.status == 201
            token = (await response.json())["token"]
        headers = {"Authorization": f"Bearer {token}"}

        async def create(i: int) -> int:
            body = {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": f"user{i}",
                "password": f"Secret-{i}!",
            }
            async with http.post(
                f"{url}/scim/v2/acme/Users", json=body, headers=headers
            ) as response:
                return response.status

        # Every worker accepts: the token and the data are shared through MongoDB only.
        statuses = await asyncio.gather(*[create(i) for i in range(8)])
        assert statuses == [201] * 8

        # In flight: each worker has begun the request (answered its 100 Continue) and holds
        # all of it when the signal comes. The bodies go before the signal: a worker that has
        # begun shutting down reads nothing more from a connection (aiohttp drops it), so a
        # body sent after the signal could be lost by design, not by this server.
        port = urlsplit(url).port
        assert port is not None
        in_flight = await asyncio.gather(*[_begun_create(port, token, 100 + i) for i in range(16)])
        await asyncio.gather(*[_send_body(request) for request in in_flight])
        os.kill(process.pid, signal.SIGTERM)
        finished = await asyncio.gather(*[_answer(request) for request in in_flight])

    # Begun before the signal, so each one is answered, none is cut off.
    assert finished == [b"HTTP/1.1 201 Created"] * 16
    assert process.wait(timeout=40) == 0
    assert _gone(workers)
