"""SSF push streams (RFC 8935), delivered by the delivery engine webhooks use.

Over real HTTP: a receiver creates a push stream through the SSF stream API, the tenant is
provisioned over SCIM, and a real aiohttp receiver on 127.0.0.1 (so private targets are allowed
here, except in the test of their refusal) gets each SET, verified with pyjwt against the
published JWKS. Retries run on a back-off of fractions of a second. The admin reads a push
stream's delivery log and dead letters, and redelivers them, over the admin API and the CLI.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.admin_cli import admin_cli
from tests.support.scim import ADMIN, Scim, make_tenant, scim_error
from tests.support.ssf import (
    ACCOUNT_DISABLED,
    POLL,
    PROV,
    PUSH,
    SESSION_REVOKED,
    VERIFICATION,
    event_uri,
)
from tests.support.ssf import Receiver as SsfReceiver
from tests.support.urns import PATCH_OP, USER
from tests.support.webhooks import Received, Receiver, delivering_to_tests, start_receiver

EVENTS = (f"{PROV}create:full", f"{PROV}deactivate", SESSION_REVOKED, ACCOUNT_DISABLED)
DEACTIVATE = {
    "schemas": [PATCH_OP],
    "Operations": [{"op": "replace", "path": "active", "value": False}],
}
AUTHORIZATION = "Bearer receiver-secret"
PUBLIC_ENDPOINT = "https://93.184.215.14/ssf"
"""A public address: accepted with private targets refused (no event is ever sent to it)."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return delivering_to_tests(settings)


@pytest.fixture
async def endpoint(aiohttp_server: Any) -> Receiver:
    """The push receiver's endpoint: 202 to every SET unless a test says otherwise."""
    receiver = await start_receiver(aiohttp_server)
    receiver.answer = lambda _: 202
    return receiver


@pytest.fixture
async def ssf(scim: Scim) -> SsfReceiver:
    return await SsfReceiver.of(scim.client, "acme")


async def push_stream(ssf: SsfReceiver, url: str, *events: str, **delivery: Any) -> dict[str, Any]:
    return await ssf.create_stream(
        *(events or EVENTS), delivery={"method": PUSH, "endpoint_url": url, **delivery}
    )


async def user(scim: Scim, name: str) -> str:
    response = await scim.post("/Users", json={"schemas": [USER], "userName": name})
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def sets_of(
    ssf: SsfReceiver, stream: dict[str, Any], received: list[Received]
) -> list[dict[str, Any]]:
    """The claims of each SET received, in the order they came, each verified against the
    JWKS (``typ``, ``iss``, ``aud``) by ``SsfReceiver.verified``; a SET received again (a
    retry) is listed again."""
    claims = []
    for got in received:
        token = got.body.decode()
        set_id = jwt.decode(token, options={"verify_signature": False})["jti"]
        claims.append((await ssf.verified(stream, {set_id: token}))[set_id])
    return claims


async def set_status(ssf: SsfReceiver, stream: dict[str, Any], status: str) -> None:
    response = await ssf.client.post(
        f"{ssf.streams}/status",
        json={"stream_id": stream["stream_id"], "status": status},
        headers=ssf.headers,
    )
    assert response.status == 200, await response.text()


async def test_a_push_stream_receives_every_set_in_order_signed_and_authorized(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver
) -> None:
    stream = await push_stream(ssf, endpoint.url("/ssf"), authorization_header=AUTHORIZATION)
    ada, bob = await user(scim, "ada"), await user(scim, "bob")
    assert (await scim.patch(f"/Users/{ada}", json=DEACTIVATE)).status == 200

    received = await endpoint.wait_for(5)
    for got in received:
        assert got.headers["Content-Type"] == "application/secevent+jwt"
        assert got.headers["Accept"] == "application/json"
        assert got.headers["Authorization"] == AUTHORIZATION
    claims = await sets_of(ssf, stream, received)
    # In the outbox's order (the jti names the sequence), which is each resource's order.
    sequences = [int(c["jti"].split(".")[1]) for c in claims]
    assert sequences == sorted(sequences)
    about_ada = [event_uri(c) for c in claims if ada in str(c["sub_id"])]
    assert about_ada == [
        f"{PROV}create:full",
        f"{PROV}deactivate",
        SESSION_REVOKED,
        ACCOUNT_DISABLED,
    ]
    assert [c["sub_id"] for c in claims if ada not in str(c["sub_id"])] == [
        {"format": "scim", "uri": f"/Users/{bob}"}
    ]
    assert len({c["jti"] for c in claims}) == 5


async def test_an_event_one_of_whose_sets_fails_is_sent_again_whole_until_accepted(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver
) -> None:
    stream = await push_stream(ssf, endpoint.url())
    ada = await user(scim, "ada")
    await endpoint.wait_for(1)
    # The deactivation's SETs: its second fails twice (the 3rd and 5th POSTs), then all pass.
    endpoint.answer = lambda _: 500 if len(endpoint.received) in (3, 5) else 202
    assert (await scim.patch(f"/Users/{ada}", json=DEACTIVATE)).status == 200

    received = await endpoint.wait_for(1 + 2 + 2 + 3)
    claims = await sets_of(ssf, stream, received[1:])
    tags = [c["jti"].rsplit(".", 1)[1] for c in claims]
    assert tags == ["scim", "session", "scim", "session", "scim", "session", "account"]
    assert len(endpoint.received) == 8


async def test_a_set_rejected_with_an_err_is_dead_lettered_at_once_and_delivery_moves_on(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver, mongo_db: Any
) -> None:
    stream = await push_stream(ssf, endpoint.url(), f"{PROV}create:full")
    endpoint.answer = lambda _: 400 if len(endpoint.received) == 1 else 202
    endpoint.reply = lambda status: '{"err": "invalid_request", "description": "no"}'
    await user(scim, "ada")
    bob = await user(scim, "bob")

    received = await endpoint.wait_for(2)
    claims = await sets_of(ssf, stream, received)
    assert claims[1]["sub_id"]["uri"] == f"/Users/{bob}"  # ada's was not tried again
    dead = await mongo_db["dead_letters"].find({"subscription": stream["stream_id"]}).to_list()
    assert [(d["type"], d["attempts"], d["status"]) for d in dead] == [("user.created", 1, 400)]
    assert len(endpoint.received) == 2


async def arrived(
    ssf: SsfReceiver, stream: dict[str, Any], endpoint: Receiver, count: int
) -> list[tuple[str, str]]:
    """Once ``count`` SETs came, each one's stream (its jti names it) and subject, sorted (the
    streams deliver apart), each verified (the receiver's streams share ``iss`` and ``aud``)."""
    received = await endpoint.wait_for(count)
    claims = await sets_of(ssf, stream, received)
    return sorted((c["jti"].split(".")[0], c["sub_id"]["uri"]) for c in claims)


async def with_witness(
    ssf: SsfReceiver, endpoint: Receiver
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A stream of creations, and a witness stream beside it: once the witness has an event's
    SET, the event is in the outbox and the engine has gone over it."""
    stream = await push_stream(ssf, endpoint.url("/stream"), f"{PROV}create:full")
    return stream, await push_stream(ssf, endpoint.url("/witness"), f"{PROV}create:full")


async def test_a_paused_stream_holds_its_events_and_enabling_sends_them_from_where_it_was(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver, mongo_db: Any
) -> None:
    held, witness = await with_witness(ssf, endpoint)
    await set_status(ssf, held, "paused")
    ada = await user(scim, "ada")
    await endpoint.wait_for(1)
    subscription = await mongo_db["subscriptions"].find_one({"_id": held["stream_id"]})
    created = await mongo_db["ssf_streams"].find_one({"_id": held["stream_id"]})
    assert (subscription["enabled"], subscription["position"]) == (False, created["position"])

    await set_status(ssf, held, "enabled")
    assert await arrived(ssf, held, endpoint, 2) == sorted(
        [(witness["stream_id"], f"/Users/{ada}"), (held["stream_id"], f"/Users/{ada}")]
    )


async def test_a_disabled_stream_never_gets_what_happened_meanwhile(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver
) -> None:
    stream, witness = await with_witness(ssf, endpoint)
    await set_status(ssf, stream, "disabled")
    ada = await user(scim, "ada")
    await endpoint.wait_for(1)  # the witness has it: ada's creation is in the outbox
    await set_status(ssf, stream, "enabled")
    bob = await user(scim, "bob")
    assert await arrived(ssf, stream, endpoint, 3) == sorted(
        [
            (witness["stream_id"], f"/Users/{ada}"),
            (witness["stream_id"], f"/Users/{bob}"),
            (stream["stream_id"], f"/Users/{bob}"),
        ]
    )


async def test_a_deleted_stream_is_sent_nothing_more_and_leaves_no_subscription(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver, mongo_db: Any
) -> None:
    gone, witness = await with_witness(ssf, endpoint)
    deleted = await ssf.client.delete(
        ssf.streams, params={"stream_id": gone["stream_id"]}, headers=ssf.headers
    )
    assert deleted.status == 204
    assert await mongo_db["subscriptions"].find_one({"_id": gone["stream_id"]}) is None
    ada, bob = await user(scim, "ada"), await user(scim, "bob")
    assert await arrived(ssf, witness, endpoint, 2) == sorted(
        [(witness["stream_id"], f"/Users/{ada}"), (witness["stream_id"], f"/Users/{bob}")]
    )


async def test_a_verification_is_pushed_when_the_receiver_asks_for_one(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver
) -> None:
    stream = await push_stream(ssf, endpoint.url())
    verified = await ssf.client.post(
        f"{ssf.streams}/verify",
        json={"stream_id": stream["stream_id"], "state": "s-1"},
        headers=ssf.headers,
    )
    assert verified.status == 204
    (claims,) = await sets_of(ssf, stream, await endpoint.wait_for(1))
    assert claims["events"] == {VERIFICATION: {"state": "s-1"}}
    assert claims["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}


async def test_a_push_stream_shows_its_endpoint_and_never_its_authorization(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver
) -> None:
    stream = await push_stream(ssf, endpoint.url("/ssf"), authorization_header=AUTHORIZATION)
    assert stream["delivery"] == {"method": PUSH, "endpoint_url": endpoint.url("/ssf")}
    listed = await (await scim.client.get("/admin/tenants/acme/ssf/streams", headers=ADMIN)).json()
    assert [s["delivery"] for s in listed["streams"]] == [stream["delivery"]]
    assert AUTHORIZATION not in str(stream) + str(listed)
    polled = await ssf.client.post(
        f"/ssf/acme/poll/{stream['stream_id']}", json={}, headers=ssf.headers
    )
    await scim_error(polled, 400)


async def repoint(ssf: SsfReceiver, stream: dict[str, Any], url: str) -> Any:
    """The answer to updating the stream's delivery to a push to ``url``."""
    delivery = {"method": PUSH, "endpoint_url": url}
    body = {"stream_id": stream["stream_id"], "delivery": delivery}
    return await ssf.client.patch(ssf.streams, json=body, headers=ssf.headers)


async def test_a_stream_keeps_its_delivery_method(scim: Scim, ssf: SsfReceiver) -> None:
    stream = await ssf.create_stream(f"{PROV}delete")
    assert stream["delivery"]["method"] == POLL
    await scim_error(await repoint(ssf, stream, "http://127.0.0.1:9/"), 400, "invalidValue")


async def test_a_private_push_endpoint_is_refused_at_creation_and_update(
    aiohttp_client: Any, settings: Settings, mongo_db: Any
) -> None:
    strict = dataclasses.replace(settings, webhook_allow_private=False)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(strict))
    await make_tenant(client, "acme")
    ssf = await SsfReceiver.of(client, "acme")
    for url in ("http://127.0.0.1:9/ssf", "http://10.0.0.1/ssf", "http://[::1]/ssf"):
        body = {"delivery": {"method": PUSH, "endpoint_url": url}, "events_requested": []}
        refused = await client.post(ssf.streams, json=body, headers=ssf.headers)
        error = await scim_error(refused, 400, "invalidValue")
        assert error["detail"].startswith("delivery.endpoint_url is refused")
    stream = await push_stream(ssf, PUBLIC_ENDPOINT)
    await scim_error(await repoint(ssf, stream, "http://127.0.0.1:9/ssf"), 400, "invalidValue")
    subscription = await mongo_db["subscriptions"].find_one({"_id": stream["stream_id"]})
    assert subscription["url"] == PUBLIC_ENDPOINT


async def test_a_push_stream_moved_to_another_endpoint_is_delivered_there(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver, mongo_db: Any
) -> None:
    stream = await push_stream(ssf, "http://127.0.0.1:9/nobody-listens")
    assert (await repoint(ssf, stream, endpoint.url("/moved"))).status == 200
    subscription = await mongo_db["subscriptions"].find_one({"_id": stream["stream_id"]})
    assert subscription["url"] == endpoint.url("/moved")
    ada = await user(scim, "ada")
    assert await arrived(ssf, stream, endpoint, 1) == [(stream["stream_id"], f"/Users/{ada}")]


async def test_concurrent_status_changes_leave_the_subscription_as_the_stream_says(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver, mongo_db: Any
) -> None:
    """Each change writes the stream, then its subscription: racing changes must not leave
    the subscription as an older one said (it did, before the stream's revision ordered
    them)."""
    stream = await push_stream(ssf, endpoint.url())
    body = {"stream_id": stream["stream_id"]}
    for round_ in range(60):
        statuses = [("enabled", "paused", "disabled")[(round_ + i) % 3] for i in range(12)]
        answers = await asyncio.gather(
            *(
                ssf.client.post(
                    f"{ssf.streams}/status", json={**body, "status": s}, headers=ssf.headers
                )
                for s in statuses
            )
        )
        assert {answer.status for answer in answers} <= {200, 429}
        read = await ssf.client.get(f"{ssf.streams}/status", params=body, headers=ssf.headers)
        status = (await read.json())["status"]
        subscription = await mongo_db["subscriptions"].find_one({"_id": stream["stream_id"]})
        assert subscription["enabled"] == (status == "enabled"), (round_, status)


async def test_concurrent_endpoint_changes_leave_the_subscription_where_the_stream_points(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver, mongo_db: Any
) -> None:
    """The sibling of the status race: racing changes of ``endpoint_url``."""
    stream = await push_stream(ssf, endpoint.url())
    for round_ in range(60):
        urls = [endpoint.url(f"/{round_}/{i}") for i in range(12)]
        answers = await asyncio.gather(*(repoint(ssf, stream, url) for url in urls))
        assert {answer.status for answer in answers} == {200}
        read = await ssf.client.get(
            ssf.streams, params={"stream_id": stream["stream_id"]}, headers=ssf.headers
        )
        pointed = (await read.json())["delivery"]["endpoint_url"]
        subscription = await mongo_db["subscriptions"].find_one({"_id": stream["stream_id"]})
        assert subscription["url"] == pointed, round_


async def test_the_admin_listing_shows_where_a_push_stream_delivers_from(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver, mongo_db: Any
) -> None:
    """A push stream's position is its subscription's: the listing must not show the one it
    was created at once the engine moved on."""
    stream = await push_stream(ssf, endpoint.url(), f"{PROV}create:full")
    created = await mongo_db["ssf_streams"].find_one({"_id": stream["stream_id"]})
    await user(scim, "ada")
    await endpoint.wait_for(1)
    query = {"_id": stream["stream_id"], "position": {"$gt": created["position"]}}
    for _ in range(400):  # the move is written just after the receiver answered
        if (subscription := await mongo_db["subscriptions"].find_one(query)) is not None:
            break
        await asyncio.sleep(0.025)
    listed = await (await scim.client.get("/admin/tenants/acme/ssf/streams", headers=ADMIN)).json()
    assert [s["position"] for s in listed["streams"]] == [subscription["position"]]


# -- the admin API: a push stream's delivery log and dead letters ------------------------------


async def stream_admin(scim: Scim, method: str, stream_id: str, path: str, body: Any = None) -> Any:
    """``/admin/tenants/acme/ssf/streams/{id}{path}`` as the admin calls it: the response."""
    return await scim.client.request(
        method, f"/admin/tenants/acme/ssf/streams/{stream_id}{path}", json=body, headers=ADMIN
    )


async def test_an_admin_reads_a_push_streams_log_and_dead_letters_and_redelivers_them(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver
) -> None:
    stream = await push_stream(ssf, endpoint.url(), f"{PROV}create:full")
    stream_id = stream["stream_id"]
    endpoint.answer = lambda _: 400 if len(endpoint.received) == 1 else 202
    endpoint.reply = lambda status: '{"err": "invalid_request", "description": "no"}'
    ada = await user(scim, "ada")
    await user(scim, "bob")
    await endpoint.wait_for(2)

    log = await (await stream_admin(scim, "GET", stream_id, "/deliveries")).json()
    assert [(a["type"], a["outcome"], a["status"]) for a in log["deliveries"]] == [
        ("user.created", "delivered", 202),
        ("user.created", "dead", 400),
    ]
    [letter] = (await (await stream_admin(scim, "GET", stream_id, "/dead-letters")).json())[
        "dead_letters"
    ]
    assert (letter["type"], letter["attempts"], letter["last_status"]) == ("user.created", 1, 400)
    assert "invalid_request" in letter["last_response"]
    limited = await stream_admin(scim, "GET", stream_id, "/deliveries?limit=1")
    assert len((await limited.json())["deliveries"]) == 1

    redelivered = await stream_admin(scim, "POST", stream_id, "/dead-letters/redeliver")
    assert await redelivered.json() == {"delivered": [letter["event_id"]], "failed": []}
    [again] = await sets_of(ssf, stream, (await endpoint.wait_for(3))[2:])
    assert again["sub_id"]["uri"] == f"/Users/{ada}"
    gone = await (await stream_admin(scim, "GET", stream_id, "/dead-letters")).json()
    assert gone == {"dead_letters": []}
    unknown = await stream_admin(scim, "POST", stream_id, "/dead-letters/redeliver",
                                 {"event_ids": [letter["event_id"], "nope"]})  # fmt: skip
    assert await unknown.json() == {"delivered": [], "failed": [letter["event_id"], "nope"]}


async def test_the_push_admin_api_refuses_a_poll_stream_an_unknown_one_and_bad_event_ids(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver
) -> None:
    polled = await ssf.create_stream(f"{PROV}create:full")
    pushed = await push_stream(ssf, endpoint.url(), f"{PROV}create:full")
    for stream_id in (polled["stream_id"], "no-such-stream"):
        for path in ("/deliveries", "/dead-letters"):
            response = await stream_admin(scim, "GET", stream_id, path)
            error = await scim_error(response, 404)
            assert f"no push stream {stream_id!r}" in error["detail"]
    bad = await stream_admin(
        scim, "POST", pushed["stream_id"], "/dead-letters/redeliver", {"event_ids": "x"}
    )
    await scim_error(bad, 400)
    over = await stream_admin(scim, "GET", pushed["stream_id"], "/deliveries?limit=1001")
    await scim_error(over, 400)


async def test_the_cli_lists_a_push_streams_dead_letters_and_redelivers_them(
    scim: Scim, ssf: SsfReceiver, endpoint: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    stream = await push_stream(ssf, endpoint.url(), f"{PROV}create:full")
    endpoint.answer = lambda _: 400 if len(endpoint.received) == 1 else 202
    endpoint.reply = lambda status: '{"err": "invalid_request", "description": "no"}'
    await user(scim, "ada")
    await user(scim, "bob")
    await endpoint.wait_for(2)  # ada's SET was dead-lettered before bob's was sent
    cli = ("acme", stream["stream_id"])
    [letter] = json.loads(await admin_cli(scim.client, capsys, "ssf", "dead-letters", *cli))[
        "dead_letters"
    ]
    [attempt] = json.loads(
        await admin_cli(scim.client, capsys, "ssf", "deliveries", *cli, "--limit", "1")
    )["deliveries"]
    assert (attempt["outcome"], attempt["status"]) == ("delivered", 202)  # bob's, the newest
    redelivered = await admin_cli(scim.client, capsys, "ssf", "redeliver", *cli, letter["event_id"])
    assert json.loads(redelivered) == {"delivered": [letter["event_id"]], "failed": []}
    assert len(await endpoint.wait_for(3)) == 3
