"""The delivery engine: every subscription's events, in sequence order, at least once.

A channel (webhooks: ``core/webhooks.py``; SSF push streams: ``core/ssf/push.py``) says only
how one event becomes its requests (``Channel.request``: none, one, or several that must all
be delivered) and what an answer means (``Channel.outcome``).
Everything else is here and shared: one position per endpoint in its tenant's outbox, a lease
in the database so that one process at a time delivers for an endpoint, strictly in sequence
(an event that keeps failing holds back the endpoint's later ones until it is dead-lettered,
which keeps the order per resource), retries on an exponential back-off with jitter up to a
horizon, the dead letters, the delivery log. Sending is behind ``Sender`` (aiohttp in
``web/outbound.py``), so the core stays free of HTTP. docs/events.md argues the design.
What an administrator reads and retries of an endpoint is the same for every channel too
(``DeliveryRecords``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Final, Protocol

from scim2_models import InvalidValueException, NotFoundException

from scim_server.core.background import stop_requested, stop_task
from scim_server.core.events import Event, Relay
from scim_server.storage.delivery import (
    NEVER,
    DeadLetter,
    DeliveryRepository,
    LoggedAttempt,
    Subscription,
)

log = logging.getLogger(__name__)

TASK: Final = "event-delivery"
POLL_SECONDS: Final = 1.0
"""How often the engine looks for due endpoints no relay woke it for (events another process
moved, events of a tenant whose endpoint another process created, retries whose time came),
and reads which tenants have an enabled endpoint."""
BATCH: Final = 100
"""Events read from the outbox at a time, per endpoint."""
DUE_LIMIT: Final = 1000
LEASE_MARGIN_SECONDS: Final = 5.0
"""How much longer than one attempt's time limit an endpoint's lease lasts: every move renews
it, so it can only expire under a holder that stopped."""
EXCERPT_CHARS: Final = 256


class Outcome(Enum):
    DELIVERED = "delivered"
    FAILED = "failed"
    GONE = "gone"
    """The receiver says the endpoint is gone for good: it is disabled."""
    REJECTED = "rejected"
    """The receiver says it will never accept this request: the event is dead-lettered at
    once, without waiting out the retry horizon, and the endpoint moves on."""


@dataclass(frozen=True)
class Outbound:
    """One request a channel sends for an event."""

    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Answer:
    """What came back from one attempt: a status and the start of the body, or why none came
    (``status`` None: refused target, timeout, connection error)."""

    status: int | None
    excerpt: str
    latency_ms: float


class Sender(Protocol):
    """POSTs a request to a URL, bounded in time and in the answer read; never raises for
    what the network or the receiver did (that is an ``Answer`` without a status)."""

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Answer: ...


class Channel(Protocol):
    name: str

    async def request(
        self, subscription: Subscription, event: Event, now: datetime
    ) -> Sequence[Outbound]:
        """The requests that deliver ``event`` to ``subscription``, in the order they are
        sent; none when the event is nothing to this endpoint (it moves on past it)."""
        ...

    def outcome(self, status: int, body: str) -> Outcome:
        """What the receiver's status (and the start of its answer's body) means."""
        ...


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter: the n-th failure waits ``base * 2**(n-1)`` (at most
    ``cap``) times a random factor in [0.5, 1]; after ``horizon`` of failures, an event is
    dead-lettered. ``timeout`` bounds one attempt."""

    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    horizon_seconds: float = 24 * 3600.0
    timeout_seconds: float = 10.0

    def delay(self, attempts: int) -> float:
        exponential = min(self.cap_seconds, self.base_seconds * 2.0 ** min(attempts - 1, 62))
        return exponential * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Redelivery:
    delivered: tuple[str, ...]
    failed: tuple[str, ...]


class DeliveryEngine:
    """Delivers every enabled subscription's events, in each process that runs one.

    Woken when the relay moves events of a tenant with an endpoint (and polling as a safety
    net), it looks for endpoints that are due, and delivers for each whose lease it takes, in
    a task of its own: at most ``concurrency`` at once, each attempt within the policy's
    timeout, so one tenant's slow receiver holds one slot, never the others' deliveries, and
    never a provisioning request.
    """

    def __init__(
        self,
        repository: DeliveryRepository,
        relay: Relay,
        channels: Mapping[str, Channel],
        sender: Sender,
        policy: RetryPolicy,
        *,
        concurrency: int = 16,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.repository = repository
        self.relay = relay
        self.channels = channels
        self.sender = sender
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.holder = uuid.uuid4().hex
        self._slots = asyncio.Semaphore(concurrency)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._served: set[str] = set()
        """The tenants with an enabled endpoint of a channel served here, as this process
        knows them: read at each poll, and added to at once by this process's own changes
        (``serve``). A move in any other tenant wakes nothing: no endpoint waits for it."""
        self._served_meanwhile: set[str] = set()
        """The tenants ``serve`` added since the read of ``_served`` began, which it may have
        missed."""
        self._read_served_at = 0.0
        relay.subscribe(self.moved)

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.policy.timeout_seconds + LEASE_MARGIN_SECONDS)

    def wake(self) -> None:
        """An endpoint may be due: look now."""
        self._wake.set()

    def moved(self, tenant: str) -> None:
        """The relay moved events of ``tenant`` into the outbox: look now if the tenant has an
        endpoint (as far as this process knows; one another process just created is known at
        the next poll, whose look delivers its events anyway)."""
        if tenant in self._served:
            self.wake()

    def serve(self, tenant: str) -> None:
        """This process created, enabled or changed an endpoint of ``tenant`` (called once the
        change is stored): its moves wake the engine from now on, and it looks now."""
        self._served.add(tenant)
        self._served_meanwhile.add(tenant)
        self.wake()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=TASK)

    async def stop(self) -> None:
        """Stop looking, and stop every delivery under way (its lease expires, or is released
        by the next process to take it: an attempt cut short is made again, at least once)."""
        if self._task is not None:
            task, self._task = self._task, None
            await stop_task(task)
        for running in list(self._running.values()):
            await stop_task(running)

    async def _run(self) -> None:
        # The first read of the tenants served, and the first round, come at once: from then
        # on, their moves wake it. With no endpoint enabled anywhere (as last read, or made
        # here since), a poll costs that read alone.
        while not stop_requested():
            try:
                await self._read_served()
                if self._served:  # else no endpoint is enabled: none can be due
                    await self.round()
            except Exception:  # the database away, say: the next round tries again
                log.exception("event delivery: a round failed; the next one retries")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
            self._wake.clear()

    async def _read_served(self) -> None:
        """Read the tenants served, once a poll at most (however often moves wake it)."""
        now = asyncio.get_running_loop().time()
        if now < self._read_served_at:
            return
        self._served_meanwhile.clear()
        served = await self.repository.tenants_served(self.channels)
        self._served = served | self._served_meanwhile
        self._read_served_at = now + self.poll_seconds

    async def round(self) -> None:
        """Start a delivery for each due endpoint not already delivering in this process."""
        now = datetime.now(UTC)
        for subscription in await self.repository.due(now, self.holder, DUE_LIMIT):
            if subscription.channel not in self.channels:
                continue
            if subscription.id in self._running:
                # Its task may have read its last events just before these came (it holds
                # the lease, or just released it): it looks once more before it ends.
                self._again.add(subscription.id)
                continue
            task = asyncio.create_task(self._guarded(subscription), name=TASK)
            self._running[subscription.id] = task
            task.add_done_callback(self._finished(subscription.id))

    def _finished(self, key: str) -> Callable[[asyncio.Task[None]], None]:
        def forget(_: asyncio.Task[None]) -> None:
            self._running.pop(key, None)

        return forget

    async def _guarded(self, subscription: Subscription) -> None:
        async with self._slots:
            again = True
            while again:
                self._again.discard(subscription.id)
                try:
                    await self.deliver(subscription)
                except Exception:
                    log.exception(
                        "event delivery: endpoint %s of tenant %s failed; it is tried again",
                        subscription.id,
                        subscription.tenant,
                    )
                    return
                again = subscription.id in self._again
                if again:
                    fresh = await self.repository.get(subscription.tenant, subscription.id)
                    if fresh is None:
                        return
                    subscription = fresh

    async def deliver(self, subscription: Subscription) -> None:
        """Under the endpoint's lease, deliver its events from its position, in order, until
        none is left, one fails (and waits for its retry) or the lease is lost."""
        if not await self.relay.read(subscription.tenant, subscription.position, 1):
            return  # nothing to deliver: no lease taken, no write
        now = datetime.now(UTC)
        held = await self.repository.take(subscription, self.holder, now, now + self.lease)
        if held is None:
            return
        try:
            while held is not None and (events := await self._pending(held)):
                held = await self._deliver_batch(held, events)
        finally:
            await self.repository.release(subscription, self.holder)

    async def _pending(self, subscription: Subscription) -> list[Event]:
        if subscription.retry_at > datetime.now(UTC):
            return []
        return await self.relay.read(subscription.tenant, subscription.position, BATCH)

    async def _deliver_batch(
        self, subscription: Subscription, events: list[Event]
    ) -> Subscription | None:
        """Deliver ``events`` in order: the endpoint's state after them, or None to stop."""
        channel = self.channels[subscription.channel]
        for event in events:
            if not subscription.wants(event.type):
                continue  # passed over: the position moves past it with the next move
            now = datetime.now(UTC)
            attempted = await self._attempt(channel, subscription, event, now, leased=True)
            if attempted is None:
                continue  # the channel makes no request of it: passed over, as above
            outcome, answer = attempted
            attempts = subscription.attempts + 1
            if outcome is Outcome.GONE:
                await self._log(subscription, event, attempts, "gone", answer, now)
                reason = f"the receiver answered {answer.status} (gone) at {now.isoformat()}"
                await self.repository.disable(subscription, self.holder, reason)
                return None
            if outcome is Outcome.DELIVERED:
                await self._log(subscription, event, attempts, "delivered", answer, now)
            elif outcome is Outcome.REJECTED:
                await self._log(subscription, event, attempts, "dead", answer, now)
                await self._bury(subscription, event, attempts, answer, now)
            else:
                failing_since = subscription.failing_since or now
                given_up = (now - failing_since).total_seconds() >= self.policy.horizon_seconds
                await self._log(
                    subscription, event, attempts, "dead" if given_up else "failed", answer, now
                )
                if not given_up:
                    delay = self.policy.delay(attempts)
                    retry_at = now + timedelta(seconds=delay)
                    if await self.repository.retry_later(
                        subscription, self.holder, attempts, failing_since, retry_at
                    ):
                        # This process looks again then (the others at their next poll).
                        asyncio.get_running_loop().call_later(delay, self.wake)
                    return None
                await self._bury(subscription, event, attempts, answer, now)
            moved = await self._moved(subscription, event.sequence + 1)
            if moved is None:
                return None
            subscription = moved
        return await self._moved(subscription, events[-1].sequence + 1)

    async def _moved(self, subscription: Subscription, position: int) -> Subscription | None:
        """The endpoint moved on to ``position``, or None if it could not (lease lost,
        replayed meanwhile)."""
        if position == subscription.position:
            return subscription
        now = datetime.now(UTC)
        if not await self.repository.advance(subscription, self.holder, position, now + self.lease):
            return None
        return _replace_position(subscription, position)

    async def _attempt(
        self,
        channel: Channel,
        subscription: Subscription,
        event: Event,
        now: datetime,
        *,
        leased: bool,
    ) -> tuple[Outcome, Answer] | None:
        """Send the event's requests: what came of them, or None if it makes none."""
        outbounds = await channel.request(subscription, event, now)
        if not outbounds:
            return None
        return await self.send(subscription, outbounds, leased=leased)

    async def send(
        self, subscription: Subscription, outbounds: Sequence[Outbound], *, leased: bool = False
    ) -> tuple[Outcome, Answer]:
        """POST each request in order, once: delivered when each is; the first that fails (or
        says the endpoint is gone) ends it, with its answer, so the whole is tried again; one
        that is rejected is passed (the rest are still sent) and makes the whole rejected.
        Under a lease (``leased``), it is renewed before each request after the first, since
        each may take the whole attempt timeout; lost, the rest are not sent."""
        channel = self.channels[subscription.channel]
        rejected: Answer | None = None
        answer = Answer(None, "nothing sent", 0.0)
        for index, outbound in enumerate(outbounds):
            if leased and index and not await self._renewed(subscription):
                return Outcome.FAILED, Answer(None, "the lease was lost", 0.0)
            answer = await self.sender.post(
                subscription.url, outbound.body, outbound.headers, self.policy.timeout_seconds
            )
            if answer.status is None:
                return Outcome.FAILED, answer
            outcome = channel.outcome(answer.status, answer.excerpt)
            if outcome is Outcome.REJECTED:
                rejected = rejected or answer
            elif outcome is not Outcome.DELIVERED:
                return outcome, answer
        return (Outcome.DELIVERED, answer) if rejected is None else (Outcome.REJECTED, rejected)

    async def _renewed(self, subscription: Subscription) -> bool:
        now = datetime.now(UTC)
        return (
            await self.repository.take(subscription, self.holder, now, now + self.lease) is not None
        )

    async def _log(
        self,
        subscription: Subscription,
        event: Event,
        attempt: int,
        outcome: str,
        answer: Answer,
        now: datetime,
    ) -> None:
        await self.repository.record(
            subscription,
            LoggedAttempt(
                at=now,
                event_id=event.id,
                sequence=event.sequence,
                event_type=event.type,
                attempt=attempt,
                outcome=outcome,
                status=answer.status,
                latency_ms=answer.latency_ms,
                excerpt=answer.excerpt[:EXCERPT_CHARS],
            ),
        )

    async def _bury(
        self,
        subscription: Subscription,
        event: Event,
        attempts: int,
        answer: Answer,
        now: datetime,
    ) -> None:
        """Dead-letter ``event`` with its attempts so far and its last answer."""
        letter = DeadLetter(
            event.id,
            event.sequence,
            event.type,
            now,
            attempts,
            answer.status,
            answer.excerpt[:EXCERPT_CHARS],
        )
        await self.repository.bury(subscription, letter)

    async def redeliver(self, subscription: Subscription, event_ids: list[str]) -> Redelivery:
        """One attempt at each of these dead letters, now: a delivered one leaves the dead
        letters, a failed one goes back with one attempt more. Each is taken out before it is
        sent, so two redeliveries of one event never run at once."""
        channel = self.channels[subscription.channel]
        delivered: list[str] = []
        failed: list[str] = []
        for event_id in event_ids:
            stored = await self.repository.event(subscription.tenant, event_id)
            letter = None
            if stored is not None:
                letter = await self.repository.unbury(
                    subscription.tenant, subscription.id, event_id
                )
            if stored is None or letter is None:
                failed.append(event_id)  # no such dead letter, or being redelivered already
                continue
            event = Event.of(stored)
            now = datetime.now(UTC)
            attempted = await self._attempt(channel, subscription, event, now, leased=False)
            # An event that now makes no request (a stream no longer requesting it) is done.
            outcome, answer = attempted or (Outcome.DELIVERED, Answer(None, "nothing to send", 0))
            ok = outcome is Outcome.DELIVERED
            attempts = letter.attempts + 1
            await self._log(
                subscription, event, attempts, "delivered" if ok else "dead", answer, now
            )
            if ok:
                delivered.append(event_id)
            else:
                failed.append(event_id)
                await self._bury(subscription, event, attempts, answer, now)
        return Redelivery(tuple(delivered), tuple(failed))


class DeliveryRecords:
    """What an administrator reads and retries of one channel's endpoints (a webhook, an SSF
    push stream), the same for every channel: the delivery log, the dead letters, and one
    attempt now at dead letters. ``noun`` names an endpoint of the channel in a 404."""

    def __init__(
        self, repository: DeliveryRepository, engine: DeliveryEngine, channel: str, noun: str
    ) -> None:
        self.repository = repository
        self.engine = engine
        self.channel = channel
        self.noun = noun

    async def get(self, tenant: str, subscription_id: str) -> Subscription:
        """The channel's endpoint of that id (404 for none, or another channel's)."""
        found = await self.repository.get(tenant, subscription_id)
        if found is None or found.channel != self.channel:
            raise NotFoundException(
                detail=f"no {self.noun} {subscription_id!r} for tenant {tenant!r}"
            )
        return found

    async def deliveries(
        self, tenant: str, subscription_id: str, limit: int
    ) -> list[LoggedAttempt]:
        """The delivery log: the endpoint's attempts, newest first, at most ``limit``."""
        await self.get(tenant, subscription_id)
        return await self.repository.attempts_of(tenant, subscription_id, limit)

    async def dead_letters(self, tenant: str, subscription_id: str) -> list[DeadLetter]:
        await self.get(tenant, subscription_id)
        return await self.repository.dead_letters(tenant, subscription_id)

    async def redeliver(self, tenant: str, subscription_id: str, event_ids: object) -> Redelivery:
        """One attempt now at these dead letters (null: all of them)."""
        subscription = await self.get(tenant, subscription_id)
        if event_ids is None:
            letters = await self.repository.dead_letters(tenant, subscription_id)
            wanted = [letter.event_id for letter in letters]
        elif isinstance(event_ids, list) and all(isinstance(e, str) for e in event_ids):
            wanted = list(dict.fromkeys(event_ids))
        else:
            raise InvalidValueException(detail="event_ids is a list of event ids, or null for all")
        return await self.engine.redeliver(subscription, wanted)


def _replace_position(subscription: Subscription, position: int) -> Subscription:
    """The endpoint's state once it moved on to ``position``, as ``advance`` stored it."""
    return dataclasses.replace(
        subscription, position=position, attempts=0, failing_since=None, retry_at=NEVER
    )
