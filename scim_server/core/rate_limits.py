"""Per-tenant rate limiting, shared by every worker process through MongoDB.

A tenant may make ``requests_per_second`` SCIM requests per second (its own limit, else the
server-wide default), in bursts of up to that many at once: a token bucket that holds one
second's worth of permits and earns them back at the tenant's rate (kept in MongoDB as a
GCRA with the tenant's own limit, ``scim_server.storage.rate_limits``, so it holds across
workers and a new limit applies at each worker's next reservation). A request that finds
no permit is refused with ``RateLimitExceeded`` (429, ``Retry-After: 1``): the next permit is
never more than a second away.

Asking the database on every request would double the cost of the cheapest ones, so each
worker reserves permits in batches of a tenth of the limit, in one atomic update, and spends
them itself; the database grants only the permits the bucket holds. A worker keeps unspent
permits for later, so whatever the tenants' pace, a reservation serves a tenth of the limit
in requests. The price, and the bound: in any span of T seconds a tenant is admitted at most
``limit * (1 + T)`` requests (the burst and what is earned meanwhile), plus the permits the
workers held when the span began, at most ``workers * batch``. Meanwhile permits one worker
holds are not available to the others. Once a worker learns that the bucket is empty, it
refuses the tenant's requests without asking again until the next permit is earned, so a
client hammering a tenant costs nothing. Times are the workers' wall clocks, which must
agree (one machine, or NTP).

The database unavailable must not change what clients get: the limiter then admits every
request (logging once that it does), and stops asking for a second, while the request
itself finds the database in the state it is in (a 503, usually). A reservation is given at
most a second (``storage.rate_limits.TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from scim_server import metrics
from scim_server.core.errors import RateLimitExceeded
from scim_server.storage.errors import StorageUnavailable
from scim_server.storage.rate_limits import RateLimitRepository, TenantRateLimit

log = logging.getLogger(__name__)

BATCH_SHARE = 10
"""A reservation asks for a tenth of the limit (at least one permit)."""
BURST_SECONDS = 1.0
"""The bucket holds this many seconds' worth of permits: the largest burst."""
SUSPEND_SECONDS = 1.0
"""How long requests are admitted without asking after the database failed to answer."""


@dataclass(frozen=True)
class EffectiveLimit:
    """A tenant's limit as the admin API shows it.

    ``requests_per_second``: its own limit, else the server-wide default (None when that is
    off); ``default``: it has none of its own; ``enforced``: rate limiting is on for the
    server (``SCIM_RATE_LIMIT_PER_SECOND`` is not 0).
    """

    requests_per_second: int | None
    default: bool
    enforced: bool


@dataclass
class _Permits:
    """A worker's permits for one tenant."""

    held: int = 0
    limit: int = 0
    """The tenant's limit as of this worker's last reservation."""
    empty_until: float = 0.0
    """When the tenant's bucket will hold a permit again, as of this worker's last
    reservation: until then, once ``held`` is spent, requests are refused without asking."""


class RateLimits:
    """Admits or refuses each SCIM request of a tenant, and keeps the tenants' limits."""

    def __init__(self, repository: RateLimitRepository, default_per_second: int) -> None:
        self.repository = repository
        self.default_per_second = default_per_second
        self._permits: defaultdict[str, _Permits] = defaultdict(_Permits)
        self._reserving: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._suspended_until = 0.0

    @property
    def enabled(self) -> bool:
        return self.default_per_second > 0

    async def admit(self, tenant: str) -> None:
        """Count one request of ``tenant``, or raise ``RateLimitExceeded`` over its limit.

        A permit this worker holds is spent without anything else: the database is asked
        again once the permits run out.
        """
        if not self.enabled or time.monotonic() < self._suspended_until:
            return
        permits = self._permits[tenant]
        if permits.held == 0:
            try:
                await self._replenish(tenant, permits)
            except StorageUnavailable as error:
                self._suspend(error)
                return
            if permits.held == 0:
                self._refuse(tenant, permits.limit)
        permits.held -= 1

    async def limit_of(self, tenant: str) -> EffectiveLimit | None:
        """The tenant's limit as it applies now; None when there is no such tenant."""
        own = await self.repository.limit_of(tenant)
        return None if own is None else self._effective(own)

    async def set_limit(
        self, tenant: str, requests_per_second: int | None
    ) -> EffectiveLimit | None:
        """Give the tenant its own limit, or back the default (None); None: no such tenant."""
        if not await self.repository.set_limit(tenant, requests_per_second, time.time()):
            return None
        return self._effective(TenantRateLimit(requests_per_second))

    async def delete_tenant(self, tenant: str) -> None:
        self._permits.pop(tenant, None)
        await self.repository.delete_tenant(tenant)

    def _effective(self, own: TenantRateLimit) -> EffectiveLimit:
        default = self.default_per_second or None
        return EffectiveLimit(
            requests_per_second=own.requests_per_second or default,
            default=own.requests_per_second is None,
            enforced=self.enabled,
        )

    async def _replenish(self, tenant: str, permits: _Permits) -> None:
        """Reserve permits, unless the tenant's bucket is known to be empty."""
        async with self._reserving[tenant]:  # one reservation at a time per tenant
            if permits.held == 0 and time.time() >= permits.empty_until:
                grant = await self.repository.reserve(
                    tenant, time.time(), self.default_per_second, BURST_SECONDS, BATCH_SHARE
                )
                permits.held += grant.permits
                permits.limit = grant.rate
                if grant.permits < grant.batch:
                    permits.empty_until = grant.next_earned
                if self._suspended_until:
                    self._suspended_until = 0.0
                    log.info("rate limiting: the database answers again; limits apply again")

    def _suspend(self, error: StorageUnavailable) -> None:
        if not self._suspended_until:
            log.warning(
                "rate limiting: the database is unavailable, requests are admitted "
                "without a limit until it answers: %s",
                error,
            )
        self._suspended_until = time.monotonic() + SUSPEND_SECONDS

    def _refuse(self, tenant: str, limit: int) -> None:
        """The one place a request is refused for its rate, and counted as refused (the tenant
        is proven: only authenticated requests reach the limiter)."""
        metrics.RATE_LIMITED.labels(tenant=tenant).inc()
        raise RateLimitExceeded(tenant=tenant, requests_per_second=limit)
