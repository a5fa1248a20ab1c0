"""RFC 9865 cursor pagination: opaque signed cursors over stable keyset pages."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest

from scim_server.core.cursors import Position, keyset_condition
from scim_server.storage.database import learn_planner
from scim_server.web.state import SERVICES
from tests.support.plans import (
    crowd_another_tenant,
    explained_request,
    index_names,
    plan_stages,
    sent_find,
)
from tests.support.scim import Scim


async def _walk(scim: Scim, query: str, count: int) -> tuple[list[str], int]:
    seen: list[str] = []
    cursor = ""
    pages = 0
    while cursor is not None:
        response = await scim.get(f"/Users?{query}count={count}&cursor={cursor}")
        assert response.status == 200, await response.text()
        body = await response.json()
        assert "startIndex" not in body
        seen += [user["id"] for user in body["Resources"]]
        cursor = body.get("nextCursor")
        pages += 1
    return seen, pages


async def _users(scim: Scim, n: int, prefix: str = "user") -> list[dict[str, Any]]:
    return [await scim.create_user(f"{prefix}{i:03d}") for i in range(n)]


async def test_cursor_walk_returns_every_user_once_and_ends_without_next_cursor(
    scim: Scim,
) -> None:
    users = await _users(scim, 23)
    seen, pages = await _walk(scim, "", 5)
    assert sorted(seen) == sorted(u["id"] for u in users)
    assert len(seen) == len(set(seen))
    assert pages == 5


async def test_cursor_walk_is_stable_while_other_clients_insert_and_delete(scim: Scim) -> None:
    users = await _users(scim, 30)
    survivors = {u["id"] for u in users[::2]}
    doomed = [u["id"] for u in users[1::2]]
    seen: list[str] = []
    cursor = ""
    step = 0
    while cursor is not None:
        response = await scim.get(f"/Users?count=4&cursor={cursor}")
        body = await response.json()
        seen += [user["id"] for user in body["Resources"]]
        cursor = body.get("nextCursor")
        # Between pages, another client deletes some users and creates new ones.
        if doomed:
            await scim.delete(f"/Users/{doomed.pop()}")
        await scim.create_user(f"late{step:03d}")
        step += 1
    assert len(seen) == len(set(seen)), "a user was returned twice"
    assert survivors <= set(seen), "a user that existed throughout was skipped"


async def test_sorted_cursor_walk_follows_sort_order_with_ties(scim: Scim) -> None:
    for i in range(12):
        await scim.create_user(f"u{i:02d}", name={"familyName": ["Beta", "alpha", "Gamma"][i % 3]})
    walked: list[str] = []
    cursor = ""
    while cursor is not None:
        response = await scim.get(
            f"/Users?sortBy=name.familyName&sortOrder=descending&count=5&cursor={cursor}"
        )
        body = await response.json()
        walked += [u["name"]["familyName"].lower() for u in body["Resources"]]
        cursor = body.get("nextCursor")
    assert walked == ["gamma"] * 4 + ["beta"] * 4 + ["alpha"] * 4


async def test_previous_cursor_returns_the_page_before(scim: Scim) -> None:
    await _users(scim, 10)
    first = await (await scim.get("/Users?count=3&cursor=")).json()
    assert "previousCursor" not in first
    second = await (await scim.get(f"/Users?count=3&cursor={first['nextCursor']}")).json()
    back = await (await scim.get(f"/Users?count=3&cursor={second['previousCursor']}")).json()
    assert [u["id"] for u in back["Resources"]] == [u["id"] for u in first["Resources"]]
    assert "previousCursor" not in back
    assert "nextCursor" in back


async def test_tampered_cursor_is_invalid_cursor(scim: Scim) -> None:
    await _users(scim, 4)
    body = await (await scim.get("/Users?count=2&cursor=")).json()
    cursor = body["nextCursor"]
    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
    response = await scim.get(f"/Users?count=2&cursor={tampered}")
    assert response.status == 400
    assert (await response.json())["scimType"] == "invalidCursor"


async def test_expired_cursor_is_expired_cursor(scim: Scim) -> None:
    await _users(scim, 4)
    body = await (await scim.get("/Users?count=2&cursor=")).json()
    claims = jwt.decode(body["nextCursor"], options={"verify_signature": False})
    # Re-sign the same position in the past with the server's cursor key.
    codec = scim.client.app[SERVICES].provisioning.cursors
    expired = jwt.encode({**claims, "exp": int(time.time()) - 5}, codec._key, algorithm="HS256")
    response = await scim.get(f"/Users?count=2&cursor={expired}")
    assert response.status == 400
    assert (await response.json())["scimType"] == "expiredCursor"


async def test_cursor_is_bound_to_tenant_and_query(scim: Scim, other_scim: Scim) -> None:
    await _users(scim, 4)
    await _users(other_scim, 4)
    cursor = (await (await scim.get("/Users?count=2&cursor=")).json())["nextCursor"]
    elsewhere = await other_scim.get(f"/Users?count=2&cursor={cursor}")
    assert elsewhere.status == 400
    assert (await elsewhere.json())["scimType"] == "invalidCursor"
    other_query = await scim.get(f"/Users?count=2&sortBy=userName&cursor={cursor}")
    assert other_query.status == 400
    assert (await other_query.json())["scimType"] == "invalidCursor"


async def test_cursor_and_start_index_together_are_refused(scim: Scim) -> None:
    response = await scim.get("/Users?cursor=&startIndex=1")
    assert response.status == 400


async def test_cursor_pagination_works_on_search_and_is_advertised(scim: Scim) -> None:
    await _users(scim, 5)
    response = await scim.post(
        "/Users/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "cursor": "",
            "count": 3,
        },
    )
    body = await response.json()
    assert len(body["Resources"]) == 3 and body["nextCursor"]
    config = await (await scim.get("/ServiceProviderConfig")).json()
    assert config["pagination"]["cursor"] is True
    assert config["pagination"]["index"] is True
    assert config["pagination"]["cursorTimeout"] > 0


async def test_concurrent_cursor_walks_do_not_interfere(scim: Scim) -> None:
    users = await _users(scim, 12)
    walks = await asyncio.gather(*[_walk(scim, "", n) for n in (2, 3, 5)])
    for seen, _pages in walks:
        assert sorted(seen) == sorted(u["id"] for u in users)


async def test_cursor_page_is_an_index_range_scan_not_a_skip(mongo_db: Any, scim: Scim) -> None:
    await _users(scim, 5)
    condition = keyset_condition([("_id", 1)], Position("next", None, "m"))
    # The same query shape and sort as the repository's cursor page.
    plan = (
        await mongo_db.users.find({**condition, "tenant": "acme"})
        .sort([("_id", 1)])
        .limit(3)
        .explain()
    )
    winning = plan["queryPlanner"]["winningPlan"]
    assert plan_stages(winning, "IXSCAN")
    assert not plan_stages(winning, "SKIP")


@pytest.mark.parametrize(
    ("sort_by", "index"), [("", "tenant_id"), ("sortBy=userName&", "tenant_userName_unique")]
)
async def test_a_cursor_page_reads_its_tenants_index_not_another_tenants_users(
    mongo_db: Any, scim: Scim, sort_by: str, index: str
) -> None:
    users = await _users(scim, 6)
    await crowd_another_tenant(mongo_db)
    first = await (await scim.get(f"/Users?{sort_by}count=2&cursor=")).json()
    page = scim.get(f"/Users?{sort_by}count=2&cursor={first['nextCursor']}")
    plan = await explained_request(mongo_db, "users", page)
    if not (await learn_planner(mongo_db)).hints:
        # See test_listing's test_nothing_is_hinted_on_a_store_that_walks_the_whole_hinted_index:
        # unhinted, its planner bounds the keyset's range on the same index.
        assert "hint" not in sent_find("users")
    assert index_names(plan["queryPlanner"]["winningPlan"]) == [index]
    assert plan["executionStats"]["totalDocsExamined"] <= len(users)


@pytest.mark.parametrize("later_page", ["startIndex=3", "cursor={next}"])
async def test_pages_by_user_name_read_its_unique_index_in_order_beside_another_tenant(
    mongo_db: Any, scim: Scim, later_page: str
) -> None:
    """No two users of a tenant share a userName (its unique index), so its values alone order
    them: a page sorted by it is read in the index's order, and a cursor page continues from a
    range of it. With ``_id`` as a tiebreak, MongoDB sorted the whole tenant in memory (the
    index yields no ``_id`` order) and the keyset's ``$or`` scanned every tenant's users on
    SecantusDB (1.8 s beside 20,000 of them, against 13 ms for the range)."""
    users = await _users(scim, 6)
    await crowd_another_tenant(mongo_db)
    first = await (await scim.get("/Users?sortBy=userName&count=2&cursor=")).json()
    page = f"/Users?sortBy=userName&count=2&{later_page.format(next=first['nextCursor'])}"
    plan = await explained_request(mongo_db, "users", scim.get(page))
    sent = sent_find("users")
    assert sent["sort"] == {"c.userName": 1}
    winning = plan["queryPlanner"]["winningPlan"]
    if later_page.startswith("cursor"):
        assert sent["filter"]["c.userName"] == {"$gt": "user001"} and "$or" not in sent["filter"]
        assert index_names(winning) == ["tenant_userName_unique"]
        assert plan["executionStats"]["totalDocsExamined"] <= len(users)
    if (await learn_planner(mongo_db)).hints:
        assert index_names(winning) == ["tenant_userName_unique"]
        assert not plan_stages(winning, "SORT")
