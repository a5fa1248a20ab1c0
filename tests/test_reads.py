"""The read path: how a resource is found by id, and what a read answers.

A resource is read by its primary key alone (``{"_id": id}``), the one query shape every
store runs as a direct lookup; its tenant, its resource type and a landed deletion are
checked on the document found, so the answer is the one the query with those conditions
gave: another tenant's id, another type's id and a deleted resource are all 404.
"""

from __future__ import annotations

from typing import Any

from tests.support.entitlements import entitlement_app
from tests.support.plans import FINDS, sent_find
from tests.support.scim import Scim, scim_error


async def _sent_filter(collection: str, request: Any) -> dict[str, Any]:
    """The filter of the one ``find`` on ``collection`` the request sent."""
    FINDS.seen.clear()
    FINDS.recording = True
    try:
        response = await request
    finally:
        FINDS.recording = False
    assert response.status == 200, await response.text()
    return dict(sent_find(collection)["filter"])


async def test_a_user_is_read_by_its_primary_key_alone(scim: Scim) -> None:
    user = await scim.create_user("ada")
    sent = await _sent_filter("users", scim.get(f"/Users/{user['id']}"))
    assert sent == {"_id": user["id"]}


async def test_a_group_is_read_by_its_primary_key_alone(scim: Scim) -> None:
    group = await scim.create_group("eng", [])
    sent = await _sent_filter("groups", scim.get(f"/Groups/{group['id']}"))
    assert sent == {"_id": group["id"]}


async def test_another_tenants_user_is_not_found_by_its_id(scim: Scim, other_scim: Scim) -> None:
    theirs = await other_scim.create_user("ada")
    await scim_error(await scim.get(f"/Users/{theirs['id']}"), 404)
    assert (await other_scim.get(f"/Users/{theirs['id']}")).status == 200


async def test_a_group_id_is_not_found_as_a_user(scim: Scim) -> None:
    group = await scim.create_group("eng", [])
    await scim_error(await scim.get(f"/Users/{group['id']}"), 404)


async def test_a_resource_of_another_custom_type_is_not_found_by_its_id(scim: Scim) -> None:
    await entitlement_app(scim)
    roles = await (await scim.get("/Roles")).json()
    role_id = roles["Resources"][0]["id"]
    assert (await scim.get(f"/Roles/{role_id}")).status == 200
    await scim_error(await scim.get(f"/Licenses/{role_id}"), 404)


async def test_a_user_whose_deletion_landed_is_not_found(scim: Scim, mongo_db: Any) -> None:
    """A deleted user's document stays until its events are relayed, marked ``dl``: a read
    answers 404 from the moment the mark lands."""
    user = await scim.create_user("ada")
    await mongo_db.users.update_one({"_id": user["id"]}, {"$set": {"dl": True}})
    await scim_error(await scim.get(f"/Users/{user['id']}"), 404)
