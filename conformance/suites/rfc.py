"""The ``rfc`` suite: RFC 7643 / RFC 7644 (and RFC 9865 cursors) rules, one check each.

Every check creates its own users and groups under the run's prefix and scopes its
queries to them, so it holds on a server that already has data. Optional features
(sort, etag, bulk, cursors, PATCH) are checked only when the ServiceProviderConfig
advertises them; otherwise the check skips and says which flag was missing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
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
from conformance.http import SCIM_JSON, Response
from conformance.urns import (
    BULK_REQUEST,
    ENTERPRISE,
    ERROR,
    GROUP,
    LIST_RESPONSE,
    PATCH_OP,
    SEARCH_REQUEST,
    SERVICE_PROVIDER_CONFIG,
    USER,
)

S = "rfc"
MISSING_ID = "scimconf-no-such-id-0000000000"


# --- helpers ------------------------------------------------------------------------------


async def query(
    ctx: Context, endpoint: str, filter: str | None = None, **params: str
) -> tuple[Response, list[dict[str, Any]]]:
    """A list GET with a filter; fails the check unless it answers a 200 ListResponse."""
    if filter is not None:
        params["filter"] = filter
    response = await ctx.http.get(endpoint, params=params)
    expect_status(response, 200, what=f"GET {endpoint} with {params}")
    return response, resources_of(response)


def ids(resources: list[dict[str, Any]]) -> list[str]:
    return [str(r.get("id")) for r in resources]


def require_patch(ctx: Context) -> None:
    ctx.require_feature("patch")


async def patch(ctx: Context, path: str, *operations: dict[str, Any]) -> Response:
    """Send a PatchOp; 200 and 204 are both correct answers (RFC 7644 §3.5.2)."""
    response = await ctx.http.patch(path, {"schemas": [PATCH_OP], "Operations": list(operations)})
    expect_status(response, 200, 204, what=f"PATCH {path}")
    return response


async def read(ctx: Context, path: str) -> dict[str, Any]:
    response = await ctx.http.get(path)
    expect_status(response, 200, what=f"GET {path}")
    return expect_object(response)


def require_error_document(response: Response, status: int) -> dict[str, Any]:
    """The RFC 7644 §3.12 error shape: Error URN, ``status`` as a string, SCIM JSON."""
    require(response.status == status, f"expected HTTP {status}, got {response.status}")
    require(
        "html" not in response.content_type.lower()
        and not response.text.lstrip().lower().startswith(("<!doctype", "<html")),
        f"error body is HTML (Content-Type {response.content_type!r})",
    )
    require(
        response.content_type.split(";")[0].strip().lower() == SCIM_JSON,
        f"error Content-Type is {response.content_type!r}, not {SCIM_JSON}",
    )
    body = expect_object(response, "error")
    require(ERROR in (body.get("schemas") or []), f"error schemas lacks {ERROR}: {body}")
    require(
        body.get("status") == str(status),
        f"error status must be the string {str(status)!r}, got {body.get('status')!r}",
    )
    return body


def require_error_of(request: str, response: Response, status: int) -> dict[str, Any]:
    """``require_error_document``, a failure naming the ``request`` that got the answer."""
    try:
        return require_error_document(response, status)
    except CheckFailed as failed:
        raise CheckFailed(f"{request}: {failed}") from None


def emails(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in resource.get("emails") or [] if isinstance(e, dict)]


# --- discovery ----------------------------------------------------------------------------


@check(
    S,
    "rfc.discovery.service-provider-config",
    "ServiceProviderConfig has every feature",
    "RFC 7643 §5",
    "patch, bulk, filter, changePassword, sort, etag (each with a boolean 'supported') and "
    "authenticationSchemes are REQUIRED.",
)
async def spc_shape(ctx: Context) -> None:
    response = await ctx.http.get("/ServiceProviderConfig")
    expect_status(response, 200)
    body = expect_object(response)
    require(
        SERVICE_PROVIDER_CONFIG in (body.get("schemas") or []),
        f"schemas lacks {SERVICE_PROVIDER_CONFIG}",
    )
    for feature in ("patch", "bulk", "filter", "changePassword", "sort", "etag"):
        value = body.get(feature)
        if not isinstance(value, dict):
            raise CheckFailed(f"'{feature}' is missing or not an object")
        require(
            isinstance(value.get("supported"), bool),
            f"'{feature}.supported' is not a boolean: {value.get('supported')!r}",
        )
    bulk, filt = body["bulk"], body["filter"]
    if bulk["supported"]:
        for key in ("maxOperations", "maxPayloadSize"):
            require(isinstance(bulk.get(key), int), f"bulk.{key} is not an integer")
    if filt["supported"]:
        require(isinstance(filt.get("maxResults"), int), "filter.maxResults is not an integer")
    schemes = body.get("authenticationSchemes")
    require(isinstance(schemes, list) and schemes, "authenticationSchemes is missing or empty")


@check(
    S,
    "rfc.discovery.resource-types",
    "ResourceTypes lists User and Group",
    "RFC 7643 §6, RFC 7644 §4",
    "Each resource type has 'name', 'endpoint' and 'schema'; /ResourceTypes is queried "
    "like any resource and answers a ListResponse.",
)
async def resource_types(ctx: Context) -> None:
    response = await ctx.http.get("/ResourceTypes")
    expect_status(response, 200)
    body = expect_object(response)
    require(LIST_RESPONSE in (body.get("schemas") or []), "not a ListResponse")
    found = {}
    for resource in resources_of(response):
        for key in ("name", "endpoint", "schema"):
            require(
                isinstance(resource.get(key), str),
                f"resource type {resource.get('id')!r} lacks '{key}'",
            )
        found[resource["name"]] = resource
    for name, urn in (("User", USER), ("Group", GROUP)):
        require(name in found, f"no {name} resource type; got {sorted(found)}")
        require(found[name]["schema"] == urn, f"{name}.schema is {found[name]['schema']!r}")


SCHEMA_ATTRIBUTE_KEYS = (
    "name",
    "type",
    "multiValued",
    "required",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
)
"""The characteristics RFC 7643 §7 gives every attribute definition."""


@check(
    S,
    "rfc.discovery.schemas",
    "Schemas describe every resource type's attributes",
    "RFC 7643 §7; scim2-tester (core_schemas_validation)",
    "/Schemas describes the schema and the extensions of every resource type; each attribute "
    "definition, sub-attributes included, has name, type, multiValued, required, caseExact, "
    "mutability, returned and uniqueness.",
)
async def schemas(ctx: Context) -> None:
    response = await ctx.http.get("/Schemas")
    expect_status(response, 200)
    by_id = {s.get("id"): s for s in resources_of(response)}
    listed = await ctx.http.get("/ResourceTypes")
    expect_status(listed, 200, what="GET /ResourceTypes")
    named = {
        str(urn)
        for resource_type in resources_of(listed)
        for urn in (
            resource_type.get("schema"),
            *(e.get("schema") for e in resource_type.get("schemaExtensions") or []),
        )
    }
    missing = sorted(named - set(map(str, by_id)))
    require(not missing, f"/Schemas does not describe {missing}, named by /ResourceTypes")
    for urn in sorted(named):
        definitions = list(by_id[urn].get("attributes") or [])
        while definitions:
            attribute = definitions.pop()
            for key in SCHEMA_ATTRIBUTE_KEYS:
                require(
                    key in attribute, f"{urn}: attribute {attribute.get('name')!r} lacks {key!r}"
                )
            definitions.extend(attribute.get("subAttributes") or [])
    user = by_id.get(USER)
    if user is None:
        raise CheckFailed(f"no {USER} among {sorted(map(str, by_id))}")
    attributes = {a.get("name"): a for a in user.get("attributes") or []}
    require("userName" in attributes, "User schema has no userName attribute")
    require(
        attributes["userName"].get("uniqueness") == "server", "userName uniqueness is not 'server'"
    )
    if "password" in attributes:
        require(
            attributes["password"].get("returned") == "never", "password is not returned 'never'"
        )


@check(
    S,
    "rfc.discovery.by-id",
    "A resource type and a schema by id; unknown ones answer 404",
    "RFC 7644 §4, §3.12; scim2-tester (query_resource_type_by_id, access_schema_by_id, "
    "access_invalid_resource_type, access_invalid_schema, random_url)",
    "GET /ResourceTypes/{name} and GET /Schemas/{urn} answer that resource; an unknown "
    "resource type, an unknown schema and an endpoint the server does not have answer a SCIM "
    "404 error.",
)
async def discovery_by_id(ctx: Context) -> None:
    resource_type = await read(ctx, "/ResourceTypes/User")
    require(resource_type.get("name") == "User", f"/ResourceTypes/User is {resource_type}")
    schema = await read(ctx, f"/Schemas/{USER}")
    require(schema.get("id") == USER, f"/Schemas/{USER} has the id {schema.get('id')!r}")
    for path in (
        "/ResourceTypes/ScimconfNoSuchType",
        "/Schemas/urn:example:scimconf:no-such-schema",
        "/ScimconfNoSuchEndpoint",
    ):
        require_error_of(f"GET {path}", await ctx.http.get(path), 404)


# --- CRUD ---------------------------------------------------------------------------------


@check(
    S,
    "rfc.crud.create",
    "POST answers 201 with Location equal to meta.location",
    "RFC 7644 §3.3",
    "the server SHALL return a 201 Created with the resource, whose URI is in the "
    "Location header and in meta.location.",
)
async def create(ctx: Context) -> None:
    body = ctx.fixtures.user_body()
    response = await ctx.http.post("/Users", body)
    created = response.json()
    ctx.fixtures.track("/Users", created)
    expect_status(response, 201)
    created = expect_object(response)
    require(isinstance(created.get("id"), str) and created["id"], "no id in the response")
    require(created.get("userName") == body["userName"], "userName differs from the request")
    meta = created.get("meta") or {}
    require(
        meta.get("resourceType") == "User", f"meta.resourceType is {meta.get('resourceType')!r}"
    )
    require(meta.get("created") and meta.get("lastModified"), "meta.created/lastModified missing")
    location = response.header("Location")
    require(location, "no Location header")
    require(
        location == meta.get("location"),
        f"Location {location!r} differs from meta.location {meta.get('location')!r}",
    )
    require(
        str(location).rstrip("/").endswith("/" + created["id"]), "Location does not end with the id"
    )


@check(
    S,
    "rfc.crud.get",
    "GET by id returns the resource",
    "RFC 7644 §3.4.1",
    "Clients retrieve a known resource with GET on its URI.",
)
async def get_by_id(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    fetched = await read(ctx, f"/Users/{user['id']}")
    require(fetched.get("id") == user["id"], "the id differs")
    require(fetched.get("userName") == user["userName"], "the userName differs")
    require(USER in (fetched.get("schemas") or []), f"schemas lacks {USER}")


@check(
    S,
    "rfc.crud.put-replaces",
    "PUT replaces the resource",
    "RFC 7644 §3.5.1",
    "PUT replaces all of the resource's writable attributes; attributes left out of the "
    "request are cleared.",
)
async def put_replaces(ctx: Context) -> None:
    user = await ctx.fixtures.user(nickName="Babs", title="Before")
    replacement = ctx.fixtures.user_body(user["userName"], title="After")
    response = await ctx.http.put(f"/Users/{user['id']}", replacement)
    expect_status(response, 200)
    stored = await read(ctx, f"/Users/{user['id']}")
    require(stored.get("title") == "After", f"title is {stored.get('title')!r}, not 'After'")
    require(
        "nickName" not in stored,
        f"nickName survived a PUT that left it out: {stored.get('nickName')!r}",
    )
    require(stored.get("id") == user["id"], "PUT changed the id")


@check(
    S,
    "rfc.crud.delete",
    "DELETE answers 204, then GET answers 404",
    "RFC 7644 §3.6",
    "the server SHALL return 204 No Content; afterwards the resource SHALL NOT be "
    "returned (404 Not Found).",
)
async def delete(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    response = await ctx.http.delete(f"/Users/{user['id']}")
    expect_status(response, 204)
    again = await ctx.http.get(f"/Users/{user['id']}")
    expect_status(again, 404, what="GET after DELETE")
    listed = (await query(ctx, "/Users", f'userName eq "{user["userName"]}"'))[1]
    require(not listed, "the deleted user is still listed")


@check(
    S,
    "rfc.crud.group-members",
    "A group created with a member lists it",
    "RFC 7643 §4.2",
    "members: a list of members of the Group, each with 'value' (the id).",
)
async def group_members(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    group = await ctx.fixtures.group(members=[user["id"]])
    stored = await read(ctx, f"/Groups/{group['id']}")
    values = [m.get("value") for m in stored.get("members") or []]
    require(values == [user["id"]], f"members are {values}, expected [{user['id']!r}]")


@check(
    S,
    "rfc.crud.non-unique-values",
    "Values without uniqueness may repeat",
    "RFC 7643 §2.2, §4.1; scim-go conformance (S3)",
    "uniqueness 'none' (the default): displayName, title and an email address may be shared; "
    "a second user carrying the same ones is created (POST) and replaced (PUT) like any other.",
)
async def non_unique_values(ctx: Context) -> None:
    shared: dict[str, Any] = {
        "displayName": "Shared Name",
        "title": "Shared Title",
        "emails": [{"value": f"{ctx.fixtures.name('shared')}@example.com", "type": "work"}],
    }
    first = await ctx.fixtures.user(**shared)
    body = ctx.fixtures.user_body(**shared)
    response = await ctx.http.post("/Users", body)
    ctx.fixtures.track("/Users", response.json())
    expect_status(response, 201, what="POST of a second user with the same non-unique values")
    second = expect_object(response)
    replaced = await ctx.http.put(f"/Users/{second['id']}", {**body, "nickName": "Again"})
    expect_status(replaced, 200, what="PUT keeping the same non-unique values")
    for user in (first, second):
        stored = await read(ctx, f"/Users/{user['id']}")
        require(stored.get("title") == shared["title"], f"title is {stored.get('title')!r}")


@check(
    S,
    "rfc.crud.references-dropped-on-delete",
    "Deleting a resource drops the references to it",
    "RFC 7644 §3.6; RFC 7643 §4.2, §4.3; scim-go conformance (S4)",
    "Once a resource is deleted it SHALL NOT be returned: a group no longer lists a deleted "
    "member, and a user no longer names a deleted manager.",
)
async def references_dropped(ctx: Context) -> None:
    member, other = await ctx.fixtures.user(), await ctx.fixtures.user()
    group = await ctx.fixtures.group(members=[member["id"], other["id"]])
    deleted = await ctx.http.delete(f"/Users/{member['id']}")
    expect_status(deleted, 204, what="DELETE of the member")
    values = [
        m.get("value") for m in (await read(ctx, f"/Groups/{group['id']}")).get("members") or []
    ]
    require(values == [other["id"]], f"members are {values} after a member was deleted")
    if ENTERPRISE not in await user_extensions(ctx):
        return
    boss = await ctx.fixtures.user()
    body = ctx.fixtures.user_body(schemas=[USER, ENTERPRISE])
    body[ENTERPRISE] = {"manager": {"value": boss["id"]}}
    report = await ctx.fixtures.create("/Users", body)
    deleted = await ctx.http.delete(f"/Users/{boss['id']}")
    expect_status(deleted, 204, what="DELETE of the manager")
    manager = ((await read(ctx, f"/Users/{report['id']}")).get(ENTERPRISE) or {}).get("manager")
    require(manager is None, f"manager is {manager!r} after its user was deleted")


async def user_extensions(ctx: Context) -> set[str]:
    """The schema extensions /ResourceTypes declares for User."""
    response = await ctx.http.get("/ResourceTypes")
    expect_status(response, 200, what="GET /ResourceTypes")
    return {
        str(extension.get("schema"))
        for resource_type in resources_of(response)
        if resource_type.get("name") == "User"
        for extension in resource_type.get("schemaExtensions") or []
    }


# --- filters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """The filter must be refused: 400 with this ``scimType`` (RFC 7644 §3.12)."""

    scim_type: str


Expectation = tuple[str, ...] | Refused
"""The keys of exactly the users a filter must find (in any order), or its refusal."""


@dataclass(frozen=True)
class FilterCheck:
    """A check that creates a few users, then runs filters and compares what each finds.

    Users are named ``{scope}{key}``, where ``scope`` is fresh for each run of the check,
    and keep every other attribute as the fixtures make it unless ``users`` says otherwise.
    In filters and attribute values, ``{scope}`` stands for the scope and ``{SCOPE}`` for
    it in upper case.
    """

    id: str
    title: str
    source: str
    rule: str
    cases: tuple[tuple[str, Expectation], ...]
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str = ""
    """What a failure means, when the bare lists of ids do not say it."""

    async def run(self, ctx: Context) -> None:
        scope = ctx.fixtures.name(self.id.rsplit(".", 1)[-1]) + "-"
        names = {"scope": scope, "SCOPE": scope.upper()}
        created = {
            key: await ctx.fixtures.user(f"{scope}{key}", **_fill(attributes, names))
            for key, attributes in self.users.items()
        }
        for template, expected in self.cases:
            expression = template.format(**names)
            if isinstance(expected, Refused):
                response = await ctx.http.get("/Users", params={"filter": expression})
                body = require_error_document(response, 400)
                require(
                    body.get("scimType") == expected.scim_type,
                    f"scimType is {body.get('scimType')!r}, not {expected.scim_type!r}",
                )
                continue
            found = ids((await query(ctx, "/Users", expression))[1])
            wanted = ids([created[key] for key in expected])
            require(
                sorted(found) == sorted(wanted),
                f"{expression!r} found {found}, expected {wanted}{self.note}",
            )


def _fill(value: Any, names: dict[str, str]) -> Any:
    """``value`` with the placeholders of every string in it replaced."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [_fill(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, names) for key, item in value.items()}
    return value


FILTER_CHECKS = (
    FilterCheck(
        "rfc.filter.eq-case-insensitive",
        "userName eq ignores case",
        "RFC 7643 §4.1.1",
        "userName ... caseExact false: a filter on userName matches regardless of case.",
        cases=(('userName eq "{SCOPE}MIXED"', ("Mixed",)),),
        users={"Mixed": {}},
    ),
    FilterCheck(
        "rfc.filter.externalid-case-exact",
        "externalId eq respects case",
        "RFC 7643 §3.1",
        "externalId ... caseExact true: a filter only matches the exact spelling.",
        cases=(
            ('externalId eq "{scope}ExtId"', ("user",)),
            ('externalId eq "{SCOPE}EXTID"', ()),
        ),
        users={"user": {"externalId": "{scope}ExtId"}},
    ),
    FilterCheck(
        "rfc.filter.operators",
        "co, sw, ew and pr select exactly their matches",
        "RFC 7644 §3.4.2.2",
        "co: contains; sw: starts with; ew: ends with; pr: has a non-empty value.",
        cases=(
            ('userName sw "{scope}" and userName co "lph"', ("alpha",)),
            ('userName sw "{scope}b"', ("bravo",)),
            ('userName sw "{scope}" and userName ew "avo"', ("bravo",)),
            ('userName sw "{scope}" and title pr', ("alpha",)),
        ),
        users={"alpha": {"title": "Lead"}, "bravo": {}},
    ),
    FilterCheck(
        "rfc.filter.comparisons",
        "ne, gt, ge, lt and le compare strings lexically",
        "RFC 7644 §3.4.2.2",
        "gt/ge/lt/le: for string attributes, a lexicographical comparison is performed; "
        "ne: not equal.",
        cases=(
            ('userName sw "{scope}" and userName ne "{scope}b"', ("a", "c")),
            ('userName sw "{scope}" and userName gt "{scope}b"', ("c",)),
            ('userName sw "{scope}" and userName ge "{scope}b"', ("b", "c")),
            ('userName sw "{scope}" and userName lt "{scope}b"', ("a",)),
            ('userName sw "{scope}" and userName le "{scope}b"', ("a", "b")),
        ),
        users={"a": {}, "b": {}, "c": {}},
    ),
    FilterCheck(
        "rfc.filter.precedence",
        "and binds tighter than or; not negates, nested too",
        "RFC 7644 §3.4.2.2; scim-go conformance (S1)",
        "Logical operators ... precedence: 'not', then 'and', then 'or'; parentheses group, "
        "and a 'not' may hold another.",
        cases=(
            # a or (b and title eq Dev) -> a, b; read left to right it would give only b.
            ('userName eq "{scope}a" or userName eq "{scope}b" and title eq "Dev"', ("a", "b")),
            ('(userName eq "{scope}a" or userName eq "{scope}b") and title eq "Dev"', ("b",)),
            ('userName sw "{scope}" and not (title eq "Dev")', ("a",)),
            ('userName sw "{scope}" and not (title eq "Lead") and userName ew "c"', ("c",)),
            # Nested: not (a or not Dev) -> Dev and not a.
            ('userName sw "{scope}" and not (userName ew "a" or not (title eq "Dev"))', ("b", "c")),
            ('userName sw "{scope}" and not (not (title eq "Lead"))', ("a",)),
        ),
        users={"a": {"title": "Lead"}, "b": {"title": "Dev"}, "c": {"title": "Dev"}},
    ),
    FilterCheck(
        "rfc.filter.value-path",
        "A value path filters within one multi-valued entry",
        "RFC 7644 §3.4.2.2",
        'emails[type eq "work" and value co "@example.com"]: both conditions apply to the same '
        "email.",
        cases=(
            (
                'userName sw "{scope}" and emails[type eq "work" and value ew "@work.example"]',
                ("m",),
            ),
        ),
        users={
            "m": {"emails": [{"value": "{scope}m@work.example", "type": "work"}]},
            "x": {
                "emails": [
                    {"value": "{scope}x@home.example", "type": "work"},
                    {"value": "{scope}x@work.example", "type": "home"},
                ]
            },
        },
        note=" (the other user has a work email and a @work.example email, but not in the "
        "same entry)",
    ),
    FilterCheck(
        "rfc.filter.value-path-operators",
        "ne, sw, not, or and pr inside a value path",
        "RFC 7644 §3.4.2.2; scim-go conformance (S8)",
        "valFilter is any filter: every comparison operator, 'not', 'or' and 'pr' apply to the "
        "sub-attributes of one entry of the multi-valued attribute.",
        cases=(
            ('userName sw "{scope}" and emails[type ne "work"]', ("home", "both")),
            ('userName sw "{scope}" and emails[value sw "{scope}h"]', ("home",)),
            ('userName sw "{scope}" and emails[not (type eq "work")]', ("home", "both")),
            (
                'userName sw "{scope}" and emails[type eq "other" or value ew "@home.example"]',
                ("home", "both"),
            ),
            ('userName sw "{scope}" and emails[primary pr]', ("home",)),
            ('userName sw "{scope}" and emails[type ne "work" and value sw "{scope}b"]', ("both",)),
        ),
        users={
            "work": {"emails": [{"value": "{scope}w@work.example", "type": "work"}]},
            "home": {
                "emails": [{"value": "{scope}h@home.example", "type": "home", "primary": True}]
            },
            "both": {
                "emails": [
                    {"value": "{scope}b@work.example", "type": "work"},
                    {"value": "{scope}b@home.example", "type": "home"},
                ]
            },
        },
    ),
    FilterCheck(
        "rfc.filter.ne-null-unassigned",
        "ne is the negation of eq; an unassigned attribute is null",
        "RFC 7644 §3.4.2.2, RFC 7643 §2.5; scim-go conformance (S7, S9)",
        "ne: the attribute and operator values are not identical; unassigned attributes and "
        "the null value SHALL be considered equivalent in state. So 'x ne v' finds whatever "
        "'not (x eq v)' finds, an unassigned x included (a boolean, a primary, any attribute); "
        "'x eq null' is 'not (x pr)' and 'x ne null' is 'x pr'.",
        cases=(
            ('userName sw "{scope}" and active ne true', ("off",)),
            ('userName sw "{scope}" and active ne false', ("on", "plain")),
            ('userName sw "{scope}" and emails.primary ne true', ("off", "plain")),
            ('userName sw "{scope}" and emails[primary ne true]', ("off", "plain")),
            ('userName sw "{scope}" and nickName ne "Nick"', ("off", "plain")),
            ('userName sw "{scope}" and not (nickName eq "Nick")', ("off", "plain")),
            ('userName sw "{scope}" and nickName eq null', ("off", "plain")),
            ('userName sw "{scope}" and nickName ne null', ("on",)),
            ('userName sw "{scope}" and not (nickName ne null)', ("off", "plain")),
            ('userName sw "{scope}" and title ne null', ()),
            ('userName sw "{scope}" and not (title eq null)', ()),
        ),
        users={
            "on": {
                "nickName": "Nick",
                "emails": [{"value": "{scope}on@example.com", "type": "work", "primary": True}],
            },
            "off": {
                "active": False,
                "emails": [{"value": "{scope}off@example.com", "type": "home"}],
            },
            "plain": {
                "emails": [{"value": "{scope}plain@example.com", "type": "work", "primary": False}]
            },
        },
        note=" (ne must find what 'not (... eq ...)' finds: an unassigned attribute is null, and "
        "null differs from every value)",
    ),
    FilterCheck(
        "rfc.filter.invalid",
        "An unparsable filter answers 400 invalidFilter",
        "RFC 7644 §3.12",
        "invalidFilter: the specified filter syntax was invalid (400).",
        cases=(('userName eq "x" and (', Refused("invalidFilter")),),
    ),
)

for filter_check in FILTER_CHECKS:
    check(S, filter_check.id, filter_check.title, filter_check.source, filter_check.rule)(
        filter_check.run
    )


OPERATORS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
"""Every comparison operator of RFC 7644 §3.4.2.2, ``pr`` aside."""
STRING_ONLY = ("co", "sw", "ew")
"""The operators defined on strings only; a dateTime is compared with the others."""


def holds(actual: Any, op: str, expected: Any) -> bool:
    """What a comparison answers for one stored value: the oracle of ``rfc.filter.id-meta``."""
    outcome: bool = {
        "eq": actual == expected,
        "ne": actual != expected,
        "co": str(expected) in str(actual),
        "sw": str(actual).startswith(str(expected)),
        "ew": str(actual).endswith(str(expected)),
        "gt": actual > expected,
        "ge": actual >= expected,
        "lt": actual < expected,
        "le": actual <= expected,
    }[op]
    return outcome


ID_AND_META = (
    "id",
    "meta.created",
    "meta.lastModified",
    "meta.resourceType",
    "meta.version",
    "meta.location",
)
DERIVED_META = ("meta.version", "meta.location")
"""Derived from the stored resource rather than stored: a server may refuse to filter on them
(400 invalidFilter, RFC 7644 §3.4.2.2), but one that filters must answer right."""


async def filter_refused(ctx: Context, expression: str) -> bool:
    """Whether the server refuses ``expression`` as RFC 7644 §3.12 says, with a 400
    ``invalidFilter``; any other refusal fails the check."""
    response = await ctx.http.get("/Users", params={"filter": expression})
    if response.status != 400:
        return False
    body = require_error_of(f"filter {expression!r}", response, 400)
    require(
        body.get("scimType") == "invalidFilter",
        f"filter {expression!r} refused with scimType {body.get('scimType')!r}, "
        "not 'invalidFilter'",
    )
    return True


def meta_value(user: dict[str, Any], attribute: str) -> Any:
    """``id`` or a ``meta.*`` sub-attribute of ``user``, a dateTime as a ``datetime``."""
    value = user.get("id") if attribute == "id" else (user.get("meta") or {}).get(attribute[5:])
    if attribute in ("meta.created", "meta.lastModified"):
        return datetime.fromisoformat(str(value))
    return value


@check(
    S,
    "rfc.filter.id-meta",
    "Every comparison operator on id and meta",
    "RFC 7644 §3.4.2.2, RFC 7643 §3.1; scim-go conformance (S6)",
    "id and the meta sub-attributes are filterable like any attribute: eq, ne, co, sw, ew, "
    "gt, ge, lt, le (lexically on strings, chronologically on dateTimes) and pr. A server "
    "that cannot filter on the derived meta.version or meta.location answers 400 "
    "invalidFilter.",
)
async def id_and_meta_operators(ctx: Context) -> None:
    scope = ctx.fixtures.name("idmeta") + "-"
    users = [await ctx.fixtures.user(f"{scope}{key}") for key in "ab"]
    first = users[0]
    for attribute in ID_AND_META:
        sample = meta_value(first, attribute)
        text = str(first["id"] if attribute == "id" else first["meta"][attribute[5:]])
        if attribute in DERIVED_META and await filter_refused(
            ctx, f"{attribute} eq {json.dumps(text)}"
        ):
            continue
        for op in OPERATORS:
            if isinstance(sample, datetime) and op in STRING_ONLY:
                continue
            operand = text[1:-1] if op == "co" else text
            expression = f'userName sw "{scope}" and {attribute} {op} {json.dumps(operand)}'
            found = ids((await query(ctx, "/Users", expression))[1])
            compared = operand if not isinstance(sample, datetime) else sample
            wanted = ids([u for u in users if holds(meta_value(u, attribute), op, compared)])
            require(sorted(found) == sorted(wanted), f"{expression!r} found {found}, not {wanted}")
        present = ids((await query(ctx, "/Users", f'userName sw "{scope}" and {attribute} pr'))[1])
        require(sorted(present) == sorted(ids(users)), f"{attribute} pr found {present}")


# --- sorting and paging -------------------------------------------------------------------


@check(
    S,
    "rfc.sort.order",
    "sortBy/sortOrder order the results",
    "RFC 7644 §3.4.2.3",
    "sortOrder 'ascending' (the default) or 'descending' orders by sortBy.",
)
async def sort_order(ctx: Context) -> None:
    ctx.require_feature("sort")
    scope = ctx.fixtures.name("sort") + "-"
    names = [f"{scope}{n}" for n in ("delta", "Alpha", "charlie", "bravo")]
    for name in names:
        await ctx.fixtures.user(name)
    expected = sorted(names, key=str.lower)
    for order, wanted in (("ascending", expected), ("descending", expected[::-1])):
        found = (
            await query(ctx, "/Users", f'userName sw "{scope}"', sortBy="userName", sortOrder=order)
        )[1]
        got = [r.get("userName") for r in found]
        require(got == wanted, f"sortOrder={order} gave {got}, expected {wanted}")


@check(
    S,
    "rfc.paging.invariants",
    "Pages cover every result once, totalResults is true",
    "RFC 7644 §3.4.2.4",
    "startIndex is 1-based; totalResults is the total number of results matching the "
    "query; itemsPerPage the number on this page.",
)
async def paging(ctx: Context) -> None:
    scope = ctx.fixtures.name("page") + "-"
    created = [await ctx.fixtures.user(f"{scope}{n}") for n in range(5)]
    seen: list[str] = []
    for start in (1, 3, 5):
        response, page = await query(
            ctx, "/Users", f'userName sw "{scope}"', startIndex=str(start), count="2"
        )
        body = expect_object(response)
        require(
            body.get("totalResults") == 5,
            f"startIndex={start}: totalResults is {body.get('totalResults')!r}, not 5",
        )
        require(
            body.get("startIndex") == start,
            f"startIndex={start}: response startIndex is {body.get('startIndex')!r}",
        )
        require(
            len(page) == min(2, 5 - start + 1),
            f"startIndex={start}, count=2 returned {len(page)} resources",
        )
        require(
            body.get("itemsPerPage") == len(page),
            f"itemsPerPage {body.get('itemsPerPage')!r} != {len(page)} resources",
        )
        seen.extend(ids(page))
    require(len(seen) == len(set(seen)), f"a resource appeared on two pages: {seen}")
    require(set(seen) == set(ids(created)), "some resources appeared on no page")


@check(
    S,
    "rfc.paging.count-zero",
    "count=0 returns no resources but the true total",
    "RFC 7644 §3.4.2.4",
    "A value of '0' indicates that no resource results are to be returned except for totalResults.",
)
async def count_zero(ctx: Context) -> None:
    scope = ctx.fixtures.name("zero") + "-"
    for n in range(2):
        await ctx.fixtures.user(f"{scope}{n}")
    response, page = await query(ctx, "/Users", f'userName sw "{scope}"', count="0")
    require(not page, f"count=0 returned {len(page)} resources")
    total = expect_object(response).get("totalResults")
    require(total == 2, f"count=0: totalResults is {total!r}, not 2")


@check(
    S,
    "rfc.paging.start-index-below-one",
    "startIndex below 1 is read as 1",
    "RFC 7644 §3.4.2.4",
    "A value less than 1 SHALL be interpreted as 1.",
)
async def start_index_below_one(ctx: Context) -> None:
    scope = ctx.fixtures.name("sidx") + "-"
    for n in range(2):
        await ctx.fixtures.user(f"{scope}{n}")
    first = (await query(ctx, "/Users", f'userName sw "{scope}"', startIndex="1", count="1"))[1]
    for value in ("0", "-3"):
        response, page = await query(
            ctx, "/Users", f'userName sw "{scope}"', startIndex=value, count="1"
        )
        require(
            ids(page) == ids(first),
            f"startIndex={value} gave {ids(page)}, startIndex=1 gave {ids(first)}",
        )
        start = expect_object(response).get("startIndex")
        require(start == 1, f"startIndex={value}: response startIndex is {start!r}, not 1")


@check(
    S,
    "rfc.paging.cursor",
    "Cursor pages cover every result once",
    "RFC 9865 §2",
    "Follow nextCursor until it is absent; every result appears on exactly one page.",
)
async def cursor(ctx: Context) -> None:
    pagination = ctx.feature("pagination")
    if pagination.get("cursor") is not True:
        raise CheckSkipped("ServiceProviderConfig does not advertise pagination.cursor: true")
    scope = ctx.fixtures.name("cur") + "-"
    created = [await ctx.fixtures.user(f"{scope}{n}") for n in range(5)]
    seen: list[str] = []
    params = {"filter": f'userName sw "{scope}"', "count": "2", "cursor": ""}
    for _ in range(10):
        response = await ctx.http.get("/Users", params=params)
        expect_status(response, 200, what="cursor page")
        body = expect_object(response)
        seen.extend(ids(resources_of(response)))
        next_cursor = body.get("nextCursor")
        if not next_cursor:
            break
        params["cursor"] = str(next_cursor)
    else:
        require(False, "nextCursor never ran out after 10 pages of 2 for 5 results")
    require(len(seen) == len(set(seen)), f"a resource appeared on two cursor pages: {seen}")
    require(set(seen) == set(ids(created)), f"cursor pages gave {seen}")


# --- attributes ---------------------------------------------------------------------------


@check(
    S,
    "rfc.attributes.attributes",
    "attributes= returns those plus id",
    "RFC 7644 §3.4.2.5",
    "attributes: the attributes to return ... id is always returned ('returned: always').",
)
async def attributes(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    response = await ctx.http.get(f"/Users/{user['id']}", params={"attributes": "userName"})
    expect_status(response, 200)
    body = expect_object(response)
    require(body.get("id") == user["id"], "id is missing with attributes=userName")
    require(body.get("userName") == user["userName"], "userName is missing")
    for unwanted in ("emails", "name", "displayName"):
        require(unwanted not in body, f"{unwanted} returned although not asked for")


@check(
    S,
    "rfc.attributes.excluded",
    "excludedAttributes= leaves those out, never id",
    "RFC 7644 §3.4.2.5",
    "excludedAttributes: attributes to leave out; 'returned: always' attributes (id) stay.",
)
async def excluded(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    response = await ctx.http.get(
        f"/Users/{user['id']}", params={"excludedAttributes": "emails,id"}
    )
    expect_status(response, 200)
    body = expect_object(response)
    require("emails" not in body, "emails returned although excluded")
    require(body.get("id") == user["id"], "id was excluded; it is returned always")
    require(body.get("userName") == user["userName"], "userName disappeared")


@check(
    S,
    "rfc.attributes.list-and-search",
    "attributes= projects every resource of a list and of a search",
    "RFC 7644 §3.4.2.5, §3.4.3; scim2-tester (object_list_with_attributes, search_with_attributes)",
    "attributes and excludedAttributes apply to each resource of a list GET, of "
    "POST /{Resource}/.search and of POST /.search (in the request body there), 'returned: "
    "always' attributes (id) staying.",
)
async def list_and_search_attributes(ctx: Context) -> None:
    scope = ctx.fixtures.name("projected") + "-"
    created = [await ctx.fixtures.user(f"{scope}{key}") for key in "ab"]
    expression = f'userName sw "{scope}"'
    listed = (await query(ctx, "/Users", expression, attributes="userName"))[1]
    answers = [("GET /Users?attributes=userName", listed)]
    for endpoint in ("/Users/.search", "/.search"):
        response = await ctx.http.post(
            endpoint,
            {"schemas": [SEARCH_REQUEST], "filter": expression, "attributes": ["userName"]},
        )
        expect_status(response, 200, what=f"POST {endpoint} with attributes")
        answers.append((f"POST {endpoint} with attributes", resources_of(response)))
    wanted = sorted(ids(created))
    for request, resources in answers:
        require(sorted(ids(resources)) == wanted, f"{request} found {ids(resources)}, not {wanted}")
        for resource in resources:
            extra = sorted(set(resource) - {"id", "userName", "schemas", "meta"})
            require(not extra, f"{request} returned {extra}, which were not asked for")
            require(resource.get("userName"), f"{request} left out userName: {resource}")
    excluded = (await query(ctx, "/Users", expression, excludedAttributes="emails,name"))[1]
    for resource in excluded:
        kept = sorted({"emails", "name"} & set(resource))
        require(not kept, f"GET /Users?excludedAttributes=emails,name returned {kept}")
        require(resource.get("id"), f"excludedAttributes removed the id: {resource}")


@check(
    S,
    "rfc.attributes.password-never",
    "password is never returned",
    "RFC 7643 §4.1.1",
    "password ... returned 'never': it SHALL NOT be returned by a service provider.",
)
async def password_never(ctx: Context) -> None:
    body = ctx.fixtures.user_body(password="Conformance-Secret-123!")
    response = await ctx.http.post("/Users", body)
    ctx.fixtures.track("/Users", response.json())
    expect_status(response, 201)
    created = expect_object(response)
    require("password" not in created, "POST response contains password")
    fetched = await read(ctx, f"/Users/{created['id']}")
    require("password" not in fetched, "GET response contains password")
    asked = await ctx.http.get(f"/Users/{created['id']}", params={"attributes": "password"})
    require("password" not in (asked.json() or {}), "attributes=password returned it")
    listed = (await query(ctx, "/Users", f'userName eq "{created["userName"]}"'))[1]
    require(all("password" not in r for r in listed), "list response contains password")


# --- PATCH --------------------------------------------------------------------------------


@check(
    S,
    "rfc.patch.add",
    "PATCH add sets an attribute",
    "RFC 7644 §3.5.2.1",
    "add: if the target location does not exist, the attribute and value are added.",
)
async def patch_add(ctx: Context) -> None:
    require_patch(ctx)
    user = await ctx.fixtures.user()
    await patch(ctx, f"/Users/{user['id']}", {"op": "add", "path": "nickName", "value": "Added"})
    stored = await read(ctx, f"/Users/{user['id']}")
    require(stored.get("nickName") == "Added", f"nickName is {stored.get('nickName')!r}")


@check(
    S,
    "rfc.patch.replace",
    "PATCH replace changes an attribute",
    "RFC 7644 §3.5.2.3",
    "replace: replaces the value at the target location.",
)
async def patch_replace(ctx: Context) -> None:
    require_patch(ctx)
    user = await ctx.fixtures.user(title="Before")
    await patch(
        ctx,
        f"/Users/{user['id']}",
        {"op": "replace", "path": "title", "value": "After"},
        {"op": "replace", "path": "name.givenName", "value": "Patched"},
    )
    stored = await read(ctx, f"/Users/{user['id']}")
    require(stored.get("title") == "After", f"title is {stored.get('title')!r}")
    require(
        (stored.get("name") or {}).get("givenName") == "Patched",
        f"name.givenName is {(stored.get('name') or {}).get('givenName')!r}",
    )
    require(
        (stored.get("name") or {}).get("familyName") == "Tester",
        "replacing name.givenName lost name.familyName",
    )


@check(
    S,
    "rfc.patch.remove",
    "PATCH remove clears an attribute",
    "RFC 7644 §3.5.2.2",
    "remove: the value at the target location is removed.",
)
async def patch_remove(ctx: Context) -> None:
    require_patch(ctx)
    user = await ctx.fixtures.user(title="Doomed")
    await patch(ctx, f"/Users/{user['id']}", {"op": "remove", "path": "title"})
    stored = await read(ctx, f"/Users/{user['id']}")
    require("title" not in stored, f"title is still {stored.get('title')!r}")


@check(
    S,
    "rfc.patch.operation-order",
    "PATCH applies its operations in order",
    "RFC 7644 §3.5.2; scim-go conformance (S11); Microsoft SCIM Validator (preview: multiple "
    "ops on the same attribute)",
    "Each operation is applied in sequence, in the order it appears: the last of several "
    "operations on one attribute decides its value.",
)
async def patch_order(ctx: Context) -> None:
    require_patch(ctx)
    user = await ctx.fixtures.user(title="Start")
    await patch(
        ctx,
        f"/Users/{user['id']}",
        {"op": "replace", "path": "title", "value": "First"},
        {"op": "replace", "path": "title", "value": "Second"},
        {"op": "remove", "path": "nickName"},
        {"op": "add", "path": "nickName", "value": "Kept"},
        {"op": "add", "path": "profileUrl", "value": "https://example.com/dropped"},
        {"op": "remove", "path": "profileUrl"},
    )
    stored = await read(ctx, f"/Users/{user['id']}")
    got = (stored.get("title"), stored.get("nickName"), stored.get("profileUrl"))
    wanted = ("Second", "Kept", None)
    require(got == wanted, f"title, nickName, profileUrl are {got}, expected {wanted}")


@check(
    S,
    "rfc.patch.pathless-keeps-references",
    "A path-less replace keeps the references it leaves out",
    "RFC 7644 §3.5.2.3; scim-go conformance (S2)",
    "replace without a path: the value holds the attributes to replace; the attributes it "
    "does not name, a manager and the groups holding the user among them, are left as they "
    "were.",
)
async def pathless_keeps_references(ctx: Context) -> None:
    require_patch(ctx)
    with_manager = ENTERPRISE in await user_extensions(ctx)
    boss = await ctx.fixtures.user()
    body = ctx.fixtures.user_body()
    if with_manager:
        body["schemas"] = [USER, ENTERPRISE]
        body[ENTERPRISE] = {"manager": {"value": boss["id"]}}
    report = await ctx.fixtures.create("/Users", body)
    group = await ctx.fixtures.group(members=[report["id"]])
    await patch(
        ctx,
        f"/Users/{report['id']}",
        {"op": "replace", "value": {"displayName": "Replaced Name", "title": "Replaced"}},
    )
    stored = await read(ctx, f"/Users/{report['id']}")
    require(stored.get("title") == "Replaced", f"title is {stored.get('title')!r}")
    if with_manager:
        manager = (stored.get(ENTERPRISE) or {}).get("manager") or {}
        require(
            manager.get("value") == boss["id"],
            f"manager is {manager or None!r} after a path-less replace that did not name it",
        )
    members = [
        m.get("value") for m in (await read(ctx, f"/Groups/{group['id']}")).get("members") or []
    ]
    require(
        members == [report["id"]],
        f"the group's members are {members} after a path-less replace of its member",
    )


@check(
    S,
    "rfc.patch.value-filter-path",
    "PATCH with a value filter targets one entry",
    "RFC 7644 §3.5.2",
    'path = attrPath / valuePath [subAttr]: emails[type eq "work"].value changes only '
    "the matching email.",
)
async def patch_value_filter(ctx: Context) -> None:
    require_patch(ctx)
    name = ctx.fixtures.name("vfp")
    user = await ctx.fixtures.user(
        name,
        emails=[
            {"value": f"{name}@work.example", "type": "work"},
            {"value": f"{name}@home.example", "type": "home"},
        ],
    )
    await patch(
        ctx,
        f"/Users/{user['id']}",
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": f"{name}@new.example"},
    )
    after = await read(ctx, f"/Users/{user['id']}")
    stored = {e.get("type"): e.get("value") for e in emails(after)}
    require(stored.get("work") == f"{name}@new.example", f"work email is {stored.get('work')!r}")
    require(
        stored.get("home") == f"{name}@home.example",
        f"home email changed to {stored.get('home')!r}",
    )


@check(
    S,
    "rfc.patch.group-members",
    "PATCH adds a member and removes one by filter",
    "RFC 7644 §3.5.2.1-2",
    "add to 'members' appends; remove with path members[value eq \"id\"] removes that one.",
)
async def patch_members(ctx: Context) -> None:
    require_patch(ctx)
    keep, drop, new = [await ctx.fixtures.user() for _ in range(3)]
    group = await ctx.fixtures.group(members=[keep["id"], drop["id"]])
    await patch(
        ctx,
        f"/Groups/{group['id']}",
        {"op": "remove", "path": f'members[value eq "{drop["id"]}"]'},
        {"op": "add", "path": "members", "value": [{"value": new["id"]}]},
    )
    stored = await read(ctx, f"/Groups/{group['id']}")
    values = sorted(m.get("value") for m in stored.get("members") or [])
    require(
        values == sorted([keep["id"], new["id"]]),
        f"members are {values}, expected {sorted([keep['id'], new['id']])}",
    )


@check(
    S,
    "rfc.groups.unknown-member-refused",
    "A member id that names nothing answers 400",
    "RFC 7644 §3.12 (invalidValue), §3.5.2",
    "invalidValue: a required value was missing, or the value specified was not "
    "compatible with the operation; a member value that references no resource of the "
    "service provider is not a valid value (400), and it is not stored.",
)
async def unknown_member_refused(ctx: Context) -> None:
    missing = f"{MISSING_ID}-member"
    body = {
        "schemas": [GROUP],
        "displayName": ctx.fixtures.name("ghost"),
        "members": [{"value": missing}],
    }
    response = await ctx.http.post("/Groups", body)
    ctx.fixtures.track("/Groups", response.json())
    error = require_error_document(response, 400)
    require(
        error.get("scimType") == "invalidValue",
        f"POST: scimType is {error.get('scimType')!r}, not 'invalidValue'",
    )
    if ctx.feature("patch").get("supported") is not True:
        return
    group = await ctx.fixtures.group()
    added = await ctx.http.patch(
        f"/Groups/{group['id']}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": missing}]}],
        },
    )
    error = require_error_document(added, 400)
    require(
        error.get("scimType") == "invalidValue",
        f"PATCH: scimType is {error.get('scimType')!r}, not 'invalidValue'",
    )
    stored = await read(ctx, f"/Groups/{group['id']}")
    values = [m.get("value") for m in stored.get("members") or []]
    require(missing not in values, f"the unknown member id was stored: members {values}")


# --- ETags --------------------------------------------------------------------------------


@check(
    S,
    "rfc.etag.header",
    "ETag header equals meta.version",
    "RFC 7644 §3.14",
    "the server ... returns the version in the ETag header and in meta.version.",
)
async def etag_header(ctx: Context) -> None:
    ctx.require_feature("etag")
    user = await ctx.fixtures.user()
    response = await ctx.http.get(f"/Users/{user['id']}")
    expect_status(response, 200)
    version = (expect_object(response).get("meta") or {}).get("version")
    require(version, "meta.version is missing although etag is supported")
    require(
        response.header("ETag") == version,
        f"ETag header {response.header('ETag')!r} != meta.version {version!r}",
    )


@check(
    S,
    "rfc.etag.if-match-stale",
    "A stale If-Match answers 412",
    "RFC 7644 §3.14",
    "If-Match with a version that no longer matches: 412 Precondition Failed.",
)
async def if_match_stale(ctx: Context) -> None:
    ctx.require_feature("etag")
    user = await ctx.fixtures.user(title="v1")
    stale = (user.get("meta") or {}).get("version")
    require(stale, "meta.version is missing although etag is supported")
    body = ctx.fixtures.user_body(user["userName"], title="v2")
    first = await ctx.http.put(f"/Users/{user['id']}", body, headers={"If-Match": stale})
    expect_status(first, 200, what="PUT with the current If-Match")
    body["title"] = "v3"
    second = await ctx.http.put(f"/Users/{user['id']}", body, headers={"If-Match": stale})
    require_error_document(second, 412)
    stored = await read(ctx, f"/Users/{user['id']}")
    require(
        stored.get("title") == "v2", f"the stale PUT was applied: title {stored.get('title')!r}"
    )


@check(
    S,
    "rfc.etag.if-none-match",
    "If-None-Match with the current version answers 304",
    "RFC 7644 §3.14",
    "If-None-Match: the server returns 304 Not Modified when unchanged.",
)
async def if_none_match(ctx: Context) -> None:
    ctx.require_feature("etag")
    user = await ctx.fixtures.user()
    current = await ctx.http.get(f"/Users/{user['id']}")
    etag = current.header("ETag") or (user.get("meta") or {}).get("version")
    require(etag, "no ETag header nor meta.version although etag is supported")
    response = await ctx.http.get(f"/Users/{user['id']}", headers={"If-None-Match": str(etag)})
    expect_status(response, 304)


# --- errors -------------------------------------------------------------------------------


@check(
    S,
    "rfc.errors.not-found",
    "An unknown id answers a SCIM 404 error",
    "RFC 7644 §3.12",
    "Errors: schemas Error, 'status' the HTTP status code as a string, 'detail'; "
    "Content-Type application/scim+json.",
)
async def not_found(ctx: Context) -> None:
    response = await ctx.http.get(f"/Users/{MISSING_ID}")
    body = require_error_document(response, 404)
    require(isinstance(body.get("detail"), str) and body["detail"], "detail is empty")


@check(
    S,
    "rfc.errors.not-found-every-operation",
    "Every operation on an unknown id answers 404",
    "RFC 7644 §3.12; scim-go conformance (S5); Microsoft SCIM Validator (preview: delete a "
    "non-existent user or group)",
    "404 Not Found: the specified resource does not exist, whether it is read (GET), replaced "
    "(PUT), patched (PATCH) or deleted (DELETE), on Users and Groups alike.",
)
async def not_found_every_operation(ctx: Context) -> None:
    patch_body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Nobody"}],
    }
    for endpoint, body in (
        ("/Users", ctx.fixtures.user_body()),
        ("/Groups", {"schemas": [GROUP], "displayName": ctx.fixtures.name("ghost")}),
    ):
        path = f"{endpoint}/{MISSING_ID}"
        answers = [
            ("GET", await ctx.http.get(path)),
            ("PUT", await ctx.http.put(path, body)),
            ("DELETE", await ctx.http.delete(path)),
        ]
        if ctx.feature("patch").get("supported") is True:
            answers.append(("PATCH", await ctx.http.patch(path, patch_body)))
        for method, response in answers:
            require_error_of(f"{method} {path}", response, 404)


METHOD_NOT_ALLOWED = (
    ("DELETE", "/ServiceProviderConfig", "GET"),
    ("POST", "/ResourceTypes", "GET"),
    ("PUT", "/Schemas", "GET"),
    ("PUT", "/Users", "POST"),
    ("DELETE", "/Groups", "POST"),
    ("POST", "/Users/{id}", "GET"),
    ("GET", "/Users/.search", "POST"),
    ("GET", "/.search", "POST"),
)
"""A method no SCIM endpoint takes, and one method the endpoint must name in ``Allow``."""


@check(
    S,
    "rfc.errors.method-not-allowed",
    "A method an endpoint does not take answers 405 with Allow",
    "RFC 9110 §15.5.6; RFC 7644 §3.2, §3.12; scim2-tester (*_endpoint_methods); scim-go "
    "conformance (S10)",
    "405 Method Not Allowed: the server MUST send an Allow header listing the methods the "
    "endpoint supports; the answer is a SCIM error.",
)
async def method_not_allowed(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    cases = list(METHOD_NOT_ALLOWED)
    if ctx.feature("bulk").get("supported") is True:
        cases.append(("GET", "/Bulk", "POST"))
    for method, template, expected in cases:
        path = template.format(id=user["id"])
        response = await ctx.http.request(method, path)
        require_error_of(f"{method} {path}", response, 405)
        allowed = {m.strip().upper() for m in (response.header("Allow") or "").split(",")}
        require(
            expected in allowed and method not in allowed,
            f"{method} {path}: Allow is {response.header('Allow')!r}, which must name "
            f"{expected} and not {method}",
        )


@check(
    S,
    "rfc.errors.uniqueness",
    "A duplicate userName answers 409 uniqueness",
    "RFC 7644 §3.3, §3.12",
    "If the service provider determines that the creation of the requested resource "
    "conflicts with existing resources, 409 with scimType 'uniqueness'.",
)
async def uniqueness(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    response = await ctx.http.post("/Users", ctx.fixtures.user_body(user["userName"].upper()))
    ctx.fixtures.track("/Users", response.json())
    body = require_error_document(response, 409)
    require(
        body.get("scimType") == "uniqueness",
        f"scimType is {body.get('scimType')!r}, not 'uniqueness'",
    )


@check(
    S,
    "rfc.errors.unauthorized",
    "No credentials: 401, WWW-Authenticate, SCIM error",
    "RFC 7644 §2, §3.12; RFC 6750 §3",
    "An unauthenticated request gets 401 with a WWW-Authenticate challenge.",
)
async def unauthorized(ctx: Context) -> None:
    response = await ctx.http.get("/Users", auth=False)
    require(response.status == 401, f"expected HTTP 401, got {response.status}")
    require(response.header("WWW-Authenticate"), "401 without a WWW-Authenticate header")
    require_error_document(response, 401)
    wrong = await ctx.http.get(
        "/Users", auth=False, headers={"Authorization": "Bearer scimconf-not-a-token"}
    )
    require(wrong.status == 401, f"a wrong token got HTTP {wrong.status}, not 401")


@check(
    S,
    "rfc.errors.invalid-json",
    "A malformed body answers 400 invalidSyntax",
    "RFC 7644 §3.12",
    "invalidSyntax: the request body message structure was invalid (400).",
)
async def invalid_json(ctx: Context) -> None:
    response = await ctx.http.request("POST", "/Users", raw_body='{"userName": ')
    body = require_error_document(response, 400)
    require(
        body.get("scimType") == "invalidSyntax",
        f"scimType is {body.get('scimType')!r}, not 'invalidSyntax'",
    )


@check(
    S,
    "rfc.errors.unknown-attribute",
    "An attribute no schema declares answers 400 invalidSyntax",
    "RFC 7644 §3.12 (invalidSyntax)",
    "invalidSyntax: the request body did not conform to the request schema, which a body "
    "carrying an attribute that no schema of the resource declares does not (400); "
    "invalidValue is for a value a declared attribute cannot take.",
)
async def unknown_attribute(ctx: Context) -> None:
    response = await ctx.http.post("/Users", ctx.fixtures.user_body(nickNme="typo"))
    ctx.fixtures.track("/Users", response.json())
    error = require_error_document(response, 400)
    require(
        error.get("scimType") == "invalidSyntax",
        f"scimType is {error.get('scimType')!r}, not 'invalidSyntax'",
    )


@check(
    S,
    "rfc.errors.required-attribute",
    "A user without userName answers 400",
    "RFC 7643 §4.1.1, RFC 7644 §3.12",
    "userName ... REQUIRED; a request missing it is invalid (400, invalidValue).",
)
async def missing_user_name(ctx: Context) -> None:
    body = ctx.fixtures.user_body()
    del body["userName"]
    response = await ctx.http.post("/Users", body)
    ctx.fixtures.track("/Users", response.json())
    error = require_error_document(response, 400)
    require(
        error.get("scimType") in ("invalidValue", "invalidSyntax"),
        f"scimType is {error.get('scimType')!r}",
    )


# --- concurrency --------------------------------------------------------------------------


@check(
    S,
    "rfc.concurrency.member-adds",
    "Parallel member adds all land",
    "RFC 7644 §3.5.2.1",
    "add on a multi-valued attribute adds the values; no concurrent add may be lost.",
)
async def parallel_member_adds(ctx: Context) -> None:
    require_patch(ctx)
    users = [await ctx.fixtures.user() for _ in range(8)]
    group = await ctx.fixtures.group()
    responses = await asyncio.gather(
        *(
            ctx.http.patch(
                f"/Groups/{group['id']}",
                {
                    "schemas": [PATCH_OP],
                    "Operations": [
                        {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
                    ],
                },
            )
            for user in users
        )
    )
    statuses = [r.status for r in responses]
    require(all(s in (200, 204) for s in statuses), f"parallel adds answered {statuses}")
    stored = await read(ctx, f"/Groups/{group['id']}")
    values = {m.get("value") for m in stored.get("members") or []}
    lost = set(ids(users)) - values
    require(not lost, f"{len(lost)} of {len(users)} concurrent member adds were lost")


@check(
    S,
    "rfc.concurrency.username-race",
    "Parallel creates of one userName: one 201",
    "RFC 7643 §4.1.1, RFC 7644 §3.3",
    "userName uniqueness 'server': of concurrent creates exactly one succeeds, the rest get 409.",
)
async def username_race(ctx: Context) -> None:
    name = ctx.fixtures.name("race")
    responses = await asyncio.gather(
        *(ctx.http.post("/Users", ctx.fixtures.user_body(name)) for _ in range(6))
    )
    for response in responses:
        ctx.fixtures.track("/Users", response.json())
    statuses = sorted(r.status for r in responses)
    require(statuses.count(201) == 1, f"{statuses.count(201)} creates succeeded: {statuses}")
    require(statuses.count(409) == 5, f"the losers must get 409: {statuses}")
    listed = (await query(ctx, "/Users", f'userName eq "{name}"'))[1]
    require(len(listed) == 1, f"{len(listed)} users named {name!r} exist")


# --- bulk ---------------------------------------------------------------------------------


async def bulk(
    ctx: Context, operations: list[dict[str, Any]], fail_on_errors: int | None = None
) -> list[dict[str, Any]]:
    ctx.require_feature("bulk")
    request: dict[str, Any] = {"schemas": [BULK_REQUEST], "Operations": operations}
    if fail_on_errors is not None:
        request["failOnErrors"] = fail_on_errors
    response = await ctx.http.post("/Bulk", request)
    expect_status(response, 200, what="POST /Bulk")
    results = expect_object(response).get("Operations")
    if not isinstance(results, list):
        raise CheckFailed("the bulk response has no Operations array")
    for result in results:
        location = result.get("location") or ""
        resource_id = str(location).rstrip("/").rsplit("/", 1)[-1]
        if str(result.get("status")) == "201" and resource_id:
            ctx.fixtures.tracker.remember(
                "/Groups" if "/Groups/" in location else "/Users", resource_id
            )
    return list(results)


@check(
    S,
    "rfc.bulk.bulkid-reference",
    "A bulkId reference resolves to the created id",
    "RFC 7644 §3.7.2",
    "bulkId:<id> in a later operation's data refers to the resource an earlier POST "
    "created with that bulkId.",
)
async def bulk_reference(ctx: Context) -> None:
    user_name, group_name = ctx.fixtures.name("bulku"), ctx.fixtures.name("bulkg")
    results = await bulk(
        ctx,
        [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u1",
                "data": ctx.fixtures.user_body(user_name),
            },
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g1",
                "data": {
                    "schemas": [GROUP],
                    "displayName": group_name,
                    "members": [{"value": "bulkId:u1"}],
                },
            },
        ],
    )
    statuses = [str(r.get("status")) for r in results]
    require(statuses == ["201", "201"], f"operation statuses are {statuses}")
    user_id = str(results[0].get("location", "")).rstrip("/").rsplit("/", 1)[-1]
    group_location = str(results[1].get("location", ""))
    group = await read(ctx, group_location)
    values = [m.get("value") for m in group.get("members") or []]
    require(values == [user_id], f"group members are {values}, expected [{user_id!r}]")


@check(
    S,
    "rfc.bulk.fail-on-errors",
    "failOnErrors stops after that many errors",
    "RFC 7644 §3.7.3",
    "failOnErrors: the number of errors after which the service provider stops "
    "processing the bulk operation.",
)
async def bulk_fail_on_errors(ctx: Context) -> None:
    existing = await ctx.fixtures.user()
    later = ctx.fixtures.name("bulkl")
    results = await bulk(
        ctx,
        [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "dup",
                "data": ctx.fixtures.user_body(existing["userName"]),
            },
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "later",
                "data": ctx.fixtures.user_body(later),
            },
        ],
        fail_on_errors=1,
    )
    require(
        results and str(results[0].get("status")) == "409",
        f"the duplicate POST did not answer 409: {results[:1]}",
    )
    require(len(results) == 1, f"{len(results)} operations ran after failOnErrors=1 was reached")
    listed = (await query(ctx, "/Users", f'userName eq "{later}"'))[1]
    require(not listed, "the operation after the first error was processed")


@check(
    S,
    "rfc.bulk.max-operations",
    "More than maxOperations answers 413",
    "RFC 7644 §3.7.4",
    "If the number of operations exceeds maxOperations, the server returns 413 Payload Too Large.",
)
async def bulk_max_operations(ctx: Context) -> None:
    ctx.require_feature("bulk")
    limit = ctx.feature("bulk").get("maxOperations")
    if not isinstance(limit, int) or limit <= 0:
        raise CheckFailed(f"bulk.maxOperations is {limit!r}")
    if limit > 5000:
        raise CheckSkipped(f"bulk.maxOperations is {limit}: too many to exceed politely")
    operations = [
        {"method": "DELETE", "path": f"/Users/{MISSING_ID}-{n}"} for n in range(limit + 1)
    ]
    request = {"schemas": [BULK_REQUEST], "Operations": operations}
    response = await ctx.http.post("/Bulk", request)
    require_error_document(response, 413)


@check(
    S,
    "rfc.bulk.circular-reference",
    "A bulkId cycle is resolved or answers 409",
    "RFC 7644 §3.7.1",
    "The service provider MUST try to resolve circular cross-references between resources "
    "in a single bulk job but MAY stop after a failed attempt and instead return 409.",
)
async def bulk_cycle(ctx: Context) -> None:
    results = await bulk(
        ctx,
        [
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "ga",
                "data": {
                    "schemas": [GROUP],
                    "displayName": ctx.fixtures.name("cyca"),
                    "members": [{"value": "bulkId:gb", "type": "Group"}],
                },
            },
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "gb",
                "data": {
                    "schemas": [GROUP],
                    "displayName": ctx.fixtures.name("cycb"),
                    "members": [{"value": "bulkId:ga", "type": "Group"}],
                },
            },
        ],
    )
    statuses = [str(r.get("status")) for r in results]
    require(
        len(results) == 2 and all(s in ("201", "409") for s in statuses),
        f"a cycle must be resolved (201) or refused (409); got {statuses}",
    )
    if "409" in statuses:
        return
    created = [str(r.get("location", "")).rstrip("/").rsplit("/", 1)[-1] for r in results]
    for location, other in (
        (results[0]["location"], created[1]),
        (results[1]["location"], created[0]),
    ):
        values = [m.get("value") for m in (await read(ctx, location)).get("members") or []]
        require(
            values == [other],
            f"both POSTs answered 201 but the cycle is unresolved: members {values}, "
            f"expected [{other!r}]",
        )
