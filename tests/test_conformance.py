"""The conformance runner, proven both ways.

Against our real server every check of ``rfc`` and ``okta-spec`` passes. Against a
deliberately broken server every check fails: the broken server is a small aiohttp
proxy in front of the real one that breaks exactly one rule (a ``Violation``), so a
check that still passed behind it would be a check that cannot fail.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance import html_report, reports
from conformance.checks import Verdict, suites
from conformance.cli import main
from conformance.runner import RunResult, run
from tests.support.proxy import (
    Forward,
    Req,
    Resp,
    Violation,
    answer,
    case_sensitive_username,
    is_,
    mutate,
    patch_ops,
    rewrite_filter,
    set_status,
    start_proxy,
    when,
)
from tests.support.scim import Scim
from tests.support.urns import ENTERPRISE, ERROR


async def _externalid_ignores_case(req: Req, forward: Forward) -> Resp:
    wanted = re.fullmatch(r'externalId eq "(.*)"', req.query.get("filter", ""))
    if req.method != "GET" or not wanted:
        return await forward(req)
    req.query["filter"] = "externalId pr"
    req.query["count"] = "200"
    resp = await forward(req)
    body = resp.json()
    body["Resources"] = [
        r for r in body.get("Resources", []) if r["externalId"].lower() == wanted.group(1).lower()
    ]
    body["totalResults"] = len(body["Resources"])
    resp.set_json(body)
    return resp


async def _put_merges(req: Req, forward: Forward) -> Resp:
    """PUT implemented as a merge: a path-less PATCH replace of the given attributes."""
    if req.method != "PUT":
        return await forward(req)
    body = {k: v for k, v in req.json().items() if k not in ("schemas", "id", "meta")}
    req.method = "PATCH"
    req.set_json(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": body}],
        }
    )
    return await forward(req)


def _member_adds_race() -> Violation:
    """Member adds as read-modify-write without versions, all reads before any write."""
    barrier = asyncio.Barrier(8)

    async def violation(req: Req, forward: Forward) -> Resp:
        if req.method != "PATCH" or not req.path.startswith("/Groups/"):
            return await forward(req)
        added = [v for op in req.json()["Operations"] for v in op["value"]]
        current = (await forward(Req("GET", req.path, {}, req.headers, b""))).json()
        await asyncio.wait_for(barrier.wait(), 10)
        current["members"] = [{"value": m["value"]} for m in current.get("members", [])] + added
        put = Req("PUT", req.path, {}, req.headers, json.dumps(current).encode())
        return await forward(put)

    return violation


def _no_unique_username(req: Req) -> None:
    body = req.json()
    body["userName"] = f"{body['userName']}-{uuid.uuid4().hex[:6]}"
    req.set_json(body)


async def _slow_groups(req: Req, forward: Forward) -> Resp:
    if req.path == "/Groups":
        await asyncio.sleep(0.7)
    return await forward(req)


async def _pathless_patch_leaves_groups(req: Req, forward: Forward) -> Resp:
    """A path-less user PATCH that also takes the user out of every group holding it."""
    resp = await forward(req)
    pathless = req.method == "PATCH" and req.path.startswith("/Users/")
    if not pathless or any("path" in o for o in req.json()["Operations"]):
        return resp
    user_id = req.path.rsplit("/", 1)[-1]
    held = await forward(
        Req("GET", "/Groups", {"filter": f'members[value eq "{user_id}"]'}, req.headers, b"")
    )
    for group in held.json().get("Resources", []):
        remove = {"op": "remove", "path": f'members[value eq "{user_id}"]'}
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [remove],
        }
        await forward(
            Req("PATCH", f"/Groups/{group['id']}", {}, req.headers, json.dumps(body).encode())
        )
    return resp


HARMLESS_OP = {"op": "replace", "path": "externalId", "value": "scimconf-unchanged"}
"""An operation that changes nothing a check looks at, for a PATCH left without any."""


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def _accept_raw_non_token(req: Req) -> None:
    req.headers["Authorization"] = TOKEN_HOLDER["token"]


TOKEN_HOLDER: dict[str, str] = {}
users = is_("GET", r"/Users")
user = is_("GET", r"/Users/[^/]+")
post_user = is_("POST", r"/Users")
patch_user = is_("PATCH", r"/Users/.+")
any_error = lambda req: True  # noqa: E731
HTML = b"<!DOCTYPE html><html><body><h1>Not Found</h1></body></html>"


def _error_status_int(body: dict[str, Any]) -> None:
    if "status" in body:
        body["status"] = int(body["status"])


def _drop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def fn(body: dict[str, Any]) -> None:
        for key in keys:
            body.pop(key, None)

    return fn


def _on_status(status: int, after: Callable[[Req, Resp], None]) -> Callable[[Req, Resp], None]:
    def fn(req: Req, resp: Resp) -> None:
        if resp.status == status:
            after(req, resp)

    return fn


def _empty_list(req: Req, resp: Resp) -> None:
    resp.status = 200
    resp.set_json(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 0,
            "Resources": [],
        }
    )


def _not_found_when_empty(req: Req, resp: Resp) -> None:
    body = resp.json()
    if isinstance(body, dict) and body.get("totalResults") == 0:
        resp.status = 404
        resp.set_json(
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "404",
                "detail": "no such user",
            }
        )


def _drop_if_match(req: Req) -> None:
    req.headers.pop("If-Match", None)


def _drop_if_none_match(req: Req) -> None:
    req.headers.pop("If-None-Match", None)


_BULK_MEMBERS_DROPPED = when(
    is_("POST", "/Bulk"),
    before=lambda req: req.set_json(
        {
            **req.json(),
            "Operations": [
                {**o, "data": {k: v for k, v in o["data"].items() if k != "members"}}
                for o in req.json()["Operations"]
            ],
        }
    ),
)
"""A server that drops the members of every Bulk operation: bulkId references are lost."""


VIOLATIONS: list[tuple[str, str, Violation]] = [
    (
        "rfc.discovery.service-provider-config",
        "SPC without etag",
        when(is_("GET", "/ServiceProviderConfig"), after=mutate(_drop("etag"))),
    ),
    (
        "rfc.discovery.resource-types",
        "no Group resource type",
        when(
            is_("GET", "/ResourceTypes"),
            after=mutate(
                lambda b: b.update(Resources=[r for r in b["Resources"] if r["name"] != "Group"])
            ),
        ),
    ),
    (
        "rfc.discovery.schemas",
        "userName not unique",
        when(
            is_("GET", "/Schemas"),
            after=mutate(
                lambda b: [
                    a.update(uniqueness="none")
                    for s in b["Resources"]
                    for a in s["attributes"]
                    if a["name"] == "userName"
                ]
            ),
        ),
    ),
    (
        "rfc.discovery.schemas",
        "no Group schema",
        when(
            is_("GET", "/Schemas"),
            after=mutate(
                lambda b: b.update(Resources=[r for r in b["Resources"] if r["name"] != "Group"])
            ),
        ),
    ),
    (
        "rfc.discovery.schemas",
        "sub-attributes without mutability",
        when(
            is_("GET", "/Schemas"),
            after=mutate(
                lambda b: [
                    sub.pop("mutability", None)
                    for r in b["Resources"]
                    for a in r["attributes"]
                    for sub in a.get("subAttributes") or []
                ]
            ),
        ),
    ),
    ("rfc.crud.create", "200 instead of 201", when(post_user, after=set_status(200))),
    (
        "rfc.crud.create",
        "Location differs from meta.location",
        when(post_user, after=lambda req, resp: resp.headers.update(Location="/Users/elsewhere")),
    ),
    ("rfc.crud.get", "no schemas on GET", when(user, after=mutate(_drop("schemas")))),
    ("rfc.crud.put-replaces", "PUT merges", _put_merges),
    (
        "rfc.crud.delete",
        "DELETE answers 200",
        when(is_("DELETE", r"/Users/.+"), after=set_status(200)),
    ),
    ("rfc.crud.delete", "DELETE does nothing", answer(is_("DELETE", r"/Users/.+"), 204, b"")),
    (
        "rfc.crud.group-members",
        "members not returned",
        when(is_("GET", r"/Groups/.+"), after=mutate(_drop("members"))),
    ),
    (
        "rfc.filter.eq-case-insensitive",
        "case-sensitive userName",
        when(users, after=case_sensitive_username),
    ),
    (
        "rfc.filter.externalid-case-exact",
        "externalId matched ignoring case",
        _externalid_ignores_case,
    ),
    (
        "rfc.filter.operators",
        "co read as sw",
        when(users, before=rewrite_filter(lambda f: f.replace(" co ", " sw "))),
    ),
    (
        "rfc.filter.operators",
        "pr ignored",
        when(users, before=rewrite_filter(lambda f: f.replace(" and title pr", ""))),
    ),
    (
        "rfc.filter.comparisons",
        "gt read as ge",
        when(users, before=rewrite_filter(lambda f: f.replace(" gt ", " ge "))),
    ),
    (
        "rfc.filter.comparisons",
        "ne read as eq",
        when(users, before=rewrite_filter(lambda f: f.replace(" ne ", " eq "))),
    ),
    (
        "rfc.filter.precedence",
        "or and and read left to right",
        when(
            users,
            before=rewrite_filter(
                lambda f: re.sub(r'^(\S+ eq "[^"]*" or \S+ eq "[^"]*") and', r"(\1) and", f)
            ),
        ),
    ),
    (
        "rfc.filter.precedence",
        "not ignored",
        when(users, before=rewrite_filter(lambda f: f.replace("not (", "("))),
    ),
    (
        "rfc.filter.precedence",
        "a not inside a not ignored",
        when(users, before=rewrite_filter(lambda f: f.replace("or not (", "or ("))),
    ),
    (
        "rfc.filter.ne-null-unassigned",
        "ne only finds assigned values (SQL's null)",
        when(
            users,
            before=rewrite_filter(lambda f: re.sub(r"(\S+) ne (\S+)", r"(\1 pr and \1 ne \2)", f)),
        ),
    ),
    (
        "rfc.filter.ne-null-unassigned",
        "eq null matches nothing",
        when(users, before=rewrite_filter(lambda f: f.replace(" eq null", ' eq "null"'))),
    ),
    (
        "rfc.filter.value-path",
        "value path conditions on different entries",
        when(
            users,
            before=rewrite_filter(
                lambda f: re.sub(
                    r'(\w+)\[(\w+) (\w+) ("[^"]*") and (\w+) (\w+) ("[^"]*")\]',
                    r"\1.\2 \3 \4 and \1.\5 \6 \7",
                    f,
                )
            ),
        ),
    ),
    (
        "rfc.filter.invalid",
        "invalid filter answers an empty list",
        when(users, after=_on_status(400, _empty_list)),
    ),
    (
        "rfc.sort.order",
        "sortOrder ignored",
        when(users, before=lambda req: req.query.pop("sortOrder", None)),
    ),
    (
        "rfc.paging.invariants",
        "totalResults counts the page",
        when(users, after=mutate(lambda b: b.update(totalResults=len(b.get("Resources", []))))),
    ),
    (
        "rfc.paging.invariants",
        "startIndex read as 0-based",
        when(
            users,
            before=lambda req: (
                req.query.update(startIndex=str(int(req.query.get("startIndex", "1")) + 1))
                if "startIndex" in req.query
                else None
            ),
        ),
    ),
    (
        "rfc.paging.count-zero",
        "count=0 ignored",
        when(
            lambda req: users(req) and req.query.get("count") == "0",
            before=lambda req: req.query.pop("count"),
        ),
    ),
    (
        "rfc.paging.start-index-below-one",
        "startIndex 0 rejected",
        answer(
            lambda req: users(req) and int(req.query.get("startIndex", "1")) < 1,
            400,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidValue",
                "detail": "startIndex must be >= 1",
            },
        ),
    ),
    (
        "rfc.paging.cursor",
        "cursor ignored (always the first page)",
        when(
            users, before=lambda req: req.query.update(cursor="") if "cursor" in req.query else None
        ),
    ),
    (
        "rfc.attributes.attributes",
        "attributes ignored",
        when(user, before=lambda req: req.query.pop("attributes", None)),
    ),
    (
        "rfc.attributes.list-and-search",
        "attributes ignored by POST /.search",
        when(
            is_("POST", r"/\.search"),
            before=lambda req: req.set_json(
                {k: v for k, v in req.json().items() if k != "attributes"}
            ),
        ),
    ),
    (
        "rfc.attributes.list-and-search",
        "attributes ignored on a list",
        when(users, before=lambda req: req.query.pop("attributes", None)),
    ),
    ("rfc.attributes.excluded", "id excludable", when(user, after=mutate(_drop("id")))),
    (
        "rfc.attributes.password-never",
        "password echoed",
        when(
            post_user,
            after=lambda req, resp: mutate(lambda b: b.update(password=req.json().get("password")))(
                req, resp
            ),
        ),
    ),
    (
        "rfc.patch.add",
        "add ignored",
        when(
            is_("PATCH", r"/Users/.+"),
            before=patch_ops(
                lambda ops: (
                    [o for o in ops if o["op"] != "add"]
                    or [{"op": "replace", "path": "active", "value": True}]
                )
            ),
        ),
    ),
    (
        "rfc.patch.replace",
        "sub-attribute paths silently ignored",
        when(
            is_("PATCH", r"/Users/.+"),
            before=patch_ops(lambda ops: [o for o in ops if "." not in o.get("path", "")]),
        ),
    ),
    (
        "rfc.patch.remove",
        "remove ignored",
        when(
            is_("PATCH", r"/Users/.+"),
            before=patch_ops(lambda ops: [{"op": "replace", "path": "active", "value": True}]),
        ),
    ),
    (
        "rfc.patch.pathless-keeps-references",
        "a path-less replace drops the manager",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: (
                    [*ops, {"op": "remove", "path": f"{ENTERPRISE}:manager"}]
                    if any("path" not in o for o in ops)
                    else ops
                )
            ),
        ),
    ),
    (
        "rfc.patch.pathless-keeps-references",
        "a path-less replace drops the user from its groups",
        _pathless_patch_leaves_groups,
    ),
    (
        "rfc.schema.create-every-attribute",
        "nickName dropped on create",
        when(post_user, before=lambda req: req.set_json(_without(req.json(), "nickName"))),
    ),
    (
        "rfc.schema.create-every-attribute",
        "the enterprise extension dropped on create",
        when(post_user, before=lambda req: req.set_json(_without(req.json(), ENTERPRISE))),
    ),
    (
        "rfc.schema.replace-every-attribute",
        "PUT ignores the enterprise extension",
        when(
            is_("PUT", r"/Users/.+"),
            before=lambda req: req.set_json(_without(req.json(), ENTERPRISE)),
        ),
    ),
    (
        "rfc.schema.patch-every-attribute",
        "sub-attribute paths ignored",
        when(
            is_("PATCH", r"/(Users|Groups)/.+"),
            before=patch_ops(
                lambda ops: (
                    [o for o in ops if "." not in o.get("path", "").rsplit(":", 1)[-1]]
                    or [HARMLESS_OP]
                )
            ),
        ),
    ),
    (
        "rfc.schema.patch-every-attribute",
        "removal of an extension attribute ignored",
        when(
            patch_user,
            before=patch_ops(
                lambda ops: (
                    [
                        o
                        for o in ops
                        if not (o["op"] == "remove" and o["path"].startswith(ENTERPRISE))
                    ]
                    or [HARMLESS_OP]
                )
            ),
        ),
    ),
    (
        "rfc.patch.value-filter-path",
        "value filter ignored",
        when(
            is_("PATCH", r"/Users/.+"),
            before=patch_ops(
                lambda ops: [
                    {
                        "op": "replace",
                        "path": "emails",
                        "value": [{"value": o["value"], "type": "work"}],
                    }
                    for o in ops
                ]
            ),
        ),
    ),
    (
        "rfc.patch.group-members",
        "remove by filter removes every member",
        when(
            is_("PATCH", r"/Groups/.+"),
            before=patch_ops(
                lambda ops: [
                    {"op": "remove", "path": "members"} if o["op"] == "remove" else o for o in ops
                ]
            ),
        ),
    ),
    (
        "rfc.etag.header",
        "no ETag header",
        when(
            user,
            after=lambda req, resp: resp.headers.pop(
                next((k for k in resp.headers if k.lower() == "etag"), ""), None
            ),
        ),
    ),
    ("rfc.etag.if-match-stale", "If-Match ignored", when(lambda req: True, before=_drop_if_match)),
    ("rfc.etag.if-none-match", "If-None-Match ignored", when(user, before=_drop_if_none_match)),
    (
        "rfc.filter.id-meta",
        "gt read as ge",
        when(users, before=rewrite_filter(lambda f: f.replace(" gt ", " ge "))),
    ),
    (
        "rfc.filter.id-meta",
        "lastModified compared as text",
        when(
            users,
            before=rewrite_filter(lambda f: f.replace("meta.lastModified lt", "meta.created gt")),
        ),
    ),
    (
        "rfc.filter.id-meta",
        "a filter on meta.version refused as invalidValue",
        when(
            lambda req: users(req) and "meta.version" in req.query.get("filter", ""),
            after=_on_status(400, mutate(lambda b: b.update(scimType="invalidValue"))),
        ),
    ),
    (
        "rfc.filter.value-path-operators",
        "pr inside a value path ignored",
        when(users, before=rewrite_filter(lambda f: f.replace("[primary pr]", "[value pr]"))),
    ),
    (
        "rfc.filter.value-path-operators",
        "not inside a value path ignored",
        when(users, before=rewrite_filter(lambda f: f.replace("[not (", "[("))),
    ),
    (
        "rfc.patch.operation-order",
        "operations applied last to first",
        when(patch_user, before=patch_ops(lambda ops: list(reversed(ops)))),
    ),
    (
        "rfc.crud.non-unique-values",
        "a PUT keeping a shared displayName refused",
        answer(
            lambda req: req.method == "PUT" and b"Shared Name" in req.body,
            409,
            {"schemas": [ERROR], "status": "409", "scimType": "uniqueness"},
        ),
    ),
    (
        "rfc.crud.references-dropped-on-delete",
        "a deleted member still listed",
        when(
            is_("GET", r"/Groups/.+"),
            after=mutate(lambda b: b.setdefault("members", []).append({"value": "gone"})),
        ),
    ),
    (
        "rfc.crud.references-dropped-on-delete",
        "a deleted manager still named",
        when(
            user,
            after=mutate(
                lambda b: b.setdefault(ENTERPRISE, {}).setdefault("manager", {"value": "gone"})
            ),
        ),
    ),
    ("rfc.errors.not-found", "status as a number", when(user, after=mutate(_error_status_int))),
    (
        "rfc.errors.not-found",
        "application/json content type",
        when(
            user, after=lambda req, resp: resp.headers.update({"Content-Type": "application/json"})
        ),
    ),
    ("rfc.errors.not-found", "HTML 404 page", answer(user, 404, HTML, "text/html")),
    (
        "rfc.discovery.by-id",
        "no resource type by name",
        answer(is_("GET", "/ResourceTypes/User"), 404, {"schemas": [ERROR], "status": "404"}),
    ),
    (
        "rfc.discovery.by-id",
        "an unknown endpoint as an HTML page",
        answer(is_("GET", "/ScimconfNoSuchEndpoint"), 404, HTML, "text/html"),
    ),
    (
        "rfc.errors.not-found-every-operation",
        "DELETE of an unknown group answers 204",
        answer(is_("DELETE", r"/Groups/scimconf-no-such-id.*"), 204, b""),
    ),
    (
        "rfc.errors.not-found-every-operation",
        "PUT of an unknown user answers 400",
        answer(
            is_("PUT", r"/Users/scimconf-no-such-id.*"),
            400,
            {"schemas": [ERROR], "status": "400", "detail": "userName taken"},
        ),
    ),
    (
        "rfc.errors.method-not-allowed",
        "405 without Allow",
        when(any_error, after=lambda req, resp: resp.headers.pop("Allow", None)),
    ),
    (
        "rfc.errors.method-not-allowed",
        "GET /Users/.search read as an id",
        answer(
            is_("GET", r"/Users/\.search"),
            404,
            {"schemas": [ERROR], "status": "404", "detail": "Users '.search' not found"},
        ),
    ),
    (
        "rfc.errors.uniqueness",
        "409 without scimType",
        when(post_user, after=mutate(_drop("scimType"))),
    ),
    (
        "rfc.errors.unauthorized",
        "no WWW-Authenticate",
        when(
            any_error,
            after=lambda req, resp: resp.headers.pop(
                next((k for k in resp.headers if k.lower() == "www-authenticate"), ""), None
            ),
        ),
    ),
    (
        "rfc.errors.unauthorized",
        "any bearer token accepted",
        when(
            lambda req: req.headers.get("Authorization") == "Bearer scimconf-not-a-token",
            before=_accept_raw_non_token,
        ),
    ),
    (
        "rfc.errors.invalid-json",
        "HTML 500 on malformed JSON",
        answer(lambda req: req.method == "POST" and req.json() is None, 500, HTML, "text/html"),
    ),
    (
        "rfc.errors.required-attribute",
        "userName invented when missing",
        when(
            post_user,
            before=lambda req: req.set_json(
                {"userName": f"scimconf-invented-{uuid.uuid4().hex[:6]}", **req.json()}
            ),
        ),
    ),
    ("rfc.concurrency.member-adds", "lost updates", _member_adds_race()),
    ("rfc.concurrency.username-race", "no uniqueness", when(post_user, before=_no_unique_username)),
    (
        "rfc.bulk.bulkid-reference",
        "bulkId references dropped",
        _BULK_MEMBERS_DROPPED,
    ),
    (
        "rfc.bulk.circular-reference",
        "cycle answered 201 with the references dropped",
        _BULK_MEMBERS_DROPPED,
    ),
    (
        "rfc.bulk.circular-reference",
        "cycle answered 500",
        when(
            is_("POST", "/Bulk"),
            after=mutate(lambda b: [o.update(status="500") for o in b["Operations"]]),
        ),
    ),
    (
        "rfc.bulk.fail-on-errors",
        "failOnErrors ignored",
        when(
            is_("POST", "/Bulk"),
            before=lambda req: req.set_json(
                {k: v for k, v in req.json().items() if k != "failOnErrors"}
            ),
        ),
    ),
    (
        "rfc.bulk.max-operations",
        "maxOperations not enforced",
        when(
            is_("POST", "/Bulk"),
            after=_on_status(
                413,
                lambda req, resp: (
                    setattr(resp, "status", 200),
                    resp.set_json(
                        {
                            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
                            "Operations": [],
                        }
                    ),
                ),
            ),
        ),
    ),
    (
        "okta.01-users-endpoint",
        "no emails in the list",
        when(users, after=mutate(lambda b: [r.pop("emails", None) for r in b["Resources"]])),
    ),
    ("okta.02-get-user-by-id", "no active on GET", when(user, after=mutate(_drop("active")))),
    (
        "okta.03-invalid-user-by-username",
        "404 for no match",
        when(users, after=_not_found_when_empty),
    ),
    ("okta.04-invalid-user-by-id", "404 without detail", when(user, after=mutate(_drop("detail")))),
    (
        "okta.05-random-user-absent",
        "totalResults missing",
        when(users, after=mutate(_drop("totalResults"))),
    ),
    (
        "okta.06-create-user",
        "userName lower-cased",
        when(
            post_user, after=mutate(lambda b: b.update(userName=str(b.get("userName", "")).lower()))
        ),
    ),
    (
        "okta.07-verify-created",
        "givenName not returned",
        when(user, after=mutate(lambda b: (b.get("name") or {}).pop("givenName", None))),
    ),
    (
        "rfc.errors.unknown-attribute",
        "unknown attribute is invalidValue",
        when(
            post_user,
            after=mutate(lambda b: b.update(scimType="invalidValue") if "scimType" in b else None),
        ),
    ),
    (
        "okta.08-recreate-conflict",
        "duplicate answered 201",
        when(post_user, after=_on_status(409, set_status(201))),
    ),
    (
        "okta.09-username-case",
        "upper-case filter rejected",
        answer(
            lambda req: users(req) and "ATKO" in req.query.get("filter", ""),
            400,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "detail": "bad filter",
            },
        ),
    ),
    ("okta.10-groups-endpoint", "slow Groups endpoint", _slow_groups),
    (
        "okta.11-status-401",
        "raw non-token accepted",
        when(
            lambda req: req.headers.get("Authorization") == "non-token",
            before=_accept_raw_non_token,
        ),
    ),
    ("okta.12-status-404", "plain-text 404", answer(user, 404, b"not found", "text/plain")),
]

DEPENDS = {
    "okta.02-get-user-by-id": ["okta.01-users-endpoint"],
    "okta.07-verify-created": ["okta.06-create-user"],
    "okta.08-recreate-conflict": ["okta.06-create-user"],
}


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def real_base(client: TestClient, scim: Scim) -> str:
    TOKEN_HOLDER["token"] = f"Bearer {scim.token}"
    return str(client.make_url("")).rstrip("/") + scim.base


def result_of(run_result: RunResult, check_id: str) -> Any:
    return next(r for r in run_result.results if r.check.id == check_id)


async def prefixed_users(scim: Scim, prefix: str) -> int:
    response = await scim.get("/Users", params={"filter": f'userName sw "{prefix}"'})
    return int((await response.json())["totalResults"])


# --- against our server -------------------------------------------------------------------


async def test_every_check_passes_against_our_server_and_cleans_up(
    real_base: str, scim: Scim
) -> None:
    result = await run(real_base, scim.token, ["rfc", "okta-spec"])
    not_passed = [
        (r.check.id, r.verdict, r.reason) for r in result.results if r.verdict is not Verdict.PASS
    ]
    assert not_passed == []
    assert len(result.results) == len(suites()["rfc"]) + len(suites()["okta-spec"])
    assert result.failed is False
    assert result.leftovers == []
    assert await prefixed_users(scim, "scimconf-") == 0
    groups = await (
        await scim.get("/Groups", params={"filter": 'displayName sw "scimconf-"'})
    ).json()
    assert groups["totalResults"] == 0


async def test_keep_leaves_the_fixtures_on_the_server(real_base: str, scim: Scim) -> None:
    result = await run(real_base, scim.token, ["rfc"], only=["rfc.crud.get"], keep=True)
    assert result.results[0].verdict is Verdict.PASS
    assert await prefixed_users(scim, f"scimconf-{result.run_id}-") == 1


PROVEN_ELSEWHERE = {
    "entra-validator": "test_conformance_entra.py",
    "okta-entitlements": "test_conformance_entitlements.py",
    "flows": "test_conformance_flows.py",
    "tenancy": "test_conformance_flows.py",
    "large": "test_conformance_flows.py",
    "saml": "test_conformance_saml.py",
    "wsfed": "test_conformance_wsfed.py",
    "oidc": "test_conformance_oidc.py",
    "ipsie": "test_conformance_ipsie.py",
    "events": "test_conformance_events.py",
    "cross-instance": "test_conformance_cross_instance.py",
    "interop-draft": "test_conformance_interop.py",
    "rfc.groups.unknown-member-refused": "test_conformance_entra.py",
}
"""The suites (and the one ``rfc`` check) shown failing in their own test module instead."""


async def test_every_check_has_a_violation_here() -> None:
    """Every ``rfc`` and ``okta-spec`` check is shown failing here or in the module named for it;
    every other suite has its own module, so a new suite cannot go unproven."""
    registry = suites()
    assert set(registry) - set(PROVEN_ELSEWHERE) == {"rfc", "okta-spec"}
    assert all((Path(__file__).parent / module).is_file() for module in PROVEN_ELSEWHERE.values())
    every = {c.id for suite in ("rfc", "okta-spec") for c in registry[suite]}
    assert every - {check_id for check_id, _, _ in VIOLATIONS} == {
        name for name in PROVEN_ELSEWHERE if name not in registry
    }


# --- against the broken server ------------------------------------------------------------


@pytest.mark.parametrize(
    ("check_id", "violation"),
    [(c, v) for c, _, v in VIOLATIONS],
    ids=[f"{c}:{name}" for c, name, _ in VIOLATIONS],
)
async def test_a_broken_server_fails_the_check(
    aiohttp_server: Any, real_base: str, scim: Scim, check_id: str, violation: Violation
) -> None:
    suite = check_id.split(".")[0].replace("okta", "okta-spec")
    # The same check passes through an honest proxy, so the violation alone makes it fail.
    honest = await start_proxy(aiohttp_server, real_base, when(lambda req: False))
    only = [*DEPENDS.get(check_id, []), check_id]
    fine = await run(honest, scim.token, [suite], only=only)
    assert [(r.verdict, r.reason) for r in fine.results] == [(Verdict.PASS, "")] * len(only)
    broken = await start_proxy(aiohttp_server, real_base, violation)
    result = await run(broken, scim.token, [suite], only=only)
    verdict = result_of(result, check_id)
    assert (verdict.verdict, verdict.reason != "") == (Verdict.FAIL, True), verdict.reason
    assert verdict.transcript, "a failure must carry its evidence"
    assert result.failed is True


async def test_unsupported_features_skip_and_say_why(
    aiohttp_server: Any, real_base: str, scim: Scim
) -> None:
    def unsupported(body: dict[str, Any]) -> None:
        for feature in ("bulk", "etag", "sort", "patch"):
            body[feature] = {"supported": False}
        body["pagination"] = {"cursor": False, "index": True}

    proxy = await start_proxy(
        aiohttp_server,
        real_base,
        when(is_("GET", "/ServiceProviderConfig"), after=mutate(unsupported)),
    )
    result = await run(proxy, scim.token, ["rfc"])
    skipped = {r.check.id: r.reason for r in result.results if r.verdict is Verdict.SKIP}
    assert skipped["rfc.bulk.bulkid-reference"] == (
        "ServiceProviderConfig does not advertise bulk.supported: true"
    )
    assert skipped["rfc.etag.if-match-stale"] == (
        "ServiceProviderConfig does not advertise etag.supported: true"
    )
    assert skipped["rfc.paging.cursor"] == (
        "ServiceProviderConfig does not advertise pagination.cursor: true"
    )
    assert set(skipped) == {
        "rfc.sort.order",
        "rfc.paging.cursor",
        "rfc.patch.add",
        "rfc.patch.replace",
        "rfc.patch.remove",
        "rfc.patch.operation-order",
        "rfc.patch.pathless-keeps-references",
        "rfc.schema.patch-every-attribute",
        "rfc.patch.value-filter-path",
        "rfc.patch.group-members",
        "rfc.etag.header",
        "rfc.etag.if-match-stale",
        "rfc.etag.if-none-match",
        "rfc.concurrency.member-adds",
        "rfc.bulk.bulkid-reference",
        "rfc.bulk.fail-on-errors",
        "rfc.bulk.max-operations",
        "rfc.bulk.circular-reference",
    }
    assert result.failed is False


# --- reports and CLI ----------------------------------------------------------------------


@pytest.fixture
async def mixed_run(aiohttp_server: Any, real_base: str, scim: Scim) -> RunResult:
    """One pass, one failure (201 answered as 200), one skip (etag not advertised)."""
    violation = when(post_user, after=set_status(200))
    spc = when(
        is_("GET", "/ServiceProviderConfig"),
        after=mutate(lambda b: b.update(etag={"supported": False})),
    )

    async def both(req: Req, forward: Forward) -> Resp:
        return await spc(req, lambda r: violation(r, forward))

    proxy = await start_proxy(aiohttp_server, real_base, both)
    return await run(
        proxy,
        scim.token,
        ["rfc"],
        only=["rfc.crud.create", "rfc.errors.not-found", "rfc.etag.header"],
    )


def test_junit_report_counts_each_verdict(mixed_run: RunResult) -> None:
    root = ET.fromstring(reports.junit(mixed_run))
    suite = root.find("testsuite")
    assert suite is not None
    assert (
        suite.get("name"),
        suite.get("tests"),
        suite.get("failures"),
        suite.get("errors"),
        suite.get("skipped"),
    ) == ("rfc", "3", "1", "0", "1")
    failure = suite.find("testcase[@name='rfc.crud.create']/failure")
    assert failure is not None and failure.get("message", "").startswith("expected HTTP 201")
    assert "POST " in (failure.text or "") and "<< HTTP 200" in (failure.text or "")
    assert suite.find("testcase[@name='rfc.etag.header']/skipped") is not None


def test_html_report_shows_the_failure_transcript_and_rule(mixed_run: RunResult) -> None:
    page = html_report.render(mixed_run)
    assert "the server SHALL return a 201 Created" in page
    assert "POST /Users → <b class=ok>200</b>" in page
    assert "<span class='verdict fail'>failed</span></h1>" in page
    assert "<link" not in page and "src=" not in page and "<script>" in page


def test_json_and_terminal_reports(mixed_run: RunResult) -> None:
    data = json.loads(reports.to_json(mixed_run))
    assert data["totals"] == {"rfc": {"pass": 1, "fail": 1, "skip": 1, "error": 0}}
    assert data["failed"] is True
    verdicts = {r["id"]: r["verdict"] for r in data["results"]}
    assert verdicts == {
        "rfc.crud.create": "fail",
        "rfc.errors.not-found": "pass",
        "rfc.etag.header": "skip",
    }
    text = reports.terminal(mixed_run)
    assert text.splitlines()[-1].startswith("1 passed, 1 failed, 0 errors, 1 skipped in ")
    assert "FAIL  rfc.crud.create: expected HTTP 201, got 200" in text


def _no_bearer_leak(text: str, token: str) -> None:
    assert token not in text


async def test_cli_writes_reports_and_exits_by_verdict(
    real_base: str, scim: Scim, tmp_path: Path
) -> None:
    args = [
        "--base-url",
        real_base,
        "--token",
        scim.token,
        "--suite",
        "okta-spec",
        "--junit",
        str(tmp_path / "j.xml"),
        "--json",
        str(tmp_path / "r.json"),
        "--html",
        str(tmp_path / "r.html"),
    ]
    assert await asyncio.to_thread(main, args) == 0
    junit_root = ET.parse(tmp_path / "j.xml").getroot()
    assert junit_root.find("testsuite").get("tests") == "12"  # type: ignore[union-attr]
    _no_bearer_leak((tmp_path / "r.json").read_text(), scim.token)
    _no_bearer_leak((tmp_path / "r.html").read_text(), scim.token)
    bad = [
        "--base-url",
        real_base,
        "--token",
        "wrong",
        "--suite",
        "okta-spec",
        "--check",
        "okta.12-status-404",
    ]
    assert await asyncio.to_thread(main, bad) == 3  # the token refused: no check runs
    assert await asyncio.to_thread(main, [*args[:4], "--suite", "nope"]) == 2
