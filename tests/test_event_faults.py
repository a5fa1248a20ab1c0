"""Every acknowledged change has exactly one event, even when the server is SIGKILLed right
after acknowledging it: a real ``scim-server serve`` on its own embedded store is killed
outright after a burst of writes, restarted on the same data directory, and its outbox then
holds each acknowledged change once, numbered with no gap, in order per resource."""

from __future__ import annotations

import asyncio
import importlib.util
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from scim_server.embedded import MODULE
from tests.support.events import ROUNDS
from tests.support.scim import ADMIN_TOKEN
from tests.support.served import WAIT_SECONDS, Server, serving, start_server, stop
from tests.support.urns import GROUP, PATCH_OP

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(MODULE) is None, reason="needs SecantusDB for the embedded store"
)


def _patch(op: str, path: str, value: Any) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": op, "path": path, "value": value}]}


async def _burst(server: Server) -> set[tuple[str, int]]:
    """Concurrent creations, updates, member additions and deletions: each acknowledged
    change as (resource id, version it made); the deletions make the version after the last."""
    base = "/scim/v2/acme"
    created = await asyncio.gather(*(server.create_user(f"user{n}") for n in range(12)))
    assert all(status == 201 for status, _ in created)
    users = [body["id"] for _, body in created]
    status, _, group = await server.request(
        "POST", f"{base}/Groups", {"schemas": [GROUP], "displayName": "eng"}
    )
    assert status == 201
    acknowledged = {(user, 1) for user in users} | {(group["id"], 1)}
    changes = [
        server.request("PATCH", f"{base}/Users/{user}", _patch("replace", "title", "Eng"))
        for user in users[:8]
    ]
    changes.append(
        server.request(
            "PATCH", f"{base}/Groups/{group['id']}", _patch("add", "members", [{"value": users[0]}])
        )
    )
    changes += [server.request("DELETE", f"{base}/Users/{user}") for user in users[8:]]
    answers = await asyncio.gather(*changes)
    # The group PATCH answers 204 (no content by default), as the deletions do.
    assert [status for status, _, _ in answers] == [200] * 8 + [204] * 5
    acknowledged |= {(user, 2) for user in users[:8]}
    acknowledged |= {(group["id"], 2)} | {(user, 2) for user in users[8:]}
    return acknowledged


async def _events(server: Server, expected: int) -> list[dict[str, Any]]:
    """The tenant's events once ``expected`` are in the outbox (the restarted server's safety
    net moves those its killed predecessor left pending, once that one's lease expired)."""
    found: list[dict[str, Any]] = []
    for _ in range(ROUNDS * 2):
        status, _, page = await server.request(
            "GET", "/admin/tenants/acme/events?from_sequence=1&limit=1000", token=ADMIN_TOKEN
        )
        if status == 200:
            found = page["events"]
            if len(found) >= expected:
                return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{expected} events expected, {len(found)} came")


async def test_a_server_killed_right_after_acknowledged_writes_emits_each_once_on_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    async with serving(data) as server:
        acknowledged = await _burst(server)
        store = server.store()
        server.process.kill()  # at once, as the OOM killer would: no clean-up of any kind
        server.process.wait()
        stop(server.process)
        await asyncio.to_thread(store.wait, WAIT_SECONDS)

        server.process, server.url = start_server(data)
        await server.wait_ready()
        events = await _events(server, len(acknowledged))

    assert [event["sequence"] for event in events] == list(range(1, len(acknowledged) + 1))
    changes = [(event["resource"]["id"], event["resource"]["version"]) for event in events]
    assert sorted(changes) == sorted(acknowledged)  # each acknowledged change once, no other
    versions: dict[str, list[int]] = defaultdict(list)
    for resource, version in changes:
        versions[resource].append(version)
    assert all(seen == sorted(seen) for seen in versions.values())
