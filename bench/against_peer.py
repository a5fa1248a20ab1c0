"""This server against the peer, loaded by wrk: ``python -m bench.against_peer [--quick]``.

``bench.run`` loads both with its Python load generator; here the load comes from outside,
wrk (``bench/wrk.py``), whose own cost hardly counts. It starts a SecantusDB with this
server on it (one worker, ``--rate-limit 0``) and the peer (``bench/peer.py``, scim2-server
in memory), both holding the same users in no group, and runs each request shape on one
and then on the other, so that each ratio compares two runs a moment apart:

- ``GET /Users/{id}`` and ``filter=userName eq`` of random users;
- ``PATCH`` replacing ``displayName``, all on one user, then each request on another user;
- ``POST /Users`` with a fresh userName each, on N connections and then one at a time on one
  connection (as a client without concurrency sends them), and ``POST /Bulk`` of 1,000 such
  creates on one connection.

Bulk is compared with single POSTs twice: with the POSTs on N connections (the ratio the
target judges) and, like for like, with the POSTs one at a time on one connection, as Bulk
itself is sent (reported, not judged). For each creating shape the CPU each process took per
user created is reported too (this server's, the store's, the peer's; the relay's moves and
the journal's writes that trail a run included): on a shared machine it moves less than a
throughput does.

The targets are judged on one worker, like for like with the peer's one process. With
``--workers N`` (N > 1) every request shape is then measured again, the peer's too, with this
server at its recommended deployment (``serve --workers N``, one worker per core) on the same
store and users: a second table, labelled as such and judged against nothing.

It prints and writes bench/results/against_peer.json and .md, and appends the ratios to
history.jsonl (``"suite": "wrk"``). Nothing is asserted: it reports.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import history, report, workload, wrk
from bench.run import RESULTS
from bench.seed import seed_tenant
from bench.targets import Database, ForeignCpu, Peer, Server, cpu_seconds, http, settle

DATABASE = "scim_bench_wrk"
TENANT = "wrk"
SUITE = "wrk"
BULK_SIZE = 1000


@dataclass(frozen=True)
class Sizes:
    users: int
    seconds: float
    bulk_seconds: float
    connections: int

    @classmethod
    def for_mode(cls, quick: bool, connections: int) -> Sizes:
        if quick:
            return cls(users=1000, seconds=3, bulk_seconds=5, connections=connections)
        return cls(users=10_000, seconds=10, bulk_seconds=15, connections=connections)


@dataclass(frozen=True)
class Compared:
    """A request shape measured on both, and the least this server ÷ the peer should reach.

    ``one_connection``: sent one request at a time on one connection, not on N; ``creates``:
    the users each successful request creates (0: it creates none)."""

    key: str
    title: str
    target: float | None
    one_connection: bool = False
    creates: int = 0


COMPARED = (
    Compared("get", "GET /Users/{id}", 1.0),
    Compared("filter", "GET /Users?filter=userName eq", 1.0),
    Compared("patch_same", "PATCH /Users/{id}, every request to the same user", 0.5),
    Compared("patch_many", "PATCH /Users/{id}, each request to another user", 0.5),
    Compared("post", "POST /Users", 0.6, creates=1),
    Compared(
        "bulk",
        f"POST /Bulk of {BULK_SIZE:,} creates (creates per second)",
        None,
        one_connection=True,
        creates=BULK_SIZE,
    ),
    # After Bulk, so that Bulk finds the users it found before this shape was measured (the
    # peer's cost of a creation grows with its users).
    Compared(
        "post_serial",
        "POST /Users, one at a time on one connection",
        None,
        one_connection=True,
        creates=1,
    ),
)
BULK_TARGET = 5.0
"""Creates per second through Bulk ÷ through single POSTs on N connections, on this server."""
CREATING = tuple(compared for compared in COMPARED if compared.creates)


def shapes(ids: list[str], names: list[str]) -> dict[str, wrk.Shape]:
    """The request shapes, written once for both: ids differ, userNames are the same."""
    patch = workload.rename(wrk.UNIQUE)
    bulk_names = [f"bulk{wrk.UNIQUE}x{i:04d}" for i in range(BULK_SIZE)]
    return {
        "get": wrk.Shape("get", "GET", f"/Users/{wrk.KEY}", tuple(ids)),
        "filter": wrk.Shape(
            "filter", "GET", "/Users?filter=" + quote(f'userName eq "{wrk.KEY}"'), tuple(names)
        ),
        "patch_same": wrk.Shape(
            "patch_same", "PATCH", f"/Users/{wrk.KEY}", tuple(ids), patch, pick="first"
        ),
        "patch_many": wrk.Shape(
            "patch_many", "PATCH", f"/Users/{wrk.KEY}", tuple(ids), patch, pick="cycle"
        ),
        "post": wrk.Shape("post", "POST", "/Users", body=workload.user_body(f"wrk{wrk.UNIQUE}")),
        "post_serial": wrk.Shape(
            "post_serial", "POST", "/Users", body=workload.user_body(f"one{wrk.UNIQUE}")
        ),
        "bulk": wrk.Shape("bulk", "POST", "/Bulk", body=workload.bulk_body(bulk_names)),
    }


@dataclass
class Side:
    """One system under load: where to send, with which token, whose CPU to wait on."""

    name: str
    base_url: str
    token: str
    pids: list[int]
    shapes: dict[str, wrk.Shape]
    processes: tuple[str, ...] = ()
    """What each of ``pids`` is, in the CPU per create (``server``, ``store``; ``peer``)."""


def bulk_created(side: Side) -> int:
    """Users whose userName starts with ``bulk``, as the system answers (-1: it cannot say)."""
    query = quote('userName sw "bulk"')
    status, body = http("GET", f"{side.base_url}/Users?count=0&filter={query}", side.token)
    return int(body["totalResults"]) if status == 200 and isinstance(body, dict) else -1


def measure(side: Side, compared: Compared, sizes: Sizes, work: Path, run: str) -> dict[str, Any]:
    key = compared.key
    bulk = key == "bulk"
    others = ForeignCpu()
    load = wrk.Load(
        connections=1 if compared.one_connection else sizes.connections,
        seconds=sizes.bulk_seconds if bulk else sizes.seconds,
        run=f"{run}{side.name}",
    )
    used = [cpu_seconds(pid) for pid in side.pids]
    result = wrk.measure(side.shapes[key], side.base_url, side.token, work, load)
    result["foreign_cores"] = round(others.cores(), 3)
    settle(side.pids)
    if compared.creates:
        # Until settled: the relay's moves and the journal's writes of the run included.
        created = result["ok"] * compared.creates
        result["cpu_ms_per_create"] = {
            process: round(1000 * (cpu_seconds(pid) - before) / created, 3) if created else None
            for process, pid, before in zip(side.processes, side.pids, used, strict=True)
        }
    if bulk:
        result["creates_per_s"] = result["throughput"] * BULK_SIZE
        result["users_created"] = bulk_created(side)
        result["throughput"] = result["creates_per_s"]
    print(
        f"{side.name:6} {key:11} {result['throughput']:9.1f}/s  ok {result['ok']:6}"
        f"  errors {result['errors']}  p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f}"
        f" ms  foreign cores {result['foreign_cores']:.2f}",
        flush=True,
    )
    return result


def compare(ours: Side, peer: Side, sizes: Sizes, work: Path) -> dict[str, Any]:
    run = f"r{int(time.time())}"
    figures: dict[str, Any] = {}
    for compared in COMPARED:
        server = measure(ours, compared, sizes, work, run)
        other = measure(peer, compared, sizes, work, run)
        ratio = server["throughput"] / other["throughput"] if other["throughput"] else None
        figures[compared.key] = {"server": server, "peer": other, "ratio": ratio}
    for name in ("server", "peer"):
        bulk = figures["bulk"][name]["throughput"]
        for post, suffix in (("post", "post"), ("post_serial", "serial_post")):
            single = figures[post][name]["throughput"]
            figures["bulk"][f"{name}_bulk_vs_{suffix}"] = bulk / single if single else None
    return figures


def verdict(value: float | None, target: float | None, contended: bool) -> str:
    if target is None or value is None:
        return ""
    text = "pass" if value >= target else "miss"
    return f"{text} (contended)" if contended else text


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratios(figures: dict[str, Any]) -> dict[str, float]:
    """The figures kept in the history: each ratio to the peer, and Bulk ÷ single POSTs."""
    kept = {f"peer_{c.key}": figures[c.key]["ratio"] for c in COMPARED}
    kept["bulk_vs_post"] = figures["bulk"]["server_bulk_vs_post"]
    kept["bulk_vs_serial_post"] = figures["bulk"].get("server_bulk_vs_serial_post")
    return {key: value for key, value in kept.items() if value is not None}


HISTORY_TITLES = {
    **{f"peer_{c.key}": f"{c.title} ÷ peer" for c in COMPARED},
    "bulk_vs_post": "Bulk creates ÷ single POSTs on N connections (this server; judged)",
    "bulk_vs_serial_post": "Bulk creates ÷ single POSTs one at a time (this server; like for like)",
}


def _rows(figures: dict[str, Any], judged: bool) -> list[str]:
    """One table row per request shape; ``judged``: with its target and verdict."""
    rows = []
    for compared in COMPARED:
        row = figures[compared.key]
        server, peer = row["server"], row["peer"]
        contended = max(server["foreign_cores"], peer["foreign_cores"]) >= report.CONTENDED
        target = "-" if compared.target is None else f"≥ {compared.target}"
        verdicts = (
            f" {target} | {verdict(row['ratio'], compared.target, contended)} |" if judged else ""
        )
        rows.append(
            f"| {compared.title} | {_number(server['throughput'], 0)} | "
            f"{_number(server['p50_ms'], 1)} / {_number(server['p99_ms'], 1)} | "
            f"{server['errors']} | {_number(peer['throughput'], 0)} | "
            f"{_number(peer['p50_ms'], 1)} / {_number(peer['p99_ms'], 1)} | {peer['errors']} | "
            f"{_number(row['ratio'])} |{verdicts} "
            f"{server['foreign_cores']:.2f} / {peer['foreign_cores']:.2f} |"
        )
    return rows


def _header(judged: bool) -> list[str]:
    verdicts = " target | verdict |" if judged else ""
    return [
        "| request | server /s | server p50 / p99 | errors | peer /s | peer p50 / p99 "
        f"| errors | ratio |{verdicts} foreign cores |",
        "|---|--:|--:|--:|--:|--:|--:|--:|" + ("--:|---|" if judged else "") + "--:|",
    ]


def _scaled(results: dict[str, Any]) -> list[str]:
    """The table of this server with several workers (``--workers``), if it was measured."""
    scaled = results.get("scaled")
    if not scaled:
        return []
    workers, figures = scaled["workers"], scaled["figures"]
    bulk = figures["bulk"]
    return [
        f"## {workers} workers: this server at its recommended deployment (not judged)",
        "",
        f"The same request shapes, store and users, with this server run as it is meant to be "
        f"deployed, `serve --workers {workers}` (one worker per core), against the peer again "
        "(one process, as it runs). This is not like for like: the targets above are judged "
        "on one worker, and none is judged here.",
        "",
        *_header(judged=False),
        *_rows(figures, judged=False),
        "",
        f"Bulk of {BULK_SIZE:,} creates ÷ single POSTs, in creates per second, on this server "
        f"with {workers} workers: {_number(bulk['server_bulk_vs_post'])} against POSTs on "
        f"N connections, {_number(bulk.get('server_bulk_vs_serial_post'))} against POSTs one "
        "at a time on one connection.",
        "",
        *_cpu_table(figures),
    ]


def _cpu_table(figures: dict[str, Any]) -> list[str]:
    """CPU per user created, per process, for each creating shape (none in older results)."""
    rows = []
    for compared in CREATING:
        row = figures.get(compared.key, {})
        server = row.get("server", {}).get("cpu_ms_per_create")
        peer = row.get("peer", {}).get("cpu_ms_per_create")
        if server is None or peer is None:
            continue
        rows.append(
            f"| {compared.title} | {_number(server.get('server'))} | "
            f"{_number(server.get('store'))} | {_number(peer.get('peer'))} |"
        )
    if not rows:
        return []
    return [
        "CPU per user created, in ms, each process's (until it settled after the run: the "
        "events relay's moves and the journal's writes included); on a shared machine it "
        "moves less than a throughput does:",
        "",
        "| request | server | store | peer |",
        "|---|--:|--:|--:|",
        *rows,
        "",
    ]


def markdown(results: dict[str, Any], out: Path) -> str:
    figures, sizes, machine = results["figures"], results["config"], results["machine"]
    bulk = figures["bulk"]
    bulk_ratio = bulk["server_bulk_vs_post"]
    bulk_contended = any(
        figures[key]["server"]["foreign_cores"] >= report.CONTENDED for key in ("post", "bulk")
    )
    bulk_verdict = verdict(bulk_ratio, BULK_TARGET, bulk_contended)
    return "\n".join(
        [
            "# This server against the peer, loaded by wrk",
            "",
            f"{results['date']}, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"commit {machine.get('commit', '?')}, "
            f"`python -m bench.against_peer{' --quick' if sizes['quick'] else ''}"
            f"{_workers_flag(results)}`.",
            "",
            "## One worker: like for like, the targets judged",
            "",
            f"wrk, one thread, {sizes['connections']} connections ({sizes['seconds']:.0f} s "
            f"per request shape; POSTs one at a time: 1 connection; Bulk: 1 connection, "
            f"{sizes['bulk_seconds']:.0f} s), first "
            f"against this server (one worker, SecantusDB, journaled writes), then against "
            f"the peer (scim2-server in memory). Both hold the same {sizes['users']:,} users "
            "in no group. Throughput is successful requests per second (Bulk: users created "
            "per second); latencies p50 / p99 in ms; errors are answers of 400 and above, "
            "and socket errors; `foreign cores` is the CPU other processes of the machine "
            "took meanwhile (this server / the peer).",
            "",
            *_header(judged=True),
            *_rows(figures, judged=True),
            "",
            f"Bulk of {BULK_SIZE:,} creates ÷ single POSTs on {sizes['connections']} "
            f"connections, in creates per second: {_number(bulk_ratio)} on this server (target "
            f"≥ {BULK_TARGET:.0f}: **{bulk_verdict or 'n/a'}**), "
            f"{_number(bulk['peer_bulk_vs_post'])} on the peer. Like for like, Bulk on one "
            "connection ÷ single POSTs one at a time on one connection (not judged): "
            f"{_number(bulk.get('server_bulk_vs_serial_post'))} on this server, "
            f"{_number(bulk.get('peer_bulk_vs_serial_post'))} on the peer. "
            f"Users created by Bulk, counted afterwards: {bulk['server']['users_created']:,} "
            f"on this server, {bulk['peer']['users_created']:,} on the peer (-1: not counted).",
            "",
            *_cpu_table(figures),
            *_scaled(results),
            *history.table(out, SUITE, sizes["quick"], HISTORY_TITLES),
        ]
    )


def _workers_flag(results: dict[str, Any]) -> str:
    scaled = results.get("scaled")
    return f" --workers {scaled['workers']}" if scaled else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.against_peer", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer users, shorter runs")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also measure this server with this many workers (its recommended deployment: "
        "one per core), after the one-worker run the targets are judged on",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers is at least 1")
    sizes = Sizes.for_mode(args.quick, args.connections)
    wrk.executable()  # fails early, saying how to install it
    with tempfile.TemporaryDirectory(prefix="scim-bench-wrk-") as tmp:
        work = Path(tmp)
        db = Database(work / "db")
        db.start()
        peer = Peer(work / "peer.json", work / "peer.log", sizes.users, {})
        try:
            with _serving(db, work, workers=1) as server:
                token = server.create_tenant(TENANT)[1]
                seeded = seed_tenant(db.uri, DATABASE, TENANT, sizes.users, {})
                peer.start()
                theirs = Side(
                    "peer",
                    peer.base_url,
                    peer.token,
                    [peer.pid],
                    shapes(peer.seeded["users"], peer.seeded["userNames"]),
                    ("peer",),
                )
                ours = shapes(seeded.users, seeded.user_names)
                figures = compare(_side(server, "server", token, db, ours), theirs, sizes, work)
            scaled = None
            if args.workers > 1:
                # The same store, tenant and token (its signing secret is in the store).
                with _serving(db, work, workers=args.workers) as server:
                    name = f"server{args.workers}w"
                    scaled = compare(_side(server, name, token, db, ours), theirs, sizes, work)
        finally:
            peer.stop()
            db.stop()
    run = history.results(args.quick, sizes, figures=figures)
    if scaled is not None:
        run["scaled"] = {"workers": args.workers, "figures": scaled}
    history.publish(args.out, "against_peer", SUITE, run, ratios(figures), markdown)
    return 0


@contextlib.contextmanager
def _serving(db: Database, work: Path, *, workers: int) -> Iterator[Server]:
    """This server with ``workers`` workers on ``db``, stopped on exit."""
    server = Server(db.uri, DATABASE, work / f"server-{workers}w.log", workers=workers)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _side(server: Server, name: str, token: str, db: Database, ours: dict[str, wrk.Shape]) -> Side:
    """This server as one side of the comparison (its workers are children of its pid)."""
    return Side(
        name,
        f"{server.root}/scim/v2/{TENANT}",
        token,
        [server.pid, db.pid],
        ours,
        ("server", "store"),
    )


if __name__ == "__main__":
    raise SystemExit(main())
