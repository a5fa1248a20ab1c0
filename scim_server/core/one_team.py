"""The one-team policy: a person is active in one tenant of a team at a time.

A team is an instance group whose ``one_team`` is on, or, with ``SCIM_ONE_TEAM_SERVER_WIDE``,
every tenant of the server. Writing a user that becomes active under a ``userName`` (a
creation, a reactivation, a rename) is refused with ``409 uniqueness`` naming the policy when
that userName is active in another tenant of the team. Inactive users do not count.

Without transactions, two tenants creating the same userName at once could each look, see
nothing and both insert. So each write that takes a name first *claims* it in
``team_claims``, whose unique ``_id`` (team, userName in comparison form) lets one claim in;
only then does it look for an active user of that name in the team's other tenants (users
that were active before the policy was on hold no claim, and this finds them), and then it
writes. The claim stays while the user holds the name, and is given back when a write that
took it does not land, or once a write that drops the name (a deactivation, a rename, a
deletion) has landed. docs/cross-instance.md argues every interleaving; in short: of two
concurrent writers, the second to claim finds the first's claim, young (a write in flight)
or held by an active user, and is refused. A claim that is older than ``IN_FLIGHT_SECONDS``
and whose tenant has no active user of that name was left by a write that died: it is taken
over, by one writer only (a conditional update on its token).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from scim2_models import UniquenessException

from scim_server.core.errors import TooManyConcurrentChanges
from scim_server.core.seats import holds_seat
from scim_server.core.single_flight import SingleFlight
from scim_server.storage.documents import comparable_user_name
from scim_server.storage.instances import SERVER_WIDE, InstanceGroupRepository

T = TypeVar("T")

IN_FLIGHT_SECONDS = 30.0
"""How long a claim whose user is not (or no longer) active is taken for a write in flight."""
POLICY_READING_SECONDS = 1.0
"""How long this process serves a tenant's teams from a reading (another process's change of
a group reaches it within this time; this process's own changes at once)."""
CLAIM_ATTEMPTS = 10


class OneTeamRefusal(UniquenessException):
    """A userName refused by the one-team policy: a 409 ``uniqueness`` through SCIM, a refused
    sign-in (with this detail in the SSO log) through just-in-time provisioning."""


@dataclass(frozen=True)
class Team:
    """A one-team scope a tenant belongs to, and its other tenants."""

    scope: str
    others: tuple[str, ...]

    def refusal(self, user_name: str) -> OneTeamRefusal:
        where = (
            "another tenant of this server (the server-wide one-team policy)"
            if self.scope == SERVER_WIDE
            else f"another tenant of instance group {self.scope!r} (its one-team policy)"
        )
        return OneTeamRefusal(
            detail=f"userName {user_name!r} is active in {where}: a person may be active in "
            "one tenant only"
        )


@dataclass(frozen=True)
class Taken:
    """A name a write claimed in a team: ``token`` None when its own tenant already held it."""

    team: Team
    user_name: str
    token: str | None


def _name(attributes: Mapping[str, Any] | None) -> str | None:
    """The userName a user's attributes hold in a team: an active user's, else None."""
    if attributes is None or not holds_seat(attributes):
        return None
    name = attributes.get("userName")
    return name if isinstance(name, str) else None


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and comparable_user_name(a) == comparable_user_name(b)


class OneTeam:
    def __init__(self, repository: InstanceGroupRepository, *, server_wide: bool) -> None:
        self.repository = repository
        self.server_wide = server_wide
        self._readings: dict[str, tuple[float, tuple[Team, ...]]] = {}
        self._reading: SingleFlight[str, tuple[Team, ...]] = SingleFlight()
        """The reading of each tenant under way, which the writes wanting one meanwhile share."""

    def forget(self) -> None:
        """Drop every reading, and those under way (a group changed in this process)."""
        self._readings.clear()
        self._reading.detach_where(lambda _: True)

    async def teams(self, tenant: str) -> tuple[Team, ...]:
        """The teams the tenant is in: its group's, if the policy is on, and the server's."""
        reading = self._readings.get(tenant)
        if reading is not None and time.monotonic() - reading[0] < POLICY_READING_SECONDS:
            return reading[1]
        return await self._reading.read(tenant, partial(self._read_teams, tenant))

    async def _read_teams(self, tenant: str) -> tuple[Team, ...]:
        """Read the tenant's teams, and remember them unless a change of a group came
        meanwhile (the reading may predate it)."""
        began = time.monotonic()
        teams: list[Team] = []
        group = await self.repository.of_tenant(tenant)
        if group is not None and group.one_team:
            teams.append(Team(group.name, tuple(t for t in group.tenants if t != tenant)))
        if self.server_wide:
            names = await self.repository.tenant_names()
            teams.append(Team(SERVER_WIDE, tuple(t for t in names if t != tenant)))
        if self._reading.is_current(tenant):
            self._readings[tenant] = (began, tuple(teams))
        return tuple(teams)

    async def around(
        self,
        tenant: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        write: Callable[[], Awaitable[T]],
    ) -> T:
        """Run ``write``, which changes a user from ``before`` to ``after`` (None: created,
        deleted), claiming the name it takes first and giving back the one it drops after.

        Answers what ``write`` answers: falsy when it did not land, and then what it claimed
        is given back, as it is when it raises."""
        taken = await self.take(tenant, before, after)
        try:
            written = await write()
        except BaseException:
            await self.give_back(tenant, taken)
            raise
        if not written:
            await self.give_back(tenant, taken)
        else:
            await self.settle(tenant, before, after)
        return written

    async def take(
        self, tenant: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
    ) -> list[Taken]:
        """Claim the name ``after`` takes in each of the tenant's teams; raise the policy's 409
        when it is active (or being written) in another tenant of one."""
        name, held = _name(after), _name(before)
        if name is None or _same(name, held):
            return []
        taken: list[Taken] = []
        try:
            for team in await self.teams(tenant):
                taken.append(Taken(team, name, await self._claim(team, name, tenant)))
        except BaseException:
            await self.give_back(tenant, taken)
            raise
        return taken

    async def give_back(self, tenant: str, taken: list[Taken]) -> None:
        """Release what a write claimed, when it did not land."""
        for claim in taken:
            if claim.token is not None:
                await self.repository.release(
                    claim.team.scope, claim.user_name, token=claim.token, tenant=tenant
                )

    async def settle(
        self, tenant: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
    ) -> None:
        """After a write landed: give up the name the user no longer holds in its teams."""
        dropped = _name(before)
        if dropped is None or _same(dropped, _name(after)):
            return
        for team in await self.teams(tenant):
            await self.repository.release(team.scope, dropped, token=None, tenant=tenant)

    async def _claim(self, team: Team, name: str, tenant: str) -> str | None:
        """The token of the claim taken on ``name`` in ``team`` (None: the tenant held it)."""
        repository = self.repository
        for _ in range(CLAIM_ATTEMPTS):
            now = datetime.now(UTC)
            token = await repository.claim(team.scope, name, tenant, now)
            if token is None:
                held = await repository.holder(team.scope, name)
                if held is None:
                    continue  # released meanwhile: claim again
                if held.tenant == tenant:
                    # Its own user of that name, or another write of it in this tenant: the
                    # tenant's unique userName index decides between them.
                    return None
                # A holder that left the team holds nothing in it any more; any other's claim
                # stands while young (its write may be in flight) or while its user is active.
                if held.tenant in team.others:
                    age = now - held.at.replace(tzinfo=UTC)
                    in_flight = age < timedelta(seconds=IN_FLIGHT_SECONDS)
                    if in_flight or await repository.active_in([held.tenant], name):
                        raise team.refusal(name)
                token = await repository.take_over(team.scope, name, held, tenant, now)
                if token is None:
                    continue  # another writer took it over first: look again
            if await repository.active_in(team.others, name):
                await repository.release(team.scope, name, token=token, tenant=tenant)
                raise team.refusal(name)
            return token
        raise TooManyConcurrentChanges(detail=f"userName {name!r} is changing too fast; retry")
