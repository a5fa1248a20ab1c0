"""Rate limits: each tenant's configured limit, and the permits it was granted.

A tenant's limit is ``rate_limit`` in its tenant document (requests per second; absent or
None: the server-wide default). Its permits are granted from one document per tenant in
``rate_limits``, shared by every worker process: a GCRA ("generic cell rate algorithm", a
token bucket kept as one time) whose ``tat`` is the time by which every permit granted so far
would have been earned at the tenant's rate. One atomic ``findAndModify`` with an update
pipeline grants up to ``n`` permits, never running ``tat`` more than the burst ahead of now.
A TTL index removes the document a minute after it stops mattering (when the bucket is full
again). When to ask, and for how many, is the core's (``scim_server.core.rate_limits``).

The PyPI ``limits`` library was considered: its asynchronous MongoDB storage runs on Motor,
opens a client of its own and costs a command per request, where this layer shares the
server's PyMongo client and grants permits in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from scim_server.storage.database import Database, translate_driver_errors

RATE_LIMITS = "rate_limits"
LIMIT = "rate_limit"
"""The tenant document's field: the tenant's own limit in requests per second."""

EXPIRED_AFTER = timedelta(seconds=60)
"""How long a tenant's bucket is kept once it is full again, when it no longer matters: the
TTL monitor runs once a minute."""

TIMEOUT_SECONDS = 1.0
"""The longest the limiter's reads and reservations may take: each one holds up a request."""

ROUNDING = 1e-6
"""Permits whose time is within this of being earned count as earned: ``tat`` is a float."""

INDEXES = [IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl")]


@dataclass(frozen=True)
class TenantRateLimit:
    """What a tenant document records: its own limit, None for the server-wide default."""

    requests_per_second: int | None


@dataclass(frozen=True)
class Grant:
    """What a reservation was granted: ``permits``, and when the next one will have been
    earned if that is fewer than asked (epoch seconds)."""

    permits: int
    next_earned: float


@translate_driver_errors
class RateLimitRepository:
    def __init__(self, database: Database, timeout: float = TIMEOUT_SECONDS) -> None:
        self.tenants = database.tenants
        self.buckets = database[RATE_LIMITS]
        self.timeout = timeout

    async def ensure_indexes(self) -> None:
        await self.buckets.create_indexes(INDEXES)

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

    async def reserve(self, tenant: str, now: float, rate: int, burst: int, n: int) -> Grant:
        """Grant up to ``n`` permits at ``rate`` per second with ``burst`` at most at once.

        One atomic ``findAndModify`` (an update pipeline, upserted), within ``timeout``
        seconds: ``tat`` starts from now if it is behind, and advances by 1/rate per permit
        granted, as long as it stays within ``burst / rate`` seconds of now. ``permits``
        counts every permit granted while the document lives. Two workers creating the
        document at once may collide on ``_id``: the loser's update is tried again, and then
        finds the document.
        """
        horizon = now + burst / rate
        earned = {
            "$floor": {"$add": [{"$multiply": [{"$subtract": [horizon, "$base"]}, rate]}, ROUNDING]}
        }
        pipeline: list[dict[str, Any]] = [
            {"$set": {"base": {"$max": [{"$ifNull": ["$tat", now]}, now]}}},
            {"$set": {"granted": {"$max": [0, {"$min": [n, earned]}]}}},
            {
                "$set": {
                    "tenant": {"$literal": tenant},
                    "tat": {"$add": ["$base", {"$divide": ["$granted", rate]}]},
                    "permits": {"$add": [{"$ifNull": ["$permits", 0]}, "$granted"]},
                    "expires": datetime.fromtimestamp(horizon, UTC) + EXPIRED_AFTER,
                }
            },
            {"$unset": "base"},
        ]
        with pymongo.timeout(self.timeout):
            try:
                document = await self._update(tenant, pipeline)
            except DuplicateKeyError:
                document = await self._update(tenant, pipeline)
        return Grant(int(document["granted"]), float(document["tat"]) - (burst - 1) / rate)

    async def delete_tenant(self, tenant: str) -> None:
        await self.buckets.delete_one({"_id": tenant})

    async def _update(self, tenant: str, pipeline: list[dict[str, Any]]) -> dict[str, Any]:
        document = await self.buckets.find_one_and_update(
            {"_id": tenant},
            pipeline,
            {"granted": 1, "tat": 1},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert document is not None  # an upsert answers the document it wrote
        return document
