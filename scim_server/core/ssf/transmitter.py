"""The transmitter: receiver tokens, the streams they manage, and poll delivery (RFC 8936).

A stream reads the tenant's one outbox (docs/events.md) from its own ``position``: every
event from there on becomes the SETs the stream requested (``sets.event_sets``). A poll answers
the SETs not yet acknowledged; an acknowledgement (``ack`` or ``setErrs``) is noted in the
stream, and the position moves past an event only once each of its SETs is acknowledged, so
an unacknowledged SET is answered again by the next poll, and an acknowledged one never is
(docs/ssf.md argues it for pollers at once).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from scim2_models import (
    InvalidValueException,
    NotFoundException,
    UnauthorizedException,
)

from scim_server.core.delivery import DeliveryEngine, DeliveryRecords
from scim_server.core.errors import RetryLater, TooManyConcurrentChanges
from scim_server.core.events import Event, Relay
from scim_server.core.ssf import push
from scim_server.core.ssf.keys import ServerKey, SigningKey
from scim_server.core.ssf.sets import (
    TAG_VERIFY,
    SetClaims,
    StreamView,
    event_sets,
    sequence_of,
    stream_view,
    verification_set,
)
from scim_server.core.webhooks import check_target
from scim_server.models import GROUPS, USERS
from scim_server.storage.delivery import DeliveryRepository
from scim_server.storage.ssf import (
    Delivery,
    QueuedSet,
    ReceiverTokenRecord,
    SsfRepository,
    StreamConfiguration,
    StreamRecord,
)
from scim_server.wire import header_bytes

log = logging.getLogger(__name__)

PUSH: Final = "urn:ietf:rfc:8935"
POLL: Final = "urn:ietf:rfc:8936"
DELIVERY_METHODS: Final = (PUSH, POLL)
STATUSES: Final = ("enabled", "paused", "disabled")
TOKEN_PREFIX: Final = "ssf_"
"""Receiver tokens start with it, so that nobody mistakes one for a SCIM token."""

MAX_EVENTS_DEFAULT: Final = 100
MAX_EVENTS_LIMIT: Final = 1000
MAX_ACKS: Final = 10_000
"""The most SETs one poll may acknowledge (``ack`` and ``setErrs`` together)."""
ACK_WINDOW: Final = 10_000
"""How far past its position a stream takes acknowledgements: a jti naming an event further on
(or before it) is ignored, so the noted acknowledgements stay bounded."""
MAX_QUEUED: Final = 100
"""The most verification SETs a stream holds unacknowledged."""
LONG_POLL_SECONDS: Final = 15.0
"""How long a poll without ``returnImmediately`` waits for a SET before answering none."""
LONG_POLL_INTERVAL: Final = 0.25
ATTEMPTS: Final = 20
"""How often a conditional write of a stream (a status, an acknowledgement, a move of the
position) is tried again after another request changed the stream first."""
MAX_EVENTS_REQUESTED: Final = 64
MAX_REMOVED: Final = 10_000
"""The most subjects a stream may have removed."""
MAX_TEXT: Final = 1024


class TooManyVerifications(RetryLater):
    """429: the stream already holds as many unacknowledged verifications as it keeps."""

    status = 429
    retry_after_seconds = 1


@dataclass(frozen=True)
class IssuedReceiverToken:
    token_id: str
    token: str


@dataclass(frozen=True)
class PollRequest:
    """An RFC 8936 §2.4 poll: how many SETs at most, whether to wait, what was received."""

    max_events: int
    return_immediately: bool
    acks: tuple[str, ...]
    errors: Mapping[str, Any]


@dataclass(frozen=True)
class PollAnswer:
    sets: dict[str, str]
    """jti → the signed SET."""
    more_available: bool


def _digest(token: str) -> str:
    return hashlib.sha256(header_bytes(token)).hexdigest()


def _text(body: Mapping[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise InvalidValueException(detail=f"{name} is a string of at most {limit} characters")
    return value


def _header_value(value: str | None) -> str | None:
    if value is not None and not all(" " <= ch <= "~" for ch in value):
        raise InvalidValueException(
            detail="delivery.authorization_header is printable ASCII on one line"
        )
    return value


def _delivery(value: Any) -> Delivery:
    if not isinstance(value, dict):
        raise InvalidValueException(detail="delivery is an object with a method")
    method = value.get("method")
    if method not in DELIVERY_METHODS:
        raise InvalidValueException(detail=f"delivery.method is {PUSH} (push) or {POLL} (poll)")
    if method == POLL:
        return Delivery(POLL)  # the transmitter names the poll URL: a receiver's is ignored
    url = _text(value, "endpoint_url")
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValueException(
            detail="delivery.endpoint_url is the receiver's http(s) URL for push delivery"
        )
    return Delivery(PUSH, url, _header_value(_text(value, "authorization_header")))


def _events_requested(value: Any) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or len(value) > MAX_EVENTS_REQUESTED
        or not all(isinstance(uri, str) and len(uri) <= MAX_TEXT for uri in value)
    ):
        raise InvalidValueException(
            detail=f"events_requested is a list of at most {MAX_EVENTS_REQUESTED} event URIs"
        )
    return tuple(dict.fromkeys(value))


def configuration(
    body: Mapping[str, Any], current: StreamConfiguration | None = None
) -> StreamConfiguration:
    """The receiver's choices in a create, replace (``current`` None) or update request: what
    the body names, the rest as ``current`` has it (or the defaults: poll, no events).
    Transmitter-supplied fields (``iss``, ``aud``, ``events_supported``, ...) are ignored."""
    base = current or StreamConfiguration(Delivery(POLL), (), None)
    return StreamConfiguration(
        delivery=_delivery(body["delivery"]) if "delivery" in body else base.delivery,
        events_requested=(
            _events_requested(body["events_requested"])
            if "events_requested" in body
            else base.events_requested
        ),
        description=_text(body, "description") if "description" in body else base.description,
    )


def poll_request(body: Mapping[str, Any]) -> PollRequest:
    """An RFC 8936 §2.4 poll from its JSON body: ``maxEvents`` (0 acknowledges only),
    ``returnImmediately``, ``ack`` (jtis) and ``setErrs`` (jti → ``{err, description}``)."""
    max_events = body.get("maxEvents", MAX_EVENTS_DEFAULT)
    if (
        isinstance(max_events, bool)
        or not isinstance(max_events, int)
        or not 0 <= max_events <= MAX_EVENTS_LIMIT
    ):
        raise InvalidValueException(detail=f"maxEvents is an integer from 0 to {MAX_EVENTS_LIMIT}")
    return_immediately = body.get("returnImmediately", False)
    if not isinstance(return_immediately, bool):
        raise InvalidValueException(detail="returnImmediately is true or false")
    acks = body.get("ack", [])
    if not isinstance(acks, list) or not all(isinstance(set_id, str) for set_id in acks):
        raise InvalidValueException(detail="ack is a list of the jti of SETs received")
    errors = body.get("setErrs", {})
    if not isinstance(errors, dict) or not all(isinstance(e, dict) for e in errors.values()):
        raise InvalidValueException(
            detail='setErrs is an object of {"jti": {"err": ..., "description": ...}}'
        )
    return PollRequest(max_events, return_immediately, tuple(acks), errors)


def subject(body: Mapping[str, Any], issuer: str) -> str:
    """The subject a receiver adds or removes (SSF §8.1.3), as ``subject_key`` names it: a
    ``scim`` subject (``/Users/{id}``, ``/Groups/{id}``) or an ``iss_sub`` one of this issuer
    (a user, as the CAEP and RISC SETs name it)."""
    value = body.get("subject")
    if not isinstance(value, dict):
        raise InvalidValueException(detail="subject is a subject identifier object (RFC 9493)")
    if value.get("format") == "scim":
        endpoint, _, resource_id = str(value.get("uri", "")).removeprefix("/").partition("/")
        if endpoint in (USERS.endpoint, GROUPS.endpoint) and resource_id and "/" not in resource_id:
            return f"{endpoint}/{resource_id}"
        raise InvalidValueException(detail="a scim subject's uri is /Users/{id} or /Groups/{id}")
    if value.get("format") == "iss_sub":
        user_id = value.get("sub")
        if value.get("iss") == issuer and isinstance(user_id, str) and user_id:
            return f"{USERS.endpoint}/{user_id}"
        raise InvalidValueException(detail=f"an iss_sub subject names iss {issuer} and a sub")
    raise InvalidValueException(detail="subjects are of format scim or iss_sub")


class Transmitter:
    """The SSF transmitter of every tenant; the tenant (and its issuer URL) come with each call."""

    def __init__(
        self,
        key: ServerKey,
        repository: SsfRepository,
        relay: Relay,
        deliveries: DeliveryRepository,
        engine: DeliveryEngine,
        *,
        allow_private: bool,
        long_poll_seconds: float = LONG_POLL_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._key = key
        self._repository = repository
        self._relay = relay
        self._deliveries = deliveries
        self._engine = engine
        self.push_deliveries = DeliveryRecords(deliveries, engine, push.CHANNEL, "push stream")
        """The push streams' delivery logs and dead letters, for the admin (a push stream's
        subscription in the delivery engine has the stream's id)."""
        self._allow_private = allow_private
        self._long_poll_seconds = long_poll_seconds
        self._now = clock

    async def signing_key(self) -> SigningKey:
        """The server's key: made by the first process that needs it, the same for all."""
        return await self._key.get()

    # -- receiver tokens ---------------------------------------------------------------------

    async def issue_receiver_token(
        self, tenant: str, description: str | None
    ) -> IssuedReceiverToken:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = uuid.uuid4().hex
        await self._repository.add_receiver(
            tenant, token_id, _digest(token), self._now(), description
        )
        return IssuedReceiverToken(token_id, token)

    async def receiver_tokens(self, tenant: str) -> list[ReceiverTokenRecord]:
        return await self._repository.receivers_of(tenant)

    async def revoke_receiver_token(self, tenant: str, token_id: str) -> bool:
        """Revoke it: the next request with it is refused (nothing is cached)."""
        return await self._repository.revoke_receiver(tenant, token_id, self._now())

    async def authenticate(self, tenant: str, authorization: str | None) -> str:
        """The receiver token id of ``Authorization: Bearer <token>`` for ``tenant`` (401)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedException(detail="an SSF receiver token is required (Bearer)")
        receiver = await self._repository.live_receiver(tenant, _digest(token.strip()))
        if receiver is None:
            raise UnauthorizedException(
                detail="the bearer token is not a live SSF receiver token of this tenant"
            )
        return receiver.id

    # -- streams -----------------------------------------------------------------------------

    async def create_stream(
        self, tenant: str, receiver: str, issuer: str, body: Mapping[str, Any]
    ) -> StreamRecord:
        """A new stream, enabled, delivering the events stored from now on; a push stream
        with its subscription in the delivery engine, under the stream's id."""
        chosen = await self._push_target(configuration(body))
        position = await self._relay.next_sequence(tenant)
        stream = await self._repository.add_stream(
            tenant, uuid.uuid4().hex, receiver, issuer, chosen, self._now(), position
        )
        if chosen.delivery.method == PUSH:
            try:
                await self._subscribe(stream)
            except BaseException:
                await self._repository.delete_stream(tenant, stream.id)
                raise
            changed = await self._repository.stream(tenant, stream.id)
            if changed is not None and changed.revision:  # changed meanwhile
                await self._deliver_as(changed)
        return stream

    async def _push_target(self, chosen: StreamConfiguration) -> StreamConfiguration:
        """The configuration, once a push ``endpoint_url`` passed the webhooks' SSRF guard
        (the sender checks it again at each delivery, after DNS resolution)."""
        if chosen.delivery.method == PUSH:
            url = chosen.delivery.endpoint_url
            await check_target(url, self._allow_private, "delivery.endpoint_url")
        return chosen

    async def _subscribe(self, stream: StreamRecord) -> None:
        url = stream.configuration.delivery.endpoint_url
        assert url is not None, "a push stream has its endpoint_url"
        await self._deliveries.create(
            stream.tenant, push.CHANNEL, url, None, stream.position, self._now(), stream.id
        )
        self._engine.serve(stream.tenant)

    async def streams(self, tenant: str) -> list[StreamRecord]:
        """The tenant's streams; a push stream's position as its subscription has it (the
        engine moves that one; the stream's moves only at a restart)."""
        subscriptions = await self._deliveries.of_tenant(tenant, push.CHANNEL)
        positions = {subscription.id: subscription.position for subscription in subscriptions}
        return [
            replace(stream, position=positions.get(stream.id, stream.position))
            for stream in await self._repository.streams_of(tenant)
        ]

    async def stream(self, tenant: str, stream_id: object) -> StreamRecord:
        if not isinstance(stream_id, str):
            raise InvalidValueException(detail="stream_id is required, a string")
        found = await self._repository.stream(tenant, stream_id)
        if found is None:
            raise NotFoundException(detail=f"no stream {stream_id!r}")
        return found

    async def configure(
        self, tenant: str, body: Mapping[str, Any], *, replace_all: bool
    ) -> StreamRecord:
        """SSF §8.1.1.3 (update: what the body names) and §8.1.1.4 (replace: all of it)."""
        current = await self.stream(tenant, body.get("stream_id"))
        changed = configuration(body, None if replace_all else current.configuration)
        if changed.delivery.method != current.configuration.delivery.method:
            raise InvalidValueException(
                detail="a stream keeps its delivery method: create a new stream for another"
            )
        await self._push_target(changed)
        updated = await self._repository.configure(tenant, current.id, changed)
        if updated is None:
            raise NotFoundException(detail=f"no stream {current.id!r}")
        await self._deliver_as(updated)
        return updated

    async def delete_stream(self, tenant: str, stream_id: object) -> None:
        """The stream, and its subscription (push), its delivery log and dead letters."""
        found = (await self.stream(tenant, stream_id)).id
        deleted = await self._repository.delete_stream(tenant, found)
        await self._deliveries.delete(tenant, found)
        if not deleted:
            raise NotFoundException(detail=f"no stream {stream_id!r}")

    async def set_status(self, tenant: str, body: Mapping[str, Any]) -> StreamRecord:
        """SSF §8.1.2.2. Events stored while a stream is disabled are never delivered: it
        starts again at the outbox's end; while paused they wait."""
        status = body.get("status")
        if status not in STATUSES:
            raise InvalidValueException(detail="status is enabled, paused or disabled")
        reason = _text(body, "reason")
        for _ in range(ATTEMPTS):
            current = await self.stream(tenant, body.get("stream_id"))
            restart = None
            if current.status == "disabled" and status != "disabled":
                restart = await self._relay.next_sequence(tenant)
            updated = await self._repository.set_status(
                tenant, current.id, current.status, status, reason, restart
            )
            if updated is not None:
                await self._deliver_as(updated)
                return updated
        raise TooManyConcurrentChanges()

    async def _deliver_as(self, stream: StreamRecord) -> None:
        """A push stream's subscription follows the stream, revision by revision: its
        ``endpoint_url``, and its status: enabled delivers; paused and disabled hold (the
        engine keeps the position); leaving disabled restarts at the outbox's end, where the
        stream's position was moved (a push stream's own position moves only then)."""
        url = stream.configuration.delivery.endpoint_url
        if stream.configuration.delivery.method != PUSH or url is None:
            return
        await self._deliveries.follow(
            stream.tenant,
            stream.id,
            stream.revision,
            url=url,
            enabled=stream.status == "enabled",
            position=stream.position,
        )
        self._engine.serve(stream.tenant)

    async def verify(self, tenant: str, body: Mapping[str, Any]) -> None:
        """SSF §8.1.4.2: queue a verification SET, with the receiver's ``state``."""
        stream = await self.stream(tenant, body.get("stream_id"))
        if stream.configuration.delivery.method == PUSH:
            await self._push_verification(stream, _text(body, "state"))
            return
        if len(stream.queued) >= MAX_QUEUED:
            raise TooManyVerifications(
                detail=f"the stream holds {MAX_QUEUED} unacknowledged verifications already"
            )
        queued = QueuedSet(
            f"{stream.id}.{TAG_VERIFY}.{uuid.uuid4().hex}", _text(body, "state"), self._now()
        )
        if not await self._repository.queue(tenant, stream.id, queued):
            raise NotFoundException(detail=f"no stream {stream.id!r}")

    async def _push_verification(self, stream: StreamRecord, state: str | None) -> None:
        """Push the verification SET now, once (the receiver asks again if it missed it):
        through the engine's sender and SSRF guard, not its retries."""
        subscription = await self._deliveries.get(stream.tenant, stream.id)
        if subscription is None:
            raise NotFoundException(detail=f"no stream {stream.id!r}")
        set_id = f"{stream.id}.{TAG_VERIFY}.{uuid.uuid4().hex}"
        claims = verification_set(stream_view(stream, stream.issuer), set_id, state, self._now())
        signed = (await self.signing_key()).sign(claims.claims)
        await self._engine.send(subscription, [push.outbound(stream, signed)])

    async def change_subject(
        self, tenant: str, issuer: str, body: Mapping[str, Any], *, add: bool
    ) -> None:
        """SSF §8.1.3: every subject of the tenant is in a stream (``default_subjects`` ALL)
        until removed; adding it back gives the stream its later events again."""
        stream = await self.stream(tenant, body.get("stream_id"))
        key = subject(body, issuer)
        if add:
            changed = await self._repository.add_subject(tenant, stream.id, key)
        else:
            if len(stream.removed) >= MAX_REMOVED and key not in stream.removed:
                raise InvalidValueException(
                    detail=f"a stream holds at most {MAX_REMOVED} removed subjects"
                )
            changed = await self._repository.remove_subject(tenant, stream.id, key)
        if changed is None:
            raise NotFoundException(detail=f"no stream {stream.id!r}")

    # -- poll delivery -----------------------------------------------------------------------

    async def poll(
        self, tenant: str, stream_id: str, issuer: str, request: PollRequest
    ) -> PollAnswer:
        """RFC 8936 §2.4: note the acknowledgements, then answer the SETs not acknowledged,
        oldest first, at most ``max_events``; without ``return_immediately``, wait (bounded)
        for one to come."""
        stream = await self.stream(tenant, stream_id)
        if stream.configuration.delivery.method != POLL:
            raise InvalidValueException(detail=f"stream {stream_id!r} delivers by push, not poll")
        for set_id, error in request.errors.items():
            log.info("ssf receiver error: stream %s, SET %s: %s", stream.id, set_id, error)
        stream = await self._acknowledge(stream, (*request.acks, *request.errors))
        if request.max_events == 0:
            return PollAnswer({}, more_available=False)
        waited = 0.0
        while True:
            pending, more = await self._pending(stream, issuer, request.max_events)
            if pending or request.return_immediately or waited >= self._long_poll_seconds:
                break
            await asyncio.sleep(LONG_POLL_INTERVAL)
            waited += LONG_POLL_INTERVAL
            stream = await self.stream(tenant, stream_id)
        key = await self.signing_key()
        return PollAnswer({item.jti: key.sign(item.claims) for item in pending}, more)

    async def _acknowledge(self, stream: StreamRecord, set_ids: Sequence[str]) -> StreamRecord:
        """Note the acknowledgements of this stream's SETs within its window (others are
        ignored); conditioned on the position read, so none lands behind a moved one."""
        if len(set_ids) > MAX_ACKS:
            raise InvalidValueException(detail=f"a poll acknowledges at most {MAX_ACKS} SETs")
        for _ in range(ATTEMPTS):
            queued = {item.jti for item in stream.queued}
            dequeued = [set_id for set_id in set_ids if set_id in queued]
            acked = [set_id for set_id in set_ids if self._in_window(stream, set_id)]
            if not (acked or dequeued):
                return stream
            noted = await self._repository.acknowledge(
                stream.tenant, stream.id, stream.position, acked, dequeued
            )
            if noted is not None:
                return noted
            stream = await self.stream(stream.tenant, stream.id)  # another poller moved it
        raise TooManyConcurrentChanges()

    @staticmethod
    def _in_window(stream: StreamRecord, set_id: str) -> bool:
        sequence = sequence_of(stream.id, set_id)
        return sequence is not None and 0 <= sequence - stream.position < ACK_WINDOW

    async def _pending(
        self, stream: StreamRecord, issuer: str, limit: int
    ) -> tuple[list[SetClaims], bool]:
        """The stream's unacknowledged SETs from its position, at most ``limit``, and whether
        there are more; the position moves past the events whose SETs are all acknowledged
        (or that make none on this stream)."""
        if stream.status != "enabled":
            return [], False
        view = stream_view(stream, issuer)
        pending = [verification_set(view, item.jti, item.state, item.at) for item in stream.queued]
        for _ in range(ATTEMPTS):
            events = await self._relay.read(stream.tenant, stream.position, limit)
            to, passed, waiting = self._scan(stream, view, events)
            if to != stream.position:
                if not await self._repository.advance(
                    stream.tenant, stream.id, stream.position, to, passed
                ):
                    stream = await self.stream(stream.tenant, stream.id)  # another poller moved it
                    continue
                stream = replace(stream, position=to, acked=stream.acked - set(passed))
            if waiting or len(events) < limit:
                found = [*pending, *waiting]
                return found[:limit], len(found) > limit or len(events) == limit
        return pending[:limit], True  # many events in a row made no SET: the next poll goes on

    @staticmethod
    def _scan(
        stream: StreamRecord, view: StreamView, events: Sequence[Event]
    ) -> tuple[int, list[str], list[SetClaims]]:
        """Where the position can move to (past the leading events fully acknowledged), the
        jtis of those events, and the unacknowledged SETs of the events after."""
        to = stream.position
        passed: list[str] = []
        waiting: list[SetClaims] = []
        for event in events:
            sets = event_sets(event, view)
            unacked = [item for item in sets if item.jti not in stream.acked]
            if not waiting and not unacked:
                to = event.sequence + 1
                passed += [item.jti for item in sets]
            waiting += unacked
        return to, passed, waiting
