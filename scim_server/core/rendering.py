"""Stored resources as SCIM payloads, with the attributes derived from memberships.

``Group.members`` and ``User.groups`` are not stored in the resources: they are
read from the membership relation, and only when the response will carry them.

A group's ``members`` can be a million references, so they are not read into the payload:
it holds a ``MemberStream`` in their place, which reads them from the database in batches of
``MEMBER_BATCH`` as the response is written (``web/responses.py``). Whatever decides the
answer (the group exists, the selection is valid, the ETag) is decided before, on the group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scim_server.core.preconditions import etag
from scim_server.core.projection import Selection
from scim_server.core.scope import Scope
from scim_server.models import (
    GROUPS,
    KINDS,
    Member,
    ResourceKind,
    declared_only,
    is_extension_key,
    is_users,
)
from scim_server.storage.documents import StoredResource
from scim_server.storage.memberships import MembershipRepository

Payload = dict[str, Any]

MEMBER_BATCH = 1000
"""The members of a group read, rendered and written at a time: what a response holds of a
group's members, whatever its size."""


@dataclass(frozen=True)
class MemberStream:
    """A group's ``members`` in its payload, read in batches while the response is written.

    Iterating it yields lists of member references, never an empty one: a group without
    members yields none (and its payload then carries no ``members``).
    """

    batches: AsyncIterator[list[Payload]]

    def __aiter__(self) -> AsyncIterator[list[Payload]]:
        return self.batches


class Renderer:
    def __init__(self, memberships: MembershipRepository) -> None:
        self.memberships = memberships

    async def render(
        self,
        kind: ResourceKind,
        scope: Scope,
        resources: list[StoredResource],
        selection: Selection,
        *,
        related: bool = True,
    ) -> list[Payload]:
        """SCIM payloads of stored resources, with the derived ``members`` / ``groups``.

        ``related=False`` says the resources take part in no membership (just created),
        which spares the membership lookups.
        """
        payloads = [to_payload(kind, r, scope.location(kind, r.id)) for r in resources]
        ids = [payload["id"] for payload in payloads]
        if not related:
            return [selection.apply(kind, payload) for payload in payloads]
        if kind is GROUPS and selection.includes(kind, "members"):
            page = _PageMembers(self.memberships, scope.tenant, ids)
            selected = [selection.apply(kind, payload) for payload in payloads]
            for payload in selected:
                batches = page.of(payload["id"])
                payload["members"] = MemberStream(_references(scope, selection, payload, batches))
            return selected
        if is_users(kind) and selection.includes(kind, "groups"):
            in_groups = [resource.id for resource in resources if resource.member_of]
            groups = await self.groups_of(scope, in_groups) if in_groups else {}
            for payload in payloads:
                if groups.get(payload["id"]):
                    payload["groups"] = groups[payload["id"]]
        return [selection.apply(kind, payload) for payload in payloads]

    async def groups_of(self, scope: Scope, user_ids: list[str]) -> dict[str, list[Payload]]:
        """``User.groups``: direct memberships, plus the groups those groups belong to.

        Each membership comes with its group's name and member-of hint (one command), so
        the hierarchy is walked up one level per command, and only from groups whose hint
        says they may themselves be members of a group.
        """
        direct = await self.memberships.groups_of(scope.tenant, user_ids)
        known = {group: joined for groups in direct.values() for group, joined in groups.items()}
        parents: dict[str, set[str]] = {}
        pending = set(known)
        while pending:
            nested = [group for group in pending if known[group].member_of]
            found = await self.memberships.groups_of(scope.tenant, nested) if nested else {}
            parents.update({group: set(found.get(group, {})) for group in pending})
            for groups in found.values():
                known |= groups
            pending = {p for group in pending for p in parents[group]} - parents.keys()
        answer: dict[str, list[Payload]] = {}
        for user, joined in direct.items():
            member_of = set(joined)
            indirect = _ancestors(member_of, parents) - member_of
            answer[user] = [
                _reference(group, known[group].name, kind, scope.location(GROUPS, group))
                for kind, selected in (("direct", member_of), ("indirect", indirect))
                for group in sorted(selected)
            ]
        return answer


class _PageMembers:
    """The members of a page of groups, handed out group by group as the page is written.

    A page of several groups in id order (the default, and the order memberships are read
    in) is served by one query for all of them, as few commands as a page of small groups
    can cost. A group alone, or a page in any other order, is read group by group, each by
    ranges of member ids (``group_member_batches``), so a large group's first members come
    as fast as a small one's. Either way a batch at a time.
    """

    def __init__(self, memberships: MembershipRepository, tenant: str, groups: list[str]) -> None:
        self.memberships = memberships
        self.tenant = tenant
        self.shared = (
            memberships.member_batches(tenant, groups, MEMBER_BATCH)
            if len(groups) > 1 and groups == sorted(groups)
            else None
        )
        self.pending: tuple[str, list[Member]] | None = None

    async def of(self, group: str) -> AsyncIterator[list[Member]]:
        """The group's members; with one query for the page, groups must be asked in order."""
        if self.shared is None:
            async for batch in self.memberships.group_member_batches(
                self.tenant, group, MEMBER_BATCH
            ):
                yield batch
            return
        while True:
            if self.pending is None:
                self.pending = await anext(self.shared, None)
                if self.pending is None:
                    return
            owner, batch = self.pending
            if owner > group:
                return
            self.pending = None
            if owner == group:
                yield batch


async def _references(
    scope: Scope, selection: Selection, group: Payload, batches: AsyncIterator[list[Member]]
) -> AsyncIterator[list[Payload]]:
    """A group's members as the references its payload carries, ``selection`` applied to
    their sub-attributes (``members.value``) as it would be to the whole group."""
    by_kind = {kind.name: kind for kind in KINDS}
    async for batch in batches:
        references = [
            _reference(
                member.value,
                member.display or member.name,
                str(member.type),
                scope.location(by_kind[str(member.type)], member.value),
            )
            for member in batch
        ]
        if selection.attributes or selection.excluded:
            alone = {"schemas": group["schemas"], "id": group["id"], "members": references}
            references = selection.apply(GROUPS, alone).get("members") or []
        if references:
            yield references


def _ancestors(groups: Iterable[str], parents: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(groups)
    while stack:
        group = stack.pop()
        if group not in seen:
            seen.add(group)
            stack.extend(parents.get(group, ()))
    return seen


def _reference(resource_id: str, display: str | None, member_type: str, location: str) -> Payload:
    reference: Payload = {"value": resource_id, "$ref": location, "type": member_type}
    if display:
        reference["display"] = display
    return reference


def to_payload(kind: ResourceKind, resource: StoredResource, location: str) -> Payload:
    """The SCIM representation of a stored resource, before attribute selection."""
    payload: Payload = {"schemas": [kind.schema], "id": resource.id}
    for key, value in resource.attributes.items():
        if key in kind.extensions:
            value = declared_only(kind, key, value)
            if not value:
                continue  # emptied in storage (a deleted manager cleared): as a PATCH leaves it
            payload["schemas"].append(key)
        elif is_extension_key(key):
            continue  # an extension the tenant no longer defines: its values are unreachable
        payload[key] = value
    payload["meta"] = {
        "resourceType": kind.name,
        "created": _iso(resource.created),
        "lastModified": _iso(resource.last_modified),
        "location": location,
        "version": etag(resource.version),
    }
    return payload


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
