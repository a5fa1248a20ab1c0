"""The Shared Signals transmitter's stores: receiver tokens and event streams.

``ssf_receivers`` holds one document per receiver token: its id, tenant, the SHA-256 digest
of the secret (never the secret), when it was issued and revoked. ``ssf_streams`` holds one
document per stream: the receiver-supplied configuration (``delivery``, ``events_requested``,
``description``), its status, and its delivery state: ``position``, the outbox sequence from
which its events are not yet all acknowledged; ``acked``, the SETs acknowledged at or after
it; ``queued``, verification SETs waiting for their acknowledgement; ``removed``, the subjects
the receiver took out of the stream. Every index starts with the tenant (docs/ssf.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pymongo import ASCENDING, IndexModel, ReturnDocument

from scim_server.storage.database import Database, Document, translate_driver_errors

RECEIVERS: Final = "ssf_receivers"
STREAMS: Final = "ssf_streams"

RECEIVER_INDEXES: Final = [
    IndexModel([("tenant", ASCENDING), ("digest", ASCENDING)], name="tenant_digest"),
    IndexModel([("tenant", ASCENDING), ("created", ASCENDING)], name="tenant_created"),
]
STREAM_INDEXES: Final = [
    IndexModel([("tenant", ASCENDING), ("created", ASCENDING)], name="tenant_created"),
]


@dataclass(frozen=True)
class ReceiverTokenRecord:
    """A receiver token as issued: its id and dates, never the secret."""

    id: str
    tenant: str
    created: datetime
    revoked: datetime | None
    description: str | None


@dataclass(frozen=True)
class Delivery:
    """How a stream's SETs reach its receiver: ``method`` is ``urn:ietf:rfc:8935`` (push,
    to the receiver's ``endpoint_url``) or ``urn:ietf:rfc:8936`` (poll)."""

    method: str
    endpoint_url: str | None = None
    """The receiver's URL for push; None for poll (the transmitter names its poll URL)."""
    authorization_header: str | None = None
    """What push sends as ``Authorization``."""


@dataclass(frozen=True)
class StreamConfiguration:
    """What a receiver chooses for a stream."""

    delivery: Delivery
    events_requested: tuple[str, ...]
    description: str | None


@dataclass(frozen=True)
class QueuedSet:
    """A SET that is not made from an outbox event (a verification), waiting for its ack."""

    jti: str
    state: str | None
    at: datetime


@dataclass(frozen=True)
class StreamRecord:
    id: str
    tenant: str
    audience: str
    """The receiver token id that created the stream: the ``aud`` of its SETs."""
    issuer: str
    """The ``iss`` of its SETs, as the stream was created at: what push delivery, away from
    any request, signs them as."""
    configuration: StreamConfiguration
    status: str
    reason: str | None
    revision: int
    """How many times its status or configuration changed: what orders the changes a push
    stream's subscription follows."""
    created: datetime
    position: int
    acked: frozenset[str]
    queued: tuple[QueuedSet, ...]
    removed: frozenset[str]
    """The subjects removed from the stream (``Users/{id}``, ``Groups/{id}``)."""


def _receiver(document: Mapping[str, Any]) -> ReceiverTokenRecord:
    return ReceiverTokenRecord(
        id=str(document["_id"]),
        tenant=str(document["tenant"]),
        created=document["created"],
        revoked=document.get("revoked"),
        description=document.get("description"),
    )


def _delivery_document(delivery: Delivery) -> Document:
    document: Document = {"method": delivery.method}
    if delivery.endpoint_url is not None:
        document["endpoint_url"] = delivery.endpoint_url
    if delivery.authorization_header is not None:
        document["authorization_header"] = delivery.authorization_header
    return document


def _configuration_document(configuration: StreamConfiguration) -> Document:
    return {
        "delivery": _delivery_document(configuration.delivery),
        "events_requested": list(configuration.events_requested),
        "description": configuration.description,
    }


def _stream(document: Mapping[str, Any]) -> StreamRecord:
    delivery = document["delivery"]
    return StreamRecord(
        id=str(document["_id"]),
        tenant=str(document["tenant"]),
        audience=str(document["aud"]),
        issuer=str(document.get("iss", "")),
        configuration=StreamConfiguration(
            delivery=Delivery(
                str(delivery["method"]),
                delivery.get("endpoint_url"),
                delivery.get("authorization_header"),
            ),
            events_requested=tuple(document.get("events_requested", ())),
            description=document.get("description"),
        ),
        status=str(document["status"]),
        reason=document.get("reason"),
        revision=int(document.get("revision", 0)),
        created=document["created"],
        position=int(document["position"]),
        acked=frozenset(document.get("acked", ())),
        queued=tuple(
            QueuedSet(str(item["jti"]), item.get("state"), item["at"])
            for item in document.get("queued", ())
        ),
        removed=frozenset(document.get("removed", ())),
    )


@translate_driver_errors
class SsfRepository:
    """Receiver tokens and streams, each addressed with its tenant."""

    def __init__(self, database: Database) -> None:
        self.receivers = database[RECEIVERS]
        self.streams = database[STREAMS]

    async def ensure_indexes(self) -> None:
        await self.receivers.create_indexes(RECEIVER_INDEXES)
        await self.streams.create_indexes(STREAM_INDEXES)

    # -- receiver tokens ---------------------------------------------------------------------

    async def add_receiver(
        self, tenant: str, token_id: str, digest: str, now: datetime, description: str | None
    ) -> ReceiverTokenRecord:
        document: Document = {
            "_id": token_id,
            "tenant": tenant,
            "digest": digest,
            "created": now,
            "description": description,
        }
        await self.receivers.insert_one(document)
        return _receiver(document)

    async def live_receiver(self, tenant: str, digest: str) -> ReceiverTokenRecord | None:
        """The unrevoked receiver token of this digest, if the tenant has one."""
        document = await self.receivers.find_one(
            {"tenant": tenant, "digest": digest, "revoked": None}
        )
        return None if document is None else _receiver(document)

    async def receivers_of(self, tenant: str) -> list[ReceiverTokenRecord]:
        cursor = self.receivers.find({"tenant": tenant}).sort([("tenant", 1), ("created", 1)])
        return [_receiver(document) async for document in cursor]

    async def revoke_receiver(self, tenant: str, token_id: str, now: datetime) -> bool:
        result = await self.receivers.update_one(
            {"tenant": tenant, "_id": token_id}, {"$set": {"revoked": now}}
        )
        return result.matched_count == 1

    # -- streams -----------------------------------------------------------------------------

    async def add_stream(
        self,
        tenant: str,
        stream_id: str,
        audience: str,
        issuer: str,
        configuration: StreamConfiguration,
        now: datetime,
        position: int,
    ) -> StreamRecord:
        document: Document = {
            "_id": stream_id,
            "tenant": tenant,
            "aud": audience,
            "iss": issuer,
            **_configuration_document(configuration),
            "status": "enabled",
            "reason": None,
            "revision": 0,
            "created": now,
            "position": position,
            "acked": [],
            "queued": [],
            "removed": [],
        }
        await self.streams.insert_one(document)
        return _stream(document)

    async def stream(self, tenant: str, stream_id: str) -> StreamRecord | None:
        document = await self.streams.find_one({"tenant": tenant, "_id": stream_id})
        return None if document is None else _stream(document)

    async def streams_of(self, tenant: str) -> list[StreamRecord]:
        cursor = self.streams.find({"tenant": tenant}).sort([("tenant", 1), ("created", 1)])
        return [_stream(document) async for document in cursor]

    async def configure(
        self, tenant: str, stream_id: str, configuration: StreamConfiguration
    ) -> StreamRecord | None:
        """Replace the receiver's choices, one revision on, leaving the delivery state as
        it is."""
        return await self._update(
            {"tenant": tenant, "_id": stream_id},
            {"$set": _configuration_document(configuration), "$inc": {"revision": 1}},
        )

    async def set_status(
        self,
        tenant: str,
        stream_id: str,
        was: str,
        status: str,
        reason: str | None,
        restart_at: int | None,
    ) -> StreamRecord | None:
        """Set the status if it is still ``was`` (None otherwise), one revision on;
        ``restart_at`` moves the position there and forgets the acknowledgements (events
        passed over while disabled)."""
        changes: Document = {"status": status, "reason": reason}
        if restart_at is not None:
            changes |= {"position": restart_at, "acked": []}
        return await self._update(
            {"tenant": tenant, "_id": stream_id, "status": was},
            {"$set": changes, "$inc": {"revision": 1}},
        )

    async def delete_stream(self, tenant: str, stream_id: str) -> bool:
        result = await self.streams.delete_one({"tenant": tenant, "_id": stream_id})
        return result.deleted_count == 1

    async def queue(self, tenant: str, stream_id: str, queued: QueuedSet) -> bool:
        result = await self.streams.update_one(
            {"tenant": tenant, "_id": stream_id},
            {"$push": {"queued": {"jti": queued.jti, "state": queued.state, "at": queued.at}}},
        )
        return result.matched_count == 1

    async def acknowledge(
        self,
        tenant: str,
        stream_id: str,
        position: int,
        acked: Sequence[str],
        dequeued: Sequence[str],
    ) -> StreamRecord | None:
        """Note the SETs of events ``acked``, if the stream is still at ``position`` (the
        caller checked them against it), and take the queued SETs ``dequeued`` off the queue;
        the stream as it is then (None: it was not at ``position`` any more)."""
        return await self._update(
            {"tenant": tenant, "_id": stream_id, "position": position},
            {
                "$addToSet": {"acked": {"$each": list(acked)}},
                "$pull": {"queued": {"jti": {"$in": list(dequeued)}}},
            },
        )

    async def advance(
        self, tenant: str, stream_id: str, position: int, to: int, delivered: Sequence[str]
    ) -> bool:
        """Move the position from ``position`` (if it is still there) to ``to``, forgetting the
        acknowledgements of the events passed, ``delivered``."""
        result = await self.streams.update_one(
            {"tenant": tenant, "_id": stream_id, "position": position},
            {"$set": {"position": to}, "$pull": {"acked": {"$in": list(delivered)}}},
        )
        return result.matched_count == 1

    async def remove_subject(
        self, tenant: str, stream_id: str, subject: str
    ) -> StreamRecord | None:
        """Take the subject's events out of the stream (None: no such stream)."""
        return await self._update(
            {"tenant": tenant, "_id": stream_id}, {"$addToSet": {"removed": subject}}
        )

    async def add_subject(self, tenant: str, stream_id: str, subject: str) -> StreamRecord | None:
        """Give the stream the subject's events again."""
        return await self._update(
            {"tenant": tenant, "_id": stream_id}, {"$pull": {"removed": subject}}
        )

    async def _update(self, query: Document, update: Document) -> StreamRecord | None:
        document = await self.streams.find_one_and_update(
            query, update, return_document=ReturnDocument.AFTER
        )
        return None if document is None else _stream(document)

    async def delete_tenant(self, tenant: str) -> None:
        await self.streams.delete_many({"tenant": tenant})
        await self.receivers.delete_many({"tenant": tenant})
