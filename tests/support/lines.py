"""Writes of a user sent while its line is held in the server's process, so that they all wait
in it together, whenever each arrived, and are written once it is let go."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from scim_server.models import USERS
from scim_server.web.state import SERVICES
from tests.support.scim import Scim


async def queued_patches(
    scim: Scim,
    user_id: str,
    bodies: Sequence[dict[str, Any]],
    headers: Sequence[dict[str, str]] | None = None,
) -> list[tuple[int, dict[str, Any]]]:
    """Each PATCH's status and body, in the order of ``bodies`` (``headers``: each one's)."""
    return await queued_writes(scim, user_id, [("PATCH", body) for body in bodies], headers)


async def queued_writes(
    scim: Scim,
    user_id: str,
    writes: Sequence[tuple[str, dict[str, Any]]],
    headers: Sequence[dict[str, str]] | None = None,
) -> list[tuple[int, dict[str, Any]]]:
    """Each write's status and body, in the order of ``writes`` (method and body each), which is
    also the order they wait in the line."""
    app = scim.client.app
    assert app is not None
    line = app[SERVICES].provisioning.writes._line(USERS, scim.tenant, user_id)
    sent = []
    async with line:  # as a writer of the user in the middle of its round holds it
        for n, (method, body) in enumerate(writes):
            request = scim.request(
                method, f"/Users/{user_id}", json=body, headers=headers[n] if headers else None
            )
            sent.append(asyncio.create_task(request))
            while len(line.waiting) <= n:  # in the line in the order given
                await asyncio.sleep(0.005)
    return [(response.status, await response.json()) for response in await asyncio.gather(*sent)]
