"""Databases for the tests: clients of one database as several server processes hold them,
and one for the tests of what the server does when its store fails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from pymongo import AsyncMongoClient

from scim_server.embedded import free_port
from scim_server.storage.database import Database
from scim_server.storage.tenants import TenantRepository


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


@asynccontextmanager
async def process_clients(uri: str, name: str, count: int) -> AsyncIterator[list[Database]]:
    """``count`` clients of the database ``name``, as that many server processes hold them,
    its indexes built and its tenant ``acme`` created; closed on exit."""
    opened = [Database.connect(uri, name) for _ in range(count)]
    try:
        await opened[0].ensure_indexes()
        await TenantRepository(opened[0]).create("acme", datetime.now(UTC))
        yield opened
    finally:
        for database in opened:
            await database.close()
