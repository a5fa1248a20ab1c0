"""Large tenants, small to large: ``python -m bench.scale [--quick] [--huge]``.

What listing users costs as a tenant grows (issue 14: cost must not grow with the data): a
tenant of 1,000 users against one of 50,000 (``--huge`` adds 100,000; ``--quick``: 1,000
against 5,000). This starts ``python -m scim_server serve`` (one worker, default settings) on a
SecantusDB in a temporary directory (or on ``--mongodb-uri``), then, size by size, seeds one
tenant of that many users straight into the database (``bench/seed.py``: seeded once, read
by every row) and sends each row's request, one at a time over HTTP:

- ``GET /Users?count=100``: the first page, with ``totalResults``;
- ``count=0``: ``totalResults`` alone;
- ``sortBy=userName``, the first page and a page near the end (``startIndex``);
- ``filter=userName sw "…"`` (10 matches) and, for reference, ``userName eq``;
- the smallest tenant's deep cursor page (RFC 9865: its last page but one), read again after
  each larger tenant was loaded beside it: another tenant's users must not slow it.

Each figure is the median of its requests (p50), beside the CPU the server and the store
spent per request (which a shared machine's other work does not inflate as it does latency)
and the cores other processes took meanwhile. The ratios set each size against the smallest,
next to the target of at most 1.5. Writes bench/results/scale.json and scale.md and a line
marked ``"suite": "scale"`` in history.jsonl. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import psutil

from bench import history
from bench.report import CONTENDED
from bench.run import RESULTS
from bench.seed import seed_tenant
from bench.targets import ForeignCpu, server_on_store

DATABASE = "scim_bench_scale"
SUITE = "scale"
TARGET_RATIO = 1.5
PAGE = 100

ROWS: dict[str, str] = {
    "list": "`GET /Users?count=100`, first page with totalResults",
    "count_only": "`count=0`: totalResults alone",
    "sort_first": "`sortBy=userName`, first page",
    "sort_near_end": "`sortBy=userName`, a page near the end (`startIndex`)",
    "filter_sw": '`filter=userName sw "…"`, 10 matches',
    "filter_eq": "`filter=userName eq`, for reference",
    "small_cursor": "the smallest tenant's deep cursor page, once this tenant is loaded",
}
"""Each row: what it measures. ``small_cursor`` reads the smallest tenant, the others the
tenant of the size in question."""


@dataclass(frozen=True)
class Sizes:
    tenants: tuple[int, ...]
    requests: int
    """Requests per row: the figure is their median."""

    @classmethod
    def for_mode(cls, quick: bool, huge: bool) -> Sizes:
        if quick:
            return cls((1000, 5000), requests=3)
        return cls((1000, 50_000, 100_000) if huge else (1000, 50_000), requests=5)


def user_name(index: int) -> str:
    """The name ``bench/seed.py`` gives its ``index``-th user."""
    return f"seed{index:07d}"


def row_paths(size: int) -> dict[str, str]:
    """Each row's request on a tenant of ``size`` users (``small_cursor`` aside)."""
    prefix = user_name(10)[:-1]  # seed000001: seed0000010 to seed0000019
    near_end = max(1, size - PAGE - PAGE // 2 + 1)
    return {
        "list": f"/Users?count={PAGE}",
        "count_only": "/Users?count=0",
        "sort_first": f"/Users?sortBy=userName&count={PAGE}",
        "sort_near_end": f"/Users?sortBy=userName&count={PAGE}&startIndex={near_end}",
        "filter_sw": "/Users?filter=" + quote(f'userName sw "{prefix}"'),
        "filter_eq": "/Users?filter=" + quote(f'userName eq "{user_name(size // 2)}"'),
    }


class Client:
    """One tenant's SCIM API, one request at a time."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}

    async def get(self, path: str) -> tuple[float, int, dict[str, Any]]:
        """Seconds until the whole answer of one GET came, its status and its body."""
        began = time.perf_counter()
        async with self.session.get(self.base_url + path, headers=self.headers) as response:
            body = await response.json(content_type=None)
        return time.perf_counter() - began, response.status, body

    async def deep_cursor(self) -> str:
        """The path of the last page but one, reached by following ``nextCursor`` from the
        first page."""
        path = f"/Users?cursor=&count={PAGE}"
        ahead = f"/Users?cursor={{}}&count={PAGE}"
        pages = [path]
        while True:
            _, status, body = await self.get(pages[-1])
            if status != 200:
                raise RuntimeError(f"GET {pages[-1]}: {status} {body}")
            if "nextCursor" not in body:
                return pages[-2] if len(pages) > 1 else pages[-1]
            pages.append(ahead.format(body["nextCursor"]))


class ProcessCpu:
    """CPU seconds the server and the store spent (their processes and children)."""

    def __init__(self, pids: list[int]) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]

    def seconds(self) -> float:
        total = 0.0
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
        return total


async def timed(client: Client, path: str, requests: int, cpu: ProcessCpu) -> dict[str, Any]:
    """One row's figures: p50 latency, CPU per request, foreign cores, the answers that were
    not 200 (a store that holds its lock too long makes the server answer 503) and the shape of
    the last 200."""
    foreign = ForeignCpu()
    spent = cpu.seconds()
    latencies: list[float] = []
    failed: list[int] = []
    body: dict[str, Any] = {}
    for _ in range(requests):
        latency, status, answer = await client.get(path)
        latencies.append(latency)
        if status == 200:
            body = answer
        else:
            failed.append(status)
    return {
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "cpu_ms": round((cpu.seconds() - spent) * 1000 / requests, 2),
        "foreign_cores": round(foreign.cores(), 2),
        "failed": failed,
        "items": body.get("itemsPerPage"),
        "total": body.get("totalResults"),
    }


async def measure(
    tenants: dict[int, tuple[str, str]], sizes: Sizes, seed: Any, cpu: ProcessCpu
) -> dict[str, Any]:
    """Every row, size by size, each tenant seeded (by ``seed``) just before it is read."""
    figures: dict[str, Any] = {}
    smallest = sizes.tenants[0]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=900)) as session:
        small = Client(session, *tenants[smallest])
        for size in sizes.tenants:
            await asyncio.to_thread(seed, size)
            client = Client(session, *tenants[size])
            row = {
                key: await timed(client, path, sizes.requests, cpu)
                for key, path in row_paths(size).items()
            }
            row["small_cursor"] = await timed(small, await small.deep_cursor(), sizes.requests, cpu)
            figures[str(size)] = row
    return figures


def ratios(figures: dict[str, Any], sizes: Sizes) -> list[dict[str, Any]]:
    """Each row's p50 at every larger size over its p50 at the smallest."""
    low = str(sizes.tenants[0])
    rows = []
    for size in sizes.tenants[1:]:
        high = str(size)
        for key, label in ROWS.items():
            before, after = figures[low][key], figures[high][key]
            contended = [
                name
                for name, row in ((low, before), (high, after))
                if row["foreign_cores"] >= CONTENDED
            ]
            rows.append(
                {
                    "key": f"{key}_{size}",
                    "label": f"{label}, {_label(int(low))} → {_label(size)}",
                    "low": before["p50_ms"],
                    "high": after["p50_ms"],
                    "value": round(after["p50_ms"] / before["p50_ms"], 3),
                    "cpu_value": (
                        round(after["cpu_ms"] / before["cpu_ms"], 3) if before["cpu_ms"] else None
                    ),
                    "contended": contended,
                }
            )
    return rows


def _label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else f"{size:,}"


def markdown(results: dict[str, Any], out: Path) -> str:
    figures, config, machine = results["figures"], results["config"], results["machine"]
    flags = (" --quick" if config["quick"] else "") + (
        " --huge" if 100_000 in config["tenants"] else ""
    )
    ratio_rows = [
        f"| {row['label']} | {row['low']} | {row['high']} | {row['value']} | "
        f"{'-' if row['cpu_value'] is None else row['cpu_value']} | "
        f"{'met' if row['value'] <= TARGET_RATIO else 'missed'}"
        f"{' (contended)' if row['contended'] else ''} |"
        for row in results["ratios"]
    ]
    figure_rows = [
        f"| {label} | {size:,} | {row['p50_ms']} | {row['cpu_ms']} | {row['items']} "
        f"| {'-' if row['total'] is None else row['total']} "
        f"| {', '.join(map(str, row['failed'])) or '-'} | {row['foreign_cores']} |"
        for key, label in ROWS.items()
        for size in config["tenants"]
        for row in (figures[str(size)][key],)
    ]
    titles = {row["key"]: row["label"] for row in results["ratios"]}
    return "\n".join(
        [
            "# Large tenants: listing users from small to large",
            "",
            f"{results['date']}, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"commit {machine.get('commit', '?')}, `python -m bench.scale{flags}`. One worker, "
            f"default settings, {results['store']}; one request at a time; p50 of "
            f"{config['requests']} requests per row. `CPU ms` is what the server and the store "
            "spent per request; `foreign cores` the CPU other processes of the machine took "
            "meanwhile.",
            "",
            f"## Ratios (target: at most {TARGET_RATIO})",
            "",
            "| row | small ms | large ms | ratio | CPU ratio | verdict |",
            "|---|--:|--:|--:|--:|---|",
            *ratio_rows,
            "",
            "## Figures",
            "",
            "| row | users | p50 ms | CPU ms | items | totalResults | not 200 | foreign cores |",
            "|---|--:|--:|--:|--:|--:|---|--:|",
            *figure_rows,
            "",
            *history.table(out, SUITE, config["quick"], titles),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tenants of 1,000 and 5,000 users")
    parser.add_argument("--huge", action="store_true", help="a tenant of 100,000 users too")
    parser.add_argument(
        "--sizes", help="the tenants' sizes, comma-separated, smallest first (overrides the mode)"
    )
    parser.add_argument("--requests", type=int, help="requests per row (their median is kept)")
    parser.add_argument(
        "--mongodb-uri", help="a running store to use (its benchmark database is dropped first)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    mode = Sizes.for_mode(args.quick, args.huge)
    sizes = Sizes(
        tuple(int(size) for size in args.sizes.split(",")) if args.sizes else mode.tenants,
        args.requests or mode.requests,
    )
    with tempfile.TemporaryDirectory(prefix="scim-bench-scale-") as tmp:
        with server_on_store(Path(tmp), args.mongodb_uri, DATABASE) as (uri, server, pids):
            tenants = {size: server.create_tenant(f"u{size}") for size in sizes.tenants}

            def seed(size: int) -> None:
                seed_tenant(uri, DATABASE, f"u{size}", size, {})

            figures = asyncio.run(measure(tenants, sizes, seed, ProcessCpu(pids)))
        store = "the store at --mongodb-uri" if args.mongodb_uri else "SecantusDB"
    run = history.results(args.quick, sizes, store=store, figures=figures)
    run["ratios"] = ratios(figures, sizes)
    kept = {row["key"]: row["value"] for row in run["ratios"]}
    history.publish(args.out, "scale", SUITE, run, kept, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
