"""Users over HTTP: create, read, replace, delete, passwords, uniqueness, the enterprise
extension, schema validation, and ETag preconditions (RFC 7644 §3.3-§3.6, §3.14)."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from scim_server.core.passwords import verify_password_sync
from tests.support.scim import Scim, scim_error
from tests.support.urns import ENTERPRISE
from tests.support.urns import USER as CORE

SECRET = "Tr0ub4dor&3-correct-horse"


def _user(user_name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [CORE], "userName": user_name, **attributes}


# --- create and read ------------------------------------------------------------------


async def test_create_answers_201_with_location_meta_and_etag(scim: Scim) -> None:
    response = await scim.post("/Users", _user("bjensen", displayName="Babs"))
    assert response.status == 201, await response.text()
    assert response.content_type == "application/scim+json"
    body = await response.json()
    user_id = body["id"]
    meta = body["meta"]
    assert response.headers["Location"] == meta["location"]
    assert meta["location"].endswith(f"/scim/v2/acme/Users/{user_id}")
    assert meta["location"].startswith("http://")
    assert meta["resourceType"] == "User"
    assert meta["created"] == meta["lastModified"]
    assert meta["created"].endswith("Z")
    assert meta["version"] == 'W/"1"'
    assert response.headers["ETag"] == meta["version"]
    assert body["userName"] == "bjensen"
    assert body["displayName"] == "Babs"
    assert body["schemas"] == [CORE]


async def test_get_by_id_returns_the_created_user(scim: Scim) -> None:
    created = await scim.create_user(
        "bjensen", name={"givenName": "Barbara", "familyName": "Jensen"}
    )
    response = await scim.get(f"/Users/{created['id']}")
    assert response.status == 200
    assert response.headers["ETag"] == created["meta"]["version"]
    assert await response.json() == created


async def test_get_unknown_id_is_404(scim: Scim) -> None:
    await scim_error(await scim.get("/Users/no-such-id"), 404)


async def test_user_of_another_tenant_is_404_for_every_operation(
    scim: Scim, other_scim: Scim
) -> None:
    theirs = await other_scim.create_user("bjensen")
    path = f"/Users/{theirs['id']}"
    await scim_error(await scim.get(path), 404)
    await scim_error(await scim.put(path, _user("stolen")), 404)
    await scim_error(
        await scim.patch(
            path,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "x"}],
            },
        ),
        404,
    )
    await scim_error(await scim.delete(path), 404)
    # Untouched for its owner.
    response = await other_scim.get(path)
    assert response.status == 200
    assert await response.json() == theirs


async def test_read_only_groups_in_create_body_are_ignored(scim: Scim) -> None:
    group = await scim.create_group("Admins")
    response = await scim.post(
        "/Users", _user("bjensen", groups=[{"value": group["id"], "display": "Admins"}])
    )
    assert response.status == 201, await response.text()
    body = await response.json()
    assert "groups" not in body
    again = await (await scim.get(f"/Users/{body['id']}")).json()
    assert "groups" not in again
    members = await (await scim.get(f"/Groups/{group['id']}")).json()
    assert "members" not in members


# --- schema violations ----------------------------------------------------------------


async def test_create_without_user_name_is_400_invalid_value(scim: Scim) -> None:
    await scim_error(
        await scim.post("/Users", {"schemas": [CORE], "displayName": "x"}), 400, "invalidValue"
    )


async def test_create_with_emails_not_a_list_is_400_invalid_value(scim: Scim) -> None:
    await scim_error(
        await scim.post("/Users", _user("bjensen", emails="bjensen@example.com")),
        400,
        "invalidValue",
    )


async def test_create_with_wrong_type_is_400_invalid_value(scim: Scim) -> None:
    await scim_error(
        await scim.post("/Users", _user("bjensen", active={"yes": 1})), 400, "invalidValue"
    )


async def test_rejected_create_stores_nothing(scim: Scim, mongo_db: AsyncDatabase[Any]) -> None:
    await scim.post("/Users", _user("bjensen", emails="bjensen@example.com"))
    assert await mongo_db.users.count_documents({}) == 0


# --- replace --------------------------------------------------------------------------


async def test_put_replaces_the_whole_resource(scim: Scim) -> None:
    created = await scim.create_user(
        "bjensen",
        displayName="Babs",
        title="Tour Guide",
        nickName="B",
        emails=[{"value": "bjensen@example.com", "type": "work"}],
    )
    path = f"/Users/{created['id']}"
    response = await scim.put(path, _user("bjensen", displayName="Barbara"))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["displayName"] == "Barbara"
    for cleared in ("title", "nickName", "emails"):
        assert cleared not in body
    assert body["id"] == created["id"]
    assert body["meta"]["created"] == created["meta"]["created"]
    assert body["meta"]["version"] == 'W/"2"'
    assert response.headers["ETag"] == 'W/"2"'
    assert await (await scim.get(path)).json() == body


async def test_put_keeps_read_only_id_and_created_sent_in_the_body(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    body = _user(
        "bjensen",
        id=created["id"],
        displayName="B",
        meta={"created": "2001-01-01T00:00:00Z", "resourceType": "User"},
    )
    response = await scim.put(f"/Users/{created['id']}", body)
    assert response.status == 200, await response.text()
    replaced = await response.json()
    assert replaced["id"] == created["id"]
    assert replaced["meta"]["created"] == created["meta"]["created"]
    assert replaced["displayName"] == "B"


async def test_put_with_another_id_is_400_mutability(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    path = f"/Users/{created['id']}"
    await scim_error(await scim.put(path, _user("bjensen", id="another-id")), 400, "mutability")
    assert await (await scim.get(path)).json() == created


async def test_put_unknown_id_is_404(scim: Scim) -> None:
    await scim_error(await scim.put("/Users/no-such-id", _user("bjensen")), 404)


async def test_put_schema_violation_is_400_and_changes_nothing(scim: Scim) -> None:
    created = await scim.create_user("bjensen", title="Boss")
    path = f"/Users/{created['id']}"
    await scim_error(await scim.put(path, {"schemas": [CORE], "title": "x"}), 400, "invalidValue")
    assert await (await scim.get(path)).json() == created


# --- passwords ------------------------------------------------------------------------


async def test_password_is_never_returned(scim: Scim) -> None:
    response = await scim.post("/Users", _user("bjensen", password=SECRET))
    assert response.status == 201
    created = await response.json()
    path = f"/Users/{created['id']}"
    bodies = [
        await response.text(),
        await (await scim.get(path)).text(),
        await (await scim.get("/Users")).text(),
        await (await scim.get("/Users?attributes=password,userName")).text(),
        await (
            await scim.post(
                "/Users/.search",
                {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                },
            )
        ).text(),
        await (await scim.put(path, _user("bjensen", password=SECRET + "2"))).text(),
        await (
            await scim.patch(
                path,
                {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "password", "value": SECRET + "3"}],
                },
            )
        ).text(),
    ]
    for text in bodies:
        assert "bjensen" in text
        assert "password" not in text
        assert SECRET not in text


async def test_password_is_stored_only_as_a_scrypt_hash(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    created = await scim.create_user("bjensen", password=SECRET)
    document = await mongo_db.users.find_one({"_id": created["id"]})
    assert document is not None
    assert document["pw"].startswith("scrypt$")
    assert SECRET not in str(document)
    assert verify_password_sync(SECRET, document["pw"])
    assert not verify_password_sync(SECRET + "x", document["pw"])


async def test_put_without_password_keeps_the_stored_one(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    created = await scim.create_user("bjensen", password=SECRET)
    before = await mongo_db.users.find_one({"_id": created["id"]})
    assert before is not None
    response = await scim.put(f"/Users/{created['id']}", _user("bjensen", title="x"))
    assert response.status == 200
    after = await mongo_db.users.find_one({"_id": created["id"]})
    assert after is not None
    assert after["pw"] == before["pw"]
    assert after["r"]["title"] == "x"


async def test_put_with_password_stores_a_new_hash(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    created = await scim.create_user("bjensen", password=SECRET)
    response = await scim.put(f"/Users/{created['id']}", _user("bjensen", password="new-one"))
    assert response.status == 200
    after = await mongo_db.users.find_one({"_id": created["id"]})
    assert after is not None
    assert verify_password_sync("new-one", after["pw"])
    assert "new-one" not in str(after)


# --- delete ---------------------------------------------------------------------------


async def test_delete_answers_204_then_the_user_is_gone(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    path = f"/Users/{created['id']}"
    response = await scim.delete(path)
    assert response.status == 204
    assert await response.read() == b""
    await scim_error(await scim.get(path), 404)
    await scim_error(await scim.delete(path), 404)
    # The userName is free again.
    await scim.create_user("bjensen")


# --- enterprise extension -------------------------------------------------------------


async def test_enterprise_extension_round_trips(scim: Scim) -> None:
    enterprise = {
        "employeeNumber": "701984",
        "costCenter": "4130",
        "organization": "Universal Studios",
        "division": "Theme Park",
        "department": "Tour Operations",
        "manager": {
            "value": "26118915-6090-4610-87e4-49d8ca9f808d",
            "$ref": "https://example.com/v2/Users/26118915-6090-4610-87e4-49d8ca9f808d",
        },
    }
    response = await scim.post(
        "/Users",
        {
            "schemas": [CORE, ENTERPRISE],
            "userName": "bjensen",
            ENTERPRISE: enterprise,
        },
    )
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["schemas"] == [CORE, ENTERPRISE]
    assert created[ENTERPRISE] == enterprise
    fetched = await (await scim.get(f"/Users/{created['id']}")).json()
    assert fetched == created


async def test_enterprise_manager_with_only_a_value_is_accepted(scim: Scim) -> None:
    response = await scim.post(
        "/Users",
        {
            "schemas": [CORE, ENTERPRISE],
            "userName": "bjensen",
            ENTERPRISE: {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}},
        },
    )
    assert response.status == 201, await response.text()


async def test_put_without_the_extension_drops_it(scim: Scim) -> None:
    response = await scim.post(
        "/Users",
        {
            "schemas": [CORE, ENTERPRISE],
            "userName": "bjensen",
            ENTERPRISE: {"employeeNumber": "1"},
        },
    )
    created = await response.json()
    replaced = await (await scim.put(f"/Users/{created['id']}", _user("bjensen"))).json()
    assert replaced["schemas"] == [CORE]
    assert ENTERPRISE not in replaced


# --- uniqueness -----------------------------------------------------------------------


async def test_user_name_is_unique_case_insensitively(scim: Scim) -> None:
    await scim.create_user("bjensen")
    await scim_error(await scim.post("/Users", _user("BJensen")), 409, "uniqueness")
    response = await scim.get("/Users")
    assert (await response.json())["totalResults"] == 1


async def test_same_user_name_in_another_tenant_is_fine(scim: Scim, other_scim: Scim) -> None:
    mine = await scim.create_user("bjensen")
    theirs = await other_scim.create_user("bjensen")
    assert mine["id"] != theirs["id"]


async def test_put_to_a_taken_user_name_is_409(scim: Scim) -> None:
    await scim.create_user("bjensen")
    other = await scim.create_user("jsmith")
    path = f"/Users/{other['id']}"
    await scim_error(await scim.put(path, _user("BJENSEN")), 409, "uniqueness")
    assert (await (await scim.get(path)).json())["userName"] == "jsmith"


async def test_put_changing_only_the_case_of_own_user_name_is_allowed(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    response = await scim.put(f"/Users/{created['id']}", _user("BJensen"))
    assert response.status == 200, await response.text()
    assert (await response.json())["userName"] == "BJensen"


async def test_concurrent_creates_of_one_user_name_make_exactly_one_user(scim: Scim) -> None:
    responses = await asyncio.gather(
        scim.post("/Users", _user("race")),
        scim.post("/Users", _user("RACE")),
    )
    statuses = sorted(response.status for response in responses)
    assert statuses == [201, 409]
    loser = next(response for response in responses if response.status == 409)
    await scim_error(loser, 409, "uniqueness")
    listing = await (await scim.get("/Users")).json()
    assert listing["totalResults"] == 1


# --- ETags and preconditions ----------------------------------------------------------


async def test_if_none_match_with_current_etag_is_304(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    path = f"/Users/{created['id']}"
    etag = created["meta"]["version"]
    response = await scim.get(path, headers={"If-None-Match": etag})
    assert response.status == 304
    assert response.headers["ETag"] == etag
    assert await response.read() == b""


async def test_if_none_match_with_stale_etag_returns_the_resource(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    path = f"/Users/{created['id']}"
    await scim.put(path, _user("bjensen", title="x"))
    response = await scim.get(path, headers={"If-None-Match": created["meta"]["version"]})
    assert response.status == 200
    assert (await response.json())["title"] == "x"


async def test_meta_version_changes_on_every_write(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    path = f"/Users/{created['id']}"
    versions = [created["meta"]["version"]]
    put = await scim.put(path, _user("bjensen", title="a"))
    versions.append((await put.json())["meta"]["version"])
    patch = await scim.patch(
        path,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "b"}],
        },
    )
    assert patch.status == 200, await patch.text()
    versions.append((await patch.json())["meta"]["version"])
    assert patch.headers["ETag"] == versions[-1]
    assert len(set(versions)) == 3
    fetched = await (await scim.get(path)).json()
    assert fetched["meta"]["version"] == versions[-1]
    assert fetched["meta"]["lastModified"] >= created["meta"]["lastModified"]


async def test_stale_if_match_is_412_on_put_patch_and_delete(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    path = f"/Users/{created['id']}"
    stale = created["meta"]["version"]
    await scim.put(path, _user("bjensen", title="now"))
    stale_header = {"If-Match": stale}
    stale = await scim.put(path, _user("bjensen", title="lost"), headers=stale_header)
    await scim_error(stale, 412)
    await scim_error(
        await scim.patch(
            path,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "lost"}],
            },
            headers=stale_header,
        ),
        412,
    )
    await scim_error(await scim.delete(path, headers=stale_header), 412)
    fetched = await (await scim.get(path)).json()
    assert fetched["title"] == "now"
    assert fetched["meta"]["version"] == 'W/"2"'


async def test_matching_if_match_lets_writes_through(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    path = f"/Users/{created['id']}"
    put = await scim.put(
        path, _user("bjensen", title="a"), headers={"If-Match": created["meta"]["version"]}
    )
    assert put.status == 200, await put.text()
    patch = await scim.patch(
        path,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "b"}],
        },
        headers={"If-Match": put.headers["ETag"]},
    )
    assert patch.status == 200, await patch.text()
    assert (await patch.json())["title"] == "b"
    delete = await scim.delete(path, headers={"If-Match": patch.headers["ETag"]})
    assert delete.status == 204
    await scim_error(await scim.get(path), 404)


async def test_if_match_star_matches_any_version(scim: Scim) -> None:
    created = await scim.create_user("bjensen")
    path = f"/Users/{created['id']}"
    await scim.put(path, _user("bjensen", title="a"))
    response = await scim.delete(path, headers={"If-Match": "*"})
    assert response.status == 204
