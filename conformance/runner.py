"""Run suites of checks against one server and collect the verdicts.

Checks run one after another (each may itself send parallel requests): a run on a
small machine stays predictable, and one check's fixtures never race another's.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from conformance.checks import (
    Check,
    CheckFailed,
    CheckResult,
    CheckSkipped,
    Context,
    Verdict,
    suites,
)
from conformance.fixtures import FixtureError, Fixtures, Tracker, cleanup
from conformance.http import Exchange, ScimHttp
from conformance.options import KEY as OPTIONS_KEY


@dataclass
class RunResult:
    """Everything a report needs about one run."""

    base_url: str
    run_id: str
    started: str
    results: list[CheckResult] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    kept: bool = False

    @property
    def failed(self) -> bool:
        """A run fails on any failed or errored check: an error is an unproven check."""
        return any(r.verdict in (Verdict.FAIL, Verdict.ERROR) for r in self.results)

    def totals(self) -> dict[str, dict[str, int]]:
        """Suite -> verdict -> count, every verdict present."""
        out: dict[str, dict[str, int]] = {}
        for result in self.results:
            counts = out.setdefault(result.check.suite, {str(v): 0 for v in Verdict})
            counts[str(result.verdict)] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "run_id": self.run_id,
            "started": self.started,
            "failed": self.failed,
            "totals": self.totals(),
            "leftovers": self.leftovers,
            "kept": self.kept,
            "results": [r.to_dict() for r in self.results],
        }


def select(suite_names: Iterable[str], only: Iterable[str] | None = None) -> list[Check]:
    """The checks of the named suites, optionally narrowed to the given ids."""
    registry = suites()
    chosen: list[Check] = []
    for name in suite_names:
        if name not in registry:
            raise KeyError(f"unknown suite {name!r}; known: {', '.join(sorted(registry))}")
        chosen.extend(registry[name])
    if only is not None:
        wanted = set(only)
        chosen = [c for c in chosen if c.id in wanted]
    return chosen


async def run_check(
    check: Check, http: ScimHttp, spc: dict[str, Any], tracker: Tracker
) -> CheckResult:
    transcript: list[Exchange] = []
    bound = http.bound_to(transcript)
    context = Context(bound, spc, Fixtures(bound, tracker))
    started = time.perf_counter()
    try:
        await check.func(context)
        verdict, reason = Verdict.PASS, ""
    except CheckFailed as failed:
        verdict, reason = Verdict.FAIL, str(failed)
    except CheckSkipped as skipped:
        verdict, reason = Verdict.SKIP, str(skipped)
    except FixtureError as exc:
        verdict, reason = Verdict.ERROR, str(exc)
    except Exception as exc:  # the check could not conclude; say exactly why
        tail = "".join(traceback.format_exception(exc)[-3:])
        verdict, reason = Verdict.ERROR, f"{type(exc).__name__}: {exc}\n{tail}"
    duration = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(check, verdict, reason, transcript, duration)


async def discover(http: ScimHttp) -> dict[str, Any]:
    """The server's ServiceProviderConfig, or ``{}`` (then feature checks skip, honestly)."""
    try:
        response = await http.get("/ServiceProviderConfig")
    except (aiohttp.ClientError, TimeoutError):
        return {}  # each check then meets the same failure and reports it as an error
    body = response.json()
    return dict(body) if response.status == 200 and isinstance(body, dict) else {}


async def run(
    base_url: str,
    token: str,
    suite_names: Iterable[str],
    *,
    keep: bool = False,
    only: Iterable[str] | None = None,
    timeout: float = 30.0,
    options: dict[str, Any] | None = None,
) -> RunResult:
    """Run the chosen checks against ``base_url`` and clean up after them.

    ``options`` are run-wide settings some suites read (``conformance.options``): a second
    tenant for ``tenancy``, ``large`` for the large-group check, the SP for ``saml``. An empty
    ``base_url`` is a run without a SCIM server (``saml`` against a bare SP): nothing is
    discovered or swept.
    """
    checks = select(suite_names, only)
    tracker = Tracker()
    tracker.shared[OPTIONS_KEY] = {"keep": keep, **(options or {})}
    result = RunResult(
        base_url or "no SCIM server", tracker.run_id, datetime.now(UTC).isoformat(), kept=keep
    )
    async with aiohttp.ClientSession() as session:
        http = ScimHttp(session, base_url, token, [], timeout)
        spc = await discover(http) if base_url else {}
        for check in checks:
            result.results.append(await run_check(check, http, spc, tracker))
        if base_url and not keep:
            try:
                result.leftovers = await cleanup(http.bound_to([]), tracker)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Reported, not raised: the verdicts are already in, and they matter more.
                result.leftovers = [f"cleanup stopped: {type(exc).__name__}: {exc}"]
    return result
