"""What the list and search query shapes cost on the embedded store, before and after.

``python -m bench.query_plans [N ...]`` seeds a tenant of N users (1,000 and 20,000 by
default) beside a tenant of 50, and prints ``explain("executionStats")`` of each shape as
the server sent it before (anchored ``$regex`` for ``sw``, a top-level ``$and`` around a
cursor's keyset, ``sortBy=userName`` tied by ``_id``, no hint) and as it sends it now
(built by the server's own code). The figures in docs/storage.md come from here. Nothing
is asserted: tests/test_filters.py, tests/test_cursors.py and tests/test_listing.py pin the
plans.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.core.cursors import Position, SortSpec, keyset_condition
from scim_server.core.filters import all_of, compile_filter
from scim_server.embedded import EmbeddedMongo
from scim_server.models import UserModel
from scim_server.storage.database import INDEXES, tenant_index, unique_within_tenant
from tests.support.plans import index_names

SMALL_TENANT_USERS = 50
BY_ID: SortSpec = [("_id", 1)]
BY_USER_NAME_BEFORE: SortSpec = [("c.userName", 1), ("_id", 1)]
"""How ``sortBy=userName`` was ordered before: ties broken by ``_id``, which no index held."""


def by_user_name() -> SortSpec:
    """How the server orders by userName now: by it alone where an index holds it unique
    within the tenant (``ResourceRepository.order_by``), else with the ``_id`` tiebreak."""
    if unique_within_tenant("users", "c.userName"):
        return [("c.userName", 1)]
    return BY_USER_NAME_BEFORE


@dataclass(frozen=True)
class Find:
    """One ``find`` as the repository sends it."""

    query: dict[str, Any]
    sort: SortSpec
    hint: list[tuple[str, int]] | None = None


def user(tenant: str, number: int) -> dict[str, Any]:
    name = f"user{number:06d}@example.com"
    comparison = {"userName": name, "active": True, "emails": [{"value": name}]}
    return {
        "_id": f"{tenant}-{number:06d}",
        "tenant": tenant,
        "r": {"userName": name},
        "c": comparison,
    }


def shapes() -> dict[str, tuple[Find, Find]]:
    """Each shape's find before and after, on the large tenant ``big`` or the small ``small``."""
    sw = 'userName sw "user00001"'
    emails_sw = 'emails sw "user00001"'
    rows = {
        "userName sw, 10 matches": (
            Find({"c.userName": {"$regex": "^user00001"}, "tenant": "big"}, BY_ID),
            Find({**compile_filter(sw, UserModel), "tenant": "big"}, BY_ID),
        ),
        "emails sw, 10 matches": (
            Find({"c.emails.value": {"$regex": "^user00001"}, "tenant": "big"}, BY_ID),
            Find({**compile_filter(emails_sw, UserModel), "tenant": "big"}, BY_ID),
        ),
    }
    co = {**compile_filter('userName co "example"', UserModel), "tenant": "small"}
    rows["userName co, small tenant"] = (
        Find(co, BY_ID),
        Find(co, BY_ID, tenant_index("users", "c.userName")),
    )
    orders = (
        ("id", BY_ID, BY_ID, None),
        ("userName", BY_USER_NAME_BEFORE, by_user_name(), "user000010@x"),
    )
    for label, sort_before, sort, value in orders:
        position = Position("next", value, "small-000010")
        keyset_before = keyset_condition(sort_before, position)
        keyset = keyset_condition(sort, position)
        rows[f"cursor page 2 by {label}, small tenant"] = (
            Find({"$and": [{}, keyset_before], "tenant": "small"}, sort_before),
            Find(
                {**all_of([{}, keyset]), "tenant": "small"}, sort, tenant_index("users", sort[0][0])
            ),
        )
    rows["unfiltered page 1, big tenant"] = (
        Find({"tenant": "big"}, BY_ID),
        Find({"tenant": "big"}, BY_ID, tenant_index("users", "_id")),
    )
    return rows


async def explained(database: AsyncDatabase[Any], find: Find) -> str:
    command: dict[str, Any] = {"find": "users", "filter": find.query, "sort": dict(find.sort)}
    command["limit"] = 11
    if find.hint is not None:
        command["hint"] = dict(find.hint)
    plan = await database.command("explain", command, verbosity="executionStats")
    stats = plan["executionStats"]
    scanned = ", ".join(index_names(plan["queryPlanner"]["winningPlan"])) or "collection scan"
    keys, docs = stats["totalKeysExamined"], stats["totalDocsExamined"]
    return f"{scanned}: {keys:,} keys, {docs:,} docs"


async def measure(uri: str, sizes: list[int]) -> None:
    client: AsyncMongoClient[Any] = AsyncMongoClient(uri)
    try:
        for size in sizes:
            database = client[f"query_plans_{size}"]
            await database.users.create_indexes(INDEXES["users"])
            await database.users.insert_many([user("big", i) for i in range(size)])
            await database.users.insert_many([user("small", i) for i in range(SMALL_TENANT_USERS)])
            for name, (before, after) in shapes().items():
                was, now = await explained(database, before), await explained(database, after)
                print(f"N={size:,} | {name} | before: {was} | after: {now}")
            await client.drop_database(database.name)
    finally:
        await client.close()


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [1000, 20000]
    with EmbeddedMongo(":memory:") as server:
        asyncio.run(measure(server.uri, sizes))


if __name__ == "__main__":
    main()
