"""Email addresses are checked for syntax only: directory domains like ``corp.local`` are real.

Active Directory and Entra-synced directories commonly use ``.local`` and other names
reserved for private use; an identity provider provisions those addresses as they are.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.scim import Scim, scim_error
from tests.support.urns import BULK_REQUEST as BULK
from tests.support.urns import PATCH_OP, USER

PRIVATE_ADDRESSES = ["jane@corp.local", "x@example.test", "a@localhost", "b@host.internal"]
MALFORMED = ["not-an-email", "jane@", "@corp.local", "jane@@corp.local", "jane@corp..local"]


def _user(address: str, user_name: str = "jane") -> dict[str, Any]:
    return {"schemas": [USER], "userName": user_name, "emails": [{"value": address}]}


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def _emails(scim: Scim, user_id: str) -> list[str]:
    response = await scim.get(f"/Users/{user_id}")
    assert response.status == 200
    return [email["value"] for email in (await response.json()).get("emails", [])]


@pytest.mark.parametrize("address", PRIVATE_ADDRESSES)
async def test_a_private_domain_address_is_accepted_by_post_and_put(
    scim: Scim, address: str
) -> None:
    created = await scim.post("/Users", _user(address))
    assert created.status == 201, await created.text()
    user_id = (await created.json())["id"]
    assert await _emails(scim, user_id) == [address]

    replaced = await scim.put(f"/Users/{user_id}", _user(f"other.{address}"))
    assert replaced.status == 200, await replaced.text()
    assert await _emails(scim, user_id) == [f"other.{address}"]


@pytest.mark.parametrize("address", PRIVATE_ADDRESSES)
async def test_a_private_domain_address_is_accepted_by_patch(scim: Scim, address: str) -> None:
    user_id = (await scim.create_user("jane"))["id"]
    operations: list[dict[str, Any]] = [
        {"op": "add", "path": "emails", "value": [{"value": address, "type": "work"}]},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": f"1.{address}"},
        {"op": "replace", "value": {"emails": [{"value": f"2.{address}"}]}},
    ]
    expected = [address, f"1.{address}", f"2.{address}"]
    for operation, stored in zip(operations, expected, strict=True):
        response = await scim.patch(f"/Users/{user_id}", _patch(operation))
        assert response.status == 200, await response.text()
        assert await _emails(scim, user_id) == [stored]


async def test_private_domain_addresses_are_accepted_by_bulk(scim: Scim) -> None:
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": f"u{n}", "data": _user(address, f"u{n}")}
        for n, address in enumerate(PRIVATE_ADDRESSES)
    ]
    operations.append(
        {
            "method": "PATCH",
            "path": "/Users/bulkId:u0",
            "data": _patch({"op": "add", "path": "emails", "value": [{"value": "z@corp.local"}]}),
        }
    )
    response = await scim.post("/Bulk", {"schemas": [BULK], "Operations": operations})

    assert response.status == 200
    results = (await response.json())["Operations"]
    assert [result["status"] for result in results] == ["201"] * 4 + ["200"], results


@pytest.mark.parametrize("address", MALFORMED)
async def test_a_malformed_address_is_still_refused_everywhere(scim: Scim, address: str) -> None:
    await scim_error(await scim.post("/Users", _user(address)), 400, "invalidValue")
    user_id = (await scim.create_user("jane"))["id"]
    await scim_error(await scim.put(f"/Users/{user_id}", _user(address)), 400, "invalidValue")
    patch = _patch({"op": "add", "path": "emails", "value": [{"value": address}]})
    await scim_error(await scim.patch(f"/Users/{user_id}", patch), 400)
    bulk = {
        "schemas": [BULK],
        "Operations": [{"method": "POST", "path": "/Users", "bulkId": "u", "data": _user(address)}],
    }
    response = await scim.post("/Bulk", bulk)
    assert [r["status"] for r in (await response.json())["Operations"]] == ["400"]
    assert await _emails(scim, user_id) == []


async def test_a_private_domain_address_can_be_filtered_on(scim: Scim) -> None:
    assert (await scim.post("/Users", _user("Jane@Corp.Local"))).status == 201
    for expression in ['emails eq "jane@corp.local"', 'emails[value eq "jane@corp.local"]']:
        response = await scim.get("/Users", params={"filter": expression})
        assert response.status == 200, await response.text()
        assert [u["userName"] for u in (await response.json())["Resources"]] == ["jane"]

    refused = await scim.get("/Users", params={"filter": 'emails eq "not-an-email"'})
    await scim_error(refused, 400, "invalidFilter")
