"""The embedded store is supervised: killed, it is restarted; frozen, it is waited for.

Every test runs the real ``scim-server serve`` as a subprocess on its own embedded
SecantusDB (a temporary data directory), and kills or freezes that real store child.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp.test_utils import TestClient

from scim_server.embedded import MODULE, free_port
from scim_server.web.state import SERVICES
from tests.support.scim import ADMIN, ADMIN_TOKEN, Scim
from tests.support.served import (
    WAIT_SECONDS,
    Server,
    announced,
    finished,
    serving,
    start_server,
    stopped,
)
from tests.support.urns import ERROR, GROUP, PATCH_OP

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(MODULE) is None, reason="needs SecantusDB for the embedded store"
)

# The parent process owns the store whatever the number of workers: both ways are supervised.
ONE_PROCESS_AND_TWO_WORKERS = pytest.mark.parametrize(
    "server", [1, 2], ids=["one-process", "two-workers"], indirect=True
)


def assert_unavailable(status: int, headers: dict[str, str], body: Any) -> None:
    """503 as RFC 7644 §3.12 says, with a Retry-After."""
    assert status == 503, body
    assert int(headers["Retry-After"]) > 0
    assert headers["Content-Type"].startswith("application/scim+json")
    assert body["schemas"] == [ERROR] and body["status"] == "503"


@pytest.fixture
async def server(request: Any, tmp_path: Path) -> AsyncIterator[Server]:
    """A server on its own embedded store, with tenant ``acme``; ``request.param`` workers."""
    async with serving(tmp_path / "data", getattr(request, "param", 1)) as server:
        yield server


@ONE_PROCESS_AND_TWO_WORKERS
async def test_a_killed_store_is_restarted_and_every_acknowledged_write_is_still_there(
    server: Server,
) -> None:
    created = await asyncio.gather(*[server.create_user(f"before{i}") for i in range(20)])
    assert [status for status, _ in created] == [201] * 20
    killed = server.store()

    killed.send_signal(signal.SIGKILL)
    during = asyncio.ensure_future(server.request("GET", "/scim/v2/acme/Users?count=1"))
    outage = await server.wait_ready()

    # Liveness held throughout; readiness said no, as a SCIM error with Retry-After.
    assert all(health == 200 for health, _, _, _ in outage)
    refused = [(status, headers, body) for _, status, headers, body in outage if status != 200]
    assert refused, "the store never looked down"
    for status, headers, body in refused:
        assert_unavailable(status, headers, body)
    # A request made while the store was down waited for it or was told to retry; never a 500.
    status, headers, body = await during
    if status != 200:
        assert_unavailable(status, headers, body)

    # Serving again, in the same server process, on a new store over the same data.
    assert server.process.poll() is None
    restarted = server.store()
    assert restarted.pid != killed.pid
    assert not psutil.pid_exists(killed.pid), "the killed store was left a zombie"
    for _, user in created:
        status, _, body = await server.request("GET", f"/scim/v2/acme/Users/{user['id']}")
        assert status == 200 and body["userName"] == user["userName"]
    status, _ = await server.create_user("after")
    assert status == 201


async def test_members_added_before_the_store_is_killed_are_still_the_users_groups(
    server: Server,
) -> None:
    """A member's hint is written without a journal flush of its own; the membership's
    journaled insert that follows flushes it too (storage/memberships.py). Killed after the
    adds were acknowledged, the store comes back with every hint raised: each user still
    reads the group (a hint of 0 would skip the membership lookup and hide it)."""
    created = await asyncio.gather(*[server.create_user(f"member{i}") for i in range(10)])
    users = [user["id"] for _, user in created]
    group = {"schemas": [GROUP], "displayName": "eng"}
    status, _, body = await server.request("POST", "/scim/v2/acme/Groups", group)
    assert status == 201, body
    path = f"/scim/v2/acme/Groups/{body['id']}"
    added = await asyncio.gather(
        *[
            server.request(
                "PATCH",
                path,
                {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}],
                },
            )
            for user in users
        ]
    )
    assert [status for status, _, _ in added] == [204] * len(users)

    server.store().send_signal(signal.SIGKILL)
    await server.wait_ready()

    for user in users:
        status, _, read = await server.request("GET", f"/scim/v2/acme/Users/{user}")
        assert status == 200 and [g["value"] for g in read.get("groups", [])] == [body["id"]]


async def test_a_store_killed_again_is_restarted_again(server: Server) -> None:
    # Two rounds: a kill that lands while a restart is still checking its store counts as a
    # second restart in a row, and STORE_RESTARTS in a row are the most there are.
    for round_ in range(2):
        server.store().send_signal(signal.SIGKILL)
        await server.wait_ready()
        status, _ = await server.create_user(f"round{round_}")
        assert status == 201
    status, _, body = await server.request("GET", "/scim/v2/acme/Users")
    assert body["totalResults"] == 2


async def test_a_frozen_store_answers_503_with_retry_after_then_recovers(server: Server) -> None:
    status, user = await server.create_user("frozen")
    assert status == 201
    store = server.store()
    store.send_signal(signal.SIGSTOP)
    try:
        # A signal is delivered when the kernel next runs the process: until it shows as
        # stopped, a request may still be answered.
        deadline = time.monotonic() + WAIT_SECONDS
        while store.status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert store.status() == psutil.STATUS_STOPPED
        # Requests while it is frozen are told to come back, not left hanging or failed with 500.
        refused = await asyncio.gather(
            *[server.request("GET", f"/scim/v2/acme/Users/{user['id']}") for _ in range(4)],
            server.request("GET", "/readyz"),
        )
        for status, headers, body in refused:
            assert_unavailable(status, headers, body)
        status, _, _ = await server.request("GET", "/healthz")
        assert status == 200
    finally:
        store.send_signal(signal.SIGCONT)
    await server.wait_ready()
    status, _, body = await server.request("GET", f"/scim/v2/acme/Users/{user['id']}")
    assert status == 200 and body["userName"] == "frozen"
    assert server.store().pid == store.pid  # frozen is not dead: it was not restarted


DEAD_STORE_SHUTDOWN_SLACK = 4.5
"""What a dead store may add to a shutdown: the journal's last flush (1 s) and the client's close
(0.5 s) are capped, with room for a busy machine (2.3 to 3 s were seen under a load of 10 on two
cores, against a live store's prompt stop). An uncapped wait is a server-selection timeout of
5 s, so a shutdown that waits for the dead store even once is caught."""


@ONE_PROCESS_AND_TWO_WORKERS
async def test_sigterm_with_the_store_killed_stops_promptly(server: Server, tmp_path: Path) -> None:
    # The same shutdown with the store alive, on this machine now: the time a dead store adds is
    # measured against it, so a busy machine slows both alike.
    healthy, _ = start_server(tmp_path / "healthy", server.workers)
    healthy.send_signal(signal.SIGTERM)
    returncode, baseline = await stopped(healthy, timeout=30)
    assert returncode == 0
    # Journal entries still queued when the store dies: shutdown tries to write them.
    created = await asyncio.gather(*[server.create_user(f"queued{i}") for i in range(5)])
    assert [status for status, _ in created] == [201] * 5
    server.store().send_signal(signal.SIGKILL)
    server.process.send_signal(signal.SIGTERM)
    returncode, seconds = await stopped(server.process, timeout=30)
    print(f"SIGTERM: {seconds:.2f}s with the store killed, {baseline:.2f}s with it alive")
    assert returncode == 0
    assert seconds - baseline < DEAD_STORE_SHUTDOWN_SLACK


@ONE_PROCESS_AND_TWO_WORKERS
async def test_a_store_that_cannot_be_restarted_stops_the_server_non_zero(
    server: Server,
) -> None:
    status, _ = await server.create_user("last")
    assert status == 201
    store = server.store()
    shutil.rmtree(server.data_dir)
    server.data_dir.write_text("not a directory")  # no restart can open it any more
    store.send_signal(signal.SIGKILL)
    returncode, _ = await stopped(server.process, timeout=WAIT_SECONDS)
    assert returncode != 0
    assert not psutil.pid_exists(store.pid)
    assert _stores_on(server.data_dir) == []


def _stores_on(data_dir: Path) -> list[psutil.Process]:
    """SecantusDB processes running on ``data_dir``."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if str(data_dir) in process.cmdline() and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
    return found


async def test_a_server_killed_outright_takes_its_store_along_and_its_data_serves_again(
    server: Server,
) -> None:
    status, user = await server.create_user("survivor")
    assert status == 201
    store = server.store()
    server.process.kill()  # as the OOM killer would: no clean-up of any kind
    finished(server.process, WAIT_SECONDS)
    # The orphaned store stops by itself, so it does not hold the data directory.
    await asyncio.to_thread(store.wait, WAIT_SECONDS)
    process, url = start_server(server.data_dir)
    try:
        server.process, server.url = process, url
        status, _, body = await server.request("GET", f"/scim/v2/acme/Users/{user['id']}")
        assert status == 200 and body["userName"] == "survivor"
    finally:
        process.terminate()
        assert finished(process, 30) == 0


@pytest.mark.parametrize("workers", [1, 3], ids=["one-process", "three-workers"])
async def test_sigterm_right_after_the_announcement_stops_the_server_and_its_store(
    tmp_path: Path, workers: int
) -> None:
    # With workers, the others are starting right after the first announced: a signal that
    # lands while one is being spawned must stop it too.
    process, _ = start_server(tmp_path / "data", workers)
    children = psutil.Process(process.pid).children()
    process.send_signal(signal.SIGTERM)
    assert finished(process, 30) == 0
    # The store and the workers are stopped before the server exits. multiprocessing's resource
    # tracker (a child whenever workers are spawned) exits by itself once the server's end of its
    # pipe closes, which is a moment *after* the server exits: so each child is given a while.
    still_running = await asyncio.to_thread(_still_running, children, WAIT_SECONDS)
    assert still_running == []


def _still_running(processes: list[psutil.Process], timeout: float) -> list[str]:
    """The command lines of ``processes`` still running (zombies excepted) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        running = []
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    running.append(" ".join(process.cmdline()))
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.05)


async def test_healthz_and_readyz_answer_without_a_token_and_are_not_journaled(
    client: TestClient, scim: Scim
) -> None:
    for path, status in (("/healthz", "ok"), ("/readyz", "ready")):
        response = await client.get(path)
        assert response.status == 200, await response.text()
        assert await response.json() == {"status": status}
    await client.app[SERVICES].journal.flush()
    response = await client.get(f"/admin/tenants/{scim.tenant}/journal", headers=ADMIN)
    assert (await response.json())["entries"] == []


async def test_a_store_given_by_mongodb_uri_is_neither_started_nor_supervised(
    mongodb_uri: str, database_name: str, mongo_db: Any
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "scim_server", "serve", "--port", str(port)]
    command += ["--mongodb-uri", mongodb_uri, "--database", database_name]
    command += ["--admin-token", ADMIN_TOKEN, "--log-level", "WARNING"]
    with announced(command) as process:
        assert psutil.Process(process.pid).children() == []
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz") as response,
        ):
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert finished(process, 30) == 0


def test_a_store_that_cannot_start_fails_serve_with_status_1_and_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.write_text("not a directory")
    environment = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    command = [sys.executable, "-m", "scim_server", "serve", "--port", str(free_port())]
    command += ["--data-dir", str(data_dir)]
    failed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=60)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("scim-server: SecantusDB could not")
    assert "Traceback" not in failed.stderr
