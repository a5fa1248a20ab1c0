"""The SCIM resource operations: create, read, list, replace, patch and delete.

This is the protocol core, free of HTTP: handlers call it with parsed input and
turn what it answers (or raises) into responses. ``Provisioning`` is the one
front door for a SCIM request, a Bulk operation and a just-in-time sign-in alike;
it wires the stores of one database to the pieces that hold the rules:

* ``queries.py``: a resource by id, list pages (by index or cursor), the root search;
* ``writes.py``: validation, uniqueness, versions and retries, passwords, seats, and the
  one-team policy (``one_team.py``);
* ``members.py``: group members checked and applied as set operations;
* ``rendering.py``: stored resources as SCIM payloads, with ``members`` and the
  derived ``User.groups``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Concatenate, ParamSpec, TypeVar

from scim_server.config import Settings
from scim_server.core.cursors import CursorCodec
from scim_server.core.directory import Directory
from scim_server.core.events import Relay
from scim_server.core.listing import ListQuery
from scim_server.core.one_team import OneTeam
from scim_server.core.queries import Payload, Queries
from scim_server.core.rendering import Renderer
from scim_server.core.scope import Scope
from scim_server.core.seats import Seats
from scim_server.core.user_extensions import UserExtensions
from scim_server.core.writes import Writes
from scim_server.models import CUSTOM_KINDS, GROUPS, KINDS, USERS, ResourceKind
from scim_server.storage.database import Database
from scim_server.storage.documents import StoredResource
from scim_server.storage.events import EventRepository
from scim_server.storage.instances import InstanceGroupRepository
from scim_server.storage.memberships import MembershipRepository
from scim_server.storage.resources import ResourceRepository
from scim_server.storage.seats import SeatCounter
from scim_server.storage.tenants import TenantRepository

Arguments = ParamSpec("Arguments")
Result = TypeVar("Result")


class Provisioning:
    """Resource operations for one database; tenant and base URL come with each call."""

    def __init__(
        self,
        database: Database,
        *,
        max_results: int,
        cursors: CursorCodec,
        patch_max_operations: int = Settings.patch_max_operations,
        one_team_server_wide: bool = Settings.one_team_server_wide,
    ) -> None:
        self.cursors = cursors
        self.repositories = {
            kind.name: ResourceRepository(database, kind) for kind in (*KINDS, *CUSTOM_KINDS)
        }
        self.memberships = MembershipRepository(database)
        self.renderer = Renderer(self.memberships)
        # The read-only queries of users and groups that sign-in needs, as typed records.
        self.directory = Directory(
            self.repositories[USERS.name], self.repositories[GROUPS.name], self.memberships
        )
        self.seats = Seats(SeatCounter(database))
        self.instance_groups = InstanceGroupRepository(database)
        self.one_team = OneTeam(self.instance_groups, server_wide=one_team_server_wide)
        # Moves the events every write leaves pending into the outbox (docs/events.md).
        self.relay = Relay(EventRepository(database), self.memberships)
        self.queries = Queries(
            self.repositories,
            self.memberships,
            self.renderer,
            max_results=max_results,
            cursors=cursors,
        )
        self.writes = Writes(
            self.repositories,
            self.memberships,
            self.renderer,
            self.seats,
            TenantRepository(database),
            self.relay,
            self.one_team,
            patch_max_operations=patch_max_operations,
        )
        # Each tenant's own User extensions: its users are read and written with its model.
        self.user_extensions = UserExtensions(
            TenantRepository(database), self.repositories[USERS.name]
        )
        # Every operation serves ``kind`` as the tenant's resource type (``UserExtensions.kind``):
        # a user, whether SCIM, Bulk or a sign-in asks, is always built with its tenant's model.
        self.get = self._as_served(self.queries.get)
        self.list_page = self._as_served(self.queries.list_page)
        self.create = self._as_served(self.writes.create)
        self.replace = self._as_served(self.writes.replace)
        self.patch = self._as_served(self.writes.patch)
        self.delete = self._as_served(self.writes.delete)

    def _as_served(
        self, operation: Callable[Concatenate[ResourceKind, Scope, Arguments], Awaitable[Result]]
    ) -> Callable[Concatenate[ResourceKind, Scope, Arguments], Awaitable[Result]]:
        """``operation`` on the resource type the tenant serves for the ``kind`` it is given."""

        async def served(
            kind: ResourceKind, scope: Scope, /, *args: Arguments.args, **kwargs: Arguments.kwargs
        ) -> Result:
            tenant_kind = await self.user_extensions.kind(kind, scope.tenant)
            return await operation(tenant_kind, scope, *args, **kwargs)

        return served

    async def search_all(self, scope: Scope, query: ListQuery) -> Payload:
        users = await self.user_extensions.kind(USERS, scope.tenant)
        return await self.queries.search_all(scope, query, kinds=(users, GROUPS))

    async def create_users(
        self, scope: Scope, bodies: Sequence[Payload]
    ) -> list[StoredResource | Exception]:
        users = await self.user_extensions.kind(USERS, scope.tenant)
        return await self.writes.create_users(scope, bodies, users=users)

    def repository(self, kind: ResourceKind) -> ResourceRepository:
        return self.repositories[kind.name]

    async def delete_tenant(self, tenant: str) -> None:
        for repository in self.repositories.values():
            await repository.delete_tenant(tenant)
        await self.memberships.delete_tenant(tenant)
        await self.relay.delete_tenant(tenant)
        self.user_extensions.forget(tenant)
