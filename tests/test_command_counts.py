"""The database commands each SCIM operation costs, pinned: a refactoring must not add any.

Counted per request, over real HTTP, by the server's own mechanism: the command listener on
its client counts into the request's tally (the one ``scim_request_database_commands`` is
fed from), read here when the response is prepared. Only the resources' and memberships'
collections are counted (the token check's cached lookups are not the operation's own cost).
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from scim_server.config import Settings
from tests.support.commands import Commands
from tests.support.scim import Scim
from tests.support.urns import GROUP, PATCH_OP, USER

COUNTED = frozenset({"users", "groups", "memberships", "seats", "tenants"})


@pytest.fixture
def commands() -> Commands:
    return Commands(COUNTED)


@pytest.fixture
async def client(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, commands: Commands
) -> TestClient[Any, Any]:
    """The suite's client, on an application that hands each request's tally to ``commands``."""
    return await commands.client(aiohttp_client, settings)


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
