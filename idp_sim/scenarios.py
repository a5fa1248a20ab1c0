"""Scenarios: ordered directory events driven through a profile, with a summary at the end.

``full-lifecycle`` walks every operation an IdP performs once (or once per user/group where the
real IdP would): what a QA engineer needs to see a server survive a whole provisioning life.
The other scenarios start where a real IdP meets a populated directory: ``returning-users``
brings back the users the lifecycle took away (the unassigned one is re-assigned, the deleted one
re-created: IPSIE AL1 wants the same userName accepted again after a DELETE), and ``restart``
forgets every link, as a restarted Entra job or a re-created Okta app does, and runs the
lifecycle again, so every user and group must be found by the IdP's own existence check.
:func:`relay` runs profiles one after another against the state the previous ones left.
Operations the IdP never performs (``NotSupported``) are listed as skipped, not failed.
Every step is a phase reported to a :class:`~idp_sim.progress.PhaseProgress` when one is given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from idp_sim.profiles.base import Failure, NotSupported, Profile
from idp_sim.progress import PhaseProgress, PhaseReport, Silent


@dataclass
class Summary:
    profile: str
    requests: int
    by_method_status: dict[str, int]
    failures: list[Failure]
    skipped: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "requests": self.requests,
            "by_method_status": self.by_method_status,
            "skipped": self.skipped,
            "failures": [str(f) for f in self.failures],
            "elapsed": round(self.elapsed, 3),
        }

    def render(self) -> str:
        lines = [f"profile {self.profile}: {self.requests} requests in {self.elapsed:.1f}s"]
        lines += [f"  {key}: {count}" for key, count in self.by_method_status.items()]
        if self.skipped:
            lines.append("  not done by this IdP: " + ", ".join(self.skipped))
        lines.append(f"  failures: {len(self.failures)}")
        lines += [f"    {f}" for f in self.failures[:50]]
        return "\n".join(lines)


class Steps:
    """The steps a scenario took and the ones its IdP does not perform; makes the summary.

    Each step is a phase for ``progress``: its items, then what it cost (requests journaled,
    failures recorded, time taken)."""

    def __init__(self, profile: Profile, progress: PhaseProgress | None) -> None:
        self.profile = profile
        self.progress = progress if progress is not None else Silent()
        self.started = time.monotonic()
        self.names: list[str] = []
        self.skipped: list[str] = []

    async def step(self, name: str, action: Callable[[], Awaitable[Any]]) -> None:
        """One action, a phase of one item."""
        await self.each(name, [None], lambda _: action())

    async def each(
        self, name: str, items: Sequence[Any], action: Callable[[Any], Awaitable[Any]]
    ) -> None:
        """``action`` on every item, up to the profile's ``concurrency`` at once (in turn when
        it is 1); the whole phase is skipped at the first ``NotSupported``."""
        self.names.append(name)
        label = f"{self.profile.name}: {name}"
        requests, failures = len(self.profile.transport.journal), len(self.profile.failures)
        started = time.monotonic()
        self.progress.begin(label, len(items))
        done, skipped = 0, False
        slots = asyncio.Semaphore(self.profile.concurrency)

        async def one(item: Any) -> None:
            nonlocal done, skipped
            async with slots:
                if skipped:
                    return
                try:
                    await action(item)
                except NotSupported:
                    skipped = True
                    return
                done += 1
                self.progress.advance()

        await asyncio.gather(*(one(item) for item in items))
        if skipped:
            self.skipped.append(name)
        self.progress.end(
            PhaseReport(
                label,
                done,
                len(items),
                len(self.profile.transport.journal) - requests,
                len(self.profile.failures) - failures,
                time.monotonic() - started,
                skipped,
            )
        )

    def summary(self) -> Summary:
        journal = self.profile.transport.journal
        return Summary(
            self.profile.name,
            len(journal),
            journal.counts(),
            list(self.profile.failures),
            list(dict.fromkeys(self.skipped)),
            self.names,
            time.monotonic() - self.started,
        )


async def lifecycle(profile: Profile, steps: Steps) -> None:
    """Connect, import, assign every directory user, push every group, then exercise one user
    and one group through update (with a manager), deactivate, reactivate, password, provision
    on demand, unassign, delta, rename, Push Now and delete (the last group), disassociate
    another group and delete a user where the IdP does."""
    directory = profile.directory
    users, groups = directory.users, directory.groups
    await steps.step("test connection", profile.test_connection)
    await steps.step("import users", profile.import_users)
    await steps.step("import groups", profile.import_groups)
    await steps.each("assign users", users, profile.assign_user)
    await steps.each("push groups", groups, profile.push_group)

    linked = [u for u in users if u.id in profile.user_links]
    if linked:
        subject = linked[0]
        subject.title = f"{subject.title} (updated)".strip()
        if len(linked) > 1:
            subject.manager_id = linked[1].id
        await steps.step("update profile", lambda: profile.update_user(subject))
        await steps.step("deactivate", lambda: profile.deactivate_user(subject))
        await steps.step("reactivate", lambda: profile.reactivate_user(subject))
        await steps.step("password push", lambda: profile.push_password(subject, "N3w-Passw0rd!"))
        subject.department = f"{subject.department} (on demand)".strip()
        await steps.step("provision on demand", lambda: profile.provision_on_demand(subject))
    if len(linked) > 1:
        await steps.step("unassign", lambda: profile.unassign_user(linked[-1]))
    pushed = [g for g in groups if g.id in profile.group_links]
    if pushed:
        group = pushed[0]
        spare = [u.id for u in linked if u.id not in group.member_ids]
        if group.member_ids:
            group.member_ids.remove(group.member_ids[0])
        if spare:
            group.member_ids.append(spare[0])
        await steps.step("membership delta", lambda: profile.update_members(group))
        group.name = f"{group.name} (renamed)"
        await steps.step("group rename", lambda: profile.rename_group(group))
        await steps.step("push now", lambda: profile.push_now(group))
        if len(pushed) > 1:
            await steps.step("group delete", lambda: profile.delete_group(pushed[-1]))
        if len(pushed) > 2:
            await steps.step("disassociate group", lambda: profile.disassociate_group(pushed[1]))
    if len(linked) > 2:
        await steps.step("delete user", lambda: profile.delete_user(linked[-2]))


async def bring_back(profile: Profile, steps: Steps) -> None:
    """Every directory user the app lost is assigned again, through the IdP's existence check:
    an unassigned (deactivated) user is found and linked again, a deleted one is re-created.
    Then each still-pushed group gets the members it lost with a deleted user."""
    directory = profile.directory
    away = [u for u in directory.users if u.id not in directory.assigned_user_ids]
    await steps.each("re-assign", away, profile.assign_user)
    back = {u.id for u in away}
    regrouped = [
        g
        for g in directory.groups
        if g.id in profile.group_links and back.intersection(g.member_ids)
    ]
    await steps.each("re-push memberships", regrouped, profile.update_members)


async def full_lifecycle(profile: Profile, progress: PhaseProgress | None = None) -> Summary:
    """:func:`lifecycle` once, on whatever the server holds."""
    steps = Steps(profile, progress)
    await lifecycle(profile, steps)
    return steps.summary()


async def returning_users(profile: Profile, progress: PhaseProgress | None = None) -> Summary:
    """:func:`lifecycle`, then :func:`bring_back` the users it unassigned or deleted."""
    steps = Steps(profile, progress)
    await lifecycle(profile, steps)
    await bring_back(profile, steps)
    return steps.summary()


async def restart(profile: Profile, progress: PhaseProgress | None = None) -> Summary:
    """:func:`lifecycle`, then every link forgotten and :func:`lifecycle` again: the second
    pass meets a populated server, every user and group already there."""
    steps = Steps(profile, progress)
    await lifecycle(profile, steps)
    profile.forget_links()
    await lifecycle(profile, steps)
    return steps.summary()


Scenario = Callable[[Profile, PhaseProgress | None], Awaitable[Summary]]

SCENARIOS: dict[str, Scenario] = {
    "full-lifecycle": full_lifecycle,
    "returning-users": returning_users,
    "restart": restart,
}


async def relay(
    profiles: Sequence[Profile], scenario: Scenario, progress: PhaseProgress | None = None
) -> list[Summary]:
    """Run ``scenario`` with each profile in turn, each on the state the previous left behind
    (profiles built on one :class:`~idp_sim.directory.Directory` share its evolving state)."""
    return [await scenario(profile, progress) for profile in profiles]
