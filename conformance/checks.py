"""The check model: what a check is, what it may conclude, and the registry of suites.

A check is an async function of a ``Context``. It passes by returning, fails by
raising ``CheckFailed`` (through ``require`` and friends) with a reason a person can act
on, skips by raising ``CheckSkipped`` with the reason (typically: the server's
``/ServiceProviderConfig`` says the feature is unsupported), and any other exception is
an ``error``: the runner could not reach a verdict, which is not the same as a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NoReturn

from conformance.http import Exchange, Response, ScimHttp

if TYPE_CHECKING:
    from conformance.fixtures import Fixtures


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


class CheckFailed(Exception):
    """The server broke the rule the check enforces; the message says how."""


class CheckSkipped(Exception):
    """The check does not apply to this server; the message says why."""


@dataclass
class Context:
    """What a check gets: HTTP on the base URL, the server's SPC, and fixtures."""

    http: ScimHttp
    spc: dict[str, Any]
    fixtures: Fixtures

    def feature(self, name: str) -> dict[str, Any]:
        """A feature object of the SPC (``patch``, ``bulk``, ``etag``...), ``{}`` if absent."""
        value = self.spc.get(name)
        return value if isinstance(value, dict) else {}

    def require_feature(self, name: str, flag: str = "supported") -> None:
        """Skip, saying so, when the SPC does not advertise ``name.flag``."""
        if self.feature(name).get(flag) is not True:
            raise CheckSkipped(f"ServiceProviderConfig does not advertise {name}.{flag}: true")


CheckFunc = Callable[[Context], Awaitable[None]]


@dataclass(frozen=True)
class Check:
    """A registered check: identity, the rule it enforces, and the code enforcing it."""

    id: str
    title: str
    source: str
    """Where the rule is written: ``RFC 7644 §3.3``, or a vendor document."""
    rule: str
    """A short quote of the rule, shown next to a failure."""
    suite: str
    func: CheckFunc = field(compare=False, repr=False)
    profiles: tuple[str, ...] = ()
    """The interop profiles (``IPSIE AL1``...) whose verdict this check counts towards."""


@dataclass
class CheckResult:
    """The outcome of one check on one server, with its evidence."""

    check: Check
    verdict: Verdict
    reason: str = ""
    transcript: list[Exchange] = field(default_factory=list)
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.check.id,
            "suite": self.check.suite,
            "title": self.check.title,
            "source": self.check.source,
            "rule": self.check.rule,
            "profiles": list(self.check.profiles),
            "verdict": str(self.verdict),
            "reason": self.reason,
            "duration_ms": self.duration_ms,
            "transcript": [exchange.to_dict() for exchange in self.transcript],
        }


REGISTRY: dict[str, list[Check]] = {}
"""Suite name -> its checks, in the order they run."""


def check(
    suite: str,
    id: str,
    title: str,
    source: str,
    rule: str,
    profiles: tuple[str, ...] = (),
) -> Callable[[CheckFunc], CheckFunc]:
    """Register the decorated function as check ``id`` of ``suite``, counted towards
    ``profiles``."""

    def register(func: CheckFunc) -> CheckFunc:
        checks = REGISTRY.setdefault(suite, [])
        if any(existing.id == id for existing in checks):
            raise ValueError(f"duplicate check id {id}")
        checks.append(Check(id, title, source, rule, suite, func, profiles))
        return func

    return register


def suites() -> dict[str, list[Check]]:
    """Every suite, after importing the modules that register them, in the order of
    ``SUITE_MODULES`` (whatever imported a suite's module first), any other suite after."""
    from conformance.suites import SUITE_MODULES, load

    load()

    def rank(suite: str) -> int:
        module = REGISTRY[suite][0].func.__module__
        return SUITE_MODULES.index(module) if module in SUITE_MODULES else len(SUITE_MODULES)

    return {suite: REGISTRY[suite] for suite in sorted(REGISTRY, key=rank)}


# --- helpers checks use to state their expectations --------------------------------------


def require(condition: object, reason: str) -> None:
    if not condition:
        raise CheckFailed(reason)


def fail(reason: str) -> NoReturn:
    raise CheckFailed(reason)


def skip(reason: str) -> NoReturn:
    raise CheckSkipped(reason)


def expect_status(response: Response, *expected: int, what: str = "") -> None:
    """Fail unless the status is one of ``expected``, quoting the body for diagnosis."""
    if response.status not in expected:
        wanted = " or ".join(str(code) for code in expected)
        label = f"{what}: " if what else ""
        raise CheckFailed(
            f"{label}expected HTTP {wanted}, got {response.status}: {response.text[:300]!r}"
        )


def expect_json(response: Response, what: str = "response") -> Any:
    """The JSON body; fail when there is none (HTML error pages, empty bodies)."""
    body = response.json()
    if body is None:
        raise CheckFailed(f"{what} body is not JSON: {response.text[:200]!r}")
    return body


def expect_object(response: Response, what: str = "response") -> dict[str, Any]:
    body = expect_json(response, what)
    require(isinstance(body, dict), f"{what} body is not a JSON object")
    return dict(body)


def resources_of(response: Response, what: str = "list response") -> list[dict[str, Any]]:
    """``Resources`` of a ListResponse (absent means empty, RFC 7644 §3.4.2)."""
    body = expect_object(response, what)
    resources = body.get("Resources", [])
    require(isinstance(resources, list), f"{what}: Resources is not an array")
    return list(resources)
