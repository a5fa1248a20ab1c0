"""What the server does with what no schema declares: unknown URNs are ignored, unknown
attributes refused as ``invalidSyntax``.

The decision (README, "Unknown schema URNs and attributes"): RFC 7644 §3.12 names
``invalidSyntax`` for a body that "did not conform to the request schema", which an attribute
no schema declares is; ``invalidValue`` is for a value the attribute cannot take. An unknown URN
listed in ``schemas`` names no data, and Microsoft Entra ID lists its ADSCIM URN on every group,
so it is accepted and left out of the stored resource.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.scim import Scim, scim_error
from tests.support.urns import BULK_REQUEST, GROUP, SEARCH, USER

ENTRA_GROUP_URN = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


def user(**attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": "ada@example.com", **attributes}


@pytest.mark.parametrize(
    "extra",
    [{"nickNme": "typo"}, {"urn:example:unknown:2.0:User": {"level": 1}}],
    ids=["core-attribute", "unknown-extension"],
)
async def test_an_unknown_attribute_on_create_is_invalid_syntax(
    scim: Scim, extra: dict[str, Any]
) -> None:
    body = await scim_error(await scim.post("/Users", user(**extra)), 400, "invalidSyntax")
    assert next(iter(extra)) in body["detail"]


async def test_an_unknown_attribute_on_replace_is_invalid_syntax(scim: Scim) -> None:
    created = await scim.create_user("ada@example.com")
    response = await scim.put(f"/Users/{created['id']}", user(nickNme="typo"))
    await scim_error(response, 400, "invalidSyntax")


async def test_an_unknown_attribute_in_a_bulk_operation_is_invalid_syntax(scim: Scim) -> None:
    bulk = {
        "schemas": [BULK_REQUEST],
        "Operations": [{"method": "POST", "path": "/Users", "bulkId": "a", "data": user(x=1)}],
    }
    response = await scim.post("/Bulk", bulk)
    assert response.status == 200, await response.text()
    result = (await response.json())["Operations"][0]
    assert result["status"] == "400"
    assert result["response"]["scimType"] == "invalidSyntax"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/Users", user()),
        ("/Groups", {"schemas": [GROUP], "displayName": "Engineering"}),
    ],
    ids=["user", "group"],
)
async def test_an_unknown_urn_in_schemas_is_accepted_and_not_kept(
    scim: Scim, path: str, body: dict[str, Any]
) -> None:
    body = {**body, "schemas": [*body["schemas"], ENTRA_GROUP_URN, "urn:example:unknown"]}
    response = await scim.post(path, body)
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["schemas"] == body["schemas"][:1]
    fetched = await (await scim.get(f"{path}/{created['id']}")).json()
    assert fetched["schemas"] == body["schemas"][:1]


async def test_an_unknown_member_of_a_search_request_is_invalid_syntax(scim: Scim) -> None:
    search = {"schemas": [SEARCH], "filter": "userName pr", "fitler": "typo"}
    body = await scim_error(await scim.post("/Users/.search", search), 400, "invalidSyntax")
    assert "fitler" in body["detail"]


async def test_a_wrong_value_of_a_declared_attribute_stays_invalid_value(scim: Scim) -> None:
    response = await scim.post("/Users", user(active="sometimes"))
    await scim_error(response, 400, "invalidValue")
