"""What the rate limiter costs: ``python -m bench.rate_limit [--quick]``.

Starts SecantusDB in a temporary directory and two ``python -m scim_server serve`` processes
(one worker each) on the same database: one with rate limiting off (``--rate-limit 0``), one
with the default of 100 requests per second. Then it drives ``GET /Users/{id}`` (the cheapest
request: one ``find``, so the limiter's share is the largest) with 16 connections, in rounds
that alternate between:

- **one tenant**: on the server without a limiter (*off*), and on the other (*on*), where
  the tenant has its own limit of 10,000 per second (never reached, so nothing is refused: a
  reservation is of 1,000 permits);
- **100 tenants**: the requests spread over 100 tenants, *off*, and *on* at the default of
  100 per second each: each tenant makes a few requests per second, the many-small-tenants
  case (a reservation of 10 permits lasts each tenant a few seconds).

It prints requests per second of each, the ratio of *on* to *off*, the 429s (there should be
none), the limiter's reservations per request (read back from the ``permits`` the
``rate_limits`` documents count: each reservation was granted one batch) and every database
operation per request (``serverStatus`` opcounters), and writes bench/results/rate_limit.json
and rate_limit.md. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import MongoClient

from bench import report
from bench.run import RESULTS
from bench.targets import Database, ForeignCpu, Server, http, settle
from scim_server.core.rate_limits import BATCH_SHARE
from scim_server.storage.rate_limits import RATE_LIMITS

DATABASE = "scim_bench_rate_limit"
DEFAULT_LIMIT = 100
SOLO_LIMIT = 10_000
TENANTS = 100
CONCURRENCY = 16

Store = MongoClient[dict[str, Any]]


@dataclass(frozen=True)
class Reader:
    """A GET of one user of one tenant on one server."""

    tenant: str
    url: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Config:
    name: str
    readers: list[Reader]
    limit: int | None
    """The tenants' limit, None when the server has none."""


@dataclass
class Tally:
    ok: int = 0
    refused: int = 0
    seconds: float = 0.0
    reservations: int = 0
    operations: int = 0
    """Every operation the database counted meanwhile (``serverStatus`` opcounters)."""
    foreign_cores: float = 0.0

    def as_dict(self, off: Tally) -> dict[str, Any]:
        """The figures, with the ratio to ``off``: the same tenants on the server without a
        limiter."""
        rate = self.ok / self.seconds
        return {
            "requests": self.ok,
            "requests_per_second": round(rate, 1),
            "ratio_to_off": round(rate / (off.ok / off.seconds), 3),
            "refused_429": self.refused,
            "limiter_commands_per_request": round(self.reservations / max(self.ok, 1), 4),
            "database_operations_per_request": round(self.operations / max(self.ok, 1), 3),
            "foreign_cores": round(self.foreign_cores, 2),
        }


def readers(
    server: Server, names: list[str], tokens: dict[str, str], ids: dict[str, str]
) -> list[Reader]:
    return [
        Reader(
            name,
            f"{server.root}/scim/v2/{name}/Users/{ids[name]}",
            {"Authorization": f"Bearer {tokens[name]}"},
        )
        for name in names
    ]


async def drive(config: Config, seconds: float) -> tuple[Counter[int], float]:
    """``CONCURRENCY`` connections GET the readers in turn for ``seconds``."""
    statuses: Counter[int] = Counter()
    turn = itertools.count()
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def connection(deadline: float) -> None:
            while time.perf_counter() < deadline:
                reader = config.readers[next(turn) % len(config.readers)]
                async with session.get(reader.url, headers=reader.headers) as response:
                    await response.read()
                    statuses[response.status] += 1

        began = time.perf_counter()
        await asyncio.gather(*[connection(began + seconds) for _ in range(CONCURRENCY)])
        return statuses, time.perf_counter() - began


def permits_granted(database: Store, config: Config) -> int:
    """The permits the config's tenants were granted so far, by every reservation."""
    if config.limit is None:
        return 0
    query = {"tenant": {"$in": [reader.tenant for reader in config.readers]}}
    return sum(d["permits"] for d in database[DATABASE][RATE_LIMITS].find(query, {"permits": 1}))


def operations(database: Store) -> int:
    """The operations the database has counted since it started, of every kind."""
    return sum(int(n) for n in database.admin.command("serverStatus")["opcounters"].values())


def measure(
    database: Store, configs: list[Config], rounds: int, seconds: float, pids: list[int]
) -> dict[str, Tally]:
    """Each config in turn, ``rounds`` times, each round starting once the servers and the
    database are idle (the journal of the round before written)."""
    tallies = {config.name: Tally() for config in configs}
    for config in configs:  # warm-up: connections, caches, the tenants' limits
        asyncio.run(drive(config, 0.5))
    for _ in range(rounds):
        for config in configs:
            settle(pids)
            foreign = ForeignCpu()
            granted = permits_granted(database, config)
            counted = operations(database)
            statuses, wall = asyncio.run(drive(config, seconds))
            counted = operations(database) - counted - 1  # the serverStatus itself
            tally = tallies[config.name]
            tally.ok += statuses[200]
            tally.refused += statuses[429]
            tally.seconds += wall
            tally.operations += counted
            # Nothing is refused, so every reservation was granted its whole batch.
            batch = max(1, (config.limit or 1) // BATCH_SHARE)
            tally.reservations += (permits_granted(database, config) - granted) // batch
            tally.foreign_cores = max(tally.foreign_cores, foreign.cores())
            unexpected = set(statuses) - {200, 429}
            if unexpected:
                raise RuntimeError(f"{config.name}: unexpected statuses {statuses}")
    return tallies


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    rows = [
        f"| {name} | {row['requests_per_second']} | {row['ratio_to_off']} | {row['refused_429']} "
        f"| {row['limiter_commands_per_request']} | {row['database_operations_per_request']} "
        f"| {row['foreign_cores']} |"
        for name, row in results["figures"].items()
    ]
    config = results["config"]
    return "\n".join(
        [
            "# What the rate limiter costs",
            "",
            f"{results['date']}, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"commit {machine.get('commit', '?')}, "
            f"`python -m bench.rate_limit{' --quick' if config['quick'] else ''}`.",
            "",
            f"`GET /Users/{{id}}` with {CONCURRENCY} connections, {config['rounds']} rounds of "
            f"{config['seconds']} s per row, the rows alternating; one worker per server, both "
            "on one SecantusDB. `reservations/request`: the limiter's reservations (one "
            "`findAndModify` each) per request admitted. `database operations/request`: every "
            "operation the database counted (`serverStatus` opcounters) per request admitted: "
            "the request's own `find`, the token checks, the journal's writes, the reservations "
            "and the servers' monitoring of the database; *on* minus *off* is the limiter's "
            "whole cost. `foreign cores`: the most CPU other processes of the machine took in "
            "a round.",
            "",
            "| limiter | requests/s | ratio to off | 429s | reservations/request "
            "| database operations/request | foreign cores |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.rate_limit", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter rounds, fewer of them")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    rounds, seconds = (2, 1.5) if args.quick else (3, 4.0)
    with tempfile.TemporaryDirectory(prefix="scim-bench-rate-limit-") as tmp:
        db = Database(Path(tmp) / "db")
        db.start()
        off = Server(db.uri, DATABASE, Path(tmp) / "off.log")
        on = Server(
            db.uri,
            DATABASE,
            Path(tmp) / "on.log",
            admin_token=off.admin_token,
            rate_limit=DEFAULT_LIMIT,
        )
        try:
            off.start()
            on.start()
            names = ["solo", *(f"t{i}" for i in range(TENANTS))]
            tokens = {name: off.create_tenant(name)[1] for name in names}
            ids = {}
            for name in names:
                status, body = http(
                    "POST", f"{off.root}/scim/v2/{name}/Users", tokens[name], {"userName": "r"}
                )
                if status != 201:
                    raise RuntimeError(f"creating a user of {name}: {status} {body}")
                ids[name] = str(body["id"])
            status, body = http(
                "PUT",
                f"{on.root}/admin/tenants/solo/rate-limit",
                off.admin_token,
                {"requests_per_second": SOLO_LIMIT},
            )
            if status != 200:
                raise RuntimeError(f"setting solo's limit: {status} {body}")
            many = names[1:]
            configs = [
                Config("off, one tenant", readers(off, ["solo"], tokens, ids), None),
                Config("on, one tenant", readers(on, ["solo"], tokens, ids), SOLO_LIMIT),
                Config(f"off, {TENANTS} tenants", readers(off, many, tokens, ids), None),
                Config(f"on, {TENANTS} tenants", readers(on, many, tokens, ids), DEFAULT_LIMIT),
            ]
            with MongoClient(db.uri) as database:
                tallies = measure(database, configs, rounds, seconds, [off.pid, on.pid, db.pid])
        finally:
            on.stop()
            off.stop()
            db.stop()
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "config": {"quick": args.quick, "rounds": rounds, "seconds": seconds},
        "figures": {
            name: tally.as_dict(tallies[name.replace("on, ", "off, ")])
            for name, tally in tallies.items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rate_limit.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "rate_limit.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
