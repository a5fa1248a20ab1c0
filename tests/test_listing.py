"""Listing and searching over HTTP (RFC 7644 §3.4): filters, sorting, index pagination,
attribute selection, ``.search`` endpoints, tenant isolation, and index use."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.config import Settings
from scim_server.core.filters import compile_filter
from scim_server.core.listing import MAX_PAGING_INTEGER
from scim_server.models import GroupModel, UserModel
from scim_server.storage.database import learn_planner
from scim_server.web.app import create_app
from tests.support.plans import (
    crowd_another_tenant,
    explained_request,
    index_names,
    index_scans,
    sent_find,
)
from tests.support.scim import Scim, make_tenant, scim_error
from tests.support.urns import ENTERPRISE, SEARCH
from tests.support.urns import LIST_RESPONSE as LIST
from tests.support.urns import USER as CORE


async def _list(scim: Scim, query: str = "", endpoint: str = "/Users") -> dict[str, Any]:
    response = await scim.get(f"{endpoint}?{query}" if query else endpoint)
    assert response.status == 200, await response.text()
    body = dict(await response.json())
    assert body["schemas"] == [LIST]
    return body


async def _filter(scim: Scim, text: str, endpoint: str = "/Users") -> set[str]:
    """The userNames (or displayNames) a filter selects, sent percent-encoded."""
    body = await _list(scim, f"filter={quote(text)}", endpoint)
    assert body["totalResults"] == len(body["Resources"])
    key = "userName" if endpoint == "/Users" else "displayName"
    return {resource[key] for resource in body["Resources"]}


@pytest.fixture
async def people(scim: Scim) -> dict[str, dict[str, Any]]:
    """A small directory with varied attributes, keyed by userName."""
    specs: list[dict[str, Any]] = [
        {
            "userName": "BJensen",
            "externalId": "Ext-1",
            "active": True,
            "title": "Tour Guide",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work"},
                {"value": "babs@jensen.org", "type": "home"},
            ],
        },
        {
            "userName": "jsmith",
            "externalId": "ext-1",
            "active": False,
            "name": {"givenName": "John", "familyName": "smith"},
            "emails": [
                {"value": "jsmith@example.org", "type": "work"},
                {"value": "john@example.com", "type": "home"},
            ],
        },
        {
            "userName": "alice",
            "active": True,
            "title": "Engineer",
            "name": {"givenName": "Alice", "familyName": "Jensen"},
            "emails": [{"value": "alice@example.com", "type": "work"}],
            "schemas": [CORE, ENTERPRISE],
            ENTERPRISE: {"employeeNumber": "701984", "department": "Tour Operations"},
        },
        {
            "userName": "Zed",
            "title": "",
            "name": {"givenName": "Zed", "familyName": "Adams"},
            "schemas": [CORE, ENTERPRISE],
            ENTERPRISE: {"department": "Sales"},
        },
    ]
    created = {}
    for spec in specs:
        user_name = spec.pop("userName")
        created[user_name] = await scim.create_user(user_name, **spec)
    return created


# --- filters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "bjensen"', {"BJensen"}),
        ('userName eq "BJENSEN"', {"BJensen"}),
        ('USERNAME Eq "bjensen"', {"BJensen"}),
        ('externalId eq "ext-1"', {"jsmith"}),
        ('externalId eq "Ext-1"', {"BJensen"}),
        ('userName co "E"', {"BJensen", "alice", "Zed"}),
        ('userName sw "j"', {"jsmith"}),
        ('userName ew "SEN"', {"BJensen"}),
        ("title pr", {"BJensen", "alice"}),
        ("externalId pr", {"BJensen", "jsmith"}),
        ('name.familyName eq "jensen" and active eq true', {"BJensen", "alice"}),
        ('userName eq "alice" or userName eq "zed"', {"alice", "Zed"}),
        ('not (name.familyName eq "Jensen")', {"jsmith", "Zed"}),
        ('name.familyName eq "Jensen" and not (userName sw "b")', {"alice"}),
        ('emails[type eq "work" and value co "@example.com"]', {"BJensen", "alice"}),
        ('emails[type eq "home" and value co "@example.com"]', {"jsmith"}),
        ('emails.value ew ".org"', {"BJensen", "jsmith"}),
        ('emails eq "ALICE@example.com"', {"alice"}),
        ("active eq true", {"BJensen", "alice"}),
        ("active eq false", {"jsmith"}),
        ("not (active eq true)", {"jsmith", "Zed"}),
        (f'{ENTERPRISE}:department eq "tour operations"', {"alice"}),
        (f"{ENTERPRISE}:department pr", {"alice", "Zed"}),
        (f"{ENTERPRISE}:employeeNumber pr", {"alice"}),
        ('meta.lastModified gt "2000-01-01T00:00:00Z"', {"BJensen", "jsmith", "alice", "Zed"}),
        ('meta.lastModified gt "2999-01-01T00:00:00Z"', set()),
        ('meta.resourceType eq "User"', {"BJensen", "jsmith", "alice", "Zed"}),
        ('userName eq "nobody"', set()),
    ],
)
async def test_filter_selects(
    scim: Scim, people: dict[str, Any], text: str, expected: set[str]
) -> None:
    assert await _filter(scim, text) == expected


async def test_filter_on_last_modified_sees_later_writes(
    scim: Scim, people: dict[str, Any]
) -> None:
    mark = people["Zed"]["meta"]["lastModified"]
    # Timestamps have millisecond precision: step past the mark before writing.
    await asyncio.sleep(0.01)
    path = f"/Users/{people['alice']['id']}"
    response = await scim.patch(
        path,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Lead"}],
        },
    )
    assert response.status == 200, await response.text()
    assert await _filter(scim, f'meta.lastModified gt "{mark}"') == {"alice"}
    assert await _filter(scim, f'meta.lastModified le "{mark}"') == {"BJensen", "jsmith", "Zed"}


@pytest.mark.parametrize(
    "text",
    [
        "userName eq",
        'userName zz "x"',
        '(userName eq "x"',
        'emails[type eq "work"',
        'noSuchAttribute eq "x"',
        'password eq "x"',
        'userName eq "x" and',
    ],
)
async def test_bad_filter_is_400_invalid_filter(scim: Scim, text: str) -> None:
    await scim_error(await scim.get(f"/Users?filter={quote(text)}"), 400, "invalidFilter")


async def test_bad_filter_in_search_body_is_400_invalid_filter(scim: Scim) -> None:
    response = await scim.post("/Users/.search", {"schemas": [SEARCH], "filter": "userName eq"})
    await scim_error(response, 400, "invalidFilter")


async def test_plus_and_percent_20_both_read_as_spaces(scim: Scim, people: dict[str, Any]) -> None:
    for query in ("filter=userName+eq+%22bjensen%22", "filter=userName%20eq%20%22bjensen%22"):
        response = await scim.client.get(f"{scim.base}/Users?{query}", headers=scim.headers())
        assert response.status == 200, await response.text()
        body = await response.json()
        assert [user["userName"] for user in body["Resources"]] == ["BJensen"]


async def test_encoded_plus_is_a_literal_plus(scim: Scim) -> None:
    await scim.create_user("a+b")
    await scim.create_user("a b")
    response = await scim.client.get(
        f"{scim.base}/Users?filter=userName+eq+%22a%2Bb%22", headers=scim.headers()
    )
    assert response.status == 200, await response.text()
    assert [u["userName"] for u in (await response.json())["Resources"]] == ["a+b"]


async def test_group_filters(scim: Scim) -> None:
    await scim.create_group("Admins", externalId="G-1")
    await scim.create_group("Tour Guides")
    assert await _filter(scim, 'displayName eq "ADMINS"', "/Groups") == {"Admins"}
    assert await _filter(scim, 'displayName co "guide"', "/Groups") == {"Tour Guides"}
    assert await _filter(scim, 'externalId eq "g-1"', "/Groups") == set()
    assert await _filter(scim, 'externalId eq "G-1"', "/Groups") == {"Admins"}


# --- sorting --------------------------------------------------------------------------


async def test_sort_by_user_name_is_case_insensitive(scim: Scim, people: dict[str, Any]) -> None:
    ascending = await _list(scim, "sortBy=userName")
    assert [u["userName"] for u in ascending["Resources"]] == ["alice", "BJensen", "jsmith", "Zed"]
    descending = await _list(scim, "sortBy=userName&sortOrder=descending")
    assert [u["userName"] for u in descending["Resources"]] == ["Zed", "jsmith", "BJensen", "alice"]


async def test_sort_by_family_name_breaks_ties_by_id(scim: Scim, people: dict[str, Any]) -> None:
    jensens = sorted([people["BJensen"]["id"], people["alice"]["id"]])
    ascending = await _list(scim, "sortBy=name.familyName&sortOrder=ascending")
    ids = [u["id"] for u in ascending["Resources"]]
    assert ids == [people["Zed"]["id"], *jensens, people["jsmith"]["id"]]
    descending = await _list(scim, "sortBy=name.familyName&sortOrder=descending")
    ids = [u["id"] for u in descending["Resources"]]
    assert ids == [people["jsmith"]["id"], *reversed(jensens), people["Zed"]["id"]]


async def test_sorted_pages_with_ties_never_repeat_or_skip(scim: Scim) -> None:
    created = [await scim.create_user(f"user{i:02d}", title="same") for i in range(7)]
    seen: list[str] = []
    for start in (1, 4, 7):
        page = await _list(scim, f"sortBy=title&startIndex={start}&count=3")
        seen += [u["id"] for u in page["Resources"]]
    assert seen == sorted(u["id"] for u in created)


async def test_sort_by_unknown_attribute_is_400(scim: Scim) -> None:
    await scim_error(await scim.get("/Users?sortBy=noSuchAttribute"), 400, "invalidValue")


async def test_bad_sort_order_is_400(scim: Scim) -> None:
    await scim_error(
        await scim.get("/Users?sortBy=userName&sortOrder=sideways"), 400, "invalidValue"
    )


# --- pagination -----------------------------------------------------------------------


async def test_start_index_and_count_select_a_page(scim: Scim, people: dict[str, Any]) -> None:
    page = await _list(scim, "sortBy=userName&startIndex=2&count=2")
    assert page["totalResults"] == 4
    assert page["startIndex"] == 2
    assert page["itemsPerPage"] == 2
    assert [u["userName"] for u in page["Resources"]] == ["BJensen", "jsmith"]
    beyond = await _list(scim, "startIndex=10&count=2")
    assert beyond["totalResults"] == 4
    assert beyond["itemsPerPage"] == 0
    assert beyond["Resources"] == []


async def test_count_zero_answers_only_the_total(scim: Scim, people: dict[str, Any]) -> None:
    body = await _list(scim, "count=0")
    assert body["totalResults"] == 4
    assert body["itemsPerPage"] == 0
    assert body["Resources"] == []
    filtered = await _list(scim, f"count=0&filter={quote('active eq true')}")
    assert filtered["totalResults"] == 2


@pytest.mark.parametrize("start", ["0", "-5"])
async def test_start_index_below_one_reads_as_one(
    scim: Scim, people: dict[str, Any], start: str
) -> None:
    page = await _list(scim, f"sortBy=userName&startIndex={start}&count=1")
    assert page["startIndex"] == 1
    assert [u["userName"] for u in page["Resources"]] == ["alice"]


async def test_negative_count_reads_as_zero(scim: Scim, people: dict[str, Any]) -> None:
    body = await _list(scim, "count=-3")
    assert body["totalResults"] == 4
    assert body["Resources"] == []


async def test_non_integer_paging_is_400(scim: Scim) -> None:
    await scim_error(await scim.get("/Users?count=ten"), 400, "invalidValue")
    await scim_error(await scim.get("/Users?startIndex=x"), 400, "invalidValue")


@pytest.fixture
async def small_pages(aiohttp_client: Any, settings: Settings, mongo_db: Any) -> Scim:
    """A server whose ``filter.maxResults`` is 5, with tenant ``acme``."""
    client: TestClient = await aiohttp_client(
        create_app(dataclasses.replace(settings, max_results=5))
    )
    tenant = await make_tenant(client, "acme")
    return Scim(client, "acme", tenant["token"])


async def test_count_is_capped_at_max_results(small_pages: Scim) -> None:
    for i in range(7):
        await small_pages.create_user(f"user{i}")
    for query in ("", "count=100"):
        body = await _list(small_pages, query)
        assert body["totalResults"] == 7
        assert body["itemsPerPage"] == 5
        assert len(body["Resources"]) == 5
    search = await small_pages.post("/Users/.search", {"schemas": [SEARCH], "count": 100})
    assert len((await search.json())["Resources"]) == 5


async def test_walking_every_page_returns_every_user_once(small_pages: Scim) -> None:
    created = {(await small_pages.create_user(f"user{i:02d}"))["id"] for i in range(12)}
    seen: list[str] = []
    start = 1
    while True:
        page = await _list(small_pages, f"startIndex={start}&count=5")
        assert page["totalResults"] == 12
        assert page["startIndex"] == start
        if not page["Resources"]:
            break
        seen += [u["id"] for u in page["Resources"]]
        start += len(page["Resources"])
    assert len(seen) == 12
    assert set(seen) == created


# --- attribute selection --------------------------------------------------------------


async def test_attributes_returns_only_what_was_asked(scim: Scim, people: dict[str, Any]) -> None:
    body = await _list(scim, "attributes=userName")
    assert len(body["Resources"]) == 4
    for user in body["Resources"]:
        assert set(user) == {"schemas", "id", "userName"}
    one = await _get_json(scim, f"/Users/{people['alice']['id']}?attributes=name.givenName")
    assert set(one) == {"schemas", "id", "name"}
    assert one["name"] == {"givenName": "Alice"}


async def test_excluded_attributes_leaves_them_out(scim: Scim, people: dict[str, Any]) -> None:
    text = quote('userName eq "alice"')
    body = await _list(scim, f"excludedAttributes=emails&filter={text}")
    (alice,) = body["Resources"]
    assert "emails" not in alice
    assert alice["userName"] == "alice"
    assert alice["name"] == people["alice"]["name"]
    assert alice["meta"] == people["alice"]["meta"]


async def _get_json(scim: Scim, path: str) -> dict[str, Any]:
    response = await scim.get(path)
    assert response.status == 200, await response.text()
    return dict(await response.json())


# --- .search --------------------------------------------------------------------------


async def test_users_search_takes_the_query_in_the_body(scim: Scim, people: dict[str, Any]) -> None:
    response = await scim.post(
        "/Users/.search",
        {
            "schemas": [SEARCH],
            "filter": 'name.familyName eq "jensen"',
            "sortBy": "userName",
            "sortOrder": "descending",
            "attributes": ["userName"],
            "startIndex": 1,
            "count": 10,
        },
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["totalResults"] == 2
    assert body["Resources"] == [
        {"schemas": [CORE], "id": people["BJensen"]["id"], "userName": "BJensen"},
        {"schemas": [CORE], "id": people["alice"]["id"], "userName": "alice"},
    ]


async def test_root_search_returns_users_and_groups(scim: Scim, people: dict[str, Any]) -> None:
    group = await scim.create_group("Jensens", [people["BJensen"]["id"]])
    response = await scim.post("/.search", {"schemas": [SEARCH]})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["totalResults"] == 5
    types = sorted(r["meta"]["resourceType"] for r in body["Resources"])
    assert types == ["Group", "User", "User", "User", "User"]
    paged = await (
        await scim.post("/.search", {"schemas": [SEARCH], "startIndex": 4, "count": 2})
    ).json()
    assert paged["totalResults"] == 5
    assert [r["meta"]["resourceType"] for r in paged["Resources"]] == ["User", "Group"]
    assert paged["Resources"][1]["id"] == group["id"]


async def test_root_search_filter_on_a_user_only_attribute(
    scim: Scim, people: dict[str, Any]
) -> None:
    await scim.create_group("Jensens")
    response = await scim.post(
        "/.search", {"schemas": [SEARCH], "filter": 'userName sw "b" or displayName co "jensen"'}
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    found = {
        (r["meta"]["resourceType"], r.get("userName") or r.get("displayName"))
        for r in body["Resources"]
    }
    assert found == {("User", "BJensen"), ("Group", "Jensens")}
    assert body["totalResults"] == 2


# --- tenant isolation -----------------------------------------------------------------


async def test_lists_filters_and_counts_stay_within_the_tenant(
    scim: Scim, other_scim: Scim, people: dict[str, Any]
) -> None:
    await other_scim.create_user("bjensen")
    await other_scim.create_user("outsider", active=True)
    await other_scim.create_group("Theirs")
    mine = {u["id"] for u in people.values()}
    assert {u["id"] for u in (await _list(scim))["Resources"]} == mine
    assert (await _list(scim, "count=0"))["totalResults"] == 4
    assert await _filter(scim, 'userName eq "bjensen"') == {"BJensen"}
    assert await _filter(scim, "active eq true") == {"BJensen", "alice"}
    assert await _filter(scim, 'userName eq "outsider"') == set()
    assert (await _list(scim, endpoint="/Groups"))["totalResults"] == 0
    search = await (await scim.post("/.search", {"schemas": [SEARCH]})).json()
    assert {r["id"] for r in search["Resources"]} == mine
    theirs = await _list(other_scim)
    assert theirs["totalResults"] == 2
    assert {u["userName"] for u in theirs["Resources"]} == {"bjensen", "outsider"}


# --- index use ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("collection", "model", "text", "field"),
    [
        ("users", UserModel, 'userName eq "BJensen"', "c.userName"),
        ("users", UserModel, 'externalId eq "Ext-1"', "c.externalId"),
        ("users", UserModel, 'emails.value eq "alice@example.com"', "c.emails.value"),
        ("groups", GroupModel, 'displayName eq "ADMINS"', "c.displayName"),
    ],
)
async def test_server_indexes_serve_equality_filters(
    scim: Scim,
    people: dict[str, Any],
    mongo_db: AsyncDatabase[Any],
    collection: str,
    model: type,
    text: str,
    field: str,
) -> None:
    await scim.create_group("Admins")
    query = {"tenant": "acme", **compile_filter(text, model)}
    assert await mongo_db[collection].count_documents(query) == 1
    explain = await mongo_db[collection].find(query).explain()
    scans = index_scans(explain["queryPlanner"]["winningPlan"])
    # An index led by (tenant, field): the groups' one also holds SHARED_NAME, to be unique.
    leading = [list(dict(scan["keyPattern"]).items())[:2] for scan in scans]
    assert [("tenant", 1), (field, 1)] in leading, explain


@pytest.mark.parametrize(
    ("collection", "page"),
    [
        ("users", "/Users?count=2"),
        ("users", "/Users?count=2&cursor="),
        ("users", "/Users?count=2&startIndex=3"),
        ("groups", "/Groups?count=2"),
        ("users", "/.search"),
    ],
)
async def test_an_unfiltered_page_reads_the_tenants_id_index_and_only_its_documents(
    scim: Scim, people: dict[str, Any], mongo_db: AsyncDatabase[Any], collection: str, page: str
) -> None:
    for name in ("Admins", "Staff", "Ops"):
        await scim.create_group(name)
    await crowd_another_tenant(mongo_db)
    if page == "/.search":
        request = scim.post(page, {"schemas": [SEARCH], "count": 2})
    else:
        request = scim.get(page)
    plan = await explained_request(mongo_db, collection, request)
    if not (await learn_planner(mongo_db)).hints:
        assert "hint" not in sent_find(collection)  # see test_nothing_is_hinted_on_...
        return
    winning = plan["queryPlanner"]["winningPlan"]
    # On MongoDB this index also yields the id order, so page 1 reads the page; SecantusDB
    # treats only an index led by the sort key as sorted, and sorts the tenant's documents.
    assert index_names(winning) == ["tenant_id"], winning
    own = await mongo_db[collection].count_documents({"tenant": "acme"})
    assert plan["executionStats"]["totalDocsExamined"] <= own


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ('userName co "example"', "tenant_userName_unique"),
        ('userName ew ".com"', "tenant_userName_unique"),
        ('externalId co "x"', "tenant_externalId"),
    ],
)
async def test_a_filter_no_index_bounds_still_reads_only_its_tenants_users(
    scim: Scim, people: dict[str, Any], mongo_db: AsyncDatabase[Any], text: str, index: str
) -> None:
    await crowd_another_tenant(mongo_db)
    request = scim.get(f"/Users?count=2&filter={quote(text)}")
    plan = await explained_request(mongo_db, "users", request)
    if not (await learn_planner(mongo_db)).hints:
        assert "hint" not in sent_find("users")  # see test_nothing_is_hinted_on_...
        return
    assert index_names(plan["queryPlanner"]["winningPlan"]) == [index]
    own = await mongo_db.users.count_documents({"tenant": "acme"})
    assert plan["executionStats"]["totalDocsExamined"] <= own


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ('userName eq "BJensen"', "tenant_userName_unique"),
        ('externalId eq "Ext-1"', "tenant_externalId"),
        ('userName sw "bj"', "tenant_userName_unique"),
        ('userName gt "b"', "tenant_userName_unique"),
    ],
)
async def test_a_filter_an_index_bounds_is_left_to_the_planner_within_its_tenant(
    scim: Scim, people: dict[str, Any], mongo_db: AsyncDatabase[Any], text: str, index: str
) -> None:
    """Equality and ranges are sent without a hint: every planner bounds them on the tenant's
    index, and SecantusDB runs a hinted query as a walk of the whole index, every tenant's
    entries (its explain still shows the bounded plan): bench/results/against_peer.md."""
    await crowd_another_tenant(mongo_db)
    plan = await explained_request(mongo_db, "users", scim.get(f"/Users?filter={quote(text)}"))
    assert "hint" not in sent_find("users")
    assert index_names(plan["queryPlanner"]["winningPlan"]) == [index]
    own = await mongo_db.users.count_documents({"tenant": "acme"})
    assert plan["executionStats"]["totalDocsExamined"] <= own


@pytest.mark.parametrize(
    "page",
    [
        "/Users?count=2",
        "/Users?count=2&cursor=",
        "/Users?sortBy=userName&count=2&startIndex=2",
        "/Users?count=2&filter=" + quote('userName co "e"'),
        "/Users?count=2&filter=" + quote('externalId ew "1"'),
        "/Users?count=2&filter=" + quote("userName pr"),
    ],
)
async def test_nothing_is_hinted_on_a_store_that_walks_the_whole_hinted_index(
    scim: Scim, people: dict[str, Any], mongo_db: AsyncDatabase[Any], page: str
) -> None:
    """SecantusDB runs a hinted query as a walk of the whole index, every tenant's entries
    (25 to 90 times its planner's own choice beside another tenant's 20,000 users), so there
    the server hints nothing; MongoDB bounds a hint by the query, and gets the hints the
    tests above pin."""
    if (await learn_planner(mongo_db)).hints:
        pytest.skip("this store bounds a hinted query by its conditions")
    await crowd_another_tenant(mongo_db)
    await explained_request(mongo_db, "users", scim.get(page))
    assert "hint" not in sent_find("users")


# --- values a database cannot hold ----------------------------------------------------------


LONE_SURROGATES = [
    r'userName eq "\ud800"',
    r'userName sw "a\udfff"',
    r'emails[value co "\udc80x"]',
    r'name.familyName eq "x" or title eq "\ud83d"',
]


@pytest.mark.parametrize("text", LONE_SURROGATES)
async def test_lone_surrogate_in_a_filter_value_is_400_invalid_filter(
    scim: Scim, text: str
) -> None:
    await scim_error(await scim.get(f"/Users?filter={quote(text)}"), 400, "invalidFilter")
    for endpoint in ("/Users/.search", "/.search"):
        response = await scim.post(endpoint, {"schemas": [SEARCH], "filter": text})
        await scim_error(response, 400, "invalidFilter")


async def test_escaped_surrogate_pair_in_a_filter_value_is_one_character(scim: Scim) -> None:
    await scim.create_user("smile\U0001f600")
    assert await _filter(scim, r'userName eq "smile\ud83d\ude00"') == {"smile\U0001f600"}


HUGE = ["99999999999999999999999", "9223372036854775808", "-99999999999999999999999"]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("name", ["startIndex", "count"])
async def test_paging_integer_beyond_the_bound_is_400_on_get_and_search(
    scim: Scim, name: str, value: str
) -> None:
    await scim_error(await scim.get(f"/Users?{name}={value}"), 400, "invalidValue")
    for endpoint in ("/Users/.search", "/Groups/.search", "/.search"):
        raw = b'{"schemas": ["%s"], "%s": %s}' % (SEARCH.encode(), name.encode(), value.encode())
        response = await scim.post(
            endpoint, data=raw, headers={"Content-Type": "application/scim+json"}
        )
        await scim_error(response, 400, "invalidValue")


async def test_paging_integer_at_the_bound_is_an_empty_page(scim: Scim) -> None:
    await scim.create_user("only")
    for query in (f"startIndex={MAX_PAGING_INTEGER}", f"count={MAX_PAGING_INTEGER}"):
        assert (await _list(scim, query))["totalResults"] == 1
    body = await _list(scim, f"startIndex={MAX_PAGING_INTEGER}&count={MAX_PAGING_INTEGER}")
    assert body["Resources"] == []
    response = await scim.post("/.search", {"schemas": [SEARCH], "startIndex": MAX_PAGING_INTEGER})
    assert response.status == 200, await response.text()
    assert (await response.json())["Resources"] == []


# --- Entra's unquoted values ----------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "filter=externalId eq jyoung",  # Entra's documented existence check, as it sends it
        "filter=externalId+eq+jyoung",
        "filter=externalId%20eq%20jyoung",
        "filter=userName eq JYoung",
    ],
)
async def test_entra_unquoted_existence_check_finds_the_user(scim: Scim, query: str) -> None:
    await scim.create_user("jyoung", externalId="jyoung")
    await scim.create_user("other", externalId="other")
    response = await scim.client.get(f"{scim.base}/Users?{query}", headers=scim.headers())
    assert response.status == 200, await response.text()
    assert [user["userName"] for user in (await response.json())["Resources"]] == ["jyoung"]


async def test_entra_unquoted_lookup_of_a_missing_user_is_an_empty_list(scim: Scim) -> None:
    body = await _list(scim, "filter=externalId eq nobody")
    assert body["totalResults"] == 0


async def test_literals_keep_their_meaning_beside_unquoted_values(
    scim: Scim, people: dict[str, Any]
) -> None:
    assert await _filter(scim, "active eq true and name.familyName eq jensen") == {
        "BJensen",
        "alice",
    }
    assert await _filter(scim, "title pr and userName ne alice") == {"BJensen"}
