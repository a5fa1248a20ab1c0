"""Custom resource types: the Roles, Entitlements and Licenses of Okta's entitlement apps.

A tenant serves the types its registry names (``PUT /admin/tenants/{name}/resource-types``),
advertised in its own ``/ResourceTypes`` and ``/Schemas``; the app loads their resources
through the admin API; SCIM reads them as it reads users and groups (filters, sorting,
index and cursor paging, ETags) and never writes them. Okta's "Entitlements" test:
``GET {endpoint}?count=1&startIndex=1`` answers a ListResponse of one resource.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from tests.support.entitlements import ENTITLEMENT, ROLE, entitlement, load, role, serve
from tests.support.scim import ADMIN, Scim, scim_error
from tests.support.urns import BULK_REQUEST, LIST_RESPONSE, PATCH_OP, SEARCH, USER


async def listing(scim: Scim, path: str) -> dict[str, Any]:
    response = await scim.get(path)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def test_a_tenant_serves_no_custom_resource_type_until_its_registry_names_it(
    scim: Scim,
) -> None:
    for path in ("/Roles", "/Entitlements?count=1&startIndex=1", "/Licenses/x", "/Roles/.search"):
        method = "POST" if path.endswith(".search") else "GET"
        await scim_error(await scim.request(method, path, json={}), 404)
    types = await listing(scim, "/ResourceTypes")
    assert [t["name"] for t in types["Resources"]] == ["User", "Group"]
    schemas = await listing(scim, "/Schemas")
    assert ENTITLEMENT not in {s["id"] for s in schemas["Resources"]}
    await scim_error(await scim.get("/ResourceTypes/Role"), 404)


async def test_served_types_are_advertised_in_the_tenants_discovery_only(
    scim: Scim, other_scim: Scim
) -> None:
    answer = await serve(scim, "License", "Role", "Entitlement")
    assert answer["resource_types"] == [
        {"name": "Role", "endpoint": "/Roles"},
        {"name": "Entitlement", "endpoint": "/Entitlements"},
        {"name": "License", "endpoint": "/Licenses"},
    ]
    types = {t["name"]: t for t in (await listing(scim, "/ResourceTypes"))["Resources"]}
    assert list(types) == ["User", "Group", "Role", "Entitlement", "License"]
    assert types["License"]["endpoint"] == "/Licenses"
    assert types["License"]["schema"] == ENTITLEMENT
    assert types["Role"]["schema"] == ROLE
    assert types["Role"]["meta"]["location"].endswith("/scim/v2/acme/ResourceTypes/Role")
    alone = await listing(scim, "/ResourceTypes/Entitlement")
    assert alone["endpoint"] == "/Entitlements"

    schemas = [s["id"] for s in (await listing(scim, "/Schemas"))["Resources"]]
    assert schemas.count(ENTITLEMENT) == 1 and schemas.count(ROLE) == 1
    entitlement_schema = await listing(scim, f"/Schemas/{ENTITLEMENT}")
    attributes = {a["name"]: a for a in entitlement_schema["attributes"]}
    assert attributes["displayName"]["required"] and attributes["type"]["required"]
    assert "description" in attributes

    others = [t["name"] for t in (await listing(other_scim, "/ResourceTypes"))["Resources"]]
    assert others == ["User", "Group"]
    await scim_error(await other_scim.get("/Roles"), 404)


async def test_oktas_entitlements_test_reads_one_resource_per_page(scim: Scim) -> None:
    await serve(scim, "Entitlement", "Role", "License")
    await load(scim, "Entitlements", [entitlement(f"Feature {n}", "Feature") for n in range(3)])
    await load(scim, "Roles", [role("Admin"), role("Viewer")])
    await load(scim, "Licenses", [entitlement("Gold")])
    for endpoint, total in (("Entitlements", 3), ("Roles", 2), ("Licenses", 1)):
        page = await listing(scim, f"/{endpoint}?count=1&startIndex=1")
        assert page["schemas"] == [LIST_RESPONSE]
        assert page["itemsPerPage"] == 1 and len(page["Resources"]) == 1
        assert page["totalResults"] == total and page["startIndex"] == 1
        first = page["Resources"][0]
        assert first["meta"]["resourceType"] == endpoint[:-1]
        assert first["meta"]["location"].endswith(f"/{endpoint}/{first['id']}")
        one = await scim.get(f"/{endpoint}/{first['id']}")
        assert one.status == 200 and one.headers["ETag"] == first["meta"]["version"]
        assert await one.json() == first


async def test_custom_resources_are_filtered_sorted_and_paged_within_their_type(
    scim: Scim, other_scim: Scim
) -> None:
    await serve(scim, "Entitlement", "License")
    await serve(other_scim, "License")
    await load(other_scim, "Licenses", [entitlement("Gold")])
    await load(scim, "Licenses", [entitlement(n) for n in ("Gold", "silver", "Bronze")])
    await load(scim, "Entitlements", [entitlement("Gold", "Feature")])

    gold = await listing(scim, '/Licenses?filter=displayName eq "GOLD"')
    assert gold["totalResults"] == 1 and gold["Resources"][0]["type"] == "License"
    by_type = await listing(scim, '/Licenses?filter=meta.resourceType eq "License"')
    assert by_type["totalResults"] == 3
    assert (await listing(scim, '/Entitlements?filter=meta.resourceType eq "License"'))[
        "totalResults"
    ] == 0
    ordered = await listing(scim, "/Licenses?sortBy=displayName&sortOrder=descending")
    assert [r["displayName"] for r in ordered["Resources"]] == ["silver", "Gold", "Bronze"]
    second = await listing(scim, "/Licenses?sortBy=displayName&startIndex=2&count=1")
    assert [r["displayName"] for r in second["Resources"]] == ["Gold"]
    assert second["totalResults"] == 3

    seen, cursor = [], ""
    while cursor is not None:
        page = await listing(scim, f"/Licenses?count=2&cursor={cursor}")
        seen += [r["displayName"] for r in page["Resources"]]
        cursor = page.get("nextCursor")
    assert sorted(seen) == ["Bronze", "Gold", "silver"]

    search = await scim.post(
        "/Licenses/.search", {"schemas": [SEARCH], "filter": 'displayName sw "S"', "count": 5}
    )
    assert search.status == 200, await search.text()
    assert [r["displayName"] for r in (await search.json())["Resources"]] == ["silver"]
    bad = await scim.get('/Licenses?filter=userName eq "x"')
    await scim_error(bad, 400, "invalidFilter")


async def test_the_app_reloads_a_resource_by_its_external_id(scim: Scim) -> None:
    await serve(scim, "Role")
    (first,) = await load(scim, "Roles", [role("Admin", externalId="admin")])
    (again,) = await load(scim, "Roles", [role("Administrator", externalId="admin", id="x")])
    assert again["id"] == first["id"]
    assert again["displayName"] == "Administrator"
    assert again["meta"]["version"] == 'W/"2"'
    assert (await listing(scim, "/Roles"))["totalResults"] == 1


async def test_scim_never_writes_custom_resources(scim: Scim, other_scim: Scim) -> None:
    await serve(scim, "Role")
    (admin,) = await load(scim, "Roles", [role("Admin")])
    item = f"/Roles/{admin['id']}"
    for method, path in (("POST", "/Roles"), ("PUT", item), ("PATCH", item), ("DELETE", item)):
        response = await scim.request(method, path, json=role("Other"))
        await scim_error(response, 405)
        assert response.headers["Allow"] == "GET, HEAD"
        # Where the type is not served, the path is unknown, whatever the method.
        await scim_error(await other_scim.request(method, path, json=role("Other")), 404)
    assert (await listing(scim, item))["displayName"] == "Admin"


async def test_a_bad_load_is_a_scim_error_and_writes_nothing(scim: Scim) -> None:
    await serve(scim, "License")
    path = f"/admin/tenants/{scim.tenant}/resources/Licenses"
    missing_type = {"schemas": [ENTITLEMENT], "displayName": "Gold"}
    bodies: list[Any] = [
        {"Resources": [entitlement("Silver"), missing_type]},
        {"Resources": [entitlement("Silver"), {**entitlement("X"), "seats": 3}]},
        {"Resources": []},
        {"Resources": "Gold"},
        {"Resources": [42]},
    ]
    for body in bodies:
        response = await scim.client.post(path, json=body, headers=ADMIN)
        assert response.status == 400, await response.text()
        assert (await response.json())["detail"]
    detail = (await (await scim.client.post(path, json=bodies[0], headers=ADMIN)).json())["detail"]
    assert "Resources[1]" in detail
    assert (await listing(scim, "/Licenses"))["totalResults"] == 0
    unserved = await scim.client.post(
        f"/admin/tenants/{scim.tenant}/resources/Roles",
        json={"Resources": [role("Admin")]},
        headers=ADMIN,
    )
    await scim_error(unserved, 404)
    for names in (["Printer"], "Role", [1]):
        response = await scim.client.put(
            f"/admin/tenants/{scim.tenant}/resource-types",
            json={"resource_types": names},
            headers=ADMIN,
        )
        await scim_error(response, 400, "invalidValue")
    nobody = await scim.client.put(
        "/admin/tenants/nobody/resource-types", json={"resource_types": []}, headers=ADMIN
    )
    await scim_error(nobody, 404)


async def test_the_app_removes_a_resource_and_the_tenants_deletion_removes_them_all(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    await serve(scim, "Role", "License")
    admin, viewer = await load(scim, "Roles", [role("Admin"), role("Viewer")])
    await load(scim, "Licenses", [entitlement("Gold")])
    path = f"/admin/tenants/{scim.tenant}/resources/Roles/{admin['id']}"
    assert (await scim.client.delete(path, headers=ADMIN)).status == 204
    await scim_error(await scim.client.delete(path, headers=ADMIN), 404)
    await scim_error(await scim.get(f"/Roles/{admin['id']}"), 404)
    assert [r["id"] for r in (await listing(scim, "/Roles"))["Resources"]] == [viewer["id"]]
    deleted = await scim.client.delete(f"/admin/tenants/{scim.tenant}", headers=ADMIN)
    assert deleted.status == 204
    assert await mongo_db["custom_resources"].count_documents({"tenant": scim.tenant}) == 0


async def test_users_carry_entitlements_and_roles_naming_the_apps_resources(scim: Scim) -> None:
    await serve(scim, "Role", "License")
    (gold,) = await load(scim, "Licenses", [entitlement("Gold")])
    (admin,) = await load(scim, "Roles", [role("Admin")])
    user = {
        "schemas": [USER],
        "userName": "ada@example.com",
        "entitlements": [{"value": gold["id"], "display": "Gold", "type": "License"}],
        "roles": [{"value": admin["id"], "display": "Admin", "type": "Role", "primary": True}],
    }
    created = await scim.post("/Users", user)
    assert created.status == 201, await created.text()
    body = await created.json()
    read = await listing(scim, f"/Users/{body['id']}")
    assert read["entitlements"] == user["entitlements"]
    assert read["roles"] == user["roles"]
    holders = await listing(scim, f'/Users?filter=entitlements.value eq "{gold["id"]}"')
    assert [u["id"] for u in holders["Resources"]] == [body["id"]]
    by_role = await listing(scim, f'/Users?filter=roles[value eq "{admin["id"]}"]')
    assert by_role["totalResults"] == 1


async def test_okta_assigns_and_revokes_entitlements_and_roles_by_patch(scim: Scim) -> None:
    await serve(scim, "Role", "License")
    gold, silver = await load(scim, "Licenses", [entitlement("Gold"), entitlement("Silver")])
    (admin,) = await load(scim, "Roles", [role("Admin")])
    created = await scim.post("/Users", {"schemas": [USER], "userName": "grace@example.com"})
    path = f"/Users/{(await created.json())['id']}"

    def value(resource: dict[str, Any], kind: str) -> dict[str, Any]:
        return {"value": resource["id"], "display": resource["displayName"], "type": kind}

    operations = [
        {"op": "add", "path": "entitlements", "value": [value(gold, "License")]},
        {"op": "add", "path": "entitlements", "value": [value(silver, "License")]},
        {"op": "replace", "path": "roles", "value": [value(admin, "Role")]},
        {"op": "remove", "path": f'entitlements[value eq "{gold["id"]}"]'},
    ]
    response = await scim.patch(path, {"schemas": [PATCH_OP], "Operations": operations})
    assert response.status == 200, await response.text()
    user = await listing(scim, path)
    assert user["entitlements"] == [value(silver, "License")]
    assert user["roles"] == [value(admin, "Role")]


async def test_concurrent_loads_of_one_external_id_keep_one_resource(scim: Scim) -> None:
    await serve(scim, "Role")
    rounds, loads = 5, 8
    for attempt in range(rounds):
        key = f"admin-{attempt}"
        answers = await asyncio.gather(
            *(load(scim, "Roles", [role(f"Admin {n}", externalId=key)]) for n in range(loads))
        )
        assert len({answer[0]["id"] for answer in answers}) == 1
        found = await listing(scim, f'/Roles?filter=externalId eq "{key}"')
        assert found["totalResults"] == 1
        assert found["Resources"][0]["meta"]["version"] == f'W/"{loads}"'


async def test_custom_resources_answer_selections_etags_and_errors_as_users_do(
    scim: Scim,
) -> None:
    await serve(scim, "License")
    (gold,) = await load(scim, "Licenses", [entitlement("Gold", description="All features")])
    item = f"/Licenses/{gold['id']}"
    projected = await listing(scim, f"{item}?attributes=displayName")
    assert set(projected) == {"schemas", "id", "displayName"}
    page = await listing(scim, "/Licenses?excludedAttributes=description,type")
    assert "description" not in page["Resources"][0] and "type" not in page["Resources"][0]
    unchanged = await scim.get(item, headers={"If-None-Match": gold["meta"]["version"]})
    assert unchanged.status == 304
    assert (await scim.request("HEAD", item)).status == 200
    for bad in ("?sortBy=seats", "?cursor=not-a-cursor", "?filter=displayName%20eq", "?count=x"):
        await scim_error(await scim.get(f"/Licenses{bad}"), 400)
    await scim_error(await scim.get("/Licenses/unknown-id"), 404)
    anonymous = await scim.client.get(f"{scim.base}/Licenses")
    await scim_error(anonymous, 401)
    stranger = await scim.client.get(
        f"{scim.base}/Roles", headers={"Authorization": "Bearer nonsense"}
    )
    await scim_error(stranger, 401)


async def test_bulk_never_writes_custom_resources(scim: Scim) -> None:
    await serve(scim, "Role")
    (admin,) = await load(scim, "Roles", [role("Admin")])
    operations = [
        {"method": "POST", "path": "/Roles", "bulkId": "r", "data": role("Other")},
        {"method": "DELETE", "path": f"/Roles/{admin['id']}"},
    ]
    response = await scim.post("/Bulk", {"schemas": [BULK_REQUEST], "Operations": operations})
    assert response.status == 200, await response.text()
    results = (await response.json())["Operations"]
    assert [result["status"] for result in results] == ["400", "400"]
    assert (await listing(scim, "/Roles"))["totalResults"] == 1
