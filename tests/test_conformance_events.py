"""The ``events`` suite, proven both ways.

Against our real server every profile's lifecycle leaves exactly the events its requests make.
Against a broken event feed (a proxy in front of the admin API that drops, duplicates,
reorders or renumbers events, leaks a password, changes the client, or shows an event for a
refused request) the check of that family fails: none can pass vacuously.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance import local
from conformance.checks import CheckResult, Verdict, suites
from conformance.cli import parser, run_options
from conformance.runner import RunResult, run
from conformance.suites import event_channels
from conformance.suites.event_channels import (
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    ACTIVATE,
    CREATE,
    DEACTIVATE,
    DELETE,
    PATCH,
    ROUNDS,
    SESSION_REVOKED,
    expected_sets,
    overtaken,
    subject,
)
from conformance.suites.events import head
from conformance.urns import ENTERPRISE, GROUP, USER
from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.proxy import Forward, Req, Resp, Violation, is_, start_proxy, when
from tests.support.scim import ADMIN_TOKEN, Scim

PROFILES = ["okta-oin", "okta-aiw", "jumpcloud", "entra"]
FAMILIES = ["sequence", "numbering", "attributes", "client", "refused", "webhooks", "ssf"]
EVENT_IDS = [f"events.{p}.{f}" for p in PROFILES for f in FAMILIES]
FEW_POLLS = ROUNDS // 4
"""Fewer SSF polls than a quarter of the wait's rounds: the wait ended once what the IdP's
requests make came (or a loss showed), it did not sit out its bound."""
SHORT_ROUNDS = 20
"""The wait's bound, cut for the tests of a channel that never catches up (it is judged late
only once the bound is over)."""
POLL = r"/ssf/[^/]+/poll/[^/]+"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's webhook receiver listens on 127.0.0.1, as under ``make conformance``."""
    return dataclasses.replace(settings, webhook_allow_private=True)


def root(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


def explain(result: RunResult) -> str:
    return "\n".join(
        f"{r.check.id}: {r.verdict} {r.reason}" for r in result.results if r.verdict != Verdict.PASS
    )


async def one_check(server: str, scim: Scim, check_id: str) -> CheckResult:
    """One check of the suite against ``server`` (the real one, or a proxy of it)."""
    result = await run(
        f"{server}{scim.base}",
        scim.token,
        ["events"],
        only=[check_id],
        options={"admin_token": ADMIN_TOKEN},
    )
    [outcome] = result.results
    return outcome


def test_the_suite_registers_every_family_for_every_profile() -> None:
    assert [c.id for c in suites()["events"]] == EVENT_IDS
    assert "events" in local.default_suites(suites())  # make conformance runs it


@pytest.mark.parametrize(
    ("path", "attribute"),
    [
        ("title", "title"),
        ('emails[type eq "work"].value', "emails"),
        ("name.givenName", "name"),
        (f"{USER}:title", "title"),
        (f"{USER}:name.givenName", "name"),
        (f"{GROUP}:displayName", "displayName"),
        ("manager", ENTERPRISE),
        (f"{ENTERPRISE}:manager", ENTERPRISE),
        (f"{ENTERPRISE}:manager.value", ENTERPRISE),
        (ENTERPRISE, ENTERPRISE),
    ],
)
def test_a_patch_path_names_the_top_level_attribute_the_servers_event_names(
    path: str, attribute: str
) -> None:
    """Core attributes by their own name however qualified; every enterprise attribute, and the
    extension as a whole, by the extension's URN (RFC 7643 §3.3: it is one complex attribute)."""
    assert head(path) == attribute


SESSION, DISABLED, ENABLED = SESSION_REVOKED, ACCOUNT_DISABLED, ACCOUNT_ENABLED


def feed_event(type: str, attributes: list[str]) -> dict[str, Any]:
    return {"type": type, "resource": {"type": "User", "id": "u1"}, "attributes": attributes}


@pytest.mark.parametrize(
    ("event", "uris"),
    [
        (feed_event("user.created", ["userName"]), [CREATE]),
        (feed_event("user.deactivated", ["active"]), [DEACTIVATE, SESSION, DISABLED]),
        (
            feed_event("user.deactivated", ["active", "title"]),
            [DEACTIVATE, PATCH, SESSION, DISABLED],
        ),
        (feed_event("user.reactivated", ["active"]), [ACTIVATE, ENABLED]),
        (feed_event("user.deleted", []), [DELETE, SESSION, DISABLED]),
    ],
)
def test_each_feed_event_makes_the_sets_docs_ssf_md_says(
    event: dict[str, Any], uris: list[str]
) -> None:
    """The table as docs/ssf.md writes it: a SCIM subject for the prov events, the person
    (``iss_sub``) for CAEP and RISC; a PUT that deactivates and changes more, a patch too."""
    made = expected_sets(event, "https://h/ssf/t")
    assert [uri for uri, _ in made] == uris
    scim = subject({"format": "scim", "uri": "/Users/u1"})
    person = subject({"format": "iss_sub", "iss": "https://h/ssf/t", "sub": "u1"})
    assert [said for _, said in made] == [person if "schemas.openid" in u else scim for u in uris]


def test_the_admin_token_and_server_url_reach_the_suites() -> None:
    args = parser().parse_args(
        [
            *("--base-url", "http://h/scim/v2/a", "--admin-token", "t"),
            *("--server-url", "http://h/x", "--events-receiver-host", "10.1.2.3"),
            *("--events-receiver-port", "8099"),
        ]
    )
    options = run_options(args)
    named = ("admin_token", "server_url", "events_receiver_host", "events_receiver_port")
    assert {key: options[key] for key in named} == {
        "admin_token": "t",
        "server_url": "http://h/x",
        "events_receiver_host": "10.1.2.3",
        "events_receiver_port": 8099,
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
    assert result.profile_verdicts()["events okta-oin"] == "events okta-oin: 7/7 pass"


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


@dataclass
class PollCount:
    """How often the suite polled its SSF stream through a proxy."""

    polls: int = 0

    def around(self, violation: Violation) -> Violation:
        async def counted(req: Req, forward: Forward) -> Resp:
            if re.fullmatch(POLL, req.path):
                self.polls += 1
            return await violation(req, forward)

        return counted


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
    """The listeners await what the IdP's requests make, not what the broken feed shows: the
    stream is polled until it has that, not for the wait's whole bound."""
    counted = PollCount()
    proxy = await start_proxy(aiohttp_server, root(client), counted.around(on_feed(edit)))
    outcome = await one_check(proxy, scim, f"events.okta-oin.{family}")
    assert outcome.verdict == Verdict.FAIL, outcome.reason
    assert reason in outcome.reason
    assert counted.polls < FEW_POLLS


async def test_without_the_admin_token_the_suite_skips_saying_why(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    result = await run(
        f"{root(client)}{scim.base}", scim.token, ["events"], only=["events.entra.client"]
    )
    [outcome] = result.results
    assert outcome.verdict == Verdict.SKIP
    assert "--admin-token" in outcome.reason


# --- the webhook and the SSF stream, broken ------------------------------------------------------

Delivered = tuple[dict[str, str], bytes]
"""A delivery as the relay passes it on: its Standard Webhooks headers and its body."""


@dataclass
class Relay:
    """A broken delivery path: the admin proxy gives the webhook this relay's URL instead of
    the suite's receiver, and each delivery reaches the receiver as ``edit`` says (it answers
    the ones to pass on now, given the delivery's number)."""

    edit: Callable[[int, Delivered], list[Delivered]]
    url: str = ""
    target: str = ""
    count: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.count += 1
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("webhook-")}
        async with aiohttp.ClientSession() as session:
            for sent_headers, body in self.edit(self.count, (headers, await request.read())):
                await session.post(self.target, data=body, headers=sent_headers)
        return web.Response(status=204)

    def registration(self) -> Violation:
        def before(req: Req) -> None:
            body = req.json()
            self.target, body["url"] = body["url"], self.url
            req.set_json(body)

        return when(is_("POST", r"/admin/tenants/[^/]+/webhooks"), before=before)


def drop_a_groups_creation(n: int, delivery: Delivered) -> list[Delivered]:
    """Every group's creation lost: the group's members PATCH, always sent, overtakes it."""
    return [] if json.loads(delivery[1])["type"] == "group.created" else [delivery]


def corrupt_a_signature(n: int, delivery: Delivered) -> list[Delivered]:
    headers, body = delivery
    if n == 2:
        headers = {**headers, "webhook-signature": "v1,bm90IHRoZSBzaWduYXR1cmUgb2YgaXQ="}
    return [(headers, body)]


def swap_two_of_a_resource() -> Callable[[int, Delivered], list[Delivered]]:
    """The first group's creation held back until the next delivery of that group passed it
    (a group's creation is always followed: its members come by a PATCH)."""
    held: list[Delivered] = []
    group: list[str] = []

    def edit(n: int, delivery: Delivered) -> list[Delivered]:
        event = json.loads(delivery[1])
        if event["type"] == "group.created" and not group:
            group.append(event["resource"]["id"])
            held.append(delivery)
            return []
        if held and event["resource"]["id"] in group:
            return [delivery, held.pop()]
        return [delivery]

    return edit


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (drop_a_groups_creation, "were never delivered"),
        (corrupt_a_signature, "does not verify against the secret"),
        (swap_two_of_a_resource(), "the feed orders them"),
    ],
    ids=["drops-one", "corrupts-a-signature", "reorders-a-resource"],
)
async def test_the_webhooks_check_fails_against_deliveries_that_break_it(
    aiohttp_server: Any,
    client: TestClient[Any, Any],
    scim: Scim,
    edit: Callable[[int, Delivered], list[Delivered]],
    reason: str,
) -> None:
    outcome = await through_relay(aiohttp_server, root(client), scim, edit)
    assert outcome.verdict == Verdict.FAIL, outcome.reason
    assert reason in outcome.reason


def redeliver_each_second(n: int, delivery: Delivered) -> list[Delivered]:
    return [delivery, delivery] if n % 2 == 0 else [delivery]


async def test_the_webhooks_check_takes_a_redelivery_for_one_delivery(
    aiohttp_server: Any, client: TestClient[Any, Any], scim: Scim
) -> None:
    """At least once: the same event again, the same bytes, is no fault."""
    outcome = await through_relay(aiohttp_server, root(client), scim, redeliver_each_second)
    assert outcome.verdict == Verdict.PASS, outcome.reason


async def through_relay(
    aiohttp_server: Any, real: str, scim: Scim, edit: Callable[[int, Delivered], list[Delivered]]
) -> CheckResult:
    """The okta-oin webhooks check, its deliveries passed on as ``edit`` says."""
    relay = Relay(edit)
    app = web.Application()
    app.router.add_post("/{tail:.*}", relay.handle)
    relay.url = str((await aiohttp_server(app, host="127.0.0.1")).make_url("/relay"))
    proxy = await start_proxy(aiohttp_server, real, relay.registration())
    return await one_check(proxy, scim, "events.okta-oin.webhooks")


Sets = dict[str, str]


def on_polls(real: str, edit: Callable[[Sets], None]) -> Violation:
    """A transmitter whose poll answers are ``edit``ed. Its SSF answers keep the real server's
    URL (the proxy would show its own), as the SETs, signed by the real server, say it."""

    async def violation(req: Req, forward: Forward) -> Resp:
        resp = await forward(req)
        if "/ssf" in req.path:
            resp.body = resp.body.replace(f"http://{req.headers['Host']}".encode(), real.encode())
        body = resp.json()
        if re.fullmatch(POLL, req.path) and body.get("sets"):
            edit(body["sets"])
            resp.set_json(body)
        return resp

    return violation


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def drop_a_set() -> Callable[[Sets], None]:
    """The first SET of the first answer whose subject has a later SET in that answer, left out
    of every answer (a lost SET, not a late one: a later SET of its subject overtakes it)."""
    dropped: set[str] = set()

    def edit(sets: Sets) -> None:
        if not dropped:
            subjects = [json.dumps(claims_of(t)["sub_id"], sort_keys=True) for t in sets.values()]
            jti = next(j for n, j in enumerate(sets) if subjects[n] in subjects[n + 1 :])
            dropped.add(jti)
        for jti in dropped & set(sets):
            del sets[jti]

    return edit


def change_a_claim(sets: Sets) -> None:
    """The first SET's subject changed, its signature kept."""
    jti = next(iter(sets))
    header, _, signature = sets[jti].split(".")
    claims = claims_of(sets[jti])
    claims["sub_id"] = {"format": "scim", "uri": "/Users/someone-else"}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    sets[jti] = f"{header}.{payload}.{signature}"


def swap_two_of_a_subject(sets: Sets) -> None:
    """The first two SETs about one subject answered the other way round."""
    seen: dict[str, str] = {}
    for jti, token in sets.items():
        key = json.dumps(claims_of(token)["sub_id"], sort_keys=True)
        if key in seen:
            order = list(sets.items())
            a, b = [i for i, (j, _) in enumerate(order) if j in (seen[key], jti)]
            order[a], order[b] = order[b], order[a]
            sets.clear()
            sets.update(order)
            return
        seen[key] = jti


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (drop_a_set(), "docs/ssf.md's table makes"),
        (change_a_claim, "does not verify against /ssf/jwks"),
        (swap_two_of_a_subject, "the feed orders them"),
    ],
    ids=["drops-a-set", "changes-a-claim", "reorders-a-subject"],
)
async def test_the_ssf_check_fails_against_a_stream_that_breaks_it(
    aiohttp_server: Any,
    client: TestClient[Any, Any],
    scim: Scim,
    edit: Callable[[Sets], None],
    reason: str,
) -> None:
    """Judged as soon as the stream has what the IdP's requests make or a loss shows (a SET
    missing that a later one of its subject overtook): not after the wait's whole bound."""
    counted = PollCount()
    proxy = await start_proxy(
        aiohttp_server, root(client), counted.around(on_polls(root(client), edit))
    )
    outcome = await one_check(proxy, scim, "events.okta-oin.ssf")
    assert outcome.verdict == Verdict.FAIL, outcome.reason
    assert reason in outcome.reason
    assert counted.polls < FEW_POLLS


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listeners' wait bounded by ``SHORT_ROUNDS``."""
    monkeypatch.setattr(event_channels, "ROUNDS", SHORT_ROUNDS)


def answer_none(sets: Sets) -> None:
    sets.clear()


@pytest.mark.usefixtures("short_wait")
async def test_a_stream_that_never_catches_up_fails_the_ssf_check_as_late_after_the_whole_wait(
    aiohttp_server: Any,
    client: TestClient[Any, Any],
    scim: Scim,
) -> None:
    counted = PollCount()
    proxy = await start_proxy(
        aiohttp_server, root(client), counted.around(on_polls(root(client), answer_none))
    )
    outcome = await one_check(proxy, scim, "events.okta-oin.ssf")
    assert outcome.verdict == Verdict.FAIL, outcome.reason
    assert "late: the IdP's requests make" in outcome.reason
    assert counted.polls == SHORT_ROUNDS


def stop_after_the_second(n: int, delivery: Delivered) -> list[Delivered]:
    """The first two deliveries, then none: no later one overtakes a missing one."""
    return [delivery] if n <= 2 else []


@pytest.mark.usefixtures("short_wait")
async def test_deliveries_that_never_catch_up_fail_the_webhooks_check_as_late(
    aiohttp_server: Any,
    client: TestClient[Any, Any],
    scim: Scim,
) -> None:
    outcome = await through_relay(aiohttp_server, root(client), scim, stop_after_the_second)
    assert outcome.verdict == Verdict.FAIL, outcome.reason
    assert "late: the IdP's requests make" in outcome.reason


@pytest.mark.parametrize(
    ("orders", "arrived", "shows"),
    [
        ([["a", "b", "c"]], {"a", "b", "c"}, False),
        ([["a", "b", "c"]], {"a", "b"}, False),
        ([["a", "b", "c"]], set(), False),
        ([["a", "b", "c"]], {"a", "c"}, True),
        ([["a", "b", "c"]], {"b"}, True),
        ([["a", "b"], ["x", "y"]], {"a", "b", "x"}, False),
        ([["a", "b"], ["x", "y"]], {"a", "y"}, True),
    ],
)
def test_a_loss_shows_once_a_later_item_of_the_same_order_overtook_a_missing_one(
    orders: list[list[str]], arrived: set[str], shows: bool
) -> None:
    assert overtaken(orders, arrived) is shows


async def test_a_server_that_may_not_reach_the_receiver_skips_the_webhooks_check_saying_how(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, scim: Scim
) -> None:
    guarded: TestClient[Any, Any] = await aiohttp_client(
        create_app(dataclasses.replace(settings, webhook_allow_private=False))
    )
    outcome = await one_check(root(guarded), scim, "events.jumpcloud.webhooks")
    assert outcome.verdict == Verdict.SKIP, outcome.reason
    assert "SCIM_WEBHOOK_ALLOW_PRIVATE=1" in outcome.reason
