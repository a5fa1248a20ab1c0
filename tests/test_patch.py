"""PATCH over HTTP (RFC 7644 §3.5.2) and the IdP dialects accepted on top of it.

The IdP request bodies are the literal ones of docs/idp-traffic.md (Okta, JumpCloud, Entra);
only the ids are this test's own.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from idp_sim import Directory, Journal, build_profile, full_lifecycle
from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.scim import Scim, make_tenant
from tests.support.urns import ENTERPRISE, PATCH_OP
from tests.support.urns import GROUP as CORE_GROUP
from tests.support.urns import USER as CORE_USER


class Answer:
    """One HTTP answer: status, JSON body and ETag header."""

    def __init__(self, status: int, body: Any, etag: str | None) -> None:
        self.status = status
        self.body = body
        self.etag = etag

    @property
    def error(self) -> tuple[int, str | None]:
        return int(self.body["status"]), self.body.get("scimType")


async def send(scim: Scim, path: str, body: Any, headers: dict[str, str] | None = None) -> Answer:
    """The PATCH's answer; a 204 (a Group PATCH's default) with the group read back at the
    version it answered, so that tests of member operations can look at the members."""
    response = await scim.patch(path, body, headers=headers)
    answer = Answer(response.status, None, response.headers.get("ETag"))
    if response.status == 204:
        answer.body = await read(scim, path)
        assert answer.body["meta"]["version"] == answer.etag
    else:
        answer.body = await response.json()
    return answer


async def patch(
    scim: Scim, path: str, *operations: dict[str, Any], headers: dict[str, str] | None = None
) -> Answer:
    return await send(scim, path, {"schemas": [PATCH_OP], "Operations": list(operations)}, headers)


async def read(scim: Scim, path: str) -> dict[str, Any]:
    response = await scim.get(path)
    assert response.status == 200, await response.text()
    return dict(await response.json())


def member_ids(group: dict[str, Any]) -> set[str]:
    return {member["value"] for member in group.get("members") or []}


@pytest.fixture
async def bjensen(scim: Scim) -> dict[str, Any]:
    return await scim.create_user(
        "bjensen",
        name={"givenName": "Barbara", "familyName": "Jensen"},
        title="Tour Guide",
        emails=[
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@jensen.org", "type": "home"},
        ],
        password="t1meMa$heen",
    )


@pytest.fixture
async def people(scim: Scim) -> list[str]:
    return [(await scim.create_user(f"user{i}@okta.local"))["id"] for i in range(5)]


# --- RFC 7644 §3.5.2: add / replace / remove on the attribute kinds --------------------------


async def test_replace_simple_attribute_answers_200_with_the_resource_and_new_etag(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "replace", "path": "title", "value": "Manager"}
    )

    assert answer.status == 200
    assert answer.body["id"] == bjensen["id"]
    assert answer.body["schemas"] == [CORE_USER]
    assert answer.body["title"] == "Manager"
    assert answer.body["meta"]["version"] == 'W/"2"'
    assert answer.etag == 'W/"2"'
    assert (await read(scim, f"/Users/{bjensen['id']}"))["title"] == "Manager"


async def test_add_simple_attribute_sets_it(scim: Scim, bjensen: dict[str, Any]) -> None:
    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "add", "path": "nickName", "value": "Babs"}
    )

    assert answer.status == 200
    assert answer.body["nickName"] == "Babs"


async def test_remove_simple_attribute_drops_it(scim: Scim, bjensen: dict[str, Any]) -> None:
    answer = await patch(scim, f"/Users/{bjensen['id']}", {"op": "remove", "path": "title"})

    assert answer.status == 200
    assert "title" not in answer.body
    assert "title" not in await read(scim, f"/Users/{bjensen['id']}")


async def test_remove_of_an_absent_attribute_changes_nothing(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(scim, f"/Users/{bjensen['id']}", {"op": "remove", "path": "profileUrl"})

    assert answer.status == 200
    assert answer.body["meta"]["version"] == 'W/"1"'


async def test_replace_sub_attribute_keeps_its_siblings(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "replace", "path": "name.givenName", "value": "Babs"},
    )

    assert answer.status == 200
    assert answer.body["name"] == {"givenName": "Babs", "familyName": "Jensen"}


async def test_remove_sub_attribute_keeps_its_siblings(scim: Scim, bjensen: dict[str, Any]) -> None:
    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "remove", "path": "name.givenName"}
    )

    assert answer.status == 200
    assert answer.body["name"] == {"familyName": "Jensen"}


async def test_add_sub_attribute_creates_the_complex_attribute(scim: Scim) -> None:
    user = await scim.create_user("plain")

    answer = await patch(
        scim, f"/Users/{user['id']}", {"op": "add", "path": "name.givenName", "value": "Plain"}
    )

    assert answer.status == 200
    assert answer.body["name"] == {"givenName": "Plain"}


async def test_replace_complex_attribute_leaves_unnamed_sub_attributes(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    # §3.5.2.3: sub-attributes not in the value are left unchanged.
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "replace", "path": "name", "value": {"familyName": "Doe"}},
    )

    assert answer.status == 200
    assert answer.body["name"] == {"givenName": "Barbara", "familyName": "Doe"}


async def test_add_to_multi_valued_attribute_appends(scim: Scim, bjensen: dict[str, Any]) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "b@other.org", "type": "other"}],
        },
    )

    assert answer.status == 200
    assert [e["value"] for e in answer.body["emails"]] == [
        "bjensen@example.com",
        "babs@jensen.org",
        "b@other.org",
    ]


async def test_add_of_a_value_already_present_changes_nothing(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "babs@jensen.org", "type": "home"}],
        },
    )

    assert answer.status == 200
    assert len(answer.body["emails"]) == 2
    assert answer.body["meta"]["version"] == 'W/"1"'


async def test_replace_multi_valued_attribute_replaces_every_value(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "replace",
            "path": "emails",
            "value": [{"value": "only@example.com", "type": "work"}],
        },
    )

    assert answer.status == 200
    assert answer.body["emails"] == [{"value": "only@example.com", "type": "work"}]


async def test_remove_multi_valued_attribute_drops_every_value(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(scim, f"/Users/{bjensen['id']}", {"op": "remove", "path": "emails"})

    assert answer.status == 200
    assert "emails" not in answer.body


async def test_replace_through_value_filter_changes_only_the_matching_value(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "replace",
            "path": 'emails[type eq "work"].value',
            "value": "barbara@example.com",
        },
    )

    assert answer.status == 200
    assert answer.body["emails"] == [
        {"value": "barbara@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ]


async def test_remove_through_value_filter_removes_only_the_matching_values(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "remove", "path": 'emails[type eq "home"]'}
    )

    assert answer.status == 200
    assert answer.body["emails"] == [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
    ]


async def test_remove_through_value_filter_matching_nothing_changes_nothing(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "remove", "path": 'emails[type eq "other"]'}
    )

    assert answer.status == 200
    assert len(answer.body["emails"]) == 2
    assert answer.body["meta"]["version"] == 'W/"1"'


async def test_replace_through_unmatched_value_filter_creates_the_entry(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    # RFC 7644 §3.5.2.3 says 400 noTarget; DIALECT_POLICY creates the entry, as Entra expects
    # when it sets emails[type eq "work"].value on a user that has no work email yet.
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "replace",
            "path": 'emails[type eq "other"].value',
            "value": "o@example.com",
        },
    )

    assert answer.status == 200
    assert answer.body["emails"] == [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
        {"value": "o@example.com", "type": "other"},
    ]


async def test_replace_sub_attribute_through_unmatched_filter_creates_the_complex_value(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "replace",
            "path": 'addresses[type eq "work"].locality',
            "value": "Paris",
        },
    )

    assert answer.status == 200
    assert answer.body["addresses"] == [{"type": "work", "locality": "Paris"}]


async def test_extension_attribute_by_urn_path(scim: Scim, bjensen: dict[str, Any]) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "add", "path": f"{ENTERPRISE}:employeeNumber", "value": "701984"},
        {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": "26118915-6090"},
    )

    assert answer.status == 200
    assert answer.body["schemas"] == [CORE_USER, ENTERPRISE]
    assert answer.body[ENTERPRISE] == {
        "employeeNumber": "701984",
        "manager": {"value": "26118915-6090"},
    }

    removed = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "remove", "path": f"{ENTERPRISE}:employeeNumber"}
    )

    assert removed.status == 200
    assert removed.body[ENTERPRISE] == {"manager": {"value": "26118915-6090"}}


async def test_path_less_add_sets_each_attribute_of_the_value_object(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "add",
            "value": {"nickName": "Babs", "emails": [{"value": "b@other.org", "type": "other"}]},
        },
    )

    assert answer.status == 200
    assert answer.body["nickName"] == "Babs"
    assert [e["value"] for e in answer.body["emails"]] == [
        "bjensen@example.com",
        "babs@jensen.org",
        "b@other.org",
    ]


async def test_path_less_replace_sets_each_attribute_of_the_value_object(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "replace",
            "value": {
                "title": "Manager",
                "name": {"givenName": "Babs"},
                ENTERPRISE: {"department": "Tours"},
            },
        },
    )

    assert answer.status == 200
    assert answer.body["title"] == "Manager"
    assert answer.body["name"] == {"givenName": "Babs", "familyName": "Jensen"}
    assert answer.body[ENTERPRISE] == {"department": "Tours"}


async def test_operations_apply_in_order(scim: Scim, bjensen: dict[str, Any]) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "add", "path": "nickName", "value": "first"},
        {"op": "replace", "path": "nickName", "value": "second"},
        {"op": "remove", "path": "title"},
    )

    assert answer.status == 200
    assert answer.body["nickName"] == "second"
    assert "title" not in answer.body
    assert answer.body["meta"]["version"] == 'W/"2"'


async def test_patch_can_rename_to_a_free_user_name(scim: Scim, bjensen: dict[str, Any]) -> None:
    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "replace", "path": "userName", "value": "BJensen2"}
    )

    assert answer.status == 200
    assert answer.body["userName"] == "BJensen2"


async def test_patch_to_a_taken_user_name_is_409_uniqueness(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    await scim.create_user("alice")

    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "replace", "path": "userName", "value": "ALICE"}
    )

    assert answer.status == 409
    assert answer.error == (409, "uniqueness")
    assert (await read(scim, f"/Users/{bjensen['id']}"))["userName"] == "bjensen"


# --- mutability and malformed requests ---------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "remove", "path": "userName"}, "mutability"),
        ({"op": "replace", "path": "userName", "value": None}, "mutability"),
        ({"op": "replace", "path": "id", "value": "another-id"}, "mutability"),
        ({"op": "replace", "value": {"id": "another-id"}}, "mutability"),
        ({"op": "replace", "path": "meta", "value": {"resourceType": "User"}}, "mutability"),
        ({"op": "replace", "path": "meta.version", "value": 'W/"9"'}, "mutability"),
        ({"op": "add", "path": "groups", "value": [{"value": "g"}]}, "mutability"),
        ({"op": "frobnicate", "path": "title", "value": "x"}, "invalidValue"),
        ({"path": "title", "value": "x"}, "invalidValue"),
        ({"op": "replace", "path": "title"}, "invalidValue"),
        ({"op": "remove"}, "noTarget"),
        ({"op": "replace", "path": "noSuchAttribute", "value": "x"}, "invalidPath"),
        ({"op": "replace", "path": 'emails[type eq "work', "value": "x"}, "invalidPath"),
        ({"op": "add", "path": "title", "value": 5}, "invalidValue"),
        ({"op": "replace", "path": "active", "value": "banana"}, "invalidValue"),
    ],
)
async def test_refused_operation_is_400_and_changes_nothing(
    scim: Scim, bjensen: dict[str, Any], operation: dict[str, Any], scim_type: str
) -> None:
    answer = await patch(scim, f"/Users/{bjensen['id']}", operation)

    assert answer.status == 400
    assert answer.error == (400, scim_type)
    assert answer.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    after = await read(scim, f"/Users/{bjensen['id']}")
    assert after["meta"]["version"] == 'W/"1"'
    assert after["userName"] == "bjensen"


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ({"schemas": [PATCH_OP]}, "invalidSyntax"),
        ({"schemas": [PATCH_OP], "Operations": {"op": "remove", "path": "title"}}, "invalidSyntax"),
        ({"schemas": [PATCH_OP], "Operations": "remove title"}, "invalidSyntax"),
        ([{"op": "remove", "path": "title"}], "invalidSyntax"),
        ({"schemas": [PATCH_OP], "Operations": []}, "invalidValue"),
        ({"schemas": [PATCH_OP], "Operations": ["remove title"]}, "invalidValue"),
        (
            {"schemas": [CORE_USER], "Operations": [{"op": "remove", "path": "title"}]},
            "invalidValue",
        ),
    ],
)
async def test_malformed_patch_message_is_400(
    scim: Scim, bjensen: dict[str, Any], body: Any, scim_type: str
) -> None:
    answer = await send(scim, f"/Users/{bjensen['id']}", body)

    assert answer.status == 400
    assert answer.error == (400, scim_type)
    assert (await read(scim, f"/Users/{bjensen['id']}"))["title"] == "Tour Guide"


async def test_body_that_is_not_json_is_400_invalid_syntax(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    response = await scim.request(
        "PATCH",
        f"/Users/{bjensen['id']}",
        data=b'{"Operations": [',
        headers={"Content-Type": "application/scim+json"},
    )

    assert response.status == 400
    assert (await response.json())["scimType"] == "invalidSyntax"


async def test_a_failing_operation_undoes_the_operations_before_it(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "replace", "path": "title", "value": "Manager"},
        {"op": "add", "path": "emails", "value": [{"value": "x@example.com"}]},
        {"op": "remove", "path": "userName"},
    )

    assert answer.status == 400
    assert answer.error == (400, "mutability")
    after = await read(scim, f"/Users/{bjensen['id']}")
    assert after["title"] == "Tour Guide"
    assert len(after["emails"]) == 2
    assert after["meta"]["version"] == 'W/"1"'


async def test_patch_of_a_missing_resource_is_404(scim: Scim) -> None:
    answer = await patch(
        scim, "/Users/no-such-id", {"op": "replace", "path": "title", "value": "x"}
    )

    assert answer.status == 404
    assert answer.error == (404, None)


async def test_patch_cannot_reach_another_tenants_resource(
    scim: Scim, other_scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        other_scim,
        f"/Users/{bjensen['id']}",
        {"op": "replace", "path": "title", "value": "Hijacked"},
    )

    assert answer.status == 404
    assert (await read(scim, f"/Users/{bjensen['id']}"))["title"] == "Tour Guide"


# --- passwords -------------------------------------------------------------------------------


async def test_okta_password_push_changes_the_hash_and_is_never_returned(
    scim: Scim, bjensen: dict[str, Any], mongo_db: AsyncDatabase[Any]
) -> None:
    before = (await mongo_db.users.find_one({"_id": bjensen["id"]}))["pw"]

    # Okta OIN template: path-less replace of the password.
    answer = await send(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"password": "n3wS3cret!"}}],
        },
    )

    assert answer.status == 200
    assert "password" not in answer.body
    assert "password" not in await read(scim, f"/Users/{bjensen['id']}")
    document = await mongo_db.users.find_one({"_id": bjensen["id"]})
    assert document["pw"].startswith("scrypt$")
    assert document["pw"] != before
    assert "n3wS3cret!" not in str(document)
    assert "password" not in document["r"]


async def test_password_by_path_changes_the_hash(
    scim: Scim, bjensen: dict[str, Any], mongo_db: AsyncDatabase[Any]
) -> None:
    before = (await mongo_db.users.find_one({"_id": bjensen["id"]}))["pw"]

    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "replace", "path": "password", "value": "an0ther!"}
    )

    assert answer.status == 200
    assert "password" not in answer.body
    assert (await mongo_db.users.find_one({"_id": bjensen["id"]}))["pw"] != before


async def test_patch_without_password_keeps_the_hash(
    scim: Scim, bjensen: dict[str, Any], mongo_db: AsyncDatabase[Any]
) -> None:
    before = (await mongo_db.users.find_one({"_id": bjensen["id"]}))["pw"]

    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "replace", "path": "title", "value": "Manager"}
    )

    assert answer.status == 200
    assert (await mongo_db.users.find_one({"_id": bjensen["id"]}))["pw"] == before


# --- ETags ---------------------------------------------------------------------------------------


async def test_if_match_with_the_current_etag_applies_the_patch(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "replace", "path": "title", "value": "Manager"},
        headers={"If-Match": 'W/"1"'},
    )

    assert answer.status == 200
    assert answer.etag == 'W/"2"'


async def test_if_match_with_a_stale_etag_is_412_and_changes_nothing(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    first = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "replace", "path": "title", "value": "Manager"}
    )
    assert first.etag == 'W/"2"'

    stale = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "replace", "path": "title", "value": "Stale"},
        headers={"If-Match": 'W/"1"'},
    )

    assert stale.status == 412
    assert stale.error == (412, None)
    after = await read(scim, f"/Users/{bjensen['id']}")
    assert after["title"] == "Manager"
    assert after["meta"]["version"] == 'W/"2"'


async def test_membership_only_patch_changes_the_group_version(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("Engineering")
    assert group["meta"]["version"] == 'W/"1"'

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": people[0]}]},
    )

    assert answer.status == 204
    assert answer.body["meta"]["version"] == 'W/"2"'
    assert answer.etag == 'W/"2"'
    assert (await read(scim, f"/Groups/{group['id']}"))["meta"]["version"] == 'W/"2"'
    conditional = await scim.get(f"/Groups/{group['id']}", headers={"If-None-Match": 'W/"1"'})
    assert conditional.status == 200


async def test_membership_only_patch_with_stale_if_match_is_412_and_adds_nobody(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("Engineering")
    await patch(
        scim, f"/Groups/{group['id']}", {"op": "replace", "path": "displayName", "value": "Eng"}
    )

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": people[0]}]},
        headers={"If-Match": 'W/"1"'},
    )

    assert answer.status == 412
    assert member_ids(await read(scim, f"/Groups/{group['id']}")) == set()


# --- Okta ----------------------------------------------------------------------------------------


async def test_okta_deactivate_and_reactivate_path_less(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    # Okta OIN deactivate (literal) and reactivate.
    deactivated = await send(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        },
    )

    assert deactivated.status == 200
    assert deactivated.body["active"] is False
    assert deactivated.body["userName"] == "bjensen"
    assert (await read(scim, f"/Users/{bjensen['id']}"))["active"] is False

    reactivated = await send(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": True}}],
        },
    )

    assert reactivated.status == 200
    assert reactivated.body["active"] is True


async def test_okta_group_rename_with_its_own_id_in_the_value(scim: Scim) -> None:
    group = await scim.create_group("Test SCIMv2")

    # Okta OIN rename: `id` inside `value` is legacy; the same id is accepted.
    answer = await send(
        scim,
        f"/Groups/{group['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "replace",
                    "value": {"id": group["id"], "displayName": "Test SCIMv2 renamed"},
                }
            ],
        },
    )

    assert answer.status == 204
    assert answer.body["id"] == group["id"]
    assert answer.body["displayName"] == "Test SCIMv2 renamed"


async def test_okta_group_rename_with_another_id_is_refused(scim: Scim) -> None:
    group = await scim.create_group("Test SCIMv2")
    other = await scim.create_group("Other")

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "replace", "value": {"id": other["id"], "displayName": "X"}},
    )

    assert answer.error == (400, "mutability")
    assert (await read(scim, f"/Groups/{group['id']}"))["displayName"] == "Test SCIMv2"


async def test_okta_membership_delta_removes_by_filter_then_adds(
    scim: Scim, people: list[str]
) -> None:
    leaving, staying, joining = people[0], people[1], people[2]
    group = await scim.create_group("Test SCIMv2", members=[leaving, staying])

    # Okta OIN membership PATCH, literal shape.
    answer = await send(
        scim,
        f"/Groups/{group['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "remove", "path": f'members[value eq "{leaving}"]'},
                {
                    "op": "add",
                    "path": "members",
                    "value": [{"value": joining, "display": "user2@okta.local"}],
                },
            ],
        },
    )

    assert answer.status == 204
    assert member_ids(answer.body) == {staying, joining}
    joined = next(m for m in answer.body["members"] if m["value"] == joining)
    assert joined["type"] == "User"
    assert joined["display"] == "user2@okta.local"
    assert member_ids(await read(scim, f"/Groups/{group['id']}")) == {staying, joining}


async def test_okta_several_removes_then_one_add_with_several_values(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("Test SCIMv2", members=people[:3])

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "remove", "path": f'members[value eq "{people[0]}"]'},
        {"op": "remove", "path": f'members[value eq "{people[1]}"]'},
        {
            "op": "add",
            "path": "members",
            "value": [
                {"value": people[3], "display": "user3@okta.local"},
                {"value": people[4], "display": "user4@okta.local"},
            ],
        },
    )

    assert answer.status == 204
    assert member_ids(answer.body) == {people[2], people[3], people[4]}


async def test_members_filter_joined_by_or_removes_each_named_member(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("G", members=people[:3])

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {
            "op": "remove",
            "path": f'members[value eq "{people[0]}" or value eq "{people[2]}"]',
        },
    )

    assert answer.status == 204
    assert member_ids(answer.body) == {people[1]}


async def test_okta_push_now_replaces_members_exactly(scim: Scim, people: list[str]) -> None:
    group = await scim.create_group("Test SCIMv2", members=people[:3])

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {
            "op": "replace",
            "path": "members",
            "value": [
                {"value": people[2], "display": "user2@okta.local"},
                {"value": people[3], "display": "user3@okta.local"},
            ],
        },
    )

    assert answer.status == 204
    assert member_ids(answer.body) == {people[2], people[3]}
    assert member_ids(await read(scim, f"/Groups/{group['id']}")) == {people[2], people[3]}


# --- JumpCloud -----------------------------------------------------------------------------------


async def test_jumpcloud_member_add_and_remove_with_value_arrays(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("JC", members=people[:2])

    # JumpCloud: no filter, no display, no type.
    added = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": people[2]}]},
    )
    removed = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "remove", "path": "members", "value": [{"value": people[0]}]},
    )

    assert added.status == 204
    assert member_ids(added.body) == set(people[:3])
    assert removed.status == 204
    assert member_ids(removed.body) == {people[1], people[2]}


# --- Entra ---------------------------------------------------------------------------------------


async def test_entra_disable_with_capitalised_op_and_string_boolean(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    # Entra, default (non-flag) behaviour: capitalised op, "False" as a string.
    answer = await send(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        },
    )

    assert answer.status == 200
    assert answer.body["active"] is False

    enabled = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "Replace", "path": "active", "value": "True"}
    )

    assert enabled.body["active"] is True


async def test_entra_single_value_add(scim: Scim, bjensen: dict[str, Any]) -> None:
    answer = await send(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "nickName", "value": "Babs"}],
        },
    )

    assert answer.status == 200
    assert answer.body["nickName"] == "Babs"


async def test_entra_multi_attribute_update_one_replace_per_path(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await send(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "Replace",
                    "path": 'emails[type eq "work"].value',
                    "value": "barbara@contoso.com",
                },
                {"op": "Replace", "path": "name.givenName", "value": "Barb"},
                {
                    "op": "Replace",
                    "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",  # noqa: E501
                    "value": "42",
                },
            ],
        },
    )

    assert answer.status == 200
    assert answer.body["emails"][0] == {
        "value": "barbara@contoso.com",
        "type": "work",
        "primary": True,
    }
    assert answer.body["emails"][1] == {"value": "babs@jensen.org", "type": "home"}
    assert answer.body["name"] == {"givenName": "Barb", "familyName": "Jensen"}
    assert answer.body[ENTERPRISE] == {"employeeNumber": "42"}


async def test_entra_path_less_replace_with_dotted_keys(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    # Entra with aadOptscim062020: lower-case op, path-less value with attribute paths as keys.
    answer = await send(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "replace",
                    "value": {
                        "displayName": "Barbara J",
                        "name.givenName": "X",
                        "name.familyName": "Y",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "7",  # noqa: E501
                    },
                }
            ],
        },
    )

    assert answer.status == 200
    assert answer.body["displayName"] == "Barbara J"
    assert answer.body["name"] == {"givenName": "X", "familyName": "Y"}
    assert answer.body[ENTERPRISE] == {"employeeNumber": "7"}


async def test_entra_path_less_replace_with_value_filter_keys(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    # Entra §4 with aadOptscim062020: the whole default mapping as keys of one path-less value.
    answer = await send(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "replace",
                    "value": {
                        "userName": "bjensen",
                        "active": True,
                        "displayName": "Barbara J",
                        "title": "Guide",
                        'emails[type eq "work"].value': "barbara@contoso.com",
                        "name.givenName": "Barb",
                        "name.familyName": "Jensen-Smith",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Tours",  # noqa: E501
                    },
                }
            ],
        },
    )

    assert answer.status == 200, answer.body
    assert answer.body["emails"] == [
        {"value": "barbara@contoso.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ]
    assert answer.body["name"] == {"givenName": "Barb", "familyName": "Jensen-Smith"}
    assert (answer.body["displayName"], answer.body["title"]) == ("Barbara J", "Guide")
    assert answer.body[ENTERPRISE] == {"department": "Tours"}


async def test_path_less_value_filter_key_creates_the_entry_it_describes(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    # As the pathed form does (DIALECT_POLICY): an entry matching nothing yet is created.
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "replace",
            "value": {
                'addresses[type eq "work"].locality': "Redmond",
                "nickName": "Babs",
                'phoneNumbers[type eq "mobile"].value': "+1 555 0100",
            },
        },
    )

    assert answer.status == 200, answer.body
    assert answer.body["addresses"] == [{"type": "work", "locality": "Redmond"}]
    assert answer.body["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100"}]
    assert answer.body["nickName"] == "Babs"


async def test_path_less_add_with_a_value_filter_key_adds_to_the_entry_it_names(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "Add", "value": {'emails[type eq "home"].display': "Babs at home"}},
    )

    assert answer.status == 200, answer.body
    assert answer.body["emails"][1] == {
        "value": "babs@jensen.org",
        "type": "home",
        "display": "Babs at home",
    }


async def test_path_less_value_filter_key_of_an_undeclared_attribute_is_400(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "replace", "value": {'badges[type eq "work"].value': "x"}},
    )

    assert answer.status == 400
    assert answer.body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_entra_optscim062020_lifecycle_over_users_the_entra_profile_created(
    client: TestClient, scim: Scim
) -> None:
    """The flag profile adopts the people the default profile created, and PATCHes them."""
    directory = Directory.generate(seed=7, users=6, groups=3, members_per_group=3)
    for name in ("entra", "entra-optscim062020"):
        profile = build_profile(
            name,
            str(client.make_url("/scim/v2/acme")),
            scim.token,
            directory,
            seed=7,
            transport_options={"journal": Journal()},
            profile_options={"ad_group_schema": False},
        )
        try:
            summary = await full_lifecycle(profile)
        finally:
            await profile.transport.close()

        assert summary.failures == [], name


async def test_entra_capitalised_dotted_key_replace(scim: Scim, bjensen: dict[str, Any]) -> None:
    answer = await patch(
        scim, f"/Users/{bjensen['id']}", {"op": "Replace", "value": {"name.givenName": "X"}}
    )

    assert answer.status == 200
    assert answer.body["name"] == {"givenName": "X", "familyName": "Jensen"}


async def test_entra_add_member_with_null_ref(scim: Scim, people: list[str]) -> None:
    group = await scim.create_group("Entra group")

    answer = await send(
        scim,
        f"/Groups/{group['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "Add", "path": "members", "value": [{"$ref": None, "value": people[0]}]}
            ],
        },
    )

    assert answer.status == 204
    assert answer.body["members"] == [
        {
            "value": people[0],
            "$ref": answer.body["members"][0]["$ref"],
            "type": "User",
            "display": "user0@okta.local",
        }
    ]
    assert answer.body["members"][0]["$ref"].endswith(f"/scim/v2/acme/Users/{people[0]}")


async def test_entra_remove_with_value_list_removes_only_those_members(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("Entra group", members=people)

    answer = await send(
        scim,
        f"/Groups/{group['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {
                    "op": "Remove",
                    "path": "members",
                    "value": [{"value": people[1]}, {"value": people[3]}],
                }
            ],
        },
    )

    assert answer.status == 204
    assert member_ids(answer.body) == {people[0], people[2], people[4]}
    assert member_ids(await read(scim, f"/Groups/{group['id']}")) == {
        people[0],
        people[2],
        people[4],
    }


async def test_remove_naming_non_members_never_widens_to_the_others(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("G", members=people[:3])

    by_value = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "Remove", "path": "members", "value": [{"value": people[4]}]},
    )
    by_filter = await patch(
        scim, f"/Groups/{group['id']}", {"op": "remove", "path": 'members[value eq "not-a-member"]'}
    )
    empty_list = await patch(
        scim, f"/Groups/{group['id']}", {"op": "remove", "path": "members", "value": []}
    )

    for answer in (by_value, by_filter, empty_list):
        assert answer.status == 204
        assert member_ids(answer.body) == set(people[:3])


async def test_entra_remove_with_value_list_on_a_user_attribute_removes_only_those(
    scim: Scim, bjensen: dict[str, Any]
) -> None:
    answer = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {
            "op": "Remove",
            "path": "emails",
            "value": [{"value": "babs@jensen.org"}],
        },
    )

    assert answer.status == 200
    assert answer.body["emails"] == [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
    ]

    nothing = await patch(
        scim,
        f"/Users/{bjensen['id']}",
        {"op": "Remove", "path": "emails", "value": [{"value": "x@y.z"}]},
    )

    assert nothing.status == 200
    assert len(nothing.body["emails"]) == 1


# --- group members: the rest of §3.5.2 ---------------------------------------------------------


async def test_remove_members_without_value_clears_them_all(
    scim: Scim, people: list[str], mongo_db: AsyncDatabase[Any]
) -> None:
    group = await scim.create_group("G", members=people)
    kept = await scim.create_group("Kept", members=people[:2])

    answer = await patch(scim, f"/Groups/{group['id']}", {"op": "remove", "path": "members"})

    assert answer.status == 204
    assert "members" not in answer.body
    assert answer.body["displayName"] == "G"
    assert await mongo_db.memberships.count_documents({"group": group["id"]}) == 0
    assert member_ids(await read(scim, f"/Groups/{kept['id']}")) == set(people[:2])


async def test_remove_members_by_their_urn_path(scim: Scim, people: list[str]) -> None:
    group = await scim.create_group("G", members=people[:2])

    answer = await patch(
        scim, f"/Groups/{group['id']}", {"op": "remove", "path": f"{CORE_GROUP}:members"}
    )

    assert answer.status == 204
    assert "members" not in answer.body


async def test_replace_members_sets_exactly_the_given_members(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("G", members=people[:3])

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {
            "op": "replace",
            "path": "members",
            "value": [{"value": people[1]}, {"value": people[4]}],
        },
    )

    assert answer.status == 204
    assert member_ids(answer.body) == {people[1], people[4]}


async def test_replace_members_with_an_empty_list_clears_them(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("G", members=people[:3])

    answer = await patch(
        scim, f"/Groups/{group['id']}", {"op": "replace", "path": "members", "value": []}
    )

    assert answer.status == 204
    assert member_ids(answer.body) == set()


async def test_adding_a_present_member_keeps_a_single_membership(
    scim: Scim, people: list[str], mongo_db: AsyncDatabase[Any]
) -> None:
    group = await scim.create_group("G", members=people[:1])

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {
            "op": "add",
            "path": "members",
            "value": [{"value": people[0]}, {"value": people[0]}],
        },
    )

    assert answer.status == 204
    assert [m["value"] for m in answer.body["members"]] == [people[0]]
    assert await mongo_db.memberships.count_documents({"group": group["id"]}) == 1


async def test_path_less_add_with_members_and_display_name(scim: Scim, people: list[str]) -> None:
    group = await scim.create_group("G")

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {
            "op": "add",
            "value": {"displayName": "G2", "members": [{"value": people[0]}]},
        },
    )

    assert answer.status == 204
    assert answer.body["displayName"] == "G2"
    assert member_ids(answer.body) == {people[0]}


async def test_group_can_be_a_member_and_users_see_it_in_groups(
    scim: Scim, people: list[str]
) -> None:
    inner = await scim.create_group("Inner", members=[people[0]])
    outer = await scim.create_group("Outer")

    answer = await patch(
        scim,
        f"/Groups/{outer['id']}",
        {"op": "add", "path": "members", "value": [{"value": inner["id"]}]},
    )

    assert answer.status == 204
    assert answer.body["members"][0]["type"] == "Group"
    groups = (await read(scim, f"/Users/{people[0]}"))["groups"]
    assert {(g["value"], g["type"]) for g in groups} == {
        (inner["id"], "direct"),
        (outer["id"], "indirect"),
    }


async def test_unknown_member_id_fails_the_whole_patch(scim: Scim, people: list[str]) -> None:
    group = await scim.create_group("G", members=people[:2])

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "replace", "path": "displayName", "value": "Renamed"},
        {"op": "remove", "path": f'members[value eq "{people[0]}"]'},
        {
            "op": "add",
            "path": "members",
            "value": [{"value": people[2]}, {"value": "no-such-user"}],
        },
    )

    assert answer.status == 400
    assert answer.error == (400, "invalidValue")
    assert "no-such-user" in answer.body["detail"]
    after = await read(scim, f"/Groups/{group['id']}")
    assert after["displayName"] == "G"
    assert member_ids(after) == set(people[:2])
    assert after["meta"]["version"] == 'W/"1"'


async def test_member_of_another_tenant_is_unknown(
    scim: Scim, other_scim: Scim, people: list[str]
) -> None:
    stranger = await other_scim.create_user("stranger")
    group = await scim.create_group("G")

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": stranger["id"]}]},
    )

    assert answer.error == (400, "invalidValue")
    assert member_ids(await read(scim, f"/Groups/{group['id']}")) == set()


@pytest.mark.parametrize(
    ("operation", "scim_type"),
    [
        ({"op": "add", "path": 'members[value eq "x"]', "value": [{"value": "x"}]}, "invalidPath"),
        ({"op": "replace", "path": "members.value", "value": "x"}, "invalidPath"),
        ({"op": "remove", "path": 'members[display eq "someone"]'}, "invalidFilter"),
        ({"op": "add", "path": "members", "value": [{"display": "no value"}]}, "invalidValue"),
        ({"op": "add", "path": "members", "value": ["bare-id"]}, "invalidValue"),
        ({"op": "remove", "path": "displayName"}, "mutability"),
    ],
)
async def test_refused_group_operation_changes_nothing(
    scim: Scim, people: list[str], operation: dict[str, Any], scim_type: str
) -> None:
    group = await scim.create_group("G", members=people[:2])

    answer = await patch(scim, f"/Groups/{group['id']}", operation)

    assert answer.error == (400, scim_type)
    after = await read(scim, f"/Groups/{group['id']}")
    assert member_ids(after) == set(people[:2])
    assert after["displayName"] == "G"


async def test_group_cannot_become_its_own_member(scim: Scim) -> None:
    group = await scim.create_group("G")

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": group["id"]}]},
    )

    assert answer.error == (400, "invalidValue")


async def test_member_declared_with_the_wrong_type_is_refused(
    scim: Scim, people: list[str]
) -> None:
    group = await scim.create_group("G")

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {
            "op": "add",
            "path": "members",
            "value": [{"value": people[0], "type": "Group"}],
        },
    )

    assert answer.error == (400, "invalidValue")
    assert member_ids(await read(scim, f"/Groups/{group['id']}")) == set()


async def test_a_group_patch_answers_no_content_unless_attributes_are_asked_for(
    scim: Scim,
) -> None:
    """By default a Group PATCH answers 204 and its new ETag (RFC 7644 §3.5.2), as Okta, Entra
    and JumpCloud accept: the answer never renders the group's members. A client that names
    ``attributes`` or ``excludedAttributes`` asks for a body, and gets 200 with that
    projection. Users are not affected."""
    user = await scim.create_user("alice")
    group = await scim.create_group("Readers")
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}],
    }

    response = await scim.patch(f"/Groups/{group['id']}", body)
    assert response.status == 204
    assert response.headers["ETag"] == 'W/"2"'
    assert await response.read() == b""
    assert member_ids(await read(scim, f"/Groups/{group['id']}")) == {user["id"]}

    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Writers"}],
    }
    asked = await scim.patch(f"/Groups/{group['id']}?attributes=displayName", rename)
    assert asked.status == 200
    assert await asked.json() == {
        "schemas": [CORE_GROUP],
        "id": group["id"],
        "displayName": "Writers",
    }
    slim = await scim.patch(f"/Groups/{group['id']}?excludedAttributes=members", rename)
    assert slim.status == 200
    assert "members" not in await slim.json()
    whole = await scim.patch(f"/Groups/{group['id']}?attributes=members", rename)
    assert whole.status == 200
    assert member_ids(await whole.json()) == {user["id"]}
    user_patch = await scim.patch(
        f"/Users/{user['id']}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": "x"}]},
    )
    assert user_patch.status == 200


async def test_a_group_patch_answers_the_whole_group_when_configured_to(
    aiohttp_client: Any,
    settings: Settings,
    mongo_db: Any,
) -> None:
    """``SCIM_GROUP_PATCH_RESPONSE=resource`` keeps the older answer: 200 with the group."""
    app = create_app(dataclasses.replace(settings, group_patch_response="resource"))
    client = await aiohttp_client(app)
    tenant = await make_tenant(client, "acme")
    scim = Scim(client, "acme", tenant["token"])
    user = await scim.create_user("alice")
    group = await scim.create_group("Readers")

    answer = await patch(
        scim,
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": user["id"]}]},
    )

    assert answer.status == 200
    assert answer.etag == 'W/"2"'
    assert member_ids(answer.body) == {user["id"]}
