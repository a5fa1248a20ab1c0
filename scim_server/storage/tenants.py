"""Tenants and the bearer tokens issued for them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from scim_server.storage.database import Database, Document


class TenantExists(Exception):
    """A tenant of that name already exists."""


class TenantRepository:
    def __init__(self, database: Database) -> None:
        self.tenants = database.tenants
        self.tokens = database.tokens

    async def create(self, name: str, now: datetime) -> Document:
        # Unlimited seats, none used: see scim_server.core.seats.
        document = {"_id": name, "created": now, "seats": None, "seats_used": 0}
        try:
            await self.tenants.insert_one(document)
        except DuplicateKeyError:
            raise TenantExists(name) from None
        return document

    async def get(self, name: str) -> Document | None:
        return await self.tenants.find_one({"_id": name})

    async def list(self) -> list[Document]:
        return await self.tenants.find({}).sort("_id", 1).to_list(None)

    async def delete(self, name: str) -> bool:
        result = await self.tenants.delete_one({"_id": name})
        await self.tokens.delete_many({"tenant": name})
        return result.deleted_count == 1

    async def add_token(
        self,
        tenant: str,
        token_id: str,
        now: datetime,
        expires: datetime | None,
        description: str | None,
    ) -> None:
        await self.tokens.insert_one(
            {
                "_id": token_id,
                "tenant": tenant,
                "created": now,
                "expires": expires,
                "description": description,
                "revoked": None,
            }
        )

    async def token(self, tenant: str, token_id: str) -> Document | None:
        return await self.tokens.find_one({"tenant": tenant, "_id": token_id})

    async def list_tokens(self, tenant: str) -> list[Document]:
        return await self.tokens.find({"tenant": tenant}).sort("created", 1).to_list(None)

    async def revoke_token(self, tenant: str, token_id: str, now: datetime) -> bool:
        query: dict[str, Any] = {"tenant": tenant, "_id": token_id}
        result = await self.tokens.update_one(query, {"$set": {"revoked": now}})
        return result.matched_count == 1
