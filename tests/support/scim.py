"""A tenant's SCIM API as a test drives it, and the assertions the tests share.

``ADMIN`` carries the admin token the suite's ``settings`` fixture configures.
"""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.urns import ERROR, GROUP, USER

ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
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


async def make_tenant(client: TestClient[Any, Any], name: str) -> dict[str, str]:
    response = await client.post("/admin/tenants", json={"name": name}, headers=ADMIN)
    assert response.status == 201, await response.text()
    return dict(await response.json())


class Scim:
    """A tenant's SCIM API as seen by a client: base path plus bearer token."""

    def __init__(self, client: TestClient[Any, Any], tenant: str, token: str) -> None:
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
            "schemas": [USER],
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
            "schemas": [GROUP],
            "displayName": display_name,
            **attributes,
        }
        if members:
            body["members"] = [{"value": m} for m in members]
        response = await self.post("/Groups", body)
        assert response.status == 201, await response.text()
        return dict(await response.json())
