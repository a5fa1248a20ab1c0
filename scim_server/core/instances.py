"""Instance groups: tenants linked for cross-instance sign-in, one of them primary.

A group names its primary tenant, the email domain its logins share, the SCIM role that makes
a login an administrator (``admin_role``, ``admin`` unless set) and whether the one-team policy
is on (``one_team.py``). A person's root login is ``local@domain`` in the primary tenant; her
login in member tenant ``t`` is ``local+t@domain`` (``+`` and nothing else). A login is an
administrator of its tenant when it is active and its SCIM ``roles`` hold a value equal to the
group's ``admin_role`` (compared case-insensitively, as RFC 7643 defines ``roles.value``), which
any IdP that provisions roles can set.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scim2_models import ConflictException, InvalidValueException, NotFoundException

from scim_server.core.directory import Directory, UserRecord
from scim_server.core.errors import unknown_tenant
from scim_server.core.one_team import OneTeam
from scim_server.core.tenancy import checked_name
from scim_server.storage.instances import (
    GroupExists,
    InstanceGroupRecord,
    InstanceGroupRepository,
    TenantTaken,
)
from scim_server.storage.tenants import TenantRepository

__all__ = ["InstanceGroupRecord", "InstanceGroups", "Login", "root_parts"]

LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(rf"(?=.{{1,253}}$)({LABEL}\.)*{LABEL}")
"""An email domain (lowercased): dot-separated DNS labels."""
DEFAULT_ADMIN_ROLE = "admin"
MAX_ROLE_LENGTH = 256
FIELDS = frozenset({"name", "primary", "domain", "tenants", "admin_role", "one_team"})


@dataclass(frozen=True)
class Login:
    """A person's administrator login in one tenant of her group."""

    tenant: str
    user: UserRecord


def root_parts(email: str) -> tuple[str, str] | None:
    """The local part and the domain (lowercased) of a root login; None when ``email`` is no
    root login (no ``@``, or a ``+`` in its local part: that is an instance login)."""
    local, at, domain = email.strip().rpartition("@")
    if not at or not local or not domain or "+" in local:
        return None
    return local, domain.lower()


def login_name(group: InstanceGroupRecord, root: str, tenant: str) -> str | None:
    """The login of ``root`` in ``tenant``: the root itself in the primary tenant, else
    ``local+tenant@domain``; None when ``root`` is no root login of the group's domain."""
    parts = root_parts(root)
    if parts is None or parts[1] != group.domain:
        return None
    return root if tenant == group.primary else f"{parts[0]}+{tenant}@{root.rpartition('@')[2]}"


def is_admin(user: UserRecord, role: str) -> bool:
    """Whether an active user's SCIM ``roles`` hold ``role`` (case-insensitively)."""
    roles = user.attributes.get("roles") or []
    wanted = role.casefold()
    return user.active and any(
        isinstance(entry, Mapping) and str(entry.get("value", "")).casefold() == wanted
        for entry in roles
    )


def unknown_group(name: str) -> NotFoundException:
    return NotFoundException(detail=f"no instance group {name!r}")


class InstanceGroups:
    def __init__(
        self,
        repository: InstanceGroupRepository,
        tenants: TenantRepository,
        directory: Directory,
        one_team: OneTeam,
    ) -> None:
        self.repository = repository
        self.tenants = tenants
        self.directory = directory
        self.one_team = one_team

    async def create(self, body: Mapping[str, Any]) -> InstanceGroupRecord:
        """A new group from the admin API's body (``name``, ``primary``, ``domain``; optional
        ``tenants``, ``admin_role``, ``one_team``)."""
        _known_fields(body)
        name = checked_name(body.get("name"))
        primary = body.get("primary")
        if not isinstance(primary, str):
            raise InvalidValueException(detail="primary names the group's primary tenant")
        domain = body.get("domain")
        if not isinstance(domain, str) or not DOMAIN.fullmatch(domain.lower()):
            raise InvalidValueException(detail="domain is the logins' email domain: acme.com")
        tenants = await self._tenants([primary, *_tenant_list(body.get("tenants", []))])
        try:
            created = await self.repository.create(
                name,
                primary,
                domain.lower(),
                _admin_role(body.get("admin_role", DEFAULT_ADMIN_ROLE)),
                _flag(body.get("one_team", False)),
                tenants,
                datetime.now(UTC),
            )
        except GroupExists:
            raise ConflictException(
                detail=f"an instance group {name!r} or one of domain {domain!r} already exists"
            ) from None
        except TenantTaken as taken:
            raise _taken(taken) from None
        self.one_team.forget()
        return created

    async def update(self, name: str, body: Mapping[str, Any]) -> InstanceGroupRecord:
        """Change a group: ``tenants`` (the members beside the primary, replaced as a whole),
        ``admin_role``, ``one_team``. The name, primary tenant and domain stay."""
        _known_fields(body)
        group = await self.require(name)
        for fixed in ("name", "primary", "domain"):
            if fixed in body and body[fixed] != getattr(group, fixed):
                raise InvalidValueException(detail=f"an instance group's {fixed} cannot change")
        changes: dict[str, Any] = {}
        if "admin_role" in body:
            changes["admin_role"] = _admin_role(body["admin_role"])
        if "one_team" in body:
            changes["one_team"] = _flag(body["one_team"])
        if "tenants" in body:
            wanted = await self._tenants([group.primary, *_tenant_list(body["tenants"])])
            try:
                await self.repository.add_members(name, wanted)
            except TenantTaken as taken:
                added = [t for t in wanted if t not in group.tenants]
                await self.repository.remove_members(name, added)
                raise _taken(taken) from None
            await self.repository.remove_members(
                name, [t for t in group.tenants if t not in wanted]
            )
        updated = await self.repository.update(name, changes) if changes else None
        if changes.get("one_team") is False:
            await self.repository.release_scope(name)
        self.one_team.forget()
        return updated or await self.require(name)

    async def require(self, name: str) -> InstanceGroupRecord:
        group = await self.repository.get(name)
        if group is None:
            raise unknown_group(name)
        return group

    async def all(self) -> list[InstanceGroupRecord]:
        return await self.repository.all()

    async def delete(self, name: str) -> None:
        if not await self.repository.delete(name):
            raise unknown_group(name)
        self.one_team.forget()

    async def of_root(self, email: str) -> InstanceGroupRecord | None:
        """The group whose domain a root email names, if any."""
        parts = root_parts(email)
        return None if parts is None else await self.repository.by_domain(parts[1])

    async def of_tenant(self, tenant: str) -> InstanceGroupRecord | None:
        return await self.repository.of_tenant(tenant)

    async def admin_logins(self, group: InstanceGroupRecord, root: str) -> list[Login]:
        """Every tenant of the group where ``root``'s login exists, is active and is an
        administrator, in the group's order: one lookup on (tenant, userName) per tenant."""
        names = {tenant: login_name(group, root, tenant) for tenant in group.tenants}
        found = await asyncio.gather(
            *(
                self.directory.user_named(tenant, name)
                for tenant, name in names.items()
                if name is not None
            )
        )
        tenants = [tenant for tenant, name in names.items() if name is not None]
        return [
            Login(tenant, user)
            for tenant, user in zip(tenants, found, strict=True)
            if user is not None and is_admin(user, group.admin_role)
        ]

    async def _tenants(self, names: list[str]) -> list[str]:
        """``names`` without repeats, each an existing tenant (404 otherwise)."""
        unique = list(dict.fromkeys(names))
        for tenant in unique:
            if await self.tenants.get(tenant) is None:
                raise unknown_tenant(tenant)
        return unique


def _known_fields(body: Mapping[str, Any]) -> None:
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise InvalidValueException(
            detail=f"unknown field(s) {', '.join(unknown)}; an instance group has "
            f"{', '.join(sorted(FIELDS))}"
        )


def _tenant_list(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidValueException(detail="tenants is a list of tenant names")
    return list(value)


def _admin_role(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ROLE_LENGTH:
        raise InvalidValueException(
            detail=f"admin_role is the SCIM roles value of an administrator (1-{MAX_ROLE_LENGTH} "
            "characters)"
        )
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidValueException(detail="one_team is true or false")
    return value


def _taken(taken: TenantTaken) -> ConflictException:
    return ConflictException(detail=f"tenant {taken.tenant!r} is in another instance group")
