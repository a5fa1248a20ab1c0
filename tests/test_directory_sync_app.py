"""The example application (examples/directory_sync_app) alone, driven with signed deliveries.

Each delivery is signed with ``standardwebhooks`` as the server's webhooks sign it, and the
invitations go to a real SMTP server on 127.0.0.1 (aiosmtpd) whose mailbox the test reads.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from examples.directory_sync_app.app import Settings, create_app
from scim_server.embedded import free_port
from tests.support.mailbox import (
    STALE,
    Mailbox,
    event,
    new_secret,
    signed,
    signed_text,
    smtp_server,
)

SECRET = new_secret()
ADA = {
    "userName": "ada@example.com",
    "displayName": "Ada Lovelace",
    "emails": [{"value": "ada@example.com", "type": "work", "primary": True}],
    "active": True,
}


@pytest.fixture
async def app(aiohttp_client: Any) -> AsyncIterator[tuple[TestClient[Any, Any], Mailbox]]:
    with smtp_server() as (mailbox, port):
        client = await aiohttp_client(create_app(Settings(SECRET, smtp_port=port)))
        yield client, mailbox


async def deliver(
    client: TestClient[Any, Any], shaped: dict[str, Any], secret: str = SECRET, **kw: Any
) -> int:
    body, headers = signed(secret, shaped, **kw)
    response = await client.post("/webhooks/scim", data=body, headers=headers)
    return response.status


async def table(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    return list(await (await client.get("/users")).json())


async def test_a_new_active_user_is_stored_and_invited_once_however_often_it_is_delivered(
    app: tuple[TestClient[Any, Any], Mailbox],
) -> None:
    client, mailbox = app
    created = event("user.created", "u1", 1, ADA)
    assert await deliver(client, created) == 204
    assert await deliver(client, created) == 204  # at least once: the same webhook-id again
    statuses = await asyncio.gather(*(deliver(client, created) for _ in range(5)))
    assert statuses == [204] * 5
    assert await table(client) == [
        {
            "id": "u1",
            "user_name": "ada@example.com",
            "display_name": "Ada Lovelace",
            "email": "ada@example.com",
            "active": True,
            "invited": True,
        }
    ]
    assert mailbox.recipients() == ["ada@example.com"]
    assert "Ada Lovelace" in str(mailbox.messages[0].get_payload())


async def test_a_bad_or_stale_signature_is_refused_with_401_and_changes_nothing(
    app: tuple[TestClient[Any, Any], Mailbox],
) -> None:
    client, mailbox = app
    created = event("user.created", "u1", 1, ADA)
    assert await deliver(client, created, secret=new_secret()) == 401
    assert await deliver(client, created, at=datetime.now(UTC) - STALE) == 401
    body, headers = signed(SECRET, created)
    tampered = body.replace(b"ada@example.com", b"eve@example.com")
    assert (await client.post("/webhooks/scim", data=tampered, headers=headers)).status == 401
    unsigned = {k: v for k, v in headers.items() if k != "webhook-signature"}
    response = await client.post("/webhooks/scim", data=body, headers=unsigned)
    assert response.status == 401
    assert "signature refused" in (await response.json())["error"]
    assert await table(client) == []
    assert mailbox.messages == []
    assert await deliver(client, created) == 204  # the refusals did not mark it as seen


async def test_deactivation_reactivation_and_deletion_keep_the_table_and_invite_no_one_twice(
    app: tuple[TestClient[Any, Any], Mailbox],
) -> None:
    client, mailbox = app
    steps = [
        event("user.created", "u1", 1, ADA),
        event("user.deactivated", "u1", 2, {"active": False}),
        event("user.reactivated", "u1", 3, {"active": True}),
        event("user.updated", "u1", 4, {"displayName": "Ada King"}),
    ]
    for step in steps:
        assert await deliver(client, step) == 204
    [ada] = await table(client)
    assert (ada["active"], ada["display_name"], ada["email"]) == (True, "Ada King", ADA["userName"])
    assert await deliver(client, event("user.deleted", "u1", 5)) == 204
    assert await table(client) == []
    assert mailbox.recipients() == ["ada@example.com"]


async def test_a_user_created_inactive_is_invited_when_it_becomes_active(
    app: tuple[TestClient[Any, Any], Mailbox],
) -> None:
    client, mailbox = app
    assert await deliver(client, event("user.created", "u1", 1, {**ADA, "active": False})) == 204
    assert mailbox.messages == []
    assert await deliver(client, event("user.reactivated", "u1", 2, {"active": True})) == 204
    assert mailbox.recipients() == ["ada@example.com"]


async def test_a_late_retry_of_an_older_event_changes_nothing(
    app: tuple[TestClient[Any, Any], Mailbox],
) -> None:
    client, mailbox = app
    created = event("user.created", "u1", 1, ADA)
    deactivated = event("user.deactivated", "u1", 2, {"active": False})
    renamed = event("user.updated", "u1", 3, {"displayName": "Ada King"})
    for step in (created, renamed, deactivated):  # the deactivation retried after the rename
        assert await deliver(client, step) == 204
    [ada] = await table(client)
    assert (ada["active"], ada["display_name"]) == (True, "Ada King")
    assert await deliver(client, event("user.deleted", "u1", 4)) == 204
    assert await deliver(client, event("user.updated", "u1", 3, {"title": "late"})) == 204
    assert await table(client) == []
    assert mailbox.recipients() == ["ada@example.com"]


async def test_group_events_keep_each_groups_name_and_members(
    app: tuple[TestClient[Any, Any], Mailbox],
) -> None:
    client, _ = app
    for user in ("u1", "u2", "u3"):
        values = {**ADA, "userName": f"{user}@example.com", "emails": []}
        assert await deliver(client, event("user.created", user, 1, values)) == 204
    steps = [
        event("group.created", "g1", 1, {"displayName": "Eng"}, members=["u1"]),
        event("group.members_added", "g1", 2, members=["u2", "u3"]),
        event("group.members_removed", "g1", 3, members=["u1"]),
        event("group.updated", "g1", 4, {"displayName": "Engineering"}),
        event("group.created", "g2", 1, {"displayName": "Ops"}),
        event("group.members_added", "g2", 2, members=["u3"]),
        event("user.deleted", "u3", 2),
        event("group.members_removed", "g2", 3, members=["u3"]),
        event("group.members_removed", "g1", 5, members=["u3"]),
    ]
    for step in steps:
        assert await deliver(client, step) == 204
    groups = await (await client.get("/groups")).json()
    assert groups == {
        "g1": {"display_name": "Engineering", "members": ["u2"]},
        "g2": {"display_name": "Ops", "members": []},
    }
    assert await deliver(client, event("group.deleted", "g2", 4)) == 204
    assert list(await (await client.get("/groups")).json()) == ["g1"]


async def test_a_signed_body_that_is_no_event_is_refused_with_400(
    app: tuple[TestClient[Any, Any], Mailbox],
) -> None:
    client, _ = app
    shaped = event("user.created", "u1", 1, ADA)
    for broken in (
        {**shaped, "resource": {"type": "Robot", "id": "r", "version": 1}},
        {**shaped, "resource": {"type": "User", "id": "u1"}},
        {**shaped, "values": ["not", "an", "object"]},
    ):
        assert await deliver(client, broken) == 400
    body, headers = signed_text(SECRET, shaped["id"], "{not json")
    response = await client.post("/webhooks/scim", data=body, headers=headers)
    assert response.status == 400
    assert await table(client) == []


async def test_the_app_serves_as_its_readme_starts_it_and_wants_its_secret(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "examples.directory_sync_app", "--port", str(free_port())]
    environment = {k: v for k, v in os.environ.items() if k != "WEBHOOK_SECRET"}
    refused = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    assert refused.returncode == 2
    assert "WEBHOOK_SECRET" in refused.stderr
    database = tmp_path / "app.sqlite"
    url = f"http://127.0.0.1:{command[-1]}"
    process = subprocess.Popen(
        [*command, "--database", str(database)],
        env={**environment, "WEBHOOK_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    body, headers = signed(SECRET, event("user.created", "u1", 1, ADA))
                    async with http.post(f"{url}/webhooks/scim", data=body, headers=headers) as r:
                        assert r.status == 204
                    break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            async with http.get(f"{url}/users") as users:
                assert [u["id"] for u in await users.json()] == ["u1"]
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert database.exists()
