"""Group membership as its own relation: one small document per (group, member).

No document grows with a group, so adding or removing a member costs one index
operation in a group of ten or of a million, and reading a group without its
members never touches them.

Two things are kept beside the relation so that reads need no joins:

* each membership carries the member's ``name`` (its displayName, else its
  userName), refreshed when the member is renamed, so listing a group's members
  reads only memberships (in batches: ``member_batches``, ``group_member_batches``);
* each user and group document carries ``gm``, a count of the groups it is a
  direct member of. It is a *hint* that may overcount but never undercounts:
  it is raised before a membership is written and lowered only after one is
  removed, so a reader that sees ``gm == 0`` may skip the membership lookup.
  (Deleting a whole group leaves its members' hints high: they cost one extra
  lookup on read, never a wrong answer. Undoing an add to a group deleted
  meanwhile lowers the hints of the memberships the undo itself removed.)

Every change to a group's members bumps that group's ``meta.version`` and
``lastModified`` here, *after* the membership write (``_touch``), whatever asked
for it: a member PATCH or PUT, Bulk, SSO group sync, a member's deletion, or its
rename (the name shows in the group). A reader can therefore see new members
under an old version (and gets 200, not 304, once the version moves) but never
an old member list under a new version.

The hint's writes wait for no journal flush of their own (``_hints``): a raise is made
durable by the membership's journaled insert that follows it, since the journal is one
sequential log and flushing a record flushes every record before it (on MongoDB as on
SecantusDB), and a raise or a lowering lost in a crash with nothing journaled after it leaves
at worst an overcount. Journaled, each hint write would hold the member's collection for a
flush of its own (SecantusDB flushes under the collection's lock), beside the user writes
that need one.

No multi-document transaction is needed (a MongoDB without a replica set has
none). Deletes and adds each order their writes so that every interleaving ends
with no membership of a missing group or member (no ghost):

* deleting a resource removes its document first, then its memberships
  (``forget``), bumping the groups it was in;
* adding members writes the memberships first, then checks that the members
  still exist and undoes those that do not, then bumps the group, whose update
  matching nothing means the group is gone: its memberships are then undone.

If an add's check runs before a delete removed the document, its insert came
earlier still, so the delete's ``forget`` finds and removes the membership. If
the check runs after, the add undoes its own insert. Either way the membership
goes, and a version bump follows its removal. The same post-write check refreshes
a member's ``name`` that a concurrent rename changed between the add's lookup and
its insert.

``forget`` looks no membership up for a document removed with a ``gm`` hint of 0:
the removal itself is conditioned on the hint (``delete_one({_id, dl, gm: not >
0})``), so the hint is read in the very write that removes the document, one
atomic single-document operation on every store, and it proves the resource in no
group. At that moment any membership of it, and any add between its hint raise
and its insert, holds the hint up (the hint never undercounts); an add that
raises the hint later finds no document to raise it on, and its check after its
insert finds the member gone and undoes it. The hint is not read with
``find_one_and_delete``: the embedded store answers the document as a find
before the delete saw it (an add's insert and check fell between the two under
load, and a member was left behind). A deleter that read the hint as 0 before
its mark tries that removal; a hint raised since makes it miss, and the document
is removed as one in groups, its memberships looked up. A document removed by
the relay (a deleter that died, or another worker's relay) is always looked up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from scim_server.models import Member
from scim_server.storage.database import (
    DUPLICATE_KEY,
    Database,
    Document,
    any_of,
    translate_driver_errors,
)
from scim_server.storage.documents import (
    MEMBER_OF,
    NAME_FIELDS,
    StoredResource,
    member_of_hint,
    resource_name,
    stored_resource,
)
from scim_server.storage.events import (
    DELETING,
    GROUP_MEMBERS_ADDED,
    GROUP_MEMBERS_REMOVED,
    GROUP_UPDATED,
    LIVE,
    PENDING,
    Client,
    Emission,
    new_version,
)

CLEAR_BATCH = 1000
"""The members ``clear`` reads and removes at a time."""


@dataclass(frozen=True)
class Joined:
    """A group a member belongs to directly, as reading the member's groups needs it."""

    name: str | None
    """The group's displayName."""
    member_of: bool
    """The group's own member-of hint: whether it may itself be in a group."""


@translate_driver_errors
class MembershipRepository:
    def __init__(self, database: Database) -> None:
        self.collection = database.memberships
        self._resources = {"User": database["users"], "Group": database["groups"]}
        self._hints = {
            member_type: resources.with_options(write_concern=WriteConcern(w=1))
            for member_type, resources in self._resources.items()
        }
        """The members' collections, for the writes of their hints (module docstring)."""
        self._database = database

    @property
    def claims_in_one_command(self) -> bool:
        """Whether ``claim`` is one command that the store plans by key; where it is not,
        looking members up by a read (``ResourceRepository.summaries``) and letting ``add``
        raise their hints costs the store less (``Planner.modifies_by_key``)."""
        return self._database.planner.modifies_by_key

    async def claim(self, tenant: str, member: Member) -> Member | None:
        """Look up a member about to be added and raise its hint, in one ``findAndModify``:
        answers it with its type and name, or None when the tenant has no such live user or
        group (nothing was raised). Its declared type is looked in first.

        What ``Members.check`` and ``add`` do in two commands for any number of members, for
        one; ``add(..., claimed=True)`` then raises nothing again, and a claimed member that
        is not added after all is ``release``d (its hint would only overcount if it were not).
        """
        query = {"tenant": tenant, "_id": member.value, **LIVE}
        for member_type in sorted(self._hints, key=lambda name: name != member.type):
            found = await self._hints[member_type].find_one_and_update(
                query, {"$inc": {MEMBER_OF: 1}}, NAME_FIELDS
            )
            if found is not None:
                return replace(member, type=member_type, name=resource_name(found))
        return None

    async def release(self, tenant: str, member: Member) -> None:
        """Lower the hint of a ``claim``ed member that is not added."""
        await self._count(tenant, [member], -1)

    async def add(
        self,
        tenant: str,
        group: str,
        members: Iterable[Member],
        by: Client | None,
        *,
        claimed: bool = False,
    ) -> StoredResource | None:
        """Add resolved members; members already present are left as they are.

        Answers the group at its new version when it got one, else None (no member was
        new, or the group was deleted meanwhile). The new version carries a
        ``group.members_added`` event by ``by``; None: the members complete the group's
        creation, whose event was stored with it and names them. ``claimed``: their hints
        were raised by ``claim``.
        """
        members = list(members)
        if not members:
            return None
        if not claimed:
            await self._count(tenant, members, +1)
        documents = [_document(tenant, group, member) for member in members]
        try:
            await self.collection.insert_many(documents, ordered=False)
            added = members
        except BulkWriteError as error:
            # Adding a member twice is a no-op, which is what makes concurrent adds commute.
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            present = {e["index"] for e in errors}
            await self._count(tenant, [members[i] for i in sorted(present)], -1)
            added = [member for i, member in enumerate(members) if i not in present]
        if not added:
            return None
        return await self._settle(tenant, group, added, by)

    async def _settle(
        self, tenant: str, group: str, added: list[Member], by: Client | None
    ) -> StoredResource | None:
        """After the insert, undo what a concurrent delete raced past (module docstring)."""
        names = await self._names(tenant, added)
        gone = [member.value for member in added if member.value not in names]
        for wanted in any_of(gone):
            await self.collection.delete_many({"tenant": tenant, "group": group, "member": wanted})
        for member in added:
            if member.value in names and names[member.value] != member.name:
                # Renamed since it was looked up; only if no later rename refreshed it already.
                await self.collection.update_one(
                    {"tenant": tenant, "group": group, "member": member.value, "name": member.name},
                    {"$set": {"name": names[member.value]}},
                )
        kept = tuple(member.value for member in added if member.value in names)
        emission = None if by is None else Emission(GROUP_MEMBERS_ADDED, by, members=kept)
        touched = await self._touch(tenant, group, emission)
        if touched is None:
            # The group is gone: undo this add, lowering the hints of what it undid itself.
            await self.remove(tenant, group, [member.value for member in added], by)
        return touched

    async def remove(
        self, tenant: str, group: str, member_ids: Iterable[str], by: Client | None
    ) -> StoredResource | None:
        """Remove members; answers the group at its new version when one was removed, else None.

        The new version carries a ``group.members_removed`` event by ``by`` (None only when
        undoing an add to a group that is gone, which gets no version).
        """
        present = [
            document
            for wanted in any_of(set(member_ids))
            for document in await self.collection.find(
                {"tenant": tenant, "group": group, "member": wanted}, {"member": 1, "type": 1}
            ).to_list(None)
        ]
        removed = []
        for document in present:
            # One by one, so a member removed by two requests at once is uncounted once.
            result = await self.collection.delete_one(
                {"tenant": tenant, "group": group, "member": document["member"]}
            )
            if result.deleted_count:
                removed.append(Member(document["member"], document["type"]))
        if not removed:
            return None
        ids = tuple(member.value for member in removed)
        emission = None if by is None else Emission(GROUP_MEMBERS_REMOVED, by, members=ids)
        touched = await self._touch(tenant, group, emission)
        await self._count(tenant, removed, -1)
        return touched

    async def clear(self, tenant: str, group: str, by: Client) -> StoredResource | None:
        """Remove every member, a batch at a time; answers as ``remove`` does (each batch is
        one ``group.members_removed`` event)."""
        touched = None
        async for batch in self.group_member_batches(tenant, group, CLEAR_BATCH):
            touched = await self.remove(tenant, group, [m.value for m in batch], by) or touched
        return touched

    async def set_display(
        self, tenant: str, group: str, member: Member, by: Client
    ) -> StoredResource | None:
        """Set a member's ``display``; answers the group at its new version if it changed."""
        result = await self.collection.update_one(
            {"tenant": tenant, "group": group, "member": member.value},
            {"$set": {"display": member.display}},
        )
        if not result.modified_count:
            return None
        return await self._touch(tenant, group, _members_shown(by))

    async def rename_member(
        self, tenant: str, member: str, name: str | None, by: Client
    ) -> list[str]:
        """Refresh the name a renamed user or group shows in its groups, which change version;
        answers those groups."""
        query = {"tenant": tenant, "member": member}
        groups = await self._groups_with(query)
        if groups:
            await self.collection.update_many(query, {"$set": {"name": name}})
            await self._touch_all(tenant, groups, _members_shown(by))
        return groups

    async def member_batches(
        self, tenant: str, groups: Iterable[str], size: int
    ) -> AsyncIterator[tuple[str, list[Member]]]:
        """The members of ``groups``, group after group in id order, each group's in member id
        order, in lists of at most ``size`` members of one group: one query for them all
        (per ``IN_BATCH`` groups). What reading a page of groups needs; a group alone is read
        by ``group_member_batches``.
        """
        for wanted in any_of(sorted(set(groups))):
            async for batch in self._batches({"tenant": tenant, "group": wanted}, size):
                yield batch

    async def group_member_batches(
        self, tenant: str, group: str, size: int
    ) -> AsyncIterator[list[Member]]:
        """One group's members in member id order, in lists of at most ``size``, read by
        ranges of member ids that each hold about ``size`` members.

        SecantusDB reads every document a query matches before it answers the first batch,
        so one query over a group of a million members would answer nothing for over a
        minute; a range bounds the query on the index, so the first members come after the
        cost of about a batch, whatever the group's size. Member ids are UUIDs, spread evenly
        over the range of their first eight hex digits: the first range is 1/256 of it, and
        each next one is sized by how many members the one before held. The ranges cover
        every string (the last has no upper bound), so no member is missed whatever its id.
        """
        low, width = 0, ID_SPACE // 256
        while True:
            bounds: Document = {"$gte": _id_bound(low)}
            if low + width < ID_SPACE:
                bounds["$lt"] = _id_bound(low + width)
            query = {"tenant": tenant, "group": group, "member": bounds}
            found = 0
            async for _, batch in self._batches(query, size):
                found += len(batch)
                yield batch
            if "$lt" not in bounds:
                return
            # The next range is sized to hold ``size`` members at the density this one had
            # (at most 256 times wider, at least 16 times narrower).
            low += width
            width = max(1, width // 16, min(width * 256, width * size // max(found, 1)))

    async def _batches(self, query: Document, size: int) -> AsyncIterator[tuple[str, list[Member]]]:
        """The memberships ``query`` matches, in ``(tenant, group, member)`` order, as lists of
        at most ``size`` members of one group each, from a cursor whose batches are that size:
        no more than a batch is held at once."""
        cursor = self.collection.find(
            query,
            {"_id": 0, "group": 1, "member": 1, "type": 1, "display": 1, "name": 1},
            batch_size=size,
        ).sort([("tenant", 1), ("group", 1), ("member", 1)])
        group, batch = "", list[Member]()
        async for document in cursor:
            if document["group"] != group or len(batch) == size:
                if batch:
                    yield group, batch
                group, batch = document["group"], []
            batch.append(
                Member(
                    document["member"],
                    document["type"],
                    document.get("display"),
                    document.get("name"),
                )
            )
        if batch:
            yield group, batch

    async def groups_holding(self, tenant: str, members: Iterable[str]) -> dict[str, list[str]]:
        """The ids of the groups each member belongs to directly: a query on the
        ``(tenant, member)`` index per batch of members (``any_of``), reading no group and none
        of any group's other members."""
        found: dict[str, list[str]] = defaultdict(list)
        for wanted in any_of(set(members)):
            cursor = self.collection.find(
                {"tenant": tenant, "member": wanted}, {"group": 1, "member": 1, "_id": 0}
            )
            async for document in cursor:
                found[document["member"]].append(document["group"])
        return found

    async def groups_of(self, tenant: str, members: Iterable[str]) -> dict[str, dict[str, Joined]]:
        """The groups each member belongs to directly, each with what reading it needs.

        One command: the memberships, each joined on the ``_id`` index to its group's name
        and member-of hint. (A group deleted under a membership its ``forget`` has not yet
        removed shows with no name.)
        """
        found: dict[str, dict[str, Joined]] = defaultdict(dict)
        for wanted in any_of(set(members)):
            await self._join_groups(tenant, wanted, found)
        return found

    async def _join_groups(
        self, tenant: str, members: str | Document, found: dict[str, dict[str, Joined]]
    ) -> None:
        """``groups_of`` for the members one query value matches, into ``found``."""
        groups = self._resources["Group"]
        cursor = await self.collection.aggregate(
            [
                {"$match": {"tenant": tenant, "member": members}},
                {
                    "$lookup": {
                        "from": groups.name,
                        "localField": "group",
                        "foreignField": "_id",
                        "pipeline": [
                            {"$match": {"tenant": tenant}},
                            {"$project": {**NAME_FIELDS, MEMBER_OF: 1}},
                        ],
                        "as": "groups",
                    }
                },
                {"$project": {"_id": 0, "member": 1, "group": 1, "groups": 1}},
            ]
        )
        async for document in cursor:
            group: Document = next(iter(document["groups"]), {})
            joined = Joined(resource_name(group), member_of_hint(group))
            found[document["member"]][document["group"]] = joined

    async def forget(
        self, tenant: str, resource_id: str, by: Client, *, is_group: bool, in_no_group: bool
    ) -> list[str] | None:
        """Remove a resource whose deletion landed and whose events are in the outbox: its
        document, then its memberships (a deleted group's own members too).

        The groups it was in get a new version, since their member set changed, with a
        ``group.members_removed`` event by ``by``; answers those groups, or None when another
        removed the document first (and forgets it). ``in_no_group``: its deleter read it with
        a member-of hint of 0, so the document is removed only if the hint is still 0, which
        proves it in no group (module docstring): no membership is looked up. A hint raised
        meanwhile makes that removal miss, and it is removed as any other, then looked up.
        """
        resources = self._resources["Group" if is_group else "User"]
        document = {"_id": resource_id, "tenant": tenant, DELETING: True}
        in_none = {**document, MEMBER_OF: {"$not": {"$gt": 0}}}
        groups: list[str] = []
        if not (in_no_group and await _removed(resources, in_none)):
            if not await _removed(resources, document):
                return None
            groups = await self._drop_member(tenant, resource_id, by)
        if is_group:
            await self.collection.delete_many({"tenant": tenant, "group": resource_id})
        return groups

    async def _drop_member(self, tenant: str, member: str, by: Client) -> list[str]:
        """Delete a removed resource's memberships; its groups get their new versions with
        their events. Answers those groups."""
        query = {"tenant": tenant, "member": member}
        groups = await self._groups_with(query)
        if groups:
            await self.collection.delete_many(query)
            removed = Emission(GROUP_MEMBERS_REMOVED, by, members=(member,))
            await self._touch_all(tenant, groups, removed)
        return groups

    async def delete_tenant(self, tenant: str) -> None:
        await self.collection.delete_many({"tenant": tenant})

    async def _count(self, tenant: str, members: Iterable[Member], delta: int) -> None:
        for resources, query in self._member_queries(tenant, members, self._hints):
            await resources.update_many(query, {"$inc": {MEMBER_OF: delta}})

    async def _names(self, tenant: str, members: Iterable[Member]) -> dict[str, str | None]:
        """The current name of each member that still exists."""
        names: dict[str, str | None] = {}
        for resources, query in self._member_queries(tenant, members):
            cursor = resources.find(query, NAME_FIELDS)
            names |= {document["_id"]: resource_name(document) async for document in cursor}
        return names

    def _member_queries(
        self,
        tenant: str,
        members: Iterable[Member],
        collections: Mapping[str, AsyncCollection[Document]] | None = None,
    ) -> Iterator[tuple[AsyncCollection[Document], Document]]:
        """The members' documents: queries of each collection they live in (``any_of``), as
        ``collections`` has them (default: as resources are written)."""
        by_type: dict[str, list[str]] = defaultdict(list)
        for member in members:
            by_type[str(member.type)].append(member.value)
        for member_type, ids in by_type.items():
            for wanted in any_of(ids):
                resources = (collections or self._resources)[member_type]
                yield resources, {"tenant": tenant, "_id": wanted}

    async def _touch(
        self, tenant: str, group: str, emission: Emission | None
    ) -> StoredResource | None:
        """Give a group whose member set changed a new version, with its event; answers it at
        that version.

        None means the group no longer exists (or its deletion has landed). (A group
        document is small: its members are not in it, and its pending events are few.)
        """
        touched = await self._resources["Group"].find_one_and_update(
            {"tenant": tenant, "_id": group, **LIVE},
            new_version(datetime.now(UTC), emission),
            {"c": 0, PENDING: 0},
            return_document=ReturnDocument.AFTER,
        )
        return None if touched is None else stored_resource(touched)

    async def _touch_all(self, tenant: str, groups: list[str], emission: Emission) -> None:
        """``_touch`` for several groups at once, none of which need answer."""
        now = datetime.now(UTC)
        for wanted in any_of(groups):
            await self._resources["Group"].update_many(
                {"tenant": tenant, "_id": wanted, **LIVE}, new_version(now, emission)
            )

    async def _groups_with(self, query: Mapping[str, Any]) -> list[str]:
        """The groups holding the memberships ``query`` selects."""
        cursor = self.collection.find(query, {"group": 1, "_id": 0})
        return sorted({document["group"] async for document in cursor})


ID_SPACE = 16**8
"""The values of a member id's first eight hex digits, over which ``group_member_batches``
lays its ranges."""


def _id_bound(position: int) -> str:
    """The smallest id at ``position`` of ``ID_SPACE`` (the empty string at 0): its first eight
    hex digits."""
    return format(position, "08x") if position else ""


async def _removed(resources: AsyncCollection[Document], query: Document) -> bool:
    """Whether the one document ``query`` matches was there to remove, and is removed."""
    return bool((await resources.delete_one(query)).deleted_count)


def _members_shown(by: Client) -> Emission:
    """The event of a change to how a group's members show (a name, a ``display``)."""
    return Emission(GROUP_UPDATED, by, attributes=("members",))


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
