"""Push delivery (RFC 8935): the delivery engine's ``ssf-push`` channel.

Two pure functions, the HTTP request that delivers one SET to a push stream's receiver and
what the receiver's answer means for that SET, and the channel that applies them: each event
is the SETs it makes on the stream, all to be delivered (a failure retries the event whole;
the SETs keep their ``jti``, so a receiver drops the ones it has). Sending, retrying with
back-off, dead letters and the delivery log belong to the shared engine, as for webhooks.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from scim_server.core import delivery as engine
from scim_server.core.events import Event
from scim_server.core.ssf.keys import ServerKey
from scim_server.core.ssf.sets import event_sets, stream_view
from scim_server.storage.delivery import Subscription
from scim_server.storage.ssf import Delivery, SsfRepository, StreamRecord

SET_MEDIA_TYPE: Final = "application/secevent+jwt"
CHANNEL: Final = "ssf-push"


@dataclass(frozen=True)
class PushRequest:
    url: str
    headers: Mapping[str, str]
    body: bytes


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    """202: the receiver has the SET."""
    REJECTED = "rejected"
    """400 with an RFC 8935 ``err``: this SET will never be accepted; sending it again is vain."""
    RETRY = "retry"
    """Anything else (a 5xx, a 429, a redirect, a 400 without ``err``): try again later."""


@dataclass(frozen=True)
class PushResult:
    outcome: Outcome
    error: str | None = None
    """The receiver's ``err`` code, when it rejected the SET."""
    description: str | None = None


def push_request(delivery: Delivery, signed_set: str) -> PushRequest:
    """RFC 8935 §2.1: POST the SET alone as the body, to the stream's ``endpoint_url``, with
    its ``authorization_header`` when the receiver gave one."""
    assert delivery.endpoint_url is not None, "a push stream has its endpoint_url"
    headers = {"Content-Type": SET_MEDIA_TYPE, "Accept": "application/json"}
    if delivery.authorization_header is not None:
        headers["Authorization"] = delivery.authorization_header
    return PushRequest(delivery.endpoint_url, headers, signed_set.encode("ascii"))


def push_outcome(status: int, body: bytes) -> PushResult:
    """What the receiver's answer means (RFC 8935 §2.2 and §2.3)."""
    if status == 202:
        return PushResult(Outcome.DELIVERED)
    if status == 400:
        error = _error(body)
        if error is not None and isinstance(error.get("err"), str):
            description = error.get("description")
            return PushResult(
                Outcome.REJECTED,
                error["err"],
                description if isinstance(description, str) else None,
            )
    return PushResult(Outcome.RETRY)


def _error(body: bytes) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


OUTCOMES: Final = {
    Outcome.DELIVERED: engine.Outcome.DELIVERED,
    Outcome.REJECTED: engine.Outcome.REJECTED,
    Outcome.RETRY: engine.Outcome.FAILED,
}


def outbound(stream: StreamRecord, signed_set: str) -> engine.Outbound:
    """One signed SET as the delivery engine sends it to the stream's receiver."""
    request = push_request(stream.configuration.delivery, signed_set)
    return engine.Outbound(request.body, request.headers)


class PushChannel(engine.Channel):
    """The delivery engine's channel for push streams: a subscription per push stream, under
    the stream's id; an event is the SETs it makes on the stream, each signed and POSTed."""

    name = CHANNEL

    def __init__(self, streams: SsfRepository, key: ServerKey) -> None:
        self._streams = streams
        self._key = key

    async def request(
        self, subscription: Subscription, event: Event, now: datetime
    ) -> Sequence[engine.Outbound]:
        """The stream's SETs of the event, as the stream is configured now (none: it requests
        none of its kinds, its subject was removed, or the stream is gone)."""
        stream = await self._streams.stream(subscription.tenant, subscription.id)
        if stream is None:
            return ()
        sets = event_sets(event, stream_view(stream, stream.issuer))
        if not sets:
            return ()
        key = await self._key.get()
        return [outbound(stream, key.sign(item.claims)) for item in sets]

    def outcome(self, status: int, body: str) -> engine.Outcome:
        return OUTCOMES[push_outcome(status, body.encode()).outcome]
