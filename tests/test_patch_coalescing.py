"""Writes of one resource queued in one process are written together, each answered as its
own: the state after it, at its own version, with its own event, or its own error.

Each test sends its PATCHes while the user's line is held (``queued_patches``), so that they
are written together whenever each arrived; tests/test_command_counts.py counts what that
costs. Across processes the conditional write stays the guard (tests/test_concurrency.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.events import awaited_events
from tests.support.lines import queued_patches, queued_writes
from tests.support.scim import ADMIN, Scim
from tests.support.urns import PATCH_OP, USER
from tests.test_concurrency import ATTRIBUTES, lookup

WRITERS = 16
ROUNDS = 5


def replace(path: str, value: Any) -> dict[str, Any]:
    """A PatchOp replacing ``path`` with ``value``."""
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": value}]}


def _version(body: dict[str, Any]) -> int:
    return int(body["meta"]["version"].removeprefix('W/"').removesuffix('"'))


async def test_queued_patches_each_answer_the_state_after_it_at_its_own_version(
    scim: Scim,
) -> None:
    """Each answer is the user as its PATCH left it: every version is a step of one change."""
    user = await scim.create_user("bjensen")
    changes = ATTRIBUTES[:WRITERS]

    answers = await queued_patches(
        scim, user["id"], [replace(path, value) for path, value in changes]
    )

    bodies = sorted((body for _, body in answers), key=_version)
    assert [_version(body) for body in bodies] == list(range(2, WRITERS + 2))
    applied: set[str] = set()
    for (_, body), (path, value) in zip(answers, changes, strict=True):
        assert lookup(body, path) == value
    for body in bodies:
        now = {path for path, value in changes if lookup(body, path) == value}
        assert applied < now and len(now) == len(applied) + 1
        applied = now
    final = await (await scim.get(f"/Users/{user['id']}")).json()
    assert _version(final) == WRITERS + 1
    assert all(lookup(final, path) == value for path, value in changes)


async def test_a_failing_patch_among_queued_ones_fails_alone(scim: Scim) -> None:
    user = await scim.create_user("bjensen")
    bodies = [
        replace("nickName", "Babs"),
        replace("active", "maybe"),
        replace("title", "Tour Guide"),
    ]

    answers = await queued_patches(scim, user["id"], bodies)

    assert [status for status, _ in answers] == [200, 400, 200]
    assert _version(answers[2][1]) == 3
    final = await (await scim.get(f"/Users/{user['id']}")).json()
    assert (final["nickName"], final["title"], _version(final)) == ("Babs", "Tour Guide", 3)


async def test_a_rename_to_a_taken_user_name_among_queued_patches_fails_alone(
    scim: Scim,
) -> None:
    """The write of the round that holds the rename is refused by the unique index: the
    round's changes are written again one at a time, so only the rename gets the 409."""
    user = await scim.create_user("bjensen")
    await scim.create_user("grace")
    bodies = [replace("nickName", "Babs"), replace("userName", "grace")]
    bodies.append(replace("title", "Tour Guide"))

    answers = await queued_patches(scim, user["id"], bodies)

    assert [status for status, _ in answers] == [200, 409, 200]
    final = await (await scim.get(f"/Users/{user['id']}")).json()
    assert (final["userName"], final["nickName"], final["title"]) == (
        "bjensen",
        "Babs",
        "Tour Guide",
    )
    assert _version(final) == 3


async def test_queued_patches_with_if_match_on_one_version_let_exactly_one_win(
    scim: Scim,
) -> None:
    user = await scim.create_user("bjensen")
    bodies = [replace("nickName", f"n{n}") for n in range(4)]
    tagged = [{"If-Match": 'W/"1"'}] * 4

    answers = await queued_patches(scim, user["id"], bodies, tagged)

    assert Counter(status for status, _ in answers) == {200: 1, 412: 3}
    assert all(body["status"] == "412" for status, body in answers if status != 200)


async def test_queued_patches_each_emit_their_own_event_at_their_own_version(
    scim: Scim,
) -> None:
    user = await scim.create_user("bjensen")
    changes = ATTRIBUTES[:4]

    await queued_patches(scim, user["id"], [replace(path, value) for path, value in changes])

    events = await awaited_events(scim.client, scim.tenant, 5)
    updates = [e for e in events if e["type"] == "user.updated"]
    assert [e["resource"]["version"] for e in updates] == [2, 3, 4, 5]
    assert [e["attributes"] for e in updates] == [[path] for path, _ in changes]


async def test_a_queued_put_replaces_the_state_the_patches_before_it_left(scim: Scim) -> None:
    """A PUT between PATCHes in one round: the PATCH before it is replaced away, the one after
    it applies to the replacement."""
    user = await scim.create_user("bjensen")
    put = {"schemas": [USER], "userName": "bjensen", "displayName": "Barbara"}
    writes = [("PATCH", replace("nickName", "Babs")), ("PUT", put)]
    writes.append(("PATCH", replace("title", "Tour Guide")))

    answers = await queued_writes(scim, user["id"], writes)

    assert [status for status, _ in answers] == [200, 200, 200]
    assert [_version(body) for _, body in answers] == [2, 3, 4]
    assert answers[0][1]["nickName"] == "Babs"
    assert "nickName" not in answers[1][1] and answers[1][1]["displayName"] == "Barbara"
    final = await (await scim.get(f"/Users/{user['id']}")).json()
    assert ("nickName" not in final, final["displayName"], final["title"]) == (
        True,
        "Barbara",
        "Tour Guide",
    )


async def test_patches_of_one_user_through_two_servers_lose_no_update(
    scim: Scim, aiohttp_client: Any, settings: Settings
) -> None:
    """One server writes the PATCHes waiting in its line together, on the version it read,
    while the other server writes its own: a round that loses is applied again, whole, on what
    the other left, and every PATCH lands at a version of its own."""
    other = Scim(await aiohttp_client(create_app(settings)), scim.tenant, scim.token)
    for round_ in range(ROUNDS):
        user = await scim.create_user(f"bjensen{round_}")
        queued, raced = ATTRIBUTES[: WRITERS // 2], ATTRIBUTES[WRITERS // 2 : WRITERS]
        racing = [
            asyncio.create_task(other.patch(f"/Users/{user['id']}", json=replace(path, value)))
            for path, value in raced
        ]

        answers = await queued_patches(scim, user["id"], [replace(*change) for change in queued])
        answers += [
            (response.status, await response.json()) for response in await asyncio.gather(*racing)
        ]

        assert [status for status, _ in answers] == [200] * WRITERS
        assert sorted(_version(body) for _, body in answers) == list(range(2, WRITERS + 2))
        final = await (await scim.get(f"/Users/{user['id']}")).json()
        assert all(lookup(final, path) == value for path, value in queued + raced)


async def test_a_user_renamed_twice_in_a_round_shows_its_last_name_in_its_group(
    scim: Scim,
) -> None:
    user = await scim.create_user("bjensen")
    group = await scim.create_group("eng", [user["id"]])
    bodies = [replace("displayName", "Babs"), replace("displayName", "Barbara")]
    bodies.append(replace("title", "Tour Guide"))

    answers = await queued_patches(scim, user["id"], bodies)

    assert [status for status, _ in answers] == [200, 200, 200]
    assert [body["displayName"] for _, body in answers] == ["Babs", "Barbara", "Barbara"]
    members = (await (await scim.get(f"/Groups/{group['id']}")).json())["members"]
    assert [member["display"] for member in members] == ["Barbara"]


async def test_a_reactivation_without_a_free_seat_among_queued_patches_fails_alone(
    scim: Scim,
) -> None:
    """Taking a seat ends a round: the seat is asked for on the state that is written, and
    refused to the reactivation alone."""
    limit = {"seats": 1}
    assert (
        await scim.client.put(f"/admin/tenants/{scim.tenant}/seats", json=limit, headers=ADMIN)
    ).ok
    await scim.create_user("ada")
    user = await scim.create_user("bjensen", active=False)
    bodies = [replace("nickName", "Babs"), replace("active", True), replace("title", "Guide")]

    answers = await queued_patches(scim, user["id"], bodies)

    assert [status for status, _ in answers] == [200, 403, 200]
    final = await (await scim.get(f"/Users/{user['id']}")).json()
    assert (final["active"], final["nickName"], final["title"]) == (False, "Babs", "Guide")
    assert _version(final) == 3
