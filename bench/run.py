"""The benchmark, in one command: ``python -m bench.run [--quick]`` (``make bench``).

It starts a SecantusDB, this server on it, and the peer (scim2-server in memory),
seeds them, and measures every scenario with the same load generator
(bench/loadgen.py, its own process), then writes bench/results/latest.{json,md}
and ratios.png. Nothing it measures is asserted: it reports.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import orjson

from bench import report, workload
from bench.report import Target
from bench.seed import (
    Seeded,
    count_members,
    member_of_mismatches,
    seed_tenant,
    stored_user,
)
from bench.targets import (
    ROOT,
    Database,
    ForeignCpu,
    Peer,
    Server,
    create_group,
    http,
    peak_memory_kb,
    settle,
)

RESULTS = ROOT / "bench" / "results"
DATABASE = "scim_bench"
SLIM = "?excludedAttributes=members"


@dataclass(frozen=True)
class Budget:
    """How much each scenario may run, and how large the large data is."""

    seconds: float
    requests: int
    big_users: int
    mid_group: int
    big_group: int
    bulk_batches: int
    writes_per_writer: int
    slow_timeout: float
    """Seconds a PATCH answering a whole large group may take before it counts as failed."""
    concurrency: int
    small_users: int = 1000
    small_group: int = 10
    writers: int = 32
    warmup: int = 50

    @classmethod
    def for_mode(cls, quick: bool, concurrency: int) -> Budget:
        if quick:
            return cls(
                seconds=2.0,
                requests=400,
                big_users=5_000,
                mid_group=500,
                big_group=5_000,
                bulk_batches=1,
                writes_per_writer=4,
                slow_timeout=10.0,
                concurrency=concurrency,
                warmup=20,
            )
        return cls(
            seconds=8.0,
            requests=5_000,
            big_users=100_000,
            mid_group=10_000,
            big_group=100_000,
            bulk_batches=3,
            writes_per_writer=20,
            slow_timeout=45.0,
            concurrency=concurrency,
        )


def size_label(size: int) -> str:
    return f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size)


class Bench:
    def __init__(self, budget: Budget, work: Path) -> None:
        self.budget = budget
        self.work = work
        self.rng = random.Random(7)
        self.started = time.monotonic()

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", flush=True)

    # -- running one scenario -----------------------------------------------------------

    def measure(
        self,
        target: Target,
        key: str,
        description: str,
        plan: dict[str, Any],
        pids: dict[str, int],
        concurrency: int | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Run one scenario in a load-generator process; ``options`` go into the plan."""
        plan = {
            "concurrency": concurrency or self.budget.concurrency,
            "time_budget": self.budget.seconds,
            **plan,
            **options,
        }
        plan_path = self.work / f"plan-{target.name}-{key}.json"
        out_path = self.work / f"out-{target.name}-{key}.json"
        plan_path.write_bytes(orjson.dumps(plan))
        lane = max((len(lane) for lane in plan["lanes"]), default=1)
        limit = (
            plan["time_budget"]
            + plan.get("grace", max(30.0, 2 * plan["time_budget"]))
            + 2 * lane * plan.get("request_timeout", 120)
            + 120
        )
        others = ForeignCpu()
        subprocess.run(
            [sys.executable, "-m", "bench.loadgen", str(plan_path), str(out_path)],
            cwd=ROOT,
            check=True,
            timeout=limit,
        )
        result: dict[str, Any] = orjson.loads(out_path.read_bytes())
        result["other_cpu_cores"] = round(others.cores(), 3)
        result["stolen_cpu_cores"] = round(others.stolen(), 3)
        result["description"] = description
        result["concurrency"] = plan["concurrency"]
        result["request_timeout_s"] = plan.get("request_timeout", 120)
        result["peak_memory_kb"] = {role: peak_memory_kb(pid) for role, pid in pids.items()}
        target.scenarios[key] = result
        labels = ", ".join(
            f"{label} p50 {report.ms(s['p50_ms'])} p99 {report.ms(s['p99_ms'])}"
            for label, s in result["labels"].items()
        )
        self.log(
            f"{target.name:6} {key:18} c={result['concurrency_used']:<3}"
            f"{result['throughput']:8.1f}/s  ok {result['ok']:5}"
            f"  err {result['errors']}  {labels}"
            f"  others {result['other_cpu_cores']:.2f} cores"
            f" stolen {result['stolen_cpu_cores']:.2f}"
        )
        settle(list(pids.values()))
        if result["error_samples"]:
            self.log(f"       first error: {result['error_samples'][0][:200]}")
        return result

    def http_plan(
        self,
        base_url: str,
        token: str,
        lanes: list[workload.Lane],
        warmup: list[workload.Lane] | None = None,
    ) -> dict[str, Any]:
        return {
            "kind": "http",
            "base_url": base_url,
            "lanes": lanes,
            "warmup": warmup or [],
            "headers": {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/scim+json",
                "Accept": "application/scim+json",
            },
        }

    def count(self, lanes: int | None = None) -> int:
        return min(self.budget.requests, lanes or self.budget.requests)

    # -- the scenarios shared by this server and the peer --------------------------------

    def small_groups(self) -> dict[str, int]:
        """The small tenant's groups: the 10-member one, and one holding its first half.

        The second half of the users is in no group (a GET reads one document); the
        users between the two groups' ends are in exactly one group (a GET also reads
        their memberships and their groups' names), as are the large tenant's readers.
        """
        return {"small": self.budget.small_group, "half": self.budget.small_users // 2}

    def in_one_group(self) -> slice:
        """The small tenant's users in exactly one group (the half one)."""
        return slice(self.budget.small_group, self.budget.small_users // 2)

    def in_no_group(self, seeded: Seeded) -> slice:
        return slice(self.budget.small_users // 2, len(seeded.users))

    def small_outsiders(self, seeded: Seeded) -> dict[str, list[str]]:
        """Users outside the 10-member group, a third for each of its add/remove variants."""
        outsiders = seeded.users[self.budget.small_group :]
        third = len(outsiders) // 3
        return {
            "slim": outsiders[:third],
            "full": outsiders[third : 2 * third],
            "idp": outsiders[2 * third :],
        }

    def post_scenario(self, target: Target, crud: tuple[str, str], pids: dict[str, int]) -> None:
        """POST /Users, on a tenant (or a peer store) of its own."""
        names = [f"post{i:07d}" for i in range(self.count())]
        warm = [f"warm{i:07d}" for i in range(self.budget.warmup)]
        self.measure(
            target,
            "post_user",
            "POST /Users",
            self.http_plan(*crud, workload.post_users(names), workload.post_users(warm)),
            pids,
        )

    def read_scenarios(
        self,
        target: Target,
        small: tuple[str, str],
        seeded: Seeded,
        pids: dict[str, int],
        before: Callable[[str], None] = lambda op: None,
    ) -> None:
        """GET /Users/{id} and userName eq on the 1,000 users, each right after ``before``
        ran its raw-driver counterpart, so that a ratio compares measures a moment apart.

        GET reads users in no group (one document, like raw find_one), then users in one
        group (the user, then its memberships joined to their groups); the filter reads users in
        one group, as in the large tenant.
        """
        b, rng, n = self.budget, self.rng, self.count()
        alone = seeded.users[self.in_no_group(seeded)]
        grouped = seeded.users[self.in_one_group()]
        user_names = seeded.user_names[self.in_one_group()]
        before("find_one_id")
        self.measure(
            target,
            "get_user",
            "GET /Users/{id} (user in no group)",
            self.http_plan(
                *small, workload.get_users(alone, n, rng), workload.get_users(alone, b.warmup, rng)
            ),
            pids,
        )
        self.measure(
            target,
            "get_user_grouped",
            "GET /Users/{id} (user in one group)",
            self.http_plan(
                *small,
                workload.get_users(grouped, n, rng),
                workload.get_users(grouped, b.warmup, rng),
            ),
            pids,
        )
        before("find_one_userName")
        self.measure(
            target,
            "filter_eq_small",
            f"filter=userName eq, {size_label(b.small_users)} users",
            self.http_plan(
                *small,
                workload.filter_user_name(user_names, n, rng),
                workload.filter_user_name(user_names, b.warmup, rng),
            ),
            pids,
        )

    def small_scenarios(
        self, target: Target, base: str, token: str, seeded: Seeded, pids: dict[str, int]
    ) -> None:
        """Lists, PATCH and the 10-member group on the 1,000-user tenant."""
        b, rng, n = self.budget, self.rng, self.count()
        ids = seeded.users
        small = size_label(b.small_users)
        self.measure(
            target,
            "list_page_small",
            f"sortBy=userName page of 50, {small} users",
            self.http_plan(base, token, workload.sorted_pages(len(ids), n, rng)),
            pids,
        )
        self.measure(
            target,
            "patch_user",
            "PATCH /Users/{id} replace displayName",
            self.http_plan(base, token, workload.patch_users(ids, n)),
            pids,
        )
        group = seeded.groups["small"]
        outsiders = self.small_outsiders(seeded)
        for key, members, query in (
            ("group_small_slim", outsiders["slim"], SLIM),
            ("group_small", outsiders["full"], ""),
        ):
            lanes = workload.member_cycles(
                group, members[: self.count() // 2], present=False, query=query
            )
            self.measure_group(
                target,
                key,
                self.group_description(b.small_group, query, target.name),
                self.http_plan(base, token, lanes),
                pids,
            )

    def measure_group(
        self,
        target: Target,
        key: str,
        description: str,
        plan: dict[str, Any],
        pids: dict[str, int],
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Member add/remove, one request at a time: the cost of one operation at that size.

        A slow request may run up to ``timeout``; the time budget still stops the
        scenario after the lane in flight.
        """
        return self.measure(
            target,
            key,
            description,
            plan,
            pids,
            concurrency=1,
            adaptive=False,
            request_timeout=timeout,
            grace=2 * timeout,
            stop_on_timeout=True,
        )

    def group_description(
        self, size: int, query: str, target: str = "server", no_content: bool = False
    ) -> str:
        answer = " (?excludedAttributes=members)" if query else " (full group answered)"
        if no_content:
            answer = " (no query, server answers 204: IdP-shaped)"
        elif target == "peer" and not query:
            answer = " (no query, the peer answers 204)"
        return f"PATCH add/remove 1 member, {size_label(size)}-member group{answer}"

    def no_content_scenarios(
        self,
        ours: Target,
        db: Database,
        tenants: dict[str, tuple[str, str]],
        small: Seeded,
        big: Seeded,
    ) -> None:
        """Member add/remove as identity providers send it (no query parameters) to a
        second server process on the same database, started with
        ``--group-patch-response no-content``: at 10, 10,000 and 100,000 members."""
        b = self.budget
        server = Server(
            db.uri, DATABASE, self.work / "server-204.log", group_patch_response="no-content"
        )
        server.start()
        try:
            pids = {"server": server.pid, "db": db.pid}

            def base(role: str) -> tuple[str, str]:
                url, token = tenants[role]
                return url.replace(urlsplit(url).netloc, f"127.0.0.1:{server.port}"), token

            lanes = workload.member_cycles(
                small.groups["small"],
                self.small_outsiders(small)["idp"][: self.count() // 2],
                present=False,
            )
            self.measure_group(
                ours,
                "group_small_idp",
                self.group_description(b.small_group, "", no_content=True),
                self.http_plan(*base("small"), lanes),
                pids,
            )
            for role, size in (("mid", b.mid_group), ("big", b.big_group)):
                members = self.rng.sample(big.users[:size], min(size, self.count() // 2))
                lanes = workload.member_cycles(big.groups[role], members, present=True)
                self.measure_group(
                    ours,
                    f"group_{role}_idp",
                    self.group_description(size, "", no_content=True),
                    self.http_plan(*base("big"), lanes),
                    pids,
                )
            ours.memory["server_204_kb"] = peak_memory_kb(server.pid)
        finally:
            server.stop()

    def bulk_scenario(self, target: Target, base: str, token: str, pids: dict[str, int]) -> None:
        """Bulk requests of 1,000 creates, on the tenant POST /Users wrote to."""
        b = self.budget
        status, _body = http("POST", f"{base}/Bulk", token, workload.bulk_body(["bulkprobe"]))
        if status != 200:
            target.scenarios["bulk_1000"] = {
                "available": False,
                "description": "POST /Bulk, 1,000 creates",
                "note": f"not available: /Bulk answered {status}",
            }
            self.log(f"{target.name:6} bulk_1000: not available ({status})")
            return
        batches = [[f"bulk{j:03d}x{i:04d}" for i in range(1000)] for j in range(b.bulk_batches)]
        result = self.measure(
            target,
            "bulk_1000",
            "POST /Bulk, 1,000 creates",
            self.http_plan(base, token, workload.bulks(batches)),
            pids,
            concurrency=1,
            adaptive=False,
        )
        created = self.total(base, token, 'userName sw "bulk"') - 1
        result["created"] = created
        result["creates_per_s"] = created / result["wall_s"] if result["wall_s"] else 0.0

    def total(self, base: str, token: str, scim_filter: str) -> int:
        status, body = http("GET", f"{base}/Users?count=0&filter={quote(scim_filter)}", token)
        return int(body["totalResults"]) if status == 200 else -1

    def big_scenarios(
        self, target: Target, base: str, token: str, seeded: Seeded, pids: dict[str, int]
    ) -> dict[str, Any]:
        b, rng, n = self.budget, self.rng, self.count()
        ids = seeded.users
        names = seeded.user_names[b.mid_group :]  # in exactly one group, like the small tenant's
        big = size_label(b.big_users)
        self.measure(
            target,
            "filter_eq_big",
            f"filter=userName eq, {big} users",
            self.http_plan(
                base,
                token,
                workload.filter_user_name(names, n, rng),
                workload.filter_user_name(names, b.warmup, rng),
            ),
            pids,
        )
        self.measure(
            target,
            "list_page_big",
            f"sortBy=userName page of 50, {big} users",
            self.http_plan(base, token, workload.sorted_pages(len(ids), n, rng)),
            pids,
        )
        for role, size in (("mid", b.mid_group), ("big", b.big_group)):
            members = rng.sample(ids[:size], min(size, n // 2))
            lanes = workload.member_cycles(seeded.groups[role], members, present=True, query=SLIM)
            self.measure_group(
                target,
                f"group_{role}_slim",
                self.group_description(size, SLIM, target.name),
                self.http_plan(base, token, lanes),
                pids,
            )
        # 32 writers on one new group, each adding its own members.
        group = create_group(base, token, "writers")
        wanted = ids[-b.writers * b.writes_per_writer :]
        result = self.measure(
            target,
            "writers_32",
            f"{b.writers} concurrent writers adding {len(wanted)} members to one group",
            self.http_plan(base, token, workload.concurrent_writers(group, wanted, b.writers)),
            pids,
            concurrency=b.writers,
            adaptive=False,
        )
        status, body = http("GET", f"{base}/Groups/{group}?attributes=members", token)
        landed = {m["value"] for m in (body or {}).get("members", [])} if status == 200 else set()
        result["expected_members"] = len(wanted)
        result["landed_members"] = len(landed & set(wanted))
        result["all_landed"] = landed >= set(wanted)
        self.log(f"{target.name:6} writers_32: {result['landed_members']}/{len(wanted)} landed")
        return {"group": group, "wanted": wanted}

    def full_group_scenarios(
        self, target: Target, base: str, token: str, seeded: Seeded, pids: dict[str, int]
    ) -> None:
        """Member add/remove answered with the whole group, on the large groups.

        Last of a target's scenarios: a request that outlives its timeout keeps the
        server busy after the client gave up, so the scenario stops at the first
        timeout, a larger group is not tried after a smaller one timed out, and the
        server is stopped next.
        """
        b = self.budget
        previous: dict[str, Any] | None = None
        for role, size in (("mid", b.mid_group), ("big", b.big_group)):
            key, description = f"group_{role}", self.group_description(size, "", target.name)
            if previous is not None and previous["errors"] and not previous["ok"]:
                note = (
                    f"skipped: the {size_label(b.mid_group)}-member group already took "
                    f"longer than {b.slow_timeout:.0f} s"
                )
                target.scenarios[key] = {
                    "available": False,
                    "skipped": True,
                    "request_timeout_s": b.slow_timeout,
                    "description": description,
                    "note": note,
                }
                self.log(f"{target.name:6} {key}: {note}")
                continue
            members = self.rng.sample(seeded.users[:size], min(size, self.count() // 2))
            lanes = workload.member_cycles(seeded.groups[role], members, present=True)
            previous = self.measure_group(
                target,
                key,
                description,
                self.http_plan(base, token, lanes),
                pids,
                timeout=b.slow_timeout,
            )

    # -- the three targets ---------------------------------------------------------------

    def limit_op(
        self, target: Target, uri: str, small: Seeded, op: str, pids: dict[str, int]
    ) -> None:
        """One raw-driver scenario: insert_one, find_one_id or find_one_userName."""
        b, rng, n = self.budget, self.rng, self.count()
        base = {"kind": "mongo", "uri": uri, "database": DATABASE}
        if op == "insert_one":
            inserts = workload.inserts([stored_user(f"limit{i:07d}") for i in range(n)])
            warm = workload.inserts([stored_user(f"limitwarm{i:07d}") for i in range(b.warmup)])
            self.measure(
                target,
                "insert_one",
                "insert_one, server's user layout",
                {**base, "tenant": "limit", "lanes": inserts, "warmup": warm},
                pids,
            )
            return
        # The same users GET (in no group) and the filter (in one group) read.
        keys, description = small.users[self.in_no_group(small)], "find_one by _id (+ tenant)"
        if op == "find_one_userName":
            keys = [name.lower() for name in small.user_names[self.in_one_group()]]
            description = "find_one by indexed c.userName (+ tenant)"
        self.measure(
            target,
            op,
            description,
            {
                **base,
                "tenant": "small",
                "lanes": workload.finds(op, keys, n, rng),
                "warmup": workload.finds(op, keys, b.warmup, rng),
            },
            pids,
        )

    def run_server(self, db: Database, workers: int) -> tuple[Target, Target]:
        b = self.budget
        # Group PATCHes answer the whole group here, as the "(whole group)" rows measure; the
        # IdP-shaped rows go to a second server answering 204 (``no_content_scenarios``).
        server = Server(
            db.uri,
            DATABASE,
            self.work / "server.log",
            workers=workers,
            group_patch_response="resource",
        )
        server.start()
        limit, ours = Target("limit"), Target("server")
        try:
            pids = {"server": server.pid, "db": db.pid}
            tenants = {role: server.create_tenant(role) for role in ("small", "big", "crud")}
            self.log("seeding this server's tenants through PyMongo")
            small = seed_tenant(db.uri, DATABASE, "small", b.small_users, self.small_groups())
            big = seed_tenant(
                db.uri, DATABASE, "big", b.big_users, {"mid": b.mid_group, "big": b.big_group}
            )
            self.log(f"seeded {b.small_users} + {b.big_users} users")
            ours.memory["db_after_seed_kb"] = peak_memory_kb(db.pid)
            check_seed(*tenants["small"], small, b.small_group)
            for tenant, seeded in (("small", small), ("big", big)):
                # Every hundredth user: some in both groups, in one, and in none.
                wrong = member_of_mismatches(db.uri, DATABASE, tenant, seeded.users[::100])
                if wrong:
                    raise SystemExit(f"seeded gm hints disagree with the memberships: {wrong[:5]}")
            settle(list(pids.values()))

            def before(op: str) -> None:
                self.limit_op(limit, db.uri, small, op, {"db": db.pid})

            before("insert_one")
            self.post_scenario(ours, tenants["crud"], pids)
            self.read_scenarios(ours, tenants["small"], small, pids, before)
            self.small_scenarios(ours, *tenants["small"], small, pids)
            self.bulk_scenario(ours, *tenants["crud"], pids)
            writers = self.big_scenarios(ours, *tenants["big"], big, pids)
            stored = count_members(db.uri, DATABASE, "big", writers["group"])
            ours.scenarios["writers_32"]["stored_memberships"] = stored
            self.no_content_scenarios(ours, db, tenants, small, big)
            self.full_group_scenarios(ours, *tenants["big"], big, pids)
            ours.memory["server_kb"] = peak_memory_kb(server.pid)
            ours.memory["db_kb"] = peak_memory_kb(db.pid)
        finally:
            server.stop()
        return limit, ours

    def run_peer(self) -> Target:
        b = self.budget
        peer = Target("peer")
        small = Peer(
            self.work / "peer-small.json",
            self.work / "peer.log",
            b.small_users,
            self.small_groups(),
        )
        self.log("starting the peer with the small data")
        small.start()
        try:
            seeded = Seeded(
                small.seeded["users"], small.seeded["userNames"], small.seeded["groups"]
            )
            pids = {"peer": small.pid}
            tenant = (small.base_url, small.token)
            # One store: the reads and lists run before POST adds its users to it.
            self.read_scenarios(peer, tenant, seeded, pids)
            self.small_scenarios(peer, *tenant, seeded, pids)
            self.post_scenario(peer, tenant, pids)
            self.bulk_scenario(peer, *tenant, pids)
            peer.memory["peer_small_kb"] = peak_memory_kb(small.pid)
        finally:
            small.stop()
        big = Peer(
            self.work / "peer-big.json",
            self.work / "peer.log",
            b.big_users,
            {"mid": b.mid_group, "big": b.big_group},
        )
        self.log(f"starting the peer with {b.big_users} users")
        big.start()
        try:
            seeded = Seeded(big.seeded["users"], big.seeded["userNames"], big.seeded["groups"])
            self.big_scenarios(peer, big.base_url, big.token, seeded, {"peer": big.pid})
            self.full_group_scenarios(peer, big.base_url, big.token, seeded, {"peer": big.pid})
            peer.memory["peer_big_kb"] = peak_memory_kb(big.pid)
        finally:
            big.stop()
        return peer


def check_seed(base: str, token: str, seeded: Seeded, small_group: int) -> None:
    """Fail early if the server does not read the seeded layout as its own (the layout moved)."""
    status, body = http("GET", f"{base}/Users/{seeded.users[-1]}", token)
    if status != 200 or (body or {}).get("groups"):
        raise SystemExit(f"the seeded user in no group reads back as {status} {str(body)[:300]}")
    user = seeded.users[0]
    status, body = http("GET", f"{base}/Users/{user}", token)
    groups = {g["value"] for g in (body or {}).get("groups", [])} if status == 200 else set()
    if groups != set(seeded.groups.values()):
        raise SystemExit(
            f"seeded user {user} reads back with groups {groups}: "
            "bench/seed.py no longer follows the server's stored layout"
        )
    status, body = http("GET", f"{base}/Groups/{seeded.groups['small']}", token)
    members = (body or {}).get("members", []) if status == 200 else []
    if len(members) != small_group or not all(m.get("display") for m in members):
        raise SystemExit(
            f"the seeded group reads back as {status} {str(body)[:300]}: "
            "bench/seed.py no longer follows the server's stored layout"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 1-2 minute smoke run")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="connections of the load generator (default 16)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of this server (default 1)"
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the peer")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    budget = Budget.for_mode(args.quick, args.concurrency)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scim-bench-") as tmp:
        work = Path(tmp)
        bench = Bench(budget, work)
        db = Database(work / "db")
        db.start()
        try:
            limit, ours = bench.run_server(db, args.workers)
        finally:
            # Stopped before the peer runs, so that no work left over competes with it.
            db.stop()
        peer = None if args.no_peer else bench.run_peer()
        results = report.build(
            budget.__dict__
            | {
                "quick": args.quick,
                "server_workers": args.workers,
                "load_average_at_start": load_at_start,
            },
            limit,
            ours,
            peer,
        )
        report.write(results, args.out)
        bench.log(f"wrote {args.out}/latest.json, latest.md and ratios.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
