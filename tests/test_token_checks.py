"""What the token check costs the requests that share a token.

A token found live is remembered for a few seconds (``tokens.CACHE_SECONDS``); when it is not
remembered (first use, or that time passed), the requests arriving together wait for one read
of it, rather than each reading it (as an IdP's 16 connections did at each renewal).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from scim_server.config import Settings
from scim_server.core import tokens
from tests.support.commands import Commands
from tests.support.scim import ADMIN, Scim, make_tenant

BURST = 16


@pytest.fixture
def commands() -> Commands:
    return Commands({"tokens"})


@pytest.fixture
async def scim(aiohttp_client: Any, settings: Settings, mongo_db: Any, commands: Commands) -> Scim:
    client = await commands.client(aiohttp_client, settings)
    tenant = await make_tenant(client, "acme")
    return Scim(client, "acme", tenant["token"])


async def _burst(scim: Scim, commands: Commands) -> int:
    """The token reads of ``BURST`` requests sent together, all of them answered 200."""
    commands.answered.clear()
    responses = await asyncio.gather(*(scim.get("/ServiceProviderConfig") for _ in range(BURST)))
    assert [response.status for response in responses] == [200] * BURST
    return sum(seen["find"] for seen in commands.answered)


async def test_requests_sent_together_with_a_new_token_read_it_once(
    scim: Scim, commands: Commands
) -> None:
    assert await _burst(scim, commands) == 1
    assert await _burst(scim, commands) == 0  # remembered


async def test_requests_sent_together_once_the_token_is_forgotten_read_it_once(
    scim: Scim, commands: Commands, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "CACHE_SECONDS", 0.0)  # each reading is stale at once
    for _ in range(3):
        assert await _burst(scim, commands) == 1


async def test_a_token_revoked_while_it_is_read_is_refused_from_then_on(scim: Scim) -> None:
    """A revocation landing while requests wait for a reading of the token is not undone by
    that reading: the next request reads the token again, and is refused."""
    reading = asyncio.gather(*(scim.get("/ServiceProviderConfig") for _ in range(BURST)))
    token_id = await (await scim.client.get("/admin/tenants/acme/tokens", headers=ADMIN)).json()
    revoked = await scim.client.delete(
        f"/admin/tenants/acme/tokens/{token_id['tokens'][0]['token_id']}", headers=ADMIN
    )
    assert revoked.status == 204, await revoked.text()
    await reading
    assert (await scim.get("/ServiceProviderConfig")).status == 401
