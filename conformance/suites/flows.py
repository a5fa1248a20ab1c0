"""The ``flows`` suite: IdP provisioning lives, then the server's state read back.

Why both halves: an IdP only looks at status codes, so a server can answer every request of a
lifecycle with the status the IdP expects and still lose the change (a deactivation answered 200
but not applied, a member add dropped). Each check drives ``idp_sim`` profiles against the
server, then verifies over plain HTTP that every user, group, membership, status, manager and
deletion is what the simulated directory says it must be, and that nothing exists twice. The
transcript is the profiles' journals followed by the verification requests.

Starting from an empty tenant hides what real IdPs meet most: a directory already populated.
So besides each profile's ``full-lifecycle``, ``returning-users`` brings back the users the
lifecycle unassigned (found and linked again by the profile's own existence check, same id) or
deleted (re-created: 201 and a new id, as IPSIE AL1 requires); ``restart`` forgets every link
and runs the lifecycle again, so every user and group must be matched, not duplicated; and
``relay`` runs every profile, one after another, on one tenant and one directory (and again in
the reverse order, so that every profile meets both an empty tenant and another's state).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from conformance.checks import (
    CheckFailed,
    Context,
    check,
    expect_object,
    expect_status,
    require,
    resources_of,
)
from conformance.http import Exchange
from conformance.urns import ENTERPRISE
from idp_sim import Directory, Journal, Profile, build_profile, full_lifecycle, relay, restart
from idp_sim.directory import okta_id
from idp_sim.profiles.entra import entra_retry
from idp_sim.scenarios import Steps, bring_back, lifecycle

SUITE = "flows"
USERS, GROUPS, MEMBERS, SEED = 5, 3, 3, 7
"""A small directory: every step of the lifecycle happens, and a run stays quick."""
PROFILES = ("okta-oin", "okta-aiw", "jumpcloud", "entra", "entra-optscim062020")
"""Every idp_sim profile, in the order the relay runs them."""
Play = Callable[[list[Profile]], Awaitable[Any]]
ENTRA_CYCLE = 1.0
"""Entra's provisioning cycle in these checks, 40 minutes shortened to a second: a request the
server throttles (429) is sent again on the "next cycle" within the check, in the same order."""


def directory(prefix: str) -> Directory:
    """The fixed-seed directory, every login and group name under the check's prefix, so the
    runner's sweep removes what the flow leaves (Okta never deletes users), and every IdP id
    drawn afresh from the prefix: the checks share one tenant, and an IdP's ids (Okta's user
    id, Entra's objectId made from it) are its own, so one check's existence checks by
    ``externalId`` must not find another's users."""
    generated = Directory.generate(SEED, USERS, GROUPS, MEMBERS)
    rng = random.Random(prefix)
    ids = {user.id: okta_id("00u", rng) for user in generated.users}
    for user in generated.users:
        user.id = ids[user.id]
        user.login = user.email = f"{prefix}{user.login}"
    for group in generated.groups:
        group.id = okta_id("00g", rng)
        group.name = f"{prefix}{group.name}"
        group.member_ids = [ids[m] for m in group.member_ids]
    return generated


def transcript_of(journal: Journal) -> list[Exchange]:
    """The journal as report exchanges (credentials are already redacted by the journal)."""
    out = []
    for entry in journal:
        out.append(
            Exchange(
                method=entry.method,
                url=entry.url,
                request_headers=dict(entry.headers),
                request_body=None if entry.body is None else json.dumps(entry.body),
                status=entry.status or None,
                response_headers=dict(entry.response_headers),
                response_body=""
                if entry.response_body is None
                else json.dumps(entry.response_body),
                elapsed_ms=round(entry.elapsed * 1000, 1),
                error=entry.error,
            )
        )
    return out


def check_prefix(context: Context, label: str) -> str:
    """The prefix of one check's directory: unique in the run, under the run's prefix."""
    return context.fixtures.name(f"{label}-") + "-"


async def drive(
    context: Context,
    prefix: str,
    names: Sequence[str],
    play: Play,
) -> list[Profile]:
    """Build the named profiles on one directory under ``prefix`` and let ``play`` drive them;
    their requests go first into the transcript, and what they created is tracked for
    removal."""
    shared = directory(prefix)
    journals = [Journal() for _ in names]
    profiles = []
    for name, journal in zip(names, journals, strict=True):
        chosen = {}
        if name == "jumpcloud":  # its connection test creates a user: keep it under the prefix
            chosen["test_user_email"] = f"{prefix}jumpcloud.test@example.com"
        transport: dict[str, Any] = {"journal": journal, "timeout": context.http.timeout}
        if name.startswith("entra"):
            transport["retry"] = entra_retry(cycle=ENTRA_CYCLE)
        profiles.append(
            build_profile(
                name,
                context.http.base_url,
                context.http.token,
                shared,
                seed=SEED,
                profile_options=chosen,
                transport_options=transport,
            )
        )
    try:
        await play(profiles)
    finally:
        for profile, journal in zip(profiles, journals, strict=True):
            await profile.transport.close()
            context.http.transcript.extend(transcript_of(journal))
            for entry in journal:
                endpoint = entry.path.split("?", 1)[0]
                if entry.method == "POST" and endpoint in ("/Users", "/Groups"):
                    context.fixtures.track(endpoint, entry.response_body)
    return profiles


def require_accepted(profiles: Sequence[Profile]) -> None:
    """Fail with the first refusals when any request got a status its IdP does not accept."""
    failures = [(p.name, f) for p in profiles for f in p.failures]
    if failures:
        shown = "; ".join(f"{name} {failure}" for name, failure in failures[:5])
        more = f" (+{len(failures) - 5} more)" if len(failures) > 5 else ""
        raise CheckFailed(
            f"{len(failures)} request(s) got a status the IdP does not accept: {shown}{more}"
        )


def expected_active(profile: Profile, directory_id: str) -> bool:
    """Unassigned users stay on the server, inactive (every profile soft-deletes)."""
    user = profile.directory.user(directory_id)
    return user.active and directory_id in profile.directory.assigned_user_ids


def expected_title(profile: Profile, scim_id: str, title: str) -> str | None:
    """A PUT replaces the user (RFC 7644 §3.5.1), so after one the title is whatever the last
    PUT carried (JumpCloud's minimal status PUT carries none); without a PUT, the update's."""
    puts = [
        e
        for e in profile.transport.journal
        if e.method == "PUT" and e.path.split("?", 1)[0] == f"/Users/{scim_id}"
    ]
    if not puts or not isinstance(puts[-1].body, dict):
        return title
    return puts[-1].body.get("title")


def manager_set(profile: Profile, scim_id: str) -> str | None:
    """The manager id the IdP's last accepted manager PATCH of this user set, if it sent one."""
    manager = None
    for entry in profile.transport.journal:
        if entry.method != "PATCH" or entry.path != f"/Users/{scim_id}":
            continue
        if not 200 <= entry.status < 300 or not isinstance(entry.body, dict):
            continue
        for op in entry.body.get("Operations") or []:
            if isinstance(op, dict) and op.get("path") == "manager":
                manager = str(op.get("value"))
    return manager


def eq(attribute: str, value: str) -> str:
    """The filter ``attribute eq "value"``, the value quoted as a JSON string."""
    return f"{attribute} eq {json.dumps(value, ensure_ascii=False)}"


async def verify_users(context: Context, profile: Profile) -> None:
    for directory_id, scim_id in profile.user_links.items():
        user = profile.directory.user(directory_id)
        response = await context.http.get(f"/Users/{scim_id}")
        expect_status(response, 200, what=f"GET of provisioned user {user.login}")
        body = expect_object(response, f"user {user.login}")
        require(
            str(body.get("userName", "")).lower() == user.login.lower(),
            f"user {scim_id}: userName is {body.get('userName')!r}, the IdP sent {user.login!r}",
        )
        wanted = expected_active(profile, directory_id)
        require(
            body.get("active") is wanted,
            f"user {user.login}: active is {body.get('active')!r} after the lifecycle, "
            f"expected {wanted} (the IdP's last word on this user)",
        )
        manager = manager_set(profile, scim_id)
        if manager is not None:
            stored = (body.get(ENTERPRISE) or {}).get("manager") or {}
            require(
                stored.get("value") == manager,
                f"user {user.login}: manager is {stored.get('value')!r}, the IdP set {manager!r}",
            )
        if user.title.endswith("(updated)"):
            wanted_title = expected_title(profile, scim_id, user.title)
            require(
                body.get("title") == wanted_title,
                f"user {user.login}: title is {body.get('title')!r} after the profile "
                f"update, expected {wanted_title!r}",
            )


async def verify_groups(context: Context, profile: Profile) -> None:
    for directory_id, scim_id in profile.group_links.items():
        group = profile.directory.group(directory_id)
        response = await context.http.get(f"/Groups/{scim_id}")
        expect_status(response, 200, what=f"GET of pushed group {group.name}")
        body = expect_object(response, f"group {group.name}")
        require(
            body.get("displayName") == group.name,
            f"group {scim_id}: displayName is {body.get('displayName')!r}, expected "
            f"{group.name!r} (the last rename)",
        )
        wanted = {profile.user_links[m] for m in group.member_ids if m in profile.user_links}
        members = {str(m.get("value")) for m in body.get("members") or [] if isinstance(m, dict)}
        require(
            members == wanted,
            f"group {group.name}: members differ from the directory's: missing "
            f"{sorted(wanted - members)}, unexpected {sorted(members - wanted)}",
        )
    for directory_id, scim_id in list(profile.group_links.items())[:1]:
        name = profile.directory.group(directory_id).name
        response = await context.http.get(
            "/Groups",
            params={"filter": eq("displayName", name), "excludedAttributes": "members"},
        )
        expect_status(response, 200, what="filter of the renamed group")
        ids = [r.get("id") for r in resources_of(response)]
        require(
            ids == [scim_id], f"filter displayName eq {name!r} found {ids}, expected [{scim_id!r}]"
        )


async def verify_deletions(context: Context, profile: Profile) -> None:
    """Every resource the IdP deleted (2xx to its DELETE) must now be gone."""
    for entry in profile.transport.journal:
        if entry.method != "DELETE" or not 200 <= entry.status < 300:
            continue
        path = entry.path.split("?", 1)[0]
        response = await context.http.get(path)
        require(
            response.status == 404,
            f"{path} was deleted (HTTP {entry.status}) but GET answers {response.status}",
        )


async def prefixed(
    context: Context, prefix: str, endpoint: str, attribute: str
) -> list[dict[str, Any]]:
    """Every resource of ``endpoint`` whose ``attribute`` starts with ``prefix``."""
    response = await context.http.get(
        endpoint,
        params={
            "filter": f'{attribute} sw "{prefix}"',
            "count": "200",
            "excludedAttributes": "members",
        },
    )
    expect_status(response, 200, what=f"listing {endpoint} by {attribute}")
    return resources_of(response)


def repeated(values: list[str]) -> list[str]:
    return sorted(value for value, count in Counter(values).items() if count > 1)


async def verify_unique(context: Context, prefix: str, profile: Profile) -> None:
    """Nothing the IdPs provisioned exists twice: users by userName and by externalId, groups
    by displayName; every linked user is there, and every group is one the IdP links."""
    users = await prefixed(context, prefix, "/Users", "userName")
    names = [str(u.get("userName", "")).lower() for u in users]
    require(not repeated(names), f"users provisioned twice by userName: {repeated(names)}")
    external = [str(u["externalId"]) for u in users if u.get("externalId")]
    require(not repeated(external), f"users provisioned twice by externalId: {repeated(external)}")
    for user in profile.directory.users:
        if user.id in profile.user_links:
            require(
                user.login.lower() in names,
                f"user {user.login} is linked but not found by userName",
            )
    groups = await prefixed(context, prefix, "/Groups", "displayName")
    shown = [str(g.get("displayName", "")) for g in groups]
    require(not repeated(shown), f"groups pushed twice by displayName: {repeated(shown)}")
    linked = set(profile.group_links.values()) | set(profile.released_groups.values())
    strays = sorted(str(g.get("displayName")) for g in groups if g.get("id") not in linked)
    require(
        not strays,
        f"groups the IdP pushed again instead of finding them, left behind: {strays}",
    )


async def verify(context: Context, prefix: str, profiles: Sequence[Profile]) -> None:
    """The IdPs' statuses were accepted, and the server holds the last profile's directory."""
    require_accepted(profiles)
    last = profiles[-1]
    await verify_unique(context, prefix, last)
    require(
        len(last.user_links) >= USERS - 1,
        f"only {len(last.user_links)} users are linked after provisioning {USERS}",
    )
    await verify_users(context, last)
    await verify_groups(context, last)
    for profile in profiles:
        await verify_deletions(context, profile)


async def lifecycle_check(context: Context, name: str) -> None:
    prefix = check_prefix(context, name)
    profiles = await drive(context, prefix, [name], lambda ps: full_lifecycle(ps[0]))
    await verify(context, prefix, profiles)


def deleted_users(profile: Profile) -> dict[str, str]:
    """SCIM id → userName of every user the IdP created and then deleted, from its journal."""
    created: dict[str, str] = {}
    gone: set[str] = set()
    for entry in profile.transport.journal:
        if not 200 <= entry.status < 300:
            continue
        if entry.method == "POST" and entry.path == "/Users":
            body, answer = entry.body, entry.response_body
            if isinstance(body, dict) and isinstance(answer, dict) and "id" in answer:
                created[str(answer["id"])] = str(body.get("userName", ""))
        elif entry.method == "DELETE" and entry.path.startswith("/Users/"):
            gone.add(entry.path.rsplit("/", 1)[1])
    return {scim_id: login for scim_id, login in created.items() if scim_id in gone}


async def returning_check(context: Context, name: str) -> None:
    """The lifecycle, then its unassigned and deleted users brought back (IPSIE AL1 for the
    deleted: the same userName is accepted again, with a new id)."""
    kept: dict[str, str] = {}

    async def play(profiles: list[Profile]) -> None:
        [profile] = profiles
        steps = Steps(profile, None)
        await lifecycle(profile, steps)
        kept.update(profile.user_links)
        await bring_back(profile, steps)

    prefix = check_prefix(context, name)
    [profile] = await drive(context, prefix, [name], play)
    require_accepted([profile])
    for directory_id, old_id in kept.items():
        now = profile.user_links.get(directory_id)
        require(
            now == old_id,
            f"user {profile.directory.user(directory_id).login} came back under another id "
            f"({now!r}, was {old_id!r}): its existence check did not find it",
        )
    by_login = {u.login.lower(): u for u in profile.directory.users}
    for old_id, login in deleted_users(profile).items():
        user = by_login.get(login.lower())
        if user is None:  # JumpCloud's connection-test user, not a directory user
            continue
        now = profile.user_links.get(user.id)
        require(
            now is not None and now != old_id,
            f"user {login} was deleted ({old_id}), then re-assigned: expected a new user "
            f"created with 201 and a new id, the IdP is linked to {now!r}",
        )
    await verify(context, prefix, [profile])


async def restart_check(context: Context, name: str) -> None:
    prefix = check_prefix(context, name)
    profiles = await drive(context, prefix, [name], lambda ps: restart(ps[0]))
    await verify(context, prefix, profiles)


async def relay_check(context: Context, names: Sequence[str]) -> None:
    prefix = check_prefix(context, "relay")
    profiles = await drive(context, prefix, names, lambda ps: relay(ps, full_lifecycle))
    await verify(context, prefix, profiles)


NAME_PARTS = ("givenName", "familyName")
"""The fields of Okta's assertions that sit under ``name``."""


async def require_user_state(context: Context, scim_id: str, step: str, **wanted: Any) -> None:
    """``GET /Users/{id}`` after an Okta step: 200, and each named field as Okta expects it
    (``givenName``, ``familyName`` under ``name``; ``active``)."""
    response = await context.http.get(f"/Users/{scim_id}")
    expect_status(response, 200, what=f"GET /Users/{scim_id} after {step}")
    body = expect_object(response, f"user after {step}")
    name = body.get("name") or {}
    got = {key: (name if key in NAME_PARTS else body).get(key) for key in wanted}
    require(got == wanted, f"after {step}: the user has {got}, Okta expects {wanted}")


async def crud_test_check(context: Context, name: str) -> None:
    """Okta's CRUD test: Okta's steps played by the profile on one user, each followed by the
    SCIM-side assertions of ``Okta-SCIM-20-CRUD-Test.json`` (C1 to C5)."""
    prefix = check_prefix(context, f"{name}-crud")

    async def play(profiles: list[Profile]) -> None:
        okta = profiles[0]
        user = okta.directory.users[0]
        scim_id = await okta.assign_user(user)
        if scim_id is None:
            raise CheckFailed(f"the assignment of {user.login} created no user")
        response = await context.http.get("/Users", params={"filter": eq("userName", user.login)})
        expect_status(response, 200, what="C1: the filter by the new user's userName")
        found = resources_of(response)
        require(found, f"C1: userName eq {user.login!r} finds no user after the assignment")
        first = found[0]
        emails = first.get("emails") or [{}]
        got = (
            str(first.get("userName", "")).lower(),
            (emails[0] or {}).get("value"),
            (first.get("name") or {}).get("familyName"),
            (first.get("name") or {}).get("givenName"),
        )
        sent = (user.login.lower(), user.email, user.family_name, user.given_name)
        require(
            got == sent,
            f"C1: userName, emails[0].value, name.familyName, name.givenName are {got}, "
            f"Okta sent {sent}",
        )
        user.given_name = f"{user.given_name}Renamed"
        await okta.update_user(user)
        await require_user_state(
            context, scim_id, "C2: the first-name change", givenName=user.given_name
        )
        await okta.deactivate_user(user)
        await require_user_state(context, scim_id, "C3: the deactivation", active=False)
        await okta.reactivate_user(user)
        await okta.assign_user(user)
        require(
            okta.user_links.get(user.id) == scim_id,
            f"C4: the re-assignment linked {okta.user_links.get(user.id)!r}, not {scim_id!r}",
        )
        await require_user_state(context, scim_id, "C4: activation and re-assignment", active=True)
        await okta.unassign_user(user)
        await require_user_state(context, scim_id, "C5: the unassignment", active=False)

    profiles = await drive(context, prefix, [name], play)
    require_accepted(profiles)


_RULE = (
    "Every request of the IdP's lifecycle gets a status the IdP accepts, and afterwards the "
    "server's users, statuses, groups and memberships equal the IdP's directory; deleted "
    "resources answer 404; nothing exists twice."
)
_RETURNING_RULE = (
    "After the lifecycle, an unassigned user re-assigned is found by the IdP's existence check "
    "and active again under its id; a deleted user re-assigned is created again (201, a new id; "
    "IPSIE AL1); their groups get them back."
)
_RESTART_RULE = (
    "With every link forgotten, a second lifecycle finds each user and group by the IdP's "
    "existence check (userName, externalId, displayName) and updates it: no duplicate, no "
    "refusal, and the state equals the directory."
)
_SOURCES = {
    "okta-oin": ("Okta OIN template", "docs/idp-traffic.md (Okta, OIN template)"),
    "okta-aiw": ("Okta AIW (GET+PUT)", "docs/idp-traffic.md (Okta, App Integration Wizard)"),
    "jumpcloud": ("JumpCloud", "docs/idp-traffic.md (JumpCloud)"),
    "entra": ("Entra ID", "docs/idp-traffic.md (Microsoft Entra ID)"),
    "entra-optscim062020": (
        "Entra ID with aadOptscim062020",
        "docs/idp-traffic.md (Entra, aadOptscim062020 flag)",
    ),
}


def register(
    kind: str, what: str, rule: str, body: Callable[[Context, str], Awaitable[None]]
) -> None:
    """Check ``flows.<profile>.<kind>`` for every profile, in the suite's profile order."""
    for name in PROFILES:
        title, source = _SOURCES[name]

        async def run(context: Context, name: str = name) -> None:
            await body(context, name)

        check(SUITE, f"flows.{name}.{kind}", f"{title}: {what}", source, rule)(run)


register("full-lifecycle", "full lifecycle lands", _RULE, lifecycle_check)
register(
    "returning-users",
    "unassigned and deleted users come back",
    _RETURNING_RULE,
    returning_check,
)
register("restart", "a second run matches the populated directory", _RESTART_RULE, restart_check)

_CRUD_SOURCE = "Okta SCIM 2.0 CRUD Test (Okta-SCIM-20-CRUD-Test.json), its SCIM-side assertions"
_CRUD_RULE = (
    "Create and assign: userName eq finds the user with Okta's userName, emails[0].value, "
    "name.familyName and name.givenName (C1); after a first-name change GET shows the new "
    "name.givenName (C2); after a deactivation active is false (C3); after activation and "
    "re-assignment, the same user is active (C4); after the unassignment it is still there, "
    "inactive (C5)."
)
for _okta in ("okta-oin", "okta-aiw"):

    async def _crud(context: Context, name: str = _okta) -> None:
        await crud_test_check(context, name)

    check(
        SUITE,
        f"flows.{_okta}.crud-test",
        f"{_SOURCES[_okta][0]}: Okta's CRUD test",
        _CRUD_SOURCE,
        _CRUD_RULE,
    )(_crud)


@check(
    SUITE,
    "flows.relay.all-profiles",
    "Every IdP profile in turn on one tenant",
    "docs/idp-traffic.md",
    "Each profile runs its lifecycle on the state the previous ones left (same people, same "
    "groups): every request accepted, the server's state equals the directory, no user or "
    "group exists twice.",
)
async def every_profile_in_turn(context: Context) -> None:
    await relay_check(context, PROFILES)


@check(
    SUITE,
    "flows.relay.reverse",
    "Every IdP profile in turn on one tenant, the other way round",
    "docs/idp-traffic.md",
    "As flows.relay.all-profiles, in the reverse order: the Entra profiles start from an empty "
    "tenant, and Okta's import meets the users and groups the others left (it links them, "
    "skipping inactive users).",
)
async def every_profile_in_reverse(context: Context) -> None:
    await relay_check(context, PROFILES[::-1])
