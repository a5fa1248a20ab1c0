"""Group membership as its own relation: one small document per (group, member).

No document grows with a group, so adding or removing a member costs one index
operation in a group of ten or of a million, and reading a group without its
members never touches them.

Two things are kept beside the relation so that reads need no joins:

* each membership carries the member's ``name`` (its displayName, else its
  userName), refreshed when the member is renamed, so listing a group's members
  is one query;
* each user and group document carries ``gm``, a count of the groups it is a
  direct member of. It is a *hint* that may overcount but never undercounts:
  it is raised before a membership is written and lowered only after one is
  removed, so a reader that sees ``gm == 0`` may skip the membership lookup.
  (Deleting a whole group leaves its former members' hints high: they cost one
  extra lookup on read, never a wrong answer.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo.errors import BulkWriteError

from scim_server.models import Member
from scim_server.storage.database import Database, Document

DUPLICATE_KEY = 11000
MEMBER_OF = "gm"


class MembershipRepository:
    def __init__(self, database: Database) -> None:
        self.collection = database.memberships
        self._resources = {"User": database["users"], "Group": database["groups"]}

    async def add(self, tenant: str, group: str, members: Iterable[Member]) -> None:
        """Add resolved members; members already present are left as they are."""
        members = list(members)
        if not members:
            return
        await self._count(tenant, members, +1)
        documents = [_document(tenant, group, member) for member in members]
        try:
            await self.collection.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            # Adding a member twice is a no-op, which is what makes concurrent adds commute.
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            await self._count(tenant, [members[e["index"]] for e in errors], -1)

    async def remove(self, tenant: str, group: str, member_ids: Iterable[str]) -> None:
        wanted = list(set(member_ids))
        if not wanted:
            return
        present = await self.collection.find(
            {"tenant": tenant, "group": group, "member": {"$in": wanted}}, {"member": 1, "type": 1}
        ).to_list(None)
        removed = []
        for document in present:
            # One by one, so a member removed by two requests at once is uncounted once.
            result = await self.collection.delete_one(
                {"tenant": tenant, "group": group, "member": document["member"]}
            )
            if result.deleted_count:
                removed.append(Member(document["member"], document["type"]))
        await self._count(tenant, removed, -1)

    async def clear(self, tenant: str, group: str) -> None:
        await self.remove(tenant, group, await self.member_ids(tenant, group))

    async def set_display(self, tenant: str, group: str, member: Member) -> None:
        await self.collection.update_one(
            {"tenant": tenant, "group": group, "member": member.value},
            {"$set": {"display": member.display}},
        )

    async def rename_member(self, tenant: str, member: str, name: str | None) -> None:
        """Refresh the name a renamed user or group shows in every group it belongs to."""
        await self.collection.update_many(
            {"tenant": tenant, "member": member}, {"$set": {"name": name}}
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
            {"group": 1, "member": 1, "type": 1, "display": 1, "name": 1},
        ).sort([("tenant", 1), ("group", 1), ("member", 1)])
        async for document in cursor:
            found[document["group"]].append(
                Member(
                    document["member"],
                    document["type"],
                    document.get("display"),
                    document.get("name"),
                )
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

    async def _count(self, tenant: str, members: Iterable[Member], delta: int) -> None:
        by_type: dict[str, list[str]] = defaultdict(list)
        for member in members:
            by_type[str(member.type)].append(member.value)
        for member_type, ids in by_type.items():
            query: Mapping[str, Any] = {
                "tenant": tenant,
                "_id": ids[0] if len(ids) == 1 else {"$in": ids},
            }
            await self._resources[member_type].update_many(query, {"$inc": {MEMBER_OF: delta}})


def _document(tenant: str, group: str, member: Member) -> Document:
    document: Document = {
        "tenant": tenant,
        "group": group,
        "member": member.value,
        "type": member.type,
        "name": member.name,
    }
    if member.display is not None:
        document["display"] = member.display
    return document


def member_of_hint(document: Mapping[str, Any]) -> bool:
    """Whether a user or group document may belong to a group (see the module docstring)."""
    return int(document.get(MEMBER_OF, 0)) > 0
