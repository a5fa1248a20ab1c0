"""Test fixtures: one real MongoDB wire-protocol server per session, a fresh database per test.

With ``MONGODB_URI`` set the suite runs against that server instead of starting
SecantusDB, so the same tests prove the code on a real ``mongod``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, settings
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.config import Settings
from scim_server.embedded import EmbeddedMongo
from scim_server.storage.memberships import MembershipRepository
from scim_server.web.app import create_app
from tests.support.scim import ADMIN_TOKEN, Scim, make_tenant

# The suite asserts no timings, and hypothesis's are no exception: its per-example deadline and its
# "too slow" health check fail a test when the machine is busy (as it is under pytest-xdist on two
# cores), not when the code is wrong.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")


@pytest.fixture(scope="session")
def mongodb_uri() -> Iterator[str]:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        yield uri
        return
    with EmbeddedMongo(":memory:") as server:
        yield server.uri


@pytest.fixture
def database_name() -> str:
    return f"scimtest_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
async def mongo_client(mongodb_uri: str) -> AsyncIterator[AsyncMongoClient[Any]]:
    """One client per test session for what the tests do under the API, the drop of each
    test's database included: a client of its own per test cost a connection's handshake and
    its sessions' end, as much store time again as the drop itself. A module with a store of
    its own (a ``mongodb_uri`` of its own) has a client of its own on it too."""
    async with AsyncMongoClient(mongodb_uri) as client:
        yield client


@pytest.fixture
async def mongo_db(
    mongo_client: AsyncMongoClient[Any], database_name: str
) -> AsyncIterator[AsyncDatabase[Any]]:
    """A raw handle on the test's database, for tests that look under the API."""
    try:
        yield mongo_client[database_name]
    finally:
        await mongo_client.drop_database(database_name)


@pytest.fixture
def settings(mongodb_uri: str, database_name: str) -> Settings:
    return Settings(
        mongodb_uri=mongodb_uri,
        database=database_name,
        admin_token=ADMIN_TOKEN,
        token_secret="test-signing-secret-of-at-least-32-bytes",
        public_url=None,
        # Off: tests send bursts no tenant's client would; tests/test_rate_limits.py turns it on.
        rate_limit_per_second=0,
    )


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, mongo_db: Any) -> TestClient[Any, Any]:
    """An HTTP client on a live server backed by the test's own database."""
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    return client


@pytest.fixture
async def scim(client: TestClient[Any, Any]) -> Scim:
    """A fresh tenant ``acme`` and a client holding its token."""
    tenant = await make_tenant(client, "acme")
    return Scim(client, "acme", tenant["token"])


@pytest.fixture
async def other_scim(client: TestClient[Any, Any]) -> Scim:
    """A second tenant ``globex``, to prove isolation."""
    tenant = await make_tenant(client, "globex")
    return Scim(client, "globex", tenant["token"])


@pytest.fixture(params=[True, False], ids=["claimed", "looked-up"])
def member_claims(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run a test both ways a lone member add may look its member up: claimed, the lookup and
    the hint's raise one ``findAndModify`` (on MongoDB); or looked up by a read that the add's
    update follows (on SecantusDB). Both are correct on either store; only their cost differs
    (``MembershipRepository.claims_in_one_command``)."""
    claims: bool = request.param
    monkeypatch.setattr(MembershipRepository, "claims_in_one_command", claims)
    return claims
