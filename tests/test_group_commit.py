"""Group commit (``scim_server/storage/group_commit.py``): concurrent inserts, and concurrent
conditional updates, sent together.

On a real store, through a client whose command listener counts the ``insert`` and ``update``
commands, and over HTTP: concurrent creations and PATCHes, a duplicate among them, each
answered its own status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient, WriteConcern, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from scim_server.storage.database import Database
from scim_server.storage.errors import StorageError
from scim_server.storage.events import (
    OUTBOX,
    PENDING,
    USER_UPDATED,
    Client,
    Emission,
    EventRepository,
    new_versions,
)
from scim_server.storage.group_commit import GroupInsert, GroupUpdate, Update
from tests.support.scim import Scim
from tests.support.urns import PATCH_OP, USER

ROUNDS = 5


class Inserts(monitoring.CommandListener):
    """The ``insert`` commands started, each with the number of documents it carried, and the
    ``update`` commands, each with the number of updates."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.updates: list[int] = []
        self.sending = asyncio.Event()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "insert":
            self.sizes.append(len(event.command.get("documents", [])))
            self.sending.set()
        if event.command_name == "update":
            self.updates.append(len(event.command.get("updates", [])))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Only starts are counted."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Only starts are counted."""


@pytest.fixture
def inserts() -> Inserts:
    return Inserts()


@pytest.fixture
async def counted_client(
    mongodb_uri: str, database_name: str, inserts: Inserts
) -> AsyncIterator[AsyncMongoClient[Any]]:
    """A client of its own, counting its ``insert`` commands (the server's is not needed)."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri, event_listeners=[inserts])
    try:
        yield client
    finally:
        await client.drop_database(database_name)
        await client.close()


@pytest.fixture
def collection(counted_client: AsyncMongoClient[Any], database_name: str) -> AsyncCollection[Any]:
    return counted_client[database_name].get_collection(
        "things", write_concern=WriteConcern(w=1, j=True)
    )


async def _ids(collection: AsyncCollection[Any]) -> list[str]:
    return sorted([document["_id"] async for document in collection.find({}, {"_id": 1})])


async def test_inserts_handed_over_in_one_turn_go_as_one_command(
    collection: AsyncCollection[Any], inserts: Inserts
) -> None:
    group = GroupInsert(collection)
    await asyncio.gather(*(group.insert({"_id": f"d{n}"}) for n in range(10)))
    assert inserts.sizes == [10]
    assert await _ids(collection) == sorted(f"d{n}" for n in range(10))


async def test_a_command_carries_at_most_max_batch_documents(
    collection: AsyncCollection[Any], inserts: Inserts
) -> None:
    group = GroupInsert(collection, max_batch=3)
    await asyncio.gather(*(group.insert({"_id": f"d{n}"}) for n in range(7)))
    assert inserts.sizes == [3, 3, 1]
    assert len(await _ids(collection)) == 7


async def test_documents_handed_over_while_a_command_is_in_flight_go_together_after_it(
    collection: AsyncCollection[Any], inserts: Inserts
) -> None:
    group = GroupInsert(collection)
    first = asyncio.create_task(group.insert({"_id": "first"}))
    await inserts.sending.wait()
    await asyncio.gather(first, *(group.insert({"_id": f"d{n}"}) for n in range(5)))
    assert inserts.sizes == [1, 5]


async def test_a_duplicate_is_refused_alone_and_the_others_land(
    collection: AsyncCollection[Any], inserts: Inserts
) -> None:
    group = GroupInsert(collection)
    await collection.insert_one({"_id": "taken"})
    inserts.sizes.clear()
    for round_ in range(ROUNDS):
        ids = [f"r{round_}a", "taken", f"r{round_}b", f"r{round_}a"]
        outcomes = await asyncio.gather(
            *(group.insert({"_id": id_}) for id_ in ids), return_exceptions=True
        )
        assert outcomes[0] is None and outcomes[2] is None
        assert isinstance(outcomes[1], DuplicateKeyError)
        assert isinstance(outcomes[3], DuplicateKeyError)
    assert inserts.sizes == [4] * ROUNDS
    assert len(await _ids(collection)) == 1 + 2 * ROUNDS


@pytest.mark.parametrize("when", ["before it is sent", "while it is in flight"])
async def test_a_cancelled_caller_leaves_its_document_written_once_and_the_others_too(
    collection: AsyncCollection[Any], inserts: Inserts, when: str
) -> None:
    group = GroupInsert(collection)
    for round_ in range(ROUNDS):
        ids = [f"r{round_}d{n}" for n in range(4)]
        tasks = [asyncio.create_task(group.insert({"_id": id_})) for id_ in ids]
        if when == "before it is sent":
            await asyncio.sleep(0)  # handed over; the command starts on the next turn
        else:
            await inserts.sending.wait()
        tasks[1].cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(outcomes[1], asyncio.CancelledError)
        assert [outcomes[0], outcomes[2], outcomes[3]] == [None, None, None]
        inserts.sending.clear()
    assert inserts.sizes == [4] * ROUNDS
    assert await _ids(collection) == sorted(f"r{r}d{n}" for r in range(ROUNDS) for n in range(4))


async def test_a_command_that_fails_as_a_whole_fails_every_insert_of_its_batch(
    mongodb_uri: str, database_name: str
) -> None:
    closed: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri)
    group = GroupInsert(closed[database_name]["things"])
    await closed.close()
    outcomes = await asyncio.gather(
        *(group.insert({"_id": f"d{n}"}) for n in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, StorageError) for outcome in outcomes)
    assert all(isinstance(outcome.__cause__, PyMongoError) for outcome in outcomes)


async def test_concurrent_creations_with_a_duplicate_userName_answer_409_to_it_alone(
    scim: Scim,
) -> None:
    """Whichever of two creations of one userName lands first gets 201, the other 409; every
    other concurrent creation 201, round after round."""
    for round_ in range(ROUNDS):
        names = [f"r{round_}u{n}" for n in range(8)] + [f"r{round_}u3"]
        responses = await asyncio.gather(
            *(scim.post("/Users", json={"schemas": [USER], "userName": name}) for name in names)
        )
        statuses = [response.status for response in responses]
        assert sorted(statuses) == [201] * 8 + [409]
        assert statuses[3] == 201 or statuses[8] == 201
        refused = responses[statuses.index(409)]
        assert (await refused.json())["scimType"] == "uniqueness"
    listed = await scim.get('/Users?count=0&filter=userName sw "r"')
    assert (await listed.json())["totalResults"] == 8 * ROUNDS


def _update(document_id: str, version: int, changes: dict[str, Any]) -> Update:
    """A conditional update of a ``things`` document on ``version``, pushing its event."""
    emission = Emission(USER_UPDATED, Client("scim"))
    query = {"_id": document_id, "tenant": "t", "meta.version": version}
    return Update("t", query, new_versions(datetime.now(UTC), [emission], changes))


async def _things(collection: AsyncCollection[Any], count: int) -> list[str]:
    ids = [f"d{n}" for n in range(count)]
    await collection.insert_many(
        [{"_id": id_, "tenant": "t", "meta": {"version": 1}, "name": id_} for id_ in ids]
    )
    return ids


def _updates_of(collection: AsyncCollection[Any]) -> GroupUpdate:
    return GroupUpdate(collection, collection.database[OUTBOX])


async def test_updates_handed_over_in_one_turn_go_as_one_command_and_all_land(
    collection: AsyncCollection[Any], inserts: Inserts
) -> None:
    ids = await _things(collection, 10)
    group = _updates_of(collection)
    outcomes = await asyncio.gather(*(group.update(_update(id_, 1, {"x": 1})) for id_ in ids))
    assert outcomes == [True] * 10
    assert inserts.updates == [10]
    stored = await collection.find({}, {"meta.version": 1, "x": 1}).to_list(None)
    assert [(d["meta"]["version"], d["x"]) for d in stored] == [(2, 1)] * 10


async def test_updates_whose_condition_no_longer_holds_are_told_apart_from_those_that_landed(
    collection: AsyncCollection[Any], inserts: Inserts
) -> None:
    """``bulk_write`` only counts the updates that matched: which did is read back from the
    documents' pending events, and each update gets its own answer, round after round."""
    ids = await _things(collection, 6)
    group = _updates_of(collection)
    for round_ in range(ROUNDS):
        stale = {id_ for n, id_ in enumerate(ids) if (n + round_) % 3 == 0}
        versions = {
            d["_id"]: d["meta"]["version"] async for d in collection.find({}, {"meta.version": 1})
        }
        updates = [_update(id_, versions[id_] - (id_ in stale), {"round": round_}) for id_ in ids]
        outcomes = await asyncio.gather(*map(group.update, updates))
        assert outcomes == [id_ not in stale for id_ in ids]
        async for document in collection.find({}, {"round": 1}):
            assert (document.get("round") == round_) is (document["_id"] not in stale)
    assert inserts.updates == [6] * ROUNDS


async def test_an_update_whose_event_the_relay_moved_already_is_found_landed_in_the_outbox(
    collection: AsyncCollection[Any],
) -> None:
    """Between the command and the reading back of which updates landed, a relay may move a
    landed update's event to the outbox and pull it from its document: it is found there by
    the id derived from its key; an update that missed is found in neither."""
    ids = await _things(collection, 3)
    group = _updates_of(collection)
    updates = [_update(ids[0], 1, {"x": 1}), _update(ids[1], 1, {"x": 1}), _update(ids[2], 7, {})]
    for update in updates:
        await collection.update_one(update.query, update.update)
    events = EventRepository(Database(client=collection.database.client, db=collection.database))
    moved = await events.pending(collection.name, "User", "t", [ids[0]])
    await events.append([event for document in moved for event in document.events])
    await events.drained(collection.name, moved)
    assert not (await collection.find_one({"_id": ids[0]}))[PENDING]
    landed = await group._landed(updates, matched=2)
    assert landed == {updates[0], updates[1]}


async def test_a_duplicate_key_fails_its_update_alone(
    collection: AsyncCollection[Any], inserts: Inserts
) -> None:
    await collection.create_index("name", unique=True)
    ids = await _things(collection, 4)
    group = _updates_of(collection)
    updates = [_update(id_, 1, {"name": f"new{id_}"}) for id_ in ids]
    updates[2] = _update(ids[2], 1, {"name": ids[3]})
    outcomes = await asyncio.gather(*map(group.update, updates))
    assert [outcomes[0], outcomes[1], outcomes[3]] == [True, True, True]
    assert isinstance(outcomes[2], DuplicateKeyError)
    assert inserts.updates == [4]


async def test_concurrent_renames_with_a_taken_userName_answer_409_to_it_alone(
    scim: Scim,
) -> None:
    """PATCHes of different users written together: the one renaming its user to a userName
    another user holds gets 409, every other 200 with its new name, round after round."""
    users = [(await scim.create_user(f"user{n}"))["id"] for n in range(8)]
    await scim.create_user("holder")
    for round_ in range(ROUNDS):
        names = [f"r{round_}u{n}" for n in range(8)]
        names[5] = "holder"
        responses = await asyncio.gather(
            *(
                scim.patch(
                    f"/Users/{user}",
                    json={
                        "schemas": [PATCH_OP],
                        "Operations": [{"op": "replace", "path": "userName", "value": name}],
                    },
                )
                for user, name in zip(users, names, strict=True)
            )
        )
        statuses = [response.status for response in responses]
        assert statuses == [200] * 5 + [409] + [200] * 2
        assert (await responses[5].json())["scimType"] == "uniqueness"
        for user, name, status in zip(users, names, statuses, strict=True):
            stored = await (await scim.get(f"/Users/{user}")).json()
            assert (stored["userName"] == name) is (status == 200)
