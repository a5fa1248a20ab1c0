"""Instance groups and the one-team claims, in MongoDB (the rules: ``core/instances.py`` and
``core/one_team.py``).

- ``instance_groups``: one document per group, by name: its primary tenant, the email domain
  its logins share, the SCIM role that makes a login an administrator, and whether the one-team
  policy is on. The domain is unique (a unique index), so a root email names one group.
- ``instance_members``: one document per member tenant, ``_id`` the tenant: a tenant belongs to
  at most one group, and "the group of this tenant" is one lookup on ``_id``.
- ``team_claims``: which tenant holds an active ``userName`` in a one-team scope (a group's
  name, or ``SERVER_WIDE``), by the userName's comparison form: a unique ``_id``
  (scope, name), so two tenants cannot both take it. A claim carries a random token (only its
  taker releases it) and the time it was taken.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from scim_server.models import USERS
from scim_server.storage.database import Database, Document, translate_driver_errors
from scim_server.storage.documents import comparable_user_name
from scim_server.storage.seats import HOLDS_SEAT

SERVER_WIDE = "*"
"""The one-team scope of the server-wide policy (no group is called that: names are slugs)."""

INDEXES: dict[str, list[IndexModel]] = {
    "instance_groups": [
        IndexModel([("domain", ASCENDING)], unique=True, name="domain_unique"),
        IndexModel([("primary", ASCENDING)], name="primary"),
    ],
    "instance_members": [IndexModel([("group", ASCENDING)], name="group")],
    "team_claims": [IndexModel([("tenant", ASCENDING)], name="tenant")],
}


class GroupExists(Exception):
    """A group of that name, or of that domain, already exists."""


class TenantTaken(Exception):
    """A tenant is already a member of another group."""

    def __init__(self, tenant: str) -> None:
        super().__init__(tenant)
        self.tenant = tenant


@dataclass(frozen=True)
class InstanceGroupRecord:
    name: str
    primary: str
    domain: str
    admin_role: str
    one_team: bool
    tenants: tuple[str, ...]
    """Every member, the primary first, then by name."""
    created: datetime


@dataclass(frozen=True)
class Claim:
    """Who holds a userName in a one-team scope."""

    tenant: str
    token: str
    at: datetime


def _claim_id(scope: str, user_name: str) -> Document:
    return {"scope": scope, "name": comparable_user_name(user_name)}


@translate_driver_errors
class InstanceGroupRepository:
    def __init__(self, database: Database) -> None:
        self.groups = database["instance_groups"]
        self.members = database["instance_members"]
        self.claims = database["team_claims"]
        self.tenants = database.tenants
        self.users = database[USERS.collection]

    async def ensure_indexes(self) -> None:
        for name, indexes in INDEXES.items():
            await self.groups.database[name].create_indexes(indexes)

    # -- groups ---------------------------------------------------------------------------

    async def create(
        self,
        name: str,
        primary: str,
        domain: str,
        admin_role: str,
        one_team: bool,
        tenants: Sequence[str],
        now: datetime,
    ) -> InstanceGroupRecord:
        """Store the group, then its members; a member taken by another group undoes it all."""
        document = {
            "_id": name,
            "primary": primary,
            "domain": domain,
            "admin_role": admin_role,
            "one_team": one_team,
            "created": now,
        }
        try:
            await self.groups.insert_one(document)
        except DuplicateKeyError:
            raise GroupExists(name) from None
        try:
            await self.add_members(name, tenants)
        except TenantTaken:
            await self.delete(name)
            raise
        return await self._record(document)

    async def add_members(self, group: str, tenants: Sequence[str]) -> None:
        """Make ``tenants`` members of ``group``; one already in another group raises
        ``TenantTaken`` after the others were added (the caller decides what to undo)."""
        taken: str | None = None
        for tenant in tenants:
            try:
                await self.members.insert_one({"_id": tenant, "group": group})
            except DuplicateKeyError:
                held = await self.members.find_one({"_id": tenant})
                if held is None or held["group"] != group:
                    taken = tenant
        if taken is not None:
            raise TenantTaken(taken)

    async def remove_members(self, group: str, tenants: Sequence[str]) -> None:
        """Take ``tenants`` out of ``group``, with the claims they held in it."""
        await self.members.delete_many({"_id": {"$in": list(tenants)}, "group": group})
        await self.claims.delete_many({"_id.scope": group, "tenant": {"$in": list(tenants)}})

    async def update(self, name: str, changes: Document) -> InstanceGroupRecord | None:
        """Set ``changes`` (of ``admin_role``, ``one_team``) on the group; None: no such group."""
        document = await self.groups.find_one_and_update(
            {"_id": name}, {"$set": changes}, return_document=True
        )
        return None if document is None else await self._record(document)

    async def get(self, name: str) -> InstanceGroupRecord | None:
        document = await self.groups.find_one({"_id": name})
        return None if document is None else await self._record(document)

    async def by_domain(self, domain: str) -> InstanceGroupRecord | None:
        document = await self.groups.find_one({"domain": domain})
        return None if document is None else await self._record(document)

    async def of_tenant(self, tenant: str) -> InstanceGroupRecord | None:
        """The group ``tenant`` is a member of, if any: a lookup on the member's ``_id``."""
        member = await self.members.find_one({"_id": tenant})
        return None if member is None else await self.get(str(member["group"]))

    async def all(self) -> list[InstanceGroupRecord]:
        return [await self._record(d) async for d in self.groups.find({}).sort("_id", 1)]

    async def delete(self, name: str) -> bool:
        """Delete the group, its memberships and its claims; whether it was there."""
        result = await self.groups.delete_one({"_id": name})
        await self.members.delete_many({"group": name})
        await self.claims.delete_many({"_id.scope": name})
        return result.deleted_count == 1

    async def forget_tenant(self, tenant: str) -> None:
        """A tenant deleted: out of its group (the group goes with its primary tenant), and
        its claims given up."""
        async for group in self.groups.find({"primary": tenant}, {"_id": 1}):
            await self.delete(str(group["_id"]))
        await self.members.delete_one({"_id": tenant})
        await self.claims.delete_many({"tenant": tenant})

    async def tenant_names(self) -> list[str]:
        """Every tenant's name (for the server-wide policy), on the tenants' ``_id``."""
        return [str(d["_id"]) async for d in self.tenants.find({}, {"_id": 1})]

    async def _record(self, document: Document) -> InstanceGroupRecord:
        name = str(document["_id"])
        primary = str(document["primary"])
        others = [
            str(m["_id"])
            async for m in self.members.find({"group": name}).sort("_id", 1)
            if m["_id"] != primary
        ]
        return InstanceGroupRecord(
            name=name,
            primary=primary,
            domain=str(document["domain"]),
            admin_role=str(document["admin_role"]),
            one_team=bool(document.get("one_team", False)),
            tenants=(primary, *others),
            created=document["created"],
        )

    # -- one-team claims ------------------------------------------------------------------

    async def claim(self, scope: str, user_name: str, tenant: str, now: datetime) -> str | None:
        """Take ``user_name`` in ``scope`` for ``tenant``: the claim's token, None when held."""
        token = secrets.token_hex(8)
        try:
            await self.claims.insert_one(
                {"_id": _claim_id(scope, user_name), "tenant": tenant, "token": token, "at": now}
            )
        except DuplicateKeyError:
            return None
        return token

    async def holder(self, scope: str, user_name: str) -> Claim | None:
        document = await self.claims.find_one({"_id": _claim_id(scope, user_name)})
        if document is None:
            return None
        return Claim(str(document["tenant"]), str(document["token"]), document["at"])

    async def take_over(
        self, scope: str, user_name: str, held: Claim, tenant: str, now: datetime
    ) -> str | None:
        """Take a claim over from ``held``, if it is still held so: the new token, else None."""
        token = secrets.token_hex(8)
        result = await self.claims.update_one(
            {"_id": _claim_id(scope, user_name), "token": held.token},
            {"$set": {"tenant": tenant, "token": token, "at": now}},
        )
        return token if result.modified_count == 1 else None

    async def release(self, scope: str, user_name: str, *, token: str | None, tenant: str) -> None:
        """Give a claim up: the one of that token (a write that did not land), or whichever
        ``tenant`` holds (its user stopped holding the name)."""
        query: dict[str, Any] = {"_id": _claim_id(scope, user_name), "tenant": tenant}
        if token is not None:
            query["token"] = token
        await self.claims.delete_one(query)

    async def release_scope(self, scope: str) -> None:
        """Every claim of a scope whose policy was turned off."""
        await self.claims.delete_many({"_id.scope": scope})

    async def active_in(self, tenants: Sequence[str], user_name: str) -> str | None:
        """One of ``tenants`` where a user of that userName is active, if any: one query on
        the users' (tenant, userName) index, bounded to each tenant."""
        if not tenants:
            return None
        document = await self.users.find_one(
            {
                "tenant": {"$in": list(tenants)},
                "c.userName": comparable_user_name(user_name),
                **HOLDS_SEAT,
            },
            {"tenant": 1},
        )
        return None if document is None else str(document["tenant"])
