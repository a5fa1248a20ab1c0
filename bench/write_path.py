"""The write path, on the store and through the server: ``python -m bench.write_path [--quick]``.

Every write of this server waits for the store's journal (``w: 1, j: true``). If the store
flushes its journal once per write, one after the other, concurrent writes cannot go faster
than one flush each; if concurrent writes share a flush, throughput grows with concurrency.

1. **The store alone**: raw PyMongo against a SecantusDB on disk (in a temporary directory,
   as ``scim-server serve`` starts it): ``insert_one`` of new users and ``update_one`` of
   distinct existing users (a ``$set`` and the version ``$inc``, the server's conditional
   write), with ``j: true`` and with ``j: false``, by 1, 4, 16 and 64 concurrent tasks; and
   the same ``j: true`` updates spread over four collections, to tell a per-collection lock
   from a store-wide one; and one ``insert_many`` of as many users, for Bulk's batch; and
   ``insert_many`` of k = 1, 4, 16 and 64 users a command, one command at a time, j: true:
   whether a command of k documents costs one flush (the server's group commit,
   ``scim_server/storage/group_commit.py``, sends concurrent creations so).
2. **Through the server**: ``python -m scim_server serve`` (one worker, ``--rate-limit 0``) on
   a fresh store, loaded by wrk (``bench/wrk.py``) with 1, 4 and 16 connections: PATCH of a
   different user each request, POST /Users, and GET /Users/{id} as the read-only reference.

It prints and writes bench/results/write_path.json and .md, and a line marked
``"suite": "write_path"`` in history.jsonl. Nothing is asserted: it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection

from bench import history, report, workload, wrk
from bench.loadgen import user_document
from bench.run import RESULTS
from bench.seed import seed_tenant, stored_user
from bench.targets import Database, ForeignCpu, Server, settle

DATABASE = "scim_bench_write_path"
SUITE = "write_path"
TENANT = "w"
STORE_CONCURRENCY = (1, 4, 16, 64)
SERVER_CONNECTIONS = (1, 4, 16)
COLLECTIONS = 4
BATCH_SIZES = (1, 4, 16, 64)
"""Documents per ``insert_many`` command, in the group commit's measurement."""
FLUSHES = ("fsync", "fdatasync")
"""The system calls that flush a file to disk, counted in the store's process by strace."""


@dataclass(frozen=True)
class Sizes:
    writes: int
    """Writes per store measurement."""
    seconds: float
    """wrk's duration per server measurement."""
    users: int
    """Users seeded for the server's PATCHes and GETs."""

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(writes=400, seconds=3, users=1000)
        return cls(writes=2000, seconds=8, users=10_000)


Write = Callable[[int], Awaitable[Any]]


async def timed(write: Write, count: int, concurrency: int) -> dict[str, Any]:
    """``count`` calls of ``write(i)``, by ``concurrency`` tasks taking the next ``i``."""
    indexes = iter(range(count))

    async def worker() -> None:
        for index in indexes:
            await write(index)

    foreign = ForeignCpu()
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - began
    return {
        "writes": count,
        "concurrency": concurrency,
        "per_s": count / seconds,
        "foreign_cores": round(foreign.cores(), 3),
    }


def documents(count: int, prefix: str) -> list[dict[str, Any]]:
    """Users in the server's stored layout, built before any clock starts."""
    return [user_document(TENANT, *stored_user(f"{prefix}{i:07d}")) for i in range(count)]


def inserting(users: AsyncCollection[dict[str, Any]], fresh: list[dict[str, Any]]) -> Write:
    """Write ``i``: the ``insert_one`` of the ``i``-th new user."""

    async def write(index: int) -> Any:
        return await users.insert_one(fresh[index])

    return write


def inserting_many(
    users: AsyncCollection[dict[str, Any]], fresh: list[dict[str, Any]], k: int
) -> Write:
    """Write ``i``: one unordered ``insert_many`` of the ``i``-th ``k`` new users."""

    async def write(index: int) -> Any:
        return await users.insert_many(fresh[index * k : (index + 1) * k], ordered=False)

    return write


def updating(users: AsyncCollection[dict[str, Any]], ids: list[str]) -> Write:
    """Write ``i``: the server's conditional update of the ``i``-th user (a rename)."""

    async def write(index: int) -> Any:
        return await users.update_one(
            {"_id": ids[index], "tenant": TENANT, "meta.version": 1},
            {"$set": {"r.displayName": f"Renamed {index}"}, "$inc": {"meta.version": 1}},
        )

    return write


async def store_figures(uri: str, sizes: Sizes) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, tz_aware=True, maxPoolSize=2 * max(STORE_CONCURRENCY)
    )
    database = client[DATABASE]
    figures: dict[str, Any] = {}
    try:
        for journaled in (True, False):
            concern = WriteConcern(w=1, j=journaled)
            name = "j_true" if journaled else "j_false"
            users = database.get_collection("users", write_concern=concern)
            for concurrency in STORE_CONCURRENCY:
                label = f"{name}_c{concurrency}"
                fresh = documents(sizes.writes, f"{label}-")
                inserted = await timed(inserting(users, fresh), sizes.writes, concurrency)
                ids = [document["_id"] for document in fresh]
                updated = await timed(updating(users, ids), sizes.writes, concurrency)
                figures[f"insert_one_{label}"] = inserted
                figures[f"update_one_{label}"] = updated
                print(
                    f"store {label:10} insert_one {inserted['per_s']:8.1f}/s"
                    f"  update_one {updated['per_s']:8.1f}/s",
                    flush=True,
                )
        journaled_concern = WriteConcern(w=1, j=True)
        spread = [
            database.get_collection(f"spread{n}", write_concern=journaled_concern)
            for n in range(COLLECTIONS)
        ]
        fresh = documents(sizes.writes, "spread-")
        figures["insert_one_j_true_c16_spread"] = await timed(
            lambda i: spread[i % COLLECTIONS].insert_one(fresh[i]), sizes.writes, 16
        )
        users = database.get_collection("users", write_concern=journaled_concern)
        batch = documents(sizes.writes, "batch-")
        figures["insert_many_j_true"] = await timed(
            lambda _i: users.insert_many(batch, ordered=False), 1, 1
        ) | {"documents": len(batch)}
        figures["insert_many_j_true"]["per_s"] *= len(batch)
        for k in BATCH_SIZES:
            fresh = documents(sizes.writes, f"many{k}-")
            commands = await timed(inserting_many(users, fresh, k), sizes.writes // k, 1)
            # Counted in documents, as Bulk's batch is; the commands' rate is kept too.
            figures[f"insert_many_k{k}"] = commands | {
                "commands_per_s": commands["per_s"],
                "per_s": commands["per_s"] * k,
            }
            print(
                f"store insert_many of {k:2}, j_true: {commands['per_s']:8.1f} commands/s, "
                f"{commands['per_s'] * k:8.1f} documents/s",
                flush=True,
            )
        print(
            f"store spread over {COLLECTIONS} collections, c16, j_true: "
            f"{figures['insert_one_j_true_c16_spread']['per_s']:.1f}/s; insert_many of "
            f"{len(batch)}: {figures['insert_many_j_true']['per_s']:.1f} documents/s",
            flush=True,
        )
    finally:
        await client.close()
    return figures


class FlushCounter:
    """The flushes (``fsync``, ``fdatasync``) a process makes meanwhile, counted by strace.

    strace stops the process at every system call, so nothing is timed while it counts.
    """

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        self.process = subprocess.Popen(
            ["strace", "-f", "-c", "-e", f"trace={','.join(FLUSHES)}", "-p", str(pid)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=out.open("wb"),
        )
        time.sleep(1.0)  # strace attaches to every thread before it counts

    def stop(self) -> int:
        """Detach and return the flushes counted."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(30)
        calls = 0
        for line in self.out.read_text().splitlines():
            fields = line.split()
            if fields and fields[-1] in FLUSHES:
                calls += int(fields[3])
        return calls


async def flushes_per_write(uri: str, pid: int, sizes: Sizes, work: Path) -> dict[str, Any]:
    """Flushes per ``insert_one``, journaled one at a time and 16 at a time, and not journaled;
    and per journaled ``insert_many`` command of k documents (``batched``)."""
    if shutil.which("strace") is None:
        return {"available": False, "note": "strace is not installed"}
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    counted: dict[str, Any] = {}

    def collection(journaled: bool) -> AsyncCollection[dict[str, Any]]:
        return client[DATABASE].get_collection(
            "flushed", write_concern=WriteConcern(w=1, j=journaled)
        )

    async def flushes(label: str, write: Write, writes: int, concurrency: int) -> int:
        counter = FlushCounter(pid, work / f"strace-{label}.txt")
        try:
            await timed(write, writes, concurrency)
        finally:
            counted_flushes = await asyncio.to_thread(counter.stop)
        return counted_flushes

    try:
        for journaled, concurrency in ((True, 1), (True, 16), (False, 16)):
            label = f"{'j_true' if journaled else 'j_false'}_c{concurrency}"
            fresh = documents(sizes.writes, f"flush-{label}-")
            write = inserting(collection(journaled), fresh)
            counted[label] = {
                "writes": sizes.writes,
                "flushes": await flushes(label, write, sizes.writes, concurrency),
            }
            per_write = counted[label]["flushes"] / sizes.writes
            print(f"store {label:10} {per_write:.2f} flushes per write", flush=True)
        batched: dict[str, Any] = {}
        for k in BATCH_SIZES:
            fresh = documents(sizes.writes, f"flush-many{k}-")
            commands = sizes.writes // k
            write = inserting_many(collection(True), fresh, k)
            batched[str(k)] = {
                "commands": commands,
                "flushes": await flushes(f"many{k}", write, commands, 1),
            }
            print(
                f"store insert_many of {k:2}, j_true: "
                f"{batched[str(k)]['flushes'] / commands:.2f} flushes per command",
                flush=True,
            )
        counted["batched"] = batched
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as error:
        return {"available": False, "note": f"strace could not count: {error}"}
    finally:
        await client.close()
    return counted


def server_figures(server: Server, db: Database, sizes: Sizes, work: Path) -> dict[str, Any]:
    base_url, token = server.create_tenant(TENANT)
    seeded = seed_tenant(db.uri, DATABASE, TENANT, sizes.users, {})
    ids = tuple(seeded.users)
    shapes = {
        "patch_many": wrk.Shape(
            "patch_many",
            "PATCH",
            f"/Users/{wrk.KEY}",
            ids,
            workload.rename(wrk.UNIQUE),
            pick="cycle",
        ),
        "post": wrk.Shape("post", "POST", "/Users", body=workload.user_body(f"w{wrk.UNIQUE}")),
        "get": wrk.Shape("get", "GET", f"/Users/{wrk.KEY}", ids),
    }
    run = f"r{uuid.uuid4().hex[:8]}c"
    figures: dict[str, Any] = {}
    for key, shape in shapes.items():
        for connections in SERVER_CONNECTIONS:
            settle([server.pid, db.pid])
            foreign = ForeignCpu()
            load = wrk.Load(connections, sizes.seconds, f"{run}{connections}")
            result = wrk.measure(shape, base_url, token, work, load)
            result["foreign_cores"] = round(foreign.cores(), 3)
            figures[f"{key}_c{connections}"] = result
            print(
                f"server {key:10} c{connections:<3} {result['throughput']:8.1f}/s"
                f"  errors {result['errors']}  p50 {result['p50_ms']:.1f} ms"
                f"  foreign cores {result['foreign_cores']:.2f}",
                flush=True,
            )
    return figures


def scaling(figures: dict[str, Any], key: str, low: int, high: int) -> float | None:
    """Throughput at ``high`` concurrency ÷ at ``low``: 1 when writes take turns."""
    top, bottom = figures.get(f"{key}_c{high}"), figures.get(f"{key}_c{low}")
    if not top or not bottom:
        return None
    rate = "per_s" if "per_s" in top else "throughput"
    return float(top[rate] / bottom[rate]) if bottom[rate] else None


def kept(results: dict[str, Any]) -> dict[str, float]:
    store, server = results["store"], results["server"]
    figures = {
        "store_update_j_true_c16_vs_c1": scaling(store, "update_one_j_true", 1, 16),
        "store_update_j_false_c16_vs_c1": scaling(store, "update_one_j_false", 1, 16),
        "store_insert_j_true_c16_vs_c1": scaling(store, "insert_one_j_true", 1, 16),
        "server_patch_c16_vs_c1": scaling(server, "patch_many", 1, 16),
        "server_post_c16_vs_c1": scaling(server, "post", 1, 16),
        "server_get_c16_vs_c1": scaling(server, "get", 1, 16),
    }
    return {key: value for key, value in figures.items() if value is not None}


HISTORY_TITLES = {
    "store_update_j_true_c16_vs_c1": "store: update_one j:true, 16 ÷ 1 at a time",
    "store_update_j_false_c16_vs_c1": "store: update_one j:false, 16 ÷ 1 at a time",
    "store_insert_j_true_c16_vs_c1": "store: insert_one j:true, 16 ÷ 1 at a time",
    "server_patch_c16_vs_c1": "server: PATCH different users, 16 ÷ 1 connection",
    "server_post_c16_vs_c1": "server: POST /Users, 16 ÷ 1 connection",
    "server_get_c16_vs_c1": "server: GET /Users/{id}, 16 ÷ 1 connection",
}


def markdown(results: dict[str, Any], out: Path) -> str:
    store, server, sizes, machine = (
        results["store"],
        results["server"],
        results["config"],
        results["machine"],
    )

    def rate(row: dict[str, Any]) -> str:
        value = row.get("per_s", row.get("throughput"))
        mark = "*" if row["foreign_cores"] >= report.CONTENDED else ""
        return f"{value:,.0f}{mark}"

    store_rows = [
        f"| `{op}` | {'true' if name == 'j_true' else 'false'} | "
        + " | ".join(rate(store[f"{op}_{name}_c{c}"]) for c in STORE_CONCURRENCY)
        + " |"
        for name in ("j_true", "j_false")
        for op in ("insert_one", "update_one")
    ]
    server_rows = [
        f"| {title} | "
        + " | ".join(
            f"{rate(server[f'{key}_c{c}'])} ({server[f'{key}_c{c}']['p50_ms']:.1f} ms)"
            for c in SERVER_CONNECTIONS
        )
        + " |"
        for key, title in (
            ("patch_many", "PATCH /Users/{id}, a different user each"),
            ("post", "POST /Users"),
            ("get", "GET /Users/{id} (no write)"),
        )
    ]
    flushes = results["flushes"]
    if flushes.get("available") is False:
        flush_line = f"Flushes per write: not counted ({flushes['note']})."
    else:
        flush_line = (
            "Flushes (`fsync`, `fdatasync`) per `insert_one`, counted by strace in the "
            + (
                "store's process in a separate pass (nothing timed): "
                + ", ".join(
                    f"{row['flushes'] / row['writes']:.2f} with j: "
                    f"{'true' if label.startswith('j_true') else 'false'}, "
                    f"{label.rsplit('_c', 1)[1]} at a time"
                    for label, row in flushes.items()
                    if label != "batched"
                )
                + "; per `insert_many` command of k documents, j: true, one at a time: "
                + ", ".join(
                    f"{row['flushes'] / row['commands']:.2f} for k = {k}"
                    for k, row in flushes.get("batched", {}).items()
                )
                + "."
            )
        )
    spread = store["insert_one_j_true_c16_spread"]
    batch = store["insert_many_j_true"]
    return "\n".join(
        [
            "# The write path",
            "",
            f"{results['date']}, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"commit {machine.get('commit', '?')}, "
            f"`python -m bench.write_path{' --quick' if sizes['quick'] else ''}`.",
            "",
            "## The store alone (raw PyMongo on SecantusDB, on disk)",
            "",
            f"{sizes['writes']:,} writes per cell, in writes per second, by the number of "
            "concurrent tasks; * marks a cell during which other processes of the machine "
            f"took {report.CONTENDED} of a core or more.",
            "",
            "| write | j | " + " | ".join(f"{c} at a time" for c in STORE_CONCURRENCY) + " |",
            "|---|---|" + "--:|" * len(STORE_CONCURRENCY),
            *store_rows,
            "",
            f"`insert_one`, j: true, 16 at a time spread over {COLLECTIONS} collections: "
            f"{rate(spread)} per second. One `insert_many` of {batch['documents']:,} users, "
            f"j: true: {rate(batch)} documents per second. `insert_many` of k users a command, "
            "j: true, one command at a time, in documents per second: "
            + ", ".join(f"{rate(store[f'insert_many_k{k}'])} for k = {k}" for k in BATCH_SIZES)
            + ".",
            "",
            flush_line,
            "",
            "## Through the server (one worker, loaded by wrk)",
            "",
            f"Successful requests per second (p50), {sizes['seconds']:g} s per cell, "
            f"{sizes['users']:,} users seeded.",
            "",
            "| request | "
            + " | ".join(f"{c} connection{'s' if c > 1 else ''}" for c in SERVER_CONNECTIONS)
            + " |",
            "|---|" + "--:|" * len(SERVER_CONNECTIONS),
            *server_rows,
            "",
            *history.table(out, SUITE, sizes["quick"], HISTORY_TITLES),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.write_path", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer writes, shorter runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    sizes = Sizes.for_mode(args.quick)
    wrk.executable()  # fails early, saying how to install it
    with tempfile.TemporaryDirectory(prefix="scim-bench-write-path-") as tmp:
        work = Path(tmp)
        db = Database(work / "store")
        db.start()
        try:
            store = asyncio.run(store_figures(db.uri, sizes))
            flushes = asyncio.run(flushes_per_write(db.uri, db.pid, sizes, work))
        finally:
            db.stop()
        db = Database(work / "served")
        db.start()
        server = Server(db.uri, DATABASE, work / "server.log")
        try:
            server.start()
            served = server_figures(server, db, sizes, work)
        finally:
            server.stop()
            db.stop()
    run = history.results(args.quick, sizes, store=store, flushes=flushes, server=served)
    history.publish(args.out, "write_path", SUITE, run, kept(run), markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
