"""Rate limits: each tenant's configured limit, and the permits taken in each window.

A tenant's limit is ``rate_limit`` in its tenant document (requests per second; absent or
None: the server-wide default). The permits taken are counted in ``rate_limits``, one small
document per (tenant, window), shared by every worker process: ``n`` is how many permits
were asked for in that window, raised by one atomic ``findAndModify`` per reservation, and a
TTL index removes the document soon after its window. What a reservation grants, and when
to ask for one, is the core's (``scim_server.core.rate_limits``).

The PyPI ``limits`` library was considered: its asynchronous MongoDB storage runs on Motor,
opens a client of its own and costs a command per request, where this layer shares the
server's PyMongo client and reserves permits in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pymongo
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from scim_server.storage.database import Database, translate_driver_errors

RATE_LIMITS = "rate_limits"
LIMIT = "rate_limit"
"""The tenant document's field: the tenant's own limit in requests per second."""

EXPIRED_AFTER = timedelta(seconds=60)
"""How long a window's count is kept after the window ends: the TTL monitor runs once a
minute, and nobody reads a past window."""

TIMEOUT_SECONDS = 1.0
"""The longest the limiter's reads and reservations may take: each one holds up a request."""

INDEXES = [IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl")]


@dataclass(frozen=True)
class TenantRateLimit:
    """What a tenant document records: its own limit, None for the server-wide default."""

    requests_per_second: int | None


@translate_driver_errors
class RateLimitRepository:
    def __init__(self, database: Database, timeout: float = TIMEOUT_SECONDS) -> None:
        self.tenants = database.tenants
        self.counts = database[RATE_LIMITS]
        self.timeout = timeout

    async def ensure_indexes(self) -> None:
        await self.counts.create_indexes(INDEXES)

    async def limit_of(self, tenant: str) -> TenantRateLimit | None:
        """The tenant's own limit; None when there is no such tenant."""
        with pymongo.timeout(self.timeout):
            document = await self.tenants.find_one({"_id": tenant}, {LIMIT: 1})
        return None if document is None else TenantRateLimit(document.get(LIMIT))

    async def set_limit(self, tenant: str, requests_per_second: int | None) -> bool:
        """Set (None: clear) the tenant's own limit; False when there is no such tenant."""
        result = await self.tenants.update_one(
            {"_id": tenant}, {"$set": {LIMIT: requests_per_second}}
        )
        return result.matched_count == 1

    async def reserve(self, tenant: str, window_start: datetime, window: timedelta, n: int) -> int:
        """Ask for ``n`` permits of the window starting at ``window_start``; answers the
        permits asked for in that window before this request (by every worker).

        One atomic ``findAndModify`` (upsert, ``$inc``), within ``timeout`` seconds. Two
        workers creating the same window's document at once may collide on ``_id``: the
        loser's update is tried again, and then finds the document.
        """
        key = {"_id": f"{tenant}/{window_start.isoformat()}"}
        update = {
            "$inc": {"n": n},
            "$setOnInsert": {"tenant": tenant, "expires": window_start + window + EXPIRED_AFTER},
        }
        with pymongo.timeout(self.timeout):
            try:
                document = await self._increment(key, update)
            except DuplicateKeyError:
                document = await self._increment(key, update)
        return int(document["n"]) - n

    async def delete_tenant(self, tenant: str) -> None:
        await self.counts.delete_many({"tenant": tenant})

    async def _increment(self, key: dict[str, str], update: dict[str, object]) -> dict[str, int]:
        document = await self.counts.find_one_and_update(
            key, update, {"n": 1, "_id": 0}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert document is not None  # an upsert answers the document it wrote
        return document
