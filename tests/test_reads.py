"""The read path: how a resource is found by id, and what a read answers.

A resource is read by its primary key alone (``{"_id": id}``), the one query shape every
store runs as a direct lookup; its tenant, its resource type and a landed deletion are
checked on the document found, so the answer is the one the query with those conditions
gave: another tenant's id, another type's id and a deleted resource are all 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scim2_models import Context, ResponseParameters

from scim_server.models import UserModel
from tests.support.entitlements import entitlement_app
from tests.support.plans import FINDS, recording_finds, sent_find
from tests.support.scim import Scim, scim_error
from tests.support.urns import ENTERPRISE, GROUP, USER


async def _sent_filter(collection: str, request: Any) -> dict[str, Any]:
    """The filter of the one ``find`` on ``collection`` the request sent."""
    response = await recording_finds(request)
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


async def _sent_member_lookup(scim: Scim, body: Any) -> Any:
    """The filter of the lookup of a new group's members among the users (the ``find`` that
    reads their names and membership hint, ``gm``)."""
    response = await recording_finds(scim.post("/Groups", json=body))
    assert response.status == 201, await response.text()
    (lookup,) = [
        command
        for command in FINDS.seen
        if command["find"] == "users" and "gm" in command.get("projection", {})
    ]
    return lookup["filter"]


async def test_the_members_of_a_new_group_are_looked_up_by_their_primary_keys_alone(
    scim: Scim,
) -> None:
    ada, grace = await scim.create_user("ada"), await scim.create_user("grace")
    body = {"schemas": [GROUP], "displayName": "eng", "members": [{"value": ada["id"]}]}
    assert await _sent_member_lookup(scim, body) == {"_id": ada["id"]}
    body = {
        "schemas": [GROUP],
        "displayName": "ops",
        "members": [{"value": ada["id"]}, {"value": grace["id"]}],
    }
    sent = await _sent_member_lookup(scim, body)
    assert sent.keys() == {"_id"}
    assert sorted(sent["_id"]["$in"]) == sorted([ada["id"], grace["id"]])


async def test_a_user_whose_deletion_landed_is_no_member_to_add(scim: Scim, mongo_db: Any) -> None:
    user = await scim.create_user("ada")
    await mongo_db.users.update_one({"_id": user["id"]}, {"$set": {"dl": True}})
    body = {"schemas": [GROUP], "displayName": "eng", "members": [{"value": user["id"]}]}
    await scim_error(await scim.post("/Groups", json=body), 400)


# --- what a read renders --------------------------------------------------------------------
#
# A read serves the stored form as it is (``rendering.to_payload``), without validating it
# through scim2-models, unless ``attributes`` or ``excludedAttributes`` ask for a projection
# (``Selection.apply``). The properties below hold that to what the model renders: for every
# user the server stores, the body a client gets is the model's dump of it, whole and under
# any selection.

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12
)
WORD = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
TYPE = st.sampled_from(["work", "home", "other"])


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Dictionaries holding any subset of ``fields``."""
    return st.fixed_dictionaries({}, optional=fields)


def _emails(addresses: list[tuple[str, str]], first_primary: bool) -> list[dict[str, Any]]:
    """Email entries, the first one primary if ``first_primary`` (at most one may be)."""
    emails: list[dict[str, Any]] = [
        {"value": f"{local}@example.com", "type": kind} for local, kind in addresses
    ]
    if emails and first_primary:
        emails[0]["primary"] = True
    return emails


USER_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "externalId": TEXT,
        "displayName": TEXT,
        "nickName": TEXT,
        "title": TEXT,
        "userType": TEXT,
        "active": st.booleans(),
        "preferredLanguage": st.sampled_from(["en-US", "fr", "de-CH"]),
        "timezone": st.sampled_from(["Europe/Paris", "America/Los_Angeles"]),
        "password": TEXT,
        "name": _optional(givenName=TEXT, familyName=TEXT, formatted=TEXT, middleName=TEXT),
        "emails": st.builds(_emails, st.lists(st.tuples(WORD, TYPE), max_size=3), st.booleans()),
        "phoneNumbers": st.lists(
            st.fixed_dictionaries(
                {"value": st.from_regex(r"\+1 555 0[0-9]{3}", fullmatch=True)},
                optional={"type": TYPE},
            ),
            max_size=2,
        ),
        "addresses": st.lists(
            _optional(
                streetAddress=TEXT, locality=TEXT, postalCode=WORD, country=st.just("FR"), type=TYPE
            ),
            max_size=2,
        ),
        "roles": st.lists(_optional(value=TEXT, display=TEXT, type=TEXT), max_size=2),
        ENTERPRISE: _optional(
            employeeNumber=TEXT,
            costCenter=TEXT,
            organization=TEXT,
            department=TEXT,
            manager=st.fixed_dictionaries({"value": WORD}),
        ),
    },
)

SELECTABLE = st.sampled_from(
    [
        "userName",
        "name",
        "name.givenName",
        "emails",
        "emails.value",
        "displayName",
        "active",
        "meta",
        "roles.value",
        f"{ENTERPRISE}:department",
        f"{ENTERPRISE}:manager",
        ENTERPRISE,
        "password",
        "groups",
    ]
)
SELECTIONS = st.one_of(
    st.just({}),
    st.lists(SELECTABLE, min_size=1, max_size=3).map(lambda a: {"attributes": ",".join(a)}),
    st.lists(SELECTABLE, min_size=1, max_size=3).map(lambda a: {"excludedAttributes": ",".join(a)}),
)

RENDERS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def model_render(payload: dict[str, Any], selection: dict[str, str]) -> dict[str, Any]:
    """What scim2-models renders of a user as a query response, under ``selection``; ``meta``
    as given (the model re-dumps its timestamps with microseconds)."""
    parameters = ResponseParameters[UserModel].model_validate(  # type: ignore[valid-type]
        {
            "attributes": selection["attributes"].split(",") if "attributes" in selection else None,
            "excludedAttributes": selection["excludedAttributes"].split(",")
            if "excludedAttributes" in selection
            else None,
        }
    )
    dumped = UserModel.model_validate(payload).model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=parameters
    )
    if "meta" in dumped:
        dumped["meta"] = {key: payload["meta"][key] for key in dumped["meta"]}
    return dict(dumped)


@RENDERS
@given(body=USER_BODIES, selection=SELECTIONS)
async def test_a_read_renders_what_the_model_renders_of_the_stored_user(
    scim: Scim, body: dict[str, Any], selection: dict[str, str]
) -> None:
    body = {"schemas": [USER], "userName": f"u{uuid.uuid4().hex}", **body}
    created = await scim.post("/Users", json=body)
    assert created.status == 201, await created.text()
    user_id = (await created.json())["id"]
    whole = await (await scim.get(f"/Users/{user_id}")).json()
    assert whole == model_render(whole, {})
    read = await scim.get(f"/Users/{user_id}", params=selection)
    assert read.status == 200, await read.text()
    assert await read.json() == model_render(whole, selection)
    await scim.delete(f"/Users/{user_id}")
