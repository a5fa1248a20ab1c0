"""The ``entra-validator`` suite: the Microsoft SCIM Validator's tests, Entra's bodies.

Each check is one scenario the validator or the Entra provisioning service runs (create, get,
filter by the joining properties, PATCH add / replace / remove, manager, enterprise attributes,
groups, delete). The provisioning service's checks send its exact shapes (E1, E2): capitalised
``op`` values, ``"False"`` as a string, ``emails[type eq "work"].value`` paths, the ADSCIM
group URN, members as ``[{"$ref": null, "value": id}]``; and, for tenants with the
``aadOptscim062020`` flag, the path-less ``replace`` with dotted keys and the member
``remove`` by value filter. The validator's own tests (E3, names from its published results)
send its lower-case shapes and count towards the ``MS validator core`` or ``MS validator
preview`` profile. Every check creates its own resources under the run's prefix and proves its
outcome by reading them back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from conformance.checks import (
    Context,
    check,
    expect_object,
    expect_status,
    require,
    resources_of,
)
from conformance.http import Response
from conformance.urns import ENTERPRISE, GROUP, PATCH_OP, USER

S = "entra-validator"
E1 = "Microsoft Entra SCIM tutorial (use-scim-to-provision-users-and-groups)"
E2 = (
    "Microsoft Entra SCIM compatibility notes (application-provisioning-config-problem-"
    "scim-compatibility)"
)
E3 = "Microsoft SCIM Validator (scim-validator-tutorial; test names from its published results)"
FLAG = f"{E2}, aadOptscim062020 flag"
CORE = "MS validator core"
PREVIEW = "MS validator preview"
"""The profiles of the Microsoft SCIM Validator's core and preview tests: each check that
reproduces one of its tests (with the validator's own request shapes) counts towards one."""
ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
ENTRA_HEADERS = {"User-Agent": "Microsoft Azure AD SCIM provisioning 1.0.0"}


# --- Entra's requests ---------------------------------------------------------------------


def user_body(ctx: Context, **enterprise: Any) -> dict[str, Any]:
    """A create as Entra sends it: UPN userName, mailNickname externalId, enterprise URN."""
    user_name = ctx.fixtures.name("entra")
    given, family = "Barbara", "Jensen"
    body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "externalId": f"{user_name}-nick",
        "userName": f"{user_name}@contoso.example",
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": f"{user_name}@contoso.example"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": f"{given} {family}", "familyName": family, "givenName": given},
        "roles": [],
    }
    if enterprise:
        body[ENTERPRISE] = enterprise
    return body


async def create_user(ctx: Context, **enterprise: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST the Entra body; returns (what was sent, what the server answered)."""
    body = user_body(ctx, **enterprise)
    response = await ctx.http.post("/Users", body, headers=ENTRA_HEADERS)
    ctx.fixtures.track("/Users", response.json())
    expect_status(response, 201, what="POST /Users")
    return body, expect_object(response)


def group_body(ctx: Context) -> dict[str, Any]:
    """A group create as Entra sends it: the ADSCIM URN, externalId the objectId, no members."""
    return {
        "schemas": [GROUP, ADSCIM_GROUP],
        "externalId": str(uuid.uuid4()),
        "displayName": ctx.fixtures.name("entra-group"),
    }


async def create_group(ctx: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    body = group_body(ctx)
    response = await ctx.http.post("/Groups", body, headers=ENTRA_HEADERS)
    ctx.fixtures.track("/Groups", response.json())
    expect_status(response, 201, what="POST /Groups")
    return body, expect_object(response)


async def patch(ctx: Context, path: str, *operations: dict[str, Any]) -> Response:
    """Entra's PATCH; 200 and 204 are both accepted (RFC 7644 §3.5.2; Entra expects 204)."""
    response = await ctx.http.patch(
        path, {"schemas": [PATCH_OP], "Operations": list(operations)}, headers=ENTRA_HEADERS
    )
    expect_status(response, 200, 204, what=f"PATCH {path}")
    return response


async def add_member(ctx: Context, group_id: str, user_id: str) -> None:
    """Entra's member add: ``Add`` on members with ``[{"$ref": null, "value": id}]``."""
    await patch(
        ctx,
        f"/Groups/{group_id}",
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}]},
    )


async def read(ctx: Context, path: str, **params: str) -> dict[str, Any]:
    response = await ctx.http.get(path, params=params or None, headers=ENTRA_HEADERS)
    expect_status(response, 200, what=f"GET {path}")
    return expect_object(response)


async def listing(ctx: Context, endpoint: str, **params: str) -> list[dict[str, Any]]:
    response = await ctx.http.get(endpoint, params=params, headers=ENTRA_HEADERS)
    expect_status(response, 200, what=f"GET {endpoint} with {params}")
    body = expect_object(response)
    found = resources_of(response)
    require(
        body.get("totalResults") == len(found),
        f"totalResults is {body.get('totalResults')!r} for {len(found)} resources",
    )
    return found


def ids(resources: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("id")) for r in resources]


def work_email(user: dict[str, Any]) -> Any:
    return next(
        (
            e.get("value")
            for e in user.get("emails") or []
            if isinstance(e, dict) and e.get("type") == "work"
        ),
        None,
    )


def manager_of(user: dict[str, Any]) -> Any:
    return (user.get(ENTERPRISE) or {}).get("manager")


def require_manager(user: dict[str, Any], manager_id: str) -> None:
    """Fail unless ``user``'s enterprise manager is the user ``manager_id``."""
    value = (manager_of(user) or {}).get("value")
    require(value == manager_id, f"manager.value is {value!r}, not {manager_id!r}")


def member_ids(group: dict[str, Any]) -> list[str]:
    return sorted(str(m.get("value")) for m in group.get("members") or [])


# --- users --------------------------------------------------------------------------------


@check(
    S,
    "entra.user.create",
    "Create a user with Entra's body",
    f"{E3}; {E1}",
    "POST /Users with externalId, userName, active, a work email, name, roles [] and the "
    "enterprise URN: 201 with an id and the values sent.",
    profiles=(CORE,),
)
async def user_create(ctx: Context) -> None:
    body, user = await create_user(ctx, employeeNumber="701984", department="Tour Operations")
    require(isinstance(user.get("id"), str) and user["id"], "no id in the response")
    require(user.get("userName") == body["userName"], f"userName is {user.get('userName')!r}")
    require(
        user.get("externalId") == body["externalId"],
        f"externalId is {user.get('externalId')!r}, not {body['externalId']!r}",
    )
    require(user.get("active") is True, f"active is {user.get('active')!r}")
    require(work_email(user) == body["emails"][0]["value"], "the work email was not kept")
    require((user.get("name") or {}).get("givenName") == "Barbara", "name.givenName lost")


@check(
    S,
    "entra.user.get-by-id",
    "Get the created user by id",
    f"{E3}; {E1}",
    "GET /Users/{id}: 200 with the same id, userName and externalId.",
)
async def user_get(ctx: Context) -> None:
    body, user = await create_user(ctx)
    fetched = await read(ctx, f"/Users/{user['id']}")
    require(fetched.get("id") == user["id"], f"id is {fetched.get('id')!r}")
    require(fetched.get("userName") == body["userName"], "userName differs")
    require(fetched.get("externalId") == body["externalId"], "externalId differs")


@check(
    S,
    "entra.user.filter-username",
    "Filter users by userName, any case",
    f"{E3}; {E1}",
    'GET /Users?filter=userName eq "…" finds exactly the user, also with the value in '
    "another case (userName is caseExact false); a random value finds nothing.",
    profiles=(CORE,),
)
async def user_filter_username(ctx: Context) -> None:
    body, user = await create_user(ctx)
    for value in (body["userName"], body["userName"].upper()):
        found = await listing(ctx, "/Users", filter=f'userName eq "{value}"')
        require(ids(found) == [user["id"]], f"userName eq {value!r} found {ids(found)}")
    random = await listing(ctx, "/Users", filter=f'userName eq "{uuid.uuid4()}"')
    require(random == [], f"a random userName found {ids(random)}")


@check(
    S,
    "entra.user.filter-externalid",
    "Filter users by externalId, quoted or not",
    f"{E3}; {E1} (Example 1); Entra's matching on the objectId (2026 field reports)",
    'GET /Users?filter=externalId eq "…" finds exactly the user, whether the externalId is '
    "the mailNickname, sent unquoted as the tutorial prints it (externalId eq jyoung), or the "
    "objectId GUID Entra matches on.",
)
async def user_filter_externalid(ctx: Context) -> None:
    body, user = await create_user(ctx)
    nickname = body["externalId"]
    for expression in (f'externalId eq "{nickname}"', f"externalId eq {nickname}"):
        found = await listing(ctx, "/Users", filter=expression)
        require(ids(found) == [user["id"]], f"{expression!r} found {ids(found)}")
    other = await listing(ctx, "/Users", filter=f'externalId eq "{nickname}-x"')
    require(other == [], f"another externalId found {ids(other)}")
    object_id = str(uuid.uuid4())
    guid_body = {**user_body(ctx), "externalId": object_id}
    response = await ctx.http.post("/Users", guid_body, headers=ENTRA_HEADERS)
    ctx.fixtures.track("/Users", response.json())
    expect_status(response, 201, what="POST /Users with an objectId externalId")
    found = await listing(ctx, "/Users", filter=f'externalId eq "{object_id}"')
    wanted = [expect_object(response)["id"]]
    require(ids(found) == wanted, f"externalId eq the objectId found {ids(found)}, not {wanted}")


@check(
    S,
    "entra.user.filter-email",
    "Filter users by the work email",
    f"{E1} (uniqueness attributes must be filterable); Entra's email matching (field reports)",
    'A matching attribute must be filterable: emails[type eq "work"].value eq "…" and '
    'emails.value eq "…" each find exactly the user with that work email.',
)
async def user_filter_email(ctx: Context) -> None:
    body, user = await create_user(ctx)
    email = work_email(body)
    for expression in (
        f'emails[type eq "work"].value eq "{email}"',
        f'emails.value eq "{email}"',
    ):
        found = await listing(ctx, "/Users", filter=expression)
        require(ids(found) == [user["id"]], f"{expression!r} found {ids(found)}")
        other = await listing(ctx, "/Users", filter=expression.replace(email, f"x{email}"))
        require(other == [], f"{expression!r} for another address found {ids(other)}")


@check(
    S,
    "entra.user.replace-username-path",
    "PATCH Replace userName by its path",
    f"{E1}; {E2}",
    'Entra renames a user with {"op":"Replace","path":"userName","value":…}: the user then '
    "has that userName, is found by it, and no longer by the old one.",
)
async def user_replace_username_path(ctx: Context) -> None:
    body, user = await create_user(ctx)
    renamed = f"{ctx.fixtures.name('entra-renamed')}@contoso.example"
    await patch(
        ctx, f"/Users/{user['id']}", {"op": "Replace", "path": "userName", "value": renamed}
    )
    stored = await read(ctx, f"/Users/{user['id']}")
    require(stored.get("userName") == renamed, f"userName is {stored.get('userName')!r}")
    found = await listing(ctx, "/Users", filter=f'userName eq "{renamed}"')
    require(ids(found) == [user["id"]], f"the new userName found {ids(found)}")
    old = await listing(ctx, "/Users", filter=f'userName eq "{body["userName"]}"')
    require(old == [], f"the old userName still found {ids(old)}")


@check(
    S,
    "entra.user.duplicate",
    "Creating the same user again answers 409",
    E3,
    "The validator's duplicate-create scenario: a second POST with the same userName "
    "answers 409 Conflict (RFC 7644 §3.3) and creates nothing.",
    profiles=(CORE,),
)
async def user_duplicate(ctx: Context) -> None:
    body, user = await create_user(ctx)
    again = await ctx.http.post("/Users", body, headers=ENTRA_HEADERS)
    ctx.fixtures.track("/Users", again.json())
    expect_status(again, 409, what="second POST /Users")
    found = await listing(ctx, "/Users", filter=f'userName eq "{body["userName"]}"')
    require(ids(found) == [user["id"]], f"after the duplicate, userName eq found {ids(found)}")


@check(
    S,
    "entra.user.patch-replace",
    "PATCH Replace, one op per attribute",
    f"{E2}; {E3}",
    'Capitalised "Replace" ops on emails[type eq "work"].value, name.givenName and the '
    "enterprise employeeNumber each change exactly that value.",
    profiles=(PREVIEW,),
)
async def user_patch_replace(ctx: Context) -> None:
    body, user = await create_user(ctx, employeeNumber="100")
    new_email = body["userName"].replace("@", ".new@")
    await patch(
        ctx,
        f"/Users/{user['id']}",
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": new_email},
        {"op": "Replace", "path": "name.givenName", "value": "Babs"},
        {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "200"},
    )
    stored = await read(ctx, f"/Users/{user['id']}")
    require(work_email(stored) == new_email, f"work email is {work_email(stored)!r}")
    name = stored.get("name") or {}
    require(name.get("givenName") == "Babs", f"name.givenName is {name.get('givenName')!r}")
    require(name.get("familyName") == "Jensen", "name.familyName changed")
    number = (stored.get(ENTERPRISE) or {}).get("employeeNumber")
    require(number == "200", f"employeeNumber is {number!r}, not '200'")


@check(
    S,
    "entra.user.patch-add",
    "PATCH Add a single-valued attribute",
    f"{E2}; {E3}",
    '{"op":"Add","path":"nickName","value":"Babs"}: the capitalised op is compared '
    "case-insensitively and nickName is set.",
    profiles=(CORE,),
)
async def user_patch_add(ctx: Context) -> None:
    _, user = await create_user(ctx)
    require("nickName" not in user, "the fixture already has a nickName")
    await patch(ctx, f"/Users/{user['id']}", {"op": "Add", "path": "nickName", "value": "Babs"})
    stored = await read(ctx, f"/Users/{user['id']}")
    require(stored.get("nickName") == "Babs", f"nickName is {stored.get('nickName')!r}")


@check(
    S,
    "entra.user.patch-remove",
    "PATCH Remove an attribute",
    E3,
    '{"op":"Remove","path":"nickName"} removes nickName and nothing else.',
)
async def user_patch_remove(ctx: Context) -> None:
    _, user = await create_user(ctx)
    await patch(ctx, f"/Users/{user['id']}", {"op": "Add", "path": "nickName", "value": "Babs"})
    await patch(ctx, f"/Users/{user['id']}", {"op": "Remove", "path": "nickName"})
    stored = await read(ctx, f"/Users/{user['id']}")
    require("nickName" not in stored, f"nickName is still {stored.get('nickName')!r}")
    require(stored.get("userName") == user["userName"], "userName changed")
    require(work_email(stored) == work_email(user), "the work email changed")


@check(
    S,
    "entra.user.disable-false-string",
    'PATCH Replace active with the string "False"',
    E2,
    'Entra disables with {"op":"Replace","path":"active","value":"False"}: the user is '
    "then active false (a boolean), and still readable.",
    profiles=(CORE,),
)
async def user_disable(ctx: Context) -> None:
    _, user = await create_user(ctx)
    await patch(ctx, f"/Users/{user['id']}", {"op": "Replace", "path": "active", "value": "False"})
    stored = await read(ctx, f"/Users/{user['id']}")
    require(stored.get("active") is False, f"active is {stored.get('active')!r}, not false")
    await patch(ctx, f"/Users/{user['id']}", {"op": "Replace", "path": "active", "value": "True"})
    again = await read(ctx, f"/Users/{user['id']}")
    require(again.get("active") is True, f'after "True", active is {again.get("active")!r}')


@check(
    S,
    "entra.user.disable-boolean",
    "PATCH replace active with a boolean; a disabled user stays readable",
    f"{E1}; {FLAG}; {E2} (soft delete)",
    'The tutorial disables with {"op":"Replace","path":"active","value":false} and the '
    'aadOptscim062020 flag with {"op":"replace","path":"active","value":false}: the user is '
    "then active false, and still returned by GET and by a userName filter (Entra's soft "
    "delete), until re-enabled with true.",
)
async def user_disable_boolean(ctx: Context) -> None:
    body, user = await create_user(ctx)
    path = f"/Users/{user['id']}"
    for op in ("Replace", "replace"):
        await patch(ctx, path, {"op": op, "path": "active", "value": False})
        stored = await read(ctx, path)
        require(
            stored.get("active") is False, f"after {op} false, active is {stored.get('active')!r}"
        )
        found = await listing(ctx, "/Users", filter=f'userName eq "{body["userName"]}"')
        require(
            [(u.get("id"), u.get("active")) for u in found] == [(user["id"], False)],
            f"the disabled user is not found by userName as inactive: {found}",
        )
        await patch(ctx, path, {"op": op, "path": "active", "value": True})
        again = await read(ctx, path)
        require(again.get("active") is True, f"after {op} true, active is {again.get('active')!r}")


@check(
    S,
    "entra.user.patch-pathless-dotted",
    "PATCH replace without path, dotted keys",
    FLAG,
    'With aadOptscim062020 Entra sends {"op":"replace","value":{"displayName":…,'
    '"name.givenName":…,"urn:…:User:employeeNumber":…}}: each key sets that attribute.',
)
async def user_pathless_dotted(ctx: Context) -> None:
    _, user = await create_user(ctx, employeeNumber="100")
    await patch(
        ctx,
        f"/Users/{user['id']}",
        {
            "op": "replace",
            "value": {
                "displayName": "Babs Jensen",
                "name.givenName": "Babs",
                "name.familyName": "Jensen-Li",
                f"{ENTERPRISE}:employeeNumber": "300",
            },
        },
    )
    stored = await read(ctx, f"/Users/{user['id']}")
    name = stored.get("name") or {}
    got = (
        stored.get("displayName"),
        name.get("givenName"),
        name.get("familyName"),
        (stored.get(ENTERPRISE) or {}).get("employeeNumber"),
    )
    wanted = ("Babs Jensen", "Babs", "Jensen-Li", "300")
    require(
        got == wanted,
        f"displayName, givenName, familyName, employeeNumber are {got}, expected {wanted}",
    )


@check(
    S,
    "entra.user.manager",
    "PATCH Add and Remove the enterprise manager",
    f"{E3}; {E1}",
    "Add on urn:…:enterprise:2.0:User:manager with {value: the manager's id} (RFC 7643 "
    "§4.3; Entra's exact manager body is not recorded) sets manager.value; Remove on that "
    "path clears it.",
    profiles=(CORE,),
)
async def user_manager(ctx: Context) -> None:
    _, boss = await create_user(ctx)
    _, user = await create_user(ctx)
    path = f"{ENTERPRISE}:manager"
    await patch(
        ctx, f"/Users/{user['id']}", {"op": "Add", "path": path, "value": {"value": boss["id"]}}
    )
    stored = await read(ctx, f"/Users/{user['id']}")
    require_manager(stored, boss["id"])
    await patch(ctx, f"/Users/{user['id']}", {"op": "Remove", "path": path})
    cleared = await read(ctx, f"/Users/{user['id']}")
    require(
        "manager" not in (cleared.get(ENTERPRISE) or {}),
        f"manager is still {(cleared.get(ENTERPRISE) or {}).get('manager')!r}",
    )


@check(
    S,
    "entra.user.enterprise-attributes",
    "Enterprise attributes are kept",
    f"{E1}; {E3}",
    "employeeNumber, department and costCenter sent under the enterprise URN are returned "
    "under it, and the URN is listed in schemas.",
)
async def user_enterprise(ctx: Context) -> None:
    sent = {"employeeNumber": "701984", "department": "Tour Operations", "costCenter": "4130"}
    _, user = await create_user(ctx, **sent)
    stored = await read(ctx, f"/Users/{user['id']}")
    extension = stored.get(ENTERPRISE) or {}
    got = {key: extension.get(key) for key in sent}
    require(got == sent, f"enterprise attributes are {got}, expected {sent}")
    require(ENTERPRISE in (stored.get("schemas") or []), f"schemas lacks {ENTERPRISE}")


@check(
    S,
    "entra.user.delete",
    "Delete the user",
    f"{E1}; {E3}",
    "DELETE /Users/{id}: 204; then GET answers 404 and a filter finds nothing.",
    profiles=(CORE,),
)
async def user_delete(ctx: Context) -> None:
    body, user = await create_user(ctx)
    response = await ctx.http.delete(f"/Users/{user['id']}", headers=ENTRA_HEADERS)
    expect_status(response, 204, what="DELETE")
    gone = await ctx.http.get(f"/Users/{user['id']}", headers=ENTRA_HEADERS)
    expect_status(gone, 404, what="GET after DELETE")
    found = await listing(ctx, "/Users", filter=f'userName eq "{body["userName"]}"')
    require(found == [], f"the deleted user is still found: {ids(found)}")


# --- groups -------------------------------------------------------------------------------


@check(
    S,
    "entra.group.create",
    "Create a group with the ADSCIM URN",
    f"{E1}; {E3}",
    "POST /Groups with schemas [core Group, "
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group], externalId "
    "and displayName: 201 with an id and the values sent.",
    profiles=(CORE,),
)
async def group_create(ctx: Context) -> None:
    body, group = await create_group(ctx)
    require(isinstance(group.get("id"), str) and group["id"], "no id in the response")
    require(
        group.get("displayName") == body["displayName"],
        f"displayName is {group.get('displayName')!r}",
    )
    require(
        group.get("externalId") == body["externalId"], f"externalId is {group.get('externalId')!r}"
    )


@check(
    S,
    "entra.group.get-excluding-members",
    "Get a group with excludedAttributes=members",
    f"{E1}; {E3}",
    "GET /Groups/{id}?excludedAttributes=members: 200 with id and displayName and no "
    "members, although the group has one.",
    profiles=(CORE,),
)
async def group_get(ctx: Context) -> None:
    _, user = await create_user(ctx)
    body, group = await create_group(ctx)
    await patch(
        ctx,
        f"/Groups/{group['id']}",
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user["id"]}]},
    )
    full = await read(ctx, f"/Groups/{group['id']}")
    require(member_ids(full) == [user["id"]], f"members are {member_ids(full)}")
    fetched = await read(ctx, f"/Groups/{group['id']}", excludedAttributes="members")
    require(fetched.get("id") == group["id"], f"id is {fetched.get('id')!r}")
    require(fetched.get("displayName") == body["displayName"], "displayName differs")
    require("members" not in fetched, "members returned although excluded")


@check(
    S,
    "entra.group.filter-displayname",
    "Filter groups by displayName, members excluded",
    f"{E1}; {E3}",
    'GET /Groups?excludedAttributes=members&filter=displayName eq "…": exactly the group, '
    "without members; a random displayName finds nothing.",
    profiles=(CORE,),
)
async def group_filter(ctx: Context) -> None:
    _, user = await create_user(ctx)
    body, group = await create_group(ctx)
    await patch(
        ctx,
        f"/Groups/{group['id']}",
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user["id"]}]},
    )
    found = await listing(
        ctx,
        "/Groups",
        excludedAttributes="members",
        filter=f'displayName eq "{body["displayName"]}"',
    )
    require(ids(found) == [group["id"]], f"displayName eq found {ids(found)}")
    require("members" not in found[0], "members returned although excluded")
    random = await listing(
        ctx, "/Groups", excludedAttributes="members", filter=f'displayName eq "{uuid.uuid4()}"'
    )
    require(random == [], f"a random displayName found {ids(random)}")


@check(
    S,
    "entra.group.add-members",
    "PATCH Add members with Entra's body",
    f"{E1}; {E3}",
    '{"op":"Add","path":"members","value":[{"$ref":null,"value":id}]}: each id becomes a '
    "member, and a second add keeps the first.",
)
async def group_add_members(ctx: Context) -> None:
    _, first = await create_user(ctx)
    _, second = await create_user(ctx)
    _, group = await create_group(ctx)
    for user in (first, second):
        await add_member(ctx, group["id"], user["id"])
    stored = await read(ctx, f"/Groups/{group['id']}")
    expected = sorted([first["id"], second["id"]])
    require(member_ids(stored) == expected, f"members are {member_ids(stored)}, not {expected}")


@check(
    S,
    "entra.group.remove-member",
    "PATCH Remove a member with Entra's body",
    f"{E2}; {E3}",
    '{"op":"Remove","path":"members","value":[{"value":id}]} removes that member only.',
)
async def group_remove_member(ctx: Context) -> None:
    await _removes_one_of_two(
        ctx,
        lambda keep, drop: {
            "op": "Add",
            "path": "members",
            "value": [{"$ref": None, "value": keep}, {"$ref": None, "value": drop}],
        },
        lambda drop: {"op": "Remove", "path": "members", "value": [{"value": drop}]},
    )


@check(
    S,
    "entra.group.remove-member-filter",
    "PATCH remove a member by value filter",
    FLAG,
    'With aadOptscim062020 Entra removes a member with {"op":"remove","path":'
    '"members[value eq \\"id\\"]"}: that member only.',
    profiles=(CORE,),
)
async def group_remove_member_filter(ctx: Context) -> None:
    await _removes_one_of_two(
        ctx,
        lambda keep, drop: {
            "op": "add",
            "path": "members",
            "value": [{"value": keep}, {"value": drop}],
        },
        lambda drop: {"op": "remove", "path": f'members[value eq "{drop}"]'},
    )


async def _removes_one_of_two(
    ctx: Context, add: Callable[[str, str], dict[str, Any]], remove: Callable[[str], dict[str, Any]]
) -> None:
    """Add two members, remove one with ``remove``: exactly the other must stay."""
    _, keep = await create_user(ctx)
    _, drop = await create_user(ctx)
    _, group = await create_group(ctx)
    await patch(ctx, f"/Groups/{group['id']}", add(keep["id"], drop["id"]))
    await patch(ctx, f"/Groups/{group['id']}", remove(drop["id"]))
    stored = await read(ctx, f"/Groups/{group['id']}")
    require(
        member_ids(stored) == [keep["id"]],
        f"members are {member_ids(stored)}, expected [{keep['id']!r}]",
    )


@check(
    S,
    "entra.group.replace-displayname",
    "PATCH Replace the group's displayName",
    E3,
    '{"op":"Replace","path":"displayName","value":"…"} renames the group; a filter on the '
    "new name finds it.",
)
async def group_rename(ctx: Context) -> None:
    _, group = await create_group(ctx)
    renamed = ctx.fixtures.name("entra-renamed")
    await patch(
        ctx, f"/Groups/{group['id']}", {"op": "Replace", "path": "displayName", "value": renamed}
    )
    stored = await read(ctx, f"/Groups/{group['id']}", excludedAttributes="members")
    require(stored.get("displayName") == renamed, f"displayName is {stored.get('displayName')!r}")
    found = await listing(
        ctx, "/Groups", excludedAttributes="members", filter=f'displayName eq "{renamed}"'
    )
    require(ids(found) == [group["id"]], f"the new name finds {ids(found)}")


@check(
    S,
    "entra.group.delete",
    "Delete the group",
    f"{E1}; {E3}",
    "DELETE /Groups/{id}: 204; then GET answers 404.",
    profiles=(CORE,),
)
async def group_delete(ctx: Context) -> None:
    _, group = await create_group(ctx)
    response = await ctx.http.delete(f"/Groups/{group['id']}", headers=ENTRA_HEADERS)
    expect_status(response, 204, what="DELETE")
    gone = await ctx.http.get(f"/Groups/{group['id']}", headers=ENTRA_HEADERS)
    expect_status(gone, 404, what="GET after DELETE")


# --- references and uniqueness ------------------------------------------------------------

IPSIE = "OpenID IPSIE SCIM profile, AL2"


@check(
    S,
    "entra.group.duplicate",
    "Creating a duplicate group answers 409",
    f"{E3} (Create a duplicate Group); {E1} (displayName unique); {IPSIE}",
    "A second POST /Groups with the displayName of an existing group, in the same or another "
    "case (displayName is caseExact false), answers 409 and creates nothing.",
    profiles=(CORE,),
)
async def group_duplicate(ctx: Context) -> None:
    body, group = await create_group(ctx)
    for name in (body["displayName"], body["displayName"].upper()):
        again = await ctx.http.post("/Groups", {**body, "displayName": name}, headers=ENTRA_HEADERS)
        ctx.fixtures.track("/Groups", again.json())
        expect_status(again, 409, what=f"POST /Groups of the taken name {name!r}")
    found = await listing(
        ctx,
        "/Groups",
        excludedAttributes="members",
        filter=f'displayName eq "{body["displayName"]}"',
    )
    require(ids(found) == [group["id"]], f"after the duplicates, displayName eq found {ids(found)}")


@check(
    S,
    "entra.group.filter-members",
    "Filter groups by a member",
    f"{E1} (membership checks); {IPSIE} (members[value eq])",
    'GET /Groups?filter=id eq "<group>" and members[value eq "<user>"] finds the group when '
    'the user is a member and nothing when not; members[value eq "<user>"] and '
    'members.value eq "<user>" list exactly the user\'s groups.',
)
async def group_filter_members(ctx: Context) -> None:
    _, member = await create_user(ctx)
    _, outsider = await create_user(ctx)
    _, group = await create_group(ctx)
    await create_group(ctx)  # a group the member is not in: never listed
    await add_member(ctx, group["id"], member["id"])
    for user, expected in ((member, [group["id"]]), (outsider, [])):
        text = f'id eq "{group["id"]}" and members[value eq "{user["id"]}"]'
        found = await listing(ctx, "/Groups", excludedAttributes="members", filter=text)
        require(ids(found) == expected, f"{text} found {ids(found)}, not {expected}")
    for text in (f'members[value eq "{member["id"]}"]', f'members.value eq "{member["id"]}"'):
        found = await listing(ctx, "/Groups", excludedAttributes="members", filter=text)
        require(ids(found) == [group["id"]], f"{text} found {ids(found)}, not [{group['id']}]")


@check(
    S,
    "entra.user.manager-reference-check",
    "Filter a user by its manager, Entra's shorthand",
    f"{E1} (reference check before an update)",
    'GET /Users?filter=id eq "<user>" and manager eq "<manager>" (manager eq meaning '
    "manager.value eq) finds the user when that is its manager, nothing for another id.",
)
async def user_manager_reference_check(ctx: Context) -> None:
    _, boss = await create_user(ctx)
    _, user = await create_user(ctx, manager={"value": boss["id"]})
    for manager, expected in ((boss["id"], [user["id"]]), (str(uuid.uuid4()), [])):
        text = f'id eq "{user["id"]}" and manager eq "{manager}"'
        found = await listing(ctx, "/Users", filter=text)
        require(ids(found) == expected, f"{text} found {ids(found)}, not {expected}")


@check(
    S,
    "entra.user.manager-list-value",
    "PATCH the manager as Entra sends it",
    f"{E1} (manager update)",
    '{"op":"Add","path":"manager","value":[{"$ref":null,"value":"<id>"}]}: the path without '
    "the extension URN and the one-element list set manager.value.",
)
async def user_manager_list_value(ctx: Context) -> None:
    _, boss = await create_user(ctx)
    _, user = await create_user(ctx)
    value = [{"$ref": None, "value": boss["id"]}]
    await patch(ctx, f"/Users/{user['id']}", {"op": "Add", "path": "manager", "value": value})
    require_manager(await read(ctx, f"/Users/{user['id']}"), boss["id"])


@check(
    S,
    "entra.user.remove-manager-empty",
    "Remove Manager as a replace of an empty value",
    f"{E3} (Patch User - Remove Manager)",
    '{"op":"replace","path":"urn:…:enterprise:2.0:User:manager","value":{"value":""}} removes '
    "the manager: none is returned, rather than an empty one; so does the same replace "
    "without a path, the manager a key of its value.",
    profiles=(CORE,),
)
async def user_remove_manager_empty(ctx: Context) -> None:
    _, boss = await create_user(ctx)
    for operation in (
        {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": ""}},
        {"op": "replace", "value": {f"{ENTERPRISE}:manager": {"value": ""}}},
    ):
        _, user = await create_user(ctx, manager={"value": boss["id"]})
        await patch(ctx, f"/Users/{user['id']}", operation)
        manager = manager_of(await read(ctx, f"/Users/{user['id']}"))
        require(manager is None, f"manager is {manager!r} after Remove Manager {operation}")


@check(
    S,
    "entra.user.manager-deleted",
    "Deleting a manager clears the reference",
    "RFC 7643 §4.3 (manager is a reference to a User); scim-go conformance (S4)",
    "DELETE of a user that is another user's manager: the other user then has no manager, "
    "not the id of a deleted user.",
)
async def user_manager_deleted(ctx: Context) -> None:
    _, boss = await create_user(ctx)
    _, user = await create_user(ctx, manager={"value": boss["id"]})
    response = await ctx.http.delete(f"/Users/{boss['id']}", headers=ENTRA_HEADERS)
    expect_status(response, 204, what="DELETE of the manager")
    manager = manager_of(await read(ctx, f"/Users/{user['id']}"))
    require(manager is None, f"manager is still {manager!r} after its user was deleted")


# --- the Microsoft validator's own requests -----------------------------------------------
#
# The validator sends lower-case ops (unlike the provisioning service), a large create body
# and its own PATCH shapes; each check below is one of its core or preview tests, named in
# the source, and counts towards that profile.


def validator_body(ctx: Context) -> dict[str, Any]:
    """The validator's create: addresses, three phone numbers, a role whose ``primary`` is
    the string ``"True"``, a timezone, and an enterprise manager that names no user."""
    body = user_body(
        ctx,
        employeeNumber="4711",
        department="Validation",
        manager={"value": str(uuid.uuid4())},
    )
    body.update(
        {
            "displayName": "Barbara Jensen",
            "title": "Tour Guide",
            "timezone": "America/Los_Angeles",
            "addresses": [
                {
                    "type": "work",
                    "streetAddress": "1 Main St",
                    "locality": "Redmond",
                    "region": "WA",
                    "postalCode": "98052",
                    "country": "US",
                    "primary": False,
                }
            ],
            "phoneNumbers": [
                {"type": "work", "value": "+1 425 555 0100", "primary": False},
                {"type": "mobile", "value": "+1 425 555 0101", "primary": False},
                {"type": "fax", "value": "+1 425 555 0102", "primary": False},
            ],
            "roles": [
                {"primary": "True", "display": "Guide", "value": "guide", "type": "work"},
            ],
        }
    )
    return body


def entries(resource: dict[str, Any], attribute: str) -> dict[str, dict[str, Any]]:
    """A multi-valued attribute's entries by ``type``."""
    return {
        str(entry.get("type")): entry
        for entry in resource.get(attribute) or []
        if isinstance(entry, dict)
    }


@check(
    S,
    "entra.user.create-full-body",
    "Create a user with the validator's full body",
    f"{E3} (Create a new User; boolean serialisation warning)",
    "POST /Users with addresses, work, mobile and fax phone numbers, a role with primary "
    '"True", a timezone and a manager naming no user: 201; a userName filter then finds it '
    "with those values, and the role's primary is the boolean true.",
    profiles=(CORE,),
)
async def user_create_full_body(ctx: Context) -> None:
    body = validator_body(ctx)
    response = await ctx.http.post("/Users", body, headers=ENTRA_HEADERS)
    ctx.fixtures.track("/Users", response.json())
    expect_status(response, 201, what="POST /Users")
    found = await listing(ctx, "/Users", filter=f'userName eq "{body["userName"]}"')
    require(len(found) == 1, f"userName eq found {ids(found)}")
    (user,) = found
    phones = {kind: entry.get("value") for kind, entry in entries(user, "phoneNumbers").items()}
    wanted = {entry["type"]: entry["value"] for entry in body["phoneNumbers"]}
    require(phones == wanted, f"phoneNumbers are {phones}, expected {wanted}")
    address = entries(user, "addresses").get("work") or {}
    require(address.get("locality") == "Redmond", f"the work address is {address}")
    require(user.get("timezone") == body["timezone"], f"timezone is {user.get('timezone')!r}")
    roles = user.get("roles") or [{}]
    require(roles[0].get("primary") is True, f"roles[0].primary is {roles[0].get('primary')!r}")
    require_manager(user, body[ENTERPRISE]["manager"]["value"])


VERBOSE_REPLACES: dict[str, str] = {
    "displayName": "Babs Jensen",
    "nickName": "Babs",
    "title": "Senior Guide",
    "userType": "Employee",
    "preferredLanguage": "en-US",
    "locale": "en-US",
    "timezone": "Europe/Paris",
    "profileUrl": "https://example.com/babs",
    "name.givenName": "Babs",
    "name.familyName": "Jensen-Li",
    "name.middleName": "Ann",
    "name.formatted": "Babs Ann Jensen-Li",
    "name.honorificPrefix": "Ms.",
    "name.honorificSuffix": "III",
    'emails[type eq "work"].value': "babs@contoso.example",
    'phoneNumbers[type eq "work"].value': "+1 425 555 0200",
    'phoneNumbers[type eq "mobile"].value': "+1 425 555 0201",
    'phoneNumbers[type eq "fax"].value': "+1 425 555 0202",
    'addresses[type eq "work"].streetAddress': "2 Side St",
    'addresses[type eq "work"].locality': "Seattle",
    'addresses[type eq "work"].region': "WA",
    'addresses[type eq "work"].postalCode': "98101",
    'addresses[type eq "work"].country': "US",
    'addresses[type eq "work"].formatted': "2 Side St, Seattle, WA 98101, US",
    f"{ENTERPRISE}:employeeNumber": "8472",
    f"{ENTERPRISE}:costCenter": "4130",
    f"{ENTERPRISE}:organization": "Contoso",
    f"{ENTERPRISE}:division": "Tours",
    f"{ENTERPRISE}:department": "Guiding",
}
"""The "Replace Attributes Verbose" PATCH: one ``replace`` per path, on phone and address
entries that the user may not have yet (the validator's own list runs to about 36 paths)."""


def value_at(user: dict[str, Any], path: str) -> Any:
    """The value a path of ``VERBOSE_REPLACES`` names in ``user``."""
    if path.startswith(f"{ENTERPRISE}:"):
        return (user.get(ENTERPRISE) or {}).get(path[len(ENTERPRISE) + 1 :])
    if "[" in path:
        attribute, rest = path.split("[", 1)
        kind = rest.split('"')[1]
        return (entries(user, attribute).get(kind) or {}).get(rest.rsplit(".", 1)[1])
    head, _, sub = path.partition(".")
    return (user.get(head) or {}).get(sub) if sub else user.get(head)


@check(
    S,
    "entra.user.patch-verbose",
    "PATCH replace of every attribute, one op each",
    f"{E3} (Patch User - Replace Attributes Verbose)",
    'One PATCH of lower-case "replace" ops, one per path, over core, name, emails, '
    "phoneNumbers and addresses value paths and enterprise attributes, on a user without a "
    "fax number or an address: every value is then the one sent (an absent entry is created).",
    profiles=(CORE,),
)
async def user_patch_verbose(ctx: Context) -> None:
    _, user = await create_user(ctx)
    await patch(
        ctx,
        f"/Users/{user['id']}",
        *(
            {"op": "replace", "path": path, "value": value}
            for path, value in VERBOSE_REPLACES.items()
        ),
    )
    stored = await read(ctx, f"/Users/{user['id']}")
    wrong = {
        path: value_at(stored, path)
        for path, value in VERBOSE_REPLACES.items()
        if value_at(stored, path) != value
    }
    require(not wrong, f"{len(wrong)} of {len(VERBOSE_REPLACES)} paths kept another value: {wrong}")


@check(
    S,
    "entra.user.patch-pathless-username",
    "PATCH userName without a path",
    f"{E3} (Update User userName)",
    '{"op":"replace","value":{"userName":"…"}} renames the user: GET and a userName filter '
    "then answer the new name.",
    profiles=(CORE,),
)
async def user_pathless_username(ctx: Context) -> None:
    body, user = await create_user(ctx)
    renamed = body["userName"].replace("@", "-renamed@")
    await patch(ctx, f"/Users/{user['id']}", {"op": "replace", "value": {"userName": renamed}})
    stored = await read(ctx, f"/Users/{user['id']}")
    require(stored.get("userName") == renamed, f"userName is {stored.get('userName')!r}")
    found = await listing(ctx, "/Users", filter=f'userName eq "{renamed}"')
    require(ids(found) == [user["id"]], f"the new userName finds {ids(found)}")


@check(
    S,
    "entra.user.replace-manager",
    "PATCH replace of the manager",
    f"{E3} (Patch User - Replace Manager)",
    '{"op":"replace","path":"urn:…:enterprise:2.0:User:manager","value":{"value":"<id>"}} on '
    "a user that has a manager: manager.value is then the new id.",
    profiles=(CORE,),
)
async def user_replace_manager(ctx: Context) -> None:
    _, first = await create_user(ctx)
    _, second = await create_user(ctx)
    _, user = await create_user(ctx, manager={"value": first["id"]})
    await patch(
        ctx,
        f"/Users/{user['id']}",
        {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": second["id"]}},
    )
    require_manager(await read(ctx, f"/Users/{user['id']}"), second["id"])


@check(
    S,
    "entra.user.patch-same-attribute",
    "PATCH with several ops on one attribute",
    f"{E3} (preview: Patch User - Multiple Ops on same attribute)",
    "Two replace ops of displayName in one PATCH: the last one decides (RFC 7644 §3.5.2, "
    "operations in order).",
    profiles=(PREVIEW,),
)
async def user_patch_same_attribute(ctx: Context) -> None:
    _, user = await create_user(ctx)
    await patch(
        ctx,
        f"/Users/{user['id']}",
        {"op": "replace", "path": "displayName", "value": "First"},
        {"op": "replace", "path": "displayName", "value": "Second"},
    )
    stored = await read(ctx, f"/Users/{user['id']}")
    require(stored.get("displayName") == "Second", f"displayName is {stored.get('displayName')!r}")


@check(
    S,
    "entra.delete-unknown",
    "DELETE of an unknown user or group answers 404",
    f"{E3} (preview: Delete a non-existent User, Delete a non-existent Group)",
    "DELETE /Users/{random id} and DELETE /Groups/{random id}: 404 Not Found.",
    profiles=(PREVIEW,),
)
async def delete_unknown(ctx: Context) -> None:
    for endpoint in ("/Users", "/Groups"):
        response = await ctx.http.delete(f"{endpoint}/{uuid.uuid4()}", headers=ENTRA_HEADERS)
        expect_status(response, 404, what=f"DELETE of an unknown id under {endpoint}")


@check(
    S,
    "entra.delete-twice",
    "DELETE of the same user or group twice",
    f"{E3} (preview: Delete the same User twice, Delete the same Group twice)",
    "The first DELETE answers 204, the second 404, for a user and for a group.",
    profiles=(PREVIEW,),
)
async def delete_twice(ctx: Context) -> None:
    _, user = await create_user(ctx)
    _, group = await create_group(ctx)
    for path in (f"/Users/{user['id']}", f"/Groups/{group['id']}"):
        first = await ctx.http.delete(path, headers=ENTRA_HEADERS)
        expect_status(first, 204, what=f"first DELETE {path}")
        second = await ctx.http.delete(path, headers=ENTRA_HEADERS)
        expect_status(second, 404, what=f"second DELETE {path}")


@check(
    S,
    "entra.group.filter-any-case",
    "Filter a group by displayName in another case, members included",
    f"{E3} (Filter for an existing group; Filter for existing group with different case)",
    'GET /Groups?filter=displayName eq "<name>" without excludedAttributes, the name as '
    "created and in another case (the validator lower-cases it; displayName is caseExact "
    "false): exactly the group, with its member.",
    profiles=(CORE,),
)
async def group_filter_any_case(ctx: Context) -> None:
    _, user = await create_user(ctx)
    body, group = await create_group(ctx)
    await add_member(ctx, group["id"], user["id"])
    for name in (body["displayName"], body["displayName"].upper()):
        found = await listing(ctx, "/Groups", filter=f'displayName eq "{name}"')
        require(ids(found) == [group["id"]], f"displayName eq {name!r} found {ids(found)}")
        require(member_ids(found[0]) == [user["id"]], f"members are {member_ids(found[0])}")


@check(
    S,
    "entra.group.patch-pathless",
    "PATCH a group's externalId and displayName without a path",
    f"{E3} (Patch Group - Replace Attributes; Update Group displayName)",
    '{"op":"replace","value":{"externalId":"…"}}, then {"op":"replace","value":'
    '{"displayName":"…"}}: each sets its attribute, and the members stay.',
    profiles=(CORE,),
)
async def group_pathless(ctx: Context) -> None:
    _, user = await create_user(ctx)
    _, group = await create_group(ctx)
    await add_member(ctx, group["id"], user["id"])
    external_id, renamed = str(uuid.uuid4()), ctx.fixtures.name("entra-renamed")
    await patch(
        ctx, f"/Groups/{group['id']}", {"op": "replace", "value": {"externalId": external_id}}
    )
    await patch(ctx, f"/Groups/{group['id']}", {"op": "replace", "value": {"displayName": renamed}})
    stored = await read(ctx, f"/Groups/{group['id']}")
    got = (stored.get("externalId"), stored.get("displayName"), member_ids(stored))
    wanted = (external_id, renamed, [user["id"]])
    require(got == wanted, f"externalId, displayName, members are {got}, expected {wanted}")


@check(
    S,
    "entra.group.replace-members",
    "PATCH replace of the members",
    f"{E3} (Patch Group - Add Member)",
    '{"op":"replace","path":"members","value":[{"value":"<id>"}]}: the members are then '
    "exactly the ones sent (RFC 7644 §3.5.2.3).",
    profiles=(CORE,),
)
async def group_replace_members(ctx: Context) -> None:
    _, before = await create_user(ctx)
    _, after = await create_user(ctx)
    _, group = await create_group(ctx)
    await add_member(ctx, group["id"], before["id"])
    await patch(
        ctx,
        f"/Groups/{group['id']}",
        {"op": "replace", "path": "members", "value": [{"value": after["id"]}]},
    )
    stored = await read(ctx, f"/Groups/{group['id']}")
    require(member_ids(stored) == [after["id"]], f"members are {member_ids(stored)}")


@check(
    S,
    "entra.group.add-remove-same-member",
    "PATCH adding and removing one member",
    f"{E3} (preview: Patch Group - Multiple Ops on same attribute)",
    "One PATCH that adds a member, then removes it by members[value eq …]: applied in "
    "order, the user is not a member afterwards, and the member added beside it is.",
    profiles=(PREVIEW,),
)
async def group_add_remove_same_member(ctx: Context) -> None:
    _, passing = await create_user(ctx)
    _, staying = await create_user(ctx)
    _, group = await create_group(ctx)
    await patch(
        ctx,
        f"/Groups/{group['id']}",
        {"op": "add", "path": "members", "value": [{"value": passing["id"]}]},
        {"op": "add", "path": "members", "value": [{"value": staying["id"]}]},
        {"op": "remove", "path": f'members[value eq "{passing["id"]}"]'},
    )
    stored = await read(ctx, f"/Groups/{group['id']}")
    require(member_ids(stored) == [staying["id"]], f"members are {member_ids(stored)}")
