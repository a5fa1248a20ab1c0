"""A real webhook receiver on 127.0.0.1 (an aiohttp server in the test's process), and the
admin calls the webhook tests share."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from scim_server.config import Settings
from tests.support.scim import ADMIN

ROUNDS = 400
"""How many times a test looks for deliveries it expects (0.025 s apart: ten seconds)."""


def delivering_to_tests(settings: Settings) -> Settings:
    """Receivers on 127.0.0.1, and retries in fractions of a second."""
    return dataclasses.replace(
        settings,
        webhook_allow_private=True,
        webhook_retry_base_seconds=0.05,
        webhook_retry_cap_seconds=0.2,
        webhook_timeout_seconds=2.0,
    )


@dataclass(frozen=True)
class Received:
    """One POST as the receiver got it."""

    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(orjson.loads(self.body))


@dataclass
class Receiver:
    """Records every POST and answers the status ``answer`` says (200 unless told otherwise)
    with the body ``reply`` makes of it, or, when it says None, holds the request without ever
    answering."""

    received: list[Received] = field(default_factory=list)
    answer: Callable[[Received], int | None] = lambda _: 200
    reply: Callable[[int], str] = lambda status: f"receiver says {status}"
    server: TestServer | None = None
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the receiver shuts down: a held request ends then, rather than holding the
    shutdown for its whole grace."""

    async def handle(self, request: web.Request) -> web.Response:
        got = Received(dict(request.headers), await request.read())
        self.received.append(got)
        status = self.answer(got)
        if status is None:
            await self.closing.wait()  # held until the receiver shuts down
            status = 503
        return web.Response(status=status, text=self.reply(status))

    def url(self, path: str = "/hook") -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def events(self) -> list[dict[str, Any]]:
        return [got.event for got in self.received]

    async def wait_for(self, count: int) -> list[Received]:
        """The POSTs received, once there are at least ``count``."""
        for _ in range(ROUNDS):
            if len(self.received) >= count:
                return list(self.received)
            await asyncio.sleep(0.025)
        raise AssertionError(f"{count} deliveries expected, {len(self.received)} came")


async def start_receiver(aiohttp_server: Any) -> Receiver:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)

    async def release(_: web.Application) -> None:
        receiver.closing.set()

    app.on_shutdown.append(release)
    receiver.server = await aiohttp_server(app, host="127.0.0.1")
    return receiver


async def admin_call(
    client: TestClient[Any, Any], method: str, path: str, json: Any = None
) -> tuple[int, Any]:
    """An admin API call: its status and JSON body (None when empty)."""
    response = await client.request(method, f"/admin{path}", json=json, headers=ADMIN)
    body = await response.json(content_type=None) if response.content_length != 0 else None
    return response.status, body


async def register(
    client: TestClient[Any, Any], tenant: str, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = events
    status, created = await admin_call(client, "POST", f"/tenants/{tenant}/webhooks", body)
    assert status == 201, created
    return dict(created)
