"""Seats over the admin API, and what the store holds of them."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.support.scim import ADMIN, Scim
from tests.support.urns import USER


async def set_seats(client: TestClient, seats: int | None, tenant: str = "acme") -> Any:
    response = await client.put(
        f"/admin/tenants/{tenant}/seats", json={"seats": seats}, headers=ADMIN
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def usage(client: TestClient, tenant: str = "acme") -> Any:
    response = await client.get(f"/admin/tenants/{tenant}/seats", headers=ADMIN)
    assert response.status == 200, await response.text()
    return await response.json()


async def create(scim: Scim, user_name: str, **attributes: Any) -> Any:
    return await scim.post("/Users", {"schemas": [USER], "userName": user_name, **attributes})


async def active_in_store(mongo_db: AsyncDatabase[Any], tenant: str = "acme") -> int:
    return await mongo_db["users"].count_documents({"tenant": tenant, "r.active": {"$ne": False}})


async def counter(mongo_db: AsyncDatabase[Any], tenant: str = "acme") -> int:
    document = await mongo_db["tenants"].find_one({"_id": tenant})
    assert document is not None
    return int(document["seats_used"])
