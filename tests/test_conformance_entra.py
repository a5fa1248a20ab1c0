"""The ``entra-validator`` suite (and ``rfc.groups.unknown-member-refused``), proven both ways.

Against our real server every check passes. Behind a proxy that breaks exactly one rule
(the broken-server approach and helpers of tests/test_conformance.py) each check fails,
and the same check passes behind an honest proxy, so the violation alone is the cause.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance.checks import Verdict, suites
from conformance.runner import run
from conformance.suites.entra_validator import ADSCIM_GROUP
from conformance.urns import ENTERPRISE
from tests.support.proxy import (
    Req,
    Resp,
    Violation,
    answer,
    case_sensitive_username,
    is_,
    mutate,
    patch_ops,
    rewrite_filter,
    start_proxy,
    when,
)
from tests.support.scim import Scim
from tests.support.urns import ERROR as ERROR_URN

users = is_("GET", r"/Users")
user = is_("GET", r"/Users/[^/]+")
post_user = is_("POST", r"/Users")
post_group = is_("POST", r"/Groups")
patch_user = is_("PATCH", r"/Users/.+")
patch_group = is_("PATCH", r"/Groups/.+")


def _error(status: int, scim_type: str, detail: str) -> dict[str, Any]:
    return {"schemas": [ERROR_URN], "status": str(status), "scimType": scim_type, "detail": detail}


def _drop_request(key: str) -> Any:
    def before(req: Req) -> None:
        req.set_json({k: v for k, v in req.json().items() if k != key})

    return before


def _drop_response(key: str) -> Any:
    return mutate(lambda body: body.pop(key, None))


def _status(old: int, new: int) -> Any:
    def after(req: Req, resp: Resp) -> None:
        if resp.status == old:
            resp.status = new

    return after


def _capitalised(req: Req) -> bool:
    body = req.json()
    return req.method == "PATCH" and any(
        op.get("op") != str(op.get("op")).lower() for op in body.get("Operations", [])
    )


def _string_booleans_truthy(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A server that reads "False" with Python's bool(): any non-empty string is true."""
    return [
        {**o, "value": bool(o["value"])}
        if isinstance(o.get("value"), str) and o.get("value") in ("False", "True")
        else o
        for o in ops
    ]


def _empty_manager_kept(body: dict[str, Any]) -> None:
    """A server that stores Remove Manager's ``{"value": ""}`` as the manager."""
    body.setdefault(ENTERPRISE, {}).setdefault("manager", {"value": ""})


def _nothing_in_upper_case(req: Req, resp: Resp) -> None:
    """A server that compares displayName case-sensitively: an upper-cased name finds nothing."""
    if "SCIMCONF-" in req.query.get("filter", ""):
        resp.set_json({**resp.json(), "Resources": [], "totalResults": 0})


HARMLESS = {"op": "replace", "path": "active", "value": True}
GROUP_HARMLESS = {"op": "replace", "path": "externalId", "value": "scimconf-unchanged"}


def _pop_query(key: str) -> Any:
    return lambda req: req.query.pop(key, None)


def _without_unknown_members(req: Req) -> None:
    body = req.json()
    body["members"] = [
        m
        for m in body.get("members", [])
        if not str(m.get("value")).startswith("scimconf-no-such-id")
    ]
    req.set_json(body)


def _unknown_add_dropped(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        GROUP_HARMLESS
        if any(str(v.get("value")).startswith("scimconf-no-such-id") for v in o.get("value") or [])
        else o
        for o in ops
    ]


VIOLATIONS: list[tuple[str, str, Violation]] = [
    (
        "entra.user.create",
        "externalId not stored",
        when(post_user, before=_drop_request("externalId")),
    ),
    (
        "entra.user.get-by-id",
        "externalId not returned by GET",
        when(user, after=_drop_response("externalId")),
    ),
    (
        "entra.user.filter-username",
        "case-sensitive userName filter",
        when(users, after=case_sensitive_username),
    ),
    (
        "entra.user.filter-externalid",
        "externalId eq read as externalId pr",
        when(
            users,
            before=rewrite_filter(lambda f: re.sub(r'externalId eq "[^"]*"', "externalId pr", f)),
        ),
    ),
    (
        "entra.user.filter-externalid",
        "an unquoted value refused",
        answer(
            lambda req: (
                users(req) and re.search(r"externalId eq [^\"]", req.query.get("filter", ""))
            ),
            400,
            _error(400, "invalidFilter", "a value must be quoted"),
        ),
    ),
    (
        "entra.user.filter-email",
        "a value-filtered attribute path refused",
        answer(
            lambda req: users(req) and "].value eq" in req.query.get("filter", ""),
            400,
            _error(400, "invalidFilter", "no attribute after a value filter"),
        ),
    ),
    (
        "entra.user.filter-email",
        "emails.value eq read as pr",
        when(
            users,
            before=rewrite_filter(lambda f: re.sub(r'emails\.value eq "[^"]*"', "emails pr", f)),
        ),
    ),
    (
        "entra.user.replace-username-path",
        "a userName path ignored",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [HARMLESS if o.get("path") == "userName" else o for o in ops]
            ),
        ),
    ),
    (
        "entra.user.disable-boolean",
        "a boolean false ignored",
        when(
            patch_user,
            before=patch_ops(lambda ops: [HARMLESS if o.get("value") is False else o for o in ops]),
        ),
    ),
    (
        "entra.user.disable-boolean",
        "disabled users hidden from filters",
        when(
            users,
            after=mutate(
                lambda b: b.update(
                    Resources=[r for r in b.get("Resources", []) if r.get("active") is not False]
                )
            ),
        ),
    ),
    (
        "entra.user.duplicate",
        "duplicate create answered 201",
        when(post_user, after=_status(409, 201)),
    ),
    (
        "entra.user.patch-replace",
        "enterprise URN paths ignored",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [o for o in ops if not str(o.get("path", "")).startswith("urn:")]
            ),
        ),
    ),
    (
        "entra.user.patch-add",
        "capitalised op refused",
        answer(_capitalised, 400, _error(400, "invalidSyntax", "op must be add/remove/replace")),
    ),
    (
        "entra.user.patch-remove",
        "Remove ignored",
        when(
            patch_user,
            before=patch_ops(lambda ops: [HARMLESS if o["op"] == "Remove" else o for o in ops]),
        ),
    ),
    (
        "entra.user.disable-false-string",
        '"False" read as true',
        when(patch_user, before=patch_ops(_string_booleans_truthy)),
    ),
    (
        "entra.user.patch-pathless-dotted",
        "dotted keys of a path-less replace ignored",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [
                    {
                        **o,
                        "value": {
                            k: v for k, v in o["value"].items() if "." not in k and ":" not in k
                        },
                    }
                    if "path" not in o
                    else o
                    for o in ops
                ]
            ),
        ),
    ),
    (
        "entra.user.manager",
        "manager path ignored",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [
                    HARMLESS if str(o.get("path")).endswith(":manager") else o for o in ops
                ]
            ),
        ),
    ),
    (
        "entra.user.enterprise-attributes",
        "enterprise extension not returned",
        when(user, after=_drop_response(ENTERPRISE)),
    ),
    ("entra.user.delete", "DELETE does nothing", answer(is_("DELETE", r"/Users/.+"), 204, b"")),
    (
        "entra.group.create",
        "ADSCIM URN refused",
        answer(
            lambda req: post_group(req) and ADSCIM_GROUP in req.json().get("schemas", []),
            400,
            _error(400, "invalidSyntax", f"Unknown extension schemas: {ADSCIM_GROUP}"),
        ),
    ),
    (
        "entra.group.get-excluding-members",
        "excludedAttributes ignored on GET by id",
        when(is_("GET", r"/Groups/.+"), before=_pop_query("excludedAttributes")),
    ),
    (
        "entra.group.filter-displayname",
        "excludedAttributes ignored on a list",
        when(is_("GET", r"/Groups"), before=_pop_query("excludedAttributes")),
    ),
    (
        "entra.group.add-members",
        "Add on members replaces them",
        when(patch_group, before=patch_ops(lambda ops: [{**o, "op": "replace"} for o in ops])),
    ),
    (
        "entra.group.remove-member",
        "Remove with a value list removes every member",
        when(
            patch_group,
            before=patch_ops(
                lambda ops: [
                    {"op": "remove", "path": "members"} if o["op"] == "Remove" else o for o in ops
                ]
            ),
        ),
    ),
    (
        "entra.group.remove-member-filter",
        "remove by filter removes every member",
        when(
            patch_group,
            before=patch_ops(
                lambda ops: [
                    {"op": "remove", "path": "members"}
                    if str(o.get("path", "")).startswith("members[")
                    else o
                    for o in ops
                ]
            ),
        ),
    ),
    (
        "entra.group.replace-displayname",
        "displayName replace ignored",
        when(
            patch_group,
            before=patch_ops(
                lambda ops: [GROUP_HARMLESS if o.get("path") == "displayName" else o for o in ops]
            ),
        ),
    ),
    ("entra.group.delete", "DELETE does nothing", answer(is_("DELETE", r"/Groups/.+"), 204, b"")),
    (
        "entra.group.duplicate",
        "duplicate group answered 201",
        when(post_group, after=_status(409, 201)),
    ),
    (
        "entra.group.filter-members",
        "members filter refused",
        answer(
            lambda req: req.method == "GET" and "members" in req.query.get("filter", ""),
            400,
            _error(400, "invalidFilter", "group membership is not stored on the group"),
        ),
    ),
    (
        "entra.user.manager-reference-check",
        "manager eq refused",
        answer(
            lambda req: users(req) and "manager eq" in req.query.get("filter", ""),
            400,
            _error(400, "invalidFilter", "Field not found: manager"),
        ),
    ),
    (
        "entra.user.manager-list-value",
        "path manager refused",
        answer(
            lambda req: (
                patch_user(req)
                and any(o.get("path") == "manager" for o in req.json().get("Operations", []))
            ),
            400,
            _error(400, "invalidPath", "no attribute manager"),
        ),
    ),
    (
        "entra.user.remove-manager-empty",
        "an empty manager stored",
        when(user, after=mutate(_empty_manager_kept)),
    ),
    (
        "entra.user.manager-deleted",
        "the deleted manager still named",
        answer(is_("DELETE", r"/Users/.+"), 204, b""),
    ),
    (
        "entra.user.remove-manager-empty",
        "a path-less Remove Manager stores an empty manager",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [
                    {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": "x"}
                    if "path" not in o
                    else o
                    for o in ops
                ]
            ),
        ),
    ),
    (
        "entra.user.create-full-body",
        '"True" returned as a string',
        when(
            users,
            after=mutate(
                lambda b: [r.get("roles", [{}])[0].update(primary="True") for r in b["Resources"]]
            ),
        ),
    ),
    (
        "entra.user.create-full-body",
        "the fax number dropped",
        when(
            post_user,
            before=lambda req: req.set_json(
                {
                    **req.json(),
                    "phoneNumbers": [p for p in req.json()["phoneNumbers"] if p["type"] != "fax"],
                }
            ),
        ),
    ),
    (
        "entra.user.patch-verbose",
        "a value path on an absent entry ignored",
        when(
            patch_user,
            before=patch_ops(lambda ops: [o for o in ops if "fax" not in o.get("path", "")]),
        ),
    ),
    (
        "entra.user.patch-pathless-username",
        "a path-less userName ignored",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [HARMLESS if "userName" in (o.get("value") or {}) else o for o in ops]
            ),
        ),
    ),
    (
        "entra.user.replace-manager",
        "replace of a set manager ignored",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: [
                    HARMLESS if o["op"] == "replace" and "manager" in o["path"] else o for o in ops
                ]
            ),
        ),
    ),
    (
        "entra.user.patch-same-attribute",
        "the first of two replaces wins",
        when(patch_user, before=patch_ops(lambda ops: ops[:1])),
    ),
    (
        "entra.delete-unknown",
        "DELETE of an unknown group answers 204",
        answer(is_("DELETE", r"/Groups/.+"), 204, b""),
    ),
    (
        "entra.delete-twice",
        "the second DELETE answers 204",
        when(is_("DELETE", r"/Users/.+"), after=_status(404, 204)),
    ),
    (
        "entra.group.filter-any-case",
        "members left out of a filtered list",
        when(
            is_("GET", r"/Groups"),
            before=lambda req: req.query.update(excludedAttributes="members"),
        ),
    ),
    (
        "entra.group.filter-any-case",
        "case-sensitive displayName filter",
        when(is_("GET", r"/Groups"), after=_nothing_in_upper_case),
    ),
    (
        "entra.group.patch-pathless",
        "a path-less externalId ignored",
        when(
            patch_group,
            before=patch_ops(
                lambda ops: [
                    GROUP_HARMLESS
                    if "externalId" in (o.get("value") or {}) and "path" not in o
                    else o
                    for o in ops
                ]
            ),
        ),
    ),
    (
        "entra.group.replace-members",
        "replace of members read as add",
        when(
            patch_group,
            before=patch_ops(
                lambda ops: [
                    {**o, "op": "add"} if o["op"] == "replace" and o.get("path") == "members" else o
                    for o in ops
                ]
            ),
        ),
    ),
    (
        "entra.group.add-remove-same-member",
        "removes applied before adds",
        when(
            patch_group,
            before=patch_ops(lambda ops: sorted(ops, key=lambda o: o["op"] != "remove")),
        ),
    ),
    (
        "rfc.groups.unknown-member-refused",
        "unknown member ids accepted on create",
        when(post_group, before=_without_unknown_members),
    ),
    (
        "rfc.groups.unknown-member-refused",
        "400 without scimType",
        when(post_group, after=mutate(lambda body: body.pop("scimType", None))),
    ),
    (
        "rfc.groups.unknown-member-refused",
        "unknown member ids accepted by PATCH",
        when(patch_group, before=patch_ops(_unknown_add_dropped)),
    ),
]


@pytest.fixture
def real_base(client: TestClient, scim: Scim) -> str:
    return str(client.make_url("")).rstrip("/") + scim.base


async def test_every_entra_check_passes_against_our_server(real_base: str, scim: Scim) -> None:
    result = await run(real_base, scim.token, ["entra-validator"])
    assert [
        (r.check.id, r.verdict, r.reason) for r in result.results if r.verdict is not Verdict.PASS
    ] == []
    assert len(result.results) == len(suites()["entra-validator"]) == 41
    assert result.leftovers == []
    left = await (await scim.get("/Users", params={"filter": 'userName sw "scimconf-"'})).json()
    assert left["totalResults"] == 0


async def test_every_entra_check_has_a_violation_here() -> None:
    covered = {check_id for check_id, _, _ in VIOLATIONS}
    assert {c.id for c in suites()["entra-validator"]} - covered == set()
    assert "rfc.groups.unknown-member-refused" in covered


@pytest.mark.parametrize(
    ("check_id", "violation"),
    [(c, v) for c, _, v in VIOLATIONS],
    ids=[f"{c}:{name}" for c, name, _ in VIOLATIONS],
)
async def test_a_broken_server_fails_the_check(
    aiohttp_server: Any, real_base: str, scim: Scim, check_id: str, violation: Violation
) -> None:
    suite = "rfc" if check_id.startswith("rfc.") else "entra-validator"
    honest = await start_proxy(aiohttp_server, real_base, when(lambda req: False))
    fine = await run(honest, scim.token, [suite], only=[check_id])
    assert [(r.verdict, r.reason) for r in fine.results] == [(Verdict.PASS, "")]
    broken = await start_proxy(aiohttp_server, real_base, violation)
    result = await run(broken, scim.token, [suite], only=[check_id])
    [verdict] = result.results
    assert (verdict.verdict, verdict.reason != "") == (Verdict.FAIL, True), verdict.reason
    assert verdict.transcript, "a failure must carry its evidence"
