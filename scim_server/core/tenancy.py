"""Tenants as a whole: created with a first token, listed with their seats, deleted with all.

A tenant's data lives in several stores (the tenant document and its tokens, users, groups and
memberships, the provisioning journal, the SSO collections, the rate limit's counts, the
webhooks with their log and dead letters); this is the one place that knows them all, so
that deleting a tenant can never leave a store behind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from scim2_models import ConflictException, InvalidValueException

from scim_server.core.errors import unknown_tenant
from scim_server.core.journal import ProvisioningJournal
from scim_server.core.provisioning import Provisioning
from scim_server.core.rate_limits import RateLimits
from scim_server.core.seats import SeatUsage
from scim_server.core.tokens import IssuedToken, TokenAuthority
from scim_server.storage.delivery import DeliveryRepository
from scim_server.storage.ssf import SsfRepository
from scim_server.storage.sso import SsoRepository
from scim_server.storage.tenants import (
    TenantExists,
    TenantRecord,
    TenantRepository,
    TokenRecord,
)

TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
"""A tenant's name, which is also a path segment of its SCIM base URL."""


@dataclass(frozen=True)
class NewTenant:
    name: str
    token: IssuedToken


@dataclass(frozen=True)
class TenantSummary:
    name: str
    created: datetime
    seats: SeatUsage


def checked_name(name: object) -> str:
    """A tenant's (or an instance group's) name as sent, or 400 saying what one looks like."""
    if not isinstance(name, str) or not TENANT_NAME.fullmatch(name):
        raise InvalidValueException(
            detail="name is 1-63 lowercase letters, digits, '-' or '_', starting with a "
            "letter or digit"
        )
    return name


class Tenancy:
    def __init__(
        self,
        tenants: TenantRepository,
        tokens: TokenAuthority,
        provisioning: Provisioning,
        journal: ProvisioningJournal,
        sso: SsoRepository,
        rate_limits: RateLimits,
        ssf: SsfRepository,
        delivery: DeliveryRepository,
    ) -> None:
        self.tenants = tenants
        self.tokens = tokens
        self.provisioning = provisioning
        self.journal = journal
        self.sso = sso
        self.rate_limits = rate_limits
        self.ssf = ssf
        self.delivery = delivery

    async def create(self, name: object, *, ttl_seconds: int | None) -> NewTenant:
        """Create the tenant and issue its first SCIM bearer token."""
        name = checked_name(name)
        try:
            await self.tenants.create(name, datetime.now(UTC))
        except TenantExists:
            raise ConflictException(detail=f"tenant {name!r} already exists") from None
        self.provisioning.one_team.forget()  # a server-wide team has one tenant more
        self.provisioning.user_extensions.created(name)
        token = await self.tokens.issue(name, ttl_seconds=ttl_seconds, description="initial token")
        return NewTenant(name, token)

    async def require(self, name: str) -> TenantRecord:
        """The tenant of that name, or 404."""
        record = await self.tenants.get(name)
        if record is None:
            raise unknown_tenant(name)
        return record

    async def summaries(self) -> list[TenantSummary]:
        """Every tenant with its seats: one query (a tenant from before seats is counted once)."""
        return [
            TenantSummary(
                record.name,
                record.created,
                await self.provisioning.seats.of(record.name, record.seats),
            )
            for record in await self.tenants.all()
        ]

    async def tokens_of(self, name: str) -> list[TokenRecord]:
        """The tenant's SCIM bearer tokens (ids and dates, never a secret), oldest first."""
        return await self.tenants.list_tokens((await self.require(name)).name)

    async def seats_of(self, name: str) -> SeatUsage:
        return await self.provisioning.seats.usage(name)

    async def set_seats(self, name: str, limit: int | None) -> SeatUsage:
        """Set the limit; below the seats in use is allowed, and ``over`` says by how many."""
        return await self.provisioning.seats.set_limit(name, limit)

    async def recount_seats(self, name: str) -> SeatUsage:
        """Recount the seats in use from the users, to repair a counter a crash left too high."""
        return await self.provisioning.seats.recount(name)

    async def delete(self, name: str) -> None:
        """Delete the tenant and everything it owns, in every store."""
        # The tenant document first: from then on its tokens are refused and nothing new lands.
        if not await self.tenants.delete(name):
            raise unknown_tenant(name)
        self.tokens.forget_tenant(name)
        self.provisioning.seats.forget(name)
        await self.provisioning.delete_tenant(name)
        await self.journal.flush()  # nothing queued for it lands after the delete
        await self.journal.delete_tenant(name)
        await self.sso.delete_tenant(name)
        await self.rate_limits.delete_tenant(name)
        await self.provisioning.instance_groups.forget_tenant(name)
        self.provisioning.one_team.forget()
        await self.ssf.delete_tenant(name)
        await self.delivery.delete_tenant(name)

    async def duplicate_group_names(self, name: str) -> bool:
        """Whether the tenant's groups may share a displayName (off unless allowed)."""
        allowed = await self.tenants.duplicate_group_names(name)
        if allowed is None:
            raise unknown_tenant(name)
        return allowed

    async def allow_duplicate_group_names(self, name: str, allowed: bool) -> bool:
        """Let the tenant's groups share displayNames, or not, from the next write on."""
        if not await self.tenants.allow_duplicate_group_names(name, allowed):
            raise unknown_tenant(name)
        return allowed
