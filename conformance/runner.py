"""Run suites of checks against one server and collect the verdicts.

Checks run one after another (each may itself send parallel requests): a run on a
small machine stays predictable, and one check's fixtures never race another's.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

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
from conformance.http import Exchange, Response, ScimHttp
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
    finished: str = ""
    """When the last check and the cleanup were done (ISO 8601, UTC), as ``started``."""
    duration_ms: float = 0.0
    """The whole run, preflight and cleanup included."""

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

    def profiles(self) -> dict[str, dict[str, int]]:
        """Interop profile -> verdict -> count over the checks counting towards it (``IPSIE
        AL2``...), every verdict present, in the order the profiles first appear."""
        out: dict[str, dict[str, int]] = {}
        for result in self.results:
            for profile in result.check.profiles:
                counts = out.setdefault(profile, {str(v): 0 for v in Verdict})
                counts[str(result.verdict)] += 1
        return out

    def profile_verdicts(self) -> dict[str, str]:
        """Profile -> its verdict line, as a certification conversation quotes it:
        ``IPSIE AL2: 28/34 pass, 6 skipped``."""
        return {
            profile: profile_verdict(profile, counts) for profile, counts in self.profiles().items()
        }

    def counts(self) -> dict[str, int]:
        """Verdict -> count over the whole run, every verdict present."""
        out = {str(v): 0 for v in Verdict}
        for result in self.results:
            out[str(result.verdict)] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "run_id": self.run_id,
            "started": self.started,
            "finished": self.finished,
            "duration_ms": self.duration_ms,
            "failed": self.failed,
            "counts": self.counts(),
            "totals": self.totals(),
            "profiles": {
                profile: {**counts, "verdict": self.profile_verdicts()[profile]}
                for profile, counts in self.profiles().items()
            },
            "leftovers": self.leftovers,
            "kept": self.kept,
            "results": [r.to_dict() for r in self.results],
        }


def profile_verdict(profile: str, counts: dict[str, int]) -> str:
    """One profile's verdict: passes of all its items, then what did not pass."""
    line = f"{profile}: {counts['pass']}/{sum(counts.values())} pass"
    for verdict, word in (("fail", "failed"), ("error", "errors"), ("skip", "skipped")):
        if counts[verdict]:
            line += f", {counts[verdict]} {word}"
    return line


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


def unanswered(exc: BaseException, timeout: float) -> str:
    """Why a request got no response, in one line (a timeout's own message is empty)."""
    return f"{type(exc).__name__}: {str(exc) or f'no answer within {timeout:g} s'}"


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
    except (aiohttp.ClientError, TimeoutError) as exc:  # no answer: the exchange shows which
        verdict, reason = Verdict.ERROR, f"no response: {unanswered(exc, http.timeout)}"
    except Exception as exc:  # the check could not conclude; say exactly why
        tail = "".join(traceback.format_exception(exc)[-3:])
        verdict, reason = Verdict.ERROR, f"{type(exc).__name__}: {exc}\n{tail}"
    duration = round((time.perf_counter() - started) * 1000, 1)
    return CheckResult(check, verdict, reason, transcript, duration)


class Unusable(Exception):
    """The run cannot start: no check could reach a verdict, so none is run.

    Without this, a wrong token would run every check and report each 401 as a separate
    failure; one message that names the URL and what to fix teaches more.
    """


class TokenRefused(Unusable):
    """The server answers the token with 401 or 403."""


class NotScimServer(Unusable):
    """The base URL cannot be reached, or what answers there is not a SCIM server."""


def _refused(response: Response, url: str, base_url: str) -> TokenRefused:
    return TokenRefused(
        f"{url} answered HTTP {response.status}: the server refuses the token. Check the "
        f"token, and the tenant in the base URL ({base_url})."
    )


async def preflight(http: ScimHttp) -> dict[str, Any]:
    """Prove ``http`` reaches a SCIM server that accepts its token; answer its SPC.

    ``/ServiceProviderConfig`` must answer JSON (an HTML page or a 404 means the base URL
    is wrong), and ``GET /Users?count=1`` must not be refused: the SPC may be public, so
    only a request that needs the token proves it. Any other answer is left for the checks
    to judge. The SPC is ``{}`` when it is not a 200 JSON object (feature checks then skip).
    Raises ``NotScimServer`` or ``TokenRefused`` with a message a person can act on.
    """
    spc_url, users_url = http.url("/ServiceProviderConfig"), http.url("/Users?count=1")
    try:
        spc = await http.get("/ServiceProviderConfig")
        if spc.status in (401, 403):
            raise _refused(spc, spc_url, http.base_url)
        if spc.status == 404 or spc.json() is None:
            kind = spc.content_type.split(";")[0] or "no content type"
            raise NotScimServer(
                f"{spc_url} answered HTTP {spc.status} ({kind}): no SCIM server there. Check "
                f"the base URL (a SCIM base URL looks like https://host/scim/v2/{{tenant}})."
            )
        users = await http.get("/Users", params={"count": "1"})
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise NotScimServer(
            f"cannot reach {http.base_url}: {unanswered(exc, http.timeout)}. Check the base URL."
        ) from exc
    if users.status in (401, 403):
        raise _refused(users, users_url, http.base_url)
    body = spc.json()
    return dict(body) if spc.status == 200 and isinstance(body, dict) else {}


class Observer(Protocol):
    """Who watches a run as it goes (``conformance.progress``): told each check before it
    starts and each result as it comes in."""

    def begin(self, checks: Sequence[Check]) -> None: ...

    def started(self, check: Check) -> None: ...

    def finished(self, result: CheckResult) -> None: ...


async def run(
    base_url: str,
    token: str,
    suite_names: Iterable[str],
    *,
    keep: bool = False,
    only: Iterable[str] | None = None,
    timeout: float = 30.0,
    options: dict[str, Any] | None = None,
    observer: Observer | None = None,
) -> RunResult:
    """Run the chosen checks against ``base_url`` and clean up after them.

    ``options`` are run-wide settings some suites read (``conformance.options``): a second
    tenant for ``tenancy``, ``large`` for the large-group check, the SP for ``saml``. An empty
    ``base_url`` is a run without a SCIM server (``saml`` against a bare SP): nothing is
    discovered or swept. Before any check, ``preflight`` proves the base URL (and the second
    tenant's, when a tenancy check will use it) is a SCIM server that takes its token, and
    raises ``Unusable`` when not.
    """
    checks = select(suite_names, only)
    tracker = Tracker()
    run_options = {"keep": keep, **(options or {})}
    tracker.shared[OPTIONS_KEY] = run_options
    result = RunResult(
        base_url or "no SCIM server", tracker.run_id, datetime.now(UTC).isoformat(), kept=keep
    )
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        http = ScimHttp(session, base_url, token, [], timeout)
        spc = await preflight(http) if base_url else {}
        second = ScimHttp(
            session,
            run_options.get("second_base_url") or "",
            run_options.get("second_token") or "",
            [],
            timeout,
        )
        if second.base_url and second.token and any(c.suite == "tenancy" for c in checks):
            await preflight(second)
        if observer:
            observer.begin(checks)
        for check in checks:
            if observer:
                observer.started(check)
            result.results.append(await run_check(check, http, spc, tracker))
            if observer:
                observer.finished(result.results[-1])
        if base_url and not keep:
            try:
                result.leftovers = await cleanup(http.bound_to([]), tracker)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Reported, not raised: the verdicts are already in, and they matter more.
                result.leftovers = [f"cleanup stopped: {type(exc).__name__}: {exc}"]
    result.finished = datetime.now(UTC).isoformat()
    result.duration_ms = round((time.perf_counter() - started) * 1000, 1)
    return result
