"""Group commit (``scim_server/storage/group_commit.py``): concurrent inserts sent together.

On a real store, through a client whose command listener counts the ``insert`` commands, and
over HTTP: concurrent creations, a duplicate among them, each answered its own status.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError, PyMongoError

from scim_server.storage.errors import StorageError
from scim_server.storage.group_commit import GroupInsert
from tests.support.scim import Scim
from tests.support.started import Started, recording_client
from tests.support.urns import USER

ROUNDS = 5


@pytest.fixture
def inserts() -> Started:
    """The ``insert`` commands started: how many documents each carried."""
    return Started("insert", lambda command: len(command.get("documents", [])))


@pytest.fixture
async def counted_client(
    mongodb_uri: str, database_name: str, inserts: Started
) -> AsyncIterator[AsyncMongoClient[Any]]:
    async with recording_client(mongodb_uri, database_name, inserts) as client:
        yield client


@pytest.fixture
def collection(counted_client: AsyncMongoClient[Any], database_name: str) -> AsyncCollection[Any]:
    return counted_client[database_name].get_collection(
        "things", write_concern=WriteConcern(w=1, j=True)
    )


async def _ids(collection: AsyncCollection[Any]) -> list[str]:
    return sorted([document["_id"] async for document in collection.find({}, {"_id": 1})])


async def test_inserts_handed_over_in_one_turn_go_as_one_command(
    collection: AsyncCollection[Any], inserts: Started
) -> None:
    group = GroupInsert(collection)
    await asyncio.gather(*(group.insert({"_id": f"d{n}"}) for n in range(10)))
    assert inserts.seen == [10]
    assert await _ids(collection) == sorted(f"d{n}" for n in range(10))


async def test_a_command_carries_at_most_max_batch_documents(
    collection: AsyncCollection[Any], inserts: Started
) -> None:
    group = GroupInsert(collection, max_batch=3)
    await asyncio.gather(*(group.insert({"_id": f"d{n}"}) for n in range(7)))
    assert inserts.seen == [3, 3, 1]
    assert len(await _ids(collection)) == 7


async def test_documents_handed_over_while_a_command_is_in_flight_go_together_after_it(
    collection: AsyncCollection[Any], inserts: Started
) -> None:
    group = GroupInsert(collection)
    first = asyncio.create_task(group.insert({"_id": "first"}))
    await inserts.sending.wait()
    await asyncio.gather(first, *(group.insert({"_id": f"d{n}"}) for n in range(5)))
    assert inserts.seen == [1, 5]


async def test_a_duplicate_is_refused_alone_and_the_others_land(
    collection: AsyncCollection[Any], inserts: Started
) -> None:
    group = GroupInsert(collection)
    await collection.insert_one({"_id": "taken"})
    inserts.seen.clear()
    for round_ in range(ROUNDS):
        ids = [f"r{round_}a", "taken", f"r{round_}b", f"r{round_}a"]
        outcomes = await asyncio.gather(
            *(group.insert({"_id": id_}) for id_ in ids), return_exceptions=True
        )
        assert outcomes[0] is None and outcomes[2] is None
        assert isinstance(outcomes[1], DuplicateKeyError)
        assert isinstance(outcomes[3], DuplicateKeyError)
    assert inserts.seen == [4] * ROUNDS
    assert len(await _ids(collection)) == 1 + 2 * ROUNDS


@pytest.mark.parametrize("when", ["before it is sent", "while it is in flight"])
async def test_a_cancelled_caller_leaves_its_document_written_once_and_the_others_too(
    collection: AsyncCollection[Any], inserts: Started, when: str
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
    assert inserts.seen == [4] * ROUNDS
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
