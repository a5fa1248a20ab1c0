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

An unlimited tenant keeps no counter: such a write only reads the tenant (a read, where
the counter cost a journaled write; a recent reading serves, ``UNLIMITED_READING_SECONDS``),
and its users are counted when asked. The counter
starts when a first limit is set, from a count behind a fence. A write that read the
tenant unlimited may still be in flight then, and a count that ran before it landed
would miss it: so the limit is set with the fence (``seats_fence``, no counter), writes
that find the fence up wait for the count, and the count runs ``FENCE_SECONDS`` later.
By then every write that read the tenant unlimited has landed, or is one that took
longer than ``LEASE_SECONDS`` from its read to its landing, which checks the tenant
again once landed and counts its own seat if it landed after the count started
(``_late``: the tenant document keeps when that was, ``seats_counted_at``). The same
holds for a write whose reservation went with the counter when the limit was removed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from scim2_models import NotFoundException, SCIMException

from scim_server.core.errors import SeatLimitExceeded, TooManyConcurrentChanges
from scim_server.core.single_flight import SingleFlight
from scim_server.storage.errors import WriteRefused
from scim_server.storage.seats import SeatCount, SeatCounter

RESERVE_ATTEMPTS = 20
RECOUNT_ATTEMPTS = 10

LEASE_SECONDS = 0.5
"""How long after reading a tenant unlimited a write may land without checking again."""
FENCE_SECONDS = 1.0
"""How long after a first limit is set its count waits: longer than ``LEASE_SECONDS``."""
UNLIMITED_READING_SECONDS = LEASE_SECONDS / 2
"""How long a reading of a tenant as unlimited serves this process's later writes.

Read once per write, the tenant was one of a create's two round trips. A write served by an
older reading counts its lease from that reading (``Reservation.since``), so the fence holds
as if it had read the tenant then: a first limit answers ``FENCE_SECONDS`` after its fence
was raised, when every reading made before is long past this age. Half the lease leaves a
write served by the oldest reading half the lease to land before it must check again."""

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
        self._limited: set[str] = set()
        """Tenants this process last found with a limit: their writes take a seat at once,
        since the conditional take is itself the check (and finds a limit removed). A tenant
        without one is read again once its last reading is ``UNLIMITED_READING_SECONDS`` old:
        ``LEASE_SECONDS`` counts from that read."""
        self._unlimited: dict[str, _Moment] = {}
        """When this process last read each tenant unlimited (just before the read)."""
        self._reading: SingleFlight[str, _Moment | None] = SingleFlight()
        """The reading of each tenant under way, which the writes wanting one meanwhile share."""

    async def usage(self, tenant: str) -> SeatUsage:
        return await self.of(tenant, await self._read(tenant))

    async def of(self, tenant: str, count: SeatCount) -> SeatUsage:
        """What a tenant records; one that keeps no counter (yet) is counted.

        Assuming 0 for a tenant from before seats existed would hand out seats its users hold.
        """
        if count.seats is None or count.used is None:
            return await self._count_first(tenant)
        return SeatUsage(count.seats, count.used)

    async def _count_first(self, tenant: str) -> SeatUsage:
        """The usage of a tenant that keeps no counter, counted; a limited one keeps the count.

        Many writers may find a first limit's fence up at once: the first count stored is
        the one they all use, since counting again while seats are being taken could miss
        a reserved seat whose user is not stored yet.
        """
        for _ in range(RECOUNT_ATTEMPTS):
            seen = await self._read(tenant)
            if seen.seats is not None and seen.used is not None:
                return SeatUsage(seen.seats, seen.used)
            usage = await self._count(tenant, seen)
            if usage is not None:
                return usage
        raise TooManyConcurrentChanges(
            detail=f"the seats of tenant {tenant!r} kept changing during the count; retry"
        )

    async def _count(self, tenant: str, seen: SeatCount) -> SeatUsage | None:
        """Count the users holding a seat, once the fence is down, and store it if the tenant
        still reads ``seen`` (an unlimited tenant stores nothing); None when it changed."""
        if seen.fence is not None:
            await _fence_down(seen.fence)
        started = datetime.now(UTC)
        used = await self.counter.count_holders(tenant)
        if seen.seats is None:
            return SeatUsage(None, used)
        counted = await self.counter.set_counted(tenant, seen.used, used, started)
        if counted is None or counted.used is None:
            return None
        return SeatUsage(counted.seats, counted.used)

    async def set_limit(self, tenant: str, seats: int | None) -> SeatUsage:
        """Set the limit; lower than the seats in use is allowed, and their users keep them.

        A first limit is counted behind the fence (module docstring), so it answers only
        after ``FENCE_SECONDS``.
        """
        self.forget(tenant)
        count = await self.counter.set_limit(tenant, seats, datetime.now(UTC))
        if count is None:
            raise _unknown(tenant)
        return await self.of(tenant, count)

    async def reserve(self, tenant: str, wanted: int = 1) -> Reservation:
        """Take seats for ``wanted`` writes that each take one: as many as are free.

        The check and the increment are one conditional update, of all the seats asked or
        none, so concurrent reservations in any number of processes never take more seats
        than there are; when fewer are free, as many as were free are asked next. An
        unlimited tenant is only read (module docstring): every write may go ahead, and
        nothing is counted; so may they all on a tenant that turned unlimited meanwhile.
        The writes beyond the seats taken are refused with the ``SeatLimitExceeded`` the
        reservation carries.
        """
        if tenant not in self._limited:
            read = await self._unlimited_since(tenant)
            if read is not None:
                return Reservation(limited=False, granted=wanted, since=read)
        asked, refusal = wanted, None
        for _ in range(RESERVE_ATTEMPTS):
            moment = _Moment.now()
            if await self.counter.take(tenant, asked):
                return Reservation(limited=True, granted=asked, since=moment, refusal=refusal)
            usage = await self.usage(tenant)
            if usage.seats is None:
                self._limited.discard(tenant)
                return Reservation(limited=False, granted=wanted, since=moment)
            if usage.available == 0:
                refusal = SeatLimitExceeded(tenant=tenant, seats=usage.seats, used=usage.used)
                return Reservation(limited=True, granted=0, since=moment, refusal=refusal)
            # Fewer seats are free than wanted (the first ones may have them), or one was freed,
            # the limit raised or the counter set up since the update: again.
            asked = min(wanted, usage.seats - usage.used)
            refusal = (
                None
                if asked == wanted
                else SeatLimitExceeded(tenant=tenant, seats=usage.seats, used=usage.seats)
            )
        raise TooManyConcurrentChanges(
            detail=f"the seats of tenant {tenant!r} are changing too fast; retry"
        )

    async def settle(self, tenant: str, reservation: Reservation, landed: int) -> None:
        """After the writes a reservation let go ahead, ``landed`` of which landed.

        The seats of those that did not land are given back; when they landed past the
        lease, a count that started meanwhile may have missed them (``_late``).
        """
        if reservation.limited and landed < reservation.granted:
            await self.release(tenant, reservation.granted - landed)
        since = reservation.since
        if landed and time.monotonic() - since.monotonic > LEASE_SECONDS:
            await self._late(tenant, since.wall, landed=datetime.now(UTC), seats=landed)

    async def release(self, tenant: str, n: int = 1) -> None:
        """Give back ``n`` seats; never below zero.

        A release the counter cannot cover follows a recount that ran while a user's
        write was under way; zero is then the closest value to the truth.
        """
        await self.counter.give_back(tenant, n)

    async def around(
        self,
        tenant: str,
        change: int,
        write: Callable[[], Awaitable[T]],
        *,
        limited: bool | None = None,
    ) -> T:
        """Run ``write``, which takes a seat (``change`` 1), frees one (-1) or neither (0).

        Answers what ``write`` answers, which is falsy when it did not land (False or
        None) and truthy when it did (True, or what it wrote). On an unlimited tenant
        nothing is counted (module docstring). Otherwise a seat is reserved before
        the write and given back when the write did not land, because it answered
        falsy (it lost an optimistic-concurrency round) or the database refused it. A
        seat is freed only once its write landed. A write whose fate is unknown (a
        dropped connection, a cancelled task) keeps its reservation, since an
        over-count refuses a user too many until ``recount`` while an under-count
        would let one too many in. ``limited``: whether the tenant has a limit, read with
        what the write changes, which a write freeing a seat then needs no reading for.
        """
        if change == 0:
            return await write()
        if change < 0:
            if limited is None:
                limited = tenant in self._limited or await self._unlimited_since(tenant) is None
            else:
                self._joined(tenant, limited)
            written = await write()
            if limited and written:
                await self.release(tenant)
            return written
        reservation = await self.reserve(tenant)
        if reservation.refusal is not None:
            raise reservation.refusal
        try:
            written = await write()
        except (SCIMException, WriteRefused):
            await self.settle(tenant, reservation, landed=0)
            raise
        await self.settle(tenant, reservation, landed=1 if written else 0)
        return written

    def _joined(self, tenant: str, limited: bool) -> None:
        """Learn from a reading of the tenant's limit made with a write's own read: a limit is
        remembered as ``_read_unlimited`` remembers one; none forgets a limit remembered, so
        that the next write taking a seat reads the tenant again (there is no moment to lease
        from)."""
        if limited:
            self._found_limited(tenant)
        elif tenant in self._limited:
            self.forget(tenant)

    def _found_limited(self, tenant: str) -> None:
        """Remember a tenant read with a limit, and nothing else of it."""
        self.forget(tenant)
        self._limited.add(tenant)

    def forget(self, tenant: str) -> None:
        """Drop what this process remembers of a tenant's limit (set anew, or the tenant gone);
        the writes that want a reading from now on make a new one."""
        self._unlimited.pop(tenant, None)
        self._reading.detach(tenant)
        self._limited.discard(tenant)

    async def _unlimited_since(self, tenant: str) -> _Moment | None:
        """When the tenant was read without a seat limit: a recent reading, else one made now;
        None when it has a limit (remembered).

        The writes that want a new reading while one is under way wait for that one (its
        moment, taken before any of them asked, is a lease they may all hold): a burst of
        writes after a reading expired reads the tenant once. The read runs on in its own
        task, so a write cancelled meanwhile does not fail the others.
        """
        reading = self._unlimited.get(tenant)
        if reading is not None and time.monotonic() - reading.monotonic < UNLIMITED_READING_SECONDS:
            return reading
        return await self._reading.read(tenant, partial(self._read_unlimited, tenant))

    async def _read_unlimited(self, tenant: str) -> _Moment | None:
        """Read the tenant: the moment just before, when it has no seat limit (remembered)."""
        moment = _Moment.now()
        if (await self._read(tenant)).seats is None:
            self._unlimited[tenant] = moment
            return moment
        self._found_limited(tenant)
        return None

    async def _late(self, tenant: str, began: datetime, landed: datetime, seats: int) -> None:
        """Count the ``seats`` of writes that landed past the lease, if a count missed them.

        A count that started the tenant's counter between the write's beginning (its read
        of an unlimited tenant, or its reservation) and its landing may have missed it: a
        write that read the tenant unlimited, or whose reservation went with the counter
        when the limit was removed. Such a write counts
        its seat itself once that count is stored. (A seat a slow write freed is not given
        back: a count that saw the user still holding it errs on the safe side.)
        """
        count = await self._read(tenant)
        if count.seats is not None and count.used is None:
            await self._count_first(tenant)
            count = await self._read(tenant)
        counted_at = count.counted_at
        if count.used is not None and counted_at is not None and began <= counted_at <= landed:
            await self.counter.add_taken(tenant, seats)

    async def recount(self, tenant: str) -> SeatUsage:
        """Set the counter to the number of users that hold a seat, counted on an index.

        Why it exists: writes can leave the counter too high, never too low (see
        ``around``): a process that dies between reserving a seat and writing its
        user, or a write whose fate is unknown, leaks a seat, which stays taken until
        this runs. It also counts a first limit once its fence is down, a tenant created
        before seats existed, and an unlimited tenant, which keeps no counter (nothing is
        stored for it).

        The count is kept only when no seat was taken or freed while it ran; one write
        that had reserved its seat but not yet stored its user when counted is missed,
        so run it on a quiet tenant for an exact result.
        """
        for _ in range(RECOUNT_ATTEMPTS):
            usage = await self._count(tenant, await self._read(tenant))
            if usage is not None:
                return usage
        raise TooManyConcurrentChanges(
            detail=f"the seats of tenant {tenant!r} kept changing during the recount; retry"
        )

    async def _read(self, tenant: str) -> SeatCount:
        count = await self.counter.read(tenant)
        if count is None:
            raise _unknown(tenant)
        return count


@dataclass(frozen=True)
class Reservation:
    """The seats ``Seats.reserve`` took for writes that each take one."""

    limited: bool
    """Whether the tenant has a limit: only then were seats counted (and are given back)."""
    granted: int
    """How many of the writes, the first ones, may go ahead: all on an unlimited tenant."""
    since: _Moment
    """Just before the seats were taken, or the tenant read unlimited (see ``_late``)."""
    refusal: SeatLimitExceeded | None = None
    """Why the writes beyond ``granted`` may not."""


@dataclass(frozen=True)
class _Moment:
    """A moment by this process's monotonic clock (for durations) and by the wall clock (to
    compare with what another process stored)."""

    monotonic: float
    wall: datetime

    @classmethod
    def now(cls) -> _Moment:
        return cls(time.monotonic(), datetime.now(UTC))


async def _fence_down(raised: datetime) -> None:
    """Wait until ``FENCE_SECONDS`` after the fence was raised (by any process's clock)."""
    remaining = FENCE_SECONDS - (datetime.now(UTC) - raised).total_seconds()
    await asyncio.sleep(min(max(remaining, 0), FENCE_SECONDS))


def _unknown(tenant: str) -> NotFoundException:
    return NotFoundException(detail=f"no tenant {tenant!r}")
