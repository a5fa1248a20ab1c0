"""A real SMTP server on 127.0.0.1 (aiosmtpd) whose mailbox a test reads, and signed deliveries
of provisioning events as the server's webhooks send them (Standard Webhooks)."""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from standardwebhooks.webhooks import Webhook

from scim_server.embedded import free_port


class Mailbox:
    """Every message the SMTP server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook for a message received: kept, and accepted."""
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        self.messages.append(message_from_bytes(raw))
        return "250 OK"

    def recipients(self) -> list[str]:
        return sorted(str(m["To"]) for m in self.messages)


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on a free loopback port, and its mailbox."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signed(
    secret: str, event: dict[str, Any], *, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """One delivery of ``event``: its body and its Standard Webhooks headers."""
    return signed_text(secret, event["id"], json.dumps(event), at=at)


def signed_text(
    secret: str, message_id: str, text: str, *, at: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """Any body, signed as a delivery of message ``message_id``."""
    when = at or datetime.now(UTC)
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, when, text),
        "content-type": "application/json",
    }
    return text.encode(), headers


STALE = timedelta(minutes=10)
"""Older than the five minutes Standard Webhooks allows."""


def event(
    kind: str,
    resource_id: str,
    version: int,
    values: dict[str, Any] | None = None,
    members: list[str] | None = None,
) -> dict[str, Any]:
    """A provisioning event in the shape of docs/events.md."""
    shaped: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": kind,
        "tenant": "acme",
        "sequence": 1,
        "time": datetime.now(UTC).isoformat(),
        "resource": {
            "type": "User" if kind.startswith("user.") else "Group",
            "id": resource_id,
            "version": version,
        },
        "attributes": sorted(values or {}),
        "values": values or {},
        "client": {"via": "scim", "token_id": "t1", "idp": "okta"},
    }
    if members is not None:
        shaped["members"] = members
    return shaped
