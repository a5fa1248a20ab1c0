"""Group read (``scim_server/storage/group_read.py``): concurrent lookups sent together.

On a real store, through a client whose command listener records the ``find`` commands, and
over HTTP: concurrent GETs and ``userName eq`` lookups, across tenants, each answered its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from scim_server.storage.errors import StorageError
from scim_server.storage.group_read import GroupRead
from tests.support.scim import Scim
from tests.support.started import Started, recording_client
from tests.support.urns import BULK_REQUEST, USER


@pytest.fixture
def finds() -> Started:
    """The ``find`` commands started: their filters."""
    return Started("find", lambda command: dict(command["filter"]))


@pytest.fixture
async def counted_client(
    mongodb_uri: str, database_name: str, finds: Started
) -> AsyncIterator[AsyncMongoClient[Any]]:
    async with recording_client(mongodb_uri, database_name, finds) as client:
        yield client


@pytest.fixture
async def collection(
    counted_client: AsyncMongoClient[Any], database_name: str, finds: Started
) -> AsyncCollection[Any]:
    things = counted_client[database_name]["things"]
    await things.insert_many(
        [{"_id": f"d{n}", "tenant": "t" if n % 2 else "u", "name": f"n{n}"} for n in range(10)]
    )
    return things


async def test_lookups_made_in_one_turn_go_as_one_command_each_answered_its_own(
    collection: AsyncCollection[Any], finds: Started
) -> None:
    reads = GroupRead(collection)
    ids = ["d3", "missing", "d0", "d7", "d3"]
    found = await asyncio.gather(*(reads.find_one("_id", id_) for id_ in ids))
    assert [None if document is None else document["_id"] for document in found] == [
        "d3",
        None,
        "d0",
        "d7",
        "d3",
    ]
    assert finds.seen == [{"_id": {"$in": ["d3", "missing", "d0", "d7"]}}]
    assert found[0] is not found[4], "two lookups of one value share no document"


async def test_a_lone_lookup_is_a_find_one(
    collection: AsyncCollection[Any], finds: Started
) -> None:
    reads = GroupRead(collection)
    assert await reads.find_one("_id", "d4", projection={"name": 1}) == {"_id": "d4", "name": "n4"}
    assert finds.seen == [{"_id": "d4"}]


async def test_only_lookups_of_one_shape_share_a_command(
    collection: AsyncCollection[Any], finds: Started
) -> None:
    """The same key, conditions and projection: anything else goes in a command of its own."""
    reads = GroupRead(collection, max_in_flight=4)
    found = await asyncio.gather(
        reads.find_one("name", "n1", {"tenant": "t"}),
        reads.find_one("name", "n3", {"tenant": "t"}),
        reads.find_one("name", "n2", {"tenant": "t"}),  # another tenant's: not found
        reads.find_one("name", "n2", {"tenant": "u"}),
        reads.find_one("_id", "d5", projection={"tenant": 1}),
        reads.find_one("_id", "d6"),
    )
    assert found == [
        {"_id": "d1", "tenant": "t", "name": "n1"},
        {"_id": "d3", "tenant": "t", "name": "n3"},
        None,
        {"_id": "d2", "tenant": "u", "name": "n2"},
        {"_id": "d5", "tenant": "t"},
        {"_id": "d6", "tenant": "u", "name": "n6"},
    ]
    assert sorted(finds.seen, key=repr) == sorted(
        [
            {"tenant": "t", "name": {"$in": ["n1", "n3", "n2"]}},
            {"tenant": "u", "name": "n2"},
            {"_id": "d5"},
            {"_id": "d6"},
        ],
        key=repr,
    )


async def test_a_command_carries_at_most_max_batch_values(
    collection: AsyncCollection[Any], finds: Started
) -> None:
    reads = GroupRead(collection, max_in_flight=1, max_batch=3)
    found = await asyncio.gather(*(reads.find_one("_id", f"d{n}") for n in range(7)))
    assert [document["_id"] for document in found if document] == [f"d{n}" for n in range(7)]
    assert [len(query["_id"]["$in"]) if "$in" in query["_id"] else 1 for query in finds.seen] == [
        3,
        3,
        1,
    ]


async def test_lookups_made_while_commands_are_in_flight_go_together_after_one(
    collection: AsyncCollection[Any], finds: Started
) -> None:
    reads = GroupRead(collection, max_in_flight=1)
    first = asyncio.create_task(reads.find_one("_id", "d0"))
    await finds.sending.wait()
    found = await asyncio.gather(first, *(reads.find_one("_id", f"d{n}") for n in range(1, 6)))
    assert [document["_id"] for document in found if document] == [f"d{n}" for n in range(6)]
    assert finds.seen == [{"_id": "d0"}, {"_id": {"$in": ["d1", "d2", "d3", "d4", "d5"]}}]


async def test_a_second_command_goes_while_one_is_in_flight(
    collection: AsyncCollection[Any], finds: Started
) -> None:
    """Up to ``max_in_flight`` commands at once: a read waits for no other's answer."""
    reads = GroupRead(collection, max_in_flight=2)
    first = asyncio.create_task(reads.find_one("_id", "d0"))
    await finds.sending.wait()
    second = asyncio.create_task(reads.find_one("_id", "d1"))
    third = asyncio.create_task(reads.find_one("_id", "d2"))
    await asyncio.gather(first, second, third)
    assert finds.seen[:2] == [{"_id": "d0"}, {"_id": {"$in": ["d1", "d2"]}}]


@pytest.mark.parametrize("when", ["before it is sent", "while it is in flight"])
async def test_a_cancelled_caller_leaves_the_others_answered(
    collection: AsyncCollection[Any], finds: Started, when: str
) -> None:
    reads = GroupRead(collection)
    tasks = [asyncio.create_task(reads.find_one("_id", f"d{n}")) for n in range(4)]
    if when == "before it is sent":
        await asyncio.sleep(0)  # handed over; the command starts on the next turn
    else:
        await finds.sending.wait()
    tasks[1].cancel()
    found = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(found[1], asyncio.CancelledError)
    assert [found[n]["_id"] for n in (0, 2, 3)] == ["d0", "d2", "d3"]  # type: ignore[index]
    assert len(finds.seen) == 1


async def test_a_command_that_fails_fails_every_lookup_of_its_batch(
    mongodb_uri: str, database_name: str
) -> None:
    closed: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri)
    reads = GroupRead(closed[database_name]["things"])
    await closed.close()
    found = await asyncio.gather(
        *(reads.find_one("_id", f"d{n}") for n in range(3)), return_exceptions=True
    )
    assert all(isinstance(outcome, StorageError) for outcome in found)
    assert all(isinstance(outcome.__cause__, PyMongoError) for outcome in found)


def _bulk_of_user_creations(names: list[str]) -> dict[str, Any]:
    return {
        "schemas": [BULK_REQUEST],
        "Operations": [
            {
                "method": "POST",
                "bulkId": name,
                "path": "/Users",
                "data": {"schemas": [USER], "userName": name},
            }
            for name in names
        ],
    }


async def _users(scim: Scim, names: list[str]) -> dict[str, str]:
    """Create users of these names: userName -> id."""
    response = await scim.post("/Bulk", json=_bulk_of_user_creations(names))
    assert response.status == 200
    ids = {}
    for operation in (await response.json())["Operations"]:
        assert operation["status"] == "201", operation
        ids[operation["bulkId"]] = operation["location"].rsplit("/", 1)[1]
    return ids


async def test_concurrent_reads_across_tenants_answer_each_its_own_resource(
    scim: Scim, other_scim: Scim
) -> None:
    """Reads by id of two tenants share commands; each is held to its own tenant: another
    tenant's id is 404, and a ``userName eq`` finds the tenant's own user of that name."""
    names = [f"user{n}" for n in range(8)]
    ours, theirs = await _users(scim, names), await _users(other_scim, names)
    reads = [(scim, ours[name], name, 200) for name in names]
    reads += [(other_scim, theirs[name], name, 200) for name in names]
    reads += [(scim, theirs["user0"], "user0", 404), (other_scim, ours["user1"], "user1", 404)]
    responses = await asyncio.gather(*(client.get(f"/Users/{id_}") for client, id_, _, _ in reads))
    for (_, id_, name, status), response in zip(reads, responses, strict=True):
        assert response.status == status
        if status == 200:
            body = await response.json()
            assert (body["id"], body["userName"]) == (id_, name)
    lookups = [(scim, name, ours[name]) for name in names]
    lookups += [(other_scim, name, theirs[name]) for name in names]
    lookups += [(scim, "nobody", None)]
    pages = await asyncio.gather(
        *(client.get(f'/Users?filter=userName eq "{name.upper()}"') for client, name, _ in lookups)
    )
    for (_, _, id_), page in zip(lookups, pages, strict=True):
        assert page.status == 200
        body = await page.json()
        assert [resource["id"] for resource in body["Resources"]] == ([id_] if id_ else [])
        assert body["totalResults"] == (1 if id_ else 0)
