"""When the relay's moves wake the delivery engine: only for a tenant with an enabled endpoint,
as its process knows them (read at each poll, and at once for the endpoints it creates or
enables itself). A move in a tenant with none starts no command on ``subscriptions``.

Here the engine runs on a real database with the real relay, webhook channel and sender, but
polls once an hour, so that every round it makes in a test is one a move or an endpoint's
change woke it for; the writes go through ``Provisioning`` with no relay task running, and the
test moves their events itself (``Relay.drain``). Deliveries go to a real aiohttp receiver on
127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import monitoring

from scim_server.core.cursors import CursorCodec
from scim_server.core.delivery import TASK as DELIVERY_TASK
from scim_server.core.delivery import DeliveryEngine, RetryPolicy
from scim_server.core.provisioning import Provisioning
from scim_server.core.scope import Scope
from scim_server.core.ssf import push
from scim_server.core.ssf.keys import ServerKey
from scim_server.core.ssf.transmitter import Transmitter
from scim_server.core.webhooks import CHANNEL, WebhookChannel, Webhooks
from scim_server.models import USERS
from scim_server.storage.database import CommandCounter, Database
from scim_server.storage.delivery import SUBSCRIPTIONS, DeliveryRepository
from scim_server.storage.events import Client
from scim_server.storage.ssf import SsfRepository
from scim_server.storage.tenants import TenantRepository
from scim_server.web.outbound import HttpSender
from tests.support.ssf import PROV, PUSH
from tests.support.urns import USER
from tests.support.webhooks import Receiver, start_receiver

QUIET = "quiet"
"""A tenant with no endpoint."""
HOOKED = "hooked"
"""A tenant with a webhook."""
HOUR = 3600.0
ROUNDS = 400
"""How many times a test looks for the engine's deliveries to have ended (0.025 s apart)."""


class EngineCommands:
    """The commands the delivery engine's own tasks start on ``subscriptions``, by name; and
    how many of its reads of the tenants served (``distinct``) have been answered."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.served_reads = 0

    def note(self, event: monitoring.CommandStartedEvent) -> None:
        task = asyncio.current_task()
        if task is None or task.get_name() != DELIVERY_TASK:
            return
        if event.command.get(event.command_name) == SUBSCRIPTIONS:
            self.seen[event.command_name] += 1

    def answered(self, event: monitoring.CommandSucceededEvent) -> None:
        self.served_reads += event.command_name == "distinct"

    def taken(self) -> dict[str, int]:
        """What was seen since the last call."""
        seen, self.seen = dict(self.seen), Counter()
        return seen


@pytest.fixture
def engine_commands(monkeypatch: pytest.MonkeyPatch) -> EngineCommands:
    started, succeeded = CommandCounter.started, CommandCounter.succeeded
    commands = EngineCommands()

    def noting(counter: CommandCounter, event: monitoring.CommandStartedEvent) -> None:
        commands.note(event)
        started(counter, event)

    def answering(counter: CommandCounter, event: monitoring.CommandSucceededEvent) -> None:
        commands.answered(event)
        succeeded(counter, event)

    monkeypatch.setattr(CommandCounter, "started", noting)
    monkeypatch.setattr(CommandCounter, "succeeded", answering)
    return commands


@dataclass
class Wiring:
    provisioning: Provisioning
    engine: DeliveryEngine
    webhooks: Webhooks
    transmitter: Transmitter
    repository: DeliveryRepository
    receiver: Receiver
    commands: EngineCommands
    written: int = 0

    async def start(self) -> None:
        """Start the engine, and wait until its first read of the tenants served is answered:
        an endpoint created after is one it learns of from this process, or at its next poll
        (an hour away)."""
        await self.engine.start()
        for _ in range(ROUNDS):
            if self.commands.served_reads:
                return
            await asyncio.sleep(0.025)
        raise AssertionError("the engine did not read the tenants served")

    async def write(self, tenant: str) -> None:
        """A user created in ``tenant``, its event moved to the outbox by this process."""
        self.written += 1
        scope = Scope(tenant, f"http://127.0.0.1/scim/v2/{tenant}", Client("scim", "t", "other"))
        body = {"schemas": [USER], "userName": f"user{self.written}"}
        await self.provisioning.create(USERS, scope, body)
        await self.provisioning.relay.drain()

    async def delivered(self, count: int) -> None:
        """Once the receiver has ``count`` deliveries and the engine's tasks delivering them
        have ended (the loop's own task is the one left)."""
        await self.receiver.wait_for(count)
        for _ in range(ROUNDS):
            if len(_engine_tasks()) == 1:
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"the engine's deliveries did not end: {_engine_tasks()}")


def _engine_tasks() -> list[asyncio.Task[Any]]:
    return [task for task in asyncio.all_tasks() if task.get_name() == DELIVERY_TASK]


@pytest.fixture
async def wiring(
    mongodb_uri: str,
    database_name: str,
    mongo_db: Any,
    aiohttp_server: Any,
    engine_commands: EngineCommands,
) -> AsyncIterator[Wiring]:
    """The engine, not started, and its parts; stopped at the end of the test."""
    database = Database.connect(mongodb_uri, database_name)
    await database.ensure_indexes()
    repository = DeliveryRepository(database)
    await repository.ensure_indexes(HOUR)
    for tenant in (QUIET, HOOKED):
        await TenantRepository(database).create(tenant, datetime.now(UTC))
    provisioning = Provisioning(database, max_results=100, cursors=CursorCodec("s" * 32, 600))
    streams = SsfRepository(database)
    await streams.ensure_indexes()
    key = ServerKey(database)
    sender = HttpSender(allow_private=True)
    engine = DeliveryEngine(
        repository,
        provisioning.relay,
        {CHANNEL: WebhookChannel(), push.CHANNEL: push.PushChannel(streams, key)},
        sender,
        RetryPolicy(),
        poll_seconds=HOUR,
    )
    relay = provisioning.relay
    webhooks = Webhooks(repository, engine, relay, allow_private=True)
    transmitter = Transmitter(key, streams, relay, repository, engine, allow_private=True)
    receiver = await start_receiver(aiohttp_server)
    yield Wiring(provisioning, engine, webhooks, transmitter, repository, receiver, engine_commands)
    await engine.stop()
    await sender.close()
    await database.close()


async def test_a_move_in_a_tenant_with_no_endpoint_starts_no_subscriptions_command(
    wiring: Wiring, engine_commands: EngineCommands
) -> None:
    """What the engine's tasks start on ``subscriptions`` for a write in the hooked tenant is
    the same with a write in the quiet tenant before it: the quiet one's move woke nothing.
    (Were it to, that wake gets a round of its own, one more ``find``: the hooked tenant's
    write awaits the database before its move, and the engine takes the first wake then.)"""
    await wiring.engine.start()
    await wiring.webhooks.create(HOOKED, {"url": wiring.receiver.url()})
    await wiring.write(HOOKED)
    await wiring.delivered(1)
    engine_commands.taken()

    await wiring.write(HOOKED)
    await wiring.delivered(2)
    hooked_alone = engine_commands.taken()
    assert hooked_alone["find"] >= 1  # the look for due endpoints the move woke

    await wiring.write(QUIET)
    await wiring.write(HOOKED)
    await wiring.delivered(3)
    assert engine_commands.taken() == hooked_alone


async def test_an_endpoint_this_process_creates_is_delivered_to_at_once(
    wiring: Wiring,
) -> None:
    """Created after the engine's last poll, and the next an hour away: the moves wake the
    engine all the same, since the creation told it the tenant has an endpoint. (The round
    the creation itself wakes may deliver the first write's event; the second write comes
    after that round.)"""
    await wiring.start()
    await wiring.write(HOOKED)  # before the webhook: not delivered to it
    await wiring.webhooks.create(HOOKED, {"url": wiring.receiver.url()})
    await wiring.write(HOOKED)
    await wiring.delivered(1)
    await wiring.write(HOOKED)
    await wiring.delivered(2)
    assert [got.event["sequence"] for got in wiring.receiver.received] == [2, 3]


async def test_an_endpoint_enabled_again_by_this_process_is_delivered_to_at_once(
    wiring: Wiring,
) -> None:
    await wiring.start()
    hook = await wiring.webhooks.create(HOOKED, {"url": wiring.receiver.url()})
    await wiring.webhooks.update(HOOKED, hook.id, {"enabled": False})
    await wiring.write(HOOKED)
    await wiring.webhooks.update(HOOKED, hook.id, {"enabled": True})
    await wiring.delivered(1)
    await wiring.write(HOOKED)
    await wiring.delivered(2)
    assert [got.event["sequence"] for got in wiring.receiver.received] == [1, 2]


async def test_an_endpoint_stored_before_the_engine_started_is_known_from_its_first_poll(
    wiring: Wiring,
) -> None:
    """An endpoint another process created (or this one before a restart): the engine reads
    the tenants with endpoints as it starts, so the tenant's moves wake it from then on."""
    await wiring.repository.create(
        HOOKED, CHANNEL, wiring.receiver.url(), None, 1, datetime.now(UTC)
    )
    await wiring.start()
    await wiring.write(HOOKED)
    await wiring.delivered(1)
    await wiring.write(HOOKED)
    await wiring.delivered(2)


async def test_a_push_stream_this_process_creates_is_delivered_to_at_once(
    wiring: Wiring,
) -> None:
    """An SSF push stream is an endpoint of the engine's ``ssf-push`` channel: its creation
    tells the engine too."""
    wiring.receiver.answer = lambda _: 202
    await wiring.start()
    delivery = {"method": PUSH, "endpoint_url": wiring.receiver.url()}
    body = {"delivery": delivery, "events_requested": [f"{PROV}create:full"]}
    await wiring.transmitter.create_stream(HOOKED, "receiver", "http://127.0.0.1/ssf", body)
    await wiring.write(HOOKED)
    await wiring.delivered(1)
    await wiring.write(HOOKED)
    await wiring.delivered(2)
