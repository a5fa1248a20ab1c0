"""Seats: active users (``active`` true or absent) hold one; creating or reactivating a user
beyond the tenant's limit is a 403 naming the limit, through every write path (POST, PUT, PATCH,
Bulk) and under concurrency; deactivating or deleting frees one; the admin API and CLI set and
show the limit, and a recount repairs the counter."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.cli import main
from scim_server.config import Settings
from scim_server.core import seats as seats_module
from scim_server.storage.database import Database
from scim_server.storage.seats import HOLDS_SEAT, SeatCount, SeatCounter
from scim_server.web.app import create_app
from tests.support.plans import index_scans
from tests.support.scim import ADMIN, ADMIN_TOKEN, Scim, scim_error
from tests.support.seats import active_in_store, counter, create, set_seats, usage
from tests.support.urns import BULK_REQUEST, GROUP, PATCH_OP, USER

SEATS = "/admin/tenants/acme/seats"


async def set_active(scim: Scim, user_id: str, active: bool) -> Any:
    return await scim.patch(
        f"/Users/{user_id}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": active}],
        },
    )


async def is_active(scim: Scim, user_id: str) -> Any:
    return (await (await scim.get(f"/Users/{user_id}")).json()).get("active")


# --- the limit on each write path -------------------------------------------------------------


async def test_a_new_tenant_is_unlimited_and_counts_active_users(scim: Scim) -> None:
    assert await usage(scim.client) == {"seats": None, "used": 0, "available": None, "over": 0}
    for name in ("alice", "bob", "carol"):
        assert (await create(scim, name)).status == 201
    assert (await create(scim, "dave", active=True)).status == 201
    assert await usage(scim.client) == {"seats": None, "used": 4, "available": None, "over": 0}


async def test_create_beyond_the_limit_is_403_naming_it_and_stores_nothing(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    assert await set_seats(scim.client, 2) == {"seats": 2, "used": 0, "available": 2, "over": 0}
    assert (await create(scim, "alice", active=True)).status == 201
    assert (await create(scim, "bob")).status == 201  # no ``active``: counted as active

    refused = await scim_error(await create(scim, "carol"), 403, None)
    assert refused["detail"] == "tenant 'acme' has 2 seats and all 2 are in use"
    await scim_error(await create(scim, "carol", active=True), 403, None)

    assert await mongo_db["users"].count_documents({"tenant": "acme"}) == 2
    assert (await (await scim.get('/Users?filter=userName eq "carol"')).json())["totalResults"] == 0
    assert await usage(scim.client) == {"seats": 2, "used": 2, "available": 0, "over": 0}


@pytest.mark.parametrize(
    ("seats", "detail"),
    [
        (0, "tenant 'acme' has no seats"),
        (1, "tenant 'acme' has 1 seat and it is in use"),
    ],
)
async def test_the_refusal_names_small_limits_readably(scim: Scim, seats: int, detail: str) -> None:
    await set_seats(scim.client, seats)
    if seats:
        await scim.create_user("alice")
    assert (await scim_error(await create(scim, "bob"), 403))["detail"] == detail


async def test_a_first_limit_binds_the_next_creation_of_a_tenant_just_read_unlimited(
    scim: Scim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reading of a tenant as unlimited that serves later writes (long here, so it would
    serve the creation) is dropped when this process sets the tenant a limit."""
    monkeypatch.setattr(seats_module, "UNLIMITED_READING_SECONDS", 3600.0)
    assert (await create(scim, "ada")).status == 201
    await set_seats(scim.client, 1)
    await scim_error(await create(scim, "grace"), 403)
    await set_seats(scim.client, None)
    assert (await create(scim, "grace")).status == 201


async def test_inactive_users_are_created_freely_when_full(scim: Scim) -> None:
    await set_seats(scim.client, 1)
    await scim.create_user("alice")
    for name in ("bob", "carol", "dave"):
        assert (await create(scim, name, active=False)).status == 201
    assert await usage(scim.client) == {"seats": 1, "used": 1, "available": 0, "over": 0}


async def test_reactivation_by_put_beyond_the_limit_is_refused_and_the_user_stays_inactive(
    scim: Scim,
) -> None:
    await set_seats(scim.client, 1)
    await scim.create_user("alice")
    bob = await scim.create_user("bob", active=False)

    for body in (
        {"schemas": [USER], "userName": "bob", "active": True},
        {"schemas": [USER], "userName": "bob"},
    ):  # replaced without ``active``: active
        await scim_error(await scim.put(f"/Users/{bob['id']}", body), 403)
        assert await is_active(scim, bob["id"]) is False
    # A PUT that keeps the user inactive needs no seat.
    kept = await scim.put(
        f"/Users/{bob['id']}", {"schemas": [USER], "userName": "robert", "active": False}
    )
    assert kept.status == 200
    assert (await usage(scim.client))["used"] == 1


async def test_reactivation_by_patch_beyond_the_limit_is_refused_and_the_user_stays_inactive(
    scim: Scim,
) -> None:
    await set_seats(scim.client, 1)
    await scim.create_user("alice")
    bob = await scim.create_user("bob", active=False)

    refused = await scim_error(await set_active(scim, bob["id"], True), 403)
    assert "1 seat" in refused["detail"]
    removal = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "active"}]}
    await scim_error(await scim.patch(f"/Users/{bob['id']}", removal), 403)
    assert await is_active(scim, bob["id"]) is False
    assert (await usage(scim.client))["used"] == 1


async def test_deactivating_frees_a_seat_and_reactivating_takes_it_back(scim: Scim) -> None:
    await set_seats(scim.client, 1)
    alice = await scim.create_user("alice")
    await scim_error(await create(scim, "bob"), 403)

    assert (await set_active(scim, alice["id"], False)).status == 200
    assert (await usage(scim.client))["used"] == 0
    bob = await scim.create_user("bob")

    await scim_error(await set_active(scim, alice["id"], True), 403)
    assert (await set_active(scim, bob["id"], False)).status == 200
    assert (await set_active(scim, alice["id"], True)).status == 200
    # Writing an already active user active again takes no second seat.
    assert (await set_active(scim, alice["id"], True)).status == 200
    assert await usage(scim.client) == {"seats": 1, "used": 1, "available": 0, "over": 0}


async def test_deleting_an_active_user_frees_its_seat_and_an_inactive_one_frees_none(
    scim: Scim,
) -> None:
    await set_seats(scim.client, 1)
    alice = await scim.create_user("alice")
    carol = await scim.create_user("carol", active=False)

    assert (await scim.delete(f"/Users/{carol['id']}")).status == 204
    assert (await usage(scim.client))["used"] == 1
    assert (await scim.delete(f"/Users/{alice['id']}")).status == 204
    assert (await usage(scim.client))["used"] == 0
    assert (await create(scim, "bob")).status == 201
    await scim_error(await scim.delete(f"/Users/{alice['id']}"), 404)
    assert (await usage(scim.client))["used"] == 1


async def test_a_write_the_database_refuses_gives_its_seat_back(scim: Scim) -> None:
    await set_seats(scim.client, 2)
    await scim.create_user("alice")
    bob = await scim.create_user("bob", active=False)

    await scim_error(await create(scim, "ALICE"), 409, "uniqueness")
    taken = {"schemas": [USER], "userName": "alice", "active": True}
    await scim_error(await scim.put(f"/Users/{bob['id']}", taken), 409, "uniqueness")
    assert await is_active(scim, bob["id"]) is False
    assert (await usage(scim.client))["used"] == 1


async def test_groups_hold_no_seats(scim: Scim) -> None:
    await set_seats(scim.client, 0)
    bob = await scim.create_user("bob", active=False)
    group = await scim.create_group("staff", [bob["id"]])
    assert (await scim.delete(f"/Groups/{group['id']}")).status == 204
    assert (await usage(scim.client))["used"] == 0


async def test_bulk_beyond_the_limit_fails_per_operation_and_the_rest_succeed(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    await set_seats(scim.client, 2)
    dormant = await scim.create_user("dormant", active=False)

    def post(bulk_id: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "method": "POST",
            "bulkId": bulk_id,
            "path": "/Users" if "userName" in data else "/Groups",
            "data": data,
        }

    body = {
        "schemas": [BULK_REQUEST],
        "Operations": [
            post("a", {"schemas": [USER], "userName": "alice"}),
            post("b", {"schemas": [USER], "userName": "bob", "active": True}),
            post("c", {"schemas": [USER], "userName": "carol"}),
            post("d", {"schemas": [USER], "userName": "dave", "active": False}),
            {
                "method": "PATCH",
                "path": f"/Users/{dormant['id']}",
                "data": {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "value": {"active": True}}],
                },
            },
            post(
                "g",
                {
                    "schemas": [GROUP],
                    "displayName": "staff",
                    "members": [{"value": "bulkId:a"}, {"value": "bulkId:d"}],
                },
            ),
        ],
    }
    response = await scim.post("/Bulk", body)
    assert response.status == 200
    results = (await response.json())["Operations"]
    assert [r["status"] for r in results] == ["201", "201", "403", "201", "403", "201"]
    for refused in (results[2], results[4]):
        assert refused["response"]["detail"] == "tenant 'acme' has 2 seats and all 2 are in use"
    assert sorted(await mongo_db["users"].distinct("r.userName", {"tenant": "acme"})) == [
        "alice",
        "bob",
        "dave",
        "dormant",
    ]
    assert await is_active(scim, dormant["id"]) is False
    assert (await usage(scim.client))["used"] == 2


async def test_seats_are_per_tenant(scim: Scim, other_scim: Scim) -> None:
    await set_seats(scim.client, 1)
    await scim.create_user("alice")
    await other_scim.create_user("alice")
    await other_scim.create_user("bob")
    await scim_error(await create(scim, "bob"), 403)
    assert (await usage(scim.client, "acme"))["used"] == 1
    assert await usage(scim.client, "globex") == {
        "seats": None,
        "used": 2,
        "available": None,
        "over": 0,
    }


# --- the limit changed under use --------------------------------------------------------------


async def test_lowering_the_limit_below_use_keeps_users_and_reports_the_excess(scim: Scim) -> None:
    users = [await scim.create_user(name) for name in ("alice", "bob", "carol")]
    assert await set_seats(scim.client, 1) == {"seats": 1, "used": 3, "available": 0, "over": 2}
    for user in users:
        assert await is_active(scim, user["id"]) is not False
        # An active user stays writable: only taking a new seat is refused.
        assert (await set_active(scim, user["id"], True)).status == 200
    detail = (await scim_error(await create(scim, "dave"), 403))["detail"]
    assert detail == "tenant 'acme' has 1 seat and 3 are in use"

    await set_active(scim, users[0]["id"], False)
    await set_active(scim, users[1]["id"], False)
    await scim_error(await set_active(scim, users[0]["id"], True), 403)  # 1 of 1 in use
    await set_seats(scim.client, None)
    assert (await set_active(scim, users[0]["id"], True)).status == 200
    assert await usage(scim.client) == {"seats": None, "used": 2, "available": None, "over": 0}


# --- concurrency ------------------------------------------------------------------------------


async def test_concurrent_creates_take_exactly_the_free_seats(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    await set_seats(scim.client, 5)
    responses = await asyncio.gather(*(create(scim, f"user{n}") for n in range(20)))
    assert Counter(r.status for r in responses) == {201: 5, 403: 15}
    assert await mongo_db["users"].count_documents({"tenant": "acme"}) == 5
    assert await counter(mongo_db) == 5


@pytest.fixture
async def twin(aiohttp_client: Any, settings: Settings, scim: Scim) -> Scim:
    """The same tenant through a second app on the same database, as another worker process
    sees it: its own per-resource locks, so writes really race in MongoDB."""
    return Scim(await aiohttp_client(create_app(settings)), scim.tenant, scim.token)


async def test_a_storm_of_deactivations_reactivations_and_deletes_keeps_the_count_exact(
    scim: Scim, twin: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    await set_seats(scim.client, 3)
    users = [(await scim.create_user(f"user{n}", active=n < 3))["id"] for n in range(8)]
    shuffle = random.Random(5)
    writes = [
        set_active(shuffle.choice((scim, twin)), user, shuffle.random() < 0.6)
        for user in users
        for _ in range(10)
    ]
    writes += [shuffle.choice((scim, twin)).delete(f"/Users/{user}") for user in users[::2]]
    shuffle.shuffle(writes)

    statuses = Counter(response.status for response in await asyncio.gather(*writes))
    assert set(statuses) <= {200, 204, 403, 404}, statuses
    assert statuses[403] > 0 and statuses[204] == 4, statuses  # the limit was in play

    active = await active_in_store(mongo_db)
    assert active <= 3
    assert await counter(mongo_db) == active
    recounted = await scim.client.post(f"{SEATS}/recount", headers=ADMIN)
    assert (await recounted.json())["used"] == active


@pytest.mark.parametrize("activate", [False, True], ids=["deactivation", "reactivation"])
async def test_a_delete_racing_a_deactivation_or_reactivation_frees_exactly_the_seat_held(
    scim: Scim, twin: Scim, mongo_db: AsyncDatabase[Any], activate: bool
) -> None:
    await set_seats(scim.client, 100)  # a tenant with a limit keeps a counter
    for n in range(3):  # bystanders: the counter never reaches 0, where a release stops
        await scim.create_user(f"bystander{n}")
    targets = [(await scim.create_user(f"user{n}", active=not activate))["id"] for n in range(30)]
    writes = [
        request
        for user in targets
        for request in (set_active(twin, user, activate), scim.delete(f"/Users/{user}"))
    ]

    statuses = Counter(response.status for response in await asyncio.gather(*writes))
    assert statuses[204] == len(targets) and set(statuses) <= {200, 204, 404}, statuses
    assert await counter(mongo_db) == await active_in_store(mongo_db) == 3


# --- recount ----------------------------------------------------------------------------------


async def test_recount_repairs_a_counter_a_crash_left_too_high(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    await set_seats(scim.client, 3)
    await scim.create_user("alice")
    await scim.create_user("bob", active=True)
    await scim.create_user("carol", active=False)
    # Seats reserved by writes that died before storing their user.
    await mongo_db["tenants"].update_one({"_id": "acme"}, {"$set": {"seats_used": 3}})
    await scim_error(await create(scim, "dave"), 403)

    response = await scim.client.post(f"{SEATS}/recount", headers=ADMIN)
    assert response.status == 200
    assert await response.json() == {"seats": 3, "used": 2, "available": 1, "over": 0}
    assert (await create(scim, "dave")).status == 201


async def test_a_tenant_from_before_seats_is_counted_not_assumed_empty(
    scim: Scim, mongo_db: AsyncDatabase[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The limit is written under the server, without the fence a limit set through it raises
    # for the readings of the tenant as unlimited to age out: each write reads the tenant.
    monkeypatch.setattr(seats_module, "UNLIMITED_READING_SECONDS", 0.0)
    await scim.create_user("alice")
    await scim.create_user("bob")
    await scim.create_user("carol", active=False)
    await mongo_db["tenants"].update_one(
        {"_id": "acme"}, {"$unset": {"seats": "", "seats_used": ""}}
    )
    listed = await (await scim.client.get("/admin/tenants", headers=ADMIN)).json()
    assert [(t["seats"], t["used"]) for t in listed["tenants"]] == [(None, 2)]

    await mongo_db["tenants"].update_one({"_id": "acme"}, {"$set": {"seats": 10}})
    await scim.create_user("dave")  # with a limit, the first seat taken counts the others first
    assert await counter(mongo_db) == 3
    await mongo_db["tenants"].update_one({"_id": "acme"}, {"$unset": {"seats_used": ""}})
    assert await set_seats(scim.client, 3) == {"seats": 3, "used": 3, "available": 0, "over": 0}


async def test_recount_counts_on_a_tenant_index(scim: Scim, mongo_db: AsyncDatabase[Any]) -> None:
    await scim.create_user("alice")
    plan = await mongo_db["users"].find({"tenant": "acme", **HOLDS_SEAT}).explain()
    winning = plan["queryPlanner"]["winningPlan"]
    key_patterns = [dict(scan["keyPattern"]) for scan in index_scans(winning)]
    assert key_patterns == [{"tenant": 1, "c.active": 1}], winning


# --- the admin API ----------------------------------------------------------------------------

SEAT_ROUTES = [
    ("GET", SEATS, None),
    ("PUT", SEATS, {"seats": 1}),
    ("POST", f"{SEATS}/recount", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), SEAT_ROUTES, ids=[f"{m} {p}" for m, p, _ in SEAT_ROUTES]
)
async def test_seat_routes_require_the_admin_token(
    scim: Scim, mongo_db: AsyncDatabase[Any], method: str, path: str, body: Any
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, scim.headers()):
        await scim_error(await scim.client.request(method, path, json=body, headers=headers), 401)
    tenant = await mongo_db["tenants"].find_one({"_id": "acme"})
    assert tenant is not None and tenant["seats"] is None


@pytest.mark.parametrize(("method", "body"), [("GET", None), ("PUT", {"seats": 1}), ("POST", None)])
async def test_seats_of_an_unknown_tenant_are_404(
    client: TestClient, mongo_db: AsyncDatabase[Any], method: str, body: Any
) -> None:
    path = "/admin/tenants/nobody/seats" + ("/recount" if method == "POST" else "")
    response = await client.request(method, path, json=body, headers=ADMIN)
    assert (await scim_error(response, 404))["detail"] == "no tenant 'nobody'"
    assert await mongo_db["tenants"].count_documents({}) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"seats": -1},
        {"seats": 1.5},
        {"seats": "5"},
        {"seats": True},
        {"seats": [5]},
        {"seats": {"n": 5}},
        {"seats": 10**12},
        {"seats": 2**70},
    ],
    ids=repr,
)
async def test_invalid_seat_limits_are_400_and_change_nothing(
    scim: Scim, body: dict[str, Any]
) -> None:
    await set_seats(scim.client, 7)
    await scim_error(await scim.client.put(SEATS, json=body, headers=ADMIN), 400, "invalidValue")
    assert (await usage(scim.client))["seats"] == 7


async def test_a_seat_limit_body_must_be_a_json_object(scim: Scim) -> None:
    await scim_error(await scim.client.put(SEATS, json=[5], headers=ADMIN), 400, "invalidSyntax")
    await scim_error(
        await scim.client.put(
            SEATS, data=b"{", headers={**ADMIN, "Content-Type": "application/json"}
        ),
        400,
        "invalidSyntax",
    )


# --- the CLI ----------------------------------------------------------------------------------


async def test_cli_sets_shows_and_recounts_seats(
    scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    await scim.create_user("alice")
    options = ["--url", str(scim.client.make_url("/")), "--admin-token", ADMIN_TOKEN]

    async def run(*args: str) -> str:
        assert await asyncio.to_thread(main, [*args, *options]) == 0
        return capsys.readouterr().out

    assert '"seats": 5' in await run("seats", "set", "acme", "5")
    shown = await run("seats", "get", "acme")
    assert '"seats": 5' in shown and '"used": 1' in shown and '"available": 4' in shown
    assert '"used": 1' in await run("seats", "recount", "acme")
    assert '"seats": null' in await run("seats", "set", "acme", "unlimited")
    listed = await run("tenants", "list")
    assert '"seats": null' in listed and '"seats_used": 1' in listed

    with pytest.raises(SystemExit) as refused:
        await asyncio.to_thread(main, ["seats", "set", "acme", "-3", *options])
    assert "error 400" in str(refused.value.code)
    with pytest.raises(SystemExit):
        main(["seats", "set", "acme", "many", *options])
    assert "'unlimited'" in capsys.readouterr().err


async def test_concurrent_writes_wanting_a_new_reading_of_an_unlimited_tenant_share_one_read(
    scim: Scim, mongodb_uri: str, database_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes that find no recent reading while one is being made wait for it: a burst after
    the reading expired costs one read of the tenant, not one per write."""
    database = Database.connect(mongodb_uri, database_name)
    counter = SeatCounter(database)
    seats = seats_module.Seats(counter)
    reads, released = 0, asyncio.Event()
    read = counter.read

    async def slow_read(tenant: str) -> SeatCount | None:
        nonlocal reads
        reads += 1
        await released.wait()
        return await read(tenant)

    monkeypatch.setattr(counter, "read", slow_read)
    try:
        for _ in range(2):
            monkeypatch.setattr(seats, "_unlimited", {})  # the last reading expired
            reads = 0
            released.clear()
            wanting = [asyncio.create_task(seats.reserve(scim.tenant)) for _ in range(16)]
            await asyncio.sleep(0)  # every write is now waiting for a reading
            released.set()
            reservations = await asyncio.gather(*wanting)
            assert reads == 1
            assert all(not r.limited and r.granted == 1 for r in reservations)
            assert len({r.since for r in reservations}) == 1
    finally:
        await database.close()
