"""One tenant's largest PATCH against another tenant's reads: ``python -m bench.stall [--quick]``.

A PATCH is CPU work (validating and applying every operation); the server must not make
every other tenant wait for it. This starts ``python -m scim_server serve`` (one worker) on a
SecantusDB in a temporary directory, creates tenants ``a`` and ``b``, and measures GETs of one
user of tenant ``b``, one at a time:

1. alone, with nothing else running;
2. while tenant ``a`` sends the largest PATCH the server allows (``patch_max_operations``
   single-entry ``add`` operations on ``emails``), one PATCH
   after another, each to a fresh user. Only the GETs that started and ended while a PATCH was
   in flight are counted.

It prints p50/p99 of both and writes bench/results/stall.json and stall.md (target: p99 of the
GETs during the PATCH under 100 ms on two cores). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench import report
from bench.run import RESULTS
from bench.targets import ForeignCpu, http, server_on_new_store
from scim_server.config import Settings

DATABASE = "scim_bench_stall"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TARGET_P99_MS = 100.0
PHASES = {"alone": "alone", "during_patch": "during the largest PATCH of another tenant"}


@dataclass(frozen=True)
class Sizes:
    baseline_gets: int
    patches: int

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        return cls(baseline_gets=200, patches=3) if quick else cls(baseline_gets=1000, patches=10)


@dataclass(frozen=True)
class Tenant:
    base_url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/scim+json"}

    def create_user(self, user_name: str) -> str:
        status, body = http("POST", f"{self.base_url}/Users", self.token, {"userName": user_name})
        if status != 201:
            raise RuntimeError(f"creating {user_name}: {status} {body}")
        return str(body["id"])


def largest_patch(operations: int) -> bytes:
    """The largest PATCH allowed: one single-entry ``add`` on ``emails`` per operation."""
    return json.dumps(
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "add",
                    "path": "emails",
                    "value": [{"value": f"user{i}@example.com", "type": "work"}],
                }
                for i in range(operations)
            ],
        }
    ).encode()


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50 and p99 in milliseconds, and the number of requests they are taken over."""
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "p50_ms": round(cuts[49] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
    }


async def timed_get(session: aiohttp.ClientSession, url: str, tenant: Tenant) -> float:
    began = time.perf_counter()
    async with session.get(url, headers=tenant.headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status}")
    return time.perf_counter() - began


async def measure(
    a: Tenant, b: Tenant, reader: str, sizes: Sizes, operations: int
) -> dict[str, Any]:
    url = f"{b.base_url}/Users/{reader}"
    body = largest_patch(operations)
    async with aiohttp.ClientSession() as session:
        for _ in range(20):  # warm-up: connections, caches
            await timed_get(session, url, b)
        foreign = ForeignCpu()
        alone = [await timed_get(session, url, b) for _ in range(sizes.baseline_gets)]
        alone_foreign = foreign.cores()

        during: list[float] = []
        patch_seconds: list[float] = []
        foreign = ForeignCpu()
        for round_number in range(sizes.patches):
            target = a.create_user(f"patched{round_number}")
            began = time.perf_counter()
            patching = asyncio.ensure_future(
                session.patch(f"{a.base_url}/Users/{target}", data=body, headers=a.headers)
            )
            while not patching.done():
                latency = await timed_get(session, url, b)
                if not patching.done():
                    during.append(latency)
            async with await patching as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"PATCH: {response.status} {await response.text()}")
            patch_seconds.append(time.perf_counter() - began)
    return {
        "alone": percentiles(alone) | {"foreign_cores": round(alone_foreign, 2)},
        "during_patch": percentiles(during) | {"foreign_cores": round(foreign.cores(), 2)},
        "patch": {
            "operations": operations,
            "body_bytes": len(body),
            "count": len(patch_seconds),
            "median_s": round(statistics.median(patch_seconds), 3),
        },
    }


def markdown(results: dict[str, Any]) -> str:
    figures = results["figures"]
    patch = figures["patch"]
    verdict = "met" if figures["during_patch"]["p99_ms"] < TARGET_P99_MS else "missed"
    if any(figures[phase]["foreign_cores"] >= report.CONTENDED for phase in PHASES):
        verdict += (
            f" (contended: other processes took {report.CONTENDED} of a core or more, "
            "so the figures say more about the machine than about the server)"
        )
    rows = [
        f"| {name} | {row['requests']} | {row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} "
        f"| {row['foreign_cores']} |"
        for phase, name in PHASES.items()
        for row in (figures[phase],)
    ]
    machine = results["machine"]
    return "\n".join(
        [
            "# One tenant's largest PATCH against another tenant's reads",
            "",
            f"{results['date']}, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"commit {machine.get('commit', '?')}, "
            f"`python -m bench.stall{' --quick' if results['config']['quick'] else ''}`.",
            "",
            f"Tenant `a` sends PATCHes of {patch['operations']} single-entry `add` operations "
            f"on `emails` ({patch['body_bytes']:,} bytes, the most `patch_max_operations` "
            f"allows), one after another, {patch['count']} in all (median "
            f"{patch['median_s']} s each, answered 200); meanwhile tenant `b` GETs one user, one "
            "request at a time. Latencies in ms; `foreign cores` is the CPU other processes "
            "of the machine took meanwhile.",
            "",
            "| GET /Users/{id} of tenant b | requests | p50 | p99 | max | foreign cores |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Target: p99 during the PATCH under {TARGET_P99_MS:.0f} ms: **{verdict}**.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.stall", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests and PATCHes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    sizes = Sizes.for_mode(args.quick)
    operations = Settings().patch_max_operations
    with server_on_new_store("scim-bench-stall-", DATABASE) as (_, server):
        a, b = (Tenant(*server.create_tenant(name)) for name in ("a", "b"))
        reader = b.create_user("reader")
        figures = asyncio.run(measure(a, b, reader, sizes, operations))
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "config": {"quick": args.quick, **vars(sizes)},
        "figures": figures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stall.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "stall.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
