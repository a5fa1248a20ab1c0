"""The ``okta-entitlements`` suite, proven both ways.

Against our server, its tenant made an entitlement app, every check passes, and a tenant that
serves no entitlement type fails the first check and skips the rest, saying why. Behind a proxy
that breaks exactly one rule (tests/test_conformance.py's approach) each check fails, and passes
behind an honest proxy, so the violation alone is the cause.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance.checks import Verdict, suites
from conformance.runner import run
from tests.support.entitlements import entitlement_app
from tests.support.proxy import Req, Resp, Violation, is_, mutate, start_proxy, when
from tests.support.scim import Scim
from tests.support.urns import PATCH_OP
from tests.support.user_extensions import ACME, define

SUITE = "okta-entitlements"
resource_types = is_("GET", r"/ResourceTypes")
schemas = is_("GET", r"/Schemas")
roles = is_("GET", r"/Roles")
post_user = is_("POST", r"/Users")
put_user = is_("PUT", r"/Users/[^/]+")
user_type = is_("GET", r"/ResourceTypes/User")
roles_post = is_("POST", r"/Roles")


def _only_core_types(body: dict[str, Any]) -> None:
    body["Resources"] = [
        t for t in body.get("Resources", []) if t.get("endpoint") in ("/Users", "/Groups")
    ]


def _unknown_extension(body: dict[str, Any]) -> None:
    for resource_type in body.get("Resources", []):
        if resource_type.get("name") == "Role":
            resource_type["schemaExtensions"] = [
                {"schema": "urn:example:scim:schemas:extension:Role", "required": False}
            ]


def _unknown_user_extension(body: dict[str, Any]) -> None:
    body["schemaExtensions"] = [
        *body.get("schemaExtensions", []),
        {"schema": "urn:example:scim:schemas:extension:App:1.0:User", "required": False},
    ]


def _first_page_size(body: dict[str, Any]) -> None:
    if "itemsPerPage" in body:
        body["itemsPerPage"] = len(body.get("Resources", [])) + 1


def _same_page_again(req: Req) -> None:
    req.query["startIndex"] = "1"


def _wrong_resource_type(body: dict[str, Any]) -> None:
    for resource in body.get("Resources", []):
        resource.get("meta", {})["resourceType"] = "Entitlement"


def _drop_assignments(req: Req) -> None:
    req.set_json({k: v for k, v in req.json().items() if k not in ("entitlements", "roles")})


def _on_user_post(req: Req) -> bool:
    return post_user(req) and b"entitlements" in req.body


def _on_user_put(req: Req) -> bool:
    return put_user(req) and b"entitlements" in req.body


def _merged_not_replaced(req: Req) -> None:
    """A server whose PUT adds what it is sent to what it holds: a revoked grant stays."""
    body = req.json()
    req.method = "PATCH"
    operations = [
        {"op": "add", "path": key, "value": body[key]}
        for key in ("entitlements", "roles")
        if body.get(key)
    ]
    req.set_json({"schemas": [PATCH_OP], "Operations": operations})


VIOLATIONS: list[tuple[str, str, Violation]] = [
    (
        "okta-ent.01-resource-types",
        "only User and Group advertised",
        when(resource_types, after=mutate(_only_core_types)),
    ),
    (
        "okta-ent.02-schemas",
        "an extension not in /Schemas",
        when(resource_types, after=mutate(_unknown_extension)),
    ),
    (
        "okta-ent.02-schemas",
        "a custom User extension not in /Schemas",
        when(user_type, after=mutate(_unknown_user_extension)),
    ),
    (
        "okta-ent.03-entitlements-endpoint",
        "itemsPerPage not the page's",
        when(roles, after=mutate(_first_page_size)),
    ),
    (
        "okta-ent.04-paging",
        "startIndex ignored",
        when(lambda req: roles(req) and req.query.get("startIndex") != "1", _same_page_again),
    ),
    (
        "okta-ent.04-paging",
        "meta.resourceType wrong",
        when(roles, after=mutate(_wrong_resource_type)),
    ),
    (
        "okta-ent.05-user-with-entitlements",
        "entitlements and roles not stored",
        when(_on_user_post, before=_drop_assignments),
    ),
    (
        "okta-ent.06-grants-assigned",
        "grants pushed by an update not stored",
        when(_on_user_put, before=_drop_assignments),
    ),
    (
        "okta-ent.06-grants-assigned",
        "an update merged: a revoked grant kept",
        when(put_user, before=_merged_not_replaced),
    ),
]

DEPENDS = {
    "okta-ent.02-schemas": ["okta-ent.01-resource-types"],
    "okta-ent.03-entitlements-endpoint": ["okta-ent.01-resource-types"],
    "okta-ent.04-paging": ["okta-ent.01-resource-types"],
    "okta-ent.05-user-with-entitlements": ["okta-ent.01-resource-types", "okta-ent.04-paging"],
    "okta-ent.06-grants-assigned": ["okta-ent.01-resource-types", "okta-ent.04-paging"],
}


@pytest.fixture
async def app_base(client: TestClient[Any, Any], scim: Scim) -> str:
    """An entitlement app whose users also carry a custom User extension (``ACME``)."""
    await entitlement_app(scim)
    assert (await define(scim)).status == 200
    return str(client.make_url("")).rstrip("/") + scim.base


async def test_every_check_passes_against_an_entitlement_app_and_cleans_up(
    app_base: str, scim: Scim
) -> None:
    result = await run(app_base, scim.token, [SUITE])
    assert [(r.check.id, r.verdict, r.reason) for r in result.results] == [
        (c.id, Verdict.PASS, "") for c in suites()[SUITE]
    ]
    assert result.leftovers == []
    users = await (await scim.get("/Users", params={"filter": 'userName sw "scimconf-"'})).json()
    assert users["totalResults"] == 0


async def test_a_tenant_serving_no_entitlement_type_fails_first_and_skips_the_rest(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    base = str(client.make_url("")).rstrip("/") + scim.base
    result = await run(base, scim.token, [SUITE])
    verdicts = [(r.check.id, r.verdict) for r in result.results]
    assert verdicts[0] == ("okta-ent.01-resource-types", Verdict.FAIL)
    assert {verdict for _, verdict in verdicts[1:]} == {Verdict.SKIP}
    assert all("okta-ent.01" in r.reason or "okta-ent.04" in r.reason for r in result.results[1:])


async def test_every_check_has_a_violation() -> None:
    assert {c.id for c in suites()[SUITE]} == {check_id for check_id, _, _ in VIOLATIONS}


@pytest.mark.parametrize(
    ("check_id", "violation"),
    [(c, v) for c, _, v in VIOLATIONS],
    ids=[f"{c}:{name}" for c, name, _ in VIOLATIONS],
)
async def test_a_broken_server_fails_the_check(
    aiohttp_server: Any, app_base: str, scim: Scim, check_id: str, violation: Violation
) -> None:
    only = [*DEPENDS.get(check_id, []), check_id]
    honest = await start_proxy(aiohttp_server, app_base, when(lambda req: False))
    fine = await run(honest, scim.token, [SUITE], only=only)
    assert [(r.verdict, r.reason) for r in fine.results] == [(Verdict.PASS, "")] * len(only)
    broken = await start_proxy(aiohttp_server, app_base, violation)
    result = await run(broken, scim.token, [SUITE], only=only)
    verdict = next(r for r in result.results if r.check.id == check_id)
    assert (verdict.verdict, verdict.reason != "") == (Verdict.FAIL, True), verdict.reason
    assert verdict.transcript, "a failure must carry its evidence"


SCHEMA_DRIVEN = [
    "rfc.schema.create-every-attribute",
    "rfc.schema.replace-every-attribute",
    "rfc.schema.patch-every-attribute",
]


def _allow_post(req: Req, resp: Resp) -> None:
    resp.headers["Allow"] = "GET, HEAD, POST"


async def test_the_schema_driven_checks_pass_over_read_only_types_and_judge_the_rest(
    aiohttp_server: Any, app_base: str, scim: Scim
) -> None:
    """Roles, Entitlements and Licenses take no POST (405, ``Allow: GET, HEAD``): the rfc
    suite's checks that create every resource type pass over them and judge Users and Groups.
    A 405 that says POST is allowed is no read-only type, and fails them."""
    result = await run(app_base, scim.token, ["rfc"], only=SCHEMA_DRIVEN)
    assert [(r.check.id, r.verdict, r.reason) for r in result.results] == [
        (check_id, Verdict.PASS, "") for check_id in SCHEMA_DRIVEN
    ]
    contradicting = when(roles_post, after=_allow_post)
    broken = await start_proxy(aiohttp_server, app_base, contradicting)
    result = await run(broken, scim.token, ["rfc"], only=SCHEMA_DRIVEN)
    assert {r.verdict for r in result.results} == {Verdict.FAIL}


def _without_extension(req: Req) -> None:
    body = req.json()
    body.pop(ACME, None)
    req.set_json(body)


async def test_the_schema_driven_checks_write_every_attribute_of_a_custom_user_extension(
    aiohttp_server: Any, app_base: str, scim: Scim
) -> None:
    """The custom extension ``app_base`` defines is advertised, so the rfc suite's checks write
    each of its attributes (they pass above); a server that drops it from what users are sent
    fails them."""
    writes = when(
        lambda req: req.method in ("POST", "PUT") and req.path.startswith("/Users"),
        before=_without_extension,
    )
    broken = await start_proxy(aiohttp_server, app_base, writes)
    result = await run(broken, scim.token, ["rfc"], only=SCHEMA_DRIVEN[:2])
    assert [r.verdict for r in result.results] == [Verdict.FAIL, Verdict.FAIL]
    assert all(ACME in r.reason for r in result.results), [r.reason for r in result.results]
