"""Ratios, pass/miss against the benchmark's targets, and the JSON, Markdown and PNG outputs."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import psutil

CONTENDED = 0.2
"""Cores taken by processes outside the benchmark above which a scenario is flagged."""
PACKAGES = (
    "aiohttp",
    "pymongo",
    "scim2-models",
    "scim2-server",
    "secantusdb",
    "uvicorn",
    "httptools",
    "orjson",
    "scim-toolkit",
)


@dataclass
class Target:
    """One measured system (the limit, this server, the peer) and what was measured on it."""

    name: str
    scenarios: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ratio:
    """numerator / denominator of one measure of two scenarios."""

    key: str
    title: str
    numerator: tuple[str, str, str]  # target, scenario, label ("" = the whole scenario)
    denominator: tuple[str, str, str]
    metric: str  # "throughput" (higher is better) or "p50_ms" (lower is better)
    target: float | None = None


THROUGHPUT_RATIOS = [
    Ratio(
        "post_vs_insert",
        "POST /Users ÷ insert_one",
        ("server", "post_user", ""),
        ("limit", "insert_one", ""),
        "throughput",
        0.5,
    ),
    Ratio(
        "get_vs_find",
        "GET /Users/{id}, user in no group ÷ find_one _id",
        ("server", "get_user", ""),
        ("limit", "find_one_id", ""),
        "throughput",
        0.6,
    ),
    Ratio(
        "get_grouped_vs_find",
        "GET /Users/{id}, user in one group ÷ find_one _id",
        ("server", "get_user_grouped", ""),
        ("limit", "find_one_id", ""),
        "throughput",
    ),
    Ratio(
        "filter_vs_find",
        "filter userName eq ÷ find_one c.userName",
        ("server", "filter_eq_small", ""),
        ("limit", "find_one_userName", ""),
        "throughput",
    ),
    *[
        Ratio(
            f"peer_{key}",
            f"{title} ÷ peer",
            ("server", key, ""),
            ("peer", key, ""),
            "throughput",
            1.0 if key in ("get_user", "post_user") else None,
        )
        for key, title in (
            ("get_user", "GET /Users/{id} (no group)"),
            ("post_user", "POST /Users"),
            ("get_user_grouped", "GET /Users/{id} (one group)"),
            ("filter_eq_small", "filter eq (small)"),
            ("filter_eq_big", "filter eq (large)"),
            ("patch_user", "PATCH user"),
            ("list_page_small", "sorted page"),
            ("group_big_slim", "large group add/remove (slim)"),
            ("bulk_1000", "Bulk 1,000"),
            ("writers_32", "32 writers"),
        )
    ],
    # The same request to both (no query parameters), both answering 204.
    *[
        Ratio(
            f"peer_group_{role}_idp",
            f"group {size} add/remove (204) ÷ peer",
            ("server", f"group_{role}_idp", ""),
            ("peer", f"group_{role}", ""),
            "throughput",
        )
        for role, size in (("small", "10"), ("big", "large"))
    ],
]


def _scaling(target: str) -> list[Ratio]:
    """Member add/remove p50, large group ÷ 10-member group, per kind of PATCH.

    The target is judged on the IdP-shaped PATCH (no query parameters) to a server
    answering 204 (``--group-patch-response no-content``); the other variants are shown.
    """
    ratios = []
    if target == "server":
        variants = [
            (" (204)", "_idp", 1.5),
            (" (slim)", "_slim", None),
            (" (whole group)", "", None),
        ]
    else:  # the peer answers a PATCH without query parameters with 204
        variants = [(" (204)", "", None), (" (slim)", "_slim", None)]
    for variant, suffix, goal in variants:
        for label in ("add", "remove"):
            ratios.append(
                Ratio(
                    f"{target}_group_{label}{suffix}",
                    f"{target}: member {label}{variant} large ÷ 10",
                    (target, f"group_big{suffix}", label),
                    (target, f"group_small{suffix}", label),
                    "p50_ms",
                    goal,
                )
            )
            if suffix == "_idp":
                ratios.append(
                    Ratio(
                        f"{target}_group_{label}_mid{suffix}",
                        f"{target}: member {label}{variant} 10k ÷ 10",
                        (target, f"group_mid{suffix}", label),
                        (target, f"group_small{suffix}", label),
                        "p50_ms",
                    )
                )
    ratios.append(
        Ratio(
            f"{target}_filter_scaling",
            f"{target}: userName eq large ÷ small",
            (target, "filter_eq_big", ""),
            (target, "filter_eq_small", ""),
            "p50_ms",
            1.5 if target == "server" else None,
        )
    )
    return ratios


SCALING_RATIOS = [*_scaling("server"), *_scaling("peer")]

CAUSES = {
    # What each compared pair differs in by construction, shown next to a miss. Measured
    # shares (where the CPU goes) are not written here, where they would go stale: they are
    # in bench/results/profile.md, which `python -m bench.profile` regenerates.
    "post_vs_insert": "on top of the insert, POST parses, validates and serializes the user "
    "(scim2-models) and reads the tenant's seat limit (at most every quarter second); see "
    "profile.md for where its CPU goes",
    "get_vs_find": "on top of its find_one, GET parses the HTTP request, checks the bearer "
    "token and writes the response on the same event loop; see profile.md",
    "peer_get_user": "the peer reads the user from a dict in its own process; this server's "
    "GET asks the database, another process on the same cores",
    "peer_post_user": "the peer writes to its own memory; this server writes to the database "
    "process (journaled), which competes for the same cores",
    # Not targets any more (the target is judged on the 204 answer), shown for reference.
    "server_group_add": "the default PATCH answer is the whole group, rendered from all its "
    "membership documents",
    "server_group_remove": "the default PATCH answer is the whole group, rendered from all its "
    "membership documents",
    # Notes on ratios without a target.
    "get_grouped_vs_find": "User.groups is derived from the memberships on every read",
    "peer_get_user_grouped": "the peer derives no User.groups; this server reads them from the "
    "memberships",
    "filter_vs_find": "the users read are in one group, so User.groups is derived for each",
}


# A miss against the peer next to what the raw driver alone reaches against it, same run.
DRIVER_ALONE = {
    "peer_get_user": ("find_one", ("limit", "find_one_id", "")),
    "peer_post_user": ("insert_one", ("limit", "insert_one", "")),
}


def _value(results: dict[str, Any], ref: tuple[str, str, str], metric: str) -> float | None:
    target, scenario, label = ref
    found = results["targets"].get(target, {}).get("scenarios", {}).get(scenario)
    if not found or found.get("available") is False:
        return None
    if label:
        found = found.get("labels", {}).get(label)
        if not found:
            return None
    elif metric == "p50_ms":
        labels = found.get("labels", {})
        found = next(iter(labels.values())) if len(labels) == 1 else None
        if found is None:
            return None
    value = found.get(metric)
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == 0:
        return None
    return float(value)


def _failure(results: dict[str, Any], ref: tuple[str, str, str]) -> tuple[str, float | None] | None:
    """Why the numerator has no value although it ran, and its timeout (ms) if it timed out."""
    target, scenario, _label = ref
    found = results["targets"].get(target, {}).get("scenarios", {}).get(scenario)
    if not found:
        return None
    timeout = float(found.get("request_timeout_s", 0)) * 1000 or None
    if found.get("skipped"):
        return str(found["note"]), timeout
    if found.get("available") is False or not found.get("errors"):
        return None
    samples = found.get("error_samples") or ["errors"]
    timed_out = any("no answer within" in sample for sample in samples)
    return f"no request of it succeeded: {samples[0][:160]}", timeout if timed_out else None


def compute_ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for ratio in [*THROUGHPUT_RATIOS, *SCALING_RATIOS]:
        top = _value(results, ratio.numerator, ratio.metric)
        bottom = _value(results, ratio.denominator, ratio.metric)
        value = top / bottom if top is not None and bottom is not None else None
        verdict, cause, lower_bound = "n/a", "", None
        failure = _failure(results, ratio.numerator) if top is None else None
        if failure is not None and failure[1] is not None and bottom is not None:
            # A request that timed out took at least the timeout.
            lower_bound = failure[1] / bottom if ratio.metric == "p50_ms" else None
        if ratio.target is not None and value is not None:
            higher = ratio.metric == "throughput"
            passed = value >= ratio.target if higher else value <= ratio.target
            verdict = "pass" if passed else "miss"
            cause = CAUSES.get(ratio.key, "") if verdict == "miss" else ""
            alone = DRIVER_ALONE.get(ratio.key)
            driver = _value(results, alone[1], ratio.metric) if alone else None
            if verdict == "miss" and alone and driver is not None and bottom is not None:
                cause += (
                    f"; raw {alone[0]} alone, with no HTTP at all, reaches "
                    f"{driver / bottom:.2f} of the peer in this run"
                )
        elif ratio.target is not None and failure is not None:
            verdict = "miss"
            cause = f"{CAUSES.get(ratio.key, '')}; {failure[0]}".lstrip("; ")
        elif value is not None or lower_bound is not None:
            verdict = "info"
        busy = [
            f"{ref[0]} {ref[1]}"
            for ref in (ratio.numerator, ratio.denominator)
            if _lost(results["targets"].get(ref[0], {}).get("scenarios", {}).get(ref[1]) or {})
            >= CONTENDED
        ]
        rows.append(
            {
                "key": ratio.key,
                "title": ratio.title,
                "metric": ratio.metric,
                "value": value,
                "contended": busy,
                "lower_bound": lower_bound,
                "target": ratio.target,
                "verdict": verdict,
                "numerator": top,
                "denominator": bottom,
                "cause": cause,
            }
        )
    return rows


def _ratio_text(row: dict[str, Any]) -> str:
    if row["value"] is not None:
        return _number(row["value"], 2)
    if row["lower_bound"] is not None:
        return f"≥ {_number(row['lower_bound'], 0)} (timed out)"
    return "-"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "commit": commit + ("+dirty" if dirty else ""),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def build(
    config: dict[str, Any], limit: Target, ours: Target, peer: Target | None
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": config,
        "targets": {
            target.name: {
                "scenarios": target.scenarios,
                "memory": target.memory,
                "notes": target.notes,
            }
            for target in (limit, ours, peer)
            if target is not None
        },
    }
    results["ratios"] = compute_ratios(results)
    return results


HISTORY = "history.jsonl"
SHOWN_RUNS = 6


def history_entry(results: dict[str, Any]) -> dict[str, Any]:
    """What a run leaves in history.jsonl: its targeted ratios and whether it was contended."""
    return {
        "date": results["date"],
        "commit": results["machine"]["commit"],
        "quick": results["config"]["quick"],
        "ratios": {
            row["key"]: row["value"] for row in results["ratios"] if row["target"] is not None
        },
        "contended": {
            row["key"]: row.get("contended", [])
            for row in results["ratios"]
            if row["target"] is not None and row.get("contended")
        },
    }


def append_suite_history(out: Path, results: dict[str, Any], suite: str, contended: Any) -> None:
    """A line of another suite's run in history.jsonl: its ratios, marked with ``suite`` (which
    ``latest.md`` leaves out), and what was contended."""
    entry = {
        "date": results["date"],
        "commit": results["machine"]["commit"],
        "quick": results["config"]["quick"],
        "suite": suite,
        "ratios": {row["key"]: row["value"] for row in results["ratios"]},
        "contended": contended,
    }
    with (out / HISTORY).open("ab") as history:
        history.write(orjson.dumps(entry) + b"\n")


def read_history(out: Path) -> list[dict[str, Any]]:
    path = out / HISTORY
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def write(results: dict[str, Any], out: Path) -> None:
    with (out / HISTORY).open("ab") as history:
        history.write(orjson.dumps(history_entry(results)) + b"\n")
    # Other suites (bench/saml.py) write their own lines, marked with theirs.
    runs = [
        run
        for run in read_history(out)
        if run["quick"] == results["config"]["quick"] and "suite" not in run
    ]
    results["recent_runs"] = runs[-SHOWN_RUNS:]
    (out / "latest.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (out / "latest.md").write_text(markdown(results))
    chart(results, out / "ratios.png")


def _recent(results: dict[str, Any]) -> list[str]:
    """The targeted ratios over the recent runs on this machine: how much they move."""
    runs = results.get("recent_runs") or []
    if len(runs) < 2:
        return []
    targeted = [row for row in results["ratios"] if row["target"] is not None]
    lines = [
        "## The targets over the recent runs",
        "",
        "The same ratios in the last runs recorded in `history.jsonl` (this one last); "
        "* marks a ratio one of whose scenarios ran contended. Everything shares two "
        "cores with whatever else the machine runs, so a ratio near its target can "
        "land on either side of it from one run to the next.",
        "",
        "| ratio | target | "
        + " | ".join(run["date"][5:16].replace("T", " ") for run in runs)
        + " |",
        "|---|--:|" + "--:|" * len(runs),
    ]
    for row in targeted:
        sign = "≥" if row["metric"] == "throughput" else "≤"
        cells = []
        for run in runs:
            value = run["ratios"].get(row["key"])
            mark = "*" if row["key"] in run.get("contended", {}) else ""
            cells.append("-" if value is None else f"{value:.2f}{mark}")
        lines.append(f"| {row['title']} | {sign} {row['target']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


# -- Markdown ------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _lost(scenario: dict[str, Any]) -> float:
    """Cores that processes outside the benchmark, or other guests of the VM, took meanwhile."""
    return float(scenario.get("other_cpu_cores", 0.0)) + float(
        scenario.get("stolen_cpu_cores", 0.0)
    )


def _others(scenario: dict[str, Any]) -> str:
    """Cores used by processes outside the benchmark meanwhile; bold from a fifth of a core."""
    cores = scenario.get("other_cpu_cores")
    if cores is None:
        return "-"
    text = f"{cores:.2f}"
    stolen = scenario.get("stolen_cpu_cores", 0.0)
    if stolen >= 0.01:
        text += f" + {stolen:.2f} stolen"
    return f"**{text}**" if _lost(scenario) >= CONTENDED else text


def _recorded(results: dict[str, Any]) -> bool:
    return any(
        "other_cpu_cores" in scenario
        for target in results["targets"].values()
        for scenario in target["scenarios"].values()
    )


def contended(results: dict[str, Any]) -> list[str]:
    """``target scenario`` of each scenario during which other processes took CPU."""
    return [
        f"{name} {key}"
        for name, target in results["targets"].items()
        for key, scenario in target["scenarios"].items()
        if _lost(scenario) >= CONTENDED
    ]


def _scenario_rows(results: dict[str, Any]) -> list[str]:
    rows = [
        "| scenario | target | conc. | throughput /s | p50 ms | p99 ms | ok | errors | other CPU |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, target in results["targets"].items():
        for scenario in target["scenarios"].values():
            if scenario.get("available") is False:
                rows.append(
                    f"| {scenario['description']} | {name} | | {scenario['note']} | | | | | |"
                )
                continue
            labels = scenario["labels"]

            def stat(metric: str, labels: dict[str, Any] = labels) -> str:
                if len(labels) == 1:
                    return _number(next(iter(labels.values()))[metric], 2)
                return " / ".join(f"{label} {_number(s[metric], 2)}" for label, s in labels.items())

            rows.append(
                f"| {scenario['description']} | {name} | {scenario['concurrency_used']} | "
                f"{_number(scenario['throughput'])} | {stat('p50_ms')} | {stat('p99_ms')} | "
                f"{scenario['ok']} | {scenario['errors'] + scenario['cancelled']} | "
                f"{_others(scenario)} |"
            )
    return rows


def _extras(results: dict[str, Any]) -> list[str]:
    lines = []
    for name, target in results["targets"].items():
        scenarios = target["scenarios"]
        writers = scenarios.get("writers_32")
        if writers and "expected_members" in writers:
            stored = writers.get("stored_memberships")
            lines.append(
                f"- {name}: 32 concurrent writers, {_number(writers['throughput'])} adds/s; "
                f"{writers['landed_members']}/{writers['expected_members']} members landed"
                + (f" ({stored} membership documents stored)" if stored is not None else "")
                + (" — all landed" if writers["all_landed"] else " — **LOST UPDATES**")
            )
        bulk = scenarios.get("bulk_1000")
        if bulk and bulk.get("available") is not False and "created" in bulk:
            lines.append(
                f"- {name}: Bulk of 1,000 creates: {_number(bulk['creates_per_s'])} "
                f"users/s, {bulk['created']} users created by "
                f"{bulk['ok']} requests"
            )
        if target["memory"]:
            memory = ", ".join(
                f"{role.removesuffix('_kb')} {value / 1024:,.0f} MiB"
                for role, value in target["memory"].items()
            )
            lines.append(f"- {name}: peak memory (VmHWM): {memory}")
        for note in target["notes"]:
            lines.append(f"- {name}: {note}")
    return lines


def markdown(results: dict[str, Any]) -> str:
    m, c = results["machine"], results["config"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        "# Benchmark results",
        "",
        f"Run {results['date']} at commit {m['commit']}"
        f"{' (--quick: smaller data, short budgets)' if c['quick'] else ''}.",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"{m['platform']}, Python {m['python']}; load average "
        f"{' / '.join(str(x) for x in c.get('load_average_at_start', []))} at the start, "
        f"{' / '.join(str(x) for x in m['load_average_at_end'])} at the end",
        f"- Versions: {versions}",
        f"- Load: {c['concurrency']} concurrent connections, at most {c['requests']} "
        f"requests or {c['seconds']} s per scenario, one load-generator process; this server "
        f"with {c['server_workers']} worker(s) on SecantusDB; the peer is scim2-server's "
        "in-memory storage under uvicorn (asyncio loop, httptools). Everything shares the "
        "same cores.",
        f"- Data: {c['small_users']:,} users (small tenant: a {c['small_group']}-member group, "
        "a group of its first half, the second half in no group); "
        f"{c['big_users']:,} users (large tenant, groups of {c['mid_group']:,} and "
        f"{c['big_group']:,} members)",
        "- Differences in kind: the peer keeps everything in its own memory, derives no "
        "User.groups, and answers a PATCH with 204 and no body unless attributes are asked for; "
        "this server answers 200 with the resource, except the (204) group rows: a second "
        "server process on the same database, started with --group-patch-response "
        "no-content. Group member add/remove runs one request at a time. See bench/README.md "
        "for the method.",
        "",
        "## Targets",
        "",
        "| ratio | value | target | verdict | cause of a miss |",
        "|---|--:|--:|---|---|",
    ]
    for row in results["ratios"]:
        if row["target"] is None:
            continue
        sign = "≥" if row["metric"] == "throughput" else "≤"
        lines.append(
            f"| {row['title']} ({'throughput' if sign == '≥' else 'p50'}) | "
            f"{_ratio_text(row)} | {sign} {row['target']} | "
            f"{row['verdict']}"
            + (f" (contended: {', '.join(row['contended'])})" if row["contended"] else "")
            + f" | {row['cause']} |"
        )
    lines += [
        "",
        *_recent(results),
        "## Other ratios",
        "",
        "| ratio | value | note |",
        "|---|--:|---|",
    ]
    for row in results["ratios"]:
        if row["target"] is None and (row["value"] or row["lower_bound"]) is not None:
            measure = "throughput" if row["metric"] == "throughput" else "p50"
            lines.append(
                f"| {row['title']} ({measure}) | {_ratio_text(row)} | "
                f"{CAUSES.get(row['key'], '')} |"
            )
    flagged = contended(results)
    lines += [
        "",
        "## Scenarios",
        "",
        "*other CPU*: cores that processes outside the benchmark took on average while "
        "the scenario ran (the machine's busy CPU time less the benchmark's own "
        "processes'), plus any the hypervisor gave other guests (steal); bold from "
        f"{CONTENDED}. "
        + (
            f"Contended: {', '.join(flagged)}."
            if flagged
            else "No scenario ran contended."
            if _recorded(results)
            else "Not recorded in this run."
        ),
        "",
        *_scenario_rows(results),
        "",
        "## Concurrency, Bulk and memory",
        "",
        *_extras(results),
        "",
        "![ratios](ratios.png)",
        "",
    ]
    return "\n".join(lines)


# -- chart ---------------------------------------------------------------------------------


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"pass": "#2e7d32", "miss": "#c62828", "info": "#9e9e9e", "n/a": "#9e9e9e"}

    def shown(row: dict[str, Any]) -> float | None:
        return row["value"] if row["value"] is not None else row["lower_bound"]

    panels = [
        (
            "throughput ratios (higher is better)",
            [r for r in results["ratios"] if r["metric"] == "throughput" and shown(r)],
        ),
        (
            "large ÷ small p50 latency (lower is better)",
            [r for r in results["ratios"] if r["metric"] == "p50_ms" and shown(r)],
        ),
    ]
    height = max(len(rows) for _title, rows in panels) * 0.38 + 1.6
    figure, axes = plt.subplots(1, 2, figsize=(15, height))
    for axis, (title, rows) in zip(axes, panels, strict=True):
        rows = list(reversed(rows))
        positions = list(range(len(rows)))
        values = [float(shown(r) or 0) for r in rows]
        bars = axis.barh(positions, values, color=[colors[r["verdict"]] for r in rows])
        for bar, row in zip(bars, rows, strict=True):
            if row["value"] is None:
                bar.set_hatch("//")
                bar.set_edgecolor("white")
        axis.set_yticks(
            positions, [r["title"] + (" *" if r.get("contended") else "") for r in rows], fontsize=8
        )
        for position, row, value in zip(positions, rows, values, strict=True):
            text = f" {value:.2f}" if row["value"] is not None else f" ≥ {value:.0f} (timed out)"
            # Right of the bar and of the target's tick, so that neither hides the number.
            axis.text(
                max(value, (row["target"] or 0) * 1.04), position, text, va="center", fontsize=7
            )
            if row["target"] is not None:
                axis.plot(
                    [row["target"]] * 2,
                    [position - 0.4, position + 0.4],
                    color="black",
                    linewidth=2,
                )
        axis.set_xscale("log")
        axis.axvline(1.0, color="#555555", linewidth=0.8, linestyle=":")
        axis.set_title(f"{title}, log scale", fontsize=10)
        low, high = axis.get_xlim()
        axis.set_xlim(low, high * 4)  # room for the labels
    quick = " (--quick)" if results["config"]["quick"] else ""
    figure.suptitle(
        f"scim-server benchmark{quick}: green pass, red miss, grey informational, "
        "hatched = lower bound (timed out); black tick = target; "
        "* = a scenario ran contended",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
