"""Group membership as its own relation: one small document per (group, member).

No document grows with a group, so adding or removing a member costs one index
operation in a group of ten or of a million, and reading a group without its
members never touches them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.errors import BulkWriteError

from scim_server.storage.database import Database

DUPLICATE_KEY = 11000


class MembershipRepository:
    def __init__(self, database: Database) -> None:
        self.collection = database.memberships

    async def add(self, tenant: str, group: str, members: Mapping[str, str]) -> None:
        """Add members (id -> "User"/"Group"); members already present are left as they are."""
        if not members:
            return
        documents = [
            {"tenant": tenant, "group": group, "member": member, "type": member_type}
            for member, member_type in members.items()
        ]
        try:
            await self.collection.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            # Adding a member twice is a no-op, which is what makes concurrent adds commute.
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise

    async def remove(self, tenant: str, group: str, member_ids: Iterable[str]) -> None:
        ids = list(set(member_ids))
        if ids:
            await self.collection.delete_many(
                {"tenant": tenant, "group": group, "member": {"$in": ids}}
            )

    async def remove_matching(self, tenant: str, group: str, query: Mapping[str, Any]) -> None:
        await self.collection.delete_many({**query, "tenant": tenant, "group": group})

    async def member_ids(self, tenant: str, group: str) -> set[str]:
        cursor = self.collection.find({"tenant": tenant, "group": group}, {"member": 1, "_id": 0})
        return {document["member"] async for document in cursor}

    async def members_of(self, tenant: str, groups: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
        """Members of each group, as (member id, type)."""
        wanted = list(set(groups))
        found: dict[str, list[tuple[str, str]]] = defaultdict(list)
        if not wanted:
            return found
        cursor = self.collection.find(
            {"tenant": tenant, "group": {"$in": wanted}}, {"group": 1, "member": 1, "type": 1}
        ).sort([("tenant", 1), ("group", 1), ("member", 1)])
        async for document in cursor:
            found[document["group"]].append((document["member"], document["type"]))
        return found

    async def groups_of(self, tenant: str, members: Iterable[str]) -> dict[str, set[str]]:
        """The groups each member belongs to directly."""
        wanted = list(set(members))
        found: dict[str, set[str]] = defaultdict(set)
        if not wanted:
            return found
        cursor = self.collection.find(
            {"tenant": tenant, "member": {"$in": wanted}}, {"group": 1, "member": 1}
        )
        async for document in cursor:
            found[document["member"]].add(document["group"])
        return found

    async def forget(self, tenant: str, resource_id: str) -> None:
        """Drop a deleted resource from every group, and a deleted group's own members."""
        await self.collection.delete_many({"tenant": tenant, "member": resource_id})
        await self.collection.delete_many({"tenant": tenant, "group": resource_id})

    async def delete_tenant(self, tenant: str) -> None:
        await self.collection.delete_many({"tenant": tenant})
