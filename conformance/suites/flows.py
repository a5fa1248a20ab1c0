"""The ``flows`` suite: one IdP's whole provisioning life, then the server's state read back.

Why both halves: an IdP only looks at status codes, so a server can answer every request of a
lifecycle with the status the IdP expects and still lose the change (a deactivation answered 200
but not applied, a member add dropped). Each check drives the ``full-lifecycle`` scenario of one
``idp_sim`` profile against the server, then verifies over plain HTTP that every user, group,
membership, status and deletion is what the simulated directory says it must be. The transcript
is the profile's journal followed by the verification requests.
"""

from __future__ import annotations

import json
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
from idp_sim import Directory, Journal, Profile, Summary, build_profile, full_lifecycle

SUITE = "flows"
USERS, GROUPS, MEMBERS, SEED = 5, 2, 3, 7
"""A small directory: every step of the lifecycle happens, and a run stays quick."""


def directory(prefix: str) -> Directory:
    """The fixed-seed directory, every login and group name under the run's prefix, so the
    runner's sweep removes what the flow leaves (Okta never deletes users)."""
    generated = Directory.generate(SEED, USERS, GROUPS, MEMBERS)
    for user in generated.users:
        user.login = user.email = f"{prefix}{user.login}"
    for group in generated.groups:
        group.name = f"{prefix}{group.name}"
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


async def drive(context: Context, name: str) -> tuple[Profile, Summary]:
    """Run the lifecycle of profile ``name``; its requests go first into the transcript."""
    prefix = context.fixtures.name(f"{name}-") + "-"
    journal = Journal()
    options: dict[str, Any] = {}
    if name == "jumpcloud":  # its connection test creates a user: keep it under the prefix
        options["test_user_email"] = f"{prefix}jumpcloud.test@example.com"
    profile = build_profile(
        name,
        context.http.base_url,
        context.http.token,
        directory(prefix),
        seed=SEED,
        profile_options=options,
        transport_options={"journal": journal, "timeout": context.http.timeout},
    )
    try:
        summary = await full_lifecycle(profile)
    finally:
        await profile.transport.close()
        context.http.transcript.extend(transcript_of(journal))
        for scim_id in profile.user_links.values():
            context.fixtures.track("/Users", {"id": scim_id})
        for scim_id in profile.group_links.values():
            context.fixtures.track("/Groups", {"id": scim_id})
    return profile, summary


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
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        response = await context.http.get(
            "/Groups",
            params={"filter": f'displayName eq "{escaped}"', "excludedAttributes": "members"},
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


async def lifecycle(context: Context, name: str) -> None:
    profile, summary = await drive(context, name)
    if summary.failures:
        shown = "; ".join(str(f) for f in summary.failures[:5])
        more = f" (+{len(summary.failures) - 5} more)" if len(summary.failures) > 5 else ""
        raise CheckFailed(
            f"{len(summary.failures)} request(s) got a status {name} does not accept: {shown}{more}"
        )
    require(
        len(profile.user_links) >= USERS - 1,
        f"only {len(profile.user_links)} users are linked after provisioning {USERS}",
    )
    await verify_users(context, profile)
    await verify_groups(context, profile)
    await verify_deletions(context, profile)


_RULE = (
    "Every request of the IdP's lifecycle gets a status the IdP accepts, and afterwards the "
    "server's users, statuses, groups and memberships equal the IdP's directory; deleted "
    "resources answer 404."
)


@check(
    SUITE,
    "flows.okta-oin.full-lifecycle",
    "Okta OIN template: full lifecycle lands",
    "docs/idp-traffic.md (Okta, OIN template)",
    _RULE,
)
async def okta_oin(context: Context) -> None:
    await lifecycle(context, "okta-oin")


@check(
    SUITE,
    "flows.okta-aiw.full-lifecycle",
    "Okta AIW (GET+PUT): full lifecycle lands",
    "docs/idp-traffic.md (Okta, App Integration Wizard)",
    _RULE,
)
async def okta_aiw(context: Context) -> None:
    await lifecycle(context, "okta-aiw")


@check(
    SUITE,
    "flows.jumpcloud.full-lifecycle",
    "JumpCloud: full lifecycle lands",
    "docs/idp-traffic.md (JumpCloud)",
    _RULE,
)
async def jumpcloud(context: Context) -> None:
    await lifecycle(context, "jumpcloud")


@check(
    SUITE,
    "flows.entra.full-lifecycle",
    "Entra ID: full lifecycle lands",
    "docs/idp-traffic.md (Microsoft Entra ID)",
    _RULE,
)
async def entra(context: Context) -> None:
    await lifecycle(context, "entra")


@check(
    SUITE,
    "flows.entra-optscim062020.full-lifecycle",
    "Entra ID with aadOptscim062020: full lifecycle lands",
    "docs/idp-traffic.md (Entra, aadOptscim062020 flag)",
    _RULE,
)
async def entra_flag(context: Context) -> None:
    await lifecycle(context, "entra-optscim062020")
