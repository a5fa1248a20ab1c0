"""Provisioning events: every change to a user or group, whatever path made it, emits exactly
one event, in the tenant's gap-free sequence; a change that did not land emits nothing.

Over real HTTP against the application and its relay, on a real database; events are read
through the admin API (``GET /admin/tenants/{name}/events``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.events import awaited_events, events_from, summary, types_of
from tests.support.scim import ADMIN, Scim, make_tenant
from tests.support.urns import BULK_REQUEST, GROUP, PATCH_OP, USER

OKTA = {"User-Agent": "Okta SCIM Client 1.0.0"}


def _patch(op: str, path: str | None, value: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"op": op, "value": value}
    if path is not None:
        operation["path"] = path
    return {"schemas": [PATCH_OP], "Operations": [operation]}


async def test_a_users_lifecycle_emits_one_event_per_change_with_what_changed_and_who(
    client: TestClient[Any, Any],
) -> None:
    tenant = await make_tenant(client, "acme")
    scim = Scim(client, "acme", tenant["token"])
    body = {"schemas": [USER], "userName": "ada", "password": "s3cret-Pa55", "title": "Eng"}
    created = await (await scim.post("/Users", json=body, headers=scim.headers(OKTA))).json()
    path = f"/Users/{created['id']}"
    steps = [
        _patch("replace", "displayName", "Ada"),
        _patch("replace", "active", False),
        _patch("replace", "active", True),
    ]
    for step in steps:
        assert (await scim.patch(path, json=step, headers=scim.headers(OKTA))).status == 200
    assert (await scim.delete(path, headers=scim.headers(OKTA))).status == 204

    events = await awaited_events(client, "acme", 5)
    user = created["id"]
    assert summary(events) == [
        (1, "user.created", user, 1),
        (2, "user.updated", user, 2),
        (3, "user.deactivated", user, 3),
        (4, "user.reactivated", user, 4),
        (5, "user.deleted", user, 5),
    ]
    first = events[0]
    assert first["tenant"] == "acme"
    assert first["resource"]["type"] == "User"
    assert first["attributes"] == ["password", "title", "userName"]
    assert first["values"] == {"title": "Eng", "userName": "ada"}  # never the password
    assert first["client"] == {"via": "scim", "token_id": tenant["token_id"], "idp": "okta"}
    assert events[1]["attributes"] == ["displayName"]
    assert events[1]["values"] == {"displayName": "Ada"}
    assert events[2]["values"] == {"active": False}
    assert events[4]["attributes"] == []
    assert len({event["id"] for event in events}) == 5
    assert all(event["time"].endswith("+00:00") for event in events)


async def test_a_put_names_the_attributes_it_changed_and_removed(scim: Scim) -> None:
    created = await scim.create_user("ada", displayName="Ada", title="Eng")
    body = {"schemas": [USER], "userName": "ada", "displayName": "Ada L."}
    assert (await scim.put(f"/Users/{created['id']}", json=body)).status == 200
    events = await awaited_events(scim.client, "acme", 2)
    assert events[1]["type"] == "user.updated"
    assert events[1]["attributes"] == ["displayName", "title"]
    assert events[1]["values"] == {"displayName": "Ada L.", "title": None}


async def test_one_patch_adding_fifty_members_is_one_event_carrying_their_ids(
    scim: Scim,
) -> None:
    users = [(await scim.create_user(f"user{n}"))["id"] for n in range(50)]
    group = await scim.create_group("eng")
    add = _patch("add", "members", [{"value": user} for user in users])
    assert (await scim.patch(f"/Groups/{group['id']}", json=add)).status == 204
    events = await awaited_events(scim.client, "acme", 52)
    assert len(events) == 52
    assert types_of(events, group["id"]) == ["group.created", "group.members_added"]
    (added,) = (e for e in events if e["type"] == "group.members_added")
    assert added["resource"] == {"type": "Group", "id": group["id"], "version": 2}
    assert sorted(added["members"]) == sorted(users)


async def test_a_groups_lifecycle_emits_created_with_members_then_each_change(
    scim: Scim,
) -> None:
    ada, bob = (await scim.create_user("ada"))["id"], (await scim.create_user("bob"))["id"]
    group = await scim.create_group("eng", [ada])
    path = f"/Groups/{group['id']}"
    assert (await scim.patch(path, json=_patch("add", "members", [{"value": bob}]))).ok
    remove = _patch("remove", f'members[value eq "{ada}"]', None)
    assert (await scim.patch(path, json=remove)).ok
    assert (await scim.patch(path, json=_patch("replace", "displayName", "Engineering"))).ok
    assert (await scim.delete(path)).status == 204
    events = [
        e
        for e in await awaited_events(scim.client, "acme", 7)
        if e["resource"]["id"] == group["id"]
    ]
    assert [(e["type"], e["resource"]["version"]) for e in events] == [
        ("group.created", 1),
        ("group.members_added", 2),
        ("group.members_removed", 3),
        ("group.updated", 4),
        ("group.deleted", 5),
    ]
    assert events[0]["members"] == [ada]
    assert events[0]["attributes"] == ["displayName", "members"]
    assert events[1]["members"] == [bob]
    assert events[2]["members"] == [ada]
    assert events[3]["values"] == {"displayName": "Engineering"}


async def test_deleting_a_user_in_a_group_also_emits_its_removal_from_the_group(
    scim: Scim,
) -> None:
    ada = (await scim.create_user("ada"))["id"]
    group = await scim.create_group("eng", [ada])
    assert (await scim.delete(f"/Users/{ada}")).status == 204
    events = await awaited_events(scim.client, "acme", 4)
    assert types_of(events, ada) == ["user.created", "user.deleted"]
    assert types_of(events, group["id"]) == ["group.created", "group.members_removed"]
    deleted, removed = (e for e in events if e["type"] in ("user.deleted", "group.members_removed"))
    # The removal from the group follows the deletion: it is written once the user is gone.
    assert (deleted["type"], removed["type"]) == ("user.deleted", "group.members_removed")
    assert removed["members"] == [ada]
    assert removed["resource"]["version"] == 2


async def test_changes_that_did_not_land_emit_nothing(scim: Scim) -> None:
    """A 412, a 409 and a 404 write nothing, so they emit nothing: the next change that does
    land takes the very next sequence number."""
    ada = await scim.create_user("ada")
    path = f"/Users/{ada['id']}"
    stale = await scim.patch(
        path, json=_patch("replace", "title", "x"), headers=scim.headers({"If-Match": 'W/"9"'})
    )
    assert stale.status == 412
    taken = await scim.post("/Users", json={"schemas": [USER], "userName": "ADA"})
    assert taken.status == 409
    assert (await scim.delete("/Users/no-such-user")).status == 404
    assert (await scim.delete(path, headers=scim.headers({"If-Match": 'W/"9"'}))).status == 412
    assert (await scim.patch(path, json=_patch("replace", "title", "landed"))).ok
    events = await awaited_events(scim.client, "acme", 2)
    assert summary(events) == [(1, "user.created", ada["id"], 1), (2, "user.updated", ada["id"], 2)]


async def test_each_bulk_operation_that_lands_emits_and_a_failed_one_does_not(
    scim: Scim,
) -> None:
    ada = await scim.create_user("ada")
    bulk = {
        "schemas": [BULK_REQUEST],
        "Operations": [
            {"method": "POST", "bulkId": "b", "path": "/Users", "data": {"userName": "bob"}},
            {"method": "POST", "bulkId": "c", "path": "/Users", "data": {"userName": "ada"}},
            {
                "method": "PATCH",
                "path": f"/Users/{ada['id']}",
                "data": _patch("replace", "title", "Eng"),
            },
            {
                "method": "PATCH",
                "path": f"/Users/{ada['id']}",
                "version": 'W/"7"',
                "data": _patch("replace", "title", "never"),
            },
            {
                "method": "POST",
                "bulkId": "g",
                "path": "/Groups",
                "data": {
                    "schemas": [GROUP],
                    "displayName": "eng",
                    "members": [{"value": "bulkId:b"}],
                },
            },
            {"method": "DELETE", "path": f"/Users/{ada['id']}"},
        ],
    }
    answer = await (await scim.post("/Bulk", json=bulk)).json()
    statuses = [int(operation["status"]) for operation in answer["Operations"]]
    assert sorted(statuses) == [200, 201, 201, 204, 409, 412]
    events = await awaited_events(scim.client, "acme", 5)
    assert [event["sequence"] for event in events] == [1, 2, 3, 4, 5]
    assert types_of(events, ada["id"]) == ["user.created", "user.updated", "user.deleted"]
    (bob,) = (e for e in events if e["values"].get("userName") == "bob")
    (group,) = (e for e in events if e["type"] == "group.created")
    assert group["members"] == [bob["resource"]["id"]]


async def test_a_seat_refusal_emits_nothing(scim: Scim) -> None:
    limit = await scim.client.put("/admin/tenants/acme/seats", json={"seats": 1}, headers=ADMIN)
    assert limit.status == 200
    await scim.create_user("ada")
    refused = await scim.post("/Users", json={"schemas": [USER], "userName": "bob"})
    assert refused.status == 403
    inactive = await scim.create_user("carol", active=False)
    events = await awaited_events(scim.client, "acme", 2)
    assert [(e["type"], e["values"]["userName"]) for e in events] == [
        ("user.created", "ada"),
        ("user.created", "carol"),
    ]
    assert inactive["active"] is False


async def test_reading_from_the_current_end_answers_no_event_and_where_to_read_on(
    scim: Scim,
) -> None:
    await scim.create_user("ada")
    await awaited_events(scim.client, "acme", 1)
    end = await scim.client.get("/admin/tenants/acme/events", headers=ADMIN)
    assert await end.json() == {"events": [], "next_sequence": 2}
    await scim.create_user("bob")
    assert [e["values"]["userName"] for e in await awaited_events(scim.client, "acme", 1, 2)] == [
        "bob"
    ]
    assert await events_from(scim.client, "acme", 3) == []
    bad = await scim.client.get("/admin/tenants/acme/events?from_sequence=0", headers=ADMIN)
    assert bad.status == 400


async def test_sequence_numbers_stay_gap_free_and_in_order_per_resource_under_concurrent_writers(
    scim: Scim,
) -> None:
    """Rounds of concurrent creations, updates and member changes: every landed change is
    one event, numbered 1..n with no gap, each resource's versions in increasing order."""
    users = await asyncio.gather(*(scim.create_user(f"user{n}") for n in range(20)))
    group = await scim.create_group("eng")
    expected = 21
    for round_ in range(3):
        changes = [
            scim.patch(f"/Users/{user['id']}", json=_patch("replace", "title", f"t{round_}"))
            for user in users
        ]
        changes += [
            scim.patch(
                f"/Groups/{group['id']}",
                json=_patch(
                    "add" if round_ % 2 == 0 else "remove", "members", [{"value": u["id"]}]
                ),
            )
            for u in users[:5]
        ]
        responses = await asyncio.gather(*changes)
        # Users answer 200; a group PATCH answers 204 by default.
        assert [response.status for response in responses] == [200] * 20 + [204] * 5
        expected += 25
    events = await awaited_events(scim.client, "acme", expected)
    assert [event["sequence"] for event in events] == list(range(1, expected + 1))
    assert len({event["id"] for event in events}) == expected
    versions: dict[str, list[int]] = defaultdict(list)
    for event in events:
        versions[event["resource"]["id"]].append(event["resource"]["version"])
    assert all(seen == sorted(seen) and len(set(seen)) == len(seen) for seen in versions.values())
    assert versions[group["id"]] == list(range(1, 17))
