"""Memberships under real races: deletes against member adds, readers against member writes.

Each round sends its requests at once (``asyncio.gather``) through the real HTTP app to
the real database, so the server interleaves their reads and writes as it would in
production. Whatever the interleaving, no membership may outlive its member or its
group, and a version that a reader sees must carry the members of that version.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scim_server.config import Settings
from scim_server.storage.memberships import MembershipRepository
from scim_server.web.app import create_app
from tests.support.scim import Scim
from tests.support.urns import BULK_REQUEST, PATCH_OP

ROUNDS = 40
PAIRS = 4
"""Races per round: each round creates its resources in one go, then races them all."""


def add_member(user_id: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
    }


async def send(scim: Scim, method: str, path: str, body: Any = None) -> int:
    response = await scim.request(method, path, json=body)
    await response.read()
    return int(response.status)


def alternate_lookups(monkeypatch: pytest.MonkeyPatch, round_: int) -> None:
    """Rounds take turns in pairs between the two ways a lone member add looks its member up
    (``member_claims`` in conftest), so that each meets deletes sent both before and after."""
    monkeypatch.setattr(MembershipRepository, "claims_in_one_command", round_ % 4 < 2)


async def race(
    scim: Scim,
    round_: int,
    deletes: list[str],
    adds: list[tuple[str, str]],
    deleter: Scim | None = None,
) -> tuple[list[int], list[int]]:
    """DELETE each of ``deletes`` (through ``deleter``, else ``scim``) while adding the
    member to the group of each pair in ``adds``, all at once; which side is sent
    first alternates between rounds. Answers the statuses of both sides."""
    sends = [send(deleter or scim, "DELETE", path) for path in deletes]
    sends += [send(scim, "PATCH", f"/Groups/{g}", add_member(m)) for g, m in adds]
    if round_ % 2:
        sends = sends[len(deletes) :] + sends[: len(deletes)]
    statuses = await asyncio.gather(*sends)
    if round_ % 2:
        statuses = statuses[len(adds) :] + statuses[: len(adds)]
    return statuses[: len(deletes)], statuses[len(deletes) :]


async def read(scim: Scim, path: str) -> dict[str, Any]:
    return dict(await (await scim.get(path)).json())


async def users(scim: Scim, prefix: str, count: int) -> list[str]:
    created = await asyncio.gather(*(scim.create_user(f"{prefix}-{i}") for i in range(count)))
    return [user["id"] for user in created]


async def groups(scim: Scim, prefix: str, count: int) -> list[str]:
    created = await asyncio.gather(*(scim.create_group(f"{prefix}-{i}") for i in range(count)))
    return [group["id"] for group in created]


async def assert_no_ghosts(scim: Scim, mongo_db: Any) -> None:
    """No membership names a missing group or member, over the API and in the store."""
    user_ids = {d["_id"] for d in await mongo_db.users.find({}, {"_id": 1}).to_list(None)}
    group_ids = {d["_id"] for d in await mongo_db.groups.find({}, {"_id": 1}).to_list(None)}
    memberships = await mongo_db.memberships.find({}).to_list(None)
    assert [m for m in memberships if m["group"] not in group_ids] == []
    assert [m for m in memberships if m["member"] not in user_ids | group_ids] == []
    listed = await (await scim.get("/Groups?count=1000")).json()
    for group in listed["Resources"]:
        assert {m["value"] for m in group.get("members", [])} <= user_ids
    listed = await (await scim.get("/Users?count=1000")).json()
    for user in listed["Resources"]:
        assert {g["value"] for g in user.get("groups", [])} <= group_ids


async def test_a_user_deleted_while_added_to_a_group_leaves_no_ghost_member(
    monkeypatch: pytest.MonkeyPatch, scim: Scim, mongo_db: Any
) -> None:
    group_id = (await scim.create_group("Target"))["id"]
    for round_ in range(ROUNDS):
        alternate_lookups(monkeypatch, round_)
        members = await users(scim, f"doomed{round_}", PAIRS)
        deleted, added = await race(
            scim, round_, [f"/Users/{user}" for user in members], [(group_id, m) for m in members]
        )
        # The delete always wins; the add either landed first (and was undone) or
        # came after and found no such user.
        assert deleted == [204] * PAIRS
        assert set(added) <= {204, 400}
    after = await read(scim, f"/Groups/{group_id}")
    assert after.get("members", []) == []
    await assert_no_ghosts(scim, mongo_db)


async def test_a_user_deleted_by_another_worker_while_added_leaves_no_ghost_member(
    monkeypatch: pytest.MonkeyPatch,
    scim: Scim,
    mongo_db: Any,
    aiohttp_client: Any,
    settings: Settings,
) -> None:
    """As above, with the deletes on a second server: the add's hint raise, insert and check
    interleave with the deletion's read, mark and removal (conditioned on a hint of 0, with no
    membership lookup) in any order, across processes."""
    other = Scim(await aiohttp_client(create_app(settings)), scim.tenant, scim.token)
    group_id = (await scim.create_group("Target"))["id"]
    for round_ in range(ROUNDS):
        alternate_lookups(monkeypatch, round_)
        members = await users(scim, f"doomed{round_}", PAIRS)
        deleted, added = await race(
            scim,
            round_,
            [f"/Users/{user}" for user in members],
            [(group_id, m) for m in members],
            other,
        )
        assert deleted == [204] * PAIRS
        assert set(added) <= {204, 400}
    after = await read(scim, f"/Groups/{group_id}")
    assert after.get("members", []) == []
    await assert_no_ghosts(scim, mongo_db)


async def test_a_group_deleted_while_a_member_is_added_leaves_no_ghost_membership(
    monkeypatch: pytest.MonkeyPatch,
    scim: Scim,
    mongo_db: Any,
    aiohttp_client: Any,
    settings: Settings,
) -> None:
    # Writes of one group take turns within a server, so the deletes go to a second
    # server on the same database, as they would to another worker (SCIM_WORKERS > 1).
    other = Scim(await aiohttp_client(create_app(settings)), scim.tenant, scim.token)
    user = (await scim.create_user("survivor"))["id"]
    for round_ in range(ROUNDS):
        alternate_lookups(monkeypatch, round_)
        targets = await groups(scim, f"doomed{round_}", PAIRS)
        deleted, added = await race(
            scim, round_, [f"/Groups/{g}" for g in targets], [(g, user) for g in targets], other
        )
        assert deleted == [204] * PAIRS
        assert set(added) <= {204, 404}
    after = await read(scim, f"/Users/{user}")
    assert after.get("groups", []) == []
    await assert_no_ghosts(scim, mongo_db)


async def test_bulk_deletes_racing_bulk_member_adds_leave_no_ghosts(
    scim: Scim, mongo_db: Any
) -> None:
    group = await scim.create_group("Target")
    for round_ in range(ROUNDS // 2):
        members = await users(scim, f"bulk{round_}", PAIRS)
        deletes = [{"method": "DELETE", "path": f"/Users/{user}"} for user in members]
        adds = [
            {"method": "PATCH", "path": f"/Groups/{group['id']}", "data": add_member(user)}
            for user in members
        ]
        await asyncio.gather(
            *(
                send(scim, "POST", "/Bulk", {"schemas": [BULK_REQUEST], "Operations": [op]})
                for op in deletes + adds
            )
        )
    await assert_no_ghosts(scim, mongo_db)


async def test_a_reader_that_sees_the_final_version_sees_the_final_members(scim: Scim) -> None:
    """The version moves after the members do, so an ETag never names a stale member list."""
    for round_ in range(ROUNDS // 2):
        member = (await scim.create_user(f"reader{round_}"))["id"]
        group = await scim.create_group(f"Read{round_}")
        path = f"/Groups/{group['id']}"
        rename_and_add = {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "path": "displayName", "value": f"Renamed{round_}"},
                {"op": "add", "path": "members", "value": [{"value": member}]},
            ],
        }
        patched, *seen = await asyncio.gather(
            scim.patch(path, rename_and_add), *(read(scim, path) for _ in range(6))
        )
        final = await read(scim, path)
        assert patched.status == 204
        for snapshot in seen:
            if snapshot["meta"]["version"] == final["meta"]["version"]:
                assert snapshot.get("members") == final["members"]


async def test_a_member_renamed_while_it_is_added_shows_its_new_name(scim: Scim) -> None:
    group = await scim.create_group("Named")
    path = f"/Groups/{group['id']}"
    for round_ in range(ROUNDS // 2):
        members = await users(scim, f"renamed{round_}", PAIRS)
        rename = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": "New name"}],
        }
        statuses = await asyncio.gather(
            *(send(scim, "PATCH", f"/Users/{user}", rename) for user in members),
            *(send(scim, "PATCH", path, add_member(user)) for user in members),
        )
        assert set(statuses) == {200, 204}  # users answer 200, groups 204
    after = await read(scim, path)
    assert {m["display"] for m in after["members"]} == {"New name"}
