"""The ``cross-instance`` conformance suite (issue 12): every check passes against this server
and leaves nothing behind, skips without the admin token, and fails against a broken server
that breaks its rule (a proxy in front of the real one, ``tests/support/proxy.py``)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance.checks import Verdict, suites
from conformance.runner import run
from tests.support.proxy import Req, Resp, Violation, answer, is_, mutate, start_proxy, when
from tests.support.scim import ADMIN, ADMIN_TOKEN, Scim

SUITE = "cross-instance"
OPTIONS = {"admin_token": ADMIN_TOKEN}


def _root(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


def _extra_instance(req: Req, resp: Resp) -> None:
    """A selection that offers one instance more than the person administers."""
    resp.body = resp.body.replace(
        b'<ul id="instances">', b'<ul id="instances"><li id="instance-x">'
    )


def _policy_unnamed(body: dict[str, Any]) -> None:
    if body.get("status") == "409":
        body["detail"] = "conflict"


SELECTION = r"/signin/instances"
VIOLATIONS: list[tuple[str, str, Violation]] = [
    (
        "cross-instance.admin-selection",
        "offers an instance the person does not administer",
        when(is_("GET", SELECTION), after=_extra_instance),
    ),
    (
        "cross-instance.refused-choice",
        "accepts any choice",
        answer(is_("POST", SELECTION), 200, b"<p>welcome</p>", "text/html"),
    ),
    (
        "cross-instance.non-admin",
        "shows everyone a selection",
        answer(is_("GET", SELECTION), 200, b'<p id="instance-x">pick</p>', "text/html"),
    ),
    (
        "cross-instance.one-team",
        "does not name the policy that refused",
        when(is_("POST", r"/scim/v2/[^/]+/Users"), after=mutate(_policy_unnamed)),
    ),
]


async def _tenants(scim: Scim) -> list[str]:
    listing = await (await scim.client.get("/admin/tenants", headers=ADMIN)).json()
    return [tenant["name"] for tenant in listing["tenants"]]


async def test_every_check_passes_against_our_server_and_removes_its_tenants(scim: Scim) -> None:
    result = await run(_root(scim.client) + scim.base, scim.token, [SUITE], options=OPTIONS)
    verdicts = [(r.check.id, r.verdict, r.reason) for r in result.results]
    assert verdicts == [(c.id, Verdict.PASS, "") for c in suites()[SUITE]]
    assert await _tenants(scim) == [scim.tenant]
    groups = await (await scim.client.get("/admin/instance-groups", headers=ADMIN)).json()
    assert groups["instance_groups"] == []


async def test_without_the_admin_token_every_check_skips_and_says_why(scim: Scim) -> None:
    result = await run(_root(scim.client) + scim.base, scim.token, [SUITE])
    assert {r.verdict for r in result.results} == {Verdict.SKIP}
    assert all("--admin-token" in r.reason for r in result.results)


def test_every_check_has_a_violation_here() -> None:
    assert {c.id for c in suites()[SUITE]} == {check_id for check_id, _, _ in VIOLATIONS}
    assert all("specific to this server" in c.source or "this server" in c.source
               for c in suites()[SUITE])  # fmt: skip


@pytest.mark.parametrize(
    ("check_id", "violation"),
    [(c, v) for c, _, v in VIOLATIONS],
    ids=[f"{c}:{name}" for c, name, _ in VIOLATIONS],
)
async def test_a_broken_server_fails_the_check(
    aiohttp_server: Any, scim: Scim, check_id: str, violation: Violation
) -> None:
    root = _root(scim.client)
    honest = await start_proxy(aiohttp_server, root, when(lambda req: False))
    fine = await run(honest + scim.base, scim.token, [SUITE], only=[check_id], options=OPTIONS)
    assert [(r.verdict, r.reason) for r in fine.results] == [(Verdict.PASS, "")]
    broken = await start_proxy(aiohttp_server, root, violation)
    result = await run(broken + scim.base, scim.token, [SUITE], only=[check_id], options=OPTIONS)
    [verdict] = result.results
    assert (verdict.verdict, verdict.reason != "") == (Verdict.FAIL, True), verdict.reason
    assert verdict.transcript, "a failure must carry its evidence"
    assert re.search(r"scimconf-", " ".join(e.url for e in verdict.transcript))
    assert await _tenants(scim) == [scim.tenant]
