"""What a benchmark suite other than ``bench.run`` leaves: its results and one line of history.

Each suite marks its lines in history.jsonl with its name (``"suite"``), so ``bench.run``'s own
table leaves them out, and shows its figures over its last runs with :func:`table`: on two
shared cores a figure near its target can land on either side of it from one run to the next.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench import report

SHOWN_RUNS = 6


def append(out: Path, suite: str, results: dict[str, Any], figures: dict[str, float]) -> None:
    """Record this run's ``figures`` (name → value) for ``suite``."""
    entry = {
        "date": results["date"],
        "commit": results["machine"]["commit"],
        "quick": results["config"]["quick"],
        "suite": suite,
        "ratios": figures,
    }
    out.mkdir(parents=True, exist_ok=True)
    with (out / report.HISTORY).open("ab") as history:
        history.write(orjson.dumps(entry) + b"\n")


def table(out: Path, suite: str, quick: bool, titles: dict[str, str]) -> list[str]:
    """Markdown: each figure named in ``titles`` over the suite's last runs (this one last)."""
    runs = [
        run
        for run in report.read_history(out)
        if run.get("suite") == suite and run["quick"] == quick
    ][-SHOWN_RUNS:]
    if len(runs) < 2:
        return []
    dates = " | ".join(run["date"][5:16].replace("T", " ") for run in runs)
    lines = [
        "## Over the recent runs",
        "",
        f"From `{report.HISTORY}`, the last runs of this suite with the same settings.",
        "",
        f"| figure | {dates} |",
        "|---|" + "--:|" * len(runs),
    ]
    for key, title in titles.items():
        cells = [run["ratios"].get(key) for run in runs]
        lines.append(
            f"| {title} | "
            + " | ".join("-" if cell is None else f"{cell:.2f}" for cell in cells)
            + " |"
        )
    return [*lines, ""]


def results(quick: bool, sizes: object, **figures: Any) -> dict[str, Any]:
    """A run's results: when, on what machine, with which sizes, and its ``figures``."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine(),
        "config": {"quick": quick, **vars(sizes)},
        **figures,
    }


def publish(
    out: Path,
    name: str,
    suite: str,
    run: dict[str, Any],
    kept: dict[str, float],
    markdown: Callable[[dict[str, Any], Path], str],
) -> None:
    """Append ``kept`` to the history, write ``{name}.json`` and ``{name}.md``, print the latter."""
    append(out, suite, run, kept)
    (out / f"{name}.json").write_text(json.dumps(run, indent=2) + "\n")
    text = markdown(run, out)
    (out / f"{name}.md").write_text(text)
    print(text)
