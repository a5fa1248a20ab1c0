"""idp_sim fidelity (docs/idp-traffic.md): each profile sends the sequence its IdP documents,
captured from the profile's journal of real exchanges with our server, on a populated tenant."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from aiohttp.test_utils import TestClient

from idp_sim import Directory, JournalEntry, Summary, build_profile, full_lifecycle
from idp_sim.profiles.base import Profile
from idp_sim.profiles.entra import object_id
from idp_sim.urns import ENTERPRISE
from tests.support.idp_runs import (
    assert_groups_match_directory,
    assert_server_holds_the_directory,
    base_url,
    group_member_ids,
    user_state,
)
from tests.support.proxy import Forward, Req, Resp, start_proxy
from tests.support.scim import Scim


def wire(profile: Profile) -> list[tuple[str, str]]:
    """(method, path with query) of every request the profile sent, in order."""
    return [(e.method, e.path) for e in profile.transport.journal]


def sent(profile: Profile, method: str, path_start: str = "") -> list[JournalEntry]:
    return [
        e for e in profile.transport.journal if e.method == method and e.path.startswith(path_start)
    ]


async def close_after(profile: Profile, play: Any) -> None:
    try:
        await play
    finally:
        await profile.transport.close()


async def close_after_summary(profile: Profile) -> Summary:
    """The profile's full lifecycle, its transport closed after."""
    try:
        return await full_lifecycle(profile)
    finally:
        await profile.transport.close()


# ---- Okta: import against a populated server, linking, re-assignment ---------------------------
async def test_okta_import_pages_past_100_skips_inactive_and_links_users_and_groups(
    client: TestClient, scim: Scim
) -> None:
    directory = Directory.generate(seed=9, users=103, groups=2, members_per_group=3)
    inactive = directory.users[:2]
    for user in directory.users:
        await scim.create_user(user.login, active=user not in inactive)
    existing = {g.name: (await scim.create_group(g.name))["id"] for g in directory.groups}
    profile = build_profile("okta-oin", base_url(client), scim.token, directory)

    async def play() -> None:
        await profile.import_users()
        await profile.import_groups()
        for user in directory.users:
            await profile.assign_user(user)
        for group in directory.groups:
            await profile.push_group(group)

    await close_after(profile, play())
    assert profile.failures == []
    assert wire(profile)[:3] == [
        ("GET", "/Users?startIndex=1&count=100"),
        ("GET", "/Users?startIndex=101&count=100"),
        ("GET", "/Groups?startIndex=1&count=100"),
    ]
    # Imported users are linked: only the two inactive ones (not imported) are looked up.
    lookups = [e.path for e in sent(profile, "GET", "/Users?filter=")]
    assert len(lookups) == 2
    assert sent(profile, "POST") == []
    assert len(sent(profile, "PUT", "/Users/")) == 103
    # Imported groups are linked: no lookup, the existence GET by id, then Push Now.
    assert sent(profile, "GET", "/Groups?filter=") == []
    assert [e.path for e in sent(profile, "GET", "/Groups/")] == [
        f"/Groups/{existing[g.name]}" for g in directory.groups
    ]
    assert {profile.group_links[g.id] for g in directory.groups} == set(existing.values())
    for user in inactive:
        assert (await user_state(scim, profile.user_links[user.id]))[1]["active"] is True
    await assert_groups_match_directory(scim, profile)


async def test_okta_reassignment_after_unassignment_looks_the_user_up_again_and_links(
    client: TestClient, scim: Scim
) -> None:
    directory = Directory.generate(seed=9, users=1)
    user = directory.users[0]
    await scim.create_user(user.login)
    profile = build_profile("okta-oin", base_url(client), scim.token, directory)

    async def play() -> None:
        await profile.import_users()
        await profile.assign_user(user)
        await profile.unassign_user(user)
        await profile.assign_user(user)

    await close_after(profile, play())
    scim_id = profile.user_links[user.id]
    assert [(m, p.split("?")[0]) for m, p in wire(profile)] == [
        ("GET", "/Users"),  # import
        ("GET", f"/Users/{scim_id}"),  # assign of the imported user: GET and PUT
        ("PUT", f"/Users/{scim_id}"),
        ("PATCH", f"/Users/{scim_id}"),  # unassign
        ("GET", "/Users"),  # re-assign: the lookup again
        ("GET", f"/Users/{scim_id}"),
        ("PUT", f"/Users/{scim_id}"),
    ]
    assert sent(profile, "GET", "/Users?filter=userName")
    assert (await user_state(scim, scim_id))[1]["active"] is True


# ---- Entra ------------------------------------------------------------------------------------
def user_patches(profile: Profile, scim_id: str) -> list[list[dict[str, Any]]]:
    return [e.body["Operations"] for e in sent(profile, "PATCH", f"/Users/{scim_id}")]


async def test_entra_flag_disables_by_path_and_sends_the_work_email_as_its_own_operation(
    client: TestClient, scim: Scim
) -> None:
    directory = Directory.generate(seed=3, users=1)
    user = directory.users[0]
    profile = build_profile("entra-optscim062020", base_url(client), scim.token, directory)

    async def play() -> None:
        await profile.assign_user(user)
        user.email, user.title = f"new.{user.email}", "Chief Tester"
        await profile.update_user(user)
        await profile.deactivate_user(user)
        await profile.reactivate_user(user)

    await close_after(profile, play())
    assert profile.failures == []
    scim_id = profile.user_links[user.id]
    assert user_patches(profile, scim_id) == [
        [
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": user.email},
            {"op": "replace", "value": {"title": "Chief Tester"}},
        ],
        [{"op": "replace", "path": "active", "value": False}],
        [{"op": "replace", "path": "active", "value": True}],
    ]
    body = (await user_state(scim, scim_id))[1]
    assert (body["active"], body["title"], body["emails"][0]["value"]) == (
        True,
        "Chief Tester",
        user.email,
    )


async def test_entra_flag_adoption_of_an_existing_user_is_accepted_and_applied(
    client: TestClient, scim: Scim
) -> None:
    """A re-provisioning (restart) meets the user: every mapped attribute in the flag's
    dialect, which the server must accept (it refused the e-mail filter inside a value)."""
    directory = Directory.generate(seed=3, users=1)
    user = directory.users[0]
    existing = await scim.create_user(user.login, active=False)
    profile = build_profile(
        "entra-optscim062020",
        base_url(client),
        scim.token,
        directory,
        profile_options={"match_attributes": ["userName"]},
    )
    await close_after(profile, profile.assign_user(user))
    assert profile.failures == []
    [operations] = user_patches(profile, existing["id"])
    assert operations[0]["path"] == 'emails[type eq "work"].value'
    assert operations[-1] == {"op": "replace", "path": "active", "value": True}
    assert all("[" not in key for key in operations[1]["value"])
    body = (await user_state(scim, existing["id"]))[1]
    assert (body["active"], body["emails"][0]["value"]) == (True, user.email)


async def test_entra_matches_by_the_object_id_in_external_id_then_by_user_name(
    client: TestClient, scim: Scim
) -> None:
    """2026: the objectId is the externalId and the first existence check; userName comes
    second in precedence, so a user another IdP created is found and takes the objectId."""
    directory = Directory.generate(seed=3, users=2)
    mine, theirs = directory.users
    other = await scim.create_user(theirs.login, externalId="00u-from-another-idp")
    profile = build_profile("entra", base_url(client), scim.token, directory)

    async def play() -> None:
        await profile.assign_user(mine)
        await profile.assign_user(theirs)
        profile.forget_links()
        await profile.assign_user(mine)

    await close_after(profile, play())
    assert profile.failures == []
    by_guid = [f'externalId eq "{object_id(u.id)}"' for u in (mine, theirs)]
    by_name = [f'userName eq "{u.login}"' for u in (mine, theirs)]
    assert [(m, unquote(p)) for m, p in wire(profile)] == [
        ("GET", f"/Users?filter={by_guid[0]}"),
        ("GET", f"/Users?filter={by_name[0]}"),
        ("POST", "/Users"),
        ("GET", f"/Users?filter={by_guid[1]}"),
        ("GET", f"/Users?filter={by_name[1]}"),
        ("PATCH", f"/Users/{other['id']}"),
        ("GET", f"/Users?filter={by_guid[0]}"),  # after a restart: found by its objectId
        ("PATCH", f"/Users/{profile.user_links[mine.id]}"),
    ]
    assert sent(profile, "POST")[0].body["externalId"] == object_id(mine.id)
    for user, scim_id in ((mine, profile.user_links[mine.id]), (theirs, other["id"])):
        assert (await user_state(scim, scim_id))[1]["externalId"] == object_id(user.id)


async def test_entra_provision_on_demand_runs_the_classic_dialect_with_manager_and_groups(
    client: TestClient, scim: Scim
) -> None:
    """On demand: existence checks, create or GET by id and update, the manager reference
    query and PATCH, then the user's groups (lookup, create, membership probe, Add), in the
    classic dialect though the tenant URL carries the flag (E2: on demand ignores it)."""
    directory = Directory.generate(seed=3, users=2, groups=1, members_per_group=2)
    user, manager = directory.users
    user.manager_id = manager.id
    group = directory.groups[0]
    directory.assign_group(group.id)
    profile = build_profile("entra-optscim062020", base_url(client), scim.token, directory)

    async def play() -> None:
        await profile.assign_user(manager)
        profile.transport.journal.entries.clear()
        await profile.provision_on_demand(user)
        user.title = "Chief Tester"
        await profile.provision_on_demand(user)

    await close_after(profile, play())
    assert profile.failures == []
    uid, mid, gid = (
        profile.user_links[user.id],
        profile.user_links[manager.id],
        profile.group_links[group.id],
    )
    by_guid = f'/Users?filter=externalId eq "{object_id(user.id)}"'
    reference = f'/Users?filter=id eq "{uid}" and manager eq "{mid}"'
    group_lookup = f'/Groups?excludedAttributes=members&filter=displayName eq "{group.name}"'
    probe = f'/Groups?excludedAttributes=members&filter=id eq "{gid}" and members[value eq "{uid}"]'
    assert [(m, unquote(p)) for m, p in wire(profile)] == [
        ("GET", by_guid),
        ("GET", f'/Users?filter=userName eq "{user.login}"'),
        ("POST", "/Users"),
        ("GET", reference),
        ("PATCH", f"/Users/{uid}"),
        ("GET", group_lookup),
        ("POST", "/Groups"),
        ("GET", probe),
        ("PATCH", f"/Groups/{gid}"),
        # again, the user now there: GET by id, the changed title, nothing else to change
        ("GET", by_guid),
        ("GET", f"/Users/{uid}"),
        ("PATCH", f"/Users/{uid}"),
        ("GET", reference),
        ("GET", group_lookup),
        ("GET", probe),
    ]
    patches = [e.body["Operations"] for e in sent(profile, "PATCH")]
    assert patches == [
        [{"op": "Replace", "path": "manager", "value": mid}],
        [{"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid}]}],
        [{"op": "Replace", "path": "title", "value": "Chief Tester"}],
    ]
    body = (await user_state(scim, uid))[1]
    assert body["title"] == "Chief Tester"
    assert body[ENTERPRISE]["manager"]["value"] == mid
    assert await group_member_ids(scim, gid) == {uid}


async def provision_all(profile: Profile) -> None:
    """Every directory user assigned and every group pushed; the journal then starts afresh."""
    for user in profile.directory.users:
        await profile.assign_user(user)
    for group in profile.directory.groups:
        await profile.push_group(group)
    profile.transport.journal.entries.clear()


# ---- JumpCloud ----------------------------------------------------------------------------------
def group_patches(profile: Profile) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(e.path, e.body["Operations"]) for e in sent(profile, "PATCH", "/Groups/")]


async def test_jumpcloud_resyncs_every_associated_group_on_each_change_repeating_adds(
    client: TestClient, scim: Scim
) -> None:
    directory = Directory.generate(seed=5, users=6, groups=3, members_per_group=3)
    profile = build_profile("jumpcloud", base_url(client), scim.token, directory)
    first = directory.groups[0]
    leaver = first.member_ids[0]
    joiner = next(u.id for u in directory.users if u.id not in first.member_ids)

    async def play() -> None:
        await provision_all(profile)
        first.member_ids.remove(leaver)
        first.member_ids.append(joiner)
        await profile.update_members(first)

    await close_after(profile, play())
    assert profile.failures == []

    def values(ids: list[str]) -> list[dict[str, str]]:
        return [{"value": profile.user_links[m]} for m in ids]

    expected = []
    for group in directory.groups:
        operations = [{"op": "add", "path": "members", "value": values(group.member_ids)}]
        if group is first:
            operations.insert(0, {"op": "remove", "path": "members", "value": values([leaver])})
        expected.append((f"/Groups/{profile.group_links[group.id]}", operations))
    assert group_patches(profile) == expected
    await assert_groups_match_directory(scim, profile)


async def test_jumpcloud_group_disassociated_deactivates_members_no_other_group_holds(
    client: TestClient, scim: Scim
) -> None:
    """J3: syncing stops, the group is left as it is, and its members are deactivated unless
    another group associated with the app still holds them."""
    directory = Directory.from_dict(
        {
            "users": [
                {"login": "only@example.com", "given_name": "Only", "family_name": "Here"},
                {"login": "both@example.com", "given_name": "Both", "family_name": "There"},
            ],
            "groups": [
                {"name": "Leaving", "member_ids": []},
                {"name": "Staying", "member_ids": []},
            ],
        }
    )
    only, both = directory.users
    leaving, staying = directory.groups
    leaving.member_ids[:] = [only.id, both.id]
    staying.member_ids[:] = [both.id]
    profile = build_profile("jumpcloud", base_url(client), scim.token, directory)

    async def play() -> None:
        await provision_all(profile)
        await profile.disassociate_group(leaving)

    await close_after(profile, play())
    assert profile.failures == []
    only_id, both_id = profile.user_links[only.id], profile.user_links[both.id]
    [put] = sent(profile, "PUT")
    assert wire(profile) == [("PUT", f"/Users/{only_id}")]
    assert (put.body["active"], put.body["emails"]) == (False, None)
    assert leaving.id not in profile.group_links and only.id not in directory.assigned_user_ids
    left = profile.released_groups[leaving.id]
    assert await group_member_ids(scim, left) == {only_id, both_id}  # as it was
    assert [(await user_state(scim, i))[1]["active"] for i in (only_id, both_id)] == [False, True]


# ---- concurrency ---------------------------------------------------------------------------------
class InFlight:
    """A proxy's violation that breaks nothing: it counts the requests in flight at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    async def __call__(self, req: Req, forward: Forward) -> Resp:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            return await forward(req)
        finally:
            self.now -= 1


@pytest.mark.parametrize(
    ("name", "options", "most"),
    [
        ("okta-oin", {}, 5),
        ("okta-aiw", {}, 5),
        ("entra", {}, 4),
        ("jumpcloud", {}, 1),
        ("okta-oin", {"concurrency": 1}, 1),
    ],
)
async def test_profiles_provision_concurrently_where_their_idp_does(
    aiohttp_server: Any,
    client: TestClient,
    scim: Scim,
    name: str,
    options: dict[str, Any],
    most: int,
) -> None:
    """Okta bursts and Entra runs parallel jobs (their default concurrency), JumpCloud goes
    one by one; the server sees that many requests at once, and the result is the same."""
    counter = InFlight()
    proxy = await start_proxy(aiohttp_server, base_url(client), counter)
    directory = Directory.generate(seed=7, users=12, groups=3, members_per_group=3)
    profile = build_profile(name, proxy, scim.token, directory, seed=7, profile_options=options)
    summary = await close_after_summary(profile)
    assert summary.failures == []
    assert counter.most == most
    await assert_server_holds_the_directory(scim, profile)
