"""A group's displayName is unique in its tenant, compared case-insensitively (issue 13).

The Microsoft SCIM validator ("Create a duplicate Group"), Entra's provisioning tutorial and
IPSIE expect a second group of a taken name to be refused with 409 ``uniqueness``, whether it
arrives by POST, PUT, a PATCH rename or Bulk. A tenant that needs duplicates may allow them
(``PUT /admin/tenants/{name}/group-names``); a database that already holds duplicates keeps
them, reports them at start-up and refuses new ones.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.scim import ADMIN, Scim, make_tenant, scim_error
from tests.support.urns import BULK_REQUEST, GROUP, PATCH_OP


def _group(display_name: str) -> dict[str, Any]:
    return {"schemas": [GROUP], "displayName": display_name}


async def _allow_duplicates(scim: Scim, allowed: bool) -> dict[str, Any]:
    response = await scim.client.put(
        f"/admin/tenants/{scim.tenant}/group-names",
        json={"allow_duplicates": allowed},
        headers=ADMIN,
    )
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def test_a_second_group_of_a_taken_name_in_any_case_is_409_uniqueness(scim: Scim) -> None:
    await scim.create_group("Engineering")
    for name in ("Engineering", "ENGINEERING", "engineering"):
        response = await scim.post("/Groups", _group(name))
        body = await scim_error(response, 409, "uniqueness")
        assert "displayName" in body["detail"]
    listing = await (await scim.get("/Groups")).json()
    assert listing["totalResults"] == 1


async def test_another_tenant_may_use_the_same_group_name(scim: Scim, other_scim: Scim) -> None:
    await scim.create_group("Engineering")
    response = await other_scim.post("/Groups", _group("Engineering"))
    assert response.status == 201, await response.text()


async def test_renaming_a_group_onto_a_taken_name_is_409_by_put_and_by_patch(scim: Scim) -> None:
    await scim.create_group("Sales")
    marketing = await scim.create_group("Marketing")
    path = f"/Groups/{marketing['id']}"
    put = await scim.put(path, _group("SALES"))
    await scim_error(put, 409, "uniqueness")
    renames = [
        {"op": "replace", "path": "displayName", "value": "sales"},
        {"op": "replace", "value": {"displayName": "Sales"}},  # Okta's path-less rename
    ]
    for operation in renames:
        patch = await scim.patch(path, {"schemas": [PATCH_OP], "Operations": [operation]})
        await scim_error(patch, 409, "uniqueness")
    kept = await (await scim.get(path)).json()
    assert kept["displayName"] == "Marketing"
    assert kept["meta"]["version"] == marketing["meta"]["version"]


async def test_a_group_may_be_renamed_to_its_own_name_in_another_case(scim: Scim) -> None:
    sales = await scim.create_group("Sales")
    response = await scim.put(f"/Groups/{sales['id']}", _group("SALES"))
    assert response.status == 200, await response.text()
    assert (await response.json())["displayName"] == "SALES"


async def test_a_bulk_with_two_groups_of_one_name_answers_409_for_the_second(scim: Scim) -> None:
    bulk = {
        "schemas": [BULK_REQUEST],
        "Operations": [
            {"method": "POST", "bulkId": f"g{n}", "path": "/Groups", "data": _group(name)}
            for n, name in enumerate(["Ops", "OPS", "Other"])
        ],
    }
    response = await scim.post("/Bulk", bulk)
    assert response.status == 200, await response.text()
    statuses = [result["status"] for result in (await response.json())["Operations"]]
    assert statuses == ["201", "409", "201"]
    second = (await response.json())["Operations"][1]["response"]
    assert second["scimType"] == "uniqueness"


async def test_concurrent_creations_of_one_name_make_exactly_one_group(scim: Scim) -> None:
    for round_number in range(5):
        name = f"Race {round_number}"
        responses = await asyncio.gather(*(scim.post("/Groups", _group(name)) for _ in range(8)))
        statuses = sorted(response.status for response in responses)
        assert statuses == [201] + [409] * 7
    listing = await (await scim.get("/Groups")).json()
    assert listing["totalResults"] == 5


async def test_concurrent_renames_onto_one_name_leave_exactly_one_group_of_it(scim: Scim) -> None:
    groups = [await scim.create_group(f"Team {n}") for n in range(6)]
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName"}]}
    body["Operations"][0]["value"] = "Winners"
    responses = await asyncio.gather(*(scim.patch(f"/Groups/{g['id']}", body) for g in groups))
    assert sorted(response.status for response in responses) == [204] + [409] * 5
    found = await (await scim.get('/Groups?filter=displayName eq "winners"')).json()
    assert found["totalResults"] == 1


async def test_a_tenant_allowing_duplicates_may_create_and_rename_onto_taken_names(
    scim: Scim,
) -> None:
    assert await _allow_duplicates(scim, True) == {"allow_duplicates": True}
    first = await scim.create_group("Shared")
    second = await scim.post("/Groups", _group("SHARED"))
    assert second.status == 201, await second.text()
    other = await scim.create_group("Other")
    renamed = await scim.put(f"/Groups/{other['id']}", _group("shared"))
    assert renamed.status == 200, await renamed.text()
    found = await (await scim.get('/Groups?filter=displayName eq "Shared"')).json()
    assert found["totalResults"] == 3
    # Turned off again, the groups it allowed stay, and a new duplicate is refused.
    assert await _allow_duplicates(scim, False) == {"allow_duplicates": False}
    await scim_error(await scim.post("/Groups", _group("Shared")), 409, "uniqueness")
    assert (await scim.get(f"/Groups/{first['id']}")).status == 200


async def test_the_duplicates_setting_is_read_and_defaults_to_off(scim: Scim) -> None:
    path = f"/admin/tenants/{scim.tenant}/group-names"
    response = await scim.client.get(path, headers=ADMIN)
    assert response.status == 200
    assert await response.json() == {"allow_duplicates": False}
    for bad in ({"allow_duplicates": "yes"}, {}):
        refused = await scim.client.put(path, json=bad, headers=ADMIN)
        await scim_error(refused, 400, "invalidValue")
    unknown = await scim.client.get("/admin/tenants/nobody/group-names", headers=ADMIN)
    assert unknown.status == 404
    assert (await scim.client.get(path)).status == 401


async def test_a_database_already_holding_duplicates_starts_reports_them_and_refuses_more(
    aiohttp_client: Any,
    settings: Settings,
    mongo_db: AsyncDatabase[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Groups stored before names were unique keep their names; new duplicates are refused."""
    created = {"created": None, "lastModified": None, "version": 1}
    await mongo_db["groups"].insert_many(
        [
            {
                "_id": group_id,
                "tenant": "acme",
                "meta": created,
                "r": {"displayName": name},
                "c": {"displayName": name.lower()},
            }
            for group_id, name in (("g1", "Legacy"), ("g2", "LEGACY"), ("g3", "Unique"))
        ]
    )
    with caplog.at_level(logging.WARNING):
        client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
        tenant = await make_tenant(client, "acme")
    report = " ".join(record.getMessage() for record in caplog.records)
    assert "duplicate" in report and "legacy" in report and "g1" in report and "g2" in report
    scim = Scim(client, "acme", tenant["token"])
    for name in ("legacy", "Unique"):
        await scim_error(await scim.post("/Groups", _group(name)), 409, "uniqueness")
    assert (await scim.post("/Groups", _group("Fresh"))).status == 201
