"""A tenant's own User extension: defined through the admin API, served to that tenant alone.

The tenant's ``/Schemas`` and ``/ResourceTypes`` advertise it; its users take, keep, return,
PATCH, filter and sort its attributes as they do the enterprise extension's, through SCIM and
Bulk alike; another tenant refuses its URN as any unknown one. A definition the server could
not keep or enforce is a 400; changing what users hold values of is a 409.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.models import storage_key
from tests.support.scim import ADMIN, Scim, scim_error
from tests.support.urns import BULK_REQUEST, ENTERPRISE, PATCH_OP, SEARCH, USER
from tests.support.user_extensions import ACME, ACME_SCHEMA, define, extensions_path


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json() if status != 204 else None


async def acme_user(scim: Scim, user_name: str, **values: Any) -> dict[str, Any]:
    """A user of ``scim``'s tenant carrying ``values`` in the extension."""
    body = {"schemas": [USER, ACME], "userName": user_name, ACME: values}
    return dict(await ok(await scim.post("/Users", body), 201))


async def names(scim: Scim, query: str) -> list[str]:
    page = await ok(await scim.get(f"/Users?{query}"))
    return [user["userName"] for user in page["Resources"]]


@pytest.fixture
async def acme(scim: Scim) -> Scim:
    """``scim``'s tenant with the ``ACME`` extension defined."""
    await ok(await define(scim))
    return scim


async def test_the_extension_is_advertised_in_its_tenants_discovery_only(
    acme: Scim, other_scim: Scim
) -> None:
    schemas = {s["id"]: s for s in (await ok(await acme.get("/Schemas")))["Resources"]}
    schema = schemas[ACME]
    assert schema["name"] == "AcmeUser" and schema["description"] == ACME_SCHEMA["description"]
    attributes = {a["name"]: a for a in schema["attributes"]}
    assert attributes["badge"]["description"] == "Badge number"
    assert attributes["level"]["type"] == "integer" and attributes["skills"]["multiValued"]
    assert [s["name"] for s in attributes["site"]["subAttributes"]] == ["code", "floor"]
    assert (await ok(await acme.get(f"/Schemas/{ACME}")))["id"] == ACME
    user_type = await ok(await acme.get("/ResourceTypes/User"))
    assert user_type["schemaExtensions"] == [
        {"schema": ENTERPRISE, "required": False},
        {"schema": ACME, "required": False},
    ]

    assert ACME not in {s["id"] for s in (await ok(await other_scim.get("/Schemas")))["Resources"]}
    others = await ok(await other_scim.get("/ResourceTypes/User"))
    assert [e["schema"] for e in others["schemaExtensions"]] == [ENTERPRISE]
    body = {"schemas": [USER, ACME], "userName": "eve", ACME: {"badge": "B-1"}}
    await scim_error(await other_scim.post("/Users", body), 400, "invalidSyntax")


async def test_the_admin_reads_and_removes_the_definition(acme: Scim) -> None:
    listed = await ok(await acme.client.get(extensions_path(acme), headers=ADMIN))
    assert [d["id"] for d in listed["user_extensions"]] == [ACME]
    one = await ok(await acme.client.get(extensions_path(acme, ACME.upper()), headers=ADMIN))
    assert one["attributes"][0] == {
        "name": "badge",
        "type": "string",
        "multiValued": False,
        "description": "Badge number",
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
    }
    await ok(await acme.client.delete(extensions_path(acme, ACME), headers=ADMIN), 204)
    assert ACME not in {s["id"] for s in (await ok(await acme.get("/Schemas")))["Resources"]}
    await scim_error(await acme.client.get(extensions_path(acme, ACME), headers=ADMIN), 404)
    await scim_error(await acme.client.delete(extensions_path(acme, ACME), headers=ADMIN), 404)
    await scim_error(
        await acme.client.get("/admin/tenants/nobody/user-extensions", headers=ADMIN), 404
    )


def attribute(**fields: Any) -> dict[str, Any]:
    return {"attributes": [{"name": "x", "type": "string", "multiValued": False, **fields}]}


@pytest.mark.parametrize(
    ("urn", "schema"),
    [
        (ENTERPRISE, attribute()),
        (USER, attribute()),
        ("urn:ietf:params:scim:schemas:core:2.0:Thing", attribute()),
        ("urn:okta:scim:schemas:core:1.0:Role", attribute()),
        ("not-a-urn", attribute()),
        ("urn:acme:a b", attribute()),
        ("urn:acme:" + "x" * 200, attribute()),
        (ACME, {"attributes": []}),
        (ACME, {"attributes": "badge"}),
        (ACME, {"id": "urn:acme:other", **attribute()}),
        (ACME, {"name": "", **attribute()}),
        (ACME, {"name": "Acme User", **attribute()}),
        (ACME, {"name": "acmeUser", **attribute()}),
        (ACME, {"name": "Emails", **attribute()}),
        (ACME, {"name": "EnterpriseUser", **attribute()}),
        ("urn:acme:2.0", attribute()),
        (ACME, attribute(name="1st")),
        (ACME, attribute(name="x" * 65)),
        (ACME, attribute(name="schemas")),
        (ACME, attribute(type="binary")),
        (ACME, attribute(type="money")),
        (ACME, attribute(uniqueness="server")),
        (ACME, attribute(mutability="sometimes")),
        (ACME, attribute(returned=7)),
        (ACME, attribute(type="reference", referenceTypes=["User"])),
        (ACME, attribute(type="complex")),
        (ACME, attribute(subAttributes=[{"name": "y", "type": "string"}])),
        (
            ACME,
            attribute(
                type="complex",
                subAttributes=[{"name": "y", "type": "complex", "subAttributes": []}],
            ),
        ),
        (ACME, {"attributes": [{"name": "a", "type": "string"}, {"name": "A", "type": "string"}]}),
        (ACME, {"attributes": [{"name": f"a{n}", "type": "string"} for n in range(101)]}),
        (ACME, {"attributes": ["badge"]}),
        (ACME, ["not", "an", "object"]),
    ],
)
async def test_a_bad_definition_is_a_400_and_changes_nothing(
    scim: Scim, urn: str, schema: Any
) -> None:
    await scim_error(await define(scim, urn, schema), 400)
    listed = await ok(await scim.client.get(extensions_path(scim), headers=ADMIN))
    assert listed["user_extensions"] == []


async def test_a_tenant_defines_at_most_five_extensions_each_of_its_own_name(
    scim: Scim,
) -> None:
    for n in range(5):
        await ok(await define(scim, f"urn:acme:Ext{n}", attribute()))
    await scim_error(await define(scim, "urn:acme:Ext5", attribute()), 400)
    await ok(await define(scim, "urn:acme:Ext4", attribute(description="redefined")))
    await ok(await scim.client.delete(extensions_path(scim, "urn:acme:Ext4"), headers=ADMIN), 204)
    named = {"name": "Ext0", **attribute()}
    await scim_error(await define(scim, "urn:acme:Other", named), 400)


async def test_users_take_keep_and_return_the_extensions_attributes(acme: Scim) -> None:
    values = {
        "badge": "B-1",
        "level": 3,
        "contractor": False,
        "hired": "2024-05-01T09:00:00Z",
        "skills": ["go", "sql"],
        "site": {"code": "PAR", "floor": 2},
    }
    created = await acme_user(acme, "ada", **values)
    assert created["schemas"] == [USER, ACME] and created[ACME] == values
    read = await ok(await acme.get(f"/Users/{created['id']}"))
    assert read[ACME] == values
    only = await ok(await acme.get(f"/Users/{created['id']}?attributes={ACME}:badge"))
    assert only[ACME] == {"badge": "B-1"}

    replaced = {"schemas": [USER, ACME], "userName": "ada", ACME: {"badge": "B-2"}}
    put = await ok(await acme.put(f"/Users/{created['id']}", replaced))
    assert put[ACME] == {"badge": "B-2"}
    assert (await ok(await acme.get(f"/Users/{created['id']}")))[ACME] == {"badge": "B-2"}


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"level": "three"}, "invalidValue"),
        ({"site": {"floor": 1}}, None),
        ({"unknown": 1}, "invalidSyntax"),
    ],
)
async def test_a_value_the_definition_refuses_is_a_400(
    acme: Scim, body: dict[str, Any], scim_type: str | None
) -> None:
    response = await acme.post("/Users", {"schemas": [USER, ACME], "userName": "bo", ACME: body})
    error = await scim_error(response, 400)
    assert scim_type is None or error.get("scimType") == scim_type


async def test_patch_reaches_the_extension_by_path_and_by_urn_keyed_value(acme: Scim) -> None:
    user = await acme_user(acme, "ada", badge="B-1")
    path = f"/Users/{user['id']}"

    async def patched(*operations: dict[str, Any]) -> dict[str, Any]:
        body = {"schemas": [PATCH_OP], "Operations": list(operations)}
        return dict(await ok(await acme.patch(path, body)))

    answer = await patched({"op": "replace", "path": f"{ACME}:level", "value": 4})
    assert answer[ACME] == {"badge": "B-1", "level": 4}
    answer = await patched({"op": "add", "path": f"{ACME}:skills", "value": ["rust"]})
    assert answer[ACME]["skills"] == ["rust"]
    answer = await patched({"op": "replace", "value": {ACME: {"badge": "B-9"}}})
    assert answer[ACME]["badge"] == "B-9" and answer[ACME]["level"] == 4
    answer = await patched({"op": "replace", "value": {f"{ACME}:site.code": "LYS"}})
    assert answer[ACME]["site"] == {"code": "LYS"}
    answer = await patched({"op": "remove", "path": f"{ACME}:skills"})
    assert "skills" not in answer[ACME]
    assert (await ok(await acme.get(path)))[ACME] == {
        "badge": "B-9",
        "level": 4,
        "site": {"code": "LYS"},
    }
    error = {"op": "replace", "path": f"{ACME}:level", "value": "high"}
    await scim_error(await acme.patch(path, {"schemas": [PATCH_OP], "Operations": [error]}), 400)


async def test_filters_and_sorts_run_on_the_extensions_attributes(acme: Scim) -> None:
    await acme_user(acme, "ada", badge="B-1", level=3, hired="2024-05-01T09:00:00Z", skills=["go"])
    await acme_user(acme, "bob", badge="b-2", level=1, hired="2023-01-01T00:00:00Z")
    await acme_user(acme, "cy", badge="C-3", level=2, site={"code": "PAR"})
    await acme.create_user("dee")

    assert await names(acme, f'filter={ACME}:badge eq "b-1"') == ["ada"]  # caseExact false
    assert await names(acme, f"filter={ACME}:level gt 1&sortBy=userName") == ["ada", "cy"]
    hired = f'filter={ACME}:hired gt "2024-01-01T00:00:00Z"'
    assert await names(acme, hired) == ["ada"]
    assert await names(acme, f'filter={ACME}:skills eq "go"') == ["ada"]
    assert await names(acme, f'filter={ACME}:site.code eq "par"') == ["cy"]
    assert await names(acme, f"filter={ACME}:badge pr&sortBy=userName") == ["ada", "bob", "cy"]
    assert await names(acme, 'filter=badge sw "c"') == ["cy"]  # found in the extension
    assert await names(acme, f"sortBy={ACME}:level&filter={ACME}:level pr") == ["bob", "cy", "ada"]
    descending = f"sortBy={ACME}:hired&sortOrder=descending&filter={ACME}:hired pr"
    assert await names(acme, descending) == ["ada", "bob"]
    search = {"schemas": [SEARCH], "filter": f"{ACME}:level lt 3", "sortBy": f"{ACME}:level"}
    page = await ok(await acme.post("/Users/.search", search))
    assert [u["userName"] for u in page["Resources"]] == ["bob", "cy"]
    root = await ok(
        await acme.post("/.search", {"schemas": [SEARCH], "filter": f"{ACME}:level eq 2"})
    )
    assert [u["userName"] for u in root["Resources"]] == ["cy"]
    await scim_error(await acme.get(f"/Users?sortBy={ACME}:site"), 400, "invalidValue")


async def test_another_tenant_refuses_to_filter_on_the_extension(
    acme: Scim, other_scim: Scim
) -> None:
    await scim_error(await other_scim.get(f'/Users?filter={ACME}:badge eq "x"'), 400)


async def test_bulk_writes_users_with_the_tenants_extension(acme: Scim) -> None:
    operations = [
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": f"u{n}",
            "data": {"schemas": [USER, ACME], "userName": f"bulk{n}", ACME: {"level": n}},
        }
        for n in range(3)
    ]
    operations.append(
        {
            "method": "PATCH",
            "path": "/Users/bulkId:u1",
            "data": {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": f"{ACME}:badge", "value": "B-7"}],
            },
        }
    )
    operations.append(
        {
            "method": "POST",
            "path": "/Users",
            "data": {"schemas": [USER, ACME], "userName": "bad", ACME: {"level": "x"}},
        }
    )
    body = {"schemas": [BULK_REQUEST], "Operations": operations}
    answer = await ok(await acme.post("/Bulk", body))
    assert [o["status"] for o in answer["Operations"]] == ["201", "201", "201", "200", "400"]
    assert await names(acme, f"sortBy={ACME}:level&filter={ACME}:level pr") == [
        "bulk0",
        "bulk1",
        "bulk2",
    ]
    assert await names(acme, f'filter={ACME}:badge eq "B-7"') == ["bulk1"]


async def test_an_attribute_users_hold_values_of_cannot_change_shape_or_go(
    acme: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    user = await acme_user(acme, "ada", level=3)
    kept = [a for a in ACME_SCHEMA["attributes"] if a["name"] != "level"]
    retyped = [
        {**a, "type": "string"} if a["name"] == "level" else a for a in ACME_SCHEMA["attributes"]
    ]
    recased = [
        {**a, "name": "Level"} if a["name"] == "level" else a for a in ACME_SCHEMA["attributes"]
    ]
    for attributes in (kept, retyped, recased):
        await scim_error(await define(acme, ACME, {**ACME_SCHEMA, "attributes": attributes}), 409)
    await scim_error(await acme.client.delete(extensions_path(acme, ACME), headers=ADMIN), 409)

    # What changes no stored value may change: a description, an attribute added or dropped
    # that no user holds.
    described = [
        {**a, "description": "Seniority"} if a["name"] == "level" else a
        for a in ACME_SCHEMA["attributes"]
        if a["name"] != "badge"
    ]
    added = [*described, {"name": "room", "type": "string", "multiValued": False}]
    await ok(await define(acme, ACME, {**ACME_SCHEMA, "attributes": added}))
    assert (await ok(await acme.get(f"/Users/{user['id']}")))[ACME] == {"level": 3}

    remove = {"op": "remove", "path": ACME}
    await ok(
        await acme.patch(f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": [remove]})
    )
    await ok(await acme.client.delete(extensions_path(acme, ACME), headers=ADMIN), 204)
    assert (await ok(await acme.get(f"/Users/{user['id']}"))).get(ACME) is None


async def test_a_required_attribute_is_required_of_a_user_that_carries_the_extension(
    scim: Scim,
) -> None:
    required = {"attributes": [{"name": "badge", "type": "string", "required": True}]}
    await ok(await define(scim, ACME, required))
    type_ = await ok(await scim.get("/ResourceTypes/User"))
    assert {"schema": ACME, "required": False} in type_["schemaExtensions"]
    await scim.create_user("without")  # a user need not carry the extension at all
    carrying = {"schemas": [USER, ACME], "userName": "with", ACME: {}}
    await scim_error(await scim.post("/Users", carrying), 400)
    await acme_user(scim, "badged", badge="B-1")


async def test_concurrent_writes_of_the_extension_land_each_on_its_user(acme: Scim) -> None:
    users = [await acme_user(acme, f"u{n}", level=0) for n in range(8)]
    for round_ in range(1, 4):
        operations = [
            acme.patch(
                f"/Users/{user['id']}",
                {
                    "schemas": [PATCH_OP],
                    "Operations": [
                        {"op": "replace", "path": f"{ACME}:level", "value": round_ * 10 + n}
                    ],
                },
            )
            for n, user in enumerate(users)
        ]
        for response in await asyncio.gather(*operations):
            await ok(response)
        expected = [round_ * 10 + n for n in range(len(users))]
        page = await ok(await acme.get(f"/Users?sortBy={ACME}:level&filter={ACME}:level pr"))
        assert [u[ACME]["level"] for u in page["Resources"]] == expected


async def test_values_of_an_extension_no_longer_defined_are_unreachable(
    acme: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    """What a process still holding the old definition could write in the few seconds after
    the extension went: kept in the store, never shown, never in the way of a write."""
    user = await acme_user(acme, "ada", badge="B-1")
    gone = "urn:acme:gone:1.0:User"
    stale = {
        f"r.{storage_key(gone)}": {"x": "kept"},  # an extension removed
        f"r.{storage_key(ACME)}.room": "B12",  # an attribute removed from one still defined
    }
    await mongo_db.users.update_one({"_id": user["id"]}, {"$set": stale})
    read = await ok(await acme.get(f"/Users/{user['id']}"))
    assert gone not in read and read["schemas"] == [USER, ACME]
    assert read[ACME] == {"badge": "B-1"}
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": "Eng"}],
    }
    patched = await ok(await acme.patch(f"/Users/{user['id']}", rename))
    assert patched["title"] == "Eng" and gone not in patched
    assert patched[ACME] == {"badge": "B-1"}


async def test_a_redefinition_keeps_the_urn_as_first_spelt(acme: Scim) -> None:
    user = await acme_user(acme, "ada", badge="B-1")
    await ok(await define(acme, ACME.lower(), ACME_SCHEMA))
    listed = await ok(await acme.client.get(extensions_path(acme), headers=ADMIN))
    assert [d["id"] for d in listed["user_extensions"]] == [ACME]
    assert (await ok(await acme.get(f"/Users/{user['id']}")))[ACME] == {"badge": "B-1"}


async def test_cursor_pages_follow_a_sort_on_an_extension_attribute(acme: Scim) -> None:
    for n in (3, 1, 4, 2, 5):
        await acme_user(acme, f"u{n}", level=n)
    seen: list[int] = []
    query = f"/Users?sortBy={ACME}:level&filter={ACME}:level pr&count=2&cursor="
    while True:
        page = await ok(await acme.get(query))
        seen.extend(user[ACME]["level"] for user in page["Resources"])
        if "nextCursor" not in page:
            break
        query = (
            f"/Users?sortBy={ACME}:level&filter={ACME}:level pr&count=2&cursor={page['nextCursor']}"
        )
    assert seen == [1, 2, 3, 4, 5]


async def test_two_extensions_of_a_tenant_are_served_side_by_side(acme: Scim) -> None:
    second = "urn:example:app:1.0:Profile"
    schema = {"name": "AppProfile", "attributes": [{"name": "badge", "type": "integer"}]}
    await ok(await define(acme, second, schema))
    body = {
        "schemas": [USER, ENTERPRISE, ACME, second],
        "userName": "ada",
        ENTERPRISE: {"department": "R&D"},
        ACME: {"badge": "B-1"},
        second: {"badge": 7},
    }
    created = await ok(await acme.post("/Users", body), 201)
    assert created["schemas"] == [USER, ENTERPRISE, ACME, second]
    assert (created[ENTERPRISE], created[ACME], created[second]) == (
        {"department": "R&D"},
        {"badge": "B-1"},
        {"badge": 7},
    )
    assert await names(acme, f"filter={second}:badge eq 7") == ["ada"]
    assert await names(acme, f'filter={ACME}:badge eq "b-1"') == ["ada"]
    type_ = await ok(await acme.get("/ResourceTypes/User"))
    assert [e["schema"] for e in type_["schemaExtensions"]] == [ENTERPRISE, ACME, second]
