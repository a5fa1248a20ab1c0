"""Large groups cost bounded time and memory: what grows with a group is batched or streamed.

Nothing here is timed. Costs are pinned by what they are made of: the largest ``$in`` list any
database command carries (SecantusDB's cost for one is quadratic in its length), the commands
a request sends, and the memory the server holds while it answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import monitoring

from scim_server.storage.database import IN_BATCH, CommandCounter
from tests.support.scim import Scim
from tests.support.urns import BULK_REQUEST, PATCH_OP, USER


class LargestIn:
    """The longest ``$in`` list in any command the server's client started."""

    def __init__(self) -> None:
        self.seen = 0

    def note(self, event: monitoring.CommandStartedEvent) -> None:
        self.seen = max(self.seen, *_in_lengths(dict(event.command)))


def _in_lengths(value: Any) -> Iterator[int]:
    """The length of every ``$in`` list in a command document, at any depth (0 for none)."""
    yield 0
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$in" and isinstance(item, list):
                yield len(item)
            yield from _in_lengths(item)
    elif isinstance(value, list):
        for item in value:
            yield from _in_lengths(item)


@pytest.fixture
def largest_in(monkeypatch: pytest.MonkeyPatch) -> LargestIn:
    """Watches the commands the server's own command listener sees start."""
    largest = LargestIn()
    started = CommandCounter.started

    def noting(counter: CommandCounter, event: monitoring.CommandStartedEvent) -> None:
        largest.note(event)
        started(counter, event)

    monkeypatch.setattr(CommandCounter, "started", noting)
    return largest


async def create_users(scim: Scim, prefix: str, count: int) -> list[str]:
    """``count`` new users, created by Bulk in requests of a thousand; answers their ids."""
    ids: list[str] = []
    for start in range(0, count, 1000):
        operations = [
            {
                "method": "POST",
                "bulkId": f"u{n}",
                "path": "/Users",
                "data": {"schemas": [USER], "userName": f"{prefix}{n}"},
            }
            for n in range(start, min(count, start + 1000))
        ]
        response = await scim.post(
            "/Bulk", json={"schemas": [BULK_REQUEST], "Operations": operations}
        )
        assert response.status == 200, await response.text()
        results = (await response.json())["Operations"]
        assert {result["status"] for result in results} == {"201"}
        ids += [result["location"].rsplit("/", 1)[1] for result in results]
    return ids


def members_patch(op: str, ids: list[str]) -> dict[str, Any]:
    values = [{"value": member} for member in ids]
    return {"schemas": [PATCH_OP], "Operations": [{"op": op, "path": "members", "value": values}]}


async def member_values(scim: Scim, path: str) -> list[str]:
    response = await scim.get(path)
    assert response.status == 200, await response.text()
    return [member["value"] for member in (await response.json()).get("members", [])]


async def test_no_command_carries_more_than_a_batch_of_ids_whatever_a_patch_carries(
    scim: Scim, largest_in: LargestIn
) -> None:
    """A PATCH adding, then removing, 2.5 batches of members, and a group holding them in a
    list page: every lookup of members is cut into ``$in`` lists of at most ``IN_BATCH`` ids,
    so its cost is linear in the members on SecantusDB, and every member still lands."""
    people = await create_users(scim, "member", IN_BATCH * 5 // 2)
    group = await scim.create_group("Everyone")
    path = f"/Groups/{group['id']}"
    largest_in.seen = 0

    added = await scim.patch(path, json=members_patch("add", people))
    assert added.status == 204, await added.text()
    assert sorted(await member_values(scim, path)) == sorted(people)
    listed = await scim.get('/Users?filter=userName sw "member"&count=200')
    assert all(user["groups"] for user in (await listed.json())["Resources"])
    removed = await scim.patch(path, json=members_patch("remove", people[1:]))
    assert removed.status == 204, await removed.text()

    assert await member_values(scim, path) == [people[0]]
    assert 1 < largest_in.seen <= IN_BATCH
