"""Stored resources as SCIM payloads, with the attributes derived from memberships.

``Group.members`` and ``User.groups`` are not stored in the resources: they are
read from the membership relation, and only when the response will carry them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from scim_server.core.preconditions import etag
from scim_server.core.projection import Selection
from scim_server.core.scope import Scope
from scim_server.models import GROUPS, KINDS, USERS, ResourceKind
from scim_server.storage.documents import StoredResource
from scim_server.storage.memberships import MembershipRepository

Payload = dict[str, Any]


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
            members = await self.members(scope, ids)
            for payload in payloads:
                if members.get(payload["id"]):
                    payload["members"] = members[payload["id"]]
        if kind is USERS and selection.includes(kind, "groups"):
            in_groups = [resource.id for resource in resources if resource.member_of]
            groups = await self.groups_of(scope, in_groups)
            for payload in payloads:
                if groups.get(payload["id"]):
                    payload["groups"] = groups[payload["id"]]
        return [selection.apply(kind, payload) for payload in payloads]

    async def members(self, scope: Scope, group_ids: list[str]) -> dict[str, list[Payload]]:
        relation = await self.memberships.members_of(scope.tenant, group_ids)
        by_kind = {kind.name: kind for kind in KINDS}
        return {
            group: [
                _reference(
                    member.value,
                    member.display or member.name,
                    str(member.type),
                    scope.location(by_kind[str(member.type)], member.value),
                )
                for member in members
            ]
            for group, members in relation.items()
        }

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
            if not value:
                continue  # emptied in storage (a deleted manager cleared): as a PATCH leaves it
            payload["schemas"].append(key)
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
