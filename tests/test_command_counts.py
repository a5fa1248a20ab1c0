"""The database commands each SCIM operation costs, pinned: a refactoring must not add any.

Counted with a PyMongo command listener on the server's own client, per request, over
real HTTP. Only the resources' and memberships' collections are counted (the token
check's cached lookups and the journal are not the operation's own cost).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from pymongo import monitoring

from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.scim import ADMIN, Scim, make_tenant
from tests.support.urns import GROUP, PATCH_OP, USER

COUNTED = frozenset({"users", "groups", "memberships", "seats", "tenants", "rate_limits"})


class Commands(monitoring.CommandListener):
    """The commands started on the counted collections while ``counting``."""

    def __init__(self) -> None:
        self.counting = False
        self.seen: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        if self.counting and isinstance(target, str) and target in COUNTED:
            self.seen[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Only starts are counted."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Only starts are counted."""

    async def of(self, request: Any) -> dict[str, int]:
        """The commands one awaited request costs, by command name."""
        self.seen.clear()
        self.counting = True
        try:
            response = await request
            assert response.status < 400, await response.text()
        finally:
            self.counting = False
        return dict(self.seen)


_LISTENER = Commands()
monitoring.register(_LISTENER)


@pytest.fixture
def commands() -> Iterator[Commands]:
    yield _LISTENER
    _LISTENER.counting = False


async def test_each_user_operation_costs_the_commands_it_always_did(
    scim: Scim, commands: Commands
) -> None:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada"}
    # The seat count (tenants) is taken with the insert.
    assert await commands.of(scim.post("/Users", json=body)) == {"update": 1, "insert": 1}
    created = await (await scim.get('/Users?filter=userName eq "ada"')).json()
    path = f"/Users/{created['Resources'][0]['id']}"
    assert await commands.of(scim.get(path)) == {"find": 1}
    assert await commands.of(scim.get('/Users?filter=userName eq "ada"')) == {"find": 1}
    assert await commands.of(scim.get("/Users?count=0")) == {"aggregate": 1}
    assert await commands.of(scim.get("/Users?cursor=&count=1")) == {"find": 1}
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ada"}],
    }
    # Read, conditional write, then the read-back (resource and its groups' hint).
    assert await commands.of(scim.patch(path, json=rename)) == {"find": 3, "update": 1}
    # Deactivated: the seat is given back after the write.
    assert await commands.of(scim.put(path, json={**body, "active": False})) == {
        "find": 3,
        "update": 2,
    }
    # Read, conditional delete, then the memberships it may leave (looked up whatever the
    # member-of hint says: see storage/memberships.py).
    assert await commands.of(scim.delete(path)) == {"find": 2, "delete": 1}


async def test_each_group_operation_costs_the_commands_it_always_did(
    scim: Scim, commands: Commands
) -> None:
    user = await (await scim.post("/Users", json={"userName": "ada", "schemas": [USER]})).json()
    group = {"schemas": [GROUP], "displayName": "eng", "members": [{"value": user["id"]}]}
    created = await commands.of(scim.post("/Groups", json=group))
    assert created == {"find": 3, "insert": 2, "update": 1, "findAndModify": 1}
    listed = await (await scim.get("/Groups")).json()
    path = f"/Groups/{listed['Resources'][0]['id']}"
    assert await commands.of(scim.get(path)) == {"find": 2}
    assert await commands.of(scim.get(f"/Users/{user['id']}")) == {"find": 3}
    remove = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "remove", "path": f'members[value eq "{user["id"]}"]'}],
    }
    assert await commands.of(scim.patch(path, json=remove)) == {
        "find": 4,
        "delete": 1,
        "findAndModify": 1,
        "update": 1,
    }
    assert await commands.of(scim.delete(path)) == {"find": 2, "delete": 2}


async def test_the_rate_limiter_adds_at_most_one_command_to_a_request(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, commands: Commands
) -> None:
    """At 19 requests per second a reservation is of one permit, so every request pays for
    one: the limiter's worst case (at 100, the default, one request in ten does). The
    tenant's limit is read once and kept for seconds, so it costs no request here. Off (the
    suite's setting, above) it adds none."""
    client = await aiohttp_client(create_app(replace(settings, rate_limit_per_second=100)))
    scim = Scim(client, "acme", (await make_tenant(client, "acme"))["token"])
    limit = {"requests_per_second": 19}
    assert (await client.put("/admin/tenants/acme/rate-limit", json=limit, headers=ADMIN)).ok
    body = {"schemas": [USER], "userName": "ada"}
    created = await (await scim.post("/Users", json=body)).json()
    path = f"/Users/{created['id']}"
    assert await commands.of(scim.get(path)) == {"find": 1, "findAndModify": 1}
    assert await commands.of(scim.get("/Users?count=0")) == {"aggregate": 1, "findAndModify": 1}
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ada"}],
    }
    assert await commands.of(scim.patch(path, json=rename)) == {
        "find": 3,
        "update": 1,
        "findAndModify": 1,
    }
