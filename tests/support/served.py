"""A real ``scim-server serve`` subprocess on its own embedded store, and its store child; and
any server subprocess that announces itself on its standard output.

Such a process is read through a pipe: once it has exited, ``finished`` or ``stop`` closes the
pipe too, else the test process is left with an open file (a ``ResourceWarning``, at whatever
moment the garbage collector finds it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from scim_server.embedded import MODULE, free_port, restart_delays
from tests.support.scim import ADMIN_TOKEN
from tests.support.urns import USER

STORE_RESTARTS = 3
"""Restarts in a row the servers here give their store: enough for a store killed twice, and
the give-up test waits 3.5 s of back-off rather than the default 15.5 s."""

# Long enough for every restart the supervisor tries, on a busy machine.
WAIT_SECONDS = sum(restart_delays(STORE_RESTARTS)) + 45


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    data_dir: Path
    http: aiohttp.ClientSession
    workers: int
    token: str = ""

    def store(self) -> psutil.Process:
        """The SecantusDB child of the server process (the parent owns it, whatever the workers)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            for child in psutil.Process(self.process.pid).children():
                try:
                    # A store that died and is not reaped yet still "runs" for psutil.
                    alive = child.is_running() and child.status() != psutil.STATUS_ZOMBIE
                    if f"-m {MODULE} " in " ".join(child.cmdline()) and alive:
                        return child
                except psutil.NoSuchProcess:
                    continue
            time.sleep(0.1)
        raise AssertionError("no SecantusDB child")

    async def request(
        self, method: str, path: str, json: Any = None, token: str | None = None
    ) -> tuple[int, dict[str, str], Any]:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        async with self.http.request(method, self.url + path, json=json, headers=headers) as r:
            body = await r.json(content_type=None) if r.content_length != 0 else None
            return r.status, dict(r.headers), body

    async def create_user(self, name: str) -> tuple[int, Any]:
        status, _, body = await self.request(
            "POST", "/scim/v2/acme/Users", {"schemas": [USER], "userName": name}
        )
        return status, body

    async def wait_ready(self) -> list[tuple[int, int, dict[str, str], Any]]:
        """Poll ``/healthz`` and ``/readyz`` until ready: every (healthz, readyz, headers, body)."""
        seen = []
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            health, _, _ = await self.request("GET", "/healthz")
            status, headers, body = await self.request("GET", "/readyz")
            seen.append((health, status, headers, body))
            if status == 200:
                return seen
            await asyncio.sleep(0.1)
        raise AssertionError(f"not ready again within {WAIT_SECONDS}s: {seen[-1]}")


def start_server(
    data_dir: Path, workers: int = 1, options: Sequence[str] = ()
) -> tuple[subprocess.Popen[str], str]:
    """``scim-server serve`` on its own embedded store in ``data_dir``, once it has announced;
    ``options``: more flags of ``serve``."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
    command = [sys.executable, "-m", "scim_server", "serve", "--port", str(port)]
    command += ["--data-dir", str(data_dir), "--workers", str(workers)]
    command += ["--store-restarts", str(STORE_RESTARTS)]
    command += ["--admin-token", ADMIN_TOKEN, "--log-level", "WARNING", *options]
    return _announced(command, environment), f"http://127.0.0.1:{port}"


def _announced(
    command: Sequence[str], environment: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """``command`` started, once it has printed its ``listening on`` line (else stopped)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "listening on" in banner, banner
    except BaseException:
        stop(process)
        raise
    return process


@contextlib.contextmanager
def announced(
    command: Sequence[str], environment: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A server subprocess once it has announced itself; afterwards ``stop``ped (if it still
    runs) and its pipe closed, whatever the test did with it meanwhile."""
    process = _announced(command, environment)
    try:
        yield process
    finally:
        stop(process)


def finished(process: subprocess.Popen[str], timeout: float) -> int:
    """Wait for ``process`` to exit, close its pipe: its exit status."""
    returncode = process.wait(timeout)
    if process.stdout is not None:
        process.stdout.close()
    return returncode


async def stopped(process: subprocess.Popen[str], timeout: float) -> tuple[int, float]:
    """Wait for ``process`` to exit (its pipe closed): its exit status and how long it took."""
    started = time.monotonic()
    returncode = await asyncio.to_thread(finished, process, timeout)
    return returncode, time.monotonic() - started


def stop(process: subprocess.Popen[str]) -> None:
    """Kill a served server if it still runs, and whatever children it leaves; close its pipe.
    (Killed, not asked: a test may have left it, or its store, in any state.)"""
    if process.poll() is None:
        children = psutil.Process(process.pid).children(recursive=True)
        process.kill()
        process.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    if process.stdout is not None:
        process.stdout.close()


@contextlib.asynccontextmanager
async def serving(
    data_dir: Path, workers: int = 1, options: Sequence[str] = ()
) -> AsyncIterator[Server]:
    """A served server on ``data_dir`` with tenant ``acme`` (its token in ``token``); the
    server the ``Server`` names at the end (a test may start another) is stopped then."""
    process, url = start_server(data_dir, workers, options)
    server: Server | None = None
    try:
        async with aiohttp.ClientSession() as http:
            server = Server(process, url, data_dir, http, workers)
            await server.wait_ready()  # every worker is up once the tenant can be created
            status, _, body = await server.request(
                "POST", "/admin/tenants", {"name": "acme"}, token=ADMIN_TOKEN
            )
            assert status == 201, body
            server.token = body["token"]
            yield server
    finally:
        stop(process if server is None else server.process)
