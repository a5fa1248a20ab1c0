"""Databases for the tests of what the server does when its store fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient

from scim_server.embedded import free_port
from scim_server.storage.database import Database


@asynccontextmanager
async def unreachable_database() -> AsyncIterator[Database]:
    """A Database on a port nobody listens on, failing server selection after 300 ms."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
        serverSelectionTimeoutMS=300,
        connectTimeoutMS=300,
        tz_aware=True,
    )
    try:
        yield Database(client=client, db=client["unreachable"])
    finally:
        await client.close()
