"""Bulk (RFC 7644 §3.7): bulkId references in any order, cycles, failOnErrors, per-operation
statuses, versions, limits (maxOperations / maxPayloadSize), tenant isolation, discovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.scim import Scim, make_tenant, scim_error
from tests.support.seats import active_in_store, counter, set_seats, usage
from tests.support.urns import BULK_REQUEST, BULK_RESPONSE, ENTERPRISE, ERROR, GROUP, PATCH_OP, USER


def _bulk(*operations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schemas": [BULK_REQUEST], "Operations": list(operations), **extra}


def _create_user(bulk_id: str, user_name: str, **attributes: Any) -> dict[str, Any]:
    return {
        "method": "POST",
        "bulkId": bulk_id,
        "path": "/Users",
        "data": {"schemas": [USER], "userName": user_name, **attributes},
    }


def _create_group(bulk_id: str, name: str, members: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"schemas": [GROUP], "displayName": name}
    if members:
        data["members"] = [{"value": member} for member in members]
    return {"method": "POST", "bulkId": bulk_id, "path": "/Groups", "data": data}


def _patch(path: str, *operations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "method": "PATCH",
        "path": path,
        "data": {"schemas": [PATCH_OP], "Operations": list(operations)},
        **extra,
    }


async def _run(scim: Scim, body: Any) -> list[dict[str, Any]]:
    response = await scim.post("/Bulk", body)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/scim+json"
    answer = await response.json()
    assert answer["schemas"] == [BULK_RESPONSE]
    return list(answer["Operations"])


async def bulk_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    return await scim_error(response, status, scim_type)


def _failed(result: dict[str, Any], status: int, scim_type: str | None = None) -> str:
    """Check one failed operation result; answers the error detail."""
    assert result["status"] == str(status), result
    error = result["response"]
    assert error["schemas"] == [ERROR]
    assert error["status"] == str(status)
    assert error.get("scimType") == scim_type, error
    assert "version" not in result
    return str(error["detail"])


def _id(result: dict[str, Any]) -> str:
    return str(result["location"].rsplit("/", 1)[1])


async def _member_ids(scim: Scim, group_id: str) -> set[str]:
    response = await scim.get(f"/Groups/{group_id}")
    assert response.status == 200, await response.text()
    return {member["value"] for member in (await response.json()).get("members", [])}


async def _count(scim: Scim, endpoint: str) -> int:
    response = await scim.get(f"/{endpoint}?count=0")
    assert response.status == 200
    return int((await response.json())["totalResults"])


# --- references -------------------------------------------------------------------------


async def test_a_group_refers_to_a_user_created_earlier_in_the_request(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_user("u1", "alice"),
            _create_group("g1", "staff", ["bulkId:u1"]),
        ),
    )
    assert [r["status"] for r in results] == ["201", "201"]
    user, group = results
    assert user["method"] == "POST" and user["bulkId"] == "u1"
    assert user["version"] == 'W/"1"'
    assert user["location"].endswith(f"/scim/v2/acme/Users/{_id(user)}")
    assert group["location"].endswith(f"/scim/v2/acme/Groups/{_id(group)}")
    assert await _member_ids(scim, _id(group)) == {_id(user)}


async def test_a_forward_reference_runs_the_referenced_post_first(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_group("g1", "staff", ["bulkId:u1", "bulkId:u2"]),
            _create_user("u1", "alice"),
            _create_user("u2", "bob"),
        ),
    )
    # Listed in request order, all created; the group holds both users.
    assert [(r["bulkId"], r["status"]) for r in results] == [
        ("g1", "201"),
        ("u1", "201"),
        ("u2", "201"),
    ]
    assert await _member_ids(scim, _id(results[0])) == {_id(results[1]), _id(results[2])}
    response = await scim.get(f"/Users/{_id(results[1])}")
    assert [g["value"] for g in (await response.json())["groups"]] == [_id(results[0])]


async def test_a_group_nested_in_a_group_created_later_is_resolved(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_group("outer", "outer", ["bulkId:inner"]),
            _create_group("inner", "inner", ["bulkId:u1"]),
            _create_user("u1", "alice"),
        ),
    )
    assert [r["status"] for r in results] == ["201", "201", "201"]
    outer, inner, user = (_id(r) for r in results)
    assert await _member_ids(scim, outer) == {inner}
    assert await _member_ids(scim, inner) == {user}


async def test_references_in_path_resolve_backward_and_forward(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            # Forward: PATCH a user the request creates later.
            _patch("/Users/bulkId:u2", {"op": "replace", "path": "displayName", "value": "Bob B."}),
            _create_user("u1", "alice"),
            _create_user("u2", "bob"),
            # Backward: PUT a user created earlier.
            {
                "method": "PUT",
                "path": "/Users/bulkId:u1",
                "data": {"schemas": [USER], "userName": "alice", "title": "Boss"},
            },
        ),
    )
    patched, alice, bob, put = results
    assert [r["status"] for r in results] == ["200", "201", "201", "200"]
    assert patched["location"] == bob["location"]
    assert patched["version"] == 'W/"2"'
    assert put["location"] == alice["location"]
    assert put["version"] == 'W/"2"'
    assert (await (await scim.get(f"/Users/{_id(bob)}")).json())["displayName"] == "Bob B."
    assert (await (await scim.get(f"/Users/{_id(alice)}")).json())["title"] == "Boss"


async def test_a_reference_anywhere_in_data_is_resolved(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_user(
                "emp",
                "employee",
                **{
                    "schemas": [USER, ENTERPRISE],
                    # scim2-models requires manager.$ref on a create; only the value is a reference.
                    ENTERPRISE: {
                        "manager": {
                            "value": "bulkId:boss",
                            "$ref": "https://idp.example/Users/boss",
                        }
                    },
                },
            ),
            _create_user("boss", "boss"),
            _patch(
                "/Groups/bulkId:g",
                {"op": "add", "path": "members", "value": [{"value": "bulkId:emp"}]},
            ),
            _create_group("g", "team"),
        ),
    )
    assert [r["status"] for r in results] == ["201", "201", "200", "201"], results
    employee = await (await scim.get(f"/Users/{_id(results[0])}")).json()
    assert employee[ENTERPRISE]["manager"]["value"] == _id(results[1])
    assert await _member_ids(scim, _id(results[3])) == {_id(results[0])}


async def test_a_value_that_only_contains_bulkid_is_left_alone(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_user("u1", "alice", displayName="see bulkId:u1", nickName="bulkId:"),
        ),
    )
    assert results[0]["status"] == "201"
    body = await (await scim.get(f"/Users/{_id(results[0])}")).json()
    assert (body["displayName"], body["nickName"]) == ("see bulkId:u1", "bulkId:")


async def test_an_unknown_bulkid_fails_with_409(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_group("g1", "staff", ["bulkId:nobody"]),
            {"method": "DELETE", "path": "/Users/bulkId:ghost"},
            _create_user("u1", "alice"),
        ),
    )
    assert "'nobody' is not the bulkId of a POST" in _failed(results[0], 409)
    assert "'ghost' is not the bulkId of a POST" in _failed(results[1], 409)
    assert results[2]["status"] == "201"
    assert await _count(scim, "Groups") == 0


async def test_a_reference_to_a_failed_post_fails_with_409(scim: Scim) -> None:
    await scim.create_user("taken")
    results = await _run(
        scim,
        _bulk(
            _create_group("g1", "staff", ["bulkId:u1"]),
            _create_user("u1", "taken"),
            _patch("/Users/bulkId:u1", {"op": "replace", "path": "title", "value": "x"}),
        ),
    )
    detail = _failed(results[0], 409)
    assert detail == "bulkId 'u1' was not created: its operation failed with status 409"
    _failed(results[1], 409, "uniqueness")
    assert "location" not in results[1]
    assert _failed(results[2], 409) == detail
    assert await _count(scim, "Groups") == 0


# --- cycles -----------------------------------------------------------------------------


async def test_a_reference_cycle_fails_its_members_and_the_rest_runs(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_user("free", "free"),
            _create_group("a", "a", ["bulkId:b"]),
            _create_group("b", "b", ["bulkId:a"]),
            _create_group("self", "self", ["bulkId:self"]),
            _create_group("after", "after", ["bulkId:a"]),
            _create_group("ok", "ok", ["bulkId:free"]),
        ),
    )
    free, a, b, self_, after, ok = results
    assert free["status"] == "201" and ok["status"] == "201"
    assert _failed(a, 409) == "circular bulkId reference: a -> b -> a"
    assert _failed(b, 409) == "circular bulkId reference: b -> a -> b"
    assert _failed(self_, 409) == "circular bulkId reference: self -> self"
    assert "'a' was not created" in _failed(after, 409)
    assert (a["bulkId"], b["bulkId"], a["method"]) == ("a", "b", "POST")
    assert await _count(scim, "Groups") == 1
    assert await _member_ids(scim, _id(ok)) == {_id(free)}


async def test_a_longer_cycle_names_every_member(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_group("x", "x", ["bulkId:y"]),
            _create_group("y", "y", ["bulkId:z"]),
            _create_group("z", "z", ["bulkId:x"]),
        ),
    )
    assert [_failed(r, 409) for r in results] == [
        "circular bulkId reference: x -> y -> z -> x",
        "circular bulkId reference: y -> z -> x -> y",
        "circular bulkId reference: z -> x -> y -> z",
    ]


# --- failOnErrors -----------------------------------------------------------------------


async def test_fail_on_errors_stops_after_that_many_errors(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_user("u1", "one"),
            {"method": "DELETE", "path": "/Users/missing-1"},
            _create_user("u2", "two"),
            {"method": "DELETE", "path": "/Users/missing-2"},
            _create_user("u3", "three"),
            failOnErrors=2,
        ),
    )
    assert [r["status"] for r in results] == ["201", "404", "201", "404"]
    # The fifth operation never ran.
    assert await _count(scim, "Users") == 2


async def test_fail_on_errors_lists_only_operations_that_ran_in_plan_order(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_group("g", "g", ["bulkId:u"]),  # waits for u: would run third
            {"method": "DELETE", "path": "/Users/missing"},  # runs first, fails
            _create_user("u", "alice"),  # runs second
            failOnErrors=1,
        ),
    )
    assert [r["status"] for r in results] == ["404"]
    assert await _count(scim, "Users") == 0


async def test_without_fail_on_errors_every_operation_runs(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            *({"method": "DELETE", "path": f"/Users/missing-{n}"} for n in range(3)),
            _create_user("u1", "one"),
        ),
    )
    assert [r["status"] for r in results] == ["404", "404", "404", "201"]


# --- per-operation statuses -------------------------------------------------------------


async def test_each_operation_answers_its_own_status(scim: Scim) -> None:
    await scim.create_user("taken")
    victim = await scim.create_user("victim")
    target = await scim.create_user("target")
    results = await _run(
        scim,
        _bulk(
            _create_user("new", "new"),
            {
                "method": "PUT",
                "path": f"/Users/{target['id']}",
                "data": {"schemas": [USER], "userName": "target", "title": "Put"},
            },
            _patch(
                f"/Users/{target['id']}", {"op": "replace", "path": "title", "value": "Patched"}
            ),
            {"method": "DELETE", "path": f"/Users/{victim['id']}"},
            {"method": "DELETE", "path": "/Users/does-not-exist"},
            _create_user("dup", "TAKEN"),
            {
                "method": "PUT",
                "path": f"/Users/{target['id']}",
                "version": 'W/"99"',
                "data": {"schemas": [USER], "userName": "target"},
            },
            {"method": "POST", "bulkId": "bad", "path": "/Users", "data": {"schemas": [USER]}},
        ),
    )
    created, put, patched, deleted, missing, duplicate, stale, invalid = results
    assert created["status"] == "201" and created["version"] == 'W/"1"'
    assert put == {
        "method": "PUT",
        "version": 'W/"2"',
        "location": target["meta"]["location"],
        "status": "200",
    }
    assert patched == {
        "method": "PATCH",
        "version": 'W/"3"',
        "location": target["meta"]["location"],
        "status": "200",
    }
    assert deleted == {"method": "DELETE", "location": victim["meta"]["location"], "status": "204"}
    assert _failed(missing, 404) == "Users 'does-not-exist' not found"
    assert missing["location"].endswith("/scim/v2/acme/Users/does-not-exist")
    _failed(duplicate, 409, "uniqueness")
    assert duplicate["bulkId"] == "dup" and "location" not in duplicate
    _failed(stale, 412)
    assert stale["location"] == target["meta"]["location"]
    assert "userName" in _failed(invalid, 400, "invalidValue")
    body = await (await scim.get(f"/Users/{target['id']}")).json()
    assert (body["title"], body["meta"]["version"]) == ("Patched", 'W/"3"')
    assert (await scim.get(f"/Users/{victim['id']}")).status == 404


async def test_errors_match_the_single_request_errors(scim: Scim) -> None:
    target = await scim.create_user("target")
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "frobnicate", "path": "title"}]}
    single = await (await scim.patch(f"/Users/{target['id']}", patch)).json()
    results = await _run(
        scim, _bulk({"method": "PATCH", "path": f"/Users/{target['id']}", "data": patch})
    )
    assert results[0]["status"] == single["status"]
    assert results[0]["response"] == single


async def test_a_matching_version_acts_as_if_match(scim: Scim) -> None:
    user = await scim.create_user("alice")
    group = await scim.create_group("staff")
    results = await _run(
        scim,
        _bulk(
            _patch(
                f"/Users/{user['id']}",
                {"op": "replace", "path": "title", "value": "x"},
                version='W/"1"',
            ),
            _patch(
                f"/Users/{user['id']}",
                {"op": "replace", "path": "title", "value": "y"},
                version='W/"1"',
            ),
            {"method": "DELETE", "path": f"/Groups/{group['id']}", "version": 'W/"7"'},
            {
                "method": "PUT",
                "path": f"/Users/{user['id']}",
                "version": 'W/"2"',
                "data": {"schemas": [USER], "userName": "alice", "title": "z"},
            },
        ),
    )
    assert results[0]["status"] == "200" and results[0]["version"] == 'W/"2"'
    assert "If-Match" in _failed(results[1], 412)
    _failed(results[2], 412)
    assert results[3]["status"] == "200" and results[3]["version"] == 'W/"3"'
    assert (await scim.get(f"/Groups/{group['id']}")).status == 200
    assert (await (await scim.get(f"/Users/{user['id']}")).json())["title"] == "z"


async def test_a_post_without_bulkid_fails_alone_with_400(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            {"method": "POST", "path": "/Users", "data": {"schemas": [USER], "userName": "nobulk"}},
            _create_user("u1", "alice"),
        ),
    )
    assert _failed(results[0], 400, "invalidValue") == "a POST operation requires a bulkId"
    assert results[0]["method"] == "POST" and "bulkId" not in results[0]
    assert results[1]["status"] == "201"
    assert await _count(scim, "Users") == 1


async def test_a_repeated_bulkid_fails_the_later_post(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_user("u1", "first"),
            _create_user("u1", "second"),
            _create_group("g", "g", ["bulkId:u1"]),
        ),
    )
    assert results[0]["status"] == "201"
    assert "already used" in _failed(results[1], 400, "invalidValue")
    assert await _member_ids(scim, _id(results[2])) == {_id(results[0])}


@pytest.mark.parametrize(
    ("operation", "scim_type", "detail"),
    [
        ({"method": "GET", "path": "/Users/x"}, "invalidValue", "method is one of"),
        ({"path": "/Users/x"}, "invalidValue", "method is one of"),
        ({"method": "DELETE"}, "invalidValue", "path is required"),
        ({"method": "DELETE", "path": "/Widgets/1"}, "invalidPath", "names no Users or Groups"),
        ({"method": "DELETE", "path": "/Users"}, "invalidPath", "targets /Users/{id}"),
        (
            {"method": "POST", "bulkId": "b", "path": "/Users/1", "data": {}},
            "invalidPath",
            "a POST targets /Users",
        ),
        ({"method": "PUT", "path": "/Users/1"}, "invalidValue", "data is required"),
        ({"method": "PUT", "path": "/Users/1", "data": []}, "invalidSyntax", "JSON object"),
        ({"method": "DELETE", "path": "/Users/1", "version": 3}, "invalidValue", "version"),
        ("DELETE /Users/1", "invalidSyntax", "JSON object"),
    ],
)
async def test_a_malformed_operation_fails_alone_with_400(
    scim: Scim, operation: Any, scim_type: str, detail: str
) -> None:
    results = await _run(scim, _bulk(operation, _create_user("u1", "alice")))
    assert detail in _failed(results[0], 400, scim_type)
    assert results[1]["status"] == "201"


async def test_lowercase_method_and_attribute_names_are_accepted(scim: Scim) -> None:
    results = await _run(
        scim,
        {
            "schemas": [BULK_REQUEST],
            "operations": [
                {
                    "Method": "post",
                    "BULKID": "u1",
                    "Path": "/Users",
                    "Data": {"schemas": [USER], "userName": "alice"},
                }
            ],
        },
    )
    assert [(r["method"], r["bulkId"], r["status"]) for r in results] == [("POST", "u1", "201")]


# --- the request as a whole -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"schemas": [BULK_REQUEST]}, "invalidSyntax"),
        ({"schemas": [BULK_REQUEST], "Operations": {}}, "invalidSyntax"),
        (
            {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []},
            "invalidValue",
        ),
        ({"schemas": [BULK_REQUEST], "Operations": [], "failOnErrors": 0}, "invalidValue"),
        ({"schemas": [BULK_REQUEST], "Operations": [], "failOnErrors": "1"}, "invalidValue"),
        ([], "invalidSyntax"),
    ],
)
async def test_a_malformed_bulk_request_is_400(scim: Scim, body: Any, scim_type: str) -> None:
    await bulk_error(await scim.post("/Bulk", body), 400, scim_type)


async def test_an_empty_bulk_request_answers_no_operations(scim: Scim) -> None:
    assert await _run(scim, _bulk()) == []


async def test_bulk_requires_the_tenant_token(scim: Scim, other_scim: Scim) -> None:
    response = await scim.client.post(
        "/scim/v2/acme/Bulk", json=_bulk(), headers=other_scim.headers()
    )
    await bulk_error(response, 401)


async def test_bulk_only_accepts_post(scim: Scim) -> None:
    response = await scim.get("/Bulk")
    await bulk_error(response, 405)
    assert response.headers["Allow"] == "POST"


async def test_bulk_cannot_touch_another_tenants_resources(scim: Scim, other_scim: Scim) -> None:
    theirs = await other_scim.create_user("outsider")
    their_group = await other_scim.create_group("their-group")
    path = f"/Users/{theirs['id']}"
    results = await _run(
        scim,
        _bulk(
            {"method": "PUT", "path": path, "data": {"schemas": [USER], "userName": "mine"}},
            _patch(path, {"op": "replace", "path": "title", "value": "pwned"}),
            {"method": "DELETE", "path": path},
            {"method": "DELETE", "path": f"/Groups/{their_group['id']}"},
            _create_group("g", "mine", [theirs["id"]]),
        ),
    )
    for result in results[:4]:
        _failed(result, 404)
    assert "unknown member id" in _failed(results[4], 400, "invalidValue")
    body = await (await other_scim.get(path)).json()
    assert (body["userName"], body.get("title"), body["meta"]["version"]) == (
        "outsider",
        None,
        'W/"1"',
    )
    assert (await other_scim.get(f"/Groups/{their_group['id']}")).status == 200


async def test_bulk_creates_land_in_the_callers_tenant(scim: Scim, other_scim: Scim) -> None:
    results = await _run(scim, _bulk(_create_user("u1", "alice")))
    assert results[0]["location"].endswith(f"/scim/v2/acme/Users/{_id(results[0])}")
    assert (await other_scim.get(f"/Users/{_id(results[0])}")).status == 404
    assert await _count(other_scim, "Users") == 0


# --- limits -----------------------------------------------------------------------------


@pytest.fixture
async def small_limits(aiohttp_client: Any, settings: Settings, mongo_db: Any) -> Scim:
    """A server with Bulk limits small enough to cross in a test."""
    limited = replace(
        settings, max_body_bytes=2_000, bulk_max_operations=3, bulk_max_payload_bytes=6_000
    )
    client: TestClient = await aiohttp_client(create_app(limited))
    tenant = await make_tenant(client, "acme")
    return Scim(client, "acme", tenant["token"])


async def test_more_operations_than_max_operations_is_413(small_limits: Scim) -> None:
    body = _bulk(*(_create_user(f"u{n}", f"user{n}") for n in range(4)))
    error = await bulk_error(await small_limits.post("/Bulk", body), 413)
    assert error["detail"] == "the request holds 4 operations; the limit is 3 (maxOperations)"
    assert await _count(small_limits, "Users") == 0


async def test_max_operations_itself_is_accepted(small_limits: Scim) -> None:
    body = _bulk(*(_create_user(f"u{n}", f"user{n}") for n in range(3)))
    assert [r["status"] for r in await _run(small_limits, body)] == ["201"] * 3


async def test_a_payload_over_max_payload_size_is_413_before_reading(small_limits: Scim) -> None:
    body = orjson.dumps(_bulk(_create_user("u1", "x" * 7_000)))
    response = await small_limits.post(
        "/Bulk", data=body, headers={"Content-Type": "application/scim+json"}
    )
    error = await bulk_error(response, 413)
    assert error["detail"] == f"the body is {len(body)} bytes; the limit is 6000"
    assert await _count(small_limits, "Users") == 0


async def test_a_chunked_payload_over_max_payload_size_is_413(small_limits: Scim) -> None:
    body = orjson.dumps(_bulk(_create_user("u1", "x" * 7_000)))

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1_000):
            yield body[start : start + 1_000]

    response = await small_limits.post(
        "/Bulk", data=chunks(), headers={"Content-Type": "application/scim+json"}
    )
    await bulk_error(response, 413)
    assert await _count(small_limits, "Users") == 0


async def test_bulk_has_its_own_body_limit_and_other_routes_keep_theirs(small_limits: Scim) -> None:
    # 2,000 < body < 6,000: too large for a single POST, fine for Bulk.
    user = {"schemas": [USER], "userName": "big", "displayName": "x" * 3_000}
    await bulk_error(await small_limits.post("/Users", user), 413)
    results = await _run(
        small_limits, _bulk({"method": "POST", "bulkId": "u1", "path": "/Users", "data": user})
    )
    assert results[0]["status"] == "201"


async def test_a_chunked_body_on_another_route_keeps_max_body_bytes(small_limits: Scim) -> None:
    body = orjson.dumps({"schemas": [USER], "userName": "big", "displayName": "x" * 3_000})

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    response = await small_limits.post(
        "/Users", data=chunks(), headers={"Content-Type": "application/scim+json"}
    )
    await bulk_error(response, 413)


# --- discovery --------------------------------------------------------------------------


async def test_service_provider_config_advertises_bulk_with_its_limits(scim: Scim) -> None:
    body = await (await scim.get("/ServiceProviderConfig")).json()
    assert body["bulk"] == {
        "supported": True,
        "maxOperations": 1000,
        "maxPayloadSize": 4 * 1024 * 1024,
    }


async def test_service_provider_config_reports_configured_bulk_limits(small_limits: Scim) -> None:
    body = await (await small_limits.get("/ServiceProviderConfig")).json()
    assert body["bulk"] == {"supported": True, "maxOperations": 3, "maxPayloadSize": 6_000}


# --- user creations in one batch --------------------------------------------------------
# Consecutive independent POSTs of users are created together (core/bulk.py); each still
# answers exactly what it would answer alone.


async def test_users_created_in_one_batch_answer_as_each_would_alone(scim: Scim) -> None:
    results = await _run(scim, _bulk(*(_create_user(f"u{n}", f"user{n}") for n in range(5))))
    assert [(r["bulkId"], r["status"], r["version"]) for r in results] == [
        (f"u{n}", "201", 'W/"1"') for n in range(5)
    ]
    for n, result in enumerate(results):
        stored = await (await scim.get(f"/Users/{_id(result)}")).json()
        assert stored["userName"] == f"user{n}"
        assert stored["meta"]["location"] == result["location"]
    assert len({_id(result) for result in results}) == 5


async def test_a_user_name_repeated_in_a_batch_fails_that_operation_alone(scim: Scim) -> None:
    results = await _run(
        scim,
        _bulk(
            _create_user("a", "ada"),
            _create_user("b", "bob"),
            _create_user("c", "ADA"),
            _create_user("d", "dan"),
        ),
    )
    assert [r["status"] for r in results] == ["201", "201", "409", "201"]
    _failed(results[2], 409, "uniqueness")
    assert await _count(scim, "Users") == 3


async def test_a_batch_creating_an_existing_user_name_fails_that_operation_alone(
    scim: Scim,
) -> None:
    await scim.create_user("taken")
    single = await scim.post("/Users", {"schemas": [USER], "userName": "taken"})
    results = await _run(
        scim,
        _bulk(_create_user("a", "ada"), _create_user("t", "taken"), _create_user("b", "bob")),
    )
    assert [r["status"] for r in results] == ["201", "409", "201"]
    assert results[1]["response"] == await single.json()
    assert await _count(scim, "Users") == 3


async def test_an_invalid_body_in_a_batch_fails_that_operation_alone(scim: Scim) -> None:
    invalid = {"schemas": [USER], "userName": "bad", "emails": "not a list"}
    single = await scim.post("/Users", invalid)
    results = await _run(
        scim,
        _bulk(
            _create_user("a", "ada"),
            {"method": "POST", "bulkId": "bad", "path": "/Users", "data": invalid},
            _create_user("b", "bob"),
        ),
    )
    assert [r["status"] for r in results] == ["201", str(single.status), "201"]
    assert results[1]["response"] == await single.json()


async def test_users_referring_to_users_of_the_same_request_get_their_ids(scim: Scim) -> None:
    manager = {"value": "bulkId:boss", "$ref": "https://idp.example/Users/boss"}
    results = await _run(
        scim,
        _bulk(
            _create_user("boss", "boss"),
            _create_user(
                "emp", "employee", schemas=[USER, ENTERPRISE], **{ENTERPRISE: {"manager": manager}}
            ),
            _create_user("peer", "peer"),
            _create_group("g", "team", ["bulkId:emp", "bulkId:peer", "bulkId:late"]),
            _create_user("late", "late"),
        ),
    )
    assert [r["status"] for r in results] == ["201"] * 5, results
    employee = await (await scim.get(f"/Users/{_id(results[1])}")).json()
    assert employee[ENTERPRISE]["manager"]["value"] == _id(results[0])
    members = {_id(results[1]), _id(results[2]), _id(results[4])}
    assert await _member_ids(scim, _id(results[3])) == members


async def test_a_batch_stops_where_fail_on_errors_stops_the_run(scim: Scim) -> None:
    await scim.create_user("taken")
    results = await _run(
        scim,
        _bulk(
            _create_user("t1", "taken"),
            _create_user("a", "ada"),
            _create_user("t2", "TAKEN"),
            _create_user("b", "bob"),
            _create_user("c", "cy"),
            failOnErrors=2,
        ),
    )
    assert [r["status"] for r in results] == ["409", "201", "409"]
    assert await _count(scim, "Users") == 2


async def test_a_batch_over_the_seat_limit_creates_those_that_fit_and_refuses_the_rest_in_order(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    await set_seats(scim.client, 3)
    results = await _run(
        scim,
        _bulk(
            _create_user("u0", "u0"),
            _create_user("off", "off", active=False),  # holds no seat
            *(_create_user(f"u{n}", f"u{n}") for n in range(1, 5)),
        ),
    )
    assert [r["status"] for r in results] == ["201", "201", "201", "201", "403", "403"]
    single = await scim.post("/Users", {"schemas": [USER], "userName": "u9"})
    assert results[4]["response"] == results[5]["response"] == await single.json()
    assert await counter(mongo_db) == await active_in_store(mongo_db) == 3
    assert (await usage(scim.client))["used"] == 3


async def test_seats_given_back_by_failed_inserts_go_to_the_next_users_in_order(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    """One create after the other: a failed create's seat is the next user's."""
    await scim.create_user("taken")
    await set_seats(scim.client, 3)
    results = await _run(
        scim,
        _bulk(
            _create_user("t", "taken"),
            _create_user("a", "ada"),
            _create_user("a2", "Ada"),
            _create_user("b", "bob"),
            _create_user("c", "cy"),
        ),
    )
    assert [r["status"] for r in results] == ["409", "201", "409", "201", "403"]
    assert await counter(mongo_db) == await active_in_store(mongo_db) == 3


async def test_concurrent_batches_never_take_more_seats_than_there_are(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    for round_ in range(10):
        free = 7
        await set_seats(scim.client, await active_in_store(mongo_db) + free)
        requests = [
            _run(scim, _bulk(*(_create_user(f"u{n}", f"r{round_}-b{b}-u{n}") for n in range(4))))
            for b in range(4)
        ]
        answered = [r["status"] for results in await asyncio.gather(*requests) for r in results]
        assert sorted(answered) == ["201"] * free + ["403"] * (16 - free), f"round {round_}"
        assert await counter(mongo_db) == await active_in_store(mongo_db)
