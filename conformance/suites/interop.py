"""The ``interop-draft`` suite: draft-zollner-scim-interop-profile-02, the service provider's side.

One check per testable requirement the draft places on a service provider, in the draft's
order (Z1 to Z30 in docs/conformance.md), each counting towards the ``Interop 02`` verdict.
Where the draft restates a rule the ``rfc`` or ``ipsie`` suite already checks, its check runs
that suite's code under its own id, so the two can never drift apart.

Three of the draft's rules contradict RFC 7644 or what Okta and Entra send, and a server that
serves those IdPs cannot follow them: a 400 for an unknown schema URN (Entra lists its ADSCIM
URN on every group), a 400 for a PATCH operation without a path (Okta's deactivation and group
rename, Entra's ``aadOptscim062020`` replace, the Microsoft validator), and a ``replace`` of a
whole complex attribute that drops the sub-attributes it leaves out (RFC 7644 §3.5.2.3 keeps
them). They count towards ``Interop 02 deviations`` instead, never towards a failure: a server
that follows the draft passes, one that follows the RFC and the IdPs skips with a reason that
starts ``profile deviation:``, and only an answer that is neither (a 500, an error that is not
a SCIM error) fails.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import urlsplit

from conformance.checks import (
    CheckFailed,
    CheckFunc,
    Context,
    check,
    expect_object,
    expect_status,
    require,
    resources_of,
    skip,
)
from conformance.http import SCIM_JSON, Response
from conformance.suites import ipsie, rfc
from conformance.urns import PATCH_OP, USER

S = "interop-draft"
DRAFT = "draft-zollner-scim-interop-profile-02"
PROFILE = ("Interop 02",)
DEVIATIONS = ("Interop 02 deviations",)
DEVIATION = "profile deviation:"
"""How a deviation check's skip reason starts, so a report reader can find them all."""


def section(number: str, title: str) -> str:
    """A source in the draft: its section's number and title (the draft renumbers its
    sections between revisions, the titles stay)."""
    return f"{DRAFT} §{number} {title}"


async def patched(ctx: Context, path: str, *operations: dict[str, Any]) -> dict[str, Any]:
    """PATCH, then the resource as a GET reads it (whatever the PATCH answered)."""
    await rfc.patch(ctx, path, *operations)
    return await rfc.read(ctx, path)


def twin(check_id: str, title: str, where: tuple[str, str], rule: str, func: CheckFunc) -> None:
    """Register ``func``, another suite's check of the same rule, as this suite's ``check_id``
    (``where``: the draft's section number and title)."""
    check(S, check_id, title, section(*where), rule, PROFILE)(func)


# --- §4, §5 conformance flag, discovery, data model ---------------------------------------


@check(
    S,
    "interop.spc-conformance-flag",
    "interopProfileConformant is a boolean when present",
    section("4", "Scope and Conformance"),
    "A service provider that claims conformance MUST set interopProfileConformant: true in "
    "its ServiceProviderConfig.",
    PROFILE,
)
async def conformance_flag(ctx: Context) -> None:
    response = await ctx.http.get("/ServiceProviderConfig")
    expect_status(response, 200, what="GET /ServiceProviderConfig")
    flag = expect_object(response).get("interopProfileConformant")
    if flag is None:
        skip("the ServiceProviderConfig does not claim conformance (no interopProfileConformant)")
    require(isinstance(flag, bool), f"interopProfileConformant is {flag!r}, not a boolean")


@check(
    S,
    "interop.discovery-endpoints",
    "The three discovery endpoints answer SCIM JSON",
    section("5.1", "Discovery Endpoints"),
    "/ServiceProviderConfig, /Schemas and /ResourceTypes MUST be implemented.",
    PROFILE,
)
async def discovery_endpoints(ctx: Context) -> None:
    for path in ("/ServiceProviderConfig", "/Schemas", "/ResourceTypes"):
        response = await ctx.http.get(path)
        expect_status(response, 200, what=f"GET {path}")
        expect_object(response, path)


async def resource_types(ctx: Context) -> list[dict[str, Any]]:
    response = await ctx.http.get("/ResourceTypes")
    expect_status(response, 200, what="GET /ResourceTypes")
    return resources_of(response)


@check(
    S,
    "interop.schemas-served",
    "Every schema a resource type names is served",
    section("5.1", "Discovery Endpoints"),
    "/Schemas MUST describe every schema and extension a resource type references: "
    "GET /Schemas/{urn} answers it.",
    PROFILE,
)
async def schemas_served(ctx: Context) -> None:
    for resource_type in await resource_types(ctx):
        urns = [resource_type.get("schema")] + [
            extension.get("schema") for extension in resource_type.get("schemaExtensions") or []
        ]
        for urn in urns:
            response = await ctx.http.get(f"/Schemas/{urn}")
            expect_status(response, 200, what=f"GET /Schemas/{urn}")
            served = expect_object(response).get("id")
            require(served == urn, f"GET /Schemas/{urn} answered the schema {served!r}")


@check(
    S,
    "interop.resource-type-id",
    "A resource type's id is its name",
    section("5.1", "Discovery Endpoints"),
    "The id of a ResourceType MUST equal its name.",
    PROFILE,
)
async def resource_type_id(ctx: Context) -> None:
    for resource_type in await resource_types(ctx):
        require(
            resource_type.get("id") == resource_type.get("name"),
            f"resource type id {resource_type.get('id')!r} is not its name "
            f"{resource_type.get('name')!r}",
        )


RFC_CANONICAL_TYPES = ("emails", "phoneNumbers", "ims", "photos", "addresses", "groups")
"""The User attributes whose ``type`` RFC 7643 §4.1.2 gives canonical values. Entitlements,
roles and x509Certificates it leaves free-form, and IdPs send them with types of their own:
a server that declared a list for them would have to refuse those, so they are not asked."""


@check(
    S,
    "interop.type-canonical-values",
    "type sub-attributes declare their canonical values",
    f"{section('5.4', 'Canonical Values for Typed Attributes')}; RFC 7643 §4.1.2",
    "A multi-valued attribute with a 'type' sub-attribute MUST declare its acceptable types "
    "in canonicalValues (checked where RFC 7643 defines them: emails, phoneNumbers, ims, "
    "photos, addresses, groups).",
    PROFILE,
)
async def type_canonical_values(ctx: Context) -> None:
    response = await ctx.http.get(f"/Schemas/{USER}")
    expect_status(response, 200, what=f"GET /Schemas/{USER}")
    attributes = {a.get("name"): a for a in expect_object(response).get("attributes") or []}
    for name in RFC_CANONICAL_TYPES:
        if name not in attributes:
            continue
        subs = {s.get("name"): s for s in attributes[name].get("subAttributes") or []}
        values = (subs.get("type") or {}).get("canonicalValues")
        require(values, f"{name}.type declares no canonicalValues")


# --- §5.2, §5.3 case and unknown input ----------------------------------------------------


async def case_rules(ctx: Context) -> None:
    """The filter and the uniqueness check agree on userName's case."""
    await rfc.FILTER_CHECKS[0].run(ctx)
    await rfc.uniqueness(ctx)


twin(
    "interop.case-rules",
    "Filter and uniqueness use the same case rules",
    ("5.2", "Case Sensitivity"),
    "A service provider MUST apply the same case rules to filters and to uniqueness: "
    "userName, caseExact false, matches in any case, and is taken in any case (409).",
    case_rules,
)


@check(
    S,
    "interop.id-case-exact",
    "id is compared case-exactly",
    section("5.2", "Case Sensitivity"),
    "id MUST be caseExact: a filter on the id in another case finds nothing.",
    PROFILE,
)
async def id_case_exact(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    other_case = user["id"].swapcase()
    if other_case == user["id"]:
        skip(f"the id {user['id']!r} has no letters to change the case of")
    _, exact = await rfc.query(ctx, "/Users", f'id eq "{user["id"]}"')
    require(rfc.ids(exact) == [user["id"]], f"id eq found {rfc.ids(exact)}")
    _, swapped = await rfc.query(ctx, "/Users", f'id eq "{other_case}"')
    require(swapped == [], f"id eq {other_case!r} found {rfc.ids(swapped)}")


twin(
    "interop.externalid-case-exact",
    "externalId is compared case-exactly",
    ("5.2", "Case Sensitivity"),
    "externalId MUST be caseExact.",
    rfc.FILTER_CHECKS[1].run,
)
twin(
    "interop.username-case-insensitive",
    "userName is compared in any case",
    ("5.2", "Case Sensitivity"),
    "userName MUST be caseExact false.",
    rfc.FILTER_CHECKS[0].run,
)
twin(
    "interop.unknown-attribute",
    "An undeclared attribute answers 400 invalidSyntax",
    ("5.3", "Attribute and Schema Handling"),
    "An attribute no schema declares MUST be refused with 400 invalidSyntax.",
    rfc.unknown_attribute,
)


@check(
    S,
    "interop.unknown-schema-urn",
    "An unknown schema URN answers 400 invalidSyntax",
    section("5.3", "Attribute and Schema Handling"),
    "A URN in schemas that the service provider does not know MUST be refused with 400 "
    "invalidSyntax. (RFC 7644 does not ask it, and Entra ID sends its ADSCIM URN on every group.)",
    DEVIATIONS,
)
async def unknown_schema_urn(ctx: Context) -> None:
    body = ctx.fixtures.user_body(schemas=[USER, "urn:example:scimconf:unknown:2.0:User"])
    response = await ctx.http.post("/Users", body)
    ctx.fixtures.track("/Users", response.json())
    if response.status == 201:
        skip(f"{DEVIATION} an unknown URN is accepted (201), as RFC 7644 allows and Entra needs")
    refused(response, "invalidSyntax")


def refused(response: Response, scim_type: str) -> None:
    """A SCIM 400 error of ``scim_type``, the draft's refusal; anything else fails."""
    error = rfc.require_error_document(response, 400)
    require(
        error.get("scimType") == scim_type,
        f"scimType is {error.get('scimType')!r}, not {scim_type!r}",
    )


@check(
    S,
    "interop.content-type",
    "Every SCIM response is application/scim+json",
    section("6.2", "Data Format and HTTP Headers"),
    "Responses MUST carry Content-Type application/scim+json: discovery, lists, resources "
    "(read, created, replaced) and errors.",
    PROFILE,
)
async def content_type(ctx: Context) -> None:
    body = ctx.fixtures.user_body()
    created = await ctx.http.post("/Users", body)
    ctx.fixtures.track("/Users", created.json())
    expect_status(created, 201, what="POST /Users")
    path = f"/Users/{expect_object(created)['id']}"
    responses = {
        "GET /ServiceProviderConfig": await ctx.http.get("/ServiceProviderConfig"),
        "GET /Schemas": await ctx.http.get("/Schemas"),
        "GET /Users": await ctx.http.get("/Users", params={"count": "1"}),
        "POST /Users": created,
        "GET /Users/{id}": await ctx.http.get(path),
        "PUT /Users/{id}": await ctx.http.put(path, {**body, "title": "Replaced"}),
        "GET /Users/{unknown id}": await ctx.http.get(f"/Users/{rfc.MISSING_ID}"),
    }
    for what, response in responses.items():
        kind = response.content_type.split(";")[0].strip().lower()
        require(kind == SCIM_JSON, f"{what}: Content-Type is {response.content_type!r}")


# --- §6.1 to §6.4 endpoints, media type, filters, paging ----------------------------------


@check(
    S,
    "interop.endpoint-per-type",
    "One endpoint per resource type, /{endpoint}/{id} canonical",
    section("6.1", "Endpoint Structure"),
    "Each resource type has an endpoint of its own, and /{endpoint}/{id} is the canonical URI "
    "of a resource: meta.location and GET answer it there.",
    PROFILE,
)
async def endpoint_per_type(ctx: Context) -> None:
    endpoints = {t.get("name"): t.get("endpoint") for t in await resource_types(ctx)}
    require(
        len(set(endpoints.values())) == len(endpoints),
        f"resource types share endpoints: {endpoints}",
    )
    for name, resource in (
        ("User", await ctx.fixtures.user()),
        ("Group", await ctx.fixtures.group()),
    ):
        path = f"{endpoints.get(name)}/{resource['id']}"
        location = str((resource.get("meta") or {}).get("location") or "")
        require(location.endswith(path), f"{name} meta.location {location!r} is not …{path}")
        fetched = await rfc.read(ctx, path)
        require(fetched.get("id") == resource["id"], f"GET {path} answered {fetched.get('id')!r}")


@check(
    S,
    "interop.filter-eq-and",
    "Filters with eq and and",
    section("6.3", "Filtering"),
    "A service provider MUST support filter with the eq and and operators.",
    PROFILE,
)
async def filter_eq_and(ctx: Context) -> None:
    title = ctx.fixtures.name("title")
    active = await ctx.fixtures.user(title=title)
    await ctx.fixtures.user(title=title, active=False)
    expression = f'title eq "{title}" and active eq true'
    _, found = await rfc.query(ctx, "/Users", expression)
    require(rfc.ids(found) == [active["id"]], f"{expression!r} found {rfc.ids(found)}")


@check(
    S,
    "interop.filter-unknown-attribute",
    "A filter on an undeclared attribute answers 400 invalidFilter",
    section("6.3", "Filtering"),
    "A filter naming an attribute that is not in the schema MUST be refused with 400 "
    "invalidFilter.",
    PROFILE,
)
async def filter_unknown_attribute(ctx: Context) -> None:
    response = await ctx.http.get("/Users", params={"filter": 'scimconfNoSuchAttr eq "x"'})
    refused(response, "invalidFilter")


twin(
    "interop.pagination",
    "Index pagination",
    ("6.4", "Pagination"),
    "A service provider MUST support index (startIndex, count) or cursor pagination.",
    rfc.paging,
)


@check(
    S,
    "interop.page-size",
    "count up to 100 is honoured, a larger one bounded",
    section("6.4", "Pagination"),
    "count of at least 100 MUST be honoured (up to the results there are); a count above "
    "the server's maximum answers at most that maximum.",
    PROFILE,
)
async def page_size(ctx: Context) -> None:
    for _ in range(2):  # a page to cut short, however empty the server
        await ctx.fixtures.user()
    response = await ctx.http.get("/Users", params={"count": "100"})
    expect_status(response, 200, what="GET /Users?count=100")
    body = expect_object(response)
    total, found = body.get("totalResults"), resources_of(response)
    if not isinstance(total, int):
        raise CheckFailed(f"totalResults is {total!r}")
    require(len(found) == min(100, total), f"count=100 answered {len(found)} of {total}")
    maximum = ctx.feature("filter").get("maxResults")
    if isinstance(maximum, int):
        above = await ctx.http.get("/Users", params={"count": str(maximum + 1)})
        expect_status(above, 200, what=f"GET /Users?count={maximum + 1}")
        require(
            len(resources_of(above)) <= maximum,
            f"count={maximum + 1} answered {len(resources_of(above))}, over maxResults {maximum}",
        )


# --- §6.5 PATCH ---------------------------------------------------------------------------


twin(
    "interop.patch-supported",
    "PATCH is supported",
    ("6.5", "Updating Resources"),
    "A service provider MUST support PATCH (and advertise patch.supported).",
    rfc.patch_replace,
)


@check(
    S,
    "interop.patch-pathless-refused",
    "A PATCH operation without a path answers 400 invalidSyntax",
    section("6.5.1.1", "Mandatory Use of the 'path' Attribute"),
    "Every operation MUST carry a path; one without MUST be refused with 400 invalidSyntax. "
    "(RFC 7644 §3.5.2.1 and §3.5.2.3 define path-less add and replace, and Okta, Entra and "
    "the Microsoft validator send them.)",
    DEVIATIONS,
)
async def pathless_refused(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    response = await ctx.http.patch(
        f"/Users/{user['id']}",
        {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"title": "X"}}]},
    )
    if response.status in (200, 204):
        skip(f"{DEVIATION} a path-less replace is applied, as RFC 7644 §3.5.2.3 defines it")
    refused(response, "invalidSyntax")


@check(
    S,
    "interop.patch-add-is-replace",
    "add on a single-valued attribute replaces it",
    section("6.5.2.1", "Singular Attributes"),
    "add and replace MUST be equivalent on a singular simple attribute: add on one that has "
    "a value sets the new value.",
    PROFILE,
)
async def add_is_replace(ctx: Context) -> None:
    user = await ctx.fixtures.user(title="Before")
    stored = await patched(
        ctx, f"/Users/{user['id']}", {"op": "add", "path": "title", "value": "After"}
    )
    require(stored.get("title") == "After", f"title is {stored.get('title')!r}")


@check(
    S,
    "interop.patch-replace-complex",
    "replace of a whole complex attribute drops what it leaves out",
    section("6.5.2.1", "Singular Attributes"),
    "replace with a complex value MUST replace the whole attribute: sub-attributes not sent "
    "are removed. (RFC 7644 §3.5.2.3 keeps them.)",
    DEVIATIONS,
)
async def replace_complex(ctx: Context) -> None:
    name = await name_after(ctx, "replace", {"givenName": "N"})
    require(name.get("givenName") == "N", f"name.givenName is {name.get('givenName')!r}")
    if name.get("familyName") is not None:
        skip(f"{DEVIATION} name.familyName is kept, as RFC 7644 §3.5.2.3 asks")


async def name_after(ctx: Context, op: str, value: dict[str, str]) -> dict[str, Any]:
    """``op`` of the whole ``name`` on a user named Conformance Tester: the name stored after."""
    user = await ctx.fixtures.user()
    stored = await patched(ctx, f"/Users/{user['id']}", {"op": op, "path": "name", "value": value})
    return dict(stored.get("name") or {})


@check(
    S,
    "interop.patch-add-complex",
    "add of a complex attribute merges",
    section("6.5.2.1", "Singular Attributes"),
    "add with a complex value MUST merge: the sub-attributes sent are set, the others kept.",
    PROFILE,
)
async def add_complex(ctx: Context) -> None:
    name = await name_after(ctx, "add", {"middleName": "M"})
    got = (name.get("givenName"), name.get("middleName"), name.get("familyName"))
    require(got == ("Conformance", "M", "Tester"), f"name is {name}")


@check(
    S,
    "interop.patch-replace-multi-valued",
    "replace of a multi-valued attribute replaces the collection",
    section("6.5.2.2", "Multi-valued Attributes"),
    "replace on a multi-valued attribute without a filter MUST replace all its values.",
    PROFILE,
)
async def replace_multi_valued(ctx: Context) -> None:
    sent, stored = await emails_after(ctx, "replace")
    require(stored == [sent], f"emails are {stored}, expected [{sent!r}]")


async def emails_after(ctx: Context, op: str) -> tuple[str, list[str]]:
    """``op`` of a home email on a user with a work email: the email sent, and the emails
    stored after it (sorted)."""
    user = await ctx.fixtures.user()
    new = {"value": f"{user['userName']}@new.example", "type": "home"}
    stored = await patched(
        ctx, f"/Users/{user['id']}", {"op": op, "path": "emails", "value": [new]}
    )
    return new["value"], sorted(str(e.get("value")) for e in rfc.emails(stored))


@check(
    S,
    "interop.patch-add-multi-valued",
    "add to a multi-valued attribute appends",
    section("6.5.2.2", "Multi-valued Attributes"),
    "add on a multi-valued attribute MUST append the values sent to the values there.",
    PROFILE,
)
async def add_multi_valued(ctx: Context) -> None:
    sent, stored = await emails_after(ctx, "add")
    require(len(stored) == 2 and sent in stored, f"emails are {stored}, expected two with {sent!r}")


@check(
    S,
    "interop.patch-filter-without-sub-attribute",
    "A value path without a sub-attribute is answered, never a server error",
    section("6.5.2.2", "Multi-valued Attributes; §6.5.3 Error Handling"),
    'A filtered path MUST name a sub-attribute (emails[type eq "work"].value); a service '
    "provider MAY refuse one that does not with 400 invalidPath, or apply it.",
    PROFILE,
)
async def filter_without_sub_attribute(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    response = await ctx.http.patch(
        f"/Users/{user['id']}",
        {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "replace", "path": 'emails[type eq "work"]', "value": {"display": "W"}}
            ],
        },
    )
    if response.status in (200, 204):
        return
    refused(response, "invalidPath")


@check(
    S,
    "interop.patch-never-deletes",
    "PATCH never deletes the resource",
    section("6.6", "Resource Lifecycle"),
    "PATCH MUST NOT delete a resource, even one that removes attributes and deactivates it.",
    PROFILE,
)
async def patch_never_deletes(ctx: Context) -> None:
    user = await ctx.fixtures.user(title="T")
    stored = await patched(
        ctx,
        f"/Users/{user['id']}",
        {"op": "remove", "path": "emails"},
        {"op": "remove", "path": "title"},
        {"op": "replace", "path": "active", "value": False},
    )
    require(stored.get("id") == user["id"], "the user is gone after a PATCH")
    require(stored.get("active") is False, f"active is {stored.get('active')!r}")


# --- §6.6, §6.9 lifecycle and uniqueness --------------------------------------------------


@check(
    S,
    "interop.deleted-is-gone",
    "Every operation on a deleted resource answers 404",
    section("6.6", "Resource Lifecycle"),
    "After DELETE, GET, PUT, PATCH and DELETE on the resource MUST answer 404 and queries "
    "MUST NOT return it.",
    PROFILE,
)
async def deleted_is_gone(ctx: Context) -> None:
    user = await ctx.fixtures.user()
    path = f"/Users/{user['id']}"
    expect_status(await ctx.http.delete(path), 204, what=f"DELETE {path}")
    answers = {
        "GET": await ctx.http.get(path),
        "PUT": await ctx.http.put(path, ctx.fixtures.user_body(user["userName"])),
        "PATCH": await ctx.http.patch(
            path,
            {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "title", "value": "X"}],
            },
        ),
        "DELETE": await ctx.http.delete(path),
    }
    for method, response in answers.items():
        rfc.require_error_of(f"{method} of the deleted user", response, 404)
    _, listed = await rfc.query(ctx, "/Users", f'userName eq "{user["userName"]}"')
    require(listed == [], f"the deleted user is still listed: {rfc.ids(listed)}")


twin(
    "interop.identifiers-reusable",
    "A deleted user's userName can be used again",
    ("6.6", "Resource Lifecycle"),
    "Identifiers of a deleted resource (userName, externalId) MUST be reusable.",
    ipsie.recreate_after_delete,
)
twin(
    "interop.delete-deletes",
    "DELETE deletes rather than deactivates",
    ("6.6", "Resource Lifecycle"),
    "DELETE MUST remove the resource, not merely deactivate it.",
    rfc.delete,
)


@check(
    S,
    "interop.uniqueness-on-patch",
    "A uniqueness conflict on POST or PATCH answers 409 uniqueness",
    section("6.9.1", "Uniqueness Conflicts"),
    "A request that would make two resources share a unique value MUST be refused with 409 "
    "and scimType uniqueness, whether a POST or a PATCH makes it.",
    PROFILE,
)
async def uniqueness_on_patch(ctx: Context) -> None:
    await rfc.uniqueness(ctx)
    taken, other = await ctx.fixtures.user(), await ctx.fixtures.user()
    group_name = ctx.fixtures.name("taken")
    await ctx.fixtures.group(group_name)
    group = await ctx.fixtures.group()
    for path, operation in (
        (
            f"/Users/{other['id']}",
            {"op": "replace", "path": "userName", "value": taken["userName"]},
        ),
        (f"/Groups/{group['id']}", {"op": "replace", "path": "displayName", "value": group_name}),
    ):
        response = await ctx.http.patch(path, {"schemas": [PATCH_OP], "Operations": [operation]})
        error = rfc.require_error_of(f"PATCH {path}", response, 409)
        require(
            error.get("scimType") == "uniqueness",
            f"PATCH {path}: scimType is {error.get('scimType')!r}, not 'uniqueness'",
        )


# --- §7 transport -------------------------------------------------------------------------


async def tls_version(url: str) -> str | None:
    """The TLS version a connection to ``url``'s host negotiates."""
    parts = urlsplit(url)
    context = ssl.create_default_context()
    _, writer = await asyncio.open_connection(
        parts.hostname, parts.port or 443, ssl=context, server_hostname=parts.hostname
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.version() if ssl_object else None
    finally:
        writer.close()


@check(
    S,
    "interop.tls-1-3",
    "TLS 1.3",
    section("7.1", "Transport Security"),
    "The service provider MUST be reached over TLS 1.3.",
    PROFILE,
)
async def tls_1_3(ctx: Context) -> None:
    if urlsplit(ctx.http.base_url).scheme != "https":
        skip("the base URL is plain HTTP: TLS is the deployment's (a proxy in front), not tested")
    version = await tls_version(ctx.http.base_url)
    require(version == "TLSv1.3", f"the connection negotiated {version}, not TLSv1.3")
