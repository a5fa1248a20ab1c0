"""Rate limits: one bucket per tenant, holding its own limit and the permits it was granted.

Each tenant has one document in ``rate_limits`` (``_id``: the tenant), shared by every worker
process: ``own``, the tenant's own limit in requests per second (None or absent: the
server-wide default), and a GCRA ("generic cell rate algorithm", a token bucket kept as one
time) whose ``tat`` is the time by which every permit granted so far would have been earned
at the tenant's rate. One atomic ``findAndModify`` with an update pipeline reads the limit and
grants a batch of permits, never running ``tat`` more than the burst ahead of now: the limit
costs no read of its own. A TTL index removes a bucket a minute after it is full again, unless
the tenant has a limit of its own. How many to ask for, and when, is the core's
(``scim_server.core.rate_limits``).

The PyPI ``limits`` library was considered: its asynchronous MongoDB storage runs on Motor,
opens a client of its own and costs a command per request, where this layer shares the
server's PyMongo client and grants permits in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo import ASCENDING, IndexModel, ReturnDocument, WriteConcern
from pymongo.errors import DuplicateKeyError

from scim_server.storage.database import Database, translate_driver_errors
from scim_server.storage.errors import StorageError

RATE_LIMITS = "rate_limits"

EXPIRED_AFTER = timedelta(seconds=60)
"""How long a tenant's bucket is kept once it is full again, when it no longer matters: the
TTL monitor runs once a minute."""

TIMEOUT_SECONDS = 1.0
"""The longest a reservation may take: it holds up a request."""

ROUNDING = 1e-6
"""Permits whose time is within this of being earned count as earned: ``tat`` is a float."""

INDEXES = [IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl")]


@dataclass(frozen=True)
class TenantRateLimit:
    """A tenant's own limit, None for the server-wide default."""

    requests_per_second: int | None


@dataclass(frozen=True)
class Grant:
    """What a reservation was granted: ``permits`` of the ``batch`` asked for at the tenant's
    ``rate``, and when the next permit will have been earned (epoch seconds)."""

    permits: int
    batch: int
    rate: int
    next_earned: float


UPSERT_ATTEMPTS = 3
"""Tries of a bucket's update that lost the race to create it (see ``_update``)."""


@translate_driver_errors
class RateLimitRepository:
    def __init__(self, database: Database, timeout: float = TIMEOUT_SECONDS) -> None:
        self.tenants = database.tenants
        self.buckets = database[RATE_LIMITS]
        # A reservation lost in a crash costs one burst at most: it waits for no journal.
        self.reservations = database.db.get_collection(RATE_LIMITS, write_concern=WriteConcern(w=1))
        self.timeout = timeout

    async def ensure_indexes(self) -> None:
        await self.buckets.create_indexes(INDEXES)

    async def limit_of(self, tenant: str) -> TenantRateLimit | None:
        """The tenant's own limit; None when there is no such tenant."""
        if not await self._exists(tenant):
            return None
        bucket = await self.buckets.find_one({"_id": tenant}, {"own": 1})
        return TenantRateLimit(None if bucket is None else bucket.get("own"))

    async def set_limit(self, tenant: str, own: int | None, now: float) -> bool:
        """Give the tenant its own limit, or back the default (None); False when there is no
        such tenant. The bucket of a tenant with a limit of its own never expires."""
        if not await self._exists(tenant):
            return False
        expires = None if own is not None else _date(now) + EXPIRED_AFTER
        await self.buckets.update_one(
            {"_id": tenant},
            {"$set": {"tenant": tenant, "own": own, "expires": expires}},
            upsert=True,
        )
        return True

    async def reserve(
        self, tenant: str, now: float, default: int, burst_seconds: float, batch_share: int
    ) -> Grant:
        """Grant up to a batch of permits: ``1 / batch_share`` of the tenant's rate (its own
        limit, else ``default``), at least one.

        One atomic ``findAndModify`` (an update pipeline, upserted), within ``timeout``
        seconds: ``tat`` starts from now if it is behind, and advances by 1/rate per permit
        granted, as long as it stays within ``burst_seconds`` of now. ``permits`` counts
        every permit granted while the document lives. Two workers creating the document at
        once may collide on ``_id``: the loser's update is tried again, and then finds it.
        """
        horizon = now + burst_seconds
        earned = {
            "$floor": {
                "$add": [{"$multiply": [{"$subtract": [horizon, "$base"]}, "$rate"]}, ROUNDING]
            }
        }
        batch = {"$max": [1, {"$floor": {"$divide": ["$rate", batch_share]}}]}
        pipeline: list[dict[str, Any]] = [
            {
                "$set": {
                    "rate": {"$ifNull": ["$own", default]},
                    "base": {"$max": [{"$ifNull": ["$tat", now]}, now]},
                }
            },
            {"$set": {"batch": batch}},
            {"$set": {"granted": {"$max": [0, {"$min": ["$batch", earned]}]}}},
            {
                "$set": {
                    "tenant": {"$literal": tenant},
                    "tat": {"$add": ["$base", {"$divide": ["$granted", "$rate"]}]},
                    "permits": {"$add": [{"$ifNull": ["$permits", 0]}, "$granted"]},
                    "expires": {
                        "$cond": [
                            {"$eq": [{"$ifNull": ["$own", None]}, None]},
                            _date(horizon) + EXPIRED_AFTER,
                            None,
                        ]
                    },
                }
            },
            {"$unset": "base"},
        ]
        with pymongo.timeout(self.timeout):
            document = await self._update(tenant, pipeline)
        rate = int(document["rate"])
        return Grant(
            permits=int(document["granted"]),
            batch=int(document["batch"]),
            rate=rate,
            next_earned=float(document["tat"]) - burst_seconds + 1 / rate,
        )

    async def delete_tenant(self, tenant: str) -> None:
        await self.buckets.delete_one({"_id": tenant})

    async def _exists(self, tenant: str) -> bool:
        return await self.tenants.find_one({"_id": tenant}, {"_id": 1}) is not None

    async def _update(self, tenant: str, pipeline: list[dict[str, Any]]) -> dict[str, Any]:
        """Apply ``pipeline`` to the tenant's bucket, creating it when there is none.

        Two workers may create the same bucket at once. The one that loses the race is refused
        with a duplicate key (MongoDB), or answered nothing (SecantusDB, whose findAndModify is
        not atomic with its upsert); either way the bucket exists now, so the update is made
        again, on it.
        """
        for _ in range(UPSERT_ATTEMPTS):
            try:
                document = await self.reservations.find_one_and_update(
                    {"_id": tenant},
                    pipeline,
                    {"granted": 1, "batch": 1, "rate": 1, "tat": 1},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue
            if document is not None:
                return dict(document)
        raise StorageError(f"the rate-limit bucket of {tenant!r} could not be written")


def _date(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
