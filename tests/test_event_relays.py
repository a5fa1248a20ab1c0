"""The events relay: several relays moving the same pending events at once store each event
once, in each tenant's gap-free sequence, in order per resource; one relay at a time holds the
lease of the safety net.

Here the writes go through ``Provisioning`` on a real database with no relay running, so the
events stay pending until the relays under test move them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import monitoring

from scim_server.core.cursors import CursorCodec
from scim_server.core.events import TASK as RELAY_TASK
from scim_server.core.events import Relay
from scim_server.core.provisioning import Provisioning
from scim_server.core.scope import Scope
from scim_server.models import USERS
from scim_server.storage.database import CommandCounter, Database
from scim_server.storage.documents import StoredResource
from scim_server.storage.events import OUTBOX, Client, EventRepository
from scim_server.storage.memberships import MembershipRepository
from scim_server.storage.tenants import TenantRepository
from tests.support.stores import process_clients
from tests.support.urns import PATCH_OP, USER

SCOPE = Scope("acme", "http://127.0.0.1/scim/v2/acme", Client("scim", "token-1", "other"))


@pytest.fixture
async def databases(
    mongodb_uri: str, database_name: str, mongo_db: Any
) -> AsyncIterator[list[Database]]:
    """Three clients of the test's database: the writer's and two relays'."""
    async with process_clients(mongodb_uri, database_name, 3) as opened:
        yield opened


class OutboxCommands:
    """The commands on the outbox any of the test's clients starts, as they start."""

    def __init__(self) -> None:
        self.inserts: list[int] = []
        """One entry per insert: the number of events it carries."""
        self.reads_from_end = 0
        """Reads of a tenant's last number from the end of its numbers, which SecantusDB
        reaches by walking them all."""

    def note(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        if event.command_name == "insert" and command["insert"] == OUTBOX:
            self.inserts.append(len(command["documents"]))
        if event.command_name == "find" and command["find"] == OUTBOX and "sort" in command:
            self.reads_from_end += dict(command["sort"]).get("sequence") == -1

    def clear(self) -> None:
        self.inserts.clear()
        self.reads_from_end = 0


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> OutboxCommands:
    started = CommandCounter.started
    commands = OutboxCommands()

    def noting(counter: CommandCounter, event: monitoring.CommandStartedEvent) -> None:
        commands.note(event)
        started(counter, event)

    monkeypatch.setattr(CommandCounter, "started", noting)
    return commands


def _relay(database: Database, grace_seconds: float = 0.0) -> Relay:
    return Relay(
        EventRepository(database), MembershipRepository(database), grace_seconds=grace_seconds
    )


async def _pending_writes(database: Database, users: int) -> list[str]:
    """``users`` users created then renamed twice each, their events left pending."""
    provisioning = Provisioning(database, max_results=100, cursors=CursorCodec("s" * 32, 600))
    ids = []
    for n in range(users):
        body = {"schemas": [USER], "userName": f"user{n}"}
        ids.append(str((await provisioning.create(USERS, SCOPE, body)).payload["id"]))
    for round_ in range(2):
        rename = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": f"v{round_}"}],
        }
        await asyncio.gather(*(provisioning.patch(USERS, SCOPE, i, rename) for i in ids))
    return ids


def _check_log(events: list[Any], ids: list[str]) -> None:
    """Each change once, numbered 1..n with no gap, each resource's versions in order."""
    assert [event.sequence for event in events] == list(range(1, 3 * len(ids) + 1))
    assert len({event.id for event in events}) == len(events)
    versions: dict[str, list[int]] = defaultdict(list)
    for event in events:
        versions[event.resource_id].append(event.version)
    assert versions == {resource: [1, 2, 3] for resource in ids}


async def test_two_relays_moving_the_same_documents_at_once_store_each_event_once_in_order(
    databases: list[Database],
) -> None:
    ids = await _pending_writes(databases[0], 20)
    first, second = _relay(databases[1]), _relay(databases[2])
    for _ in range(3):  # again and again: moving what is already moved changes nothing
        # One relay moves them all in one batch, the other one document at a time.
        await asyncio.gather(
            first.move(USERS, "acme", ids), *(second.move(USERS, "acme", [i]) for i in ids)
        )
    events = await first.read("acme", 1, 1000)
    _check_log(events, ids)
    assert [e.type for e in events if e.resource_id == ids[0]] == [
        "user.created",
        "user.updated",
        "user.updated",
    ]


async def test_one_relay_at_a_time_holds_the_safety_nets_lease_and_it_moves_what_is_left(
    databases: list[Database],
) -> None:
    ids = await _pending_writes(databases[0], 10)
    first, second = _relay(databases[1]), _relay(databases[2])
    moved = sorted(await asyncio.gather(first.sweep(), second.sweep()))
    assert moved == [0, 10]
    _check_log(await second.read("acme", 1, 1000), ids)
    assert await asyncio.gather(first.sweep(), second.sweep()) == [0, 0]  # nothing left


async def test_the_safety_net_leaves_events_younger_than_its_grace_to_their_writer(
    databases: list[Database],
) -> None:
    await _pending_writes(databases[0], 3)
    patient = _relay(databases[1], grace_seconds=3600.0)
    assert await patient.sweep() == 0
    assert await patient.read("acme", 1, 1000) == []


async def test_a_relay_woken_as_it_is_stopped_still_stops(databases: list[Database]) -> None:
    """A write noted in the very turn of the loop that stops the relay: the wake-up and the
    cancellation reach its wait together, and the cancellation must win. (``asyncio.wait_for``
    on Python 3.11 lets the finished wait win and swallows the cancellation: the relay then ran
    on, and the server's shutdown, or a test's teardown, waited for it forever.)"""
    relay = _relay(databases[1])
    await relay.start()
    for _ in range(3):
        await asyncio.sleep(0)  # the relay is now waiting to be woken
    relay.written(USERS, "acme", ["not-a-user"])
    stopping = asyncio.ensure_future(relay.stop())
    # Not a timing: a bound on a wait that, with the defect, never ends.
    await asyncio.wait({stopping}, timeout=30)
    assert stopping.done(), "the relay ran on after it was stopped"
    assert [task for task in asyncio.all_tasks() if task.get_name() == RELAY_TASK] == []


async def test_a_relay_whose_next_number_another_relay_took_moves_its_batch_in_one_insert(
    databases: list[Database], outbox: OutboxCommands
) -> None:
    """Two workers' relays take turns on one tenant's outbox: each turn, the number a relay
    remembers as its next was taken by the other meanwhile. It reads where the sequence is,
    from the number it remembers on, and stores its batch in one command, not one command
    per event. (The first time, it tried the number after the one it remembers, as a relay
    alone in its tenant does, and paid one insert more to learn the other is busy there.)"""
    ids = await _pending_writes(databases[0], 20)
    first, second = _relay(databases[1]), _relay(databases[2])
    await first.move(USERS, "acme", ids[:1])
    await second.move(USERS, "acme", ids[1:2])
    outbox.clear()
    await first.move(USERS, "acme", ids[2:3])
    assert outbox.inserts == [3, 3]
    await second.move(USERS, "acme", ids[3:4])
    outbox.clear()
    await first.move(USERS, "acme", ids[4:])
    assert outbox.inserts == [48]
    assert outbox.reads_from_end == 0
    _check_log(await first.read("acme", 1, 1000), ids)


async def test_a_batch_holding_events_another_relay_moved_goes_on_without_them_in_one_insert(
    databases: list[Database], outbox: OutboxCommands
) -> None:
    """A relay read a document's pending events just before another relay moved them (two
    workers wrote the same user): its batch stops there, and goes on with the rest, without
    those moved, in one command."""
    ids = await _pending_writes(databases[0], 20)
    first, second = _relay(databases[1]), _relay(databases[2])
    pending, _ = await first.events.pending(USERS.collection, USERS.name, "acme", ids)
    await first.move(USERS, "acme", ids[:1])
    await second.move(USERS, "acme", ids[5:6])
    outbox.clear()
    await first.events.append(
        [event for document in pending if document.id != ids[0] for event in document.events]
    )
    # The batch, then what is left of it, the three events found stored.
    assert len(outbox.inserts) == 2
    assert outbox.inserts[0] - outbox.inserts[1] in range(3, 58)
    assert outbox.reads_from_end == 0
    _check_log(await first.read("acme", 1, 1000), ids)


async def test_a_batch_holding_events_its_own_process_stored_leaves_them_out_in_one_insert(
    databases: list[Database], sent: SentCommands
) -> None:
    """A deleter read a user's pending events just before its own process's relay moved them
    (a user deleted right after a write): what that process stored is left out before the
    insert, with no refused insert and no read of what is stored, and no contention is
    learnt (which would have the next moves read the last number apart for a while)."""
    ids = await _pending_writes(databases[0], 3)
    relay = _relay(databases[1])
    await relay.move(USERS, "acme", ids[2:])
    pending, confirmed = await relay.events.pending(USERS.collection, USERS.name, "acme", ids[:2])
    assert confirmed is not None
    await relay.move(USERS, "acme", ids[:1])
    sent.sent.clear()
    events = [event for document in pending for event in document.events]
    await relay.events.append(events, confirmed)
    assert [command for command in sent.sent if command[1] == OUTBOX] == [("insert", OUTBOX)]
    _, still_confirmed = await relay.events.pending(USERS.collection, USERS.name, "acme", ids)
    assert still_confirmed is not None
    _check_log(await relay.read("acme", 1, 1000), ids)


class SentCommands(monitoring.CommandListener):
    """(command, collection) of every command the test's clients start, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        self.sent.append((event.command_name, target if isinstance(target, str) else ""))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Only starts are recorded."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Only starts are recorded."""


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> SentCommands:
    commands = SentCommands()
    monkeypatch.setattr(CommandCounter, "started", lambda _, event: commands.started(event))
    return commands


def _writer(database: Database) -> Provisioning:
    """Writes through ``Provisioning``, whose relay is not running: it moves when drained."""
    return Provisioning(database, max_results=100, cursors=CursorCodec("s" * 32, 600))


async def _pending_in(database: Database, ids: list[str]) -> list[Any]:
    """The pending events each of these users still holds."""
    users = database["users"].find({"_id": {"$in": ids}}, {"ev": 1})
    return [user.get("ev") or [] async for user in users]


async def test_a_relay_moves_the_creations_of_its_process_without_reading_them(
    databases: list[Database], sent: SentCommands
) -> None:
    """The writer knows a new user's only pending event, exactly as its insert stored it:
    the relay inserts it into the outbox and pulls it off, with no read of the users: one
    command, the bulk of their pulls."""
    writer = _writer(databases[0])
    bodies = [{"schemas": [USER], "userName": f"user{n}"} for n in range(150)]
    created = await writer.create_users(SCOPE, bodies)
    ids = [user.id for user in created if isinstance(user, StoredResource)]
    assert len(ids) == 150
    await writer.create(USERS, SCOPE, {"schemas": [USER], "userName": "alone"})
    sent.sent.clear()
    await writer.relay.drain()
    on_users = [command for command, collection in sent.sent if collection == "users"]
    assert on_users == ["update"]
    events = await writer.relay.read("acme", 1, 1000)
    assert [event.sequence for event in events] == list(range(1, 152))
    assert {(event.type, event.version) for event in events} == {("user.created", 1)}
    assert [event.resource_id for event in events[:150]] == ids
    assert await _pending_in(databases[0], ids) == [[]] * 150


async def test_a_relay_reads_the_writes_of_its_process_and_the_last_number_in_one_command(
    databases: list[Database], sent: SentCommands
) -> None:
    """A move of users this process changed reads their pending events and, joined to them,
    the tenant's last number it remembers, in one command: the insert goes on at the number
    after it, with no read of the outbox of its own."""
    writer = _writer(databases[0])
    ids = [await _created(writer, f"user{n}") for n in range(3)]
    await writer.relay.drain()
    for user_id in ids:
        await writer.patch(USERS, SCOPE, user_id, _rename("Ada"))
    sent.sent.clear()
    await writer.relay.drain()
    assert sent.sent == [("aggregate", "users"), ("insert", OUTBOX), ("update", "users")]
    events = await writer.relay.read("acme", 1, 1000)
    assert [(event.sequence, event.version) for event in events[3:]] == [(4, 2), (5, 2), (6, 2)]


async def test_a_round_takes_the_moved_events_of_every_tenant_off_in_one_command(
    databases: list[Database], sent: SentCommands
) -> None:
    """The writes of several tenants, moved in one round: each tenant's events go into its
    own numbers, and one bulk of pulls takes them all off their documents."""
    await TenantRepository(databases[0]).create("globex", datetime.now(UTC))
    writer = _writer(databases[0])
    globex = Scope("globex", "http://127.0.0.1/scim/v2/globex", SCOPE.client)
    ids = {scope.tenant: await _created(writer, "ada", scope) for scope in (SCOPE, globex)}
    await writer.relay.drain()
    await writer.patch(USERS, SCOPE, ids["acme"], _rename("Ada"))
    await writer.patch(USERS, globex, ids["globex"], _rename("Ada"))
    sent.sent.clear()
    await writer.relay.drain()
    assert [command for command in sent.sent if command[1] == "users"].count(
        ("update", "users")
    ) == 1
    for tenant in ("acme", "globex"):
        events = await writer.relay.read(tenant, 1, 10)
        assert [(event.sequence, event.type) for event in events] == [
            (1, "user.created"),
            (2, "user.updated"),
        ]
    assert await _pending_in(databases[0], list(ids.values())) == [[], []]


def _rename(name: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": name}],
    }


async def _created(writer: Provisioning, user_name: str, scope: Scope = SCOPE) -> str:
    created = await writer.create(USERS, scope, {"schemas": [USER], "userName": user_name})
    return str(created.payload["id"])


async def test_a_creation_written_again_before_its_move_is_moved_with_its_later_events(
    databases: list[Database],
) -> None:
    """A creation whose user was changed before the relay ran is read, as any write is: its
    events are moved in order, the creation's first."""
    writer = _writer(databases[0])
    user = await writer.create(USERS, SCOPE, {"schemas": [USER], "userName": "ada"})
    user_id = str(user.payload["id"])
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ada"}],
    }
    await writer.patch(USERS, SCOPE, user_id, rename)
    await writer.relay.drain()
    events = await writer.relay.read("acme", 1, 1000)
    assert [(e.sequence, e.type, e.version) for e in events] == [
        (1, "user.created", 1),
        (2, "user.updated", 2),
    ]
    assert await _pending_in(databases[0], [user_id]) == [[]]


async def test_a_creation_another_relay_moved_first_is_stored_once(
    databases: list[Database],
) -> None:
    """Another process wrote the new users too, and its relay moved their events (the
    creation's with them) before this process's relay moved what it knew: nothing twice,
    no gap, each user's events in order."""
    writer = _writer(databases[0])
    ids = [
        str(
            (await writer.create(USERS, SCOPE, {"schemas": [USER], "userName": f"u{n}"})).payload[
                "id"
            ]
        )
        for n in range(5)
    ]
    other = _writer(databases[1])
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "renamed"}],
    }
    for user_id in ids[:3]:
        await other.patch(USERS, SCOPE, user_id, rename)
    await other.relay.drain()
    await writer.relay.drain()
    events = await writer.relay.read("acme", 1, 1000)
    assert [event.sequence for event in events] == list(range(1, 9))
    assert len({event.id for event in events}) == 8
    for user_id in ids:
        mine = [(e.type, e.version) for e in events if e.resource_id == user_id]
        assert mine[0] == ("user.created", 1)
        assert mine[1:] == ([("user.updated", 2)] if user_id in ids[:3] else [])


async def test_the_creations_of_a_tenant_deleted_before_their_move_are_not_moved(
    databases: list[Database],
) -> None:
    writer = _writer(databases[0])
    await writer.create(USERS, SCOPE, {"schemas": [USER], "userName": "ada"})
    await writer.delete_tenant("acme")
    await writer.relay.drain()
    assert await databases[0][OUTBOX].count_documents({"tenant": "acme"}) == 0


async def test_a_creation_a_unique_index_refused_hands_the_relay_nothing(
    databases: list[Database],
) -> None:
    """Of a batch, a user whose userName is taken did not land: no event of it is moved from
    what its writer knew, while the others' are."""
    writer = _writer(databases[0])
    await writer.create(USERS, SCOPE, {"schemas": [USER], "userName": "ada"})
    bodies = [{"schemas": [USER], "userName": name} for name in ("bob", "ADA", "cy")]
    created = await writer.create_users(SCOPE, bodies)
    assert [type(outcome) for outcome in created][0::2] == [StoredResource, StoredResource]
    assert not isinstance(created[1], StoredResource)
    await writer.relay.drain()
    events = await writer.relay.read("acme", 1, 1000)
    assert [event.values["userName"] for event in events] == ["ada", "bob", "cy"]
