"""Tenants under load: ``python -m bench.tenants [--quick]``.

Ten tenants each send 25 requests per second of mixed provisioning traffic at the same time
(IPSIE's floor): in turn a user created, a user read, a user PATCHed, a ``userName eq``
lookup and a member added to the tenant's group. The load is open-loop: each request leaves
at its own intended time, ``i / rate`` after its tenant's start, whether or not the earlier
ones were answered, and its latency runs from that intended time. A server that falls
behind therefore shows its queue in the latencies (no coordinated omission), and so does the
load generator if it cannot keep up: how late requests left is reported beside them.

It starts ``python -m scim_server serve`` (one worker, the default rate limit) on a
SecantusDB in a temporary directory, seeds each tenant's users through PyMongo, runs the
load (30 s, ``--quick`` 5 s), and prints and writes bench/results/tenants.json and .md, and
a line marked ``"suite": "tenants"`` in history.jsonl. Nothing is asserted: it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import history, report, workload
from bench.loadgen import percentile
from bench.run import RESULTS
from bench.seed import seed_tenant
from bench.targets import (
    ForeignCpu,
    Server,
    cpu_seconds,
    create_group,
    server_on_store,
    settle,
)
from scim_server.config import Settings

DATABASE = "scim_bench_tenants"
SUITE = "tenants"
KEPT_PACE_P99_MS = 1000.0
"""A tenant's load is sustained when none of its requests failed and its p99 stayed under
this: a server that falls behind an open-loop load answers ever later, so its p99 grows
with the length of the run."""
REQUEST_TIMEOUT_S = 60
"""A request unanswered after this long counts as an error."""
RATE_LIMITED = 429
KINDS = ("post", "get", "patch", "filter", "add")
"""What each tenant sends, in this order, over and over: a user created, one read, one PATCHed
(``displayName``), a ``userName eq`` lookup, a member added to the tenant's group."""


@dataclass(frozen=True)
class Sizes:
    tenants: int
    rate: float
    """Requests per second of each tenant."""
    seconds: float
    users: int
    """Users seeded in each tenant: those read, PATCHed, looked up and added to its group."""

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(tenants=10, rate=25.0, seconds=5.0, users=100)
        return cls(tenants=10, rate=25.0, seconds=30.0, users=1000)

    @property
    def per_tenant(self) -> int:
        return max(1, round(self.rate * self.seconds))


@dataclass(frozen=True)
class Tenant:
    name: str
    base_url: str
    token: str
    users: list[str]
    user_names: list[str]
    group: str


def requests(tenant: Tenant, count: int) -> Iterator[dict[str, Any]]:
    """The tenant's ``count`` requests, in order: the kinds of ``KINDS`` in turn."""
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        user = index // len(KINDS) % len(tenant.users)
        if kind == "post":
            yield workload.post_user(f"{tenant.name}-new{index:06d}")
        elif kind == "get":
            yield workload.get_user(tenant.users[user])
        elif kind == "patch":
            yield workload.patch_user(tenant.users[user], index)
        elif kind == "filter":
            yield workload.user_name_lookup(tenant.user_names[user])
        else:
            yield workload.member_add(tenant.group, tenant.users[user])


@dataclass
class Outcome:
    """What one tenant's requests did: latencies from the intended send time, by kind."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    """The errors by what they were: a status code, or ``timeout`` (no answer within
    ``REQUEST_TIMEOUT_S``) or ``connection`` (the connection failed)."""
    samples: list[str] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    """How long after its intended time each request actually left."""


async def send(
    session: aiohttp.ClientSession,
    tenant: Tenant,
    request: dict[str, Any],
    intended: float,
    outcome: Outcome,
) -> None:
    loop = asyncio.get_running_loop()
    outcome.late.append(loop.time() - intended)
    body = orjson.dumps(request["body"]) if request.get("body") is not None else None
    try:
        async with session.request(
            request["method"],
            tenant.base_url + request["path"],
            data=body,
            headers={
                "Authorization": f"Bearer {tenant.token}",
                "Content-Type": "application/scim+json",
            },
        ) as response:
            text = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        status, text = 0, f"{type(error).__name__}: {error}".encode()
        failure = "timeout" if isinstance(error, TimeoutError) else "connection"
    else:
        failure = str(status)
    if status in request["expect"]:
        outcome.latencies.setdefault(request["label"], []).append(loop.time() - intended)
        return
    outcome.errors += 1
    outcome.failures[failure] += 1
    if len(outcome.samples) < 3:
        outcome.samples.append(
            f"{request['method']} {request['path'][:60]} -> {status} {text[:160]!r}"
        )


async def tenant_load(
    session: aiohttp.ClientSession, tenant: Tenant, sizes: Sizes, start: float
) -> Outcome:
    """Send the tenant's requests each at its intended time; wait for every answer."""
    loop = asyncio.get_running_loop()
    outcome = Outcome()
    sent: list[asyncio.Task[None]] = []
    for index, request in enumerate(requests(tenant, sizes.per_tenant)):
        intended = start + index / sizes.rate
        await asyncio.sleep(max(0.0, intended - loop.time()))
        sent.append(asyncio.create_task(send(session, tenant, request, intended, outcome)))
    await asyncio.gather(*sent)
    return outcome


async def load(tenants: list[Tenant], sizes: Sizes) -> dict[str, Outcome]:
    """Every tenant at once, their starts spread evenly over one request interval."""
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=0)  # open-loop: never queue in the client
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = asyncio.get_running_loop().time() + 0.5
        spacing = 1 / (sizes.rate * len(tenants))
        outcomes = await asyncio.gather(
            *(
                tenant_load(session, tenant, sizes, start + position * spacing)
                for position, tenant in enumerate(tenants)
            )
        )
    return {tenant.name: outcome for tenant, outcome in zip(tenants, outcomes, strict=True)}


def _ms(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of ``values`` (seconds), in milliseconds."""
    value = percentile(sorted(values), share)
    return None if value is None else round(value * 1000, 1)


def summary(outcomes: dict[str, Outcome], sizes: Sizes) -> dict[str, Any]:
    tenants: dict[str, dict[str, Any]] = {}
    for name, outcome in outcomes.items():
        answered = [value for values in outcome.latencies.values() for value in values]
        tenants[name] = {
            "requests": sizes.per_tenant,
            "ok": len(answered),
            "errors": outcome.errors,
            "p50_ms": _ms(answered, 0.50),
            "p99_ms": _ms(answered, 0.99),
            "max_ms": _ms(answered, 1.0),
            "late_p99_ms": _ms(outcome.late, 0.99),
            "failures": dict(outcome.failures),
            "error_samples": outcome.samples,
        }
    kinds: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        values = [v for outcome in outcomes.values() for v in outcome.latencies.get(kind, [])]
        kinds[kind] = {"ok": len(values), "p50_ms": _ms(values, 0.50), "p99_ms": _ms(values, 0.99)}
    p99s = [float(row["p99_ms"]) for row in tenants.values() if row["p99_ms"] is not None]
    return {
        "tenants": tenants,
        "kinds": kinds,
        "worst_p99_ms": max(p99s, default=None),
        "median_p99_ms": statistics.median(p99s) if p99s else None,
        "errors": sum(row["errors"] for row in tenants.values()),
        "failures": dict(sum((outcome.failures for outcome in outcomes.values()), Counter())),
    }


def setup(server: Server, uri: str, sizes: Sizes) -> list[Tenant]:
    tenants = []
    for position in range(sizes.tenants):
        name = f"t{position:02d}"
        base_url, token = server.create_tenant(name)
        seeded = seed_tenant(uri, DATABASE, name, sizes.users, {})
        group = create_group(base_url, token, "load")
        tenants.append(Tenant(name, base_url, token, seeded.users, seeded.user_names, group))
    return tenants


HISTORY_TITLES = {
    "worst_p99_ms": "p99 of the slowest tenant (ms)",
    "median_p99_ms": "median of the tenants' p99 (ms)",
    "errors": "errors, all tenants",
}


def markdown(results: dict[str, Any], out: Path) -> str:
    figures, sizes, machine = results["figures"], results["config"], results["machine"]
    rows = [
        f"| {name} | {row['requests']} | {row['ok']} | {row['errors']} | {row['p50_ms']} "
        f"| {row['p99_ms']} | {row['max_ms']} | {row['late_p99_ms']} |"
        for name, row in figures["tenants"].items()
    ]
    kinds = [
        f"| {kind} | {row['ok']} | {row['p50_ms']} | {row['p99_ms']} |"
        for kind, row in figures["kinds"].items()
    ]
    sustained = all(
        row["errors"] == 0 and row["p99_ms"] is not None and row["p99_ms"] <= KEPT_PACE_P99_MS
        for row in figures["tenants"].values()
    )
    failures = figures.get("failures") or {}
    refused = failures.get(str(RATE_LIMITED), 0)
    errors = (
        "Errors by kind, all tenants: "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(failures.items()))
        + f"; refused by the rate limit ({RATE_LIMITED}): {refused}."
        if failures
        else "No error."
    )
    foreign = results["foreign_cores"]
    contended = (
        f" (contended: other processes took {foreign:.2f} of a core)"
        if foreign >= report.CONTENDED
        else ""
    )
    return "\n".join(
        [
            "# Tenants under load",
            "",
            f"{results['date']}, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"commit {machine.get('commit', '?')}, "
            f"`python -m bench.tenants{' --quick' if sizes['quick'] else ''}`.",
            "",
            f"{sizes['tenants']} tenants at once, each sending {sizes['rate']:g} requests per "
            f"second for {sizes['seconds']:g} s, open-loop (each request leaves at its "
            "intended time whatever the earlier ones did), in turn: "
            + ", ".join(f"`{kind}`" for kind in KINDS)
            + f". Each tenant holds {sizes['users']:,} users in no group and one group; this "
            "server runs one worker with the default rate limit, on SecantusDB. Latencies in "
            "ms from each request's intended send time, so queueing counts; `late p99` is how "
            "late the load generator itself sent its requests.",
            "",
            "| tenant | requests | ok | errors | p50 | p99 | max | late p99 |",
            "|---|--:|--:|--:|--:|--:|--:|--:|",
            *rows,
            "",
            "| request kind, all tenants | ok | p50 | p99 |",
            "|---|--:|--:|--:|",
            *kinds,
            "",
            f"Every tenant sustained {sizes['rate']:g} requests per second (no error, p99 "
            f"under {KEPT_PACE_P99_MS:.0f} ms): **{'yes' if sustained else 'no'}**{contended}. "
            "p99 of the slowest tenant "
            f"{figures['worst_p99_ms']} ms, median of the tenants' p99 "
            f"{figures['median_p99_ms']} ms. {errors}",
            "",
            *_cores(results.get("cores")),
            *history.table(out, SUITE, sizes["quick"], HISTORY_TITLES),
        ]
    )


def _cores(cores: dict[str, float] | None) -> list[str]:
    """What the server and the store used during the load, when the run measured it."""
    if not cores:
        return []
    return [
        "Cores used, on average from the first request sent to the last answered or timed "
        "out: "
        + ", ".join(f"{name} {used:.2f}" for name, used in cores.items())
        + ". The store (SecantusDB) is one Python process: near 1.0 it is saturated; well "
        'under it while requests time out, it is stalled (docs/storage.md, "The write path '
        'under load").',
        "",
    ]


LOADED = ("server", "store")
"""What ``server_on_store``'s pids are, in order (no store when it runs elsewhere)."""


def run(
    sizes: Sizes, work: Path, uri: str | None
) -> tuple[dict[str, Outcome], float, dict[str, float]]:
    """Start what is needed, load it, stop it: the outcomes, the foreign cores meanwhile, and
    the cores the server and the store each used, on average, until every request was
    answered or timed out."""
    rate_limit = Settings().rate_limit_per_second
    with server_on_store(work, uri, DATABASE, rate_limit) as (uri, server, pids):
        tenants = setup(server, uri, sizes)
        settle(pids)
        foreign = ForeignCpu()
        used = [cpu_seconds(pid) for pid in pids]
        started = time.monotonic()
        outcomes = asyncio.run(load(tenants, sizes))
        elapsed = time.monotonic() - started
        cores = {
            name: round((cpu_seconds(pid) - before) / elapsed, 2)
            for name, pid, before in zip(LOADED, pids, used, strict=False)
        }
        return outcomes, foreign.cores(), cores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.tenants", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 s instead of 30 s")
    parser.add_argument("--tenants", type=int, help="how many tenants (default 10)")
    parser.add_argument("--rate", type=float, help="requests per second of each (default 25)")
    parser.add_argument("--seconds", type=float, help="how long (default 30, --quick 5)")
    parser.add_argument("--users", type=int, help="users seeded in each tenant")
    parser.add_argument(
        "--mongodb-uri", help="a running store to use (its database is dropped first)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    defaults = Sizes.for_mode(args.quick)
    sizes = Sizes(
        tenants=args.tenants or defaults.tenants,
        rate=args.rate or defaults.rate,
        seconds=args.seconds or defaults.seconds,
        users=args.users or defaults.users,
    )
    with tempfile.TemporaryDirectory(prefix="scim-bench-tenants-") as tmp:
        outcomes, foreign_cores, cores = run(sizes, Path(tmp), args.mongodb_uri)
    figures = summary(outcomes, sizes)
    results = history.results(
        args.quick, sizes, foreign_cores=round(foreign_cores, 3), cores=cores, figures=figures
    )
    kept = {key: figures[key] for key in HISTORY_TITLES if figures[key] is not None}
    history.publish(args.out, "tenants", SUITE, results, kept, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
