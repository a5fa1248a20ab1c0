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

from scim_server.models import Member
from scim_server.storage.database import Database

DUPLICATE_KEY = 11000


class MembershipRepository:
    def __init__(self, database: Database) -> None:
        self.collection = database.memberships

    async def add(self, tenant: str, group: str, members: Iterable[Member]) -> None:
        """Add resolved members; members already present are left as they are."""
        documents = [
            {"tenant": tenant, "group": group, "member": member.value, "type": member.type,
             **({"display": member.display} if member.display is not None else {})}
            for member in members
        ]
        if not documents:
            return
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

    async def set_display(self, tenant: str, group: str, member: Member) -> None:
        await self.collection.update_one(
            {"tenant": tenant, "group": group, "member": member.value},
            {"$set": {"display": member.display}},
        )

    async def member_ids(self, tenant: str, group: str) -> set[str]:
        cursor = self.collection.find({"tenant": tenant, "group": group}, {"member": 1, "_id": 0})
        return {document["member"] async for document in cursor}

    async def members_of(self, tenant: str, groups: Iterable[str]) -> dict[str, list[Member]]:
        wanted = list(set(groups))
        found: dict[str, list[Member]] = defaultdict(list)
        if not wanted:
            return found
        cursor = self.collection.find(
            {"tenant": tenant, "group": {"$in": wanted}},
            {"group": 1, "member": 1, "type": 1, "display": 1},
        ).sort([("tenant", 1), ("group", 1), ("member", 1)])
        async for document in cursor:
            found[document["group"]].append(
                Member(document["member"], document["type"], document.get("display"))
            )
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
