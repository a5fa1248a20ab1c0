"""What provisioning events and their webhooks cost: ``python -m bench.events [--quick]``.

Starts SecantusDB in a temporary directory, one ``python -m scim_server serve`` (one worker,
``--webhook-allow-private``) and a webhook receiver in a process of its own (this module with
``--receive``: an aiohttp server on 127.0.0.1 answering 204 and noting when each event came).

1. **Writes, with and without a webhook**: two tenants, *plain* (no webhook) and *hooked* (a
   webhook to the receiver, every event type), take ``POST /Users`` and then ``PATCH`` (a
   replace of ``title``, a different user each request) from 16 connections, in alternating
   rounds. For each: requests per second; the database commands of the request itself (the
   server's own count, ``scim_request_database_commands`` on ``/metrics``, the mechanism
   tests/test_command_counts.py pins the counts with); and every operation the database
   counted (``serverStatus`` opcounters) per request, until the relay has moved the round's
   events and, for *hooked*, the receiver has them all: the background's cost included.
2. **Delivery latency under an IdP's lifecycle**: ``idp-sim run --profile okta-oin scenario
   full-lifecycle`` against a third tenant with a webhook; for each event, the time from its
   ``time`` (when the write made it) to its receipt: p50, p99, max.

It prints and writes bench/results/events.json and events.md, and a line marked ``"suite":
"events"`` in history.jsonl. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from pymongo import MongoClient

from bench import history
from bench.run import RESULTS
from bench.targets import (
    Database,
    ForeignCpu,
    Server,
    free_port,
    http,
    request_commands,
    settle,
)

DATABASE = "scim_bench_events"
SUITE = "events"
CONCURRENCY = 16
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OPERATIONS = {"POST": "users.create", "PATCH": "users.patch"}
CATCH_UP_SECONDS = 120.0


@dataclass(frozen=True)
class Sizes:
    seconds: float
    """Load per round and configuration."""
    rounds: int
    users: int
    """The okta-oin directory's users."""

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        return cls(seconds=2.0, rounds=2, users=20) if quick else cls(5.0, 3, 50)


@dataclass(frozen=True)
class Tenant:
    name: str
    base: str
    headers: dict[str, str]
    users: list[str]
    """Existing users, each PATCHed in turn."""


# -- the receiver, in its own process -------------------------------------------------------


def receive(port: int, out: Path) -> None:
    """Answer every POST 204, and append (tenant, id, sequence, time, received) to ``out``."""

    async def serve() -> None:
        with out.open("ab") as notes:

            async def note(request: web.Request) -> web.Response:
                event = orjson.loads(await request.read())
                received = time.time()
                keys = ("tenant", "id", "sequence", "time")
                line = {**{key: event[key] for key in keys}, "received": received}
                notes.write(orjson.dumps(line) + b"\n")
                notes.flush()
                return web.Response(status=204)

            app = web.Application()
            app.router.add_post("/hook", note)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            await asyncio.Event().wait()

    asyncio.run(serve())


def start_receiver(work: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    out = work / "received.jsonl"
    out.touch()
    command = [sys.executable, "-m", "bench.events", "--receive", str(port), str(out)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}/hook", out
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the receiver did not start")


def received(out: Path, tenant: str) -> dict[str, dict[str, Any]]:
    """The first receipt of each event of ``tenant``, by event id."""
    first: dict[str, dict[str, Any]] = {}
    for line in out.read_bytes().splitlines():
        note = orjson.loads(line)
        if note["tenant"] == tenant:
            first.setdefault(note["id"], note)
    return first


# -- the load ---------------------------------------------------------------------------------


def tenant(server: Server, name: str, users: int, hook: str | None) -> Tenant:
    base, token = server.create_tenant(name)
    headers = {"Authorization": f"Bearer {token}"}
    ids = []
    for n in range(users):
        status, body = http(
            "POST", f"{base}/Users", token, {"schemas": [USER], "userName": f"seed{n}"}
        )
        assert status == 201, body
        ids.append(str(body["id"]))
    if hook is not None:
        status, body = http(
            "POST",
            f"{server.root}/admin/tenants/{name}/webhooks",
            server.admin_token,
            {"url": hook},
        )
        assert status == 201, body
    return Tenant(name, base, headers, ids)


async def drive(target: Tenant, method: str, seconds: float) -> tuple[int, float]:
    """``CONCURRENCY`` connections send ``method`` requests for ``seconds``: (answered, wall)."""
    turn = itertools.count()
    done = 0
    run = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def connection(deadline: float) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                n = next(turn)
                if method == "POST":
                    url, body = (
                        f"{target.base}/Users",
                        {"schemas": [USER], "userName": f"{run}-{n}"},
                    )
                else:
                    url = f"{target.base}/Users/{target.users[n % len(target.users)]}"
                    operation = {"op": "replace", "path": "title", "value": f"{run}-{n}"}
                    body = {"schemas": [PATCH_OP], "Operations": [operation]}
                async with session.request(method, url, json=body, headers=target.headers) as r:
                    await r.read()
                    if r.status not in (200, 201):
                        raise RuntimeError(f"{method} answered {r.status}")
                    done += 1

        began = time.perf_counter()
        await asyncio.gather(*(connection(began + seconds) for _ in range(CONCURRENCY)))
        return done, time.perf_counter() - began


def operations(store: MongoClient[dict[str, Any]]) -> int:
    return sum(int(n) for n in store.admin.command("serverStatus")["opcounters"].values())


def next_sequence(server: Server, name: str) -> int:
    status, body = http(
        "GET", f"{server.root}/admin/tenants/{name}/events", server.admin_token, None
    )
    assert status == 200, body
    return int(body["next_sequence"])


def caught_up(server: Server, name: str, out: Path | None, sequence: int | None = None) -> None:
    """Wait until the tenant's events are all in the outbox (no pending one left: its next
    number stands still) and, with a receiver, all received."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    last = -1
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = next_sequence(server, name)
        if now != last:
            last = now
            continue
        if out is None or len(received(out, name)) >= now - (sequence or 1):
            return
    raise RuntimeError(f"{name}: events not delivered within {CATCH_UP_SECONDS} s")


@dataclass
class Tally:
    requests: int = 0
    seconds: float = 0.0
    own_commands: float = 0.0
    operations: int = 0
    foreign_cores: float = 0.0

    def row(self, plain: Tally | None) -> dict[str, Any]:
        rate = self.requests / self.seconds
        row = {
            "requests_per_second": round(rate, 1),
            "request_commands": round(self.own_commands / max(self.requests, 1), 2),
            "database_operations_per_request": round(self.operations / max(self.requests, 1), 2),
            "foreign_cores": round(self.foreign_cores, 2),
        }
        if plain is not None:
            row["ratio_to_plain"] = round(rate / (plain.requests / plain.seconds), 3)
        return row


def writes(
    server: Server, db: Database, targets: list[Tenant], out: Path, sizes: Sizes, pids: list[int]
) -> dict[str, Any]:
    """Each method on each tenant, in alternating rounds."""
    store: MongoClient[dict[str, Any]] = MongoClient(db.uri)
    tallies = {(method, t.name): Tally() for method in OPERATIONS for t in targets}
    sequences = {t.name: next_sequence(server, t.name) for t in targets}
    try:
        for method in OPERATIONS:
            for _ in range(sizes.rounds):
                for target in targets:
                    hooked = target.name == "hooked"
                    settle(pids)
                    foreign = ForeignCpu()
                    counted = operations(store)
                    commands, requests = request_commands(server).get(
                        OPERATIONS[method], (0.0, 0.0)
                    )
                    done, wall = asyncio.run(drive(target, method, sizes.seconds))
                    caught_up(server, target.name, out if hooked else None, sequences[target.name])
                    tally = tallies[(method, target.name)]
                    after, answered = request_commands(server).get(OPERATIONS[method], (0.0, 0.0))
                    tally.own_commands += after - commands
                    tally.requests += done
                    tally.seconds += wall
                    # The catching up's own reads and the metrics requests are left out.
                    tally.operations += operations(store) - counted
                    tally.foreign_cores = max(tally.foreign_cores, foreign.cores())
                    assert answered - requests == done
    finally:
        store.close()
    figures: dict[str, Any] = {}
    for method in OPERATIONS:
        plain = tallies[(method, "plain")]
        figures[f"{method} plain"] = plain.row(None)
        figures[f"{method} hooked"] = tallies[(method, "hooked")].row(plain)
    return figures


def lifecycle(server: Server, hook: str, out: Path, sizes: Sizes) -> dict[str, Any]:
    """okta-oin's full lifecycle on a tenant with a webhook: each event's delivery latency."""
    base, token = server.create_tenant("oin")
    status, body = http(
        "POST", f"{server.root}/admin/tenants/oin/webhooks", server.admin_token, {"url": hook}
    )
    assert status == 201, body
    command = [sys.executable, "-m", "idp_sim.cli", "run", "--profile", "okta-oin"]
    command += ["--base-url", base, "--users", str(sizes.users), "--json"]
    command += ["scenario", "full-lifecycle"]
    done = subprocess.run(
        command, env={**os.environ, "SCIM_TOKEN": token}, capture_output=True, check=True
    )
    summary = orjson.loads(done.stdout)
    caught_up(server, "oin", out)
    notes = received(out, "oin").values()
    latencies = [
        (note["received"] - datetime.fromisoformat(note["time"]).timestamp()) * 1000
        for note in notes
    ]
    return {
        "requests": _requests(summary),
        "events": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
    }


def _requests(summary: Any) -> int | None:
    """The requests idp-sim's JSON summary counts, wherever its profiles put them."""
    if isinstance(summary, dict):
        if isinstance(summary.get("requests"), int):
            return int(summary["requests"])
        counts = [_requests(value) for value in summary.values()]
    elif isinstance(summary, list):
        counts = [_requests(value) for value in summary]
    else:
        return None
    found = [count for count in counts if count is not None]
    return sum(found) if found else None


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def kept(run: dict[str, Any]) -> dict[str, float]:
    writes_, latency = run["writes"], run["latency"]
    return {
        "post_ratio": writes_["POST hooked"]["ratio_to_plain"],
        "patch_ratio": writes_["PATCH hooked"]["ratio_to_plain"],
        "latency_p50_ms": latency["p50_ms"],
        "latency_p99_ms": latency["p99_ms"],
    }


def markdown(run: dict[str, Any], out: Path) -> str:
    machine, config = run["machine"], run["config"]
    rows = [
        f"| {name} | {row['requests_per_second']} | {row.get('ratio_to_plain', 1.0)} "
        f"| {row['request_commands']} | {row['database_operations_per_request']} "
        f"| {row['foreign_cores']} |"
        for name, row in run["writes"].items()
    ]
    latency = run["latency"]
    return "\n".join(
        [
            "# What provisioning events and webhooks cost",
            "",
            f"{run['date']}, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"commit {machine.get('commit', '?')}, "
            f"`python -m bench.events{' --quick' if config['quick'] else ''}`.",
            "",
            "## Writes, with and without a webhook",
            "",
            f"{CONCURRENCY} connections, {config['rounds']} rounds of {config['seconds']} s per "
            "row, the tenants alternating; one worker on one SecantusDB. *plain*: a tenant with "
            "no webhook (its events are still emitted and moved to the outbox); *hooked*: a "
            "tenant with a webhook to a receiver in another process. `commands/request`: the "
            "database commands of the request itself (the server's count, as "
            "tests/test_command_counts.py pins them). `operations/request`: every operation "
            "the database counted per request, until the round's events were in the outbox "
            "and, for *hooked*, delivered: the relay and the delivery included (and the "
            "servers' monitoring of the database). `foreign cores`: the most CPU other "
            "processes took in a round.",
            "",
            "| writes | requests/s | ratio to plain | commands/request | operations/request "
            "| foreign cores |",
            "|---|--:|--:|--:|--:|--:|",
            *rows,
            "",
            "## Delivery latency under okta-oin's lifecycle",
            "",
            f"`idp-sim run --profile okta-oin --users {config['users']} scenario "
            f"full-lifecycle` on a tenant with a webhook: {latency['requests']} requests, "
            f"{latency['events']} events, each received once or more. From an event's `time` "
            "(the write that made it) to its first receipt: "
            f"p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms, max {latency['max_ms']} ms.",
            "",
            *history.table(
                out,
                SUITE,
                config["quick"],
                {
                    "post_ratio": "POST, hooked/plain",
                    "patch_ratio": "PATCH, hooked/plain",
                    "latency_p50_ms": "delivery p50 (ms)",
                    "latency_p99_ms": "delivery p99 (ms)",
                },
            ),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.events", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter rounds, a smaller directory")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--receive", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.receive:
        receive(int(args.receive[0]), Path(args.receive[1]))
        return 0
    sizes = Sizes.for_mode(args.quick)
    with tempfile.TemporaryDirectory(prefix="scim-bench-events-") as tmp:
        work = Path(tmp)
        db = Database(work / "db")
        db.start()
        receiver, hook, out = start_receiver(work)
        server = Server(db.uri, DATABASE, work / "server.log", options=("--webhook-allow-private",))
        try:
            server.start()
            targets = [tenant(server, "plain", 200, None), tenant(server, "hooked", 200, hook)]
            pids = [server.pid, db.pid, receiver.pid]
            written = writes(server, db, targets, out, sizes, pids)
            latency = lifecycle(server, hook, out, sizes)
        except Exception:
            print(server.log.read_text()[-4000:], file=sys.stderr)  # what the server said
            raise
        finally:
            server.stop()
            receiver.kill()
            receiver.wait()
            db.stop()
    run = history.results(args.quick, sizes, writes=written, latency=latency)
    history.publish(args.out, "events", SUITE, run, kept(run), markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
