"""The ``ipsie`` suite, proven both ways.

Against our server (rate limiting on, at its default; SSO trusting the runner's IdP as
``make conformance`` sets it) every check passes, except the items the suite lists as skipped,
each with its reason. Behind a proxy that breaks exactly one rule (tests/support/proxy.py, as in
tests/test_conformance.py) each check fails, and it passes behind an honest proxy, so the
violation alone is the cause.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance import html_report, reports, saml_target
from conformance.checks import Verdict, suites
from conformance.runner import RunResult, run
from conformance.saml_target import SamlTarget
from conformance.suites.ipsie import AL1, AL2
from idp_sim.saml.response import IdentityProvider
from samlkit.certs import SigningKey
from scim_server.config import Settings
from tests.support.proxy import (
    Forward,
    Req,
    Resp,
    Violation,
    answer,
    is_,
    mutate,
    start_proxy,
    when,
)
from tests.support.scim import Scim
from tests.support.urns import ERROR, LIST_RESPONSE, PATCH_OP, USER
from tests.test_conformance_saml import configure_sso, explain, scim_base

SKIPPED = {
    "ipsie.oauth-client-credentials",
    "ipsie.oauth-scim-scope",
    "ipsie.oauth-server-metadata",
    "ipsie.no-password",
    "ipsie.token-expiry",
    "ipsie.audit-log",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Rate limiting on, at the server's default, as ``scim-server serve`` runs."""
    return replace(settings, rate_limit_per_second=100)


@pytest.fixture
async def saml(client: TestClient, scim: Scim) -> SamlTarget:
    idp = IdentityProvider(saml_target.shape("okta"), SigningKey.generate("ipsie test IdP"))
    return await configure_sso(client, scim.tenant, idp)


async def run_ipsie(
    base: str, token: str, saml: SamlTarget, only: list[str] | None = None
) -> RunResult:
    return await run(base, token, ["ipsie"], options={"saml": saml}, only=only)


async def test_every_testable_item_passes_against_our_server(
    client: TestClient, scim: Scim, saml: SamlTarget
) -> None:
    result = await run_ipsie(scim_base(client, scim), scim.token, saml)
    verdicts = {r.check.id: r.verdict for r in result.results}
    assert {i for i, v in verdicts.items() if v is not Verdict.PASS} == SKIPPED, explain(result)
    assert all(r.reason for r in result.results if r.verdict is Verdict.SKIP)
    assert result.leftovers == []


# --- the broken servers -------------------------------------------------------------------

users = is_("GET", r"/Users")
user = is_("GET", r"/Users/[^/]+")
groups = is_("GET", r"/Groups")
group = is_("GET", r"/Groups/[^/]+")
post_user = is_("POST", r"/Users")
post_group = is_("POST", r"/Groups")
patch_user = is_("PATCH", r"/Users/[^/]+")
patch_group = is_("PATCH", r"/Groups/[^/]+")
spc = is_("GET", r"/ServiceProviderConfig")
user_schema = is_("GET", rf"/Schemas/{USER}")


def error(status: int, detail: str) -> dict[str, Any]:
    return {"schemas": [ERROR], "status": str(status), "detail": detail}


def ignored(predicate: Callable[[Req], bool]) -> Violation:
    """Matching requests are answered 204 and never reach the server."""
    return answer(predicate, 204, b"")


def sets_active(value: bool) -> Callable[[Req], bool]:
    def predicate(req: Req) -> bool:
        return patch_user(req) and any(
            op.get("path") == "active" and op.get("value") is value
            for op in req.json()["Operations"]
        )

    return predicate


def nothing_found(attribute: str, endpoint: Callable[[Req], bool]) -> Violation:
    """A server whose filter on ``attribute`` finds nothing."""
    return answer(
        lambda req: endpoint(req) and req.query.get("filter", "").startswith(attribute),
        200,
        {"schemas": [LIST_RESPONSE], "totalResults": 0, "Resources": []},
    )


def _no_retry_after(req: Req, resp: Resp) -> None:
    resp.headers = {k: v for k, v in resp.headers.items() if k.lower() != "retry-after"}


def slow_limiter(per_second: float) -> Violation:
    """A limiter of its own in front of the server: ``per_second`` requests a second, in
    bursts of as many, 429 with Retry-After beyond."""
    bucket = {"permits": per_second, "at": time.monotonic()}

    async def violation(req: Req, forward: Forward) -> Resp:
        now = time.monotonic()
        bucket["permits"] = min(per_second, bucket["permits"] + (now - bucket["at"]) * per_second)
        bucket["at"] = now
        if bucket["permits"] < 1:
            raw = json.dumps(error(429, "slow down")).encode()
            return Resp(429, {"Content-Type": "application/scim+json", "Retry-After": "1"}, raw)
        bucket["permits"] -= 1
        return await forward(req)

    return violation


def _soft_delete(req: Req, forward: Forward) -> Awaitable[Resp]:
    """DELETE /Users/{id} deactivates instead: the userName stays taken."""
    if req.method == "DELETE" and req.path.startswith("/Users/"):
        req.method = "PATCH"
        req.set_json(
            {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            }
        )
    return forward(req)


def _drop_attribute(name: str) -> Callable[[dict[str, Any]], None]:
    def fn(body: dict[str, Any]) -> None:
        body["attributes"] = [a for a in body["attributes"] if a["name"] != name]

    return fn


def operations_cut_to(count: int) -> Callable[[Req], None]:
    """A server that applies only the first ``count`` operations of a PATCH."""

    def before(req: Req) -> None:
        body = req.json()
        body["Operations"] = body["Operations"][:count]
        req.set_json(body)

    return before


def _drop_external_id(req: Req) -> None:
    req.set_json({k: v for k, v in req.json().items() if k != "externalId"})


def _leaky(req: Req, resp: Resp) -> None:
    body = resp.json()
    if resp.status >= 400 and isinstance(body, dict):
        body["detail"] = (
            f'{body.get("detail")}\nTraceback (most recent call last):\n  File "app.py"'
        )
        resp.set_json(body)


def _changes_passwords_not(body: dict[str, Any]) -> None:
    body["changePassword"] = {"supported": False}


async def _no_password_anywhere(req: Req, forward: Forward) -> Resp:
    """Declares no password (SPC and /Schemas), yet the server behind takes one."""
    if spc(req):
        return await when(spc, after=mutate(_changes_passwords_not))(req, forward)
    if user_schema(req):
        return await when(user_schema, after=mutate(_drop_attribute("password")))(req, forward)
    return await forward(req)


VIOLATIONS: list[tuple[str, str, Violation]] = [
    (
        "ipsie.rate-limit-burst",
        "429 without Retry-After",
        when(lambda req: True, after=lambda req, resp: _no_retry_after(req, resp)),
    ),
    ("ipsie.sustained-rate", "10 requests a second", slow_limiter(10)),
    (
        "ipsie.bulk",
        "bulk not advertised",
        when(spc, after=mutate(lambda body: body.update(bulk={"supported": False}))),
    ),
    ("ipsie.patch-several-attributes", "first op only", when(patch_user, operations_cut_to(1))),
    ("ipsie.deactivate", "active false ignored", ignored(sets_active(False))),
    ("ipsie.reactivate", "active true ignored", ignored(sets_active(True))),
    ("ipsie.deactivation-ends-sign-in", "active false ignored", ignored(sets_active(False))),
    ("ipsie.recreate-after-delete", "delete deactivates", _soft_delete),
    ("ipsie.get-user", "user by id 404", answer(user, 404, error(404, "no"))),
    ("ipsie.filter.user-username", "userName eq", nothing_found("userName eq", users)),
    ("ipsie.filter.user-externalid", "externalId eq", nothing_found("externalId eq", users)),
    ("ipsie.filter.user-email", "emails[value eq", nothing_found("emails[value eq", users)),
    ("ipsie.filter.user-work-email", "emails[type eq", nothing_found("emails[type eq", users)),
    ("ipsie.user-schema", "no active", when(user_schema, after=mutate(_drop_attribute("active")))),
    ("ipsie.no-password", "password taken, not declared", _no_password_anywhere),
    (
        "ipsie.create-user",
        "created answered 200",
        when(post_user, after=lambda req, resp: setattr(resp, "status", 200)),
    ),
    ("ipsie.patch-user", "PATCH ignored", ignored(patch_user)),
    (
        "ipsie.list-users-page-size",
        "maxResults 5000",
        when(spc, after=mutate(lambda body: body["filter"].update(maxResults=5000))),
    ),
    ("ipsie.group-schema", "externalId dropped", when(post_group, _drop_external_id)),
    (
        "ipsie.group-unique-name",
        "duplicate created",
        when(post_group, after=lambda req, resp: setattr(resp, "status", 201)),
    ),
    (
        "ipsie.group-zero-members",
        "empty group refused",
        answer(
            lambda req: post_group(req) and not req.json().get("members"),
            400,
            error(400, "a group needs members"),
        ),
    ),
    ("ipsie.list-groups", "no group listing", answer(groups, 501, error(501, "not here"))),
    ("ipsie.get-group", "group by id 404", answer(group, 404, error(404, "no"))),
    (
        "ipsie.filter.group-displayname",
        "displayName eq",
        nothing_found("displayName eq", groups),
    ),
    ("ipsie.filter.group-externalid", "externalId eq", nothing_found("externalId eq", groups)),
    ("ipsie.filter.group-members", "members[value eq", nothing_found("members[value eq", groups)),
    ("ipsie.patch-group", "PATCH ignored", ignored(patch_group)),
    (
        "ipsie.patch-group-member-operations",
        "40 operations a PATCH",
        when(patch_group, operations_cut_to(40)),
    ),
    ("ipsie.error-format", "traceback in errors", when(lambda req: True, after=_leaky)),
]
PENDING = {
    "ipsie.oauth-client-credentials",
    "ipsie.oauth-scim-scope",
    "ipsie.oauth-server-metadata",
    "ipsie.token-expiry",
    "ipsie.audit-log",
}
"""The items the runner cannot test yet: they always skip, saying why."""


def test_every_check_fails_behind_a_violation_or_is_pending() -> None:
    every = [c.id for c in suites()["ipsie"]]
    assert len(every) == 34
    assert sorted(every) == sorted([c for c, _, _ in VIOLATIONS] + sorted(PENDING))


def test_every_check_counts_towards_al2_and_the_al1_items_towards_al1() -> None:
    checks = suites()["ipsie"]
    assert all(AL2 in c.profiles for c in checks)
    al1 = {c.id for c in checks if AL1 in c.profiles}
    assert len(al1) == 19
    assert all(c.source.startswith("OpenID IPSIE AL SCIM 2.0 Profile draft 00 §") for c in checks)


@pytest.mark.parametrize(
    ("check_id", "violation"),
    [(c, v) for c, _, v in VIOLATIONS],
    ids=[f"{c}:{name}" for c, name, _ in VIOLATIONS],
)
async def test_a_broken_server_fails_the_check(
    aiohttp_server: Any,
    client: TestClient,
    scim: Scim,
    saml: SamlTarget,
    check_id: str,
    violation: Violation,
) -> None:
    real = scim_base(client, scim)
    honest = await start_proxy(aiohttp_server, real, when(lambda req: False))
    fine = await run_ipsie(honest, scim.token, saml, [check_id])
    expected = Verdict.SKIP if check_id == "ipsie.no-password" else Verdict.PASS
    assert [r.verdict for r in fine.results] == [expected], explain(fine)
    broken = await start_proxy(aiohttp_server, real, violation)
    result = await run_ipsie(broken, scim.token, saml, [check_id])
    (verdict,) = result.results
    assert (verdict.verdict, verdict.reason != "") == (Verdict.FAIL, True), verdict.reason
    assert verdict.transcript, "a failure must carry its evidence"


async def test_every_report_carries_each_profile_verdict_and_each_check_source(
    aiohttp_server: Any, client: TestClient, scim: Scim, saml: SamlTarget
) -> None:
    broken = await start_proxy(
        aiohttp_server, scim_base(client, scim), nothing_found("members[value eq", groups)
    )
    only = ["ipsie.get-user", "ipsie.oauth-scim-scope", "ipsie.filter.group-members"]
    result = await run_ipsie(broken, scim.token, saml, only)
    lines = {
        AL1: "IPSIE AL1: 1/2 pass, 1 skipped",
        AL2: "IPSIE AL2: 1/3 pass, 1 failed, 1 skipped",
    }
    assert result.profile_verdicts() == lines

    assert reports.terminal(result).splitlines()[-3:-1] == list(lines.values())
    document = json.loads(reports.to_json(result))
    assert {name: p["verdict"] for name, p in document["profiles"].items()} == lines
    assert document["profiles"][AL2]["fail"] == 1
    get_user = next(r for r in document["results"] if r["id"] == "ipsie.get-user")
    source = get_user["source"]
    assert source == "OpenID IPSIE AL SCIM 2.0 Profile draft 00 §5.3"
    assert get_user["profiles"] == [AL1, AL2]

    suite = ET.fromstring(reports.junit(result)).find("testsuite")
    assert suite is not None
    assert {p.get("name"): p.get("value") for p in suite.findall("properties/property")} == lines
    case = suite.find("testcase[@name='ipsie.get-user']")
    assert case is not None
    case_source = case.find("properties/property[@name='source']")
    assert case_source is not None and case_source.get("value") == source

    page = html_report.render(result)
    assert all(f"<li>{line}</li>" in page for line in lines.values())
    assert f"{source}</strong> (ipsie suite; IPSIE AL1; IPSIE AL2)" in page
