"""Writes of the same resources from two server processes on one store, over HTTP.

Two ``scim-server serve`` processes share one database (and token secret), as two workers or two
instances do. Each process's writes of one user take turns in its line and are written in
rounds; the two processes' rounds race on the user's version. Every answer must match what is
stored, and every change answered 200 is stored once: a user's version counts exactly its
changes.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from scim_server.embedded import free_port
from tests.support.scim import ADMIN, ADMIN_TOKEN
from tests.support.served import announced
from tests.support.urns import GROUP, PATCH_OP, USER

TENANT = "acme"
CLIENTS = 16
"""Concurrent clients of different users, half on each process (wrk's 16 connections in
``bench.against_peer``)."""


class Servers:
    """Two served processes on one database, and a tenant's token that both accept."""

    def __init__(self, urls: list[str], http: aiohttp.ClientSession) -> None:
        self.urls = urls
        self.http = http
        self.token = ""

    async def request(self, server: int, method: str, path: str, json: Any = None) -> Any:
        """The status and body of a SCIM request to ``server`` (0 or 1)."""
        headers = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.urls[server]}/scim/v2/{TENANT}{path}"
        async with self.http.request(method, url, json=json, headers=headers) as response:
            return response.status, await response.json(content_type=None)


@pytest.fixture
def urls(mongodb_uri: str) -> Iterator[list[str]]:
    database = f"races_{uuid.uuid4().hex[:8]}"
    ports = [free_port(), free_port()]
    commands = [
        [
            sys.executable,
            *("-m", "scim_server", "serve", "--port", str(port), "--mongodb-uri", mongodb_uri),
            *("--database", database, "--admin-token", ADMIN_TOKEN, "--token-secret", "r" * 32),
            *("--log-level", "WARNING", "--rate-limit", "0"),
        ]
        for port in ports
    ]
    with announced(commands[0]), announced(commands[1]):
        yield [f"http://127.0.0.1:{port}" for port in ports]


@pytest.fixture
async def servers(urls: list[str]) -> AsyncIterator[Servers]:
    connector = aiohttp.TCPConnector(limit=2 * CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as http:
        servers = Servers(urls, http)
        async with http.post(
            f"{urls[0]}/admin/tenants", json={"name": TENANT}, headers=ADMIN
        ) as response:
            assert response.status == 201, await response.text()
            servers.token = (await response.json())["token"]
        yield servers


async def _users(servers: Servers, count: int) -> list[str]:
    ids = []
    for n in range(count):
        status, body = await servers.request(
            0, "POST", "/Users", {"schemas": [USER], "userName": f"user{n}"}
        )
        assert status == 201, body
        ids.append(body["id"])
    return ids


def _add_email(value: str) -> dict[str, Any]:
    operation = {"op": "add", "path": "emails", "value": [{"value": value, "type": "work"}]}
    return {"schemas": [PATCH_OP], "Operations": [operation]}


def _version(body: dict[str, Any]) -> int:
    return int(body["meta"]["version"].removeprefix('W/"').removesuffix('"'))


async def test_two_processes_hammering_one_user_answer_every_patch(servers: Servers) -> None:
    """Many clients PATCH one user through one process and two through the other, none with
    If-Match: none is refused (no client asked for a version, so none may get a 409, a 412 or
    a 503), and the user's version counts each change once.

    The many clients' PATCHes wait in their process's line and are written in rounds of many
    changes, each longer to apply than the other process's rounds of one or two: such a round
    lost its conditional write to the other process twenty times in a row, and its PATCHes got
    503 (``MAX_WRITE_ATTEMPTS``), as two workers did under ``bench.against_peer``.
    """
    (user,) = await _users(servers, 1)
    clients, per_client = 24, 60

    async def client(n: int) -> list[tuple[int, Any]]:
        answers = []
        for k in range(per_client):
            rename = {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "displayName", "value": f"c{n}k{k}"}],
            }
            server = 1 if n < 2 else 0
            answers.append(await servers.request(server, "PATCH", f"/Users/{user}", rename))
        return answers

    answers = [
        answer for each in await asyncio.gather(*map(client, range(clients))) for answer in each
    ]
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: clients * per_client}, [b for s, b in answers if s != 200][:3]
    versions = [_version(body) for _, body in answers]
    assert len(set(versions)) == len(versions)
    _, stored = await servers.request(0, "GET", f"/Users/{user}")
    assert _version(stored) == 1 + clients * per_client == max(versions)


async def test_two_processes_patching_the_same_users_lose_no_change(servers: Servers) -> None:
    """Each client adds emails to every user in turn, through one process or the other: every
    email answered 200 is stored, each answer shows its own email at a version of its own, and
    each user's version counts exactly its changes."""
    users = await _users(servers, CLIENTS)
    rounds = 3

    async def client(n: int) -> list[tuple[str, str, int, Any]]:
        answers = []
        for k in range(rounds):
            for m in range(len(users)):
                target = users[(m + n) % len(users)]  # every client on another user at first
                email = f"c{n}r{k}u{m}@example.com"
                status, body = await servers.request(
                    n % 2, "PATCH", f"/Users/{target}", _add_email(email)
                )
                answers.append((target, email, status, body))
        return answers

    answers = [
        answer for each in await asyncio.gather(*map(client, range(CLIENTS))) for answer in each
    ]
    assert Counter(status for *_, status, _ in answers) == {200: len(answers)}
    for user in users:
        mine = [(email, body) for target, email, _, body in answers if target == user]
        _, stored = await servers.request(1, "GET", f"/Users/{user}")
        stored_emails = {entry["value"] for entry in stored.get("emails", [])}
        assert stored_emails == {email for email, _ in mine}
        versions = [_version(body) for _, body in mine]
        assert len(set(versions)) == len(versions)
        assert _version(stored) == 1 + len(mine) == max(versions)
        for email, body in mine:
            assert email in {entry["value"] for entry in body["emails"]}


async def test_member_replacements_in_two_processes_leave_one_replacements_members(
    servers: Servers,
) -> None:
    """Each PUT sets a group's members to exactly its own. Sent together to two processes
    (whose lines know nothing of each other), the group ends with one PUT's members, never
    the union of what each found absent."""
    users = await _users(servers, 8)
    status, group = await servers.request(
        0, "POST", "/Groups", {"schemas": [GROUP], "displayName": "Everyone"}
    )
    assert status == 201, group
    path = f"/Groups/{group['id']}"
    for _ in range(3):
        answers = await asyncio.gather(
            *(
                servers.request(
                    n % 2,
                    "PUT",
                    path,
                    {"schemas": [GROUP], "displayName": "Everyone", "members": [{"value": user}]},
                )
                for n, user in enumerate(users)
            )
        )
        assert [status for status, _ in answers] == [200] * len(users), answers
        status, after = await servers.request(0, "GET", path)
        assert len(after.get("members") or []) == 1, after.get("members")
