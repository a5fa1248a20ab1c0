"""wrk, the outside load generator: one request shape at a time, a closed loop of N connections.

wrk (Debian's ``wrk``, C and LuaJIT) is not Python and shares nothing with the servers it
loads, so its own cost hardly moves what it measures. ``bench/wrk/scim.lua`` sends one
:class:`Shape` per run, filling the path and body templates for each request, and prints a
JSON summary (``done``) that :func:`parse` reads. Status codes of 400 and above count as
errors, as wrk counts them; every other answer is a success.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "wrk" / "scim.lua"
MARKER = "WRK_JSON "
KEY = "__KEY__"
"""In a path or body template, replaced by one of the shape's keys."""
UNIQUE = "__N__"
"""In a path or body template, replaced by a text unique to the request within its run."""


class WrkMissing(RuntimeError):
    """wrk is not on the PATH."""


@dataclass(frozen=True)
class Shape:
    """One kind of request: method, path template under the base URL, optional JSON body.

    ``pick`` chooses the key of each request: ``random``, ``cycle`` (consecutive requests
    name distinct keys) or ``first`` (every request names the same one).
    """

    name: str
    method: str
    path: str
    keys: tuple[str, ...] = ("-",)
    body: Any = None
    pick: str = "random"


def installed() -> bool:
    return shutil.which("wrk") is not None


def executable() -> str:
    """The path of wrk, or :class:`WrkMissing` saying how to get it."""
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissing(
            "wrk is not installed: `make bench` installs it, or `apt-get install wrk` as root"
        )
    return found


@dataclass(frozen=True)
class Load:
    """How wrk loads: ``connections`` (one thread) for ``seconds``; ``run`` makes each
    request's ``__N__`` unique across runs; a request unanswered after ``timeout`` fails."""

    connections: int
    seconds: float
    run: str
    timeout: float = 30.0


def command(shape: Shape, base_url: str, token: str, work: Path, load: Load) -> list[str]:
    """The wrk command line for ``shape``; its keys and body are written into ``work``."""
    keys = work / f"wrk-{shape.name}-keys.txt"
    keys.write_text("\n".join(shape.keys) + "\n")
    body = "-"
    if shape.body is not None:
        body_file = work / f"wrk-{shape.name}-body.json"
        body_file.write_text(json.dumps(shape.body))
        body = str(body_file)
    return [
        executable(),
        "--threads",
        "1",
        "--connections",
        str(load.connections),
        "--duration",
        f"{max(1, round(load.seconds))}s",
        "--timeout",
        f"{max(1, round(load.timeout))}s",
        "--header",
        f"Authorization: Bearer {token}",
        "--header",
        "Content-Type: application/scim+json",
        "--script",
        str(SCRIPT),
        base_url,
        "--",
        shape.method,
        shape.path,
        body,
        str(keys),
        shape.pick,
        load.run,
    ]


def parse(stdout: str) -> dict[str, Any]:
    """What one run measured: successes per second, errors by kind, latency in ms."""
    line = next((line for line in stdout.splitlines() if line.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {stdout[-500:]!r}")
    summary = json.loads(line[len(MARKER) :])
    seconds = summary["duration_us"] / 1e6
    errors = {kind: int(count) for kind, count in summary["errors"].items()}
    ok = int(summary["requests"]) - errors["status"]
    latency = summary["latency_us"]
    return {
        "wall_s": seconds,
        "ok": ok,
        "errors": sum(errors.values()),
        "errors_by_kind": {kind: count for kind, count in errors.items() if count},
        "throughput": ok / seconds if seconds > 0 else 0.0,
        **{f"{name}_ms": latency[name] / 1000 for name in ("p50", "p90", "p99", "p999", "max")},
        "mean_ms": latency["mean"] / 1000,
    }


def measure(shape: Shape, base_url: str, token: str, work: Path, load: Load) -> dict[str, Any]:
    """Run wrk with ``shape`` against ``base_url`` and return :func:`parse` of its summary."""
    finished = subprocess.run(
        command(shape, base_url, token, work, load),
        capture_output=True,
        text=True,
        check=False,
        timeout=load.seconds + load.timeout + 60,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"wrk exited with {finished.returncode}: {finished.stderr[-500:]}")
    return parse(finished.stdout) | {"connections": load.connections}
