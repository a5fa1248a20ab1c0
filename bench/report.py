"""Ratios, pass/miss against the targets of issue 3, and the JSON, Markdown and PNG outputs."""

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

PACKAGES = ("aiohttp", "pymongo", "scim2-models", "scim2-server", "secantusdb", "uvicorn",
            "httptools", "orjson", "scim-toolkit")


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
    Ratio("post_vs_insert", "POST /Users ÷ insert_one",
          ("server", "post_user", ""), ("limit", "insert_one", ""), "throughput", 0.5),
    Ratio("get_vs_find", "GET /Users/{id} ÷ find_one _id",
          ("server", "get_user", ""), ("limit", "find_one_id", ""), "throughput", 0.6),
    Ratio("filter_vs_find", "filter userName eq ÷ find_one c.userName",
          ("server", "filter_eq_small", ""), ("limit", "find_one_userName", ""), "throughput"),
    *[Ratio(f"peer_{key}", f"{title} ÷ peer", ("server", key, ""), ("peer", key, ""),
            "throughput", 1.0 if key in ("get_user", "post_user") else None)
      for key, title in (("get_user", "GET /Users/{id}"), ("post_user", "POST /Users"),
                         ("filter_eq_small", "filter eq (small)"),
                         ("filter_eq_big", "filter eq (large)"),
                         ("patch_user", "PATCH user"), ("list_page_small", "sorted page"),
                         ("group_small", "group 10 add/remove"),
                         ("group_big_slim", "large group add/remove (slim)"),
                         ("bulk_1000", "Bulk 1,000"), ("writers_32", "32 writers"))],
]


def _scaling(target: str) -> list[Ratio]:
    ratios = []
    for variant, suffix in (("", ""), (" (slim)", "_slim")):
        for label in ("add", "remove"):
            ratios.append(Ratio(
                f"{target}_group_{label}{suffix}", f"{target}: member {label}{variant} large ÷ 10",
                (target, f"group_big{suffix}", label), (target, f"group_small{suffix}", label),
                "p50_ms", 1.5 if target == "server" else None))
    ratios.append(Ratio(f"{target}_filter_scaling", f"{target}: userName eq large ÷ small",
                        (target, "filter_eq_big", ""), (target, "filter_eq_small", ""),
                        "p50_ms", 1.5 if target == "server" else None))
    return ratios


SCALING_RATIOS = [*_scaling("server"), *_scaling("peer")]

CAUSES = {
    # Why a target is missed, as found by profiling (bench/results/profile.md) and by timing
    # the database calls alone; shown only next to a miss.
    "post_vs_insert": "on top of the insert, POST validates and serializes the user with "
                      "scim2-models (about a quarter of its CPU in the profile)",
    "get_vs_find": "GET of a user in a group makes 3 database round trips, not 1: the user, "
                   "its memberships and its groups' names (User.groups); each is a full "
                   "PyMongo call and a socket write and read on the event loop",
    "peer_get_user": "the peer reads a dict in its own memory and derives no User.groups; this "
                     "server makes round trips to a database that is itself a Python process "
                     "on the same cores",
    "peer_post_user": "the peer writes to its own memory; this server writes to the database "
                      "process (journaled), which competes for the same cores",
    "server_group_add": "PATCH answers the whole group: all N membership documents are read "
                        "and rendered on every add or remove",
    "server_group_remove": "PATCH answers the whole group: all N membership documents are "
                           "read and rendered on every add or remove",
    "server_filter_scaling": "a filtered list also counts its matches and derives User.groups",
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


def _failure(results: dict[str, Any],
             ref: tuple[str, str, str]) -> tuple[str, float | None] | None:
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
        elif ratio.target is not None and failure is not None:
            verdict = "miss"
            cause = f"{CAUSES.get(ratio.key, '')}; {failure[0]}".lstrip("; ")
        elif value is not None or lower_bound is not None:
            verdict = "info"
        rows.append({
            "key": ratio.key, "title": ratio.title, "metric": ratio.metric, "value": value,
            "lower_bound": lower_bound, "target": ratio.target, "verdict": verdict,
            "numerator": top, "denominator": bottom, "cause": cause,
        })
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
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True,
                           cwd=Path(__file__).parent).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(), "platform": platform.platform(),
        "versions": versions, "commit": commit + ("+dirty" if dirty else ""),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def build(config: dict[str, Any], limit: Target, ours: Target,
          peer: Target | None) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "config": config,
        "targets": {
            target.name: {"scenarios": target.scenarios, "memory": target.memory,
                          "notes": target.notes}
            for target in (limit, ours, peer) if target is not None
        },
    }
    results["ratios"] = compute_ratios(results)
    return results


def write(results: dict[str, Any], out: Path) -> None:
    (out / "latest.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2))
    (out / "latest.md").write_text(markdown(results))
    chart(results, out / "ratios.png")


# -- Markdown ------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _scenario_rows(results: dict[str, Any]) -> list[str]:
    rows = ["| scenario | target | conc. | throughput /s | p50 ms | p99 ms | ok | errors |",
            "|---|---|--:|--:|--:|--:|--:|--:|"]
    for name, target in results["targets"].items():
        for scenario in target["scenarios"].values():
            if scenario.get("available") is False:
                rows.append(f"| {scenario['description']} | {name} | | {scenario['note']} "
                            "| | | | |")
                continue
            labels = scenario["labels"]

            def stat(metric: str, labels: dict[str, Any] = labels) -> str:
                if len(labels) == 1:
                    return _number(next(iter(labels.values()))[metric], 2)
                return " / ".join(f"{label} {_number(s[metric], 2)}"
                                  for label, s in labels.items())

            rows.append(
                f"| {scenario['description']} | {name} | {scenario['concurrency_used']} | "
                f"{_number(scenario['throughput'])} | {stat('p50_ms')} | {stat('p99_ms')} | "
                f"{scenario['ok']} | {scenario['errors'] + scenario['cancelled']} |")
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
                + (" — all landed" if writers["all_landed"] else " — **LOST UPDATES**"))
        bulk = scenarios.get("bulk_1000")
        if bulk and bulk.get("available") is not False and "created" in bulk:
            lines.append(f"- {name}: Bulk of 1,000 creates: {_number(bulk['creates_per_s'])} "
                         f"users/s, {bulk['created']} users created by "
                         f"{bulk['ok']} requests")
        if target["memory"]:
            memory = ", ".join(f"{role.removesuffix('_kb')} {value / 1024:,.0f} MiB"
                               for role, value in target["memory"].items())
            lines.append(f"- {name}: peak memory (VmHWM): {memory}")
        for note in target["notes"]:
            lines.append(f"- {name}: {note}")
    return lines


def markdown(results: dict[str, Any]) -> str:
    m, c = results["machine"], results["config"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    lines = [
        "# Benchmark results", "",
        f"Run {results['date']} at commit {m['commit']}"
        f"{' (--quick: smaller data, short budgets)' if c['quick'] else ''}.", "",
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
        f"- Data: {c['small_users']:,} users (small tenant, {c['small_group']}-member group); "
        f"{c['big_users']:,} users (large tenant, groups of {c['mid_group']:,} and "
        f"{c['big_group']:,} members)",
        "- Differences in kind: the peer keeps everything in its own memory, derives no "
        "User.groups, and answers a PATCH with 204 and no body unless attributes are asked for; "
        "this server answers 200 with the resource. Group member add/remove runs one request "
        "at a time. See bench/README.md for the method.", "",
        "## Targets", "",
        "| ratio | value | target | verdict | cause of a miss |", "|---|--:|--:|---|---|",
    ]
    for row in results["ratios"]:
        if row["target"] is None:
            continue
        sign = "≥" if row["metric"] == "throughput" else "≤"
        lines.append(f"| {row['title']} ({'throughput' if sign == '≥' else 'p50'}) | "
                     f"{_ratio_text(row)} | {sign} {row['target']} | "
                     f"{row['verdict']} | {row['cause']} |")
    lines += ["", "## Other ratios", "", "| ratio | value |", "|---|--:|"]
    for row in results["ratios"]:
        if row["target"] is None and (row["value"] or row["lower_bound"]) is not None:
            measure = "throughput" if row["metric"] == "throughput" else "p50"
            lines.append(f"| {row['title']} ({measure}) | {_ratio_text(row)} |")
    lines += ["", "## Scenarios", "", *_scenario_rows(results), "",
              "## Concurrency, Bulk and memory", "", *_extras(results), "",
              "![ratios](ratios.png)", ""]
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
        ("throughput ratios (higher is better)",
         [r for r in results["ratios"] if r["metric"] == "throughput" and shown(r)]),
        ("large ÷ small p50 latency (lower is better)",
         [r for r in results["ratios"] if r["metric"] == "p50_ms" and shown(r)]),
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
        axis.set_yticks(positions, [r["title"] for r in rows], fontsize=8)
        for position, row, value in zip(positions, rows, values, strict=True):
            text = f" {value:.2f}" if row["value"] is not None else f" ≥ {value:.0f} (timed out)"
            axis.text(value, position, text, va="center", fontsize=7)
            if row["target"] is not None:
                axis.plot([row["target"]] * 2, [position - 0.4, position + 0.4], color="black",
                          linewidth=2)
        axis.set_xscale("log")
        axis.axvline(1.0, color="#555555", linewidth=0.8, linestyle=":")
        axis.set_title(f"{title}, log scale", fontsize=10)
        low, high = axis.get_xlim()
        axis.set_xlim(low, high * 4)  # room for the labels
    quick = " (--quick)" if results["config"]["quick"] else ""
    figure.suptitle(f"scim-server benchmark{quick}: green pass, red miss, grey informational, "
                    "hatched = lower bound (timed out); black tick = target", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
