"""A tenant's provisioning events, read through the admin API once the relay has moved them."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.scim import ADMIN

ROUNDS = 400
"""How many times a reader looks for events it expects before it fails: with 0.025 s between
looks, ten seconds, far beyond the relay's promptness (a write wakes it) on a busy machine."""


async def events_from(
    client: TestClient[Any, Any], tenant: str, sequence: int = 1
) -> list[dict[str, Any]]:
    """Every event of the tenant from ``sequence`` on, as the admin API answers them."""
    found: list[dict[str, Any]] = []
    while True:
        response = await client.get(
            f"/admin/tenants/{tenant}/events",
            params={"from_sequence": sequence, "limit": 1000},
            headers=ADMIN,
        )
        assert response.status == 200, await response.text()
        page = await response.json()
        found += page["events"]
        if not page["events"]:
            return found
        sequence = page["next_sequence"]


async def awaited_events(
    client: TestClient[Any, Any], tenant: str, count: int, sequence: int = 1
) -> list[dict[str, Any]]:
    """The tenant's events from ``sequence`` on, once there are at least ``count`` of them."""
    for _ in range(ROUNDS):
        found = await events_from(client, tenant, sequence)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.025)
    raise AssertionError(f"{count} events expected, {len(found)} came: {found}")


def summary(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event as (sequence, type, resource id, version): what most tests compare."""
    return [
        (e["sequence"], e["type"], e["resource"]["id"], e["resource"]["version"]) for e in events
    ]


def types_of(events: list[dict[str, Any]], resource_id: str) -> list[str]:
    """The types of one resource's events, in sequence order: the order the outbox promises
    (events of different resources may interleave in any order)."""
    return [e["type"] for e in events if e["resource"]["id"] == resource_id]
