"""The questions sign-in asks of the SCIM store, answered as typed records.

Single sign-on reads users and groups but never writes them here: its writes go through
``Provisioning.create`` and ``Provisioning.patch``, like any SCIM client's. What it reads it
reads through this module, so no code outside ``storage/`` needs to know how a resource is
stored. Names are compared as SCIM compares them (``userName`` and ``displayName`` are
case-insensitive), through the same filter compiler the SCIM API uses.
"""

from __future__ import annotations

import json

from scim_server.core.filters import compile_filter
from scim_server.models import GROUPS, USERS
from scim_server.storage.memberships import MembershipRepository
from scim_server.storage.resources import ResourceRepository, UserRecord

__all__ = ["Directory", "UserRecord"]


class Directory:
    """Read-only lookups of one database's users and groups; the tenant comes with each call."""

    def __init__(
        self,
        users: ResourceRepository,
        groups: ResourceRepository,
        memberships: MembershipRepository,
    ) -> None:
        self._users = users
        self._groups = groups
        self._memberships = memberships

    async def user(self, tenant: str, user_id: str) -> UserRecord | None:
        """The user of that id, if it exists."""
        return await self._users.user(tenant, user_id)

    async def user_named(self, tenant: str, user_name: str) -> UserRecord | None:
        """The user of that userName, if any."""
        query = compile_filter(f"userName eq {json.dumps(user_name)}", USERS.model)
        return await self._users.first_user(tenant, query)

    async def group_named(self, tenant: str, display_name: str) -> str | None:
        """The id of a group of that displayName, if any (the first, should there be several)."""
        query = compile_filter(f"displayName eq {json.dumps(display_name)}", GROUPS.model)
        return await self._groups.first_id(tenant, query)

    async def groups_of(self, tenant: str, user_id: str) -> dict[str, str]:
        """The named groups the user is a direct member of: group id -> displayName."""
        memberships = await self._memberships.groups_of(tenant, [user_id])
        joined = memberships.get(user_id, {})
        return {group_id: group.name for group_id, group in joined.items() if group.name}
