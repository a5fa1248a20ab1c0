"""Scenarios: ordered directory events driven through a profile, with a summary at the end.

``full-lifecycle`` walks every operation an IdP performs once (or once per user/group where the
real IdP would): what a QA engineer needs to see a server survive a whole provisioning life.
Operations the IdP never performs (``NotSupported``) are listed as skipped, not failed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from idp_sim.profiles.base import Failure, NotSupported, Profile

Progress = Callable[[str, int, int], None]


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


async def full_lifecycle(profile: Profile, progress: Progress | None = None) -> Summary:
    """Connect, import, assign every directory user, push every group, then exercise one user
    and one group through update, deactivate, reactivate, password, unassign, delta, rename,
    Push Now and delete (the last group), and delete a user where the IdP does."""
    started = time.monotonic()
    directory = profile.directory
    skipped: list[str] = []
    steps: list[str] = []

    def report(step: str, done: int, total: int) -> None:
        if progress is not None:
            progress(step, done, total)

    async def step(name: str, action: Callable[[], Awaitable[Any]]) -> None:
        steps.append(name)
        try:
            await action()
        except NotSupported:
            skipped.append(name)

    async def each(name: str, items: list[Any], action: Callable[[Any], Awaitable[Any]]) -> None:
        steps.append(name)
        for index, item in enumerate(items, 1):
            try:
                await action(item)
            except NotSupported:
                skipped.append(name)
                return
            if index % 50 == 0 or index == len(items):
                report(name, index, len(items))

    users, groups = directory.users, directory.groups
    await step("test connection", profile.test_connection)
    await step("import users", profile.import_users)
    await step("import groups", profile.import_groups)
    await each("assign users", users, profile.assign_user)
    await each("push groups", groups, profile.push_group)

    linked = [u for u in users if u.id in profile.user_links]
    if linked:
        subject = linked[0]
        subject.title = f"{subject.title} (updated)".strip()
        await step("update profile", lambda: profile.update_user(subject))
        await step("deactivate", lambda: profile.deactivate_user(subject))
        await step("reactivate", lambda: profile.reactivate_user(subject))
        await step("password push", lambda: profile.push_password(subject, "N3w-Passw0rd!"))
    if len(linked) > 1:
        await step("unassign", lambda: profile.unassign_user(linked[-1]))
    pushed = [g for g in groups if g.id in profile.group_links]
    if pushed:
        group = pushed[0]
        spare = [u.id for u in linked if u.id not in group.member_ids]
        if group.member_ids:
            group.member_ids.remove(group.member_ids[0])
        if spare:
            group.member_ids.append(spare[0])
        await step("membership delta", lambda: profile.update_members(group))
        group.name = f"{group.name} (renamed)"
        await step("group rename", lambda: profile.rename_group(group))
        await step("push now", lambda: profile.push_now(group))
        if len(pushed) > 1:
            await step("group delete", lambda: profile.delete_group(pushed[-1]))
    if len(linked) > 2:
        await step("delete user", lambda: profile.delete_user(linked[-2]))

    journal = profile.transport.journal
    return Summary(
        profile.name,
        len(journal),
        journal.counts(),
        list(profile.failures),
        skipped,
        steps,
        time.monotonic() - started,
    )


SCENARIOS: dict[str, Callable[..., Awaitable[Summary]]] = {"full-lifecycle": full_lifecycle}
