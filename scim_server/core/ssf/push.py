"""Push delivery (RFC 8935), described for the delivery engine that will send it.

Two pure functions: the HTTP request that delivers one SET to a push stream's receiver, and
what the receiver's answer means for that SET. Sending, retrying with back-off and giving up
belong to the shared delivery engine (the one webhooks use), not to the transmitter.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from scim_server.storage.ssf import Delivery

SET_MEDIA_TYPE: Final = "application/secevent+jwt"


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
