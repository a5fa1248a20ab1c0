"""The history of a benchmark suite other than ``bench.run``: one line per run in history.jsonl.

Each suite marks its lines with its name (``"suite"``), so ``bench.run``'s own table leaves
them out, and shows its figures over its last runs with :func:`table`: on two shared cores a
figure near its target can land on either side of it from one run to the next.
"""

from __future__ import annotations

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
