"""A first seat limit counted behind a fence: creates racing it are each counted once.

An unlimited tenant keeps no seat counter (see ``scim_server/core/seats.py``), so setting its
first limit counts the users. Creates that read the tenant unlimited and land while the limit
is being set must be in that count or count themselves. The races are real: two apps on one
store, and inserts held in the store by its ``failCommand`` failpoint (mongod's, served by a
SecantusDB of this module's own, started with test commands) so that they land before the
count or after it.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from scim_server.config import Settings
from scim_server.embedded import EmbeddedMongo
from scim_server.web.app import create_app
from tests.support.scim import Scim
from tests.support.seats import active_in_store, counter, create, set_seats, usage
from tests.support.urns import BULK_REQUEST, USER


@pytest.fixture(scope="module")
def mongodb_uri() -> Iterator[str]:
    """A store of this module's own that serves ``configureFailPoint`` (or ``MONGODB_URI``'s)."""
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    with EmbeddedMongo(":memory:", test_commands=True) as server:
        yield server.uri


@pytest.fixture(scope="module")
async def mongo_client(mongodb_uri: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    """The client of this module's store, for its tests' databases (see conftest.py)."""
    async with AsyncMongoClient(mongodb_uri) as client:
        yield client


async def slow_inserts(mongo_db: AsyncDatabase[Any], milliseconds: int | None) -> None:
    """Make every insert wait ``milliseconds`` in the store before it lands (None: stop)."""
    mode = "off" if milliseconds is None else "alwaysOn"
    data = {"failCommands": ["insert"], "blockConnection": True, "blockTimeMS": milliseconds or 0}
    try:
        await mongo_db.client.admin.command(
            "configureFailPoint", "failCommand", mode=mode, data=data
        )
    except OperationFailure:
        pytest.skip("the store has no failCommand failpoint (a mongod without test commands)")


def _bulk_of_creations(names: list[str]) -> dict[str, Any]:
    operations = [
        {
            "method": "POST",
            "bulkId": name,
            "path": "/Users",
            "data": {"schemas": [USER], "userName": name},
        }
        for name in names
    ]
    return {"schemas": [BULK_REQUEST], "Operations": operations}


@pytest.mark.parametrize("batch", [1, 4], ids=["one-by-one", "in-bulks-of-four"])
@pytest.mark.parametrize("landing_ms", [300, 1500], ids=["before-the-count", "after-the-count"])
async def test_creates_racing_a_first_limit_are_each_counted_once(
    aiohttp_client: Any,
    settings: Settings,
    scim: Scim,
    mongo_db: AsyncDatabase[Any],
    landing_ms: int,
    batch: int,
) -> None:
    """Round after round: creates through two apps, a first limit set while their inserts
    are held, then the counter equals the users holding a seat. In bulks, the users of each
    are created as one batch, which takes part in the fence as a single create does."""
    twin = Scim(await aiohttp_client(create_app(settings)), scim.tenant, scim.token)
    stagger = random.Random(landing_ms)

    async def staggered_creates(names: list[str]) -> list[int]:
        await asyncio.sleep(stagger.uniform(0, 0.1))
        app = stagger.choice((scim, twin))
        if batch == 1:
            return [(await create(app, names[0])).status]
        response = await app.post("/Bulk", _bulk_of_creations(names))
        assert response.status == 200, await response.text()
        return [int(result["status"]) for result in (await response.json())["Operations"]]

    async def first_limit(seats: int) -> Any:
        await asyncio.sleep(0.05)  # once some creates have read the tenant unlimited
        return await set_seats(scim.client, seats)

    for round_ in range(3):
        await set_seats(scim.client, None)
        limit = await active_in_store(mongo_db) + 4 * batch  # some creates are refused, some not
        names = [f"round{round_}-{n}" for n in range(8 * batch)]
        creates = [staggered_creates(names[n : n + batch]) for n in range(0, len(names), batch)]
        await slow_inserts(mongo_db, landing_ms)
        try:
            limited, *answers = await asyncio.gather(first_limit(limit), *creates)
        finally:
            await slow_inserts(mongo_db, None)
        assert {status for statuses in answers for status in statuses} <= {201, 403}
        active = await active_in_store(mongo_db)
        assert await counter(mongo_db) == active, f"round {round_}"
        assert (await usage(scim.client))["used"] == active
        assert limited["seats"] == limit
