"""The ``large`` suite: a group of thousands of members still behaves (only with ``--large``).

Why opt-in: building the group takes thousands of requests, too many for every run, yet big
groups are where servers break (document size limits, members fetched on every read, PATCH
rewriting the whole member list). The check fills a group by PATCH in batches, then proves a
single add and a single remove still land and that ``excludedAttributes=members`` leaves the
member list out.
"""

from __future__ import annotations

import asyncio
from typing import Any

from conformance.checks import Context, check, expect_object, expect_status, require, skip
from conformance.options import option
from conformance.urns import PATCH_OP

SUITE = "large"
DEFAULT_MEMBERS = 2000
BATCH = 200
"""Members per PATCH: what IdPs send per request (Okta pages group pushes in hundreds)."""
PARALLEL = 8


async def users(context: Context, count: int) -> list[str]:
    """``count`` fixture users, created a few at a time."""
    ids: list[str] = []
    for start in range(0, count, PARALLEL):
        made = await asyncio.gather(
            *(context.fixtures.user() for _ in range(min(PARALLEL, count - start)))
        )
        ids.extend(u["id"] for u in made)
    return ids


def add_members(ids: list[str]) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": i} for i in ids]}],
    }


async def member_ids(context: Context, path: str) -> set[str]:
    response = await context.http.get(path)
    expect_status(response, 200, what=f"GET {path}")
    return {m.get("value") for m in expect_object(response).get("members") or []}


@check(
    SUITE,
    "large.group-members",
    "A group of thousands of members: add, remove, exclude",
    "RFC 7644 §3.5.2, §3.4.2.5",
    "PATCH add/remove of one member lands in a large group; excludedAttributes=members "
    "omits the member list.",
)
async def large_group(context: Context) -> None:
    if not option(context, "large"):
        skip("run with --large")
    size = int(option(context, "large_members", DEFAULT_MEMBERS))
    ids = await users(context, size + 1)
    extra, ids = ids[-1], ids[:-1]
    group = await context.fixtures.group()
    path = f"/Groups/{group['id']}"
    for start in range(0, size, BATCH):
        response = await context.http.patch(path, add_members(ids[start : start + BATCH]))
        expect_status(response, 200, 204, what=f"PATCH add of members {start}..")
    members = await member_ids(context, path)
    require(
        members == set(ids),
        f"after {size} adds the group has {len(members)} members, "
        f"{len(set(ids) - members)} of the added missing",
    )
    response = await context.http.patch(path, add_members([extra]))
    expect_status(response, 200, 204, what="PATCH add of one more member")
    gone = ids[size // 2]
    response = await context.http.patch(
        path,
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": f'members[value eq "{gone}"]'}],
        },
    )
    expect_status(response, 200, 204, what="PATCH remove of one member")
    members = await member_ids(context, path)
    require(extra in members, "the member added to the large group is missing")
    require(gone not in members, "the member removed from the large group is still listed")
    require(
        len(members) == size,
        f"expected {size} members after one add and one remove, got {len(members)}",
    )
    response = await context.http.get(path, params={"excludedAttributes": "members"})
    expect_status(response, 200, what="GET with excludedAttributes=members")
    body = expect_object(response)
    require(
        "members" not in body,
        f"excludedAttributes=members still returned {len(body.get('members') or [])} members",
    )
    require(
        body.get("displayName") == group["displayName"],
        "excludedAttributes=members dropped displayName too",
    )
