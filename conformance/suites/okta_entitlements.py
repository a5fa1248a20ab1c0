"""The ``okta-entitlements`` suite: what Okta Identity Governance asks of an entitlement app.

From Okta's guide "Build a SCIM 2.0 server with entitlements" and its OIN "Test your SCIM API
for entitlements" (docs/entitlements.md says both in our words): Okta reads ``/ResourceTypes``
for the types beside User and Group, ``/Schemas`` for the schemas it does not know, then pages
through each type's endpoint; the OIN "Entitlements" test is ``GET {endpoint}?count=1&
startIndex=1``. Users are then pushed with ``entitlements`` and ``roles`` naming those
resources. The server must already hold at least one resource of each such type, as Okta
expects of the app (``make conformance`` loads a few through our admin API).
"""

from __future__ import annotations

from typing import Any

from conformance.checks import (
    CheckFailed,
    CheckSkipped,
    Context,
    check,
    expect_object,
    expect_status,
    require,
    resources_of,
)
from conformance.http import Response
from conformance.urns import LIST_RESPONSE, OKTA_ENTITLEMENT, OKTA_ROLE

S = "okta-entitlements"
GUIDE = "Okta: Build a SCIM 2.0 server with entitlements"
OIN = "Okta OIN: Test your SCIM API for entitlements"
KNOWN_TO_OKTA = frozenset(
    {
        OKTA_ENTITLEMENT,
        OKTA_ROLE,
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    }
)
"""Schemas Okta knows without reading ``/Schemas``."""
CORE_ENDPOINTS = frozenset({"/Users", "/Groups"})
PAGE_SIZE = 2
MAX_PAGES = 100
"""A bound on the pages one type is read in, so a server that never ends a list ends the check."""
HEADERS = {"Accept": "application/scim+json", "User-Agent": "Okta SCIM Client 1.0.0"}


def entitlement_types(ctx: Context) -> list[dict[str, Any]]:
    """The resource types ``okta-ent.01`` found beside User and Group (skip when none)."""
    found = ctx.fixtures.tracker.shared.get("entitlement_types")
    if not found:
        raise CheckSkipped("depends on okta-ent.01-resource-types, which found no entitlement type")
    return list(found)


async def get(ctx: Context, path: str, **params: str) -> Response:
    return await ctx.http.get(path, headers=HEADERS, params=params or None)


def require_list_response(body: dict[str, Any], where: str) -> None:
    require(LIST_RESPONSE in (body.get("schemas") or []), f"{where}: schemas lacks {LIST_RESPONSE}")


@check(
    S,
    "okta-ent.01-resource-types",
    "GET /ResourceTypes lists the entitlement types",
    GUIDE,
    "GET /ResourceTypes: 200, a ListResponse naming at least one resource type beside User and "
    "Group, each with a name, an endpoint and a schema.",
)
async def resource_types(ctx: Context) -> None:
    response = await get(ctx, "/ResourceTypes")
    expect_status(response, 200)
    body = expect_object(response)
    require_list_response(body, "/ResourceTypes")
    found = []
    for resource_type in resources_of(response, "/ResourceTypes"):
        endpoint = resource_type.get("endpoint")
        if endpoint in CORE_ENDPOINTS:
            continue
        for key in ("name", "endpoint", "schema"):
            require(
                isinstance(resource_type.get(key), str) and resource_type[key],
                f"resource type {resource_type.get('name')!r} has no {key}",
            )
        found.append(resource_type)
    if not found:
        raise CheckFailed("/ResourceTypes lists no resource type beside User and Group")
    ctx.fixtures.tracker.shared["entitlement_types"] = found


@check(
    S,
    "okta-ent.02-schemas",
    "GET /Schemas describes every schema Okta does not know",
    GUIDE,
    "GET /Schemas: 200, a ListResponse holding every schema and schema extension the "
    "entitlement types and the User type name (a custom User extension, whose attributes Okta "
    "imports into the app's profile), except those Okta knows (Entitlement, Role, User, "
    "enterprise User).",
)
async def schemas(ctx: Context) -> None:
    types = entitlement_types(ctx)
    user_type = await get(ctx, "/ResourceTypes/User")
    expect_status(user_type, 200, what="/ResourceTypes/User")
    response = await get(ctx, "/Schemas")
    expect_status(response, 200)
    require_list_response(expect_object(response), "/Schemas")
    served = {s.get("id") for s in resources_of(response, "/Schemas") if isinstance(s, dict)}
    named = {t["schema"] for t in types} | {
        extension.get("schema")
        for t in [*types, expect_object(user_type, "/ResourceTypes/User")]
        for extension in t.get("schemaExtensions") or []
        if isinstance(extension, dict)
    }
    missing = sorted(str(urn) for urn in named - KNOWN_TO_OKTA - served)
    require(not missing, f"/Schemas lacks {', '.join(missing)}")


@check(
    S,
    "okta-ent.03-entitlements-endpoint",
    "Required Test: Entitlements",
    OIN,
    "GET {endpoint}?count=1&startIndex=1 for each entitlement type: 200, a ListResponse with "
    "non-empty Resources and itemsPerPage 1.",
)
async def entitlements_endpoint(ctx: Context) -> None:
    for resource_type in entitlement_types(ctx):
        endpoint = resource_type["endpoint"]
        response = await get(ctx, endpoint, count="1", startIndex="1")
        expect_status(response, 200, what=endpoint)
        body = expect_object(response, endpoint)
        require_list_response(body, endpoint)
        require(resources_of(response, endpoint), f"{endpoint}: Resources is empty")
        require(
            body.get("itemsPerPage") == 1,
            f"{endpoint}: itemsPerPage is {body.get('itemsPerPage')!r}, not 1",
        )


@check(
    S,
    "okta-ent.04-paging",
    "Each entitlement endpoint pages to its end",
    GUIDE,
    "Paging each entitlement endpoint (startIndex, count) reads totalResults distinct resources, "
    "each with an id, a displayName and meta.resourceType naming its type.",
)
async def paging(ctx: Context) -> None:
    for resource_type in entitlement_types(ctx):
        endpoint, name = resource_type["endpoint"], resource_type["name"]
        seen: dict[str, dict[str, Any]] = {}
        total, start = 0, 1
        for _ in range(MAX_PAGES):
            response = await get(ctx, endpoint, count=str(PAGE_SIZE), startIndex=str(start))
            expect_status(response, 200, what=endpoint)
            said = expect_object(response, endpoint).get("totalResults")
            if not isinstance(said, int):
                raise CheckFailed(f"{endpoint}: totalResults is {said!r}")
            total = said
            page = resources_of(response, endpoint)
            for resource in page:
                where = f"{endpoint} resource {resource.get('id')!r}"
                require(isinstance(resource.get("id"), str), f"{where}: no id")
                require(resource["id"] not in seen, f"{where}: read on two pages")
                require(resource.get("displayName"), f"{where}: no displayName")
                resource_type_name = (resource.get("meta") or {}).get("resourceType")
                require(
                    resource_type_name == name,
                    f"{where}: meta.resourceType is {resource_type_name!r}, not {name!r}",
                )
                seen[resource["id"]] = resource
            start += len(page)
            if not page or start > total:
                break
        require(len(seen) == total, f"{endpoint}: read {len(seen)} resources of {total}")
        ctx.fixtures.tracker.shared.setdefault("entitlements", {})[name] = next(iter(seen.values()))


def assignment(resource: dict[str, Any], type_name: str) -> dict[str, Any]:
    """A user's ``entitlements`` or ``roles`` value naming ``resource``, as Okta sends it."""
    return {"value": resource["id"], "display": resource["displayName"], "type": type_name}


@check(
    S,
    "okta-ent.05-user-with-entitlements",
    "A user pushed with entitlements and roles reads them back",
    GUIDE,
    "POST /Users with entitlements (and roles, when a type has the Role schema) naming the "
    "resources read: 201, and GET /Users/{id} returns each value.",
)
async def user_with_entitlements(ctx: Context) -> None:
    sent = grants(ctx)
    created = await ctx.fixtures.create("/Users", {**ctx.fixtures.user_body(), **sent})
    await require_grants(ctx, f"/Users/{created['id']}", sent)


def grants(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """One grant of each resource ``okta-ent.04`` read, under ``roles`` for a type of the Role
    schema and ``entitlements`` for any other, as Okta pushes them."""
    found: dict[str, dict[str, Any]] = ctx.fixtures.tracker.shared.get("entitlements") or {}
    if not found:
        raise CheckSkipped("depends on okta-ent.04-paging, which read no resource")
    schema_of = {t["name"]: t["schema"] for t in entitlement_types(ctx)}
    body: dict[str, list[dict[str, Any]]] = {"entitlements": [], "roles": []}
    for name, resource in found.items():
        key = "roles" if schema_of.get(name) == OKTA_ROLE else "entitlements"
        body[key].append(assignment(resource, name))
    return {key: values for key, values in body.items() if values}


async def require_grants(
    ctx: Context, path: str, held: dict[str, list[dict[str, Any]]], gone: tuple[str, ...] = ()
) -> None:
    """``GET path`` returns each value of ``held``, and none whose id is in ``gone``."""
    response = await get(ctx, path)
    expect_status(response, 200, what=f"GET {path}")
    user = expect_object(response, path)
    for key in ("entitlements", "roles"):
        returned = {v.get("value") for v in user.get(key) or [] if isinstance(v, dict)}
        for value in held.get(key, []):
            require(value["value"] in returned, f"{key} lacks {value['value']!r}: {returned}")
        still = sorted(str(value) for value in returned & set(gone))
        require(not still, f"{key} still holds {', '.join(still)} after Okta revoked it")


async def push_update(ctx: Context, path: str, body: dict[str, Any]) -> None:
    """Okta's update of a user it provisioned: ``GET`` it, then ``PUT`` its whole profile."""
    expect_status(await get(ctx, path), 200, what=f"GET {path}")
    response = await ctx.http.put(path, body, headers=HEADERS)
    expect_status(response, 200, what=f"PUT {path}")


@check(
    S,
    "okta-ent.06-grants-assigned",
    "Grants assigned to a provisioned user, then one revoked, read back",
    GUIDE,
    "A user created without grants, then updated as Okta pushes the grants assigned to it "
    "(GET /Users/{id}, then PUT of its profile with entitlements and roles naming the "
    "resources read): GET returns each; updated again without one of them (the grant "
    "revoked): GET no longer returns it and still returns the others.",
)
async def grants_assigned(ctx: Context) -> None:
    assigned = grants(ctx)
    profile = ctx.fixtures.user_body()
    created = await ctx.fixtures.create("/Users", profile)
    path = f"/Users/{created['id']}"
    await push_update(ctx, path, {**profile, **assigned})
    await require_grants(ctx, path, assigned)
    key = next(iter(assigned))
    revoked, kept = assigned[key][-1], {**assigned, key: assigned[key][:-1]}
    await push_update(ctx, path, {**profile, **kept})
    await require_grants(ctx, path, kept, gone=(revoked["value"],))
