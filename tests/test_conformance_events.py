"""The ``events`` suite, proven both ways.

Against our real server every profile's lifecycle leaves exactly the events its requests make.
Against a broken event feed (a proxy in front of the admin API that drops, duplicates,
reorders or renumbers events, leaks a password, changes the client, or shows an event for a
refused request) the check of that family fails: none can pass vacuously.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance import local
from conformance.checks import Verdict, suites
from conformance.cli import parser, run_options
from conformance.runner import RunResult, run
from tests.support.proxy import Req, Resp, Violation, is_, start_proxy, when
from tests.support.scim import ADMIN_TOKEN, Scim

PROFILES = ["okta-oin", "okta-aiw", "jumpcloud", "entra"]
FAMILIES = ["sequence", "numbering", "attributes", "client", "refused"]
EVENT_IDS = [f"events.{p}.{f}" for p in PROFILES for f in FAMILIES]


def root(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


def explain(result: RunResult) -> str:
    return "\n".join(
        f"{r.check.id}: {r.verdict} {r.reason}" for r in result.results if r.verdict != Verdict.PASS
    )


def test_the_suite_registers_every_family_for_every_profile() -> None:
    assert [c.id for c in suites()["events"]] == EVENT_IDS
    assert "events" in local.default_suites(suites())  # make conformance runs it


def test_the_admin_token_and_server_url_reach_the_suites() -> None:
    args = parser().parse_args(
        ["--base-url", "http://h/scim/v2/a", "--admin-token", "t", "--server-url", "http://h/x"]
    )
    assert run_options(args) | {"saml": None} == {
        "second_base_url": None,
        "second_token": None,
        "large": False,
        "admin_token": "t",
        "server_url": "http://h/x",
        "saml": None,
    }


async def test_every_profiles_lifecycle_leaves_exactly_its_events_on_our_server(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    result = await run(
        f"{root(client)}{scim.base}",
        scim.token,
        ["events"],
        options={"admin_token": ADMIN_TOKEN},
    )
    assert {r.check.id: r.verdict for r in result.results} == dict.fromkeys(
        EVENT_IDS, Verdict.PASS
    ), explain(result)
    assert result.profile_verdicts()["events okta-oin"] == "events okta-oin: 5/5 pass"


def on_feed(edit: Callable[[list[dict[str, Any]]], None]) -> Violation:
    """A server whose event feed is ``edit``ed before the client sees it (pages with events)."""

    def after(req: Req, resp: Resp) -> None:
        body = resp.json()
        if isinstance(body, dict) and body.get("events"):
            edit(body["events"])
            resp.set_json(body)

    return when(is_("GET", r"/admin/tenants/[^/]+/events"), after=after)


def drop_one(events: list[dict[str, Any]]) -> None:
    del events[len(events) // 2]


def duplicate_one(events: list[dict[str, Any]]) -> None:
    events.append(dict(events[-1]))


def reorder_a_resource(events: list[dict[str, Any]]) -> None:
    """The first two events of a resource swapped, each keeping its place's sequence number."""
    for resource in {e["resource"]["id"] for e in events}:
        places = [i for i, e in enumerate(events) if e["resource"]["id"] == resource]
        if len(places) > 1:
            a, b = places[:2]
            events[a], events[b] = events[b], events[a]
            events[a]["sequence"], events[b]["sequence"] = a + 1, b + 1
            return


def renumber(events: list[dict[str, Any]]) -> None:
    for event in events[len(events) // 2 :]:
        event["sequence"] += 1


def leak_password(events: list[dict[str, Any]]) -> None:
    for event in events:
        if "password" in event["attributes"]:
            event["values"]["password"] = "N3w-Passw0rd!"


def other_client(events: list[dict[str, Any]]) -> None:
    events[-1]["client"]["idp"] = "entra"


def emit_the_refused(events: list[dict[str, Any]]) -> None:
    """The refused re-creation of the first user shown as a creation of its own."""
    created = next((e for e in events if e["type"] == "user.created"), None)
    if created is None:
        return
    forged = {**created, "id": str(uuid.uuid4()), "sequence": len(events) + 1}
    forged["resource"] = {**created["resource"], "id": str(uuid.uuid4())}
    events.append(forged)


@pytest.mark.parametrize(
    ("family", "edit", "reason"),
    [
        ("sequence", drop_one, "the IdP's requests make"),
        ("sequence", duplicate_one, "the IdP's requests make"),
        ("sequence", reorder_a_resource, "the IdP's requests make"),
        ("numbering", renumber, "expected 1.."),
        ("attributes", leak_password, "carries a password"),
        ("client", other_client, "says client"),
        ("refused", emit_the_refused, "was refused with 409"),
    ],
)
async def test_each_family_fails_against_a_feed_that_breaks_it(
    aiohttp_server: Any,
    client: TestClient[Any, Any],
    scim: Scim,
    family: str,
    edit: Callable[[list[dict[str, Any]]], None],
    reason: str,
) -> None:
    proxy = await start_proxy(aiohttp_server, root(client), on_feed(edit))
    check_id = f"events.okta-oin.{family}"
    result = await run(
        f"{proxy}{scim.base}",
        scim.token,
        ["events"],
        only=[check_id],
        options={"admin_token": ADMIN_TOKEN},
    )
    [outcome] = result.results
    assert outcome.verdict == Verdict.FAIL, outcome.reason
    assert reason in outcome.reason


async def test_without_the_admin_token_the_suite_skips_saying_why(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    result = await run(
        f"{root(client)}{scim.base}", scim.token, ["events"], only=["events.entra.client"]
    )
    [outcome] = result.results
    assert outcome.verdict == Verdict.SKIP
    assert "--admin-token" in outcome.reason
