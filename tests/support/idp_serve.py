"""``idp-sim idp serve`` as a real subprocess, for the tests of what it prints and serves."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def idp_serve(apps: list[str], banner_lines: int) -> Iterator[list[str]]:
    """``idp-sim idp serve --port 0 --users 2`` with ``apps`` (its ``--app``, ``--oidc-app``
    and ``--wsfed-app`` options): the first ``banner_lines`` lines it prints, while it serves.
    Afterwards it is terminated and must exit 0."""
    with subprocess.Popen(  # its exit closes the pipe
        [sys.executable, "-m", "idp_sim.cli", "idp", "serve", "--port", "0", "--users", "2", *apps],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            yield [process.stdout.readline() for _ in range(banner_lines)]
        finally:
            process.terminate()
            assert process.wait(timeout=10) == 0
