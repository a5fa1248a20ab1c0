"""Group members as set operations: checked against the tenant, then applied as differences.

Members are not part of a group's stored attributes: each is one membership in
``storage/memberships.py``, which bumps the group's version after every change it makes.
"""

from __future__ import annotations

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

    async def check(
        self, scope: Scope, group_id: str | None, members: tuple[Member, ...]
    ) -> tuple[Member, ...]:
        """Resolve each member's type in this tenant; unknown ids are 400 invalidValue."""
        if not members:
            return members
        ids = {member.value for member in members}
        _not_itself(group_id, ids)
        resolved: dict[str, str] = {}
        names: dict[str, str | None] = {}
        for kind in KINDS:
            found = await self.repositories[kind.name].summaries(
                scope.tenant, ids - resolved.keys()
            )
            resolved |= dict.fromkeys(found, kind.name)
            names |= {resource: summary.name for resource, summary in found.items()}
        unknown = sorted(ids - resolved.keys())
        if unknown:
            raise _unknown(unknown)
        mistyped = [m.value for m in members if m.type and m.type != resolved[m.value]]
        if mistyped:
            raise _mistyped(mistyped)
        return tuple(replace(m, type=resolved[m.value], name=names[m.value]) for m in members)

    async def add_one(
        self, scope: Scope, group_id: str, member: Member, by: Client
    ) -> StoredResource | None:
        """``check`` and ``apply`` of an add of this one member, its lookup and its hint's
        raise one command (``MembershipRepository.claim``): only for a PATCH that does nothing
        else, which nothing can fail after the claim (``Writes.patch``). Answers as ``apply``.
        """
        _not_itself(group_id, {member.value})
        claimed = await self.memberships.claim(scope.tenant, member)
        if claimed is None:
            raise _unknown([member.value])
        if member.type and member.type != claimed.type:
            await self.memberships.release(scope.tenant, claimed)
            raise _mistyped([member.value])
        return await self.memberships.add(scope.tenant, group_id, [claimed], by, claimed=True)

    async def apply(
        self,
        tenant: str,
        group: str,
        change: MemberChange,
        members: tuple[Member, ...],
        by: Client,
    ) -> StoredResource | None:
        """One member operation of a PATCH other than a replacement (which takes turns:
        ``Writes._replace_members``), with its members already checked, by ``by``.

        Answers the group at its new version when the operation changed its members (one
        version, and one event, for all the members it adds or removes).
        """
        if change.op == "add":
            return await self.memberships.add(tenant, group, members, by)
        if change.op == "remove":
            return await self.memberships.remove(tenant, group, [m.value for m in members], by)
        if change.op == "clear":
            return await self.memberships.clear(tenant, group, by)
        raise ValueError(f"a replacement of members is Writes._replace_members's: {change.op}")

    async def replace(
        self, tenant: str, group: str, members: tuple[Member, ...], by: Client
    ) -> list[StoredResource]:
        """Set the members to exactly ``members``, touching only the differences.

        The current members are read a batch at a time, each batch's leavers removed as it
        comes, so what is held is the request's members and one batch, whatever the group's
        size. Answers the group at each new version it gave it, in order (none: the members
        were already those).
        """
        wanted = {member.value for member in members}
        present: set[str] = set()
        touched: list[StoredResource | None] = []
        async for batch in self.memberships.group_member_batches(tenant, group, MEMBER_BATCH):
            current = {member.value for member in batch}
            present |= current & wanted
            touched.append(await self.memberships.remove(tenant, group, current - wanted, by))
        touched.append(
            await self.memberships.add(
                tenant, group, [m for m in members if m.value not in present], by
            )
        )
        touched += [
            await self.memberships.set_display(tenant, group, member, by)
            for member in members
            if member.value in present and member.display is not None
        ]
        return [group for group in touched if group is not None]


def _not_itself(group_id: str | None, ids: set[str]) -> None:
    if group_id is not None and group_id in ids:
        raise InvalidValueException(detail="a group cannot be a member of itself")


def _unknown(ids: list[str]) -> InvalidValueException:
    return InvalidValueException(detail=f"unknown member id(s): {', '.join(ids)}")


def _mistyped(ids: list[str]) -> InvalidValueException:
    return InvalidValueException(detail=f"member type does not match: {', '.join(ids)}")


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
