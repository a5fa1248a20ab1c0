"""Webhook deliveries survive faults, with real processes: a ``scim-server serve`` subprocess
on its own embedded store delivers to a real aiohttp receiver on 127.0.0.1 that fails for a
while, hangs, or outlives the server, SIGKILLed between writes and their delivery; or two
worker processes deliver at once. In every case every event arrives, in order per resource,
and each event the receiver gets is one the outbox holds (no event for a change that did not
land); the webhook is managed with the ``scim-server webhooks`` CLI."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook

from scim_server.embedded import MODULE
from tests.support.scim import ADMIN_TOKEN
from tests.support.served import Server, serving, start_server, stop
from tests.support.urns import PATCH_OP
from tests.support.webhooks import Receiver, start_receiver

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec(MODULE) is None, reason="needs SecantusDB for the embedded store"
)

FAST_RETRIES = [
    "--webhook-allow-private",
    "--webhook-retry-base-seconds",
    "0.05",
    "--webhook-retry-cap-seconds",
    "0.3",
    "--webhook-timeout-seconds",
    "1",
]
"""Receivers on 127.0.0.1, retries within a fraction of a second, an attempt held a second."""


def cli(server: Server, *arguments: str) -> Any:
    """``scim-server webhooks ARGUMENTS`` against the served server: what it prints, as JSON."""
    command = [sys.executable, "-m", "scim_server", "webhooks", *arguments]
    command += ["--tenant", "acme", "--url", server.url, "--admin-token", ADMIN_TOKEN]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def _writes(server: Server, users: int, rounds: int) -> None:
    """Users created, then patched ``rounds`` times, all at once: each answered 201 / 200."""
    created = await asyncio.gather(*(server.create_user(f"user{n}") for n in range(users)))
    assert [status for status, _ in created] == [201] * users
    for round_ in range(rounds):
        patch = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "title", "value": f"t{round_}"}],
        }
        answers = await asyncio.gather(
            *(
                server.request("PATCH", f"/scim/v2/acme/Users/{body['id']}", patch)
                for _, body in created
            )
        )
        assert [status for status, _, _ in answers] == [200] * users


async def _outbox(server: Server) -> list[dict[str, Any]]:
    status, _, page = await server.request(
        "GET", "/admin/tenants/acme/events?from_sequence=1&limit=1000", token=ADMIN_TOKEN
    )
    assert status == 200
    return list(page["events"])


async def _all_delivered(server: Server, receiver: Receiver, expected: int) -> list[dict[str, Any]]:
    """Once the outbox holds ``expected`` events and the receiver got each: the outbox."""
    for _ in range(1200):
        events = await _outbox(server)
        if len(events) >= expected and {e["id"] for e in events} <= {
            got.event["id"] for got in receiver.received
        }:
            return events
        await asyncio.sleep(0.05)
    raise AssertionError(f"{expected} events expected, {len(receiver.received)} deliveries")


def assert_in_order_per_resource(receiver: Receiver, outbox: Sequence[dict[str, Any]]) -> None:
    """Every delivery is of an event of the outbox; per resource, the versions delivered
    never go back, except where an event is delivered again (at least once)."""
    stored = {event["id"] for event in outbox}
    assert {got.event["id"] for got in receiver.received} == stored
    first: dict[str, list[int]] = defaultdict(list)
    seen: set[str] = set()
    for got in receiver.received:
        event = got.event
        if event["id"] not in seen:
            seen.add(event["id"])
            first[event["resource"]["id"]].append(event["resource"]["version"])
    assert all(versions == sorted(versions) for versions in first.values()), first


async def test_a_receiver_failing_for_a_while_then_recovering_gets_every_event_in_order(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    receiver = await start_receiver(aiohttp_server)
    receiver.answer = lambda _: 500 if len(receiver.received) <= 12 else 200
    async with serving(tmp_path / "data", options=FAST_RETRIES) as server:
        webhook = cli(server, "create", "--webhook-url", receiver.url())
        await _writes(server, users=4, rounds=3)
        outbox = await _all_delivered(server, receiver, 16)
        assert_in_order_per_resource(receiver, outbox)
        # Strictly in sequence: the first event was tried until it went through, then the rest.
        firsts = [got.event["sequence"] for got in receiver.received]
        assert firsts[:13] == [1] * 13 and firsts[13:] == list(range(2, 17))
        for got in receiver.received:
            Webhook(webhook["secret"]).verify(got.body, got.headers)

        log = cli(server, "deliveries", webhook["id"], "--limit", "1000")["deliveries"]
        assert Counter(attempt["outcome"] for attempt in log) == {"failed": 12, "delivered": 16}
        shown = cli(server, "show", webhook["id"])
        assert (shown["next_sequence"], shown["failed_attempts"]) == (17, 0)


async def test_a_hanging_receiver_costs_an_attempt_its_time_limit_then_it_is_retried(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    receiver = await start_receiver(aiohttp_server)
    receiver.answer = lambda _: None if len(receiver.received) <= 2 else 200
    async with serving(tmp_path / "data", options=FAST_RETRIES) as server:
        webhook = cli(server, "create", "--webhook-url", receiver.url())
        await _writes(server, users=3, rounds=1)
        outbox = await _all_delivered(server, receiver, 6)
        assert_in_order_per_resource(receiver, outbox)
        log = cli(server, "deliveries", webhook["id"])["deliveries"]
        held = [attempt for attempt in log if attempt["outcome"] == "failed"]
        assert len(held) == 2
        assert all(a["status"] is None and a["response"] == "no answer within 1 s" for a in held)


async def test_a_server_killed_between_writes_and_their_delivery_delivers_them_on_restart(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    receiver = await start_receiver(aiohttp_server)
    receiver.answer = lambda _: None  # nothing is delivered before the kill
    data = tmp_path / "data"
    async with serving(data, options=FAST_RETRIES) as server:
        webhook = cli(server, "create", "--webhook-url", receiver.url())
        await _writes(server, users=5, rounds=2)
        await receiver.wait_for(1)  # the first attempt is under way
        stop(server.process)  # SIGKILL, and its store with it

        receiver.answer = lambda _: 200
        server.process, server.url = start_server(data, options=FAST_RETRIES)
        await server.wait_ready()
        # The killed process's lease on the endpoint expires; the restarted one delivers all.
        outbox = await _all_delivered(server, receiver, 15)
        assert len(outbox) == 15
        assert_in_order_per_resource(receiver, outbox)
        assert cli(server, "show", webhook["id"])["next_sequence"] == 16


async def test_two_workers_deliver_each_event_once_per_attempt_in_order_per_resource(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    receiver = await start_receiver(aiohttp_server)
    receiver.answer = lambda _: 503 if len(receiver.received) % 4 == 0 else 200
    async with serving(tmp_path / "data", workers=2, options=FAST_RETRIES) as server:
        webhook = cli(server, "create", "--webhook-url", receiver.url())
        await _writes(server, users=8, rounds=3)
        outbox = await _all_delivered(server, receiver, 32)
        assert_in_order_per_resource(receiver, outbox)
        # Strictly in sequence, each event sent again only after its attempt failed.
        log = cli(server, "deliveries", webhook["id"], "--limit", "1000")["deliveries"]
        received = Counter(got.event["id"] for got in receiver.received)
        attempted = Counter(attempt["event_id"] for attempt in log)
        assert received == attempted
        delivered = Counter(a["event_id"] for a in log if a["outcome"] == "delivered")
        assert delivered == Counter({event["id"]: 1 for event in outbox})
        sequences = [got.event["sequence"] for got in receiver.received]
        assert sequences == sorted(sequences)
