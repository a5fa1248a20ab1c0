"""The processes under test: the database, this server and the peer, and their memory.

Each is a child process of the orchestrator on a free loopback port, stopped by
its own pid. Peak memory is the kernel's high-water mark (``VmHWM``) of the
process and of its children, read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pymongo import MongoClient

from scim_server.embedded import EmbeddedMongo, free_port

ROOT = Path(__file__).resolve().parent.parent


def peak_memory_kb(pid: int) -> int:
    """Sum of the peak resident set sizes of a process and its descendants, in KiB."""
    total = 0
    try:
        processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for process in processes:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total


def cpu_seconds(pid: int) -> float:
    """The CPU time a process and its live descendants (a server's workers) have used; 0 once
    it is gone."""
    total = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for process in (root, *root.children(recursive=True)):
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
    return total


class ForeignCpu:
    """CPU used by processes outside this benchmark's process tree while a scenario ran.

    The machine may be shared: anything else running competes for the same cores, so
    each scenario records how much of a core other processes took meanwhile (the
    machine's busy CPU time less that of this process, its live and reaped children).
    """

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.busy, self.own, self.live = self._snapshot()
        self.steal = getattr(psutil.cpu_times(), "steal", 0.0)

    def stolen(self) -> float:
        """Cores the hypervisor gave to other guests meanwhile (``steal``; 0 on bare metal)."""
        wall = time.monotonic() - self.began
        steal = getattr(psutil.cpu_times(), "steal", 0.0) - self.steal
        return max(0.0, steal) / wall if wall > 0 else 0.0

    @staticmethod
    def _snapshot() -> tuple[float, float, dict[int, float]]:
        cpu = psutil.cpu_times()
        busy = (
            cpu.user
            + cpu.nice
            + cpu.system
            + getattr(cpu, "irq", 0.0)
            + getattr(cpu, "softirq", 0.0)
        )
        mine = os.times()
        own = mine.user + mine.system + mine.children_user + mine.children_system
        live: dict[int, float] = {}
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                live[child.pid] = times.user + times.system
        return busy, own, live

    def cores(self) -> float:
        """Cores other processes used on average since this was made (0 when idle)."""
        busy, own, live = self._snapshot()
        wall = time.monotonic() - self.began
        ours = own - self.own + sum(t - self.live.get(pid, 0.0) for pid, t in live.items())
        return max(0.0, busy - self.busy - ours) / wall if wall > 0 else 0.0


def settle(pids: list[int], timeout: float = 30.0, threshold: float = 15.0) -> float:
    """Wait until these processes (and their children) are about idle; the seconds waited.

    A cancelled request keeps a server busy after its client gave up, so each
    scenario starts only when the previous one's work has drained.
    """
    processes: list[psutil.Process] = []
    for pid in pids:
        try:
            root = psutil.Process(pid)
            processes += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.cpu_percent(None)
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        time.sleep(0.3)
        busy = 0.0
        for process in processes:
            with contextlib.suppress(psutil.Error):
                busy += process.cpu_percent(None)
        if busy < threshold:
            break
    return time.monotonic() - began


def http(
    method: str, url: str, token: str | None = None, body: Any = None, timeout: float = 120.0
) -> tuple[int, Any]:
    """One synchronous request for set-up and checks: (status, parsed JSON body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/scim+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw[:300].decode(errors="replace")


def create_group(base_url: str, token: str, name: str) -> str:
    """Create an empty group over SCIM and return its id."""
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}
    status, created = http("POST", f"{base_url}/Groups", token, body)
    if status != 201:
        raise RuntimeError(f"creating the group {name}: {status} {created}")
    return str(created["id"])


def _wait_for(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # answering at all means listening
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Database:
    """SecantusDB, started the way ``scim-server serve`` starts it."""

    directory: Path
    embedded: EmbeddedMongo | None = None

    def start(self) -> str:
        self.embedded = EmbeddedMongo(self.directory)
        return self.embedded.start(timeout=60)

    @property
    def uri(self) -> str:
        assert self.embedded is not None
        return self.embedded.uri

    @property
    def pid(self) -> int:
        """The SecantusDB child: the one of our children listening on its port."""
        assert self.embedded is not None
        port = self.embedded.port
        for child in psutil.Process().children(recursive=True):
            try:
                if any(
                    c.laddr.port == port and c.status == psutil.CONN_LISTEN
                    for c in child.net_connections("tcp")
                ):
                    return child.pid
            except psutil.Error:
                continue
        raise RuntimeError("the SecantusDB process was not found")

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


@dataclass
class Server:
    """``python -m scim_server serve`` on the database, with one admin token."""

    uri: str
    database: str
    log: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    group_patch_response: str | None = None
    """``--group-patch-response``: ``no-content`` (the default: a Group PATCH answers 204) or
    ``resource`` (200 with the whole group)."""
    rate_limit: int = 0
    """``--rate-limit``: off by default, the benchmarks load one tenant far past any limit."""
    options: tuple[str, ...] = ()
    """More ``serve`` flags."""
    process: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "scim_server",
            "serve",
            "--port",
            str(self.port),
            "--mongodb-uri",
            self.uri,
            "--database",
            self.database,
            # One argument: a generated token may start with "-", which argparse would
            # take for an option.
            f"--admin-token={self.admin_token}",
            "--log-level",
            "WARNING",
            "--rate-limit",
            str(self.rate_limit),
        ]
        if self.workers > 1:
            command += ["--workers", str(self.workers)]
        if self.group_patch_response:
            command += ["--group-patch-response", self.group_patch_response]
        command += self.options
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_for(f"{self.root}/healthz", self.process, 60)

    def create_tenant(self, name: str) -> tuple[str, str]:
        """Create a tenant: (its SCIM base URL on this server, its bearer token)."""
        status, body = http("POST", f"{self.root}/admin/tenants", self.admin_token, {"name": name})
        if status != 201:
            raise RuntimeError(f"creating tenant {name}: {status} {body}")
        return f"{self.root}/scim/v2/{name}", str(body["token"])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        _stop(self.process)


@contextlib.contextmanager
def server_on_new_store(prefix: str, database: str) -> Iterator[tuple[Database, Server]]:
    """A SecantusDB in a new temporary directory and one server (default settings) on it,
    both stopped, and the directory removed, on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        db = Database(Path(tmp) / "db")
        db.start()
        server = Server(db.uri, database, Path(tmp) / "server.log")
        try:
            server.start()
            yield db, server
        finally:
            server.stop()
            db.stop()


@contextlib.contextmanager
def server_on_store(
    work: Path, uri: str | None, database: str, rate_limit: int = 0
) -> Iterator[tuple[str, Server, list[int]]]:
    """A server (``rate_limit``, else default settings) on the store at ``uri``, its
    ``database`` dropped first, or on a new SecantusDB in ``work``: the store's URI, the
    server, and the pids of the server and of the store it started. Both stopped on exit."""
    db = Database(work / "db")
    if uri is None:
        uri = db.start()
    else:
        client: MongoClient[dict[str, Any]] = MongoClient(uri)
        with client:
            client.drop_database(database)
    server = Server(uri, database, work / "server.log", rate_limit=rate_limit)
    try:
        server.start()
        yield uri, server, [server.pid, *([db.pid] if db.embedded is not None else [])]
    finally:
        server.stop()
        db.stop()


@dataclass
class Peer:
    """scim2-server's in-memory server (bench/peer.py), seeded at start."""

    manifest: Path
    log: Path
    users: int
    groups: dict[str, int]
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    process: subprocess.Popen[bytes] | None = None
    seeded: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    def start(self, timeout: float = 600.0) -> None:
        command = [
            sys.executable,
            "-m",
            "bench.peer",
            "--port",
            str(self.port),
            f"--token={self.token}",  # one argument, as the server's admin token
            "--manifest",
            str(self.manifest),
            "--users",
            str(self.users),
        ]
        for name, size in self.groups.items():
            command += ["--group", f"{name}={size}"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        _wait_for(f"{self.base_url}/ServiceProviderConfig", self.process, timeout)
        self.seeded = json.loads(self.manifest.read_text())

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        _stop(self.process)


REQUEST_COMMANDS = "scim_request_database_commands"
"""The server's count of the database commands each request started, by operation: the
mechanism tests/test_command_counts.py pins the counts with."""


def samples(server: Server, family: str) -> list[Sample]:
    """The samples of one metric family on the server's ``/metrics``."""
    request = urllib.request.Request(
        f"{server.root}/metrics", headers={"Authorization": f"Bearer {server.admin_token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        exposition = response.read().decode()
    return [
        sample
        for metric in text_string_to_metric_families(exposition)
        if metric.name == family
        for sample in metric.samples
    ]


def request_commands(server: Server) -> dict[str, tuple[float, float]]:
    """Each operation's database commands so far and the requests that started them, as the
    server's ``/metrics`` counts them (operations with no request yet are absent)."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for sample in samples(server, REQUEST_COMMANDS):
        operation = sample.labels.get("operation", "")
        if sample.name.endswith("_sum"):
            sums[operation] = sample.value
        elif sample.name.endswith("_count"):
            counts[operation] = sample.value
    return {operation: (sums[operation], counts.get(operation, 0.0)) for operation in sums}
