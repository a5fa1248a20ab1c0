"""The ``tenancy`` suite: nothing of tenant A is visible or writable from tenant B.

Why a suite of its own: it needs a second tenant (``--second-base-url``, ``--second-token``),
which a plain run does not have, so it skips with that reason instead of guessing. A is the
run's tenant; its resources are fixtures (the runner removes them). B's resources are removed by
the check itself, since the runner's cleanup only sees A.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from conformance.checks import (
    Context,
    check,
    expect_object,
    expect_status,
    require,
    resources_of,
    skip,
)
from conformance.fixtures import FixtureError
from conformance.http import ScimHttp
from conformance.options import option
from conformance.urns import GROUP, PATCH_OP, SEARCH_REQUEST

SUITE = "tenancy"
SOURCE = "RFC 7644 §6 (multi-tenancy), §3.12"


def tenant_b(context: Context) -> ScimHttp:
    """HTTP on the second tenant, recording into the same transcript; skip without one."""
    base_url, token = option(context, "second_base_url"), option(context, "second_token")
    if not base_url or not token:
        skip("no second tenant: run with --second-base-url and --second-token")
    http = context.http
    return ScimHttp(http.session, base_url, token, http.transcript, http.timeout)


@asynccontextmanager
async def b_group(
    b: ScimHttp, name: str, members: list[str] | None = None
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    """POST a group in B, yield (status, body), and delete it afterwards if it was created."""
    body: dict[str, Any] = {"schemas": [GROUP], "displayName": name}
    if members is not None:
        body["members"] = [{"value": m} for m in members]
    response = await b.post("/Groups", body)
    created = response.json() if isinstance(response.json(), dict) else {}
    try:
        yield response.status, created
    finally:
        if isinstance(created.get("id"), str):
            await b.delete(f"/Groups/{created['id']}")


async def a_resources(context: Context) -> tuple[dict[str, Any], dict[str, Any]]:
    user = await context.fixtures.user()
    group = await context.fixtures.group(members=[user["id"]])
    return user, group


@check(
    SUITE,
    "tenancy.read-by-id",
    "Tenant B cannot read tenant A's resources by id",
    SOURCE,
    "A resource of another tenant does not exist for this tenant: GET by id is 404.",
)
async def read_by_id(context: Context) -> None:
    b = tenant_b(context)
    user, group = await a_resources(context)
    for path in (f"/Users/{user['id']}", f"/Groups/{group['id']}"):
        response = await b.get(path)
        require(
            response.status == 404,
            f"tenant B: GET {path} (tenant A's) answered {response.status}, expected 404: "
            f"{response.text[:200]!r}",
        )


@check(
    SUITE,
    "tenancy.write-by-id",
    "Tenant B cannot replace, patch or delete A's resources",
    SOURCE,
    "PUT, PATCH and DELETE of another tenant's resource are 404 and change nothing.",
)
async def write_by_id(context: Context) -> None:
    b = tenant_b(context)
    user, group = await a_resources(context)
    user_path, group_path = f"/Users/{user['id']}", f"/Groups/{group['id']}"
    hijacked = {
        **context.fixtures.user_body(user["userName"]),
        "active": False,
        "displayName": "Taken Over",
    }
    attempts = [
        ("PUT", user_path, hijacked),
        (
            "PATCH",
            user_path,
            {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "active", "value": False}],
            },
        ),
        (
            "PUT",
            group_path,
            {"schemas": [GROUP], "displayName": "Taken Over", "members": []},
        ),
        (
            "PATCH",
            group_path,
            {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "members"}]},
        ),
        ("DELETE", group_path, None),
        ("DELETE", user_path, None),
    ]
    for method, path, body in attempts:
        response = await b.request(method, path, json_body=body)
        require(
            response.status == 404,
            f"tenant B: {method} {path} (tenant A's) answered {response.status}, "
            f"expected 404: {response.text[:200]!r}",
        )
    after_user = expect_object(await context.http.get(user_path), "tenant A's user")
    require(
        after_user.get("active") is True and after_user.get("displayName") != "Taken Over",
        "tenant A's user was changed by tenant B's writes",
    )
    response = await context.http.get(group_path)
    expect_status(response, 200, what="tenant A's group after tenant B's writes")
    after_group = expect_object(response, "tenant A's group")
    members = [m.get("value") for m in after_group.get("members") or []]
    require(
        after_group.get("displayName") == group["displayName"] and members == [user["id"]],
        f"tenant A's group was changed by tenant B's writes: {after_group}",
    )


@check(
    SUITE,
    "tenancy.query-isolation",
    "Tenant B's lists, filters and searches never show A's",
    SOURCE,
    "Queries of one tenant only ever return that tenant's resources.",
)
async def query_isolation(context: Context) -> None:
    b = tenant_b(context)
    user, group = await a_resources(context)
    secret_ids = {user["id"], group["id"]}
    queries = [  # (endpoint, filter, whether the server may refuse the filter with 400)
        ("/Users", f'userName eq "{user["userName"]}"', False),
        ("/Users", f'id eq "{user["id"]}"', False),
        ("/Users", f'userName sw "{context.fixtures.tracker.prefix}"', False),
        ("/Groups", f'displayName eq "{group["displayName"]}"', False),
        ("/Groups", f'members.value eq "{user["id"]}"', True),
    ]
    for endpoint, expression, optional in queries:
        response = await b.get(endpoint, params={"filter": expression})
        if optional and response.status == 400:
            continue  # a filter the server does not support cannot leak anything
        expect_status(response, 200, what=f"tenant B: GET {endpoint}?filter={expression}")
        found = resources_of(response)
        require(
            not found,
            f"tenant B: filter {expression!r} on {endpoint} returned tenant A's "
            f"resources: {[r.get('id') for r in found]}",
        )
        search = await b.post(
            f"{endpoint}/.search", {"schemas": [SEARCH_REQUEST], "filter": expression}
        )
        if search.status == 200:
            leaked = resources_of(search)
            require(
                not leaked,
                f"tenant B: POST {endpoint}/.search {expression!r} returned "
                f"tenant A's resources: {[r.get('id') for r in leaked]}",
            )
    for endpoint in ("/Users", "/Groups"):
        seen = await list_ids(b, endpoint)
        require(
            not seen & secret_ids,
            f"tenant B: GET {endpoint} lists tenant A's {sorted(seen & secret_ids)}",
        )


async def list_ids(http: ScimHttp, endpoint: str, page: int = 100, limit: int = 5000) -> set[str]:
    """Every id a full listing of ``endpoint`` pages through (up to ``limit``)."""
    ids: set[str] = set()
    start = 1
    while start <= limit:
        response = await http.get(
            endpoint, params={"startIndex": str(start), "count": str(page), "attributes": "id"}
        )
        expect_status(response, 200, what=f"GET {endpoint}")
        resources = resources_of(response)
        ids.update(str(r.get("id")) for r in resources)
        total = expect_object(response).get("totalResults", 0)
        start += page
        if not resources or start > int(total or 0):
            break
    return ids


@check(
    SUITE,
    "tenancy.cross-tenant-member",
    "A group in tenant B cannot take tenant A's user as a member",
    SOURCE,
    "A member value must name a resource of the same tenant: an unknown id is 400 "
    "(invalidValue), on create and on PATCH.",
)
async def cross_tenant_member(context: Context) -> None:
    b = tenant_b(context)
    user = await context.fixtures.user()
    async with b_group(b, context.fixtures.name("group"), [user["id"]]) as (status, created):
        require(
            status == 400,
            f"tenant B: POST /Groups with tenant A's user as member answered "
            f"{status}, expected 400: {created}",
        )
    async with b_group(b, context.fixtures.name("group")) as (status, created):
        if status != 201 or "id" not in created:
            # Setup, not the rule under test: the check could not run (an error).
            raise FixtureError(f"tenant B: could not create an empty group (HTTP {status})")
        path = f"/Groups/{created['id']}"
        response = await b.patch(
            path,
            {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": user["id"]}]}],
            },
        )
        require(
            response.status == 400,
            f"tenant B: PATCH add of tenant A's user as member answered {response.status}, "
            f"expected 400: {response.text[:200]!r}",
        )
        after = expect_object(await b.get(path), "tenant B's group")
        require(
            not after.get("members"),
            f"tenant B's group holds members after the refused add: {after.get('members')}",
        )
