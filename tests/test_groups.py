"""Groups over HTTP: members (users and nested groups), their validation, the derived
``User.groups`` (direct and indirect), and what deletes and replaces do to memberships."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from tests.support.plans import WRITES, recording_finds
from tests.support.scim import Scim, scim_error
from tests.support.urns import GROUP, PATCH_OP


def _group(
    display_name: str, members: list[str] | None = None, **attributes: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP], "displayName": display_name, **attributes}
    if members is not None:
        body["members"] = [{"value": member} for member in members]
    return body


async def _get(scim: Scim, path: str) -> dict[str, Any]:
    response = await scim.get(path)
    assert response.status == 200, await response.text()
    return dict(await response.json())


def _member_ids(resource: dict[str, Any]) -> set[str]:
    return {member["value"] for member in resource.get("members", [])}


def _groups_of(user: dict[str, Any]) -> dict[str, str]:
    return {group["value"]: group["type"] for group in user.get("groups", [])}


# --- members --------------------------------------------------------------------------


async def test_create_group_with_users_and_a_nested_group(scim: Scim) -> None:
    alice = await scim.create_user("alice", displayName="Alice A")
    bob = await scim.create_user("bob")
    inner = await scim.create_group("Inner")
    response = await scim.post("/Groups", _group("Outer", [alice["id"], bob["id"], inner["id"]]))
    assert response.status == 201, await response.text()
    created = await response.json()
    assert response.headers["Location"] == created["meta"]["location"]
    assert created["meta"]["resourceType"] == "Group"
    assert created["displayName"] == "Outer"
    by_id = {member["value"]: member for member in created["members"]}
    assert by_id == {
        alice["id"]: {
            "value": alice["id"],
            "type": "User",
            "display": "Alice A",
            "$ref": alice["meta"]["location"],
        },
        bob["id"]: {
            "value": bob["id"],
            "type": "User",
            "display": "bob",
            "$ref": bob["meta"]["location"],
        },
        inner["id"]: {
            "value": inner["id"],
            "type": "Group",
            "display": "Inner",
            "$ref": inner["meta"]["location"],
        },
    }
    assert await _get(scim, f"/Groups/{created['id']}") == created


async def test_unknown_member_id_is_400_invalid_value_and_creates_nothing(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    response = await scim.post("/Groups", _group("G", [alice["id"], "no-such-id"]))
    body = await scim_error(response, 400, "invalidValue")
    assert "no-such-id" in body["detail"]
    listing = await _get(scim, "/Groups")
    assert listing["totalResults"] == 0


async def test_member_of_another_tenant_is_400(scim: Scim, other_scim: Scim) -> None:
    theirs = await other_scim.create_user("alice")
    their_group = await other_scim.create_group("Theirs")
    for member in (theirs["id"], their_group["id"]):
        await scim_error(await scim.post("/Groups", _group("G", [member])), 400, "invalidValue")
    mine = await scim.create_group("Mine")
    await scim_error(
        await scim.put(f"/Groups/{mine['id']}", _group("Mine", [theirs["id"]])), 400, "invalidValue"
    )
    assert "members" not in await _get(scim, f"/Groups/{mine['id']}")
    assert "groups" not in await _get(other_scim, f"/Users/{theirs['id']}")


async def test_declared_member_type_must_match(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    body = {
        "schemas": [GROUP],
        "displayName": "G",
        "members": [{"value": alice["id"], "type": "Group"}],
    }
    await scim_error(await scim.post("/Groups", body), 400, "invalidValue")


async def test_excluded_attributes_members_omits_them(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    group = await scim.create_group("G", [alice["id"]])
    fetched = await _get(scim, f"/Groups/{group['id']}?excludedAttributes=members")
    assert "members" not in fetched
    assert fetched["displayName"] == "G"
    assert fetched["id"] == group["id"]
    listed = await _get(scim, "/Groups?excludedAttributes=members")
    assert listed["Resources"][0]["displayName"] == "G"
    assert "members" not in listed["Resources"][0]


async def test_large_group_returns_every_member(scim: Scim, mongo_db: AsyncDatabase[Any]) -> None:
    group = await scim.create_group("Big")
    # 300 users straight into the database: creating them over HTTP would only be slower.
    template = await mongo_db.users.find_one({"_id": (await scim.create_user("seed"))["id"]})
    assert template is not None
    documents = []
    for i in range(300):
        document = dict(template, _id=f"user-{i:03d}")
        document["r"] = {"userName": f"user{i:03d}"}
        document["c"] = {"userName": f"user{i:03d}"}
        documents.append(document)
    await mongo_db.users.insert_many(documents)
    ids = [document["_id"] for document in documents]
    response = await scim.put(f"/Groups/{group['id']}", _group("Big", ids))
    assert response.status == 200, await response.text()
    assert _member_ids(await response.json()) == set(ids)
    fetched = await _get(scim, f"/Groups/{group['id']}")
    assert len(fetched["members"]) == 300
    assert _member_ids(fetched) == set(ids)
    assert {member["display"] for member in fetched["members"]} == {
        f"user{i:03d}" for i in range(300)
    }


# --- User.groups ----------------------------------------------------------------------


async def test_user_groups_are_direct_and_indirect(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    a = await scim.create_group("A", [alice["id"]])
    b = await scim.create_group("B", [a["id"], bob["id"]])
    c = await scim.create_group("C", [b["id"]])
    unrelated = await scim.create_group("D", [bob["id"]])

    alice_view = await _get(scim, f"/Users/{alice['id']}")
    assert _groups_of(alice_view) == {a["id"]: "direct", b["id"]: "indirect", c["id"]: "indirect"}
    direct = next(g for g in alice_view["groups"] if g["value"] == a["id"])
    assert direct == {
        "value": a["id"],
        "type": "direct",
        "display": "A",
        "$ref": a["meta"]["location"],
    }
    bob_view = await _get(scim, f"/Users/{bob['id']}")
    assert _groups_of(bob_view) == {
        b["id"]: "direct",
        unrelated["id"]: "direct",
        c["id"]: "indirect",
    }
    # Listing derives them too.
    listed = await _get(scim, '/Users?filter=userName eq "alice"')
    assert _groups_of(listed["Resources"][0]) == _groups_of(alice_view)


async def test_user_in_a_group_directly_and_through_a_child_is_direct_only(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    child = await scim.create_group("Child", [alice["id"]])
    parent = await scim.create_group("Parent", [alice["id"], child["id"]])
    view = await _get(scim, f"/Users/{alice['id']}")
    assert _groups_of(view) == {child["id"]: "direct", parent["id"]: "direct"}
    assert len(view["groups"]) == 2


async def test_cyclic_nesting_terminates(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    a = await scim.create_group("A", [alice["id"]])
    b = await scim.create_group("B", [a["id"]])
    response = await scim.put(f"/Groups/{a['id']}", _group("A", [alice["id"], b["id"]]))
    assert response.status == 200, await response.text()
    view = await _get(scim, f"/Users/{alice['id']}")
    assert _groups_of(view) == {a["id"]: "direct", b["id"]: "indirect"}


async def test_group_cannot_be_its_own_member(scim: Scim) -> None:
    group = await scim.create_group("G")
    await scim_error(
        await scim.put(f"/Groups/{group['id']}", _group("G", [group["id"]])), 400, "invalidValue"
    )


async def test_user_attributes_selection_can_leave_out_groups(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    await scim.create_group("A", [alice["id"]])
    view = await _get(scim, f"/Users/{alice['id']}?excludedAttributes=groups")
    assert "groups" not in view
    view = await _get(scim, f"/Users/{alice['id']}?attributes=groups")
    assert set(view) == {"schemas", "id", "groups"}


# --- deletes and replaces -------------------------------------------------------------


async def test_deleting_a_user_removes_it_from_every_group(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    g1 = await scim.create_group("G1", [alice["id"], bob["id"]])
    g2 = await scim.create_group("G2", [alice["id"]])
    assert (await scim.delete(f"/Users/{alice['id']}")).status == 204
    assert _member_ids(await _get(scim, f"/Groups/{g1['id']}")) == {bob["id"]}
    assert "members" not in await _get(scim, f"/Groups/{g2['id']}")
    assert await mongo_db.memberships.count_documents({"member": alice["id"]}) == 0


async def test_deleting_a_group_removes_it_from_parents_and_users(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    child = await scim.create_group("Child", [alice["id"]])
    parent = await scim.create_group("Parent", [child["id"], bob["id"]])
    assert (await scim.delete(f"/Groups/{child['id']}")).status == 204
    assert _member_ids(await _get(scim, f"/Groups/{parent['id']}")) == {bob["id"]}
    # Alice was in Parent only through Child: she is in no group now.
    assert "groups" not in await _get(scim, f"/Users/{alice['id']}")
    assert _groups_of(await _get(scim, f"/Users/{bob['id']}")) == {parent["id"]: "direct"}
    assert (
        await mongo_db.memberships.count_documents(
            {"$or": [{"group": child["id"]}, {"member": child["id"]}]}
        )
        == 0
    )
    await scim_error(await scim.get(f"/Groups/{child['id']}"), 404)


async def _stale_after(scim: Scim, path: str, etag: str) -> dict[str, Any]:
    """GET with the ETag a client cached: the resource, which must have changed (not 304)."""
    response = await scim.get(path, headers={"If-None-Match": etag})
    assert response.status == 200, await response.text()
    assert response.headers["ETag"] != etag
    return dict(await response.json())


async def test_deleting_a_member_gives_each_of_its_groups_a_new_version(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    g1 = await scim.create_group("G1", [alice["id"], bob["id"]])
    g2 = await scim.create_group("G2", [alice["id"]])
    other = await scim.create_group("Other", [bob["id"]])
    assert (await scim.delete(f"/Users/{alice['id']}")).status == 204

    after = await _stale_after(scim, f"/Groups/{g1['id']}", g1["meta"]["version"])
    assert _member_ids(after) == {bob["id"]}
    assert after["meta"]["lastModified"] > g1["meta"]["lastModified"]
    assert "members" not in await _stale_after(scim, f"/Groups/{g2['id']}", g2["meta"]["version"])
    unchanged = await scim.get(
        f"/Groups/{other['id']}", headers={"If-None-Match": other["meta"]["version"]}
    )
    assert unchanged.status == 304


async def test_deleting_a_member_group_gives_its_parents_a_new_version(scim: Scim) -> None:
    child = await scim.create_group("Child")
    parent = await scim.create_group("Parent", [child["id"]])
    assert (await scim.delete(f"/Groups/{child['id']}")).status == 204
    after = await _stale_after(scim, f"/Groups/{parent['id']}", parent["meta"]["version"])
    assert "members" not in after


async def test_a_delete_answered_has_given_the_parents_their_new_version_every_time(
    scim: Scim,
) -> None:
    """The events relay of the deleter's process may be moving the deleted group's events at
    the same moment (its creation's, just written): whichever task removes the document and
    its memberships, the DELETE answers only after the parents have their new version."""

    async def one(round_: int) -> None:
        child = await scim.create_group(f"Child {round_}")
        parent = await scim.create_group(f"Parent {round_}", [child["id"]])
        assert (await scim.delete(f"/Groups/{child['id']}")).status == 204
        await _stale_after(scim, f"/Groups/{parent['id']}", parent["meta"]["version"])

    for batch in range(4):
        await asyncio.gather(*(one(batch * 10 + n) for n in range(10)))


async def test_renaming_a_member_gives_its_groups_a_new_version(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    group = await scim.create_group("G", [alice["id"]])
    response = await scim.patch(
        f"/Users/{alice['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "Alice L."}],
        },
    )
    assert response.status == 200, await response.text()
    after = await _stale_after(scim, f"/Groups/{group['id']}", group["meta"]["version"])
    assert [m["display"] for m in after["members"]] == ["Alice L."]


async def test_a_group_created_with_members_is_at_version_1_with_them(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    group = await scim.create_group("G", [alice["id"]])
    assert group["meta"]["version"] == 'W/"1"'
    stored = await _get(scim, f"/Groups/{group['id']}")
    assert stored["meta"] == group["meta"]
    assert _member_ids(stored) == {alice["id"]}


async def test_put_that_changes_members_answers_the_version_it_stored(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    group = await scim.create_group("G", [alice["id"]])
    path = f"/Groups/{group['id']}"
    response = await scim.put(path, _group("G", [bob["id"]]))
    assert response.status == 200, await response.text()
    answered = await response.json()
    assert answered["meta"]["version"] != group["meta"]["version"]
    unchanged = await scim.get(path, headers={"If-None-Match": answered["meta"]["version"]})
    assert unchanged.status == 304


async def test_put_replaces_members_exactly(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    bob = await scim.create_user("bob")
    carol = await scim.create_user("carol")
    group = await scim.create_group("G", [alice["id"], bob["id"]])
    path = f"/Groups/{group['id']}"
    response = await scim.put(path, _group("G", [bob["id"], carol["id"]]))
    assert response.status == 200, await response.text()
    assert _member_ids(await response.json()) == {bob["id"], carol["id"]}
    assert _member_ids(await _get(scim, path)) == {bob["id"], carol["id"]}
    assert "groups" not in await _get(scim, f"/Users/{alice['id']}")
    assert _groups_of(await _get(scim, f"/Users/{carol['id']}")) == {group["id"]: "direct"}


async def test_put_without_members_clears_them(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    group = await scim.create_group("G", [alice["id"]])
    path = f"/Groups/{group['id']}"
    response = await scim.put(path, _group("Renamed"))
    assert response.status == 200, await response.text()
    replaced = await response.json()
    assert replaced["displayName"] == "Renamed"
    assert "members" not in replaced
    assert "members" not in await _get(scim, path)
    assert "groups" not in await _get(scim, f"/Users/{alice['id']}")


async def test_renaming_a_group_changes_the_display_its_members_see(scim: Scim) -> None:
    alice = await scim.create_user("alice")
    group = await scim.create_group("Old", [alice["id"]])
    await scim.put(f"/Groups/{group['id']}", _group("New", [alice["id"]]))
    view = await _get(scim, f"/Users/{alice['id']}")
    assert [g["display"] for g in view["groups"]] == ["New"]


async def test_group_of_another_tenant_is_404(scim: Scim, other_scim: Scim) -> None:
    theirs = await other_scim.create_group("Theirs")
    path = f"/Groups/{theirs['id']}"
    await scim_error(await scim.get(path), 404)
    await scim_error(await scim.put(path, _group("Mine")), 404)
    await scim_error(await scim.delete(path), 404)
    assert (await _get(other_scim, path))["displayName"] == "Theirs"


async def test_member_display_is_kept_as_sent_and_derived_when_absent(scim: Scim) -> None:
    alice = await scim.create_user("alice", displayName="Alice Liddell")
    bob = await scim.create_user("bob")
    group = await scim.create_group("Readers", members=[])
    response = await scim.patch(
        f"/Groups/{group['id']}?attributes=members",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "add",
                    "path": "members",
                    "value": [
                        {"value": alice["id"], "display": "Alice (as the IdP calls her)"},
                        {"value": bob["id"]},
                    ],
                }
            ],
        },
    )
    assert response.status == 200, await response.text()
    members = {m["value"]: m.get("display") for m in (await response.json())["members"]}
    assert members == {alice["id"]: "Alice (as the IdP calls her)", bob["id"]: "bob"}


async def test_a_bare_unknown_schema_urn_is_ignored_but_one_carrying_attributes_is_refused(
    scim: Scim,
) -> None:
    adscim = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
    bare = await scim.post("/Groups", {"schemas": [GROUP, adscim], "displayName": "Entra"})
    assert bare.status == 201, await bare.text()
    assert (await bare.json())["schemas"] == [GROUP]
    carrying = await scim.post(
        "/Groups",
        {
            "schemas": [GROUP, "urn:example:ext:1.0"],
            "displayName": "X",
            "urn:example:ext:1.0": {"a": 1},
        },
    )
    assert carrying.status == 400


async def test_a_member_add_that_fails_leaves_the_members_hint_as_it_was(
    member_claims: bool, scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    """A PATCH adding members that fails (a bad member, a stale If-Match, a bad attribute,
    no such group: its add is undone) leaves their member-of hint as it was, so a user in
    no group is still read with no membership lookup. So does a lone add (claimed or looked
    up) of a member of the wrong type, of the group itself, or to no such group."""
    ada = await scim.create_user("ada")
    grace = await scim.create_user("grace")
    eng = await scim.create_group("eng")
    path = f"/Groups/{eng['id']}"

    def add(*members: dict[str, str], **operation: Any) -> dict[str, Any]:
        operations: list[dict[str, Any]] = [
            {"op": "add", "path": "members", "value": list(members)}
        ]
        if operation:
            operations.append(operation)
        return {"schemas": [PATCH_OP], "Operations": operations}

    both = ({"value": ada["id"]}, {"value": grace["id"]})
    failures = [
        (path, add(*both, {"value": "nobody"}), {}, 400),
        (path, add({"value": ada["id"], "type": "Group"}), {}, 400),
        (path, add(*both), {"If-Match": 'W/"99"'}, 412),
        (path, add(*both, op="replace", path="displayName", value=7), {}, 400),
        ("/Groups/no-such-group", add(*both), {}, 404),
        ("/Groups/no-such-group", add({"value": ada["id"]}), {}, 404),
        (path, add({"value": eng["id"]}), {}, 400),
    ]
    for target, body, headers, status in failures:
        await scim_error(await scim.patch(target, json=body, headers=headers), status)
    for user in (ada, grace):
        stored = await mongo_db.users.find_one({"_id": user["id"]})
        assert stored is not None and stored.get("gm", 0) == 0
        assert "groups" not in await _get(scim, f"/Users/{user['id']}")


async def test_writes_that_add_no_member_leave_the_members_hints_as_they_were(
    member_claims: bool, scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    """A write that adds no member leaves its hint as it was: a member already there (by
    PATCH or PUT), a creation refused (409), a PATCH naming a member twice that fails, so
    the hint still counts the member's groups exactly."""
    ada = await scim.create_user("ada")
    grace = await scim.create_user("grace")
    eng = await scim.create_group("eng", [ada["id"]])
    path = f"/Groups/{eng['id']}"
    add_ada = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": ada["id"]}]}],
    }
    assert (await scim.patch(path, json=add_ada)).status == 204
    assert (await scim.put(path, json=_group("eng", [ada["id"]]))).status == 200
    await scim_error(await scim.post("/Groups", json=_group("eng", [grace["id"]])), 409)
    twice = {"op": "add", "path": "members", "value": [{"value": grace["id"]}]}
    body = {"schemas": [PATCH_OP], "Operations": [twice, twice]}
    await scim_error(await scim.patch(path, json=body, headers={"If-Match": 'W/"99"'}), 412)
    hints = {user["_id"]: user.get("gm", 0) async for user in mongo_db.users.find({})}
    assert hints == {ada["id"]: 1, grace["id"]: 0}


async def test_a_member_add_journals_the_membership_and_the_group_not_the_hint(
    member_claims: bool, scim: Scim
) -> None:
    """The member's hint waits for no journal flush: the membership's journaled insert that
    follows flushes it too (storage/memberships.py). The insert and the group's new version
    are journaled."""
    ada = await scim.create_user("ada")
    eng = await scim.create_group("eng")
    add = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": ada["id"]}]}],
    }
    response = await recording_finds(scim.patch(f"/Groups/{eng['id']}", json=add), WRITES)
    assert response.status == 204, await response.text()
    journaled = {
        (next(iter(command)), command[next(iter(command))]): command.get("writeConcern", {})
        for command in WRITES.seen
    }
    assert journaled == {
        ("findAndModify" if member_claims else "update", "users"): {"w": 1},
        ("insert", "memberships"): {"w": 1, "j": True},
        ("findAndModify", "groups"): {"w": 1, "j": True},
    }


async def test_a_put_answers_the_attributes_asked_for(scim: Scim) -> None:
    """RFC 7644 §3.4.2.5: ``attributes`` and ``excludedAttributes`` shape a PUT's answer too,
    so a client replacing a large group can spare itself the members in return."""
    alice = await scim.create_user("alice")
    group = await scim.create_group("Readers")
    path = f"/Groups/{group['id']}"

    slim = await scim.put(f"{path}?excludedAttributes=members", _group("Writers", [alice["id"]]))
    named = await scim.put(f"{path}?attributes=displayName", _group("Editors", [alice["id"]]))

    assert slim.status == 200, await slim.text()
    slim_body = await slim.json()
    assert slim_body["displayName"] == "Writers" and "members" not in slim_body
    assert await named.json() == {"schemas": [GROUP], "id": group["id"], "displayName": "Editors"}
    assert [m["value"] for m in (await _get(scim, path))["members"]] == [alice["id"]]
