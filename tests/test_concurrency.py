"""Concurrent writes to one resource over HTTP: no lost update, and no 412 without If-Match.

Every request goes through the same TestClient at once (``asyncio.gather``), so the
server interleaves their reads and conditional writes on the real database.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from scim_server.core.writes import MAX_WRITE_ATTEMPTS
from tests.support.scim import Scim
from tests.support.urns import ENTERPRISE, GROUP, PATCH_OP

# Twenty distinct single-valued attributes, each set by its own request.
ATTRIBUTES: list[tuple[str, str]] = [
    ("nickName", "Babs"),
    ("title", "Tour Guide"),
    ("displayName", "Barbara Jensen"),
    ("profileUrl", "https://login.example.com/bjensen"),
    ("userType", "Employee"),
    ("preferredLanguage", "en-US"),
    ("locale", "en-US"),
    ("timezone", "America/Los_Angeles"),
    ("externalId", "00ujl29u0le5T6Aj10h7"),
    ("name.givenName", "Barbara"),
    ("name.familyName", "Jensen"),
    ("name.middleName", "Jane"),
    ("name.honorificPrefix", "Ms."),
    ("name.honorificSuffix", "III"),
    ("name.formatted", "Ms. Barbara J Jensen, III"),
    (f"{ENTERPRISE}:employeeNumber", "701984"),
    (f"{ENTERPRISE}:costCenter", "4130"),
    (f"{ENTERPRISE}:organization", "Universal Studios"),
    (f"{ENTERPRISE}:division", "Theme Park"),
    (f"{ENTERPRISE}:department", "Tour Operations"),
]


def lookup(resource: dict[str, Any], path: str) -> Any:
    if path.startswith(ENTERPRISE + ":"):
        return resource.get(ENTERPRISE, {}).get(path[len(ENTERPRISE) + 1 :])
    value: Any = resource
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


async def patch(
    scim: Scim, path: str, *operations: dict[str, Any], headers: dict[str, str] | None = None
) -> int:
    response = await scim.patch(
        path, {"schemas": [PATCH_OP], "Operations": list(operations)}, headers=headers
    )
    await response.read()
    return int(response.status)


async def read(scim: Scim, path: str) -> dict[str, Any]:
    response = await scim.get(path)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def test_concurrent_patches_of_different_attributes_all_take_effect(scim: Scim) -> None:
    user = await scim.create_user("bjensen")

    statuses = await asyncio.gather(
        *(
            patch(scim, f"/Users/{user['id']}", {"op": "replace", "path": path, "value": value})
            for path, value in ATTRIBUTES
        )
    )

    assert Counter(statuses) == {200: len(ATTRIBUTES)}
    after = await read(scim, f"/Users/{user['id']}")
    assert {path: lookup(after, path) for path, _ in ATTRIBUTES} == dict(ATTRIBUTES)
    assert after["meta"]["version"] == f'W/"{len(ATTRIBUTES) + 1}"'


async def test_concurrent_email_adds_all_take_effect(scim: Scim) -> None:
    user = await scim.create_user("bjensen")
    emails = {f"bjensen{i}@example.com" for i in range(20)}

    statuses = await asyncio.gather(
        *(
            patch(
                scim,
                f"/Users/{user['id']}",
                {"op": "add", "path": "emails", "value": [{"value": email, "type": "other"}]},
            )
            for email in emails
        )
    )

    assert Counter(statuses) == {200: 20}
    after = await read(scim, f"/Users/{user['id']}")
    assert sorted(e["value"] for e in after["emails"]) == sorted(emails)


async def test_concurrent_entitlement_adds_all_take_effect(scim: Scim) -> None:
    user = await scim.create_user("bjensen")
    entitlements = {f"entitlement-{i}" for i in range(20)}

    statuses = await asyncio.gather(
        *(
            patch(
                scim,
                f"/Users/{user['id']}",
                {"op": "add", "value": {"entitlements": [{"value": entitlement}]}},
            )
            for entitlement in entitlements
        )
    )

    assert Counter(statuses) == {200: 20}
    after = await read(scim, f"/Users/{user['id']}")
    assert sorted(e["value"] for e in after["entitlements"]) == sorted(entitlements)


async def test_more_concurrent_writers_than_write_attempts_get_no_412(scim: Scim) -> None:
    # Without If-Match a client asked for no precondition, so losing an optimistic race
    # must never surface as 412, however many writers there are.
    writers = MAX_WRITE_ATTEMPTS * 2 + 8
    user = await scim.create_user("bjensen")

    statuses = await asyncio.gather(
        *(
            patch(
                scim,
                f"/Users/{user['id']}",
                {"op": "add", "path": "emails", "value": [{"value": f"e{i}@example.com"}]},
            )
            for i in range(writers)
        )
    )

    assert Counter(statuses) == {200: writers}
    after = await read(scim, f"/Users/{user['id']}")
    assert len(after["emails"]) == writers


async def test_concurrent_puts_and_patches_lose_no_update(scim: Scim) -> None:
    user = await scim.create_user("bjensen", title="Start")
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen",
        "title": "Put",
    }

    async def put() -> int:
        response = await scim.put(f"/Users/{user['id']}", body)
        await response.read()
        return int(response.status)

    statuses = await asyncio.gather(
        *(put() for _ in range(10)),
        *(
            patch(
                scim,
                f"/Users/{user['id']}",
                {"op": "replace", "path": "nickName", "value": f"n{i}"},
            )
            for i in range(10)
        ),
    )

    assert Counter(statuses) == {200: 20}
    after = await read(scim, f"/Users/{user['id']}")
    # Every write was applied in some order: twenty versions after the first.
    assert after["meta"]["version"] == 'W/"21"'
    assert after["title"] == "Put"


async def test_concurrent_if_match_on_the_same_etag_lets_exactly_one_win(scim: Scim) -> None:
    user = await scim.create_user("bjensen")

    statuses = await asyncio.gather(
        *(
            patch(
                scim,
                f"/Users/{user['id']}",
                {"op": "replace", "path": "nickName", "value": f"n{i}"},
                headers={"If-Match": 'W/"1"'},
            )
            for i in range(10)
        )
    )

    assert Counter(statuses) == {200: 1, 412: 9}
    assert (await read(scim, f"/Users/{user['id']}"))["meta"]["version"] == 'W/"2"'


async def test_32_concurrent_member_adds_to_one_group_all_land(scim: Scim) -> None:
    users = [(await scim.create_user(f"member{i}"))["id"] for i in range(32)]
    group = await scim.create_group("Everyone")

    statuses = await asyncio.gather(
        *(
            patch(
                scim,
                f"/Groups/{group['id']}",
                {"op": "add", "path": "members", "value": [{"value": user}]},
            )
            for user in users
        )
    )

    assert Counter(statuses) == {204: 32}
    after = await read(scim, f"/Groups/{group['id']}")
    assert sorted(m["value"] for m in after["members"]) == sorted(users)
    assert after["meta"]["version"] == 'W/"33"'


async def test_concurrent_adds_and_removes_of_different_members(scim: Scim) -> None:
    leaving = [(await scim.create_user(f"leaving{i}"))["id"] for i in range(12)]
    joining = [(await scim.create_user(f"joining{i}"))["id"] for i in range(12)]
    staying = [(await scim.create_user(f"staying{i}"))["id"] for i in range(4)]
    group = await scim.create_group("Churn", members=leaving + staying)

    statuses = await asyncio.gather(
        *(
            patch(
                scim,
                f"/Groups/{group['id']}",
                {"op": "remove", "path": f'members[value eq "{user}"]'},
            )
            for user in leaving
        ),
        *(
            patch(
                scim,
                f"/Groups/{group['id']}",
                {"op": "add", "path": "members", "value": [{"value": user}]},
            )
            for user in joining
        ),
    )

    assert Counter(statuses) == {204: 24}
    after = await read(scim, f"/Groups/{group['id']}")
    assert sorted(m["value"] for m in after["members"]) == sorted(joining + staying)


async def test_concurrent_rename_and_member_adds_keep_both(scim: Scim) -> None:
    users = [(await scim.create_user(f"member{i}"))["id"] for i in range(8)]
    group = await scim.create_group("Before")

    statuses = await asyncio.gather(
        # Okta sends a rename with every membership update (docs/idp-traffic.md).
        *(
            patch(
                scim,
                f"/Groups/{group['id']}",
                {"op": "replace", "value": {"id": group["id"], "displayName": "After"}},
            )
            for _ in range(8)
        ),
        *(
            patch(
                scim,
                f"/Groups/{group['id']}",
                {"op": "add", "path": "members", "value": [{"value": user}]},
            )
            for user in users
        ),
    )

    assert Counter(statuses) == {204: 16}
    after = await read(scim, f"/Groups/{group['id']}")
    assert after["displayName"] == "After"
    assert sorted(m["value"] for m in after["members"]) == sorted(users)


async def test_member_of_hint_matches_the_memberships_after_concurrent_adds_and_removes(
    scim: Scim,
    mongo_db: Any,
) -> None:
    """``gm`` may overcount but must never undercount, or User.groups would hide a group."""
    user = await scim.create_user("hinted")
    groups = [await scim.create_group(f"g{i}") for i in range(6)]

    async def change(group: dict[str, Any], op: str) -> None:
        operation: dict[str, Any] = (
            {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
            if op == "add"
            else {"op": "remove", "path": f'members[value eq "{user["id"]}"]'}
        )
        response = await scim.patch(
            f"/Groups/{group['id']}",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [operation],
            },
        )
        assert response.status == 204, await response.text()

    # The same membership added twice at once, and removed twice at once.
    await asyncio.gather(*[change(g, "add") for g in groups for _ in range(2)])
    stored = await mongo_db.users.find_one({"_id": user["id"]})
    assert stored["gm"] == 6
    await asyncio.gather(*[change(g, "remove") for g in groups[:4] for _ in range(2)])
    stored = await mongo_db.users.find_one({"_id": user["id"]})
    assert stored["gm"] == 2
    fetched = await (await scim.get(f"/Users/{user['id']}")).json()
    assert {g["value"] for g in fetched["groups"]} == {g["id"] for g in groups[4:]}


async def test_concurrent_puts_of_a_groups_members_leave_one_puts_members(scim: Scim) -> None:
    """Each PUT sets the members to exactly its own: run together, the group ends with one
    PUT's members, never the union of what each found absent (each replacement reads the
    members, then removes and adds the differences: two at once both read the old set)."""
    users = [(await scim.create_user(f"member{i}"))["id"] for i in range(8)]
    group = await scim.create_group("Everyone")
    path = f"/Groups/{group['id']}"
    for _ in range(3):
        responses = await asyncio.gather(
            *(
                scim.put(
                    path,
                    {"schemas": [GROUP], "displayName": "Everyone", "members": [{"value": user}]},
                )
                for user in users
            )
        )
        assert [response.status for response in responses] == [200] * len(users)
        after = await read(scim, path)
        assert len(after.get("members") or []) == 1, after.get("members")
