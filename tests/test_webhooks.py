"""Webhooks: a tenant's endpoints receive its provisioning events, signed per Standard Webhooks,
at least once and in order per resource, with retries, dead letters, a delivery log, replay,
secret rotation, and no private target unless allowed.

Over real HTTP against the application (its relay and delivery engine running), on a real
database, to a real aiohttp receiver on 127.0.0.1 (so private targets are allowed here, except
in the tests of their refusal); the receiver verifies with the ``standardwebhooks`` package.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from standardwebhooks import Webhook, WebhookVerificationError

from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.events import awaited_events
from tests.support.scim import ADMIN, Scim, make_tenant, scim_error
from tests.support.urns import GROUP, PATCH_OP, USER
from tests.support.webhooks import (
    Receiver,
    admin_call,
    delivering_to_tests,
    register,
    start_receiver,
)

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Receivers on 127.0.0.1, and retries in fractions of a second."""
    return delivering_to_tests(settings)


@pytest.fixture
def make_client(aiohttp_client: Any, settings: Settings, mongo_db: Any) -> MakeClient:
    """An application on the test's database with these settings changed."""

    async def make(**changes: Any) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = await aiohttp_client(
            create_app(dataclasses.replace(settings, **changes))
        )
        return client

    return make


@pytest.fixture
async def receiver(aiohttp_server: Any) -> Receiver:
    return await start_receiver(aiohttp_server)


def _patch(op: str, path: str, value: Any) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": op, "path": path, "value": value}]}


async def _user(scim: Scim, name: str) -> str:
    response = await scim.post("/Users", json={"schemas": [USER], "userName": name})
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def test_a_webhook_is_created_listed_shown_changed_and_deleted(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    created = await register(client, "acme", "http://127.0.0.1:9/hook", ["user.created"])
    assert set(created) == {"id", "url", "events", "secret"}
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["user.created"]
    item = f"/tenants/acme/webhooks/{created['id']}"

    status, listed = await admin_call(client, "GET", "/tenants/acme/webhooks")
    assert status == 200 and [w["id"] for w in listed["webhooks"]] == [created["id"]]
    status, shown = await admin_call(client, "GET", item)
    assert status == 200 and shown["url"] == "http://127.0.0.1:9/hook" and shown["enabled"]
    assert "secret" not in shown and created["secret"] not in str(listed)

    changes = {"url": "http://127.0.0.1:10/other", "events": None, "enabled": False}
    status, changed = await admin_call(client, "PATCH", item, changes)
    assert status == 200, changed
    assert (changed["url"], changed["events"], changed["enabled"]) == (
        "http://127.0.0.1:10/other",
        None,
        False,
    )

    assert (await admin_call(client, "DELETE", item))[0] == 204
    response = await client.get(f"/admin{item}", headers=ADMIN)
    await scim_error(response, 404)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": "ftp://example.com/hook"},
        {"url": "http:///no-host"},
        {"url": 42},
        {"url": "http://127.0.0.1:9/", "events": ["user.exploded"]},
        {"url": "http://127.0.0.1:9/", "events": "user.created"},
        {"url": "http://127.0.0.1:9/", "events": []},
    ],
)
async def test_a_webhook_with_a_bad_url_or_event_type_is_a_400(
    client: TestClient[Any, Any], scim: Scim, body: dict[str, Any]
) -> None:
    response = await client.post(
        "/admin/tenants/acme/webhooks",
        json=body,
        headers=ADMIN,
    )
    await scim_error(response, 400, "invalidValue")


async def test_webhooks_of_an_unknown_tenant_or_id_are_404(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    await scim_error(await client.get("/admin/tenants/nobody/webhooks", headers=ADMIN), 404)
    for method in ("GET", "PATCH", "DELETE"):
        response = await client.request(
            method, "/admin/tenants/acme/webhooks/nope", json={"enabled": True}, headers=ADMIN
        )
        await scim_error(response, 404)


async def test_each_event_arrives_signed_so_that_standardwebhooks_verifies_it(
    client: TestClient[Any, Any], scim: Scim, receiver: Receiver
) -> None:
    webhook = await register(client, "acme", receiver.url())
    user = await _user(scim, "ada")
    (got,) = await receiver.wait_for(1)

    event = Webhook(webhook["secret"]).verify(got.body, got.headers)
    assert event["type"] == "user.created" and event["resource"]["id"] == user
    assert got.headers["webhook-id"] == event["id"]  # receivers dedupe on it
    assert got.headers["Content-Type"] == "application/json"
    (stored,) = await awaited_events(client, "acme", 1)
    assert event == stored  # the body is the event as the outbox reads it
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook["secret"]).verify(got.body.replace(b"ada", b"eve"), got.headers)


async def test_a_webhook_receives_only_the_event_types_it_asked_for(
    client: TestClient[Any, Any], scim: Scim, receiver: Receiver, aiohttp_server: Any
) -> None:
    groups_only = await start_receiver(aiohttp_server)
    await register(client, "acme", groups_only.url(), ["group.created", "group.deleted"])
    await register(client, "acme", receiver.url())
    await _user(scim, "ada")
    response = await scim.post("/Groups", json={"schemas": [GROUP], "displayName": "eng"})
    group = (await response.json())["id"]
    assert (await scim.delete(f"/Groups/{group}")).status == 204
    await _user(scim, "bob")

    await receiver.wait_for(4)
    await groups_only.wait_for(2)
    await asyncio.sleep(0.3)  # nothing else comes
    outbox = await awaited_events(client, "acme", 4)
    assert receiver.events() == outbox  # all of them, in sequence order
    assert groups_only.events() == [e for e in outbox if e["type"].startswith("group.")]
    assert [e["type"] for e in groups_only.events()] == ["group.created", "group.deleted"]


async def test_concurrent_writes_arrive_in_order_per_resource_each_once(
    client: TestClient[Any, Any], scim: Scim, receiver: Receiver
) -> None:
    await register(client, "acme", receiver.url())
    users = await asyncio.gather(*(_user(scim, f"user{n}") for n in range(6)))
    for round_ in range(4):
        answers = await asyncio.gather(
            *(
                scim.patch(f"/Users/{user}", json=_patch("replace", "title", f"t{round_}"))
                for user in users
            )
        )
        assert [answer.status for answer in answers] == [200] * len(users)
    expected = len(users) * 5
    await receiver.wait_for(expected)
    await asyncio.sleep(0.3)
    events = receiver.events()
    assert len(events) == expected
    assert len({e["id"] for e in events}) == expected
    versions: dict[str, list[int]] = defaultdict(list)
    for event in events:
        versions[event["resource"]["id"]].append(event["resource"]["version"])
    assert all(found == [1, 2, 3, 4, 5] for found in versions.values()), versions
    assert [e["sequence"] for e in events] == sorted(e["sequence"] for e in events)


async def test_a_failing_receiver_is_retried_until_it_answers_2xx(
    client: TestClient[Any, Any], scim: Scim, receiver: Receiver
) -> None:
    webhook = await register(client, "acme", receiver.url())
    receiver.answer = lambda _: 500 if len(receiver.received) <= 3 else 204
    await _user(scim, "ada")
    await _user(scim, "bob")
    got = await receiver.wait_for(5)
    # The first event held back the second (in order) until it was delivered.
    assert [g.event["resource"]["version"] for g in got] == [1] * 5
    assert [g.event["sequence"] for g in got] == [1, 1, 1, 1, 2]

    status, log = await admin_call(
        client, "GET", f"/tenants/acme/webhooks/{webhook['id']}/deliveries"
    )
    assert status == 200
    attempts = list(reversed(log["deliveries"]))  # newest first
    assert [(a["sequence"], a["attempt"], a["outcome"], a["status"]) for a in attempts] == [
        (1, 1, "failed", 500),
        (1, 2, "failed", 500),
        (1, 3, "failed", 500),
        (1, 4, "delivered", 204),
        (2, 1, "delivered", 204),
    ]
    assert attempts[0]["response"] == "receiver says 500"
    assert all(a["latency_ms"] >= 0 and a["type"] == "user.created" for a in attempts)


async def test_a_410_disables_the_webhook_and_nothing_more_is_sent(
    client: TestClient[Any, Any], scim: Scim, receiver: Receiver
) -> None:
    webhook = await register(client, "acme", receiver.url())
    receiver.answer = lambda _: 410
    await _user(scim, "ada")
    await receiver.wait_for(1)
    item = f"/tenants/acme/webhooks/{webhook['id']}"
    for _ in range(200):
        shown = (await admin_call(client, "GET", item))[1]
        if not shown["enabled"]:
            break
        await asyncio.sleep(0.025)
    assert not shown["enabled"] and "410" in shown["disabled_reason"]
    await _user(scim, "bob")
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 1

    # Enabled again, it goes on from the event it was disabled at.
    receiver.answer = lambda _: 200
    assert (await admin_call(client, "PATCH", item, {"enabled": True}))[0] == 200
    got = await receiver.wait_for(3)
    assert [g.event["sequence"] for g in got] == [1, 1, 2]


async def test_an_event_failing_past_the_horizon_is_dead_lettered_then_redelivered(
    make_client: MakeClient, receiver: Receiver
) -> None:
    client = await make_client(webhook_retry_horizon_seconds=0.3)
    scim = Scim(client, "acme", (await make_tenant(client, "acme"))["token"])
    webhook = await register(client, "acme", receiver.url())
    receiver.answer = lambda got: 503 if got.event["sequence"] == 1 else 200
    await _user(scim, "ada")
    await _user(scim, "bob")
    # The first is retried for the horizon, then given up on; the second then goes through.
    for _ in range(400):
        if any(g.event["sequence"] == 2 for g in receiver.received):
            break
        await asyncio.sleep(0.025)
    assert receiver.received[-1].event["sequence"] == 2
    first_attempts = [g for g in receiver.received if g.event["sequence"] == 1]
    assert len(first_attempts) >= 2

    item = f"/tenants/acme/webhooks/{webhook['id']}"
    status, dead = await admin_call(client, "GET", f"{item}/dead-letters")
    assert status == 200
    (letter,) = dead["dead_letters"]
    assert (letter["sequence"], letter["type"], letter["last_status"]) == (1, "user.created", 503)
    assert letter["attempts"] == len(first_attempts)
    log = (await admin_call(client, "GET", f"{item}/deliveries"))[1]["deliveries"]
    assert next(a["outcome"] for a in log if a["sequence"] == 1) == "dead"

    # Still failing: it stays dead, with one attempt more.
    status, answer = await admin_call(client, "POST", f"{item}/dead-letters/redeliver", {})
    assert (status, answer) == (200, {"delivered": [], "failed": [letter["event_id"]]})
    receiver.answer = lambda _: 200
    status, answer = await admin_call(
        client, "POST", f"{item}/dead-letters/redeliver", {"event_ids": [letter["event_id"]]}
    )
    assert (status, answer) == (200, {"delivered": [letter["event_id"]], "failed": []})
    assert (await admin_call(client, "GET", f"{item}/dead-letters"))[1] == {"dead_letters": []}
    assert receiver.received[-1].event["id"] == letter["event_id"]


async def test_replay_redelivers_from_a_sequence_number_or_from_a_time(
    client: TestClient[Any, Any], scim: Scim, receiver: Receiver
) -> None:
    webhook = await register(client, "acme", receiver.url())
    item = f"/tenants/acme/webhooks/{webhook['id']}"
    for name in ("ada", "bob"):
        await _user(scim, name)
    await receiver.wait_for(2)
    between = datetime.now(UTC)
    await asyncio.sleep(0.05)
    for name in ("cy", "dee"):
        await _user(scim, name)
    await receiver.wait_for(4)

    status, answer = await admin_call(client, "POST", f"{item}/replay", {"from_sequence": 2})
    assert (status, answer) == (200, {"next_sequence": 2})
    got = await receiver.wait_for(7)
    assert [g.event["sequence"] for g in got] == [1, 2, 3, 4, 2, 3, 4]

    status, answer = await admin_call(
        client, "POST", f"{item}/replay", {"since": between.isoformat()}
    )
    assert (status, answer) == (200, {"next_sequence": 3})
    got = await receiver.wait_for(9)
    assert [g.event["sequence"] for g in got[7:]] == [3, 4]

    for bad in (
        {},
        {"from_sequence": 0},
        {"since": "yesterday"},
        {"from_sequence": 1, "since": "2026-01-01T00:00:00Z"},
    ):
        response = await client.post(f"/admin{item}/replay", json=bad, headers=ADMIN)
        await scim_error(response, 400, "invalidValue")


async def test_after_a_rotation_both_secrets_verify_for_the_grace_then_only_the_new_one(
    client: TestClient[Any, Any], scim: Scim, receiver: Receiver
) -> None:
    webhook = await register(client, "acme", receiver.url())
    item = f"/tenants/acme/webhooks/{webhook['id']}"
    status, rotated = await admin_call(client, "POST", f"{item}/rotate-secret", {})
    assert status == 200 and rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != webhook["secret"] and rotated["previous_secret_expires"]
    await _user(scim, "ada")
    (during,) = await receiver.wait_for(1)
    for secret in (webhook["secret"], rotated["secret"]):
        assert Webhook(secret).verify(during.body, during.headers)["sequence"] == 1

    status, again = await admin_call(client, "POST", f"{item}/rotate-secret", {"grace_seconds": 0})
    assert status == 200
    await _user(scim, "bob")
    after = (await receiver.wait_for(2))[1]
    assert Webhook(again["secret"]).verify(after.body, after.headers)["sequence"] == 2
    for old in (webhook["secret"], rotated["secret"]):
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(after.body, after.headers)


async def test_deleting_a_tenant_deletes_its_webhooks(
    client: TestClient[Any, Any], scim: Scim, receiver: Receiver
) -> None:
    await register(client, "acme", receiver.url())
    assert (await admin_call(client, "DELETE", "/tenants/acme"))[0] == 204
    await make_tenant(client, "acme")
    assert (await admin_call(client, "GET", "/tenants/acme/webhooks"))[1] == {"webhooks": []}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "https://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_a_private_loopback_or_link_local_target_is_refused_at_registration(
    make_client: MakeClient, url: str
) -> None:
    client = await make_client(webhook_allow_private=False)
    await make_tenant(client, "acme")
    response = await client.post("/admin/tenants/acme/webhooks", json={"url": url}, headers=ADMIN)
    error = await scim_error(response, 400, "invalidValue")
    assert "refused" in error["detail"] and "SCIM_WEBHOOK_ALLOW_PRIVATE" in error["detail"]
    registered = await (await client.get("/admin/tenants/acme/webhooks", headers=ADMIN)).json()
    assert registered == {"webhooks": []}


async def test_a_name_that_resolves_to_loopback_at_delivery_time_is_refused_then(
    make_client: MakeClient, receiver: Receiver
) -> None:
    """Registered where private targets were allowed, delivered by a server where they are
    not: the sender checks the addresses the name resolves to now, and sends nothing."""
    allowing = await make_client()
    token = (await make_tenant(allowing, "acme"))["token"]
    port = receiver.url().rsplit(":", 1)[1].split("/")[0]
    webhook = await register(allowing, "acme", f"http://localhost:{port}/hook")
    await allowing.close()

    refusing = await make_client(webhook_allow_private=False)
    await _user(Scim(refusing, "acme", token), "ada")
    item = f"/tenants/acme/webhooks/{webhook['id']}"
    for _ in range(400):
        log = (await admin_call(refusing, "GET", f"{item}/deliveries"))[1]["deliveries"]
        if log:
            break
        await asyncio.sleep(0.025)
    assert log[0]["status"] is None and log[0]["outcome"] == "failed"
    assert log[0]["response"].startswith("refused: localhost resolves to ")
    assert "loopback" in log[0]["response"]
    assert receiver.received == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("replay", {"from_sequence": 2**63}),
        ("replay", {"from_sequence": True}),
        ("replay", {"since": "0001-01-01T00:00:00+05:00"}),
        ("replay", {"since": 20260101}),
        ("rotate-secret", {"grace_seconds": -1}),
        ("rotate-secret", {"grace_seconds": 10**30}),
        ("dead-letters/redeliver", {"event_ids": "all"}),
        ("dead-letters/redeliver", {"event_ids": [1, 2]}),
    ],
)
async def test_out_of_range_admin_input_on_a_webhook_is_a_400_never_a_500(
    client: TestClient[Any, Any], scim: Scim, path: str, body: dict[str, Any]
) -> None:
    webhook = await register(client, "acme", "http://127.0.0.1:9/hook")
    response = await client.post(
        f"/admin/tenants/acme/webhooks/{webhook['id']}/{path}", json=body, headers=ADMIN
    )
    await scim_error(response, 400, "invalidValue")


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("POST", "", b"not json"),
        ("POST", "", b"[1, 2]"),
        ("PATCH", "/{id}", b"{"),
        ("PATCH", "/{id}", b'{"enabled": "yes"}'),
        ("PATCH", "/{id}", b'{"secret": "mine"}'),
        ("POST", "/{id}/replay", b"nope"),
        ("GET", "/{id}/deliveries?limit=0", None),
        ("GET", "/{id}/deliveries?limit=x", None),
        # A lone surrogate: no URL, and no BSON string either.
        ("POST", "", b'{"url": "http://\\ud800.example/hook"}'),
        ("PATCH", "/{id}", b'{"url": "http://127.0.0.1:9/\\udc80"}'),
        ("POST", "", b'{"url": "http://[::1/hook"}'),
    ],
)
async def test_a_malformed_webhook_request_is_a_scim_400(
    client: TestClient[Any, Any], scim: Scim, method: str, path: str, data: bytes | None
) -> None:
    webhook = await register(client, "acme", "http://127.0.0.1:9/hook")
    url = "/admin/tenants/acme/webhooks" + path.format(id=webhook["id"])
    headers = {**ADMIN, "Content-Type": "application/json"}
    response = await client.request(method, url, data=data, headers=headers)
    await scim_error(response, 400)


async def test_a_hanging_receiver_holds_back_neither_writes_nor_another_tenants_deliveries(
    make_client: MakeClient, receiver: Receiver, aiohttp_server: Any
) -> None:
    client = await make_client(webhook_timeout_seconds=300.0)  # the hang outlasts the test
    acme = Scim(client, "acme", (await make_tenant(client, "acme"))["token"])
    globex = Scim(client, "globex", (await make_tenant(client, "globex"))["token"])
    hanging = await start_receiver(aiohttp_server)
    hanging.answer = lambda _: None
    await register(client, "acme", hanging.url())
    await register(client, "globex", receiver.url())

    await _user(acme, "ada")
    await hanging.wait_for(1)  # acme's first delivery now hangs
    # acme's writes still land at once, and globex's events all arrive meanwhile.
    acme_users = await asyncio.gather(*(_user(acme, f"a{n}") for n in range(5)))
    globex_users = await asyncio.gather(*(_user(globex, f"g{n}") for n in range(5)))
    got = await receiver.wait_for(5)
    assert {g.event["resource"]["id"] for g in got} == set(globex_users)
    assert len(acme_users) == 5 and len(hanging.received) == 1


async def test_the_delivery_log_expires_by_a_ttl_index_whose_setting_changes_in_place(
    make_client: MakeClient, mongo_db: Any
) -> None:
    async def expiry() -> int:
        indexes = await mongo_db["delivery_log"].index_information()
        return int(indexes["at_ttl"]["expireAfterSeconds"])

    await make_client(webhook_log_ttl_seconds=3600)
    assert await expiry() == 3600
    await make_client(webhook_log_ttl_seconds=60)
    assert await expiry() == 60
