"""A client of a test's own whose command listener records the commands of one name it starts:
how the group commit and group read tests see what went to the store together."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from pymongo import AsyncMongoClient, monitoring


class Started(monitoring.CommandListener):
    """What each started command named ``command_name`` carried (``recorded`` of its body),
    in order, in ``seen``; ``sending`` is set at each start."""

    def __init__(self, command_name: str, recorded: Callable[[Mapping[str, Any]], Any]) -> None:
        self.command_name = command_name
        self.recorded = recorded
        self.seen: list[Any] = []
        self.sending = asyncio.Event()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == self.command_name:
            self.seen.append(self.recorded(event.command))
            self.sending.set()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Only starts are recorded."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Only starts are recorded."""


@contextlib.asynccontextmanager
async def recording_client(
    mongodb_uri: str, database_name: str, listener: Started
) -> AsyncIterator[AsyncMongoClient[Any]]:
    """A client of its own, recording through ``listener`` (the server's is not needed); its
    database is dropped at the end."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri, event_listeners=[listener])
    try:
        yield client
    finally:
        await client.drop_database(database_name)
        await client.close()
