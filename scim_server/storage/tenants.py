"""Tenants and the bearer tokens issued for them, handed out as typed records."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from scim_server.storage.database import Database, Document, translate_driver_errors
from scim_server.storage.seats import SeatCount, seat_count

RESOURCE_TYPES = "resource_types"
"""The names of the custom resource types the tenant serves (absent: none)."""

USER_EXTENSIONS = "user_extensions"
"""The tenant's own User extensions, each its RFC 7643 §7 schema document (absent: none)."""

DUPLICATE_GROUP_NAMES = "duplicate_group_names"
"""The tenant's setting letting its groups share a displayName (absent: they may not)."""


class TenantExists(Exception):
    """A tenant of that name already exists."""


@dataclass(frozen=True)
class TenantRecord:
    name: str
    created: datetime
    seats: SeatCount


@dataclass(frozen=True)
class TokenRecord:
    """A SCIM bearer token as issued: its id and dates, never the token itself."""

    id: str
    tenant: str
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    description: str | None


def _tenant(document: Document) -> TenantRecord:
    return TenantRecord(document["_id"], document["created"], seat_count(document))


def _token(document: Document) -> TokenRecord:
    return TokenRecord(
        id=document["_id"],
        tenant=document["tenant"],
        created=document["created"],
        expires=document.get("expires"),
        revoked=document.get("revoked"),
        description=document.get("description"),
    )


@translate_driver_errors
class TenantRepository:
    def __init__(self, database: Database) -> None:
        self.tenants = database.tenants
        self.tokens = database.tokens

    async def create(self, name: str, now: datetime) -> TenantRecord:
        # Unlimited seats, so no counter: see scim_server.core.seats.
        document = {"_id": name, "created": now, "seats": None}
        try:
            await self.tenants.insert_one(document)
        except DuplicateKeyError:
            raise TenantExists(name) from None
        return _tenant(document)

    async def get(self, name: str) -> TenantRecord | None:
        document = await self.tenants.find_one({"_id": name})
        return None if document is None else _tenant(document)

    async def all(self) -> list[TenantRecord]:
        """Every tenant, by name: one query."""
        return [_tenant(d) async for d in self.tenants.find({}).sort("_id", 1)]

    async def duplicate_group_names(self, name: str) -> bool | None:
        """Whether the tenant lets groups share a displayName (None: no such tenant)."""
        document = await self.tenants.find_one({"_id": name}, {DUPLICATE_GROUP_NAMES: 1})
        return None if document is None else bool(document.get(DUPLICATE_GROUP_NAMES, False))

    async def allow_duplicate_group_names(self, name: str, allowed: bool) -> bool:
        """Let the tenant's groups share displayNames, or not; whether the tenant exists."""
        result = await self.tenants.update_one(
            {"_id": name}, {"$set": {DUPLICATE_GROUP_NAMES: allowed}}
        )
        return result.matched_count == 1

    async def resource_types(self, name: str) -> tuple[str, ...] | None:
        """The custom resource types the tenant serves, by name (None: no such tenant)."""
        document = await self.tenants.find_one({"_id": name}, {RESOURCE_TYPES: 1})
        return None if document is None else tuple(document.get(RESOURCE_TYPES, ()))

    async def set_resource_types(self, name: str, names: list[str]) -> bool:
        """Serve these custom resource types in the tenant; whether the tenant exists."""
        result = await self.tenants.update_one({"_id": name}, {"$set": {RESOURCE_TYPES: names}})
        return result.matched_count == 1

    async def user_extensions(self, name: str) -> tuple[dict[str, Any], ...] | None:
        """The schemas of the tenant's own User extensions (None: no such tenant)."""
        document = await self.tenants.find_one({"_id": name}, {USER_EXTENSIONS: 1})
        return None if document is None else tuple(document.get(USER_EXTENSIONS, ()))

    async def set_user_extensions(self, name: str, schemas: list[dict[str, Any]]) -> bool:
        """Give the tenant exactly these User extensions; whether the tenant exists."""
        result = await self.tenants.update_one({"_id": name}, {"$set": {USER_EXTENSIONS: schemas}})
        return result.matched_count == 1

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
    ) -> TokenRecord:
        document = {
            "_id": token_id,
            "tenant": tenant,
            "created": now,
            "expires": expires,
            "description": description,
            "revoked": None,
        }
        await self.tokens.insert_one(document)
        return _token(document)

    async def token(self, tenant: str, token_id: str) -> TokenRecord | None:
        document = await self.tokens.find_one({"tenant": tenant, "_id": token_id})
        return None if document is None else _token(document)

    async def list_tokens(self, tenant: str) -> list[TokenRecord]:
        return [_token(d) async for d in self.tokens.find({"tenant": tenant}).sort("created", 1)]

    async def revoke_token(self, tenant: str, token_id: str, now: datetime) -> bool:
        query: dict[str, Any] = {"tenant": tenant, "_id": token_id}
        result = await self.tokens.update_one(query, {"$set": {"revoked": now}})
        return result.matched_count == 1
