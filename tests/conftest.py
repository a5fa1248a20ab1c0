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
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.config import Settings
from scim_server.embedded import EmbeddedMongo
from scim_server.web.app import create_app

ADMIN_TOKEN = "test-admin-token"


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


@pytest.fixture
async def mongo_db(mongodb_uri: str, database_name: str) -> AsyncIterator[AsyncDatabase[Any]]:
    """A raw handle on the test's database, for tests that look under the API."""
    client: AsyncMongoClient[Any] = AsyncMongoClient(mongodb_uri)
    try:
        yield client[database_name]
    finally:
        await client.drop_database(database_name)
        await client.close()


@pytest.fixture
def settings(mongodb_uri: str, database_name: str) -> Settings:
    return Settings(
        mongodb_uri=mongodb_uri,
        database=database_name,
        admin_token=ADMIN_TOKEN,
        token_secret="test-signing-secret-of-at-least-32-bytes",
        public_url=None,
    )


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, mongo_db: Any) -> TestClient:
    """An HTTP client on a live server backed by the test's own database."""
    return await aiohttp_client(create_app(settings))


ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
UNCHECKED: Any = object()


async def scim_error(
    response: Any, status: int, scim_type: str | None = UNCHECKED
) -> dict[str, Any]:
    """Assert an RFC 7644 §3.12 error response and answer its body.

    ``scim_type`` is compared when given; ``None`` asserts the error carries none.
    """
    assert response.status == status, await response.text()
    assert response.content_type == "application/scim+json"
    assert "<html" not in (await response.text()).lower()
    body = dict(await response.json())
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert isinstance(body["detail"], str) and body["detail"]
    if scim_type is not UNCHECKED:
        assert body.get("scimType") == scim_type, body
    return body


def plan_stages(plan: Any, stage: str) -> list[dict[str, Any]]:
    """Every ``stage`` node of an ``explain()`` output, whatever the server nests them in."""
    if isinstance(plan, dict):
        found = [plan] if plan.get("stage") == stage else []
        return found + [node for value in plan.values() for node in plan_stages(value, stage)]
    if isinstance(plan, list):
        return [node for item in plan for node in plan_stages(item, stage)]
    return []


def index_scans(plan: Any) -> list[dict[str, Any]]:
    return plan_stages(plan, "IXSCAN")


async def make_tenant(client: TestClient, name: str) -> dict[str, str]:
    response = await client.post("/admin/tenants", json={"name": name}, headers=ADMIN)
    assert response.status == 201, await response.text()
    return dict(await response.json())


class Scim:
    """A tenant's SCIM API as seen by a client: base path plus bearer token."""

    def __init__(self, client: TestClient, tenant: str, token: str) -> None:
        self.client = client
        self.tenant = tenant
        self.token = token
        self.base = f"/scim/v2/{tenant}"

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        return await self.client.request(
            method, self.base + path, json=json, headers=self.headers(headers), **kwargs
        )

    async def get(self, path: str, **kw: Any) -> Any:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.request("POST", path, json=json, **kw)

    async def put(self, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.request("PUT", path, json=json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.request("PATCH", path, json=json, **kw)

    async def delete(self, path: str, **kw: Any) -> Any:
        return await self.request("DELETE", path, **kw)

    async def create_user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            **attributes,
        }
        response = await self.post("/Users", body)
        assert response.status == 201, await response.text()
        return dict(await response.json())

    async def create_group(
        self, display_name: str, members: list[str] | None = None, **attributes: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": display_name,
            **attributes,
        }
        if members:
            body["members"] = [{"value": m} for m in members]
        response = await self.post("/Groups", body)
        assert response.status == 201, await response.text()
        return dict(await response.json())


@pytest.fixture
async def scim(client: TestClient) -> Scim:
    """A fresh tenant ``acme`` and a client holding its token."""
    tenant = await make_tenant(client, "acme")
    return Scim(client, "acme", tenant["token"])


@pytest.fixture
async def other_scim(client: TestClient) -> Scim:
    """A second tenant ``globex``, to prove isolation."""
    tenant = await make_tenant(client, "globex")
    return Scim(client, "globex", tenant["token"])
