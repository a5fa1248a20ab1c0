"""Deletions at four commands keep every guarantee: what the one read before the mark serves
(the seat freed, the events moved, the outbox number, the member-of hint) stays right when a
PATCH, a member add or another process's tenant deletion comes between.

The races run through the real HTTP app, on two app instances sharing the database where a
second worker is what makes the race; the interleavings a race hits too rarely are driven
step by step through the real repositories on the real database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import pytest

from scim_server.config import Settings
from scim_server.core.cursors import CursorCodec
from scim_server.core.events import deletion
from scim_server.core.provisioning import Provisioning
from scim_server.core.scope import Scope
from scim_server.models import GROUPS, USERS, Member
from scim_server.storage.database import Database
from scim_server.storage.events import Client
from scim_server.web.app import create_app
from tests.support.events import awaited_events, types_of
from tests.support.scim import Scim
from tests.support.seats import active_in_store, counter, set_seats
from tests.support.stores import process_clients
from tests.support.urns import GROUP, PATCH_OP, USER

SCOPE = Scope("acme", "http://127.0.0.1/scim/v2/acme", Client("scim", "token-1", "other"))
ROUNDS = 20
PAIRS = 4
DEACTIVATE = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}


async def _status(request: Awaitable[Any]) -> int:
    response = await request
    await response.read()
    return int(response.status)


async def test_a_delete_racing_a_patch_in_another_worker_frees_one_seat_and_emits_each_once(
    scim: Scim, mongo_db: Any, aiohttp_client: Any, settings: Settings
) -> None:
    """A deactivation and a deletion of the same user at once, each through another worker:
    whichever lands first, the seat is freed once (by the deactivation, or by the deletion of
    an active user), the user is gone, and its events are each change that landed, once, in
    order, the deletion last, numbered with no gap."""
    other = Scim(await aiohttp_client(create_app(settings)), scim.tenant, scim.token)
    await set_seats(scim.client, 1000)
    users: list[str] = []
    patched = 0
    for round_ in range(ROUNDS):
        created = await asyncio.gather(*(scim.create_user(f"r{round_}-{n}") for n in range(PAIRS)))
        ids = [user["id"] for user in created]
        deletes = [other.delete(f"/Users/{i}") for i in ids]
        patches = [scim.patch(f"/Users/{i}", json=DEACTIVATE) for i in ids]
        sends = deletes + patches if round_ % 2 else patches + deletes
        statuses = await asyncio.gather(*(_status(send) for send in sends))
        deleted = statuses[:PAIRS] if round_ % 2 else statuses[PAIRS:]
        deactivated = statuses[PAIRS:] if round_ % 2 else statuses[:PAIRS]
        assert deleted == [204] * PAIRS
        assert set(deactivated) <= {200, 404}
        users += ids
        patched += deactivated.count(200)
    assert await counter(mongo_db) == 0
    assert await active_in_store(mongo_db) == 0
    assert await mongo_db.users.count_documents({}) == 0
    events = await awaited_events(scim.client, scim.tenant, 2 * len(users) + patched)
    assert [event["sequence"] for event in events] == list(range(1, len(events) + 1))
    assert len({event["id"] for event in events}) == len(events)
    assert len(events) == 2 * len(users) + patched
    for user in users:
        assert types_of(events, user) in (
            ["user.created", "user.deleted"],
            ["user.created", "user.deactivated", "user.deleted"],
        )


@pytest.fixture
async def databases(
    mongodb_uri: str, database_name: str, mongo_db: Any
) -> AsyncIterator[list[Database]]:
    """Two clients of the test's database, as two server processes have."""
    async with process_clients(mongodb_uri, database_name, 2) as opened:
        yield opened


def _provisioning(database: Database) -> Provisioning:
    """A process's provisioning, with no relay running: its moves are the test's to make."""
    return Provisioning(database, max_results=100, cursors=CursorCodec("s" * 32, 600))


async def _user(provisioning: Provisioning, name: str) -> str:
    body = {"schemas": [USER], "userName": name}
    return str((await provisioning.create(USERS, SCOPE, body)).payload["id"])


async def test_a_member_added_between_a_deleters_read_and_its_removal_is_removed_with_it(
    databases: list[Database], mongo_db: Any
) -> None:
    """The deleter read the user in no group (hint 0); an add raised the hint, inserted the
    membership and found the user still there before the mark. The removal, conditioned on
    the hint, misses; the user is removed all the same, then its membership, and the group
    gets its new version with the removal's event."""
    provisioning = _provisioning(databases[0])
    user = await _user(provisioning, "ada")
    group = str(
        (
            await provisioning.create(GROUPS, SCOPE, {"schemas": [GROUP], "displayName": "eng"})
        ).payload["id"]
    )
    await provisioning.relay.drain()
    users = provisioning.repository(USERS)
    relay = provisioning.relay

    deleting = await users.read_for_deletion("acme", user, ("active",), relay.events)
    assert deleting is not None and not deleting.resource.member_of
    added = await provisioning.memberships.add("acme", group, [Member(user, "User")], SCOPE.client)
    assert added is not None
    relay.written(GROUPS, "acme", [group])
    await relay.drain()
    marked = await users.delete(
        "acme", deleting.pending, deletion(USERS, SCOPE.client), datetime.now(UTC)
    )
    assert marked is not None
    await relay.remove(USERS, marked, deleting.last, in_no_group=True)
    await relay.drain()

    assert await mongo_db.users.count_documents({"_id": user}) == 0
    assert await mongo_db.memberships.count_documents({}) == 0
    events = await relay.read("acme", 1, 100)
    assert [(e.type, e.resource_id) for e in events] == [
        ("user.created", user),
        ("group.created", group),
        ("group.members_added", group),
        ("user.deleted", user),
        ("group.members_removed", group),
    ]
    assert events[-1].members == (user,)


async def test_a_deleter_remembering_a_number_of_a_tenant_deleted_elsewhere_leaves_no_gap(
    databases: list[Database],
) -> None:
    """A process remembers the tenant's last outbox number (3); another process deletes the
    tenant's data, events included, and its tenant starts again (one event, number 1). The
    first process's deletion then reads that its remembered event is gone, and numbers the
    deletion's event 2, not 4."""
    first, second = _provisioning(databases[0]), _provisioning(databases[1])
    for name in ("ada", "grace", "alan"):
        await _user(first, name)
    await first.relay.drain()
    await second.delete_tenant("acme")
    again = await _user(second, "ada")
    await second.relay.drain()

    await first.delete(USERS, SCOPE, again)

    events = await first.relay.read("acme", 1, 100)
    assert [(e.sequence, e.type, e.resource_id) for e in events] == [
        (1, "user.created", again),
        (2, "user.deleted", again),
    ]
