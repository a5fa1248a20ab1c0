"""Large groups cost bounded time and memory: what grows with a group is batched or streamed.

Nothing here is timed. Costs are pinned by what they are made of: the largest ``$in`` list any
database command carries (SecantusDB's cost for one is quadratic in its length), the commands
a request sends, and the memory the server holds while it answers.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from pymongo import monitoring

from scim_server.core import rendering
from scim_server.storage.database import IN_BATCH, CommandCounter
from scim_server.web import responses
from tests.support.scim import Scim, scim_error
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


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 100 members and documents streamed past 16 KiB: what a group of a hundred
    thousand members is to the defaults, a few hundred are to these."""
    monkeypatch.setattr(rendering, "MEMBER_BATCH", 100)
    monkeypatch.setattr(responses, "STREAM_FROM_BYTES", 16 * 1024)


async def group_of(scim: Scim, name: str, members: list[str]) -> str:
    """The path of a new group holding ``members``, added by one PATCH."""
    group = await scim.create_group(name)
    path = f"/Groups/{group['id']}"
    response = await scim.patch(path, json=members_patch("add", members))
    assert response.status == 204, await response.text()
    return path


async def served_peak(scim: Scim, path: str) -> tuple[int, int]:
    """The bytes of ``GET path``'s body and the peak of memory traced while it was served
    (the client reads and drops the body as it comes)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        response = await scim.get(path)
        assert response.status == 200
        size = 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
        return size, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_a_large_group_streams_every_member_in_one_json_document(
    scim: Scim, small_batches: None
) -> None:
    """Past the buffer the answer is chunked, a batch of members at a time, and is still the
    whole group: every member once, in order, with its reference; ETag from the group."""
    people = await create_users(scim, "member", 450)
    path = await group_of(scim, "Everyone", people)

    response = await scim.get(path)

    assert response.status == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in response.headers
    assert response.headers["ETag"] == 'W/"2"'
    group = await response.json()
    assert group["displayName"] == "Everyone" and group["meta"]["version"] == 'W/"2"'
    assert [member["value"] for member in group["members"]] == sorted(people)
    first = group["members"][0]
    assert first["type"] == "User" and first["$ref"].endswith(f"/Users/{first['value']}")
    assert first["display"].startswith("member")
    selected = await (await scim.get(f"{path}?attributes=members.value")).json()
    assert selected["members"] == [{"value": member} for member in sorted(people)]
    assert (await scim.get(path, headers={"If-None-Match": 'W/"2"'})).status == 304


async def test_a_page_of_groups_streams_each_groups_members_in_any_order(
    scim: Scim, small_batches: None
) -> None:
    """A list page holding large groups streams each one's members, in id order (one query
    for the page) and sorted by name (one per group); a small page is answered whole."""
    people = await create_users(scim, "member", 300)
    sizes = {"Alpha": people[:250], "Beta": [], "Gamma": people[100:], "Delta": people[:3]}
    for name, members in sizes.items():
        await group_of(scim, name, members) if members else await scim.create_group(name)

    for query in ("", "?sortBy=displayName", "?sortBy=displayName&sortOrder=descending"):
        response = await scim.get(f"/Groups{query}")
        assert response.status == 200
        assert response.headers["Transfer-Encoding"] == "chunked"
        page = await response.json()
        assert page["totalResults"] == page["itemsPerPage"] == 4
        for group in page["Resources"]:
            values = [member["value"] for member in group.get("members", [])]
            assert values == sorted(sizes[group["displayName"]])
    small = await scim.get('/Groups?filter=displayName eq "Delta"')
    assert "Content-Length" in small.headers
    assert len((await small.json())["Resources"][0]["members"]) == 3


async def test_serving_a_group_holds_the_same_memory_whatever_its_size(
    scim: Scim, small_batches: None
) -> None:
    """Serving 1,000 members holds no more than serving 250: a batch and a buffer, not the
    group (reading it whole held about 1.4 KB a member)."""
    people = await create_users(scim, "member", 1000)
    small_path = await group_of(scim, "Small", people[:250])
    large_path = await group_of(scim, "Large", people)

    small_size, small_peak = await served_peak(scim, small_path)
    large_size, large_peak = await served_peak(scim, large_path)

    assert large_size > 3 * small_size
    assert large_peak < 1.5 * small_peak, (small_peak, large_peak)


async def test_what_refuses_a_large_group_read_is_answered_before_any_member_is_sent(
    scim: Scim, small_batches: None
) -> None:
    """The token and the group are decided before streaming starts: each refusal is a whole
    §3.12 error, never a body cut short."""
    people = await create_users(scim, "member", 300)
    path = await group_of(scim, "Everyone", people)

    await scim_error(await scim.get(f"{path[:-4]}0000"), 404)
    stranger = Scim(scim.client, scim.tenant, "not-a-token")
    await scim_error(await stranger.get(path), 401)


async def test_a_failure_after_the_first_byte_cuts_the_body_short_and_is_logged(
    scim: Scim, small_batches: None, mongo_db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Once the status is sent it cannot change: a member the server cannot render, met
    mid-stream, ends the connection before the document does (the client cannot take it
    for the whole group), and the log says why; no error page is appended to the JSON."""
    people = await create_users(scim, "member", 300)
    path = await group_of(scim, "Everyone", people)
    group_id = path.rsplit("/", 1)[1]
    unreadable = {"tenant": scim.tenant, "group": group_id, "member": "~last", "type": "Robot"}
    await mongo_db["memberships"].insert_one(unreadable)

    response = await scim.get(path)

    assert response.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    assert "the response was cut short" in caplog.text
