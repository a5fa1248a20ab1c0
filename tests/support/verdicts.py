"""Reading a conformance run's verdicts in a test, and explaining the ones that did not pass."""

from __future__ import annotations

from conformance.checks import Verdict
from conformance.runner import RunResult


def verdicts(result: RunResult) -> dict[str, Verdict]:
    return {r.check.id: r.verdict for r in result.results}


def explain(result: RunResult) -> str:
    """Every check that did not pass, with its verdict and reason (an assertion's message)."""
    return "\n".join(
        f"{r.check.id}: {r.verdict} {r.reason}" for r in result.results if r.verdict != Verdict.PASS
    )
