"""The embedded default store: SecantusDB run as a child process.

SecantusDB speaks the MongoDB wire protocol, so the server talks to it exactly as
it would to ``mongod``. It is GPL-2.0-only, which is why it is only ever started
as a separate process and never imported.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from scim_server import metrics

log = logging.getLogger(__name__)

MODULE = "secantus"

FIRST_RESTART_DELAY = 0.5
"""Seconds before the first restart of a store that died; each next one waits twice as long."""
STABLE_SECONDS = 60.0
"""A store that stayed up this long before dying had recovered: its restarts count from zero."""
RESTART_TIMEOUT = 30.0
"""How long one restart may take to answer a ping before the attempt counts as failed."""
READY_POLL_SECONDS = 0.02
"""How often a starting store's port is tried."""
STOP_POLL_SECONDS = 0.05
"""How often a stopping store is looked at (and its port knocked on)."""
KNOCK_AFTER = 0.15
"""How long a stopping store is left to take its SIGTERM before its port is knocked on."""
SIGNAL_LOST_AFTER = 1.0
"""How long a store that still serves after SIGTERM is given before the signal is sent again."""

DIE_WITH_PARENT = """
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG, kept across exec
if os.getppid() != int(sys.argv[1]):
    sys.exit("the server stopped before its store started")
os.execv(sys.argv[2], sys.argv[2:])
"""
"""Runs the store on Linux: SIGKILL when the server dies, even by SIGKILL, so that an orphaned
store never holds the data directory against the next server. Not SIGTERM: the store's own
graceful stop was once seen to hang for a minute with nobody left to wait for it, and a kill
loses nothing, since every write the server acknowledged waited for the store's journal (the
supervision tests SIGKILL the store and find every acknowledged write)."""


class EmbeddedStoreError(RuntimeError):
    """The embedded database could not be started."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mongodb_uri(port: int) -> str:
    # directConnection: it advertises a one-node replica set named after its bind
    # address. retryWrites=false: its retryable-write cache slows every write down.
    return f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"


class EmbeddedMongo:
    """A SecantusDB server on a free loopback port, for one server run or one test session."""

    def __init__(
        self, storage_path: str | Path, *, port: int | None = None, test_commands: bool = False
    ) -> None:
        self.storage_path = str(storage_path)
        self.port = port or free_port()
        self.test_commands = test_commands
        """Serve mongod's test-only commands (``configureFailPoint``), as tests of races need."""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return mongodb_uri(self.port)

    def start(self, timeout: float = 30.0) -> str:
        if importlib.util.find_spec(MODULE) is None:
            raise EmbeddedStoreError(
                "the embedded store needs SecantusDB: pip install 'scim-toolkit[embedded]', "
                "or set MONGODB_URI to use an existing MongoDB"
            )
        try:
            if self.storage_path != ":memory:":
                os.makedirs(self.storage_path, exist_ok=True)
            process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL)
        except OSError as error:
            raise EmbeddedStoreError(f"SecantusDB could not be started: {error}") from error
        self._process = process
        self._wait_until_ready(process, timeout)
        log.info(
            "embedded SecantusDB listening on 127.0.0.1:%d (data: %s)", self.port, self.storage_path
        )
        return self.uri

    def _command(self) -> list[str]:
        secantus = [
            sys.executable,
            "-m",
            MODULE,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--storage-path",
            self.storage_path,
            "--log-level",
            "WARNING",
            *(["--enable-test-commands"] if self.test_commands else []),
        ]
        if not sys.platform.startswith("linux"):
            return secantus
        return [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), *secantus]

    def _wait_until_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        # The store binds its port only once its storage is open, so a refused connection
        # means "not yet": knock every READY_POLL_SECONDS (a driver's server selection would
        # spend its whole timeout on each refusal), then ping once it listens.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedStoreError(
                    f"SecantusDB exited with status {process.returncode} "
                    f"(is {self.storage_path} used by another server?)"
                )
            if self._listening() and self._answers_ping():
                return
            time.sleep(READY_POLL_SECONDS)
        self.stop()
        raise EmbeddedStoreError(f"SecantusDB did not answer within {timeout:.0f}s")

    def _listening(self) -> bool:
        """Whether something accepts connections on the store's port (and wake its accept)."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def _answers_ping(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(self.uri, serverSelectionTimeoutMS=300)
        try:
            client.admin.command("ping")
        except PyMongoError:
            return False
        finally:
            client.close()
        return True

    def wait(self) -> int | None:
        """Block until the running store exits, reap it, and answer its exit status.

        ``None`` when no store is running (never started, or stopped already).
        """
        process = self._process
        return None if process is None else process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the store gracefully (SIGTERM), and promptly.

        SecantusDB's stop closes its listening socket, then waits up to 2 seconds for its
        accept thread, which a close does not wake on Linux: a connection does, so once the
        signal has had ``KNOCK_AFTER`` to be taken, the port is knocked on until the store
        exits (knocking at once was seen to make the store miss the signal). A store that
        still answers a ping ``SIGNAL_LOST_AFTER`` the signal missed it, and gets it again (one
        that has begun to stop has closed its port, so it is never signalled twice). A store
        still running at ``timeout`` is killed.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        signalled = time.monotonic()
        deadline = signalled + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if time.monotonic() - signalled >= SIGNAL_LOST_AFTER and self._answers_ping():
                process.terminate()
                signalled = time.monotonic()
            elif time.monotonic() - signalled >= KNOCK_AFTER:
                self._listening()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_POLL_SECONDS)
        if process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def restart_delays(restarts: int) -> tuple[float, ...]:
    """The waits before each of ``restarts`` restarts in a row: 0.5, 1, 2, 4, 8 ... seconds."""
    return tuple(FIRST_RESTART_DELAY * 2**attempt for attempt in range(restarts))


class StoreSupervisor:
    """Keeps the embedded store running: a store that dies is reaped and started again.

    The restart uses the same port and data directory, so the URI every worker holds
    stays valid (their clients reconnect on their own) and every write acknowledged
    with ``j=True`` is still there. The ``restarts`` in a row wait :func:`restart_delays`
    (a bounded exponential back-off); once they are spent without the store staying up for
    ``stable_seconds``, the supervisor gives up and calls ``on_give_up`` (the server
    then exits non-zero, for its own process supervisor to restart it).
    """

    def __init__(
        self,
        store: EmbeddedMongo,
        on_give_up: Callable[[], None],
        *,
        restarts: int,
        stable_seconds: float = STABLE_SECONDS,
    ) -> None:
        self.store = store
        self.gave_up = False
        self._on_give_up = on_give_up
        self._delays = restart_delays(restarts)
        self._stable_seconds = stable_seconds
        self._restarts = 0  # in a row: since the store last stayed up for stable_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="store-supervisor", daemon=True)

    def start(self) -> None:
        """Watch the store, which must be running already."""
        self._thread.start()

    def stop_restarting(self) -> None:
        """Leave a store that dies from now on dead: the server is shutting down."""
        self._stopping.set()

    def stop(self) -> None:
        """Stop watching, then stop the store, also one a restart was bringing up meanwhile."""
        self.stop_restarting()
        self.store.stop()
        if self._thread.is_alive():
            self._thread.join()
        self.store.stop()

    def _watch(self) -> None:
        while True:
            up_since = time.monotonic()
            status = self.store.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - up_since >= self._stable_seconds:
                self._restarts = 0
            log.error("embedded SecantusDB exited with status %s", status)
            if not self._restart():
                if not self._stopping.is_set():
                    log.critical(
                        "embedded SecantusDB did not stay up after %d restarts; giving up",
                        self._restarts,
                    )
                    self.gave_up = True
                    self._on_give_up()
                return
            if self._stopping.is_set():
                self.store.stop()  # stop() may have come before this restart's process existed
                return

    def _restart(self) -> bool:
        """Start the store again after the next delays; ``False`` when none is left or stopping."""
        for delay in self._delays[self._restarts :]:
            self._restarts += 1
            if self._stopping.wait(delay):
                return False
            try:
                self.store.start(RESTART_TIMEOUT)
            except EmbeddedStoreError as error:
                metrics.STORE_RESTARTS.labels(outcome="failed").inc()
                log.error("restart %d of %d failed: %s", self._restarts, len(self._delays), error)
                continue
            metrics.STORE_RESTARTS.labels(outcome="restarted").inc()
            log.warning("embedded SecantusDB restarted (restart %d in a row)", self._restarts)
            return True
        return False
