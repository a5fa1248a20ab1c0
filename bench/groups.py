"""Large groups, small to large: ``python -m bench.groups [--quick] [--huge]``.

What reading and changing a group costs as it grows: a group of 1,000 members against one of
50,000 (``--huge`` adds 100,000; ``--quick``: 1,000 against 5,000). This starts
``python -m scim_server serve`` (one worker, default settings) on a SecantusDB in a temporary
directory, seeds one tenant straight into the database (``bench/seed.py``: the groups, their
members, and 2,000 users in no group), then, one request at a time over HTTP:

1. ``GET /Groups/{id}`` with its members: the time to the first byte of the body, the time to
   the last (per member), and the server's peak memory (VmHWM) after reading each size, the
   sizes in increasing order;
2. ``PATCH`` adding one member, as IdPs send it (no query: the default answer, 204), and
   removing it again;
3. ``PATCH`` adding k members at once, k = 100 and 1,000 (and 2,000 unless ``--quick``), as
   IdPs send it, then removing them: the cost per member.

Each figure is the median of its repetitions. The ratios set the large group against the small
one (and k = 1,000 against k = 100), each next to its target of at most 1.5 (issue 14: cost
must not grow with the data). Writes bench/results/groups.json and groups.md and a line marked
``"suite": "groups"`` in history.jsonl. Nothing is asserted.
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
import orjson

from bench import report
from bench.run import RESULTS
from bench.seed import seed_tenant
from bench.targets import ForeignCpu, peak_memory_kb, server_on_new_store

DATABASE = "scim_bench_groups"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TARGET_RATIO = 1.5
SPARE = 2000
"""Users in no group: the members the PATCHes add and remove."""


@dataclass(frozen=True)
class Sizes:
    groups: tuple[int, ...]
    ks: tuple[int, ...]
    gets: int
    single_patches: int
    k_rounds: int

    @classmethod
    def for_mode(cls, quick: bool, huge: bool) -> Sizes:
        if quick:
            return cls((1000, 5000), (100, 1000), gets=3, single_patches=20, k_rounds=1)
        groups = (1000, 50_000, 100_000) if huge else (1000, 50_000)
        return cls(groups, (100, 1000, 2000), gets=5, single_patches=50, k_rounds=3)


def members_patch(op: str, members: list[str]) -> bytes:
    values = [{"value": member} for member in members]
    body = {"schemas": [PATCH_OP], "Operations": [{"op": op, "path": "members", "value": values}]}
    return json.dumps(body).encode()


class Client:
    """One tenant's SCIM API, one request at a time."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self.session = session
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    async def read_group(self, group: str) -> dict[str, float]:
        """One GET of the group with its members: seconds to the first byte and to the last."""
        began = time.perf_counter()
        async with self.session.get(
            f"{self.base_url}/Groups/{group}", headers=self.headers
        ) as response:
            size = len(await response.content.readany())
            first = time.perf_counter() - began
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
            if response.status != 200:
                raise RuntimeError(f"GET group: {response.status}")
        return {"first_byte_s": first, "last_byte_s": time.perf_counter() - began, "bytes": size}

    async def patch(self, group: str, body: bytes) -> float:
        """One PATCH as IdPs send it (no query); seconds until its 204."""
        began = time.perf_counter()
        async with self.session.patch(
            f"{self.base_url}/Groups/{group}", data=body, headers=self.headers
        ) as response:
            await response.read()
            if response.status != 204:
                raise RuntimeError(f"PATCH group: {response.status} {await response.text()}")
        return time.perf_counter() - began


def median_ms(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1000, 2)


async def reads(client: Client, groups: dict[int, str], sizes: Sizes, pid: int) -> dict[str, Any]:
    """GET of each group, smallest first, with the server's peak memory after each size."""
    figures: dict[str, Any] = {"baseline_kb": peak_memory_kb(pid)}
    for size, group in groups.items():
        foreign = ForeignCpu()
        runs = [await client.read_group(group) for _ in range(sizes.gets)]
        last = median_ms([run["last_byte_s"] for run in runs])
        figures[str(size)] = {
            "first_byte_ms": median_ms([run["first_byte_s"] for run in runs]),
            "last_byte_ms": last,
            "per_member_us": round(last * 1000 / size, 2),
            "bytes": int(runs[0]["bytes"]),
            "peak_kb": peak_memory_kb(pid),
            "foreign_cores": round(foreign.cores(), 2),
        }
    return figures


async def single_patches(
    client: Client, groups: dict[int, str], spare: list[str], sizes: Sizes
) -> dict[str, Any]:
    """Adding one member to each group and removing it again, as IdPs send it."""
    figures: dict[str, Any] = {}
    for size, group in groups.items():
        foreign = ForeignCpu()
        added: list[float] = []
        removed: list[float] = []
        for member in spare[: sizes.single_patches]:
            added.append(await client.patch(group, members_patch("add", [member])))
            removed.append(await client.patch(group, members_patch("remove", [member])))
        figures[str(size)] = {
            "add_ms": median_ms(added),
            "remove_ms": median_ms(removed),
            "requests": len(added) + len(removed),
            "foreign_cores": round(foreign.cores(), 2),
        }
    return figures


async def k_patches(
    client: Client, groups: dict[int, str], spare: list[str], sizes: Sizes
) -> dict[str, Any]:
    """Adding k members at once to each group and removing them: milliseconds per member."""
    figures: dict[str, Any] = {}
    for size, group in groups.items():
        for k in sizes.ks:
            foreign = ForeignCpu()
            added: list[float] = []
            removed: list[float] = []
            for _ in range(sizes.k_rounds):
                added.append(await client.patch(group, members_patch("add", spare[:k])))
                removed.append(await client.patch(group, members_patch("remove", spare[:k])))
            figures[f"{size}/{k}"] = {
                "add_ms_per_member": round(median_ms(added) / k, 3),
                "remove_ms_per_member": round(median_ms(removed) / k, 3),
                "rounds": sizes.k_rounds,
                "foreign_cores": round(foreign.cores(), 2),
            }
    return figures


def ratios(figures: dict[str, Any], sizes: Sizes) -> list[dict[str, Any]]:
    """Each row's large figure over its small one (and k = 1,000 over k = 100)."""
    small = str(sizes.groups[0])
    k_small, k_large = sizes.ks[0], sizes.ks[1]
    rows: list[dict[str, Any]] = []

    def row(key: str, label: str, scenario: str, field: str, low: str, high: str) -> None:
        section = figures[scenario]
        value = section[high][field] / section[low][field]
        contended = [
            name for name in (low, high) if section[name]["foreign_cores"] >= report.CONTENDED
        ]
        rows.append(
            {
                "key": key,
                "label": label,
                "low": section[low][field],
                "high": section[high][field],
                "value": round(value, 3),
                "contended": contended,
            }
        )

    for size in sizes.groups[1:]:
        large = str(size)
        pair = f"{_label(int(small))} → {_label(size)} members"
        row(
            f"get_first_byte_{large}",
            f"GET group, first byte, {pair}",
            "get",
            "first_byte_ms",
            small,
            large,
        )
        row(
            f"get_per_member_{large}",
            f"GET group, time per member, {pair}",
            "get",
            "per_member_us",
            small,
            large,
        )
        row(
            f"patch_add_one_{large}",
            f"PATCH add 1 member (204), {pair}",
            "single",
            "add_ms",
            small,
            large,
        )
        row(
            f"patch_remove_one_{large}",
            f"PATCH remove 1 member (204), {pair}",
            "single",
            "remove_ms",
            small,
            large,
        )
        row(
            f"patch_k{k_large}_per_member_{large}",
            f"PATCH add {k_large:,} members, per member, {pair}",
            "k",
            "add_ms_per_member",
            f"{small}/{k_large}",
            f"{large}/{k_large}",
        )
    for size in sizes.groups:
        row(
            f"patch_k_per_member_{size}",
            f"PATCH add k members, per member, k = {k_small:,} → {k_large:,}, "
            f"{_label(size)}-member group",
            "k",
            "add_ms_per_member",
            f"{size}/{k_small}",
            f"{size}/{k_large}",
        )
    return rows


def _label(size: int) -> str:
    return f"{size // 1000}k" if size % 1000 == 0 else f"{size:,}"


def markdown(results: dict[str, Any]) -> str:
    figures, config, machine = results["figures"], results["config"], results["machine"]
    flags = (" --quick" if config["quick"] else "") + (" --huge" if config["huge"] else "")
    get_rows = [
        f"| {size:,} | {row['first_byte_ms']} | {row['last_byte_ms']} | {row['per_member_us']} "
        f"| {row['bytes']:,} | {row['peak_kb'] / 1024:,.0f} | {row['foreign_cores']} |"
        for size in config["groups"]
        for row in (figures["get"][str(size)],)
    ]
    single_rows = [
        f"| {size:,} | {row['add_ms']} | {row['remove_ms']} | {row['foreign_cores']} |"
        for size in config["groups"]
        for row in (figures["single"][str(size)],)
    ]
    k_rows = [
        f"| {size:,} | {k:,} | {row['add_ms_per_member']} | {row['remove_ms_per_member']} "
        f"| {row['foreign_cores']} |"
        for size in config["groups"]
        for k in config["ks"]
        for row in (figures["k"][f"{size}/{k}"],)
    ]
    ratio_rows = [
        f"| {row['label']} | {row['low']} | {row['high']} | {row['value']} | "
        f"{'met' if row['value'] <= TARGET_RATIO else 'missed'}"
        f"{' (contended)' if row['contended'] else ''} |"
        for row in results["ratios"]
    ]
    return "\n".join(
        [
            "# Large groups: cost from small to large",
            "",
            f"{results['date']}, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"commit {machine.get('commit', '?')}, `python -m bench.groups{flags}`. One worker, "
            "default settings, SecantusDB; one request at a time; medians. `foreign cores` is "
            "the CPU other processes of the machine took meanwhile.",
            "",
            "## Ratios (target: at most 1.5)",
            "",
            "| row | small | large | ratio | verdict |",
            "|---|---|---|---|---|",
            *ratio_rows,
            "",
            "## GET /Groups/{id} with its members",
            "",
            f"Server peak memory (VmHWM) before the first GET: "
            f"{figures['get']['baseline_kb'] / 1024:,.0f} MiB; each row's is after its GETs. "
            "A document of at most 256 KiB is sent whole (its first byte is its last); a "
            "longer one is streamed once its first 256 KiB are ready, so a large group's "
            "first byte should not move from one large size to the next.",
            "",
            "| members | first byte ms | last byte ms | µs per member | bytes | peak MiB "
            "| foreign cores |",
            "|---|---|---|---|---|---|---|",
            *get_rows,
            "",
            "## PATCH add / remove 1 member, as IdPs send it (204)",
            "",
            "| members | add ms | remove ms | foreign cores |",
            "|---|---|---|---|",
            *single_rows,
            "",
            "## PATCH add / remove k members at once (204): ms per member",
            "",
            "| members | k | add | remove | foreign cores |",
            "|---|---|---|---|---|",
            *k_rows,
            "",
        ]
    )


def write(results: dict[str, Any], out: Path) -> None:
    """groups.json, groups.md, and this run's ratios in history.jsonl (as ``suite`` groups)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "groups.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (out / "groups.md").write_text(markdown(results))
    contended = {row["key"]: row["contended"] for row in results["ratios"] if row["contended"]}
    report.append_suite_history(out, results, "groups", contended)


async def measure(
    tenant: tuple[str, str], pid: int, groups: dict[int, str], spare: list[str], sizes: Sizes
) -> dict[str, Any]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        client = Client(session, *tenant)
        return {
            "get": await reads(client, groups, sizes, pid),
            "single": await single_patches(client, groups, spare, sizes),
            "k": await k_patches(client, groups, spare, sizes),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.groups", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="groups of 1,000 and 5,000")
    parser.add_argument("--huge", action="store_true", help="a group of 100,000 too")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    sizes = Sizes.for_mode(args.quick, args.huge)
    with server_on_new_store("scim-bench-groups-", DATABASE) as (db, server):
        tenant = server.create_tenant("groups")
        largest = max(sizes.groups)
        seeded = seed_tenant(
            db.uri, DATABASE, "groups", largest + SPARE, {f"g{size}": size for size in sizes.groups}
        )
        groups = {size: seeded.groups[f"g{size}"] for size in sizes.groups}
        figures = asyncio.run(measure(tenant, server.pid, groups, seeded.users[largest:], sizes))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "config": {"quick": args.quick, "huge": args.huge, **vars(sizes)},
        "figures": figures,
    }
    results["ratios"] = ratios(figures, sizes)
    write(results, args.out)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
