"""Per-tenant rate limiting, shared by every worker process through MongoDB.

A tenant may make ``requests_per_second`` SCIM requests in each one-second window of the
clock (its own limit, else the server-wide default). Past that, a request is refused with
``RateLimitExceeded`` (429, ``Retry-After: 1``) until the next window.

The count lives in MongoDB (``scim_server.storage.rate_limits``), so it holds across
workers; asking the database on every request would double the cost of the cheapest ones,
so each worker reserves *permits* in batches of a tenth of the limit, in one atomic update,
and spends them locally. A reservation is granted only what is left under the limit, so the
requests admitted in a window never exceed the limit, whatever the number of workers. The
price is on the other side: permits a worker reserved and did not spend before the window
ended are lost to the others, so a busy window may admit up to ``workers * (batch - 1)``
fewer requests than the limit. Once a worker learns a window is used up, it refuses the
rest of that window without asking again, so a client hammering a tenant costs nothing.

Fixed windows let a client send up to the limit at the end of one window and again at the
start of the next: that burst of twice the limit is the headroom the OpenID IPSIE SCIM
profile's 25 requests per second needs with the default of 100.

The database unavailable must not change what clients get: the limiter then admits every
request (logging once that it does), and stops asking for a second, while the request
itself finds the database in the state it is in (a 503, usually). The limiter's own reads
and reservations are given at most a second (``storage.rate_limits.TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scim_server.core.errors import RateLimitExceeded
from scim_server.storage.errors import StorageUnavailable
from scim_server.storage.rate_limits import RateLimitRepository, TenantRateLimit

log = logging.getLogger(__name__)

WINDOW = timedelta(seconds=1)
BATCH_SHARE = 10
"""A reservation asks for a tenth of the limit (at least one permit)."""
LIMIT_CACHE_SECONDS = 5.0
"""How long a worker keeps a tenant's limit: a change made through another worker applies
within this time."""
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
class _Window:
    """A worker's permits for one tenant in one window."""

    second: int
    permits: int = 0
    exhausted: bool = False
    """The window's limit is used up, by this worker or the others."""


@dataclass(frozen=True)
class _CachedLimit:
    limit: TenantRateLimit | None
    until: float


class RateLimits:
    """Admits or refuses each SCIM request of a tenant, and keeps the tenants' limits."""

    def __init__(
        self,
        repository: RateLimitRepository,
        default_per_second: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.default_per_second = default_per_second
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._reserving: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._limits: dict[str, _CachedLimit] = {}
        self._suspended_until = 0.0

    @property
    def enabled(self) -> bool:
        return self.default_per_second > 0

    async def admit(self, tenant: str) -> None:
        """Count one request of ``tenant``, or raise ``RateLimitExceeded`` over its limit."""
        if not self.enabled or time.monotonic() < self._suspended_until:
            return
        try:
            limit = await self._limit(tenant)
            if limit is None or await self._take(tenant, limit):
                return
        except StorageUnavailable as error:
            self._suspend(error)
            return
        self._refuse(tenant, limit)

    async def limit_of(self, tenant: str) -> EffectiveLimit | None:
        """The tenant's limit as it applies now; None when there is no such tenant."""
        own = await self.repository.limit_of(tenant)
        return None if own is None else self._effective(tenant, own)

    async def set_limit(
        self, tenant: str, requests_per_second: int | None
    ) -> EffectiveLimit | None:
        """Give the tenant its own limit, or back the default (None); None: no such tenant."""
        if not await self.repository.set_limit(tenant, requests_per_second):
            return None
        return self._effective(tenant, TenantRateLimit(requests_per_second))

    async def delete_tenant(self, tenant: str) -> None:
        self._windows.pop(tenant, None)
        self._limits.pop(tenant, None)
        await self.repository.delete_tenant(tenant)

    def _effective(self, tenant: str, own: TenantRateLimit) -> EffectiveLimit:
        """What ``own`` makes of the tenant's limit, which this worker applies from now on."""
        self._limits[tenant] = _CachedLimit(own, time.monotonic() + LIMIT_CACHE_SECONDS)
        default = self.default_per_second or None
        return EffectiveLimit(
            requests_per_second=own.requests_per_second or default,
            default=own.requests_per_second is None,
            enforced=self.enabled,
        )

    async def _limit(self, tenant: str) -> int | None:
        """The requests per second the tenant may make; None when there is no such tenant."""
        cached = self._limits.get(tenant)
        if cached is None or cached.until <= time.monotonic():
            own = await self.repository.limit_of(tenant)
            cached = _CachedLimit(own, time.monotonic() + LIMIT_CACHE_SECONDS)
            self._limits[tenant] = cached
        if cached.limit is None:
            return None
        return cached.limit.requests_per_second or self.default_per_second

    async def _take(self, tenant: str, limit: int) -> bool:
        """Spend one of this worker's permits of the current window, reserving more when
        none is left: False when the window's limit is used up."""
        window = self._window(tenant)
        if window.permits == 0 and not window.exhausted:
            async with self._reserving[tenant]:  # one reservation at a time per tenant
                window = self._window(tenant)
                if window.permits == 0 and not window.exhausted:
                    await self._reserve(tenant, window, limit)
        if window.permits == 0:
            return False
        window.permits -= 1
        return True

    async def _reserve(self, tenant: str, window: _Window, limit: int) -> None:
        batch = max(1, limit // BATCH_SHARE)
        start = datetime.fromtimestamp(window.second, UTC)
        before = await self.repository.reserve(tenant, start, WINDOW, batch)
        granted = max(0, min(batch, limit - before))
        window.permits += granted
        window.exhausted = granted < batch
        if self._suspended_until:
            self._suspended_until = 0.0
            log.info("rate limiting: the database answers again; limits apply again")

    def _window(self, tenant: str) -> _Window:
        second = int(self.clock())
        window = self._windows.get(tenant)
        if window is None or window.second != second:
            window = self._windows[tenant] = _Window(second)
        return window

    def _suspend(self, error: StorageUnavailable) -> None:
        if not self._suspended_until:
            log.warning(
                "rate limiting: the database is unavailable, requests are admitted "
                "without a limit until it answers: %s",
                error,
            )
        self._suspended_until = time.monotonic() + SUSPEND_SECONDS

    def _refuse(self, tenant: str, limit: int) -> None:
        """The one place a request is refused for its rate (where ``scim_rate_limited_total``
        with the tenant as its label is counted)."""
        raise RateLimitExceeded(tenant=tenant, requests_per_second=limit)
