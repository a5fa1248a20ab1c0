"""Delivery of provisioning events to subscribers: subscriptions, their leases, the log, the
dead letters.

A subscription is one endpoint of one channel (a webhook, or an SSF push stream under the
stream's id) for one tenant. It holds its position in the tenant's outbox (the sequence of
the next event to deliver), its retry state (failed attempts on that event, since when, not
before when to try again) and a lease
(``holder``, ``until``): the process that holds it is the only one delivering for the
endpoint. Every write that moves the position is conditioned on the lease and on the
position it read, so a process that lost its lease (or whose endpoint was replayed
meanwhile) moves nothing. docs/events.md ("Webhooks") argues the design; this module is the
one that names the stored fields.

Collections: ``subscriptions`` (``_id`` the subscription id), ``delivery_log`` (one document
per attempt, expired by a TTL index on ``at``), ``dead_letters`` (``_id`` subscription/event).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, WriteConcern
from pymongo.errors import DuplicateKeyError

from scim_server.storage.database import (
    Database,
    Document,
    ensure_ttl_index,
    translate_driver_errors,
)
from scim_server.storage.events import OUTBOX, StoredEvent, stored_event

SUBSCRIPTIONS: Final = "subscriptions"
DELIVERY_LOG: Final = "delivery_log"
DEAD_LETTERS: Final = "dead_letters"
LOG_TTL_INDEX: Final = "at_ttl"
NEVER: Final = datetime(1970, 1, 1, tzinfo=UTC)
"""The ``retry_at`` of a subscription that may be tried at once, and the ``until`` of a free
lease."""

INDEXES: Final[dict[str, list[IndexModel]]] = {
    SUBSCRIPTIONS: [
        IndexModel([("tenant", ASCENDING), ("_id", ASCENDING)], name="tenant_id"),
        # The engine's look for endpoints that are due, across tenants (as the relay's safety
        # net looks for stranded events), and for the tenants with an enabled endpoint: the
        # one subscription index not led by tenant.
        IndexModel([("enabled", ASCENDING), ("retry_at", ASCENDING)], name="enabled_due"),
    ],
    DELIVERY_LOG: [
        IndexModel(
            [("tenant", ASCENDING), ("subscription", ASCENDING), ("at", DESCENDING)],
            name="tenant_subscription_at",
        )
    ],
    DEAD_LETTERS: [
        IndexModel(
            [("tenant", ASCENDING), ("subscription", ASCENDING), ("sequence", ASCENDING)],
            name="tenant_subscription_sequence",
        )
    ],
    # Replay by time: the tenant's first event at or after a time.
    OUTBOX: [IndexModel([("tenant", ASCENDING), ("time", ASCENDING)], name="tenant_time")],
}


@dataclass(frozen=True)
class Subscription:
    """One endpoint of one channel, with where its delivery stands."""

    id: str
    tenant: str
    channel: str
    url: str
    types: tuple[str, ...] | None
    """The event types delivered; None: all."""
    enabled: bool
    created: datetime
    position: int
    """The sequence number of the next event to deliver (those before are done)."""
    attempts: int
    """Failed attempts at the event at ``position`` so far."""
    failing_since: datetime | None
    retry_at: datetime
    disabled_reason: str | None
    secret: str
    previous_secret: str | None
    """The secret before the last rotation, still signing until ``previous_until``."""
    previous_until: datetime | None

    def wants(self, event_type: str) -> bool:
        return self.types is None or event_type in self.types

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The current secret, and the previous one during its grace period."""
        if self.previous_secret is not None and self.previous_until and now < self.previous_until:
            return (self.secret, self.previous_secret)
        return (self.secret,)


@dataclass(frozen=True)
class LoggedAttempt:
    """One delivery attempt, as the delivery log keeps it."""

    at: datetime
    event_id: str
    sequence: int
    event_type: str
    attempt: int
    outcome: str
    """``delivered``, ``failed``, ``gone`` (the endpoint is disabled) or ``dead`` (given up)."""
    status: int | None
    latency_ms: float
    excerpt: str
    """The start of the response's body, or what went wrong when there was no response."""


@dataclass(frozen=True)
class DeadLetter:
    """An event given up on after the retry horizon, kept until redelivered."""

    event_id: str
    sequence: int
    event_type: str
    at: datetime
    attempts: int
    last_status: int | None
    last_excerpt: str


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _subscription(document: Mapping[str, Any]) -> Subscription:
    types = document.get("types")
    return Subscription(
        id=str(document["_id"]),
        tenant=str(document["tenant"]),
        channel=str(document["channel"]),
        url=str(document["url"]),
        types=None if types is None else tuple(types),
        enabled=bool(document["enabled"]),
        created=document["created"],
        position=int(document["position"]),
        attempts=int(document.get("attempts", 0)),
        failing_since=document.get("failing_since"),
        retry_at=document.get("retry_at", NEVER),
        disabled_reason=document.get("disabled_reason"),
        secret=str(document["secret"]),
        previous_secret=document.get("previous_secret"),
        previous_until=document.get("previous_until"),
    )


def _logged(document: Mapping[str, Any]) -> LoggedAttempt:
    return LoggedAttempt(
        at=document["at"],
        event_id=str(document["event"]),
        sequence=int(document["sequence"]),
        event_type=str(document["type"]),
        attempt=int(document["attempt"]),
        outcome=str(document["outcome"]),
        status=document.get("status"),
        latency_ms=float(document["latency_ms"]),
        excerpt=str(document.get("excerpt", "")),
    )


def _dead_letter(document: Mapping[str, Any]) -> DeadLetter:
    return DeadLetter(
        event_id=str(document["event"]),
        sequence=int(document["sequence"]),
        event_type=str(document["type"]),
        at=document["at"],
        attempts=int(document["attempts"]),
        last_status=document.get("status"),
        last_excerpt=str(document.get("excerpt", "")),
    )


FRESH: Final[Document] = {"attempts": 0, "failing_since": None, "retry_at": NEVER}
"""The retry state of an endpoint whose next event has not failed yet."""


@translate_driver_errors
class DeliveryRepository:
    """Every tenant's subscriptions, their delivery log and dead letters."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.subscriptions = database[SUBSCRIPTIONS]
        self._moves = self.subscriptions.with_options(write_concern=WriteConcern(w=1))
        self.log = database[DELIVERY_LOG].with_options(write_concern=WriteConcern(w=1))
        self.dead = database[DEAD_LETTERS]
        self.outbox = database[OUTBOX]

    async def ensure_indexes(self, log_ttl_seconds: int) -> None:
        for collection, indexes in INDEXES.items():
            await self.database[collection].create_indexes(indexes)
        await ensure_ttl_index(self.log, LOG_TTL_INDEX, log_ttl_seconds)

    # -- subscriptions, as the admin API changes them ---------------------------------------

    async def create(
        self,
        tenant: str,
        channel: str,
        url: str,
        types: Sequence[str] | None,
        position: int,
        now: datetime,
        subscription_id: str | None = None,
    ) -> Subscription:
        """A new enabled subscription at ``position``, under ``subscription_id`` when the
        channel names it (an SSF push stream: its stream id), else a new random one."""
        document: Document = {
            "_id": subscription_id or secrets.token_hex(12),
            "tenant": tenant,
            "channel": channel,
            "url": url,
            "types": None if types is None else list(types),
            "enabled": True,
            "created": now,
            "position": position,
            "secret": new_secret(),
            "holder": None,
            "until": NEVER,
            **FRESH,
        }
        await self.subscriptions.insert_one(document)
        return _subscription(document)

    async def get(self, tenant: str, subscription_id: str) -> Subscription | None:
        found = await self.subscriptions.find_one({"tenant": tenant, "_id": subscription_id})
        return None if found is None else _subscription(found)

    async def of_tenant(self, tenant: str, channel: str) -> list[Subscription]:
        cursor = self.subscriptions.find({"tenant": tenant, "channel": channel})
        documents = await cursor.sort([("tenant", ASCENDING), ("_id", ASCENDING)]).to_list(None)
        return [_subscription(document) for document in documents]

    async def update(
        self, tenant: str, subscription_id: str, changes: Mapping[str, Any]
    ) -> Subscription | None:
        """Set ``url``, ``types`` or ``enabled``; enabling clears the reason it was disabled
        and lets it be tried at once."""
        fields: Document = {}
        if "url" in changes:
            fields["url"] = changes["url"]
        if "types" in changes:
            fields["types"] = None if changes["types"] is None else list(changes["types"])
        if "enabled" in changes:
            fields["enabled"] = bool(changes["enabled"])
            if changes["enabled"]:
                fields |= {"disabled_reason": None, "retry_at": NEVER}
        found = await self.subscriptions.find_one_and_update(
            {"tenant": tenant, "_id": subscription_id},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )
        return None if found is None else _subscription(found)

    async def rotate(
        self, tenant: str, subscription_id: str, until: datetime
    ) -> Subscription | None:
        """A new secret; the current one becomes the previous, signing too until ``until``."""
        current = await self.get(tenant, subscription_id)
        if current is None:
            return None
        found = await self.subscriptions.find_one_and_update(
            {"tenant": tenant, "_id": subscription_id, "secret": current.secret},
            {
                "$set": {
                    "secret": new_secret(),
                    "previous_secret": current.secret,
                    "previous_until": until,
                }
            },
            return_document=ReturnDocument.AFTER,
        )
        # None: a rotation racing this one won (or the endpoint is gone); rotate again.
        return None if found is None else _subscription(found)

    async def follow(
        self,
        tenant: str,
        subscription_id: str,
        revision: int,
        *,
        url: str,
        enabled: bool,
        position: int,
    ) -> bool:
        """Point, enable or hold the subscription as revision ``revision`` of what owns it
        says, unless a later revision was followed already: changes made at once land in
        any order, and the latest wins. The position moves up to ``position`` if it is
        behind (a restart); enabling lets it be tried at once."""
        fields: Document = {"url": url, "enabled": enabled, "revision": revision}
        if enabled:
            fields |= {"disabled_reason": None, "retry_at": NEVER}
        result = await self.subscriptions.update_one(
            {
                "tenant": tenant,
                "_id": subscription_id,
                "$or": [{"revision": {"$lt": revision}}, {"revision": {"$exists": False}}],
            },
            {"$set": fields, "$max": {"position": position}},
        )
        return result.modified_count == 1

    async def replay(self, tenant: str, subscription_id: str, position: int) -> bool:
        """Deliver again from ``position``: the holder's next move, conditioned on the
        position it read, fails, and it stops."""
        result = await self.subscriptions.update_one(
            {"tenant": tenant, "_id": subscription_id},
            {"$set": {"position": position, **FRESH}},
        )
        return result.matched_count == 1

    async def delete(self, tenant: str, subscription_id: str) -> bool:
        result = await self.subscriptions.delete_one({"tenant": tenant, "_id": subscription_id})
        await self.log.delete_many({"tenant": tenant, "subscription": subscription_id})
        await self.dead.delete_many({"tenant": tenant, "subscription": subscription_id})
        return result.deleted_count == 1

    async def delete_tenant(self, tenant: str) -> None:
        for collection in (self.subscriptions, self.log, self.dead):
            await collection.delete_many({"tenant": tenant})

    # -- the engine: due endpoints, the lease, moving on --------------------------------------

    async def tenants_served(self, channels: Collection[str]) -> set[str]:
        """The tenants with an enabled endpoint of one of ``channels``: one command, on the
        ``enabled_due`` index (its ``enabled`` prefix)."""
        found = await self.subscriptions.distinct(
            "tenant", {"enabled": True, "channel": {"$in": list(channels)}}
        )
        return {str(tenant) for tenant in found}

    async def due(self, now: datetime, holder: str, limit: int) -> list[Subscription]:
        """Enabled endpoints whose retry time has come and whose lease is free or
        ``holder``'s, any tenant."""
        cursor = self.subscriptions.find(
            {
                "enabled": True,
                "retry_at": {"$lte": now},
                "$or": [{"until": {"$lt": now}}, {"holder": holder}],
            }
        )
        return [_subscription(document) for document in await cursor.limit(limit).to_list(None)]

    async def take(
        self, subscription: Subscription, holder: str, now: datetime, until: datetime
    ) -> Subscription | None:
        """Hold the endpoint's lease until ``until`` if it is free, expired or already ours:
        its state as the lease found it, or None (held by another, disabled, gone)."""
        found = await self.subscriptions.find_one_and_update(
            {
                "tenant": subscription.tenant,
                "_id": subscription.id,
                "enabled": True,
                "$or": [{"until": {"$lt": now}}, {"holder": holder}],
            },
            {"$set": {"holder": holder, "until": until}},
            return_document=ReturnDocument.AFTER,
        )
        return None if found is None else _subscription(found)

    async def release(self, subscription: Subscription, holder: str) -> None:
        await self.subscriptions.update_one(
            {"tenant": subscription.tenant, "_id": subscription.id, "holder": holder},
            {"$set": {"until": NEVER}},
        )

    async def advance(
        self, subscription: Subscription, holder: str, position: int, until: datetime
    ) -> bool:
        """Move on to ``position`` with a fresh retry state and the lease renewed, if this
        holder still holds it and nobody moved the position since it was read.

        Unjournaled, as it comes once per event delivered: a move lost in a crash of the
        database only sends those events again (at least once; receivers dedupe on the id).
        """
        result = await self._moves.update_one(
            {
                "tenant": subscription.tenant,
                "_id": subscription.id,
                "holder": holder,
                "position": subscription.position,
            },
            {"$set": {"position": position, "until": until, **FRESH}},
        )
        return result.modified_count == 1

    async def retry_later(
        self,
        subscription: Subscription,
        holder: str,
        attempts: int,
        failing_since: datetime,
        retry_at: datetime,
    ) -> bool:
        result = await self.subscriptions.update_one(
            {
                "tenant": subscription.tenant,
                "_id": subscription.id,
                "holder": holder,
                "position": subscription.position,
            },
            {
                "$set": {
                    "attempts": attempts,
                    "failing_since": failing_since,
                    "retry_at": retry_at,
                    "until": NEVER,
                }
            },
        )
        return result.modified_count == 1

    async def disable(self, subscription: Subscription, holder: str, reason: str) -> None:
        await self.subscriptions.update_one(
            {"tenant": subscription.tenant, "_id": subscription.id, "holder": holder},
            {"$set": {"enabled": False, "disabled_reason": reason, "until": NEVER}},
        )

    # -- the log and the dead letters ---------------------------------------------------------

    async def record(self, subscription: Subscription, attempt: LoggedAttempt) -> None:
        """Log one attempt (unjournaled: the log is a diagnosis, not a promise)."""
        await self.log.insert_one(
            {
                "tenant": subscription.tenant,
                "subscription": subscription.id,
                "at": attempt.at,
                "event": attempt.event_id,
                "sequence": attempt.sequence,
                "type": attempt.event_type,
                "attempt": attempt.attempt,
                "outcome": attempt.outcome,
                "status": attempt.status,
                "latency_ms": attempt.latency_ms,
                "excerpt": attempt.excerpt,
            }
        )

    async def attempts_of(
        self, tenant: str, subscription_id: str, limit: int
    ) -> list[LoggedAttempt]:
        """The endpoint's logged attempts, newest first."""
        cursor = self.log.find({"tenant": tenant, "subscription": subscription_id})
        cursor = cursor.sort([("tenant", 1), ("subscription", 1), ("at", -1)]).limit(limit)
        return [_logged(document) for document in await cursor.to_list(None)]

    async def bury(self, subscription: Subscription, letter: DeadLetter) -> None:
        """Keep an event given up on; burying it again (a holder that lost its lease right
        after) changes nothing."""
        try:
            await self.dead.insert_one(
                {
                    "_id": f"{subscription.id}/{letter.event_id}",
                    "tenant": subscription.tenant,
                    "subscription": subscription.id,
                    "event": letter.event_id,
                    "sequence": letter.sequence,
                    "type": letter.event_type,
                    "at": letter.at,
                    "attempts": letter.attempts,
                    "status": letter.last_status,
                    "excerpt": letter.last_excerpt,
                }
            )
        except DuplicateKeyError:
            return

    async def dead_letters(self, tenant: str, subscription_id: str) -> list[DeadLetter]:
        cursor = self.dead.find({"tenant": tenant, "subscription": subscription_id})
        cursor = cursor.sort([("tenant", 1), ("subscription", 1), ("sequence", 1)])
        return [_dead_letter(document) for document in await cursor.to_list(None)]

    async def unbury(self, tenant: str, subscription_id: str, event_id: str) -> DeadLetter | None:
        """Take a dead letter out to redeliver it: whoever takes it out is the only one who
        redelivers it."""
        found = await self.dead.find_one_and_delete(
            {"_id": f"{subscription_id}/{event_id}", "tenant": tenant}
        )
        return None if found is None else _dead_letter(found)

    # -- the outbox, as delivery reads it -----------------------------------------------------

    async def event(self, tenant: str, event_id: str) -> StoredEvent | None:
        found = await self.outbox.find_one({"tenant": tenant, "_id": event_id})
        return None if found is None else stored_event(found)

    async def first_since(self, tenant: str, since: datetime) -> int | None:
        """The sequence of the tenant's first event at or after ``since``."""
        found = await self.outbox.find_one(
            {"tenant": tenant, "time": {"$gte": since}},
            {"sequence": 1},
            sort=[("tenant", ASCENDING), ("time", ASCENDING)],
        )
        return None if found is None else int(found["sequence"])
