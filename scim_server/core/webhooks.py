"""Webhooks: a tenant's endpoints that receive its provisioning events, signed.

The webhook channel of the delivery engine (``core/delivery.py``): each event is POSTed as
its JSON (``Event.to_json``), signed per the Standard Webhooks specification with the
``standardwebhooks`` package (``webhook-id`` the event id, so a receiver dedupes on it;
``webhook-timestamp``; ``webhook-signature`` by the current secret, and by the previous one
during a rotation's grace). A 2xx delivers it, a 410 disables the endpoint, anything else is
retried. ``Webhooks`` is what the admin API does with them; ``check_target`` refuses private,
loopback and link-local targets (unless allowed) at registration, as the sender does again at
delivery, after DNS resolution.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from scim2_models import InvalidValueException
from standardwebhooks import Webhook

from scim_server.core.delivery import (
    Channel,
    DeliveryEngine,
    DeliveryRecords,
    Outbound,
    Outcome,
)
from scim_server.core.events import MAX_SEQUENCE, Event, Relay
from scim_server.storage.delivery import (
    DeliveryRepository,
    Subscription,
)
from scim_server.storage.events import EVENT_TYPES
from scim_server.wire import client_instant

CHANNEL: Final = "webhook"
GONE: Final = 410
MAX_URL_CHARS: Final = 2048
DEFAULT_GRACE_SECONDS: Final = 24 * 3600
MAX_GRACE_SECONDS: Final = 30 * 24 * 3600
ROTATION_TRIES: Final = 3


class TargetRefused(Exception):
    """A webhook URL whose host is, or resolves to, an address deliveries may not reach."""


def refusal(address: str) -> str | None:
    """Why an IP address is no webhook target (private, loopback, link-local...), or None.

    Only globally routable unicast addresses are targets: anything else reaches into the
    server's own network (the SSRF a webhook URL would otherwise be).
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "private", "link_local", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"{ip} is a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


async def resolve(host: str, port: int) -> list[str]:
    """The IP addresses ``host`` resolves to (itself, when it is one)."""
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise TargetRefused(f"{host} does not resolve: {error.strerror or error}") from None
    return [str(address[4][0]) for address in found]


async def check_target(url: object, allow_private: bool, name: str = "url") -> str:
    """``url`` as a target of deliveries: http or https with a host, which resolves only to
    public addresses unless ``allow_private``. 400 ``invalidValue`` saying why otherwise,
    naming the field as ``name``."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        raise InvalidValueException(
            detail=f"{name} is an http or https URL of at most {MAX_URL_CHARS} characters"
        )
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:  # an unclosed IPv6 bracket, a port out of range...
        raise InvalidValueException(detail=f"{name} is not a valid URL ({error}): {url}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValueException(detail=f"{name} is an http or https URL with a host: {url}")
    if parts.username is not None or parts.password is not None:
        raise InvalidValueException(detail=f"{name} carries no user or password")
    if not allow_private:
        try:
            for address in await resolve(parts.hostname, port):
                if (why := refusal(address)) is not None:
                    raise TargetRefused(f"{parts.hostname} resolves to {address}: {why}")
        except TargetRefused as refused:
            raise InvalidValueException(
                detail=f"{name} is refused: {refused} (private, loopback and link-local targets "
                "are refused unless SCIM_WEBHOOK_ALLOW_PRIVATE is set)"
            ) from None
    return url


def event_types(value: object) -> tuple[str, ...] | None:
    """The ``events`` of a webhook: a list of known event types, or null for all."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidValueException(
            detail="events is a non-empty list of event types, or null for all"
        )
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise InvalidValueException(
            detail=f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}"
        )
    return tuple(dict.fromkeys(value))


class WebhookChannel(Channel):
    """Standard Webhooks: the event's JSON, signed by every secret that signs now."""

    name = CHANNEL

    async def request(
        self, subscription: Subscription, event: Event, now: datetime
    ) -> Sequence[Outbound]:
        """One request: the event, signed."""
        body = orjson.dumps(event.to_json())
        text = body.decode()
        signatures = " ".join(
            Webhook(secret).sign(event.id, now, text)
            for secret in subscription.signing_secrets(now)
        )
        headers = {
            "Content-Type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signatures,
        }
        return (Outbound(body, headers),)

    def outcome(self, status: int, body: str) -> Outcome:
        if 200 <= status < 300:
            return Outcome.DELIVERED
        return Outcome.GONE if status == GONE else Outcome.FAILED


class Webhooks(DeliveryRecords):
    """A tenant's webhooks, as the admin API and the CLI manage them; their delivery log and
    dead letters as every channel's (``DeliveryRecords``)."""

    def __init__(
        self,
        repository: DeliveryRepository,
        engine: DeliveryEngine,
        relay: Relay,
        *,
        allow_private: bool,
    ) -> None:
        super().__init__(repository, engine, CHANNEL, "webhook")
        self.relay = relay
        self.allow_private = allow_private

    async def create(self, tenant: str, body: Mapping[str, Any]) -> Subscription:
        """A new endpoint, delivering from the tenant's next event on."""
        url = await check_target(body.get("url"), self.allow_private)
        types = event_types(body.get("events"))
        position = await self.relay.next_sequence(tenant)
        created = await self.repository.create(
            tenant, CHANNEL, url, types, position, datetime.now(UTC)
        )
        self.engine.serve(tenant)
        return created

    async def all(self, tenant: str) -> list[Subscription]:
        return await self.repository.of_tenant(tenant, CHANNEL)

    async def update(self, tenant: str, webhook_id: str, body: Mapping[str, Any]) -> Subscription:
        """Change ``url``, ``events`` or ``enabled`` (others are refused)."""
        await self.get(tenant, webhook_id)
        unknown = sorted(set(body) - {"url", "events", "enabled"})
        if unknown or not body:
            raise InvalidValueException(detail="send any of url, events and enabled")
        changes: dict[str, Any] = {}
        if "url" in body:
            changes["url"] = await check_target(body["url"], self.allow_private)
        if "events" in body:
            changes["types"] = event_types(body["events"])
        if "enabled" in body:
            if not isinstance(body["enabled"], bool):
                raise InvalidValueException(detail="enabled is true or false")
            changes["enabled"] = body["enabled"]
        updated = await self.repository.update(tenant, webhook_id, changes)
        if updated is None:
            return await self.get(tenant, webhook_id)  # deleted meanwhile: 404
        self.engine.serve(tenant)
        return updated

    async def delete(self, tenant: str, webhook_id: str) -> None:
        await self.get(tenant, webhook_id)
        await self.repository.delete(tenant, webhook_id)

    async def rotate(self, tenant: str, webhook_id: str, grace: object) -> Subscription:
        """A new secret; the one it replaces keeps signing too for ``grace`` seconds."""
        if grace is None:
            grace = DEFAULT_GRACE_SECONDS
        if (
            isinstance(grace, bool)
            or not isinstance(grace, int)
            or not 0 <= grace <= MAX_GRACE_SECONDS
        ):
            raise InvalidValueException(
                detail=f"grace_seconds is an integer from 0 to {MAX_GRACE_SECONDS}"
            )
        for _ in range(ROTATION_TRIES):
            await self.get(tenant, webhook_id)
            until = datetime.now(UTC) + timedelta(seconds=grace)
            rotated = await self.repository.rotate(tenant, webhook_id, until)
            if rotated is not None:
                return rotated
        raise InvalidValueException(detail="the secret is being rotated by another request")

    async def replay(self, tenant: str, webhook_id: str, body: Mapping[str, Any]) -> int:
        """Deliver again every event from a sequence number, or from a time: the position
        the endpoint now delivers from."""
        await self.get(tenant, webhook_id)
        sequence, since = body.get("from_sequence"), body.get("since")
        if (sequence is None) == (since is None):
            raise InvalidValueException(detail="send from_sequence or since (not both)")
        if sequence is not None:
            if isinstance(sequence, bool) or not isinstance(sequence, int):
                sequence = 0
            if not 1 <= sequence <= MAX_SEQUENCE:
                raise InvalidValueException(
                    detail=f"from_sequence is an integer from 1 to {MAX_SEQUENCE}"
                )
            position = sequence
        else:
            position = await self._first_since(tenant, since)
        await self.repository.replay(tenant, webhook_id, position)
        self.engine.wake()
        return position

    async def _first_since(self, tenant: str, since: object) -> int:
        moment = client_instant(since)
        if moment is None:
            raise InvalidValueException(detail="since is an ISO 8601 date-time")
        found = await self.repository.first_since(tenant, moment)
        return found if found is not None else await self.relay.next_sequence(tenant)
