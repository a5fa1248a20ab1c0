"""The database commands each SCIM operation costs, pinned: each at the minimum it needs.

Counted per request, over real HTTP, by the server's own mechanism: the command listener on
its client counts into the request's tally (the one ``scim_request_database_commands`` is
fed from), read here when the response is prepared. Only the resources' and memberships'
collections are counted (the token check's cached lookups are not the operation's own cost).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from scim_server.config import Settings
from scim_server.core import one_team, seats
from tests.support.commands import Commands, readings_serve_the_whole_test
from tests.support.entitlements import entitlement_app
from tests.support.events import awaited_events
from tests.support.lines import queued_patches
from tests.support.scim import ADMIN, Scim, make_tenant
from tests.support.urns import BULK_REQUEST, ENTERPRISE, GROUP, PATCH_OP, USER
from tests.support.user_extensions import ACME, define

COUNTED = frozenset(
    {
        "users",
        "groups",
        "memberships",
        "seats",
        "tenants",
        "rate_limits",
        "events",
        "custom_resources",
    }
)


@pytest.fixture
def commands() -> Commands:
    return Commands(COUNTED)


@pytest.fixture(autouse=True)
def readings_last(monkeypatch: pytest.MonkeyPatch) -> None:
    readings_serve_the_whole_test(monkeypatch)


@pytest.fixture
async def client(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, commands: Commands
) -> TestClient[Any, Any]:
    """The suite's client, on an application that hands each request's tally to ``commands``."""
    return await commands.client(aiohttp_client, settings)


async def _user_in_no_group(scim: Scim) -> str:
    """The path of a new active user, ``ada``, in no group."""
    user = await scim.create_user("ada")
    return f"/Users/{user['id']}"


async def _user_in_one_group(scim: Scim) -> tuple[str, str]:
    """The paths of a new user, ``ada``, and of the one group it is in, ``eng``."""
    user = await scim.create_user("ada")
    group = await scim.create_group("eng", [user["id"]])
    return f"/Users/{user['id']}", f"/Groups/{group['id']}"


async def _limited_with_a_user(scim: Scim, seats: int) -> None:
    """Give the tenant a limit of ``seats`` and a user, ``ada``: it is then known to be limited."""
    limit = await scim.client.put(
        f"/admin/tenants/{scim.tenant}/seats", json={"seats": seats}, headers=ADMIN
    )
    assert limit.status == 200
    await scim.create_user("ada")


def _members_patch(op: str, member: dict[str, str]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": op, "path": "members", "value": [member]}]}


async def test_a_user_creation_on_an_unlimited_tenant_reads_the_tenant_and_inserts(
    scim: Scim, commands: Commands
) -> None:
    """An unlimited tenant keeps no seat counter: a read, where a journaled write was."""
    body = {"schemas": [USER], "userName": "ada"}
    assert await commands.of(scim.post("/Users", json=body)) == {"find": 1, "insert": 1}


async def test_user_creations_in_a_row_on_an_unlimited_tenant_read_the_tenant_once(
    scim: Scim, commands: Commands
) -> None:
    """The reading of the tenant as unlimited serves the creations that follow it."""
    for name in ("ada", "grace", "alan"):
        body = {"schemas": [USER], "userName": name}
        expected = {"find": 1, "insert": 1} if name == "ada" else {"insert": 1}
        assert await commands.of(scim.post("/Users", json=body)) == expected


async def test_a_user_creation_on_a_tenant_with_a_limit_takes_its_seat_and_inserts(
    scim: Scim, commands: Commands
) -> None:
    """Once a tenant is known to have a limit, the conditional take is the only seat check."""
    await _limited_with_a_user(scim, seats=5)
    body = {"schemas": [USER], "userName": "grace"}
    assert await commands.of(scim.post("/Users", json=body)) == {"update": 1, "insert": 1}


async def test_concurrent_user_creations_share_their_insert_commands(
    scim: Scim, commands: Commands
) -> None:
    """Creations handed over while an insert is in flight go to the store together, each in
    the tally of the request whose user opened its command (``storage/group_commit.py``)."""
    await scim.create_user("ada")  # the tenant is read unlimited once, for the test
    concurrent = 16
    commands.answered.clear()
    responses = await asyncio.gather(
        *(
            scim.post("/Users", json={"schemas": [USER], "userName": f"user{n}"})
            for n in range(concurrent)
        )
    )
    assert [response.status for response in responses] == [201] * concurrent
    counted = sum(commands.answered, Counter[str]())
    assert set(counted) == {"insert"}
    assert 1 <= counted["insert"] < concurrent


def _bulk_of_user_creations(count: int) -> dict[str, Any]:
    """A BulkRequest creating ``count`` users, ``user0`` on."""
    return {
        "schemas": [BULK_REQUEST],
        "Operations": [
            {
                "method": "POST",
                "bulkId": f"u{n}",
                "path": "/Users",
                "data": {"schemas": [USER], "userName": f"user{n}"},
            }
            for n in range(count)
        ],
    }


async def test_a_bulk_of_user_creations_on_an_unlimited_tenant_reads_the_tenant_and_inserts(
    scim: Scim, commands: Commands
) -> None:
    """The users are created as one batch: the tenant read once, one insert for them all."""
    assert await commands.of(scim.post("/Bulk", json=_bulk_of_user_creations(10))) == {
        "find": 1,
        "insert": 1,
    }


async def test_a_bulk_of_user_creations_on_a_tenant_with_a_limit_takes_their_seats_at_once(
    scim: Scim, commands: Commands
) -> None:
    """One conditional update takes the seats of the whole batch, one insert stores it."""
    await _limited_with_a_user(scim, seats=20)
    assert await commands.of(scim.post("/Bulk", json=_bulk_of_user_creations(10))) == {
        "update": 1,
        "insert": 1,
    }


async def test_a_bulk_of_a_thousand_user_creations_costs_the_same_two_commands(
    scim: Scim, commands: Commands
) -> None:
    """A thousand small users are one insert command: the driver splits only past 100,000
    documents or 48 MB. An insert that lands later than ``LEASE_SECONDS`` after the tenant
    was read (a busy machine) reads it again, once (see ``scim_server/core/seats.py``)."""
    created = await commands.of(scim.post("/Bulk", json=_bulk_of_user_creations(1000)))
    assert created.pop("find") in (1, 2)
    assert created == {"insert": 1}


async def test_reading_a_user_in_no_group_costs_one_find(scim: Scim, commands: Commands) -> None:
    path = await _user_in_no_group(scim)
    assert await commands.of(scim.get(path)) == {"find": 1}
    assert await commands.of(scim.get('/Users?filter=userName eq "ada"')) == {"find": 1}
    assert await commands.of(scim.get("/Users?count=0")) == {"aggregate": 1}
    assert await commands.of(scim.get("/Users?cursor=&count=1")) == {"find": 1}


async def test_concurrent_reads_of_users_share_their_find_commands(
    scim: Scim, commands: Commands
) -> None:
    """Reads by id, and ``userName eq`` lookups, made while a lookup is in flight go to the
    store together, each in the tally of the request whose read opened its command
    (``storage/group_read.py``); each request still answers its own user."""
    concurrent = 16
    await scim.post("/Bulk", json=_bulk_of_user_creations(concurrent))
    names = [f"user{n}" for n in range(concurrent)]
    ids = []
    for name in names:
        page = await (await scim.get(f'/Users?filter=userName eq "{name}"')).json()
        ids.append(page["Resources"][0]["id"])
    by_id = [f"/Users/{id_}" for id_ in ids]
    by_name = [f'/Users?filter=userName eq "{name}"' for name in names]
    for paths in (by_id, by_name):
        commands.answered.clear()
        responses = await asyncio.gather(*(scim.get(path) for path in paths))
        assert [response.status for response in responses] == [200] * concurrent
        bodies = [await response.json() for response in responses]
        answered = [body.get("id") or body["Resources"][0]["id"] for body in bodies]
        assert answered == ids
        counted = sum(commands.answered, Counter[str]())
        assert set(counted) == {"find"}
        assert 1 <= counted["find"] < concurrent


async def test_reading_a_user_in_one_group_costs_the_user_and_its_memberships(
    scim: Scim, commands: Commands
) -> None:
    """The memberships come joined to their groups' names and hints, in one command."""
    user, _ = await _user_in_one_group(scim)
    assert await commands.of(scim.get(user)) == {"find": 1, "aggregate": 1}


async def test_renaming_a_user_in_no_group_costs_a_read_and_a_write(
    scim: Scim, commands: Commands
) -> None:
    """No read-back (the answer is the state written), no membership name refresh."""
    path = await _user_in_no_group(scim)
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ada"}],
    }
    assert await commands.of(scim.patch(path, json=rename)) == {"find": 1, "update": 1}


async def test_deactivating_and_reactivating_a_user_cost_what_they_always_did(
    scim: Scim, commands: Commands
) -> None:
    """The time of a deactivation (which voids the user's SSO sessions) is set by the write
    itself: no sessions are looked up or deleted. The seat freed or taken needs the tenant
    read unlimited, as its creation just did."""
    path = await _user_in_no_group(scim)
    for active in (False, True):
        toggle = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"active": active}}],
        }
        assert await commands.of(scim.patch(path, json=toggle)) == {"find": 1, "update": 1}


async def test_replacing_a_user_costs_a_read_and_a_write(scim: Scim, commands: Commands) -> None:
    path = await _user_in_no_group(scim)
    body = {"schemas": [USER], "userName": "ada", "displayName": "Ada Lovelace"}
    assert await commands.of(scim.put(path, json=body)) == {"find": 1, "update": 1}


async def test_sixteen_patches_of_one_user_waiting_together_cost_one_read_and_one_write(
    scim: Scim, commands: Commands
) -> None:
    """PATCHes of one user that wait for each other in one process are written in one round
    (each still answered as its own: tests/test_patch_coalescing.py)."""
    user = await scim.create_user("bjensen")
    bodies = [
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "title", "value": f"t{n}"}],
        }
        for n in range(16)
    ]
    commands.answered.clear()

    answers = await queued_patches(scim, user["id"], bodies)

    assert [status for status, _ in answers] == [200] * 16
    assert sum(commands.answered, Counter()) == {"find": 1, "update": 1}


def _adding_one_member(claims: bool) -> dict[str, int]:
    """What a lone member add costs: the member looked up and its member-of hint raised (one
    ``findAndModify`` claimed, else a find and an update), the membership, its check, and
    the group's version (which answers the group): the group is not read first nor after."""
    if claims:
        return {"findAndModify": 2, "insert": 1, "find": 1}
    return {"find": 2, "update": 1, "insert": 1, "findAndModify": 1}


async def test_adding_a_member_costs_four_commands_claimed_and_five_looked_up(
    member_claims: bool, scim: Scim, commands: Commands
) -> None:
    user = await scim.create_user("ada")
    group = await scim.create_group("eng")
    add = _members_patch("add", {"value": user["id"]})
    path = f"/Groups/{group['id']}?excludedAttributes=members"
    assert await commands.of(scim.patch(path, json=add)) == _adding_one_member(member_claims)


async def test_adding_two_members_costs_what_adding_one_looked_up_does(
    member_claims: bool, scim: Scim, commands: Commands
) -> None:
    """Claimed, each member would cost one command: two or more are looked up by one read
    and raised by one update, however they are to be claimed."""
    ada, grace = await scim.create_user("ada"), await scim.create_user("grace")
    group = await scim.create_group("eng")
    add = {
        "schemas": [PATCH_OP],
        "Operations": [
            {
                "op": "add",
                "path": "members",
                "value": [{"value": ada["id"]}, {"value": grace["id"]}],
            }
        ],
    }
    path = f"/Groups/{group['id']}?excludedAttributes=members"
    assert await commands.of(scim.patch(path, json=add)) == _adding_one_member(claims=False)


async def test_an_idp_shaped_member_patch_reads_no_member(
    member_claims: bool, scim: Scim, commands: Commands
) -> None:
    """A PATCH as Okta and Entra send it, with no query, answers 204: the same commands as a
    slim answer, and the group's members are never read, whatever their number."""
    user = await scim.create_user("ada")
    group = await scim.create_group("eng", [(await scim.create_user("grace"))["id"]])
    add = _members_patch("add", {"value": user["id"]})
    assert await commands.of(scim.patch(f"/Groups/{group['id']}", json=add)) == _adding_one_member(
        member_claims
    )
    remove = _members_patch("remove", {"value": user["id"]})
    assert await commands.of(scim.patch(f"/Groups/{group['id']}", json=remove)) == {
        "find": 1,
        "delete": 1,
        "findAndModify": 1,
        "update": 1,
    }


async def test_a_bulk_member_patch_or_group_put_reads_no_member(
    member_claims: bool, scim: Scim, commands: Commands
) -> None:
    """A Bulk operation answers a status, a location and a version, never the resource: its
    writes cost what they cost on their own with a 204, and the group's members go unread."""
    user = await scim.create_user("ada")
    group = await scim.create_group("eng", [(await scim.create_user("grace"))["id"]])
    path = f"/Groups/{group['id']}"
    patch = {"method": "PATCH", "path": path, "data": _members_patch("add", {"value": user["id"]})}
    bulk = {"schemas": [BULK_REQUEST], "Operations": [patch]}
    assert await commands.of(scim.post("/Bulk", json=bulk)) == _adding_one_member(member_claims)
    renamed = {"schemas": [GROUP], "displayName": "core", "members": [{"value": user["id"]}]}
    put = {"method": "PUT", "path": path, "data": renamed}
    bulk = {"schemas": [BULK_REQUEST], "Operations": [put]}
    assert (await scim.put(path, json=renamed)).status == 200
    slim = await commands.of(scim.put(f"{path}?excludedAttributes=members", json=renamed))
    assert await commands.of(scim.post("/Bulk", json=bulk)) == slim


async def test_removing_a_member_costs_four_commands(scim: Scim, commands: Commands) -> None:
    """The membership looked up and deleted, the group's version, the member's hint lowered."""
    user, group = await _user_in_one_group(scim)
    remove = _members_patch("remove", {"value": user.rsplit("/", 1)[1]})
    path = f"{group}?excludedAttributes=members"
    assert await commands.of(scim.patch(path, json=remove)) == {
        "find": 1,
        "delete": 1,
        "findAndModify": 1,
        "update": 1,
    }


async def test_deleting_a_user_in_no_group_costs_four_commands(
    scim: Scim, commands: Commands
) -> None:
    """One read of the user, its pending events and the tenant's last outbox number (joined
    by that event's id), the deletion marked with its event (the tenant was read unlimited by
    the creation), the events inserted into the outbox, and the document removed on condition
    of a member-of hint of 0, which proves it in no group: no membership lookup
    (docs/events.md, storage/memberships.py)."""
    path = await _user_in_no_group(scim)
    await awaited_events(scim.client, scim.tenant, 1)
    assert await commands.of(scim.delete(path)) == {
        "aggregate": 1,
        "update": 1,
        "insert": 1,
        "delete": 1,
    }


async def test_deleting_a_user_reads_its_tenants_seat_limit_with_it(
    scim: Scim, commands: Commands, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deletion frees the user's seat, which needs a reading of the tenant's limit: joined to
    the read of the user, not read apart once this process's last reading is old (a DELETE
    now and then, as an IdP sends one, read the tenant every time)."""
    path = await _user_in_no_group(scim)
    await awaited_events(scim.client, scim.tenant, 1)
    monkeypatch.setattr(seats, "UNLIMITED_READING_SECONDS", 0.0)  # every reading is old
    assert await commands.of(scim.delete(path)) == {
        "aggregate": 1,
        "update": 1,
        "insert": 1,
        "delete": 1,
    }


async def test_sixteen_deletions_at_once_cost_four_commands_each(
    scim: Scim, commands: Commands
) -> None:
    """Deletions in one process take turns to store their events: each inserts them at the
    number after the last one this process stored, where at once they all tried the same
    number and all but one paid a stop (two reads and an insert) for it."""
    users = [await scim.create_user(f"user{n}") for n in range(16)]
    await awaited_events(scim.client, scim.tenant, 16)
    commands.answered.clear()
    responses = await asyncio.gather(*(scim.delete(f"/Users/{user['id']}") for user in users))
    assert [response.status for response in responses] == [204] * 16
    assert sum(commands.answered, Counter[str]()) == {
        "aggregate": 16,
        "update": 16,
        "insert": 16,
        "delete": 16,
    }


async def test_deleting_a_user_in_a_group_also_drops_it_from_the_group(
    scim: Scim, commands: Commands
) -> None:
    """A user whose member-of hint is up is removed without condition, then its memberships
    are looked up and deleted and its group gets its new version with its event."""
    path, _ = await _user_in_one_group(scim)
    await awaited_events(scim.client, scim.tenant, 2)
    assert await commands.of(scim.delete(path)) == {
        "aggregate": 1,
        "update": 2,
        "insert": 1,
        "delete": 2,
        "find": 1,
    }


async def test_a_manager_costs_one_command_to_assign_and_two_to_clear_when_it_is_deleted(
    scim: Scim, commands: Commands
) -> None:
    """Naming a new manager first sets the manager's hint (one update); deleting a user the
    hint marks finds the users it managed and clears it on them, each with its event (one find,
    one update), beside what any deletion costs (above). A user no one was given as manager
    costs its deletion nothing more."""
    boss = await scim.create_user("boss")
    ada = await scim.create_user("ada")
    assign = {"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": boss["id"]}}
    body = {"schemas": [PATCH_OP], "Operations": [assign]}
    assert await commands.of(scim.patch(f"/Users/{ada['id']}", json=body)) == {
        "find": 1,
        "update": 2,
    }
    await awaited_events(scim.client, scim.tenant, 3)
    assert await commands.of(scim.delete(f"/Users/{boss['id']}")) == {
        "aggregate": 1,
        "find": 1,
        "update": 2,
        "insert": 1,
        "delete": 1,
    }


async def test_each_group_operation_costs_the_commands_it_always_did(
    scim: Scim, commands: Commands
) -> None:
    """A group answered with its members reads them by ranges of member ids: two for a small
    group (the first 1/256 of ids, then the rest), one command more than a single query,
    which on SecantusDB would read every member of a large group before the first byte
    (``MembershipRepository.group_member_batches``). A page of groups reads them in one."""
    user = await (await scim.post("/Users", json={"userName": "ada", "schemas": [USER]})).json()
    group = {"schemas": [GROUP], "displayName": "eng", "members": [{"value": user["id"]}]}
    created = await commands.of(scim.post("/Groups", json=group))
    assert created == {"find": 4, "insert": 2, "update": 1, "findAndModify": 1}
    await scim.create_group("ops", [user["id"]])
    assert await commands.of(scim.get("/Groups")) == {"find": 2}
    listed = await (await scim.get("/Groups")).json()
    path = f"/Groups/{listed['Resources'][0]['id']}"
    assert await commands.of(scim.get(path)) == {"find": 3}
    assert await commands.of(scim.get(f"{path}?excludedAttributes=members")) == {"find": 1}
    # The deletion as a user's in no group (above), and the group's own memberships deleted;
    # once the relay has moved every event made so far (ada's, eng's and ops's creations), so
    # that the deleter's outbox insert never meets a move still under way for the tenant.
    await awaited_events(scim.client, scim.tenant, 3)
    assert await commands.of(scim.delete(path)) == {
        "aggregate": 1,
        "update": 1,
        "insert": 1,
        "delete": 2,
    }


async def test_the_rate_limiter_adds_at_most_one_command_to_a_request(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, commands: Commands
) -> None:
    """At 19 requests per second a reservation is of one permit, so every request pays for
    one: the limiter's worst case (at 100, the default, one request in ten does). The
    tenant's limit is read once and kept for seconds, so it costs no request here. Off (the
    suite's setting, above) it adds none."""
    client = await commands.client(aiohttp_client, replace(settings, rate_limit_per_second=100))
    scim = Scim(client, "acme", (await make_tenant(client, "acme"))["token"])
    limit = {"requests_per_second": 19}
    assert (await client.put("/admin/tenants/acme/rate-limit", json=limit, headers=ADMIN)).ok
    body = {"schemas": [USER], "userName": "ada"}
    created = await (await scim.post("/Users", json=body)).json()
    path = f"/Users/{created['id']}"
    assert await commands.of(scim.get(path)) == {"find": 1, "findAndModify": 1}
    assert await commands.of(scim.get("/Users?count=0")) == {"aggregate": 1, "findAndModify": 1}
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ada"}],
    }
    assert await commands.of(scim.patch(path, json=rename)) == {
        "find": 1,
        "update": 1,
        "findAndModify": 1,
    }


async def test_listing_the_groups_of_a_member_costs_the_relation_and_the_groups(
    scim: Scim, commands: Commands
) -> None:
    """``members[value eq]``: one find of the member's groups on the relation, one of those
    groups by id; the page is not full, so no count (members not asked for: not read)."""
    user = await scim.create_user("ada")
    for name in ("eng", "ops", "all"):
        await scim.create_group(name, [user["id"]])
    await scim.create_group("other")
    query = {"filter": f'members[value eq "{user["id"]}"]', "excludedAttributes": "members"}
    assert await commands.of(scim.get("/Groups", params=query)) == {"find": 2}


async def test_custom_resources_cost_the_registry_read_and_the_query(
    scim: Scim, commands: Commands
) -> None:
    """A custom resource type is served where the tenant's registry says so: one read of it,
    then the same queries as users (a full page also counts its total), and discovery reads
    only the registry."""
    await entitlement_app(scim)
    roles = await (await scim.get("/Roles")).json()
    role = f"/Roles/{roles['Resources'][0]['id']}"
    assert await commands.of(scim.get(role)) == {"find": 2}
    assert await commands.of(scim.get("/Roles?count=1")) == {"find": 2, "aggregate": 1}
    assert await commands.of(scim.get("/Roles?count=10")) == {"find": 2}
    assert await commands.of(scim.get("/ResourceTypes")) == {"find": 1}
    assert await commands.of(scim.get("/Schemas")) == {"find": 1}


async def test_a_user_of_a_tenant_with_its_own_extension_costs_what_any_user_costs(
    scim: Scim, commands: Commands
) -> None:
    """The tenant's User extensions are read once and reused (``core/user_extensions.py``),
    as the token check is: each operation then costs what it costs in a tenant without."""
    response = await define(scim)
    assert response.status == 200, await response.text()
    body = {"schemas": [USER, ACME], "userName": "ada", ACME: {"badge": "B-1", "level": 3}}
    # The definition just changed: the first request reads it, once.
    assert await commands.of(scim.post("/Users", json=body)) == {"find": 2, "insert": 1}
    created = await (await scim.get('/Users?filter=userName eq "ada"')).json()
    path = f"/Users/{created['Resources'][0]['id']}"

    assert await commands.of(scim.get(path)) == {"find": 1}
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": f"{ACME}:level", "value": 4}],
    }
    assert await commands.of(scim.patch(path, json=patch)) == {"find": 1, "update": 1}
    assert await commands.of(scim.put(path, json=body)) == {"find": 1, "update": 1}
    second = {"schemas": [USER, ACME], "userName": "grace", ACME: {"badge": "B-2"}}
    assert await commands.of(scim.post("/Users", json=second)) == {"insert": 1}


async def test_concurrent_writes_share_the_reading_of_their_tenants_name_policy(
    scim: Scim, commands: Commands, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-team policy is read again once its reading is a second old: the creations that
    all want a new one then wait for one read, not one each."""
    monkeypatch.setattr(one_team, "POLICY_READING_SECONDS", 0.0)
    await scim.create_user("ada")  # the tenant is read unlimited once, for the test
    commands.collections = frozenset({"instance_members"})  # where a tenant's group is found
    commands.answered.clear()
    concurrent = 16
    responses = await asyncio.gather(
        *(
            scim.post("/Users", json={"schemas": [USER], "userName": f"user{n}"})
            for n in range(concurrent)
        )
    )
    assert [response.status for response in responses] == [201] * concurrent
    reads = sum(commands.answered, Counter[str]())["find"]
    assert 1 <= reads < concurrent / 2
