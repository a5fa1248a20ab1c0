"""What every IdP profile shares: the link table (directory id ↔ SCIM id) and status checking.

A profile turns directory events into one IdP's request sequence. It never raises on an HTTP
error: an unexpected status is recorded in ``failures`` (as the IdP would raise a task/alert) and
the scenario goes on, so one run reports every problem at once.
"""

from __future__ import annotations

import random
import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from idp_sim.directory import Directory, DirectoryGroup, DirectoryUser
from idp_sim.transport import Response, Transport
from idp_sim.urns import PATCH_OP


class NotSupported(Exception):
    """The IdP never sends this operation (e.g. Okta never deletes users)."""


@dataclass
class Failure:
    operation: str
    method: str
    path: str
    status: int
    detail: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.method} {self.path} -> {self.status} {self.detail}"


def eq_filter(attribute: str, value: str) -> str:
    """``attr eq "value"`` with the value's quotes and backslashes escaped (RFC 7644 §3.4.2.2)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{attribute} eq "{escaped}"'


class Profile:
    """Base for all profiles; subclasses implement the operations their IdP performs."""

    name: str = "base"
    """The profile's name; one class may serve several (Entra and its flag)."""

    def __init__(
        self, transport: Transport, directory: Directory, *, seed: int = 0, concurrency: int = 1
    ) -> None:
        self.transport = transport
        self.concurrency = max(1, concurrency)
        """How many users (or groups) the IdP provisions at once when many are assigned: its
        requests for them overlap, up to this many in flight."""
        self.directory = directory
        self.rng = random.Random(seed)
        self.user_links: dict[str, str] = {}  # directory user id → SCIM id
        self.group_links: dict[str, str] = {}  # directory group id → SCIM id
        self.pushed_members: dict[str, list[str]] = {}  # directory group id → member dir ids
        self.released_groups: dict[str, str] = {}  # directory id → SCIM id of groups left as is
        self.failures: list[Failure] = []

    # ---- plumbing -------------------------------------------------------------------------------
    async def call(
        self,
        operation: str,
        method: str,
        path: str,
        query: Sequence[tuple[str, str | int]] = (),
        body: Any = None,
        *,
        expect: Collection[int] = (200,),
    ) -> Response:
        response = await self.transport.request(method, path, query, body)
        if response.status not in expect:
            detail = response.error or (
                response.body.get("detail", "") if isinstance(response.body, dict) else ""
            )
            self.failures.append(Failure(operation, method, path, response.status, str(detail)))
        return response

    async def patch_group(
        self, group: DirectoryGroup, operation: str, operations: list[dict[str, Any]]
    ) -> None:
        """One PATCH of a pushed group; 200 or 204 accepted (Entra expects 204)."""
        await self.call(
            operation,
            "PATCH",
            f"/Groups/{self.scim_group_id(group)}",
            body={"schemas": [PATCH_OP], "Operations": operations},
            expect=(200, 204),
        )

    def random_password(self, length: int = 8) -> str:
        """Okta's random 8-character placeholder password (lower-case letters and digits)."""
        return "".join(
            self.rng.choice(string.ascii_lowercase + string.digits) for _ in range(length)
        )

    def scim_user_id(self, user: DirectoryUser) -> str:
        return self.user_links[user.id]

    def scim_group_id(self, group: DirectoryGroup) -> str:
        return self.group_links[group.id]

    def forget_links(self) -> None:
        """Drop every link, as a restarted provisioning job (Entra) or a re-created app
        (Okta, JumpCloud) does: the next assignment must find its user by its existence check."""
        self.user_links.clear()
        self.group_links.clear()
        self.pushed_members.clear()

    def forget_user(self, user: DirectoryUser) -> None:
        """After a user's DELETE: unlinked, unassigned, and no longer a pushed member of any
        group (the server dropped those memberships with the user)."""
        self.user_links.pop(user.id, None)
        self.directory.unassign_user(user.id)
        for members in self.pushed_members.values():
            if user.id in members:
                members.remove(user.id)

    def release_group(self, group: DirectoryGroup) -> None:
        """Stop syncing a group and leave it on the server as it is: no longer linked or
        assigned, remembered in ``released_groups``."""
        self.released_groups[group.id] = self.group_links.pop(group.id)
        self.pushed_members.pop(group.id, None)
        self.directory.assigned_group_ids.discard(group.id)

    def member_ids(self, group: DirectoryGroup) -> list[str]:
        """The group's members that this app knows (linked users), as directory ids."""
        return [m for m in group.member_ids if m in self.user_links]

    @staticmethod
    def first_resource(response: Response) -> dict[str, Any] | None:
        """The first hit of a filter query; a 404 or an empty ListResponse both mean none."""
        if response.status != 200 or not isinstance(response.body, dict):
            return None
        resources = response.body.get("Resources") or response.body.get("resources") or []
        return resources[0] if resources else None

    async def page_all(
        self,
        operation: str,
        path: str,
        count: int = 100,
        extra: Sequence[tuple[str, str | int]] = (),
    ) -> list[dict[str, Any]]:
        """Index paging ``startIndex=1,1+count,…`` while ``startIndex <= totalResults``."""
        found: list[dict[str, Any]] = []
        start = 1
        while True:
            response = await self.call(
                operation, "GET", path, [*extra, ("startIndex", start), ("count", count)]
            )
            if not isinstance(response.body, dict) or response.status != 200:
                return found
            body = response.body
            page = body.get("Resources") or body.get("resources") or []
            found.extend(page)
            total = body.get("totalResults", body.get("totalresults", 0))
            start += count
            if not page or start > int(total or 0):
                return found

    # ---- operations (subclasses override what their IdP does) ---------------------------------
    async def test_connection(self) -> bool:
        raise NotSupported

    async def import_users(self) -> list[dict[str, Any]]:
        raise NotSupported

    async def import_groups(self) -> list[dict[str, Any]]:
        raise NotSupported

    async def assign_user(self, user: DirectoryUser) -> str | None:
        raise NotSupported

    async def update_user(self, user: DirectoryUser) -> None:
        raise NotSupported

    async def deactivate_user(self, user: DirectoryUser) -> None:
        raise NotSupported

    async def reactivate_user(self, user: DirectoryUser) -> None:
        raise NotSupported

    async def push_password(self, user: DirectoryUser, password: str) -> None:
        raise NotSupported

    async def provision_on_demand(self, user: DirectoryUser) -> None:
        """Provision one user now, with its manager and groups (Entra's "Provision on
        demand")."""
        raise NotSupported

    async def unassign_user(self, user: DirectoryUser) -> None:
        raise NotSupported

    async def delete_user(self, user: DirectoryUser) -> None:
        raise NotSupported

    async def push_group(self, group: DirectoryGroup) -> str | None:
        raise NotSupported

    async def update_members(self, group: DirectoryGroup) -> None:
        """Send the delta between what was pushed last and the directory group's members now."""
        raise NotSupported

    async def rename_group(self, group: DirectoryGroup) -> None:
        raise NotSupported

    async def push_now(self, group: DirectoryGroup) -> None:
        raise NotSupported

    async def delete_group(self, group: DirectoryGroup) -> None:
        raise NotSupported

    async def disassociate_group(self, group: DirectoryGroup) -> None:
        """Take a group off the app without deleting it (JumpCloud)."""
        raise NotSupported

    # ---- helpers for membership deltas ---------------------------------------------------------
    def delta(self, group: DirectoryGroup) -> tuple[list[str], list[str]]:
        """(removed, added) directory user ids since the last push of this group."""
        before = self.pushed_members.get(group.id, [])
        now = self.member_ids(group)
        return [m for m in before if m not in now], [m for m in now if m not in before]
