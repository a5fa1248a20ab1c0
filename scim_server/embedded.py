"""The embedded default store: SecantusDB run as a child process.

SecantusDB speaks the MongoDB wire protocol, so the server talks to it exactly as
it would to ``mongod``. It is GPL-2.0-only, which is why it is only ever started
as a separate process and never imported.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

MODULE = "secantus"


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

    def __init__(self, storage_path: str | Path, *, port: int | None = None) -> None:
        self.storage_path = str(storage_path)
        self.port = port or free_port()
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
        if self.storage_path != ":memory:":
            os.makedirs(self.storage_path, exist_ok=True)
        command = [
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
        ]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        self._wait_until_ready(timeout)
        log.info(
            "embedded SecantusDB listening on 127.0.0.1:%d (data: %s)", self.port, self.storage_path
        )
        return self.uri

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedStoreError(
                    f"SecantusDB exited with status {self._process.returncode} "
                    f"(is {self.storage_path} used by another server?)"
                )
            client: MongoClient[dict[str, object]] = MongoClient(
                self.uri, serverSelectionTimeoutMS=300
            )
            try:
                client.admin.command("ping")
                return
            except PyMongoError:
                time.sleep(0.1)
            finally:
                client.close()
        self.stop()
        raise EmbeddedStoreError(f"SecantusDB did not answer within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
