"""How far idp-sim has got: a live bar on a terminal, one plain line per phase anywhere else.

A scenario is a series of phases (test connection, import users, assign users, ...) and a replay
is one. On a terminal a person watches a long phase move, so each phase gets a live bar (drawn
by ``rich``) and leaves its summary line behind when it ends. In a log file or a CI pipe redraws
(``\\r``, cursor moves) are noise, so there each phase writes only its summary line: what it
did, how many requests that took, how many went wrong, and how long it ran.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


@dataclass(frozen=True)
class PhaseReport:
    """What one phase did; ``skipped`` when the IdP does not perform it at all."""

    label: str
    done: int
    total: int
    requests: int
    errors: int
    elapsed: float
    skipped: bool = False

    def line(self) -> str:
        """The phase's summary line, e.g. ``okta-oin: assign users: 10/10 done, 20 requests,
        0 errors, 1.2s``."""
        outcome = "not done by this IdP" if self.skipped else f"{self.done}/{self.total} done"
        return (
            f"{self.label}: {outcome}, {self.requests} requests, {self.errors} errors, "
            f"{self.elapsed:.1f}s"
        )


class PhaseProgress(Protocol):
    """Told when a phase begins, as each of its items is done, and what it did when it ends."""

    def begin(self, label: str, total: int) -> None: ...

    def advance(self) -> None: ...

    def end(self, report: PhaseReport) -> None: ...


class Silent:
    """Shows nothing: for scenarios run as a library (the conformance suites, the tests)."""

    def begin(self, label: str, total: int) -> None:
        """Nothing to show."""

    def advance(self) -> None:
        """Nothing to show."""

    def end(self, report: PhaseReport) -> None:
        """Nothing to show."""


class SummaryLines(Silent):
    """For logs and pipes: nothing while a phase runs, its summary line when it ends."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def end(self, report: PhaseReport) -> None:
        print(report.line(), file=self.stream, flush=True)


class LiveBars:
    """For a terminal: the running phase as a live bar, each ended phase as its summary line."""

    def __init__(self, bars: Progress) -> None:
        self.bars = bars
        self.task: TaskID | None = None

    def begin(self, label: str, total: int) -> None:
        self.task = self.bars.add_task(label, total=total)
        self.bars.refresh()  # every phase is seen starting, however quickly it ends

    def advance(self) -> None:
        if self.task is not None:
            self.bars.advance(self.task)

    def end(self, report: PhaseReport) -> None:
        if self.task is not None:
            self.bars.remove_task(self.task)
            self.task = None
        self.bars.console.print(report.line(), markup=False, highlight=False)


@contextmanager
def shown_on(stream: TextIO) -> Iterator[PhaseProgress]:
    """Phase progress written to ``stream``: live bars when it is a terminal, else lines."""
    if not stream.isatty():
        yield SummaryLines(stream)
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=stream),
    )
    with bars:
        yield LiveBars(bars)
