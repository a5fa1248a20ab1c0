"""Group members as set operations: checked against the tenant, then applied as differences.

Members are not part of a group's stored attributes: each is one membership in
``storage/memberships.py``, which bumps the group's version after every change it makes.

A member's member-of hint must be raised before its membership is written. A member to add
is therefore looked up by raising its hint (``MembershipRepository.claim``: one command for
both; several are read, then raised at once), and the write that checked it owes that hint
until an add takes it over: ``Claims`` gives back, when the write ends, the hints of the
members no add took (the write failed, or they were members already), so a write that adds
nothing leaves every hint as it was.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from typing import Any

from scim2_models import InvalidValueException

from scim_server.core.patch import MemberChange
from scim_server.core.rendering import MEMBER_BATCH
from scim_server.core.scope import Scope
from scim_server.models import GROUPS, KINDS, Member, ResourceKind, parse_members
from scim_server.storage.documents import StoredResource
from scim_server.storage.events import Client
from scim_server.storage.memberships import MembershipRepository
from scim_server.storage.resources import ResourceRepository

Payload = dict[str, Any]


class Members:
    """Checks and applies changes to groups' members; the tenant comes with each call."""

    def __init__(
        self, repositories: dict[str, ResourceRepository], memberships: MembershipRepository
    ) -> None:
        self.repositories = repositories
        self.memberships = memberships

    @contextlib.asynccontextmanager
    async def claims(self, tenant: str) -> AsyncIterator[Claims]:
        """The hints one write raises to add members, given back as it ends unless added."""
        claims = Claims(self.memberships, tenant)
        try:
            yield claims
        except BaseException:
            # The write's own error is the answer; a hint left high only costs a lookup.
            with contextlib.suppress(Exception):
                await claims.release()
            raise
        await claims.release()

    async def check(
        self,
        scope: Scope,
        group_id: str | None,
        members: tuple[Member, ...],
        claims: Claims | None = None,
    ) -> tuple[Member, ...]:
        """Resolve each member's type in this tenant; unknown ids are 400 invalidValue.

        With ``claims``, the members are to be added: their hints are raised, and owed to
        ``claims``; one member is looked up by raising its hint (one command), several by a
        read of them all, then a raise of theirs. Without (a replacement, which adds only
        the members it lacks), they are only looked up.
        """
        if not members:
            return members
        ids = {member.value for member in members}
        if group_id is not None and group_id in ids:
            raise InvalidValueException(detail="a group cannot be a member of itself")
        if claims is not None and len(ids) == 1:
            (member_id,) = ids
            claimed = await self.memberships.claim(scope.tenant, member_id)
            resolved = {} if claimed is None else {member_id: claimed}
        else:
            resolved = await self._look_up(scope.tenant, ids)
            if claims is not None:
                await self.memberships.raise_hints(scope.tenant, resolved.values())
        if claims is not None:
            claims.raised(resolved.values())
        unknown = sorted(ids - resolved.keys())
        if unknown:
            raise InvalidValueException(detail=f"unknown member id(s): {', '.join(unknown)}")
        mistyped = [m.value for m in members if m.type and m.type != resolved[m.value].type]
        if mistyped:
            raise InvalidValueException(detail=f"member type does not match: {', '.join(mistyped)}")
        return tuple(
            replace(m, type=resolved[m.value].type, name=resolved[m.value].name) for m in members
        )

    async def _look_up(self, tenant: str, ids: set[str]) -> dict[str, Member]:
        """The users and groups among ``ids``, with their types and names."""
        resolved: dict[str, Member] = {}
        for kind in KINDS:
            found = await self.repositories[kind.name].summaries(tenant, ids - resolved.keys())
            resolved |= {
                resource: Member(resource, kind.name, name=summary.name)
                for resource, summary in found.items()
            }
        return resolved

    async def add(
        self,
        tenant: str,
        group: str,
        members: tuple[Member, ...],
        by: Client | None,
        claims: Claims,
    ) -> StoredResource | None:
        """Add members checked with ``claims``, which hands their hints over to the add."""
        claims.taken(members)
        return await self.memberships.add(tenant, group, members, by)

    async def apply(
        self,
        tenant: str,
        group: str,
        change: MemberChange,
        members: tuple[Member, ...],
        by: Client,
        claims: Claims,
    ) -> StoredResource | None:
        """One member operation of a PATCH, with its members already checked (an add's with
        ``claims``), by ``by``.

        Answers the group at its new version when the operation changed its members (one
        version, and one event, for all the members it adds or removes).
        """
        if change.op == "add":
            return await self.add(tenant, group, members, by, claims)
        if change.op == "remove":
            return await self.memberships.remove(tenant, group, [m.value for m in members], by)
        if change.op == "clear":
            return await self.memberships.clear(tenant, group, by)
        return await self.replace(tenant, group, members, by)

    async def replace(
        self, tenant: str, group: str, members: tuple[Member, ...], by: Client
    ) -> StoredResource | None:
        """Set the members to exactly ``members``, touching only the differences.

        The current members are read a batch at a time, each batch's leavers removed as it
        comes, so what is held is the request's members and one batch, whatever the group's
        size. Answers the group at its last new version, if the members changed.
        """
        wanted = {member.value for member in members}
        present: set[str] = set()
        touched: list[StoredResource | None] = []
        async for batch in self.memberships.group_member_batches(tenant, group, MEMBER_BATCH):
            current = {member.value for member in batch}
            present |= current & wanted
            touched.append(await self.memberships.remove(tenant, group, current - wanted, by))
        joining = [m for m in members if m.value not in present]
        await self.memberships.raise_hints(tenant, joining)
        touched.append(await self.memberships.add(tenant, group, joining, by))
        touched += [
            await self.memberships.set_display(tenant, group, member, by)
            for member in members
            if member.value in present and member.display is not None
        ]
        return next((group for group in reversed(touched) if group is not None), None)


class Claims:
    """The member-of hints one write raised (``MembershipRepository.claim``) and still owes."""

    def __init__(self, memberships: MembershipRepository, tenant: str) -> None:
        self._memberships = memberships
        self._tenant = tenant
        self._owed: Counter[str] = Counter()
        self._members: dict[str, Member] = {}

    def raised(self, members: Iterable[Member]) -> None:
        for member in members:
            self._owed[member.value] += 1
            self._members[member.value] = member

    def taken(self, members: Iterable[Member]) -> None:
        """An add took over these members' hints (one each: a member checked by two
        operations of a PATCH was raised twice)."""
        for member in members:
            if self._owed[member.value] > 0:
                self._owed[member.value] -= 1

    async def release(self) -> None:
        """Give back what no add took: each hint lowered as many times as it is owed."""
        owed, self._owed = +self._owed, Counter()
        for times in range(max(owed.values(), default=0)):
            members = [self._members[value] for value, count in owed.items() if count > times]
            await self._memberships.release(self._tenant, members)


def declared_members(kind: ResourceKind, body: Payload) -> tuple[Member, ...]:
    """A group body's ``members`` (empty when absent or null)."""
    if kind is not GROUPS:
        return ()
    key = next((k for k in body if k.lower() == "members"), None)
    if key is None or body[key] is None:
        return ()
    if not isinstance(body[key], list):
        raise InvalidValueException(detail="members is a list of objects with a string value")
    return parse_members(body[key])
