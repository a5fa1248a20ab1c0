"""Reading MongoDB ``explain()`` output: the tests that prove a query runs on an index."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from pymongo import monitoring

from scim_server.core.events import TASK as RELAY_TASK


def plan_stages(plan: Any, stage: str) -> list[dict[str, Any]]:
    """Every ``stage`` node of an ``explain()`` output, whatever the server nests them in."""
    if isinstance(plan, dict):
        found = [plan] if plan.get("stage") == stage else []
        return found + [node for value in plan.values() for node in plan_stages(value, stage)]
    if isinstance(plan, list):
        return [node for item in plan for node in plan_stages(item, stage)]
    return []


def index_scans(plan: Any) -> list[dict[str, Any]]:
    """The index scans of a plan: empty when the query read the whole collection."""
    return plan_stages(plan, "IXSCAN")


class FindCommands(monitoring.CommandListener):
    """The commands named ``names`` (``find`` by default) that clients created after
    ``monitoring.register`` send, while on.

    What lets a test explain the very query a request ran, rather than a copy of its shape.
    """

    def __init__(self, names: frozenset[str] = frozenset({"find"})) -> None:
        self.names = names
        self.recording = False
        self.seen: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.recording and event.command_name in self.names and not _from_the_events_relay():
            self.seen.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to record."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Nothing to record."""


def _from_the_events_relay() -> bool:
    """Whether the command being started is the events relay's, which moves the events of
    earlier writes in the background while a request runs: not the request's own."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop in this thread
        return False
    return task is not None and task.get_name() == RELAY_TASK


FINDS = FindCommands()
monitoring.register(FINDS)
WRITES = FindCommands(frozenset({"insert", "update", "delete", "findAndModify"}))
monitoring.register(WRITES)


async def recording_finds(request: Awaitable[Any], listener: FindCommands = FINDS) -> Any:
    """The response of ``request``, with the commands it sent recorded by ``listener`` (the
    ``find`` commands, for ``sent_find``, by default)."""
    listener.seen.clear()
    listener.recording = True
    try:
        return await request
    finally:
        listener.recording = False


async def explained_request(
    database: Any, collection: str, request: Awaitable[Any]
) -> dict[str, Any]:
    """The ``executionStats`` explain of the one ``find`` on ``collection`` a request ran.

    The recorded command is run again as it was sent (filter, sort, hint, skip, limit).
    """
    response = await recording_finds(request)
    assert response.status == 200, await response.text()
    (command,) = [command for command in FINDS.seen if command["find"] == collection]
    keep = ("find", "filter", "sort", "hint", "skip", "limit", "projection")
    find = {key: command[key] for key in keep if key in command}
    explained: dict[str, Any] = await database.command("explain", find, verbosity="executionStats")
    return explained


def sent_find(collection: str) -> dict[str, Any]:
    """The one ``find`` on ``collection`` the last ``explained_request`` recorded, as sent."""
    (command,) = [command for command in FINDS.seen if command["find"] == collection]
    return command


def index_names(plan: Any) -> list[str]:
    """The indexes a plan scans, by name."""
    return [str(scan.get("indexName")) for scan in index_scans(plan)]


async def crowd_another_tenant(database: Any, users: int = 2000) -> None:
    """Users of a tenant ``globex``, many more than the tenant under test holds."""
    await database.users.insert_many(
        [
            {"_id": f"g{i:05d}", "tenant": "globex", "c": {"userName": f"g{i:05d}"}}
            for i in range(users)
        ]
    )
