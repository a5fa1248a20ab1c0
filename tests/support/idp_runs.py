"""Running idp_sim's profiles against a server in the test's process, and reading back what
they left there."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from idp_sim import SCENARIOS, Directory, Journal, Summary, build_profile
from idp_sim.profiles.base import Profile
from tests.support.scim import Scim


class FakeSleep:
    """Records the waits the transport asks for instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def base_url(client: TestClient, tenant: str = "acme") -> str:
    return str(client.make_url(f"/scim/v2/{tenant}"))


async def run_lifecycle(
    client: TestClient, scim: Scim, name: str, scenario: str = "full-lifecycle", **options: Any
) -> tuple[Profile, Summary]:
    directory = Directory.generate(seed=7, users=6, groups=3, members_per_group=3)
    profile = build_profile(
        name,
        base_url(client),
        scim.token,
        directory,
        seed=7,
        transport_options={"journal": Journal()},
        profile_options=options,
    )
    try:
        summary = await SCENARIOS[scenario](profile, None)
    finally:
        await profile.transport.close()
    return profile, summary


async def user_state(scim: Scim, scim_id: str) -> tuple[int, Any]:
    response = await scim.get(f"/Users/{scim_id}")
    return response.status, await response.json()


async def group_member_ids(scim: Scim, scim_id: str) -> set[str]:
    response = await scim.get(f"/Groups/{scim_id}")
    assert response.status == 200
    return {m["value"] for m in (await response.json()).get("members", [])}


async def assert_groups_match_directory(scim: Scim, profile: Profile) -> None:
    """Every still-pushed group on the server has exactly the directory's (linked) members."""
    for group in profile.directory.groups:
        if group.id not in profile.group_links:
            continue
        expected = {profile.user_links[m] for m in group.member_ids if m in profile.user_links}
        assert await group_member_ids(scim, profile.group_links[group.id]) == expected
        response = await scim.get(f"/Groups/{profile.group_links[group.id]}")
        assert (await response.json())["displayName"] == group.name


async def listed(scim: Scim, endpoint: str) -> list[dict[str, Any]]:
    response = await scim.get(endpoint, params={"count": "200", "excludedAttributes": "members"})
    assert response.status == 200
    return list((await response.json()).get("Resources", []))


async def assert_server_holds_the_directory(scim: Scim, profile: Profile) -> None:
    """Read back after IdPs ran: nothing twice (userName, externalId, displayName), each
    directory user once, with the status the IdP gave it, every group the IdP's, with its
    members."""
    users = await listed(scim, "/Users")
    names = [u["userName"].lower() for u in users]
    external = [u["externalId"] for u in users if u.get("externalId")]
    assert len(names) == len(set(names)) and len(external) == len(set(external))
    directory = profile.directory
    assert set(names) <= {u.login.lower() for u in directory.users}
    for user in directory.users:
        if user.id not in profile.user_links:
            continue
        status, body = await user_state(scim, profile.user_links[user.id])
        wanted = user.active and user.id in directory.assigned_user_ids
        assert (status, body["userName"], body["active"]) == (200, user.login, wanted)
    groups = await listed(scim, "/Groups")
    kept = {**profile.released_groups, **profile.group_links}
    assert sorted(g["id"] for g in groups) == sorted(kept.values())
    assert len({g["displayName"] for g in groups}) == len(groups)
    await assert_groups_match_directory(scim, profile)


class Recorder:
    """A tiny server that records exactly what arrived and answers from a script."""

    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        self.answers = answers
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            (request.method, request.raw_path, dict(request.headers), await request.read())
        )
        status, headers, body = self.answers[min(len(self.seen), len(self.answers)) - 1]
        return web.json_response(body, status=status, headers=headers)

    async def start(self, aiohttp_client: Any) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        client = await aiohttp_client(app)
        return str(client.make_url("/scim/v2"))
