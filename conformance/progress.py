"""What a person sees while a run goes: a live bar on a terminal, plain lines anywhere else.

A run of every suite takes minutes, and minutes of silence look like a hang. On a terminal
(the stream is a TTY) a rich progress bar shows how far the run is, which check is running
and how many failed so far, and clears itself when the run ends. In a CI log or a file, where
a redrawn line would be a smear of carriage returns, each suite prints one plain summary line
as its last check finishes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import Self, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from conformance.checks import Check, CheckResult, Verdict
from conformance.reports import tally


class Bar:
    """A live progress bar on a terminal: done/total, elapsed time, the running check."""

    def __init__(self, stream: TextIO) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("[red]{task.fields[bad]}"),
            TextColumn("{task.fields[check]}"),
            console=Console(file=stream),
            transient=True,
        )
        self.task = TaskID(0)
        self.bad: Counter[Verdict] = Counter()

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.progress.stop()

    def begin(self, checks: Sequence[Check]) -> None:
        self.task = self.progress.add_task("checks", total=len(checks), check="", bad="")

    def started(self, check: Check) -> None:
        self.progress.update(self.task, check=check.id)

    def finished(self, result: CheckResult) -> None:
        if result.verdict in (Verdict.FAIL, Verdict.ERROR):
            self.bad[result.verdict] += 1
        bad = ", ".join(
            f"{self.bad[v]} {label}"
            for v, label in ((Verdict.FAIL, "failed"), (Verdict.ERROR, "errors"))
            if self.bad[v]
        )
        self.progress.update(self.task, advance=1, bad=bad)


class SuiteLines:
    """One plain line per suite as its last check finishes: what a log file can hold."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.expected: Counter[str] = Counter()
        self.done: dict[str, list[CheckResult]] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None

    def begin(self, checks: Sequence[Check]) -> None:
        self.expected = Counter(check.suite for check in checks)

    def started(self, check: Check) -> None:
        return None

    def finished(self, result: CheckResult) -> None:
        suite = result.check.suite
        results = self.done.setdefault(suite, [])
        results.append(result)
        if len(results) < self.expected[suite]:
            return
        counts = Counter(str(r.verdict) for r in results)
        seconds = sum(r.duration_ms for r in results) / 1000
        print(f"{suite}: {tally(counts)} ({seconds:.1f} s)", file=self.stream, flush=True)


def observer(stream: TextIO) -> Bar | SuiteLines:
    """The bar on a terminal, the plain lines on anything else (a pipe, a file, CI)."""
    return Bar(stream) if stream.isatty() else SuiteLines(stream)
