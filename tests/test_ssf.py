"""The Shared Signals transmitter over HTTP: metadata, JWKS, stream management, poll delivery
(RFC 8936) of the tenant's provisioning events as SETs verified against the published JWKS.

Real HTTP against the application and its relay, on a real database; the receiver is
``tests.support.ssf.Receiver``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.admin_cli import admin_cli
from tests.support.commands import Commands
from tests.support.scim import ADMIN, Scim, make_tenant, scim_error
from tests.support.ssf import (
    ACCOUNT_DISABLED,
    POLL,
    PROV,
    PUSH,
    ROUNDS,
    SESSION_REVOKED,
    VERIFICATION,
    Receiver,
    event_uri,
    in_order,
    receiver_token,
)
from tests.support.urns import PATCH_OP, USER

DEACTIVATE = {
    "schemas": [PATCH_OP],
    "Operations": [{"op": "replace", "path": "active", "value": False}],
}


# --- metadata and keys --------------------------------------------------------------------------


async def test_the_metadata_names_the_tenants_issuer_and_endpoints(scim: Scim) -> None:
    response = await scim.client.get("/.well-known/ssf-configuration/ssf/acme")
    assert response.status == 200
    metadata = await response.json()
    root = str(scim.client.make_url("")).rstrip("/")
    issuer = f"{root}/ssf/acme"
    assert metadata == {
        "spec_version": "1_0",
        "issuer": issuer,
        "jwks_uri": f"{root}/ssf/jwks",
        "delivery_methods_supported": [PUSH, POLL],
        "configuration_endpoint": f"{issuer}/streams",
        "status_endpoint": f"{issuer}/streams/status",
        "verification_endpoint": f"{issuer}/streams/verify",
        "add_subject_endpoint": f"{issuer}/streams/subjects:add",
        "remove_subject_endpoint": f"{issuer}/streams/subjects:remove",
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
        "default_subjects": "ALL",
    }
    await scim_error(await scim.client.get("/.well-known/ssf-configuration/ssf/nobody"), 404)


async def test_every_server_on_the_database_publishes_and_signs_with_the_same_key(
    scim: Scim, aiohttp_client: Any, settings: Settings
) -> None:
    other = await aiohttp_client(create_app(settings))
    first = await (await scim.client.get("/ssf/jwks")).json()
    second = await (await other.get("/ssf/jwks")).json()
    assert first == second and len(first["keys"]) == 1
    (key,) = first["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and "d" not in key
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(f"{PROV}create:full")
    await scim.create_user("ada")
    await receiver.awaited(stream, 1)  # verified against the JWKS of either server
    on_other = Receiver(other, "acme", receiver.headers["Authorization"].split()[1])
    answer = await on_other.poll(stream)
    as_other_names_itself = {**stream, "iss": str(other.make_url("/ssf/acme"))}
    assert (await on_other.verified(as_other_names_itself, answer["sets"])).keys() == {
        f"{stream['stream_id']}.1.scim"
    }


# --- stream management --------------------------------------------------------------------------


async def test_a_stream_is_created_read_updated_replaced_and_deleted(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    requested = [f"{PROV}create:notice", f"{PROV}create:full", SESSION_REVOKED, "urn:example:x"]
    stream = await receiver.create_stream(*requested, description="HR feed")
    stream_id = stream["stream_id"]
    assert stream["iss"].endswith("/ssf/acme")
    assert stream["events_requested"] == requested
    assert stream["events_delivered"] == [f"{PROV}create:full", SESSION_REVOKED]
    assert stream["delivery"] == {
        "method": POLL,
        "endpoint_url": f"{stream['iss']}/poll/{stream_id}",
    }
    assert f"{PROV}delete" in stream["events_supported"]
    assert stream["description"] == "HR feed"

    read = await scim.client.get(
        receiver.streams, params={"stream_id": stream_id}, headers=receiver.headers
    )
    assert await read.json() == stream
    listed = await scim.client.get(receiver.streams, headers=receiver.headers)
    assert await listed.json() == [stream]

    patched = await scim.client.patch(
        receiver.streams,
        json={"stream_id": stream_id, "description": "renamed"},
        headers=receiver.headers,
    )
    assert patched.status == 200
    assert {**stream, "description": "renamed"} == await patched.json()

    replaced = await scim.client.put(
        receiver.streams,
        json={
            "stream_id": stream_id,
            "delivery": {"method": POLL},
            "events_requested": [f"{PROV}delete"],
        },
        headers=receiver.headers,
    )
    body = await replaced.json()
    assert body["events_delivered"] == [f"{PROV}delete"] and "description" not in body

    deleted = await scim.client.delete(
        receiver.streams, params={"stream_id": stream_id}, headers=receiver.headers
    )
    assert deleted.status == 204
    gone = await scim.client.get(
        receiver.streams, params={"stream_id": stream_id}, headers=receiver.headers
    )
    await scim_error(gone, 404)


@pytest.mark.parametrize(
    "body",
    [
        {"delivery": {"method": "urn:example:carrier-pigeon"}},
        {"delivery": "poll"},
        {"delivery": {"method": PUSH}},
        {"delivery": {"method": PUSH, "endpoint_url": "ftp://rp.example/"}},
        {
            "delivery": {
                "method": PUSH,
                "endpoint_url": "https://rp.example/",
                "authorization_header": "a\r\nb",
            }
        },
        {"events_requested": f"{PROV}delete"},
        {"events_requested": [1]},
        {"description": 7},
    ],
)
async def test_a_bad_stream_configuration_is_a_400_scim_error(
    scim: Scim, body: dict[str, Any]
) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    await scim_error(
        await scim.client.post(receiver.streams, json=body, headers=receiver.headers), 400
    )


async def test_stream_requests_naming_no_stream_or_an_unknown_one_are_clear_errors(
    scim: Scim,
) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    client, headers, streams = scim.client, receiver.headers, receiver.streams
    await scim_error(await client.patch(streams, json={"description": "x"}, headers=headers), 400)
    await scim_error(await client.delete(streams, headers=headers), 400)
    await scim_error(await client.get(f"{streams}/status", headers=headers), 400)
    unknown = {"stream_id": "nope"}
    await scim_error(await client.patch(streams, json=unknown, headers=headers), 404)
    await scim_error(await client.get(streams, params=unknown, headers=headers), 404)
    await scim_error(await client.post(f"{streams}/verify", json=unknown, headers=headers), 404)
    await scim_error(await client.post("/ssf/acme/poll/nope", json={}, headers=headers), 404)
    await scim_error(
        await client.post(
            streams, data=b"{", headers={**headers, "Content-Type": "application/json"}
        ),
        400,
    )


async def test_only_a_live_receiver_token_of_the_tenant_manages_its_streams(
    scim: Scim, other_scim: Scim
) -> None:
    client = scim.client
    issued = await receiver_token(client, "acme")
    globex = await receiver_token(client, "globex")
    stream = await Receiver(client, "acme", issued["token"]).create_stream()
    poll = f"/ssf/acme/poll/{stream['stream_id']}"
    refused = {
        "no token": {},
        "a SCIM token": {"Authorization": f"Bearer {scim.token}"},
        "another tenant's receiver token": {"Authorization": f"Bearer {globex['token']}"},
        "the admin token": ADMIN,
        "basic": {"Authorization": "Basic YTpi"},
    }
    for headers in refused.values():
        await scim_error(await client.get("/ssf/acme/streams", headers=headers), 401)
        await scim_error(await client.post(poll, json={}, headers=headers), 401)
    revoked = await client.delete(
        f"/admin/tenants/acme/ssf/receivers/{issued['token_id']}", headers=ADMIN
    )
    assert revoked.status == 204
    owner = {"Authorization": f"Bearer {issued['token']}"}
    await scim_error(await client.get("/ssf/acme/streams", headers=owner), 401)
    await scim_error(await client.post("/ssf/acme/streams", json={}, headers=ADMIN), 401)


# --- poll delivery ------------------------------------------------------------------------------


async def test_a_poll_stream_delivers_each_change_as_a_verified_set(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(
        f"{PROV}create:full", f"{PROV}patch:full", f"{PROV}delete"
    )
    user = await scim.create_user("ada", title="Eng")
    path = f"/Users/{user['id']}"
    change = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": "CTO"}],
    }
    assert (await scim.patch(path, json=change)).status == 200
    group = await scim.create_group("eng", members=[user["id"]])
    said = {}
    for claims in in_order(await receiver.awaited(stream, 3)):  # each resource's in order
        said.setdefault(claims["sub_id"]["uri"], []).append(claims)
    assert {uri: [event_uri(s) for s in sets] for uri, sets in said.items()} == {
        path: [f"{PROV}create:full", f"{PROV}patch:full"],
        f"/Groups/{group['id']}": [f"{PROV}create:full"],
    }
    sets = [*said[path], *said[f"/Groups/{group['id']}"]]
    created = sets[0]["events"][f"{PROV}create:full"]
    assert created["data"] == {
        "schemas": [USER],
        "id": user["id"],
        "userName": "ada",
        "title": "Eng",
    }
    assert created["version"] == 'W/"1"'
    patched = sets[1]["events"][f"{PROV}patch:full"]["data"]
    assert patched["Operations"] == [{"op": "replace", "path": "title", "value": "CTO"}]
    assert sets[2]["events"][f"{PROV}create:full"]["data"]["members"] == [{"value": user["id"]}]


async def test_full_and_notice_streams_each_get_their_kind(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    full = await receiver.create_stream(f"{PROV}create:full", f"{PROV}patch:full")
    notice = await receiver.create_stream(f"{PROV}create:notice", f"{PROV}patch:notice")
    await scim.create_user("ada", password="s3cret-Pa55")
    (as_full,) = in_order(await receiver.awaited(full, 1))
    (as_notice,) = in_order(await receiver.awaited(notice, 1))
    assert as_full["events"][f"{PROV}create:full"]["data"]["userName"] == "ada"
    assert "password" not in json.dumps(as_full["events"][f"{PROV}create:full"]["data"])
    assert as_notice["events"] == {
        f"{PROV}create:notice": {"attributes": ["password", "userName"], "version": 'W/"1"'}
    }


async def test_unacknowledged_sets_come_again_and_acknowledged_ones_never(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(f"{PROV}create:notice")
    for name in ("ada", "bob", "cy"):
        await scim.create_user(name)
    first = await receiver.awaited(stream, 3)
    again = await receiver.poll(stream, maxEvents=2)
    assert list(again["sets"]) == list(first)[:2] and again["moreAvailable"] is True
    assert (await receiver.poll(stream, maxEvents=1000))["sets"].keys() == first.keys()
    [ada, bob, cy] = list(first)
    after_ack = await receiver.poll(stream, ack=[bob])  # out of order: ada stays ahead
    assert list(after_ack["sets"]) == [ada, cy]
    errored = {ada: {"err": "invalid_request", "description": "not for us"}}
    after_errors = await receiver.poll(stream, setErrs=errored)  # an error acknowledges too
    assert list(after_errors["sets"]) == [cy]
    assert (await receiver.poll(stream, ack=[cy], maxEvents=0)) == {
        "sets": {},
        "moreAvailable": False,
    }
    assert (await receiver.poll(stream))["sets"] == {}
    await scim.create_user("dee")
    (dee,) = await receiver.awaited(stream, 1)
    assert dee.endswith(".4.scim")
    listed = await (await scim.client.get("/admin/tenants/acme/ssf/streams", headers=ADMIN)).json()
    assert listed["streams"][0]["position"] == 4  # moved past the acknowledged three


async def test_acknowledging_what_is_not_the_streams_is_ignored(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(f"{PROV}create:notice")
    await scim.create_user("ada")
    (ada,) = await receiver.awaited(stream, 1)
    foreign = [
        "other.1.scim",
        f"{stream['stream_id']}.99999999.scim",
        "x",
        ada.replace(".scim", ".nope"),
    ]
    assert list((await receiver.poll(stream, ack=foreign))["sets"]) == [ada]


@pytest.mark.parametrize(
    "body",
    [
        {"maxEvents": -1},
        {"maxEvents": "10"},
        {"maxEvents": 1001},
        {"returnImmediately": "yes"},
        {"ack": "jti"},
        {"ack": [1]},
        {"setErrs": ["jti"]},
        {"setErrs": {"jti": "bad"}},
    ],
)
async def test_a_bad_poll_is_a_400_scim_error(scim: Scim, body: dict[str, Any]) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream()
    response = await scim.client.post(
        f"/ssf/acme/poll/{stream['stream_id']}", json=body, headers=receiver.headers
    )
    await scim_error(response, 400)


async def test_a_long_poll_answers_when_an_event_comes(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(f"{PROV}create:full")

    async def later() -> None:
        await asyncio.sleep(0.3)
        await scim.create_user("ada")

    answer, _ = await asyncio.gather(receiver.poll(stream, returnImmediately=False), later())
    assert len(answer["sets"]) == 1


async def test_two_pollers_at_once_neither_lose_nor_see_again_what_was_acknowledged(
    scim: Scim,
) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(f"{PROV}create:notice")
    users = 24
    acknowledged: set[str] = set()

    async def poller() -> list[str]:
        received: list[str] = []
        for _ in range(ROUNDS):
            before = set(acknowledged)
            answer = await receiver.poll(stream, maxEvents=5, ack=received[-5:])
            acknowledged.update(received[-5:])
            # Nothing acknowledged before this poll began comes back in it.
            assert not before & answer["sets"].keys()
            received += list(answer["sets"])
            if len(acknowledged) >= users:
                return received
            await asyncio.sleep(0.01)
        raise AssertionError(f"{len(acknowledged)} of {users} acknowledged")

    creating = asyncio.gather(*(scim.create_user(f"user{n}") for n in range(users)))
    _, first, second = await asyncio.gather(creating, poller(), poller())
    expected = {f"{stream['stream_id']}.{n}.scim" for n in range(1, users + 1)}
    assert set(first) | set(second) == expected == acknowledged
    final = await receiver.poll(stream, ack=sorted(acknowledged))
    assert final["sets"] == {}


async def test_a_paused_stream_holds_its_events_and_a_disabled_one_drops_them(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(f"{PROV}create:notice")
    status = f"{receiver.streams}/status"

    async def set_status(value: str) -> dict[str, Any]:
        body = {"stream_id": stream["stream_id"], "status": value, "reason": "maintenance"}
        response = await scim.client.post(status, json=body, headers=receiver.headers)
        assert response.status == 200, await response.text()
        return dict(await response.json())

    read = await scim.client.get(
        status, params={"stream_id": stream["stream_id"]}, headers=receiver.headers
    )
    assert await read.json() == {"stream_id": stream["stream_id"], "status": "enabled"}
    assert await set_status("paused") == {
        "stream_id": stream["stream_id"],
        "status": "paused",
        "reason": "maintenance",
    }
    await scim.create_user("ada")
    await asyncio.sleep(0.2)
    assert (await receiver.poll(stream))["sets"] == {}
    await set_status("enabled")
    (held,) = await receiver.awaited(stream, 1)
    await receiver.poll(stream, ack=[held])
    await set_status("disabled")
    await scim.create_user("bob")
    await asyncio.sleep(0.2)
    await set_status("enabled")
    cy = await scim.create_user("cy")
    sets = await receiver.awaited(stream, 1)  # bob's creation, while disabled, is never sent
    assert [s["sub_id"]["uri"] for s in sets.values()] == [f"/Users/{cy['id']}"]
    bad = {"stream_id": stream["stream_id"], "status": "asleep"}
    await scim_error(await scim.client.post(status, json=bad, headers=receiver.headers), 400)


async def test_a_verification_set_is_queued_on_the_stream_until_acknowledged(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(f"{PROV}create:notice")
    verify = await scim.client.post(
        f"{receiver.streams}/verify",
        json={"stream_id": stream["stream_id"], "state": "VGhpcyBpcyBh"},
        headers=receiver.headers,
    )
    assert verify.status == 204
    ((set_id, claims),) = (await receiver.awaited(stream, 1)).items()
    assert claims["events"] == {VERIFICATION: {"state": "VGhpcyBpcyBh"}}
    assert claims["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}
    assert (await receiver.poll(stream, ack=[set_id]))["sets"] == {}


async def test_a_poll_costs_three_reads_and_an_acknowledgement_two_writes_more(
    aiohttp_client: Any, settings: Settings, mongo_db: Any
) -> None:
    commands = Commands({"ssf_receivers", "ssf_streams", "events"})
    client = await commands.client(aiohttp_client, settings)
    scim = Scim(client, "acme", (await make_tenant(client, "acme"))["token"])
    receiver = await Receiver.of(client, "acme")
    stream = await receiver.create_stream(f"{PROV}create:notice")
    await scim.create_user("ada")
    (ada,) = await receiver.awaited(stream, 1)
    poll = f"/ssf/acme/poll/{stream['stream_id']}"

    async def cost(body: dict[str, Any]) -> dict[str, int]:
        body = {"returnImmediately": True, **body}
        return await commands.of(client.post(poll, json=body, headers=receiver.headers))

    # The receiver token, the stream, the outbox from the stream's position.
    assert await cost({}) == {"find": 3}
    # The acknowledgement noted (one findAndModify), the position moved past it (one update).
    assert await cost({"ack": [ada]}) == {"find": 3, "findAndModify": 1, "update": 1}
    assert await cost({}) == {"find": 3}


async def test_a_subject_removed_from_a_stream_is_left_out_until_added_back(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(f"{PROV}create:notice", f"{PROV}patch:notice")
    ada = await scim.create_user("ada")
    (created,) = await receiver.awaited(stream, 1)
    await receiver.poll(stream, ack=[created])
    subjects = {
        "scim": {"format": "scim", "uri": f"/Users/{ada['id']}"},
        "iss_sub": {"format": "iss_sub", "iss": stream["iss"], "sub": ada["id"]},
    }

    async def retitle(title: str) -> None:
        operation = {"op": "replace", "path": "title", "value": title}
        change = {"schemas": [PATCH_OP], "Operations": [operation]}
        assert (await scim.patch(f"/Users/{ada['id']}", json=change)).status == 200

    async def subject(action: str, form: str) -> int:
        body = {"stream_id": stream["stream_id"], "subject": subjects[form]}
        url = f"{receiver.streams}/subjects:{action}"
        return int((await scim.client.post(url, json=body, headers=receiver.headers)).status)

    for form in subjects:  # either form names the same user
        assert await subject("remove", form) == 204
        await retitle(f"unseen-{form}")
        bob = await scim.create_user(f"bob-{form}")
        (only,) = (await receiver.awaited(stream, 1)).values()
        assert only["sub_id"]["uri"] == f"/Users/{bob['id']}"  # not ada's change before it
        await receiver.poll(stream, ack=[only["jti"]])
        assert await subject("add", form) == 200
        await retitle(f"seen-{form}")
        (back,) = (await receiver.awaited(stream, 1)).values()
        assert back["sub_id"]["uri"] == f"/Users/{ada['id']}"
        await receiver.poll(stream, ack=[back["jti"]])


@pytest.mark.parametrize(
    "subject",
    [
        None,
        {"format": "email", "email": "ada@example.com"},
        {"format": "scim", "uri": "/Widgets/1"},
        {"format": "scim", "uri": "/Users/"},
        {"format": "iss_sub", "iss": "https://elsewhere.example", "sub": "1"},
    ],
)
async def test_a_subject_the_transmitter_cannot_name_is_a_400(scim: Scim, subject: Any) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream()
    body = {"stream_id": stream["stream_id"], "subject": subject}
    for action in ("add", "remove"):
        url = f"{receiver.streams}/subjects:{action}"
        await scim_error(await scim.client.post(url, json=body, headers=receiver.headers), 400)


# --- deactivation and deletion ------------------------------------------------------------------


async def test_deactivating_or_deleting_a_user_revokes_its_sessions_and_disables_its_account(
    scim: Scim,
) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    stream = await receiver.create_stream(
        f"{PROV}deactivate", f"{PROV}delete", SESSION_REVOKED, ACCOUNT_DISABLED
    )
    ada, bob = await scim.create_user("ada"), await scim.create_user("bob")
    assert (await scim.patch(f"/Users/{ada['id']}", json=DEACTIVATE)).status == 200
    assert (await scim.delete(f"/Users/{bob['id']}")).status == 204
    sets = in_order(await receiver.awaited(stream, 6))
    # Each user's three SETs, in this order (the two users' events may come in either order).
    told = {s["txn"]: [] for s in sets}
    for claims in sets:
        told[claims["txn"]].append((event_uri(claims), claims["sub_id"]))
    assert sorted(told.values(), key=lambda said: said[0][0]) == [
        [
            (f"{PROV}deactivate", {"format": "scim", "uri": f"/Users/{ada['id']}"}),
            (SESSION_REVOKED, {"format": "iss_sub", "iss": stream["iss"], "sub": ada["id"]}),
            (ACCOUNT_DISABLED, {"format": "iss_sub", "iss": stream["iss"], "sub": ada["id"]}),
        ],
        [
            (f"{PROV}delete", {"format": "scim", "uri": f"/Users/{bob['id']}"}),
            (SESSION_REVOKED, {"format": "iss_sub", "iss": stream["iss"], "sub": bob["id"]}),
            (ACCOUNT_DISABLED, {"format": "iss_sub", "iss": stream["iss"], "sub": bob["id"]}),
        ],
    ]


# --- admin API and CLI --------------------------------------------------------------------------


async def test_the_admin_issues_lists_and_revokes_receiver_tokens(scim: Scim) -> None:
    client = scim.client
    base = "/admin/tenants/acme/ssf/receivers"
    issued = await (await client.post(base, json={"description": "SIEM"}, headers=ADMIN)).json()
    assert issued["token"].startswith("ssf_") and issued["issuer"].endswith("/ssf/acme")
    listed = await (await client.get(base, headers=ADMIN)).json()
    assert [(r["token_id"], r["description"], r["revoked"]) for r in listed["receivers"]] == [
        (issued["token_id"], "SIEM", None)
    ]
    assert issued["token"] not in json.dumps(listed)
    await scim_error(await client.delete(f"{base}/nope", headers=ADMIN), 404)
    await scim_error(await client.post("/admin/tenants/nobody/ssf/receivers", headers=ADMIN), 404)
    await scim_error(await client.get(base), 401)


async def test_deleting_the_tenant_deletes_its_receivers_and_streams(scim: Scim) -> None:
    receiver = await Receiver.of(scim.client, "acme")
    await receiver.create_stream()
    assert (await scim.client.delete("/admin/tenants/acme", headers=ADMIN)).status == 204
    await scim.client.post("/admin/tenants", json={"name": "acme"}, headers=ADMIN)
    await scim_error(await scim.client.get(receiver.streams, headers=receiver.headers), 401)
    listed = await (await scim.client.get("/admin/tenants/acme/ssf/streams", headers=ADMIN)).json()
    assert listed == {"streams": []}


async def test_cli_issues_lists_and_revokes_receiver_tokens_and_lists_streams(
    scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    client = scim.client
    issued = json.loads(
        await admin_cli(
            client, capsys, "ssf", "receivers", "issue", "acme", "--description", "SIEM"
        )
    )
    receiver = Receiver(client, "acme", issued["token"])
    stream = await receiver.create_stream(f"{PROV}delete")
    listed = json.loads(await admin_cli(client, capsys, "ssf", "receivers", "list", "acme"))
    assert [r["token_id"] for r in listed["receivers"]] == [issued["token_id"]]
    streams = json.loads(await admin_cli(client, capsys, "ssf", "streams", "acme"))
    assert [s["stream_id"] for s in streams["streams"]] == [stream["stream_id"]]
    printed = await admin_cli(
        client, capsys, "ssf", "receivers", "revoke", "acme", issued["token_id"]
    )
    assert printed == f"revoked SSF receiver token {issued['token_id']} of tenant acme\n"
    await scim_error(await client.get(receiver.streams, headers=receiver.headers), 401)


# --- hostile input ------------------------------------------------------------------------------

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=12)
    | st.sampled_from([POLL, PUSH]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    [
        "stream_id",
        "delivery",
        "method",
        "endpoint_url",
        "authorization_header",
        "events_requested",
        "description",
        "status",
        "reason",
        "state",
        "subject",
        "format",
        "uri",
        "maxEvents",
        "returnImmediately",
        "ack",
        "setErrs",
    ]
)
BODIES = st.one_of(st.dictionaries(KEYS, VALUES, max_size=5), VALUES)


@pytest.fixture
async def polled(scim: Scim) -> tuple[Receiver, dict[str, Any]]:
    """A receiver and its poll stream, shared by all of a test's examples."""
    receiver = await Receiver.of(scim.client, "acme")
    return receiver, await receiver.create_stream()


@fuzz_settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(
        [
            ("POST", "/streams"),
            ("PATCH", "/streams"),
            ("PUT", "/streams"),
            ("POST", "/streams/status"),
            ("POST", "/streams/verify"),
            ("POST", "/poll/{stream}"),
            ("GET", "/streams/verify"),
            ("POST", "/streams/subjects:add"),
            ("POST", "/streams/subjects:remove"),
            ("DELETE", "/streams/status"),
        ]
    ),
    body=BODIES,
)
async def test_no_body_ever_gets_a_5xx_and_every_refusal_is_a_scim_error(
    polled: tuple[Receiver, dict[str, Any]], route: tuple[str, str], body: Any
) -> None:
    receiver, stream = polled
    method, path = route
    if isinstance(body, dict):
        if body.get("stream_id") is True:
            body["stream_id"] = stream["stream_id"]
        if path.startswith("/poll"):
            body["returnImmediately"] = True  # a long poll would only wait
    url = f"/ssf/acme{path.format(stream=stream['stream_id'])}"
    response = await receiver.client.request(
        method, url, json=body, headers={**receiver.headers, "Content-Type": "application/json"}
    )
    assert response.status < 500, await response.text()
    if response.status >= 400:
        await scim_error(response, response.status)
