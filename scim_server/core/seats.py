"""Seats: how many active users a tenant may have, and how many hold one now.

A user holds a seat while it is active. ``active`` absent counts as active: RFC 7643
gives the attribute no default, and nothing stops a user created without it from being
used (signing in included), so counting it as inactive would let a tenant fill up with
users nobody counted.

Counting the users on every write would cost a scan per request, so the tenant
document keeps the limit, ``seats`` (None: unlimited), and a counter, ``seats_used``,
that each write moving a user in or out of a seat changes with one atomic
conditional ``update_one``. The order of the steps keeps the counter from ever being
below the number of users holding a seat: a seat is reserved *before* the write that
takes it and released *after* the write that frees it. A crash in between leaks a
seat (one user too many refused, never one too many admitted), which ``recount``
repairs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from scim2_models import NotFoundException, SCIMException

from scim_server.core.errors import SeatLimitExceeded, TooManyConcurrentChanges
from scim_server.storage.errors import WriteRefused
from scim_server.storage.seats import SeatCount, SeatCounter

RESERVE_ATTEMPTS = 20
RECOUNT_ATTEMPTS = 10

T = TypeVar("T")


def holds_seat(attributes: Mapping[str, Any]) -> bool:
    """Whether a user's stored attributes (``r``) hold a seat: ``active`` true or absent."""
    return attributes.get("active") is not False


def seat_change(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> int:
    """+1 when a write makes a user hold a seat, -1 when it stops, 0 otherwise.

    ``before`` is None for a creation, ``after`` None for a deletion.
    """
    held = before is not None and holds_seat(before)
    holds = after is not None and holds_seat(after)
    return int(holds) - int(held)


@dataclass(frozen=True)
class SeatUsage:
    seats: int | None
    used: int

    @property
    def available(self) -> int | None:
        return None if self.seats is None else max(self.seats - self.used, 0)

    @property
    def over(self) -> int:
        """Seats in use beyond the limit, after the limit was lowered below the use."""
        return 0 if self.seats is None else max(self.used - self.seats, 0)


class Seats:
    """The seat limit and counter of each tenant, and the order of steps that keeps it right."""

    def __init__(self, counter: SeatCounter) -> None:
        self.counter = counter

    async def usage(self, tenant: str) -> SeatUsage:
        return await self.of(tenant, await self._read(tenant))

    async def of(self, tenant: str, count: SeatCount) -> SeatUsage:
        """What a tenant records; a tenant from before seats existed is counted first.

        Such a tenant has no counter, and assuming 0 would hand out seats its users hold.
        """
        if count.used is None:
            return await self.recount(tenant)
        return SeatUsage(count.seats, count.used)

    async def set_limit(self, tenant: str, seats: int | None) -> SeatUsage:
        """Set the limit; lower than the seats in use is allowed, and their users keep them."""
        count = await self.counter.set_limit(tenant, seats)
        if count is None:
            raise _unknown(tenant)
        return await self.of(tenant, count)

    async def reserve(self, tenant: str) -> None:
        """Take a seat, or raise ``SeatLimitExceeded`` when none is free.

        The check and the increment are one conditional update, so concurrent
        reservations in any number of processes never take more seats than there are.
        """
        for _ in range(RESERVE_ATTEMPTS):
            if await self.counter.take(tenant):
                return
            usage = await self.usage(tenant)
            if usage.seats is not None and usage.used >= usage.seats:
                raise SeatLimitExceeded(tenant=tenant, seats=usage.seats, used=usage.used)
            # A seat was freed, the limit raised or the counter set up since the update: again.
        raise TooManyConcurrentChanges(
            detail=f"the seats of tenant {tenant!r} are changing too fast; retry"
        )

    async def release(self, tenant: str, n: int = 1) -> None:
        """Give back ``n`` seats; never below zero.

        A release the counter cannot cover follows a recount that ran while a user's
        write was under way; zero is then the closest value to the truth.
        """
        await self.counter.give_back(tenant, n)

    async def around(self, tenant: str, change: int, write: Callable[[], Awaitable[T]]) -> T:
        """Run ``write``, which takes a seat (``change`` 1), frees one (-1) or neither (0).

        Answers what ``write`` answers, which is falsy when it did not land (False or
        None) and truthy when it did (True, or what it wrote). A seat is reserved before
        the write and given back when the write did not land, because it answered
        falsy (it lost an optimistic-concurrency round) or the database refused it. A
        seat is freed only once its write landed. A write whose fate is unknown (a
        dropped connection, a cancelled task) keeps its reservation, since an
        over-count refuses a user too many until ``recount`` while an under-count
        would let one too many in.
        """
        if change > 0:
            await self.reserve(tenant)
        try:
            written = await write()
        except (SCIMException, WriteRefused):
            if change > 0:
                await self.release(tenant)
            raise
        if (change > 0 and not written) or (change < 0 and written):
            await self.release(tenant)
        return written

    async def recount(self, tenant: str) -> SeatUsage:
        """Set the counter to the number of users that hold a seat, counted on an index.

        Why it exists: writes can leave the counter too high, never too low (see
        ``around``): a process that dies between reserving a seat and writing its
        user, or a write whose fate is unknown, leaks a seat, which stays taken until
        this runs. It also sets up the counter of a tenant created before seats existed.

        The count is kept only when no seat was taken or freed while it ran; one write
        that had reserved its seat but not yet stored its user when counted is missed,
        so run it on a quiet tenant for an exact result.
        """
        for _ in range(RECOUNT_ATTEMPTS):
            seen = (await self._read(tenant)).used
            used = await self.counter.count_holders(tenant)
            counted = await self.counter.set_counted(tenant, seen, used)
            if counted is not None and counted.used is not None:
                return SeatUsage(counted.seats, counted.used)
        raise TooManyConcurrentChanges(
            detail=f"the seats of tenant {tenant!r} kept changing during the recount; retry"
        )

    async def _read(self, tenant: str) -> SeatCount:
        count = await self.counter.read(tenant)
        if count is None:
            raise _unknown(tenant)
        return count


def _unknown(tenant: str) -> NotFoundException:
    return NotFoundException(detail=f"no tenant {tenant!r}")
