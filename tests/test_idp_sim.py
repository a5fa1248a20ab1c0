"""idp_sim: directory reproducibility, each profile's exact wire shapes, Okta's 429 back-off,
and full-lifecycle runs against our real server, verified afterwards by reading its state."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import re
import struct
import sys
import termios
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from idp_sim import (
    PROFILES,
    SCENARIOS,
    Directory,
    JournalEntry,
    RetryPolicy,
    build_profile,
    relay,
)
from idp_sim.cli import PROFILE_HELP, main
from idp_sim.cli import _parser as idp_sim_parser
from idp_sim.journal import Journal as JournalClass
from idp_sim.profiles.base import Profile
from idp_sim.profiles.entra import object_id
from idp_sim.profiles.okta_oin import okta_headers
from idp_sim.transport import Transport, encode_query
from idp_sim.urns import ENTERPRISE
from tests.support import cli_help
from tests.support.idp_runs import (
    FakeSleep,
    Recorder,
    assert_groups_match_directory,
    assert_server_holds_the_directory,
    base_url,
    group_member_ids,
    listed,
    run_lifecycle,
    user_state,
)
from tests.support.scim import Scim

OKTA_BODY_HEADERS = {
    "Accept": "application/scim+json",
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
    "User-Agent": "Okta SCIM Client 1.0.0",
    "Authorization": "Bearer <redacted>",
    "Connection": "Keep-Alive",
    "Accept-Encoding": "gzip,deflate",
}
OKTA_GET_HEADERS = {k: v for k, v in OKTA_BODY_HEADERS.items() if k != "Content-Type"}


# ---- helpers ---------------------------------------------------------------------------------


def entries(profile: Profile, method: str, path_start: str = "") -> list[JournalEntry]:
    return [
        e for e in profile.transport.journal if e.method == method and e.path.startswith(path_start)
    ]


PROFILE_NAMES = ["okta-oin", "okta-aiw", "jumpcloud", "entra", "entra-optscim062020"]


# ---- directory ---------------------------------------------------------------------------------
def test_same_seed_gives_the_same_directory_and_another_seed_does_not() -> None:
    first = Directory.generate(seed=7, users=20, groups=4)
    assert first == Directory.generate(seed=7, users=20, groups=4)
    assert first.users != Directory.generate(seed=8, users=20, groups=4).users
    assert all(re.fullmatch(r"00u[A-Za-z0-9]{17}", u.id) for u in first.users)
    assert all(re.fullmatch(r"00g[A-Za-z0-9]{17}", g.id) for g in first.groups)
    assert len({u.login for u in first.users}) == 20


def test_directory_round_trips_through_json_and_loads_csv(tmp_path: Path) -> None:
    directory = Directory.generate(seed=3, users=5, groups=2)
    directory.assign_group(directory.groups[0].id)
    directory.dump(tmp_path / "d.json")
    assert Directory.load(tmp_path / "d.json") == directory
    assert directory.assigned_user_ids == set(directory.groups[0].member_ids)

    (tmp_path / "d.csv").write_text(
        "login,given_name,family_name,active,groups\n"
        "ann@x.io,Ann,Lee,true,Eng;Ops\nbob@x.io,Bob,Ray,false,Ops\n",
        encoding="utf-8",
    )
    loaded = Directory.load(tmp_path / "d.csv")
    assert [(u.login, u.email, u.display_name, u.active) for u in loaded.users] == [
        ("ann@x.io", "ann@x.io", "Ann Lee", True),
        ("bob@x.io", "bob@x.io", "Bob Ray", False),
    ]
    assert {g.name: [loaded.user(m).login for m in g.member_ids] for g in loaded.groups} == {
        "Eng": ["ann@x.io"],
        "Ops": ["ann@x.io", "bob@x.io"],
    }


# ---- transport: wire shapes and 429 --------------------------------------------------------------
def test_query_encoding_keeps_order_and_chooses_space_form() -> None:
    params = [("filter", 'userName eq "jane.doe@example.com"'), ("startIndex", 1), ("count", 100)]
    assert encode_query(params, "%20") == (
        "filter=userName%20eq%20%22jane.doe%40example.com%22&startIndex=1&count=100"
    )
    assert encode_query(params, "+") == (
        "filter=userName+eq+%22jane.doe%40example.com%22&startIndex=1&count=100"
    )


async def test_okta_raw_token_header_and_plus_spaces_arrive_byte_exact(aiohttp_client: Any) -> None:
    recorder = Recorder([(200, {}, {"Resources": [], "totalResults": 0})])
    url = await recorder.start(aiohttp_client)
    async with Transport(url, "s3cret", okta_headers("header"), space="+") as transport:
        await transport.request(
            "GET",
            "/Users",
            [("filter", 'userName eq "a b@x.io"'), ("startIndex", 1), ("count", 100)],
        )
        await transport.request("POST", "/Users", body={"userName": "a"})
    (_m, path, headers, _), (_, _, post_headers, post_body) = recorder.seen
    assert path == "/scim/v2/Users?filter=userName+eq+%22a+b%40x.io%22&startIndex=1&count=100"
    sent = {k: v for k, v in headers.items() if k not in ("Host",)}
    assert sent == {**OKTA_GET_HEADERS, "Authorization": "s3cret"}
    assert post_headers["Content-Type"] == "application/scim+json; charset=utf-8"
    assert post_body == b'{"userName":"a"}'
    assert transport.journal.entries[0].headers["Authorization"] == "<redacted>"


async def test_429_waits_retry_after_then_doubles_and_succeeds(aiohttp_client: Any) -> None:
    recorder = Recorder(
        [(429, {"Retry-After": "2"}, {}), (429, {"Retry-After": "2"}, {}), (200, {}, {"ok": True})]
    )
    url = await recorder.start(aiohttp_client)
    sleep = FakeSleep()
    async with Transport(url, "t", okta_headers(), sleep=sleep) as transport:
        response = await transport.request("GET", "/Users", [("startIndex", 1), ("count", 2)])
    assert (response.status, response.body) == (200, {"ok": True})
    assert sleep.waits == [2.0, 4.0]
    assert [(e.status, e.attempt) for e in transport.journal] == [(429, 1), (429, 2), (200, 3)]


async def test_429_without_integer_retry_after_uses_default_and_gives_up(
    aiohttp_client: Any,
) -> None:
    recorder = Recorder([(429, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, {})])
    url = await recorder.start(aiohttp_client)
    sleep = FakeSleep()
    async with Transport(
        url, "t", okta_headers(), sleep=sleep, retry=RetryPolicy(max_attempts=4)
    ) as transport:
        response = await transport.request("GET", "/Users")
    assert response.status == 429
    assert sleep.waits == [300.0, 600.0, 1200.0]
    assert len(recorder.seen) == 4


async def test_timeout_is_journaled_as_status_zero(aiohttp_client: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/Users", slow)
    client = await aiohttp_client(app)
    async with Transport(str(client.make_url("")), "t", okta_headers(), timeout=0.2) as transport:
        response = await transport.request("GET", "/Users")
    assert response.status == 0 and response.error == "timeout after 0.2s"
    assert transport.journal.entries[0].status == 0


async def test_jumpcloud_bodies_go_out_with_sorted_keys_and_no_user_agent(
    aiohttp_client: Any,
) -> None:
    recorder = Recorder([(200, {}, {"Resources": [], "totalResults": 0}), (201, {}, {"id": "abc"})])
    url = await recorder.start(aiohttp_client)
    directory = Directory.generate(seed=1, users=1)
    profile = build_profile("jumpcloud", url, "tok", directory)
    try:
        assert await profile.assign_user(directory.users[0]) == "abc"
    finally:
        await profile.transport.close()
    _, _, headers, raw = recorder.seen[1]
    assert "User-Agent" not in headers
    assert headers["Authorization"] == "Bearer tok"
    keys = list(json.loads(raw))
    assert keys == sorted(keys) and "password" not in keys
    assert re.fullmatch(r"[0-9a-f]{24}", json.loads(raw)["externalId"])
    assert json.loads(raw)["schemas"] == [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    ]


async def test_okta_import_pages_by_100_and_skips_inactive_users(aiohttp_client: Any) -> None:
    page1 = [{"id": str(i), "userName": f"u{i}", "active": i != 5} for i in range(100)]
    page2 = [{"id": str(i), "userName": f"u{i}"} for i in range(100, 150)]
    recorder = Recorder(
        [
            (200, {}, {"totalResults": 150, "Resources": page1}),
            (200, {}, {"totalResults": 150, "Resources": page2}),
        ]
    )
    url = await recorder.start(aiohttp_client)
    profile = build_profile("okta-oin", url, "t", Directory())
    try:
        imported = await profile.import_users()
    finally:
        await profile.transport.close()
    assert [path for _, path, _, _ in recorder.seen] == [
        "/scim/v2/Users?startIndex=1&count=100",
        "/scim/v2/Users?startIndex=101&count=100",
    ]
    assert len(imported) == 149 and "5" not in {u["id"] for u in imported}


async def test_okta_lookup_answered_404_counts_as_not_found_and_creates(
    aiohttp_client: Any,
) -> None:
    recorder = Recorder(
        [(404, {}, {"detail": "User not found", "status": 404}), (201, {}, {"id": "sp-1"})]
    )
    url = await recorder.start(aiohttp_client)
    directory = Directory.generate(seed=2, users=1)
    profile = build_profile("okta-oin", url, "t", directory)
    try:
        assert await profile.assign_user(directory.users[0]) == "sp-1"
    finally:
        await profile.transport.close()
    assert [m for m, _, _, _ in recorder.seen] == ["GET", "POST"]
    assert profile.failures == []


async def test_okta_assign_of_an_existing_user_links_with_get_and_put(
    client: TestClient, scim: Scim
) -> None:
    directory = Directory.generate(seed=4, users=1)
    user = directory.users[0]
    existing = await scim.create_user(user.login, active=False)
    profile = build_profile("okta-oin", base_url(client), scim.token, directory)
    try:
        assert await profile.assign_user(user) == existing["id"]
    finally:
        await profile.transport.close()
    assert [(e.method, e.path.split("?")[0]) for e in profile.transport.journal] == [
        ("GET", "/Users"),
        ("GET", f"/Users/{existing['id']}"),
        ("PUT", f"/Users/{existing['id']}"),
    ]
    status, body = await user_state(scim, existing["id"])
    assert (status, body["active"], body["externalId"]) == (200, True, user.id)
    assert body["name"]["givenName"] == user.given_name


# ---- full lifecycle against our server -----------------------------------------------------------
async def test_okta_oin_full_lifecycle_shapes_and_server_state(
    client: TestClient, scim: Scim
) -> None:
    profile, summary = await run_lifecycle(client, scim, "okta-oin", concurrency=1)
    assert summary.failures == []
    assert summary.skipped == ["provision on demand", "disassociate group", "delete user"]
    journal = profile.transport.journal.entries
    assert (journal[0].method, journal[0].path) == ("GET", "/Users?startIndex=1&count=2")
    assert journal[0].headers == OKTA_GET_HEADERS
    assert journal[1].path == "/Groups?startIndex=1&count=100"

    first = profile.directory.users[0]
    lookup = entries(profile, "GET", "/Users?filter=")[0]
    local = first.login.split("@")[0]
    assert lookup.path == (
        f"/Users?filter=userName%20eq%20%22{local}%40example.com%22&startIndex=1&count=100"
    )
    post = entries(profile, "POST", "/Users")[0]
    assert post.headers == OKTA_BODY_HEADERS and post.status == 201
    assert post.body["externalId"] == first.id
    assert re.fullmatch(r"[a-z0-9]{8}", post.body["password"])
    assert (post.body["locale"], post.body["groups"], post.body["active"]) == ("en-US", [], True)
    assert post.body["emails"] == [{"primary": True, "value": first.email, "type": "work"}]

    sid = profile.user_links[first.id]
    user_patches = [e.body["Operations"] for e in entries(profile, "PATCH", f"/Users/{sid}")]
    assert user_patches == [
        [{"op": "replace", "value": {"active": False}}],
        [{"op": "replace", "value": {"active": True}}],
        [{"op": "replace", "value": {"password": "N3w-Passw0rd!"}}],
    ]
    update_get, update_put = [e for e in journal if e.path == f"/Users/{sid}"][:2]
    assert (update_get.method, update_put.method) == ("GET", "PUT")
    assert update_put.body["title"] == first.title and update_put.body["id"] == sid
    assert not entries(profile, "DELETE", "/Users")

    group = profile.directory.groups[0]
    gid = profile.group_links[group.id]
    created = entries(profile, "POST", "/Groups")[0]
    assert created.body == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": created.body["displayName"],
        "members": [],
    }
    patches = [e.body["Operations"] for e in entries(profile, "PATCH", f"/Groups/{gid}")]
    delta = patches[2]  # after initial add + its rename-on-membership
    assert delta[0]["op"] == "remove"
    assert re.fullmatch(r'members\[value eq "[^"]+"\]', delta[0]["path"])
    assert delta[-1]["op"] == "add" and delta[-1]["path"] == "members"
    assert set(delta[-1]["value"][0]) == {"value", "display"}
    old_name = group.name.removesuffix(" (renamed)")
    assert patches[3] == [{"op": "replace", "value": {"id": gid, "displayName": old_name}}]
    assert patches[4] == [{"op": "replace", "value": {"id": gid, "displayName": group.name}}]
    assert patches[-1][0]["op"] == "replace" and patches[-1][0]["path"] == "members"
    deleted = entries(profile, "DELETE", "/Groups")[0]
    assert deleted.status == 204 and deleted.headers == OKTA_BODY_HEADERS and deleted.body is None

    # Server state: the unassigned user still answers 200 with active false; the subject is back.
    status, body = await user_state(scim, profile.user_links[profile.directory.users[-1].id])
    assert (status, body["active"]) == (200, False)
    status, body = await user_state(scim, sid)
    assert (status, body["active"], body["title"]) == (200, True, first.title)
    assert (await scim.get(f"/Groups/{deleted.path.rsplit('/', 1)[1]}")).status == 404
    await assert_groups_match_directory(scim, profile)


async def test_okta_aiw_full_lifecycle_uses_only_get_and_put(
    client: TestClient, scim: Scim
) -> None:
    profile, summary = await run_lifecycle(client, scim, "okta-aiw", concurrency=1)
    assert summary.failures == []
    assert entries(profile, "PATCH") == []
    first = profile.directory.users[0]
    sid = profile.user_links[first.id]
    puts = [e.body for e in entries(profile, "PUT", f"/Users/{sid}")]
    assert [p["active"] for p in puts] == [True, False, True, True]
    assert puts[-1]["password"] == "N3w-Passw0rd!"
    group = profile.directory.groups[0]
    gid = profile.group_links[group.id]
    sequence = [
        (e.method, e.path.split("?")[0])
        for e in profile.transport.journal
        if e.path.startswith("/Groups")
        and ("filter=displayName" in e.path or gid in e.path or e.method == "POST")
    ]
    assert sequence[:4] == [
        ("GET", "/Groups"),
        ("POST", "/Groups"),
        ("GET", f"/Groups/{gid}"),
        ("PUT", f"/Groups/{gid}"),
    ]
    status, body = await user_state(scim, profile.user_links[profile.directory.users[-1].id])
    assert (status, body["active"]) == (200, False)
    await assert_groups_match_directory(scim, profile)


async def test_entra_full_lifecycle_capitalised_ops_and_string_booleans(
    client: TestClient, scim: Scim
) -> None:
    profile, summary = await run_lifecycle(client, scim, "entra", ad_group_schema=False)
    assert summary.failures == []
    assert summary.skipped == [
        "import users",
        "import groups",
        "password push",
        "push now",
        "disassociate group",
    ]
    assert profile.transport.journal.entries[1].path.startswith(
        "/Groups?excludedAttributes=members&filter=displayName%20eq%20%22"
    )
    assert profile.transport.journal.entries[0].headers["User-Agent"] == (
        "Microsoft Azure AD SCIM provisioning"
    )
    first = profile.directory.users[0]
    sid = profile.user_links[first.id]
    ops = [e.body["Operations"] for e in entries(profile, "PATCH", f"/Users/{sid}")]
    manager = profile.user_links[first.manager_id]
    assert ops == [
        [{"op": "Replace", "path": "title", "value": first.title}],
        [{"op": "Replace", "path": "manager", "value": manager}],
        [{"op": "Replace", "path": "active", "value": "False"}],
        [{"op": "Replace", "path": "active", "value": "True"}],
        [{"op": "Replace", "path": f"{ENTERPRISE}:department", "value": first.department}],
    ]
    [post] = [e for e in entries(profile, "POST", "/Users") if e.body["userName"] == first.login]
    assert post.body["externalId"] == object_id(first.id)
    assert post.body["roles"] == [] and post.body["meta"] == {"resourceType": "User"}
    group = profile.directory.groups[0]
    gid = profile.group_links[group.id]
    group_ops = [e.body["Operations"] for e in entries(profile, "PATCH", f"/Groups/{gid}")]
    assert group_ops[0][0]["op"] == "Add" and group_ops[0][0]["value"][0]["$ref"] is None
    assert [o["op"] for o in group_ops[1]] == ["Remove", "Add"]
    assert group_ops[2] == [{"op": "Replace", "path": "displayName", "value": group.name}]
    deleted_user = profile.directory.users[-2]
    delete = entries(profile, "DELETE", "/Users")[0]
    assert delete.status == 204
    assert (await scim.get(delete.path)).status == 404
    assert deleted_user.id not in profile.user_links
    status, body = await user_state(scim, sid)
    assert (status, body["active"]) == (200, True)
    await assert_groups_match_directory(scim, profile)


async def test_entra_optscim062020_flag_sends_lower_case_ops_and_boolean_active_by_path(
    client: TestClient, scim: Scim
) -> None:
    """The flag's dialect, except on demand: that one is classic (capitalised, one per path)."""
    profile, summary = await run_lifecycle(
        client, scim, "entra-optscim062020", ad_group_schema=False
    )
    assert summary.failures == []
    first = profile.directory.users[0]
    sid = profile.user_links[first.id]
    ops = [e.body["Operations"] for e in entries(profile, "PATCH", f"/Users/{sid}")]
    assert ops[1:] == [
        [{"op": "replace", "path": "manager", "value": profile.user_links[first.manager_id]}],
        [{"op": "replace", "path": "active", "value": False}],
        [{"op": "replace", "path": "active", "value": True}],
        [{"op": "Replace", "path": f"{ENTERPRISE}:department", "value": first.department}],
    ]
    await assert_groups_match_directory(scim, profile)


async def test_jumpcloud_full_lifecycle_puts_and_emails_null(
    client: TestClient, scim: Scim
) -> None:
    profile, summary = await run_lifecycle(client, scim, "jumpcloud")
    assert summary.failures == []
    journal = profile.transport.journal.entries
    assert [(e.method, e.path.split("?")[0], e.status) for e in journal[:6]] == [
        ("GET", "/Users", 200),
        ("POST", "/Users", 201),
        ("POST", "/Groups", 201),
        ("DELETE", journal[3].path, 204),
        ("DELETE", journal[4].path, 204),
        ("GET", "/Users", 200),
    ]
    first = profile.directory.users[0]
    sid = profile.user_links[first.id]
    puts = [e.body for e in entries(profile, "PUT", f"/Users/{sid}")]
    assert puts[1] == {
        "active": False,
        "emails": None,
        "id": sid,
        "name": {"familyName": first.family_name, "givenName": first.given_name},
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": first.login,
    }
    assert puts[0]["addresses"] == [] and puts[0]["id"] == sid
    gid = profile.group_links[profile.directory.groups[0].id]
    ops = [e.body["Operations"] for e in entries(profile, "PATCH", f"/Groups/{gid}")]
    delta = next(o for o in ops if o[0]["op"] == "remove")  # a re-sync with a leaver
    assert delta[0]["value"][0].keys() == {"value"} and delta[1]["op"] == "add"
    status, body = await user_state(scim, sid)
    assert (status, body["active"]) == (200, True)
    status, body = await user_state(scim, profile.user_links[profile.directory.users[-1].id])
    assert (status, body["active"]) == (200, False)
    await assert_groups_match_directory(scim, profile)


async def test_entra_group_create_with_adscim_schema_urn_is_accepted(
    client: TestClient, scim: Scim
) -> None:
    directory = Directory.generate(seed=1, users=1, groups=1, members_per_group=1)
    profile = build_profile("entra", base_url(client), scim.token, directory)
    try:
        await profile.assign_user(directory.users[0])
        await profile.push_group(directory.groups[0])
    finally:
        await profile.transport.close()
    post = entries(profile, "POST", "/Groups")[0]
    assert post.body["schemas"][1].endswith("/ADSCIM/2.0/Group")
    assert post.status == 201


# ---- a populated directory -----------------------------------------------------------------------
async def test_okta_oin_links_an_existing_group_by_name_and_overwrites_its_members(
    client: TestClient, scim: Scim
) -> None:
    directory = Directory.generate(seed=5, users=3, groups=1, members_per_group=2)
    stranger = await scim.create_user("stranger@example.com")
    existing = await scim.create_group(directory.groups[0].name, members=[stranger["id"]])
    profile = build_profile("okta-oin", base_url(client), scim.token, directory)
    try:
        for user in directory.users:
            await profile.assign_user(user)
        assert await profile.push_group(directory.groups[0]) == existing["id"]
    finally:
        await profile.transport.close()
    assert profile.failures == []
    assert entries(profile, "POST", "/Groups") == []
    lookup, existence, push_now = [e for e in profile.transport.journal if "/Groups" in e.path]
    quoted = directory.groups[0].name.replace(" ", "%20")
    assert lookup.path == (
        f"/Groups?filter=displayName%20eq%20%22{quoted}%22&startIndex=1&count=100"
    )
    assert (existence.method, existence.path) == ("GET", f"/Groups/{existing['id']}")
    assert push_now.body["Operations"][0]["op"] == "replace"
    assert await group_member_ids(scim, existing["id"]) == {
        profile.user_links[m] for m in directory.groups[0].member_ids
    }


@pytest.mark.parametrize("match_attribute", ["userName", "externalId"])
async def test_entra_adopts_a_matched_inactive_user_with_every_attribute_and_enables_it(
    client: TestClient, scim: Scim, match_attribute: str
) -> None:
    directory = Directory.generate(seed=4, users=1)
    user = directory.users[0]
    existing = await scim.create_user(user.login, externalId=user.nickname, active=False)
    profile = build_profile(
        "entra",
        base_url(client),
        scim.token,
        directory,
        profile_options={"match_attributes": [match_attribute], "external_id": "mailNickname"},
    )
    try:
        assert await profile.assign_user(user) == existing["id"]
    finally:
        await profile.transport.close()
    assert profile.failures == []
    lookup, patch = profile.transport.journal.entries
    assert lookup.path.startswith(f"/Users?filter={match_attribute}%20eq%20%22")
    operations = patch.body["Operations"]
    assert {"op": "Replace", "path": "active", "value": "True"} in operations
    assert {o["path"] for o in operations} >= {"userName", "title", "name.givenName"}
    status, body = await user_state(scim, existing["id"])
    assert (status, body["active"], body["title"]) == (200, True, user.title)


async def test_entra_finds_an_existing_user_by_an_unquoted_external_id(
    client: TestClient, scim: Scim
) -> None:
    directory = Directory.from_dict(
        {"users": [{"login": "jyoung@example.com", "given_name": "Joy", "family_name": "Young"}]}
    )
    existing = await scim.create_user("jyoung@example.com", externalId="jyoung", active=False)
    options = {
        "match_attributes": ["externalId"],
        "external_id": "mailNickname",
        "quoted_filter": False,
    }
    profile = build_profile(
        "entra", base_url(client), scim.token, directory, profile_options=options
    )
    try:
        found = await profile.assign_user(directory.users[0])
    finally:
        await profile.transport.close()
    assert profile.transport.journal.entries[0].path == "/Users?filter=externalId%20eq%20jyoung"
    assert profile.failures == []
    assert found == existing["id"]
    assert (await user_state(scim, existing["id"]))[1]["active"] is True


@pytest.mark.parametrize("name", PROFILE_NAMES)
async def test_returning_users_keep_their_id_or_are_created_again_after_delete(
    client: TestClient, scim: Scim, name: str
) -> None:
    """The unassigned user is found and active again under its id; a deleted one (Entra,
    JumpCloud; Okta never deletes) is created again: 201, a new id, back in its groups."""
    profile, summary = await run_lifecycle(client, scim, name, "returning-users")
    assert summary.failures == []
    assert summary.steps[-2:] == ["re-assign", "re-push memberships"]
    unassigned = profile.directory.users[-1]
    puts_or_patches = [
        e for e in profile.transport.journal if e.method in ("PUT", "PATCH") and "/Users/" in e.path
    ]
    assert puts_or_patches[-1].path == f"/Users/{profile.user_links[unassigned.id]}"
    deletes = entries(profile, "DELETE", "/Users/")
    if name.startswith("okta"):
        assert deletes == []
    else:
        recreated = profile.directory.users[-2]
        old_id = deletes[-1].path.rsplit("/", 1)[1]
        post = entries(profile, "POST", "/Users")[-1]
        assert (post.body["userName"], post.status) == (recreated.login, 201)
        assert profile.user_links[recreated.id] == post.response_body["id"] != old_id
        assert (await scim.get(f"/Users/{old_id}")).status == 404
    assert len(profile.user_links) == len(profile.directory.users)
    await assert_server_holds_the_directory(scim, profile)


@pytest.mark.parametrize("name", PROFILE_NAMES)
async def test_restart_matches_every_user_and_group_already_on_the_server(
    client: TestClient, scim: Scim, name: str
) -> None:
    profile, summary = await run_lifecycle(client, scim, name, "restart")
    assert summary.failures == []
    assert summary.steps.count("assign users") == 2
    logins = [u.login for u in profile.directory.users]
    posted = [
        e.body["userName"]
        for e in entries(profile, "POST", "/Users")
        if e.status == 201 and e.body["userName"] in logins  # not JumpCloud's test user
    ]
    # Once each, and a second time only the user the first pass deleted (Okta never deletes).
    again = [] if name.startswith("okta") else [logins[-2]]
    assert sorted(posted) == sorted(logins + again)
    await assert_server_holds_the_directory(scim, profile)


async def run_relay(client: TestClient, scim: Scim, names: list[str]) -> list[Profile]:
    directory = Directory.generate(seed=7, users=6, groups=3, members_per_group=3)
    profiles = [build_profile(n, base_url(client), scim.token, directory, seed=7) for n in names]
    try:
        summaries = await relay(profiles, SCENARIOS["full-lifecycle"])
    finally:
        for profile in profiles:
            await profile.transport.close()
    assert [s.profile for s in summaries] == names
    assert [str(f) for s in summaries for f in s.failures] == []
    return profiles


async def test_relay_of_okta_jumpcloud_and_entra_leaves_one_right_directory(
    client: TestClient, scim: Scim
) -> None:
    """Each profile on what the previous left: users re-matched (re-activated where the
    previous one unassigned), a deleted user re-created, renamed and deleted groups found or
    pushed again; nothing twice."""
    profiles = await run_relay(client, scim, PROFILE_NAMES[:4])
    await assert_server_holds_the_directory(scim, profiles[-1])
    okta_group_posts = [entries(p, "POST", "/Groups") for p in profiles[:2]]
    assert [len(posts) for posts in okta_group_posts] == [3, 1]  # AIW: only the one OIN deleted


async def test_relay_of_every_profile_leaves_one_right_directory(
    client: TestClient, scim: Scim
) -> None:
    profiles = await run_relay(client, scim, PROFILE_NAMES)
    await assert_server_holds_the_directory(scim, profiles[-1])


# ---- CLI ---------------------------------------------------------------------------------------
async def test_cli_run_then_replay_on_a_fresh_tenant_has_no_differences(
    client: TestClient,
    scim: Scim,
    other_scim: Scim,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    journal = tmp_path / "run.jsonl"
    code = await asyncio.to_thread(
        main,
        [
            "run",
            "--profile",
            "okta-oin",
            "--base-url",
            base_url(client),
            "--token",
            scim.token,
            "--users",
            "4",
            "--groups",
            "2",
            "--seed",
            "7",
            "--journal",
            str(journal),
            "scenario",
            "full-lifecycle",
        ],
    )
    out = capsys.readouterr()
    assert code == 0, out.out
    assert "failures: 0" in out.out and "assign users" in out.err
    recorded = JournalClass.read(journal)
    assert recorded and all(e.headers["Authorization"] == "Bearer <redacted>" for e in recorded)
    assert scim.token not in journal.read_text()

    code = await asyncio.to_thread(
        main,
        [
            "replay",
            str(journal),
            "--base-url",
            base_url(client, "globex"),
            "--token",
            other_scim.token,
        ],
    )
    out = capsys.readouterr()
    assert code == 0, out.out
    assert f"replayed {len(recorded)} requests, 0 status differences" in out.out


async def test_cli_exits_non_zero_on_unexpected_status(
    client: TestClient, scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(
        main,
        [
            "run",
            "--profile",
            "okta-oin",
            "--base-url",
            base_url(client),
            "--token",
            "wrong",
            "--users",
            "1",
            "--groups",
            "0",
            "scenario",
            "full-lifecycle",
        ],
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "test connection: GET /Users -> 401" in out


async def test_cli_profile_option_reaches_the_profile(
    client: TestClient, scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    """Entra's ADSCIM group URN is an option of the profile: it can be turned off."""
    args = [
        "run",
        "--profile",
        "entra",
        "--base-url",
        base_url(client),
        "--token",
        scim.token,
        "--users",
        "3",
        "--groups",
        "1",
        "--json",
    ]
    code = await asyncio.to_thread(
        main, [*args, "--option", "ad_group_schema=false", "scenario", "full-lifecycle"]
    )
    summary = json.loads(capsys.readouterr().out)
    assert (code, summary["failures"], summary["profile"]) == (0, [], "entra")
    assert summary["by_method_status"]["DELETE 204"] == 1


def relay_args(client: TestClient, scim: Scim, *profiles: str) -> list[str]:
    args = ["run", "--base-url", base_url(client), "--token", scim.token, "--users", "4"]
    for name in profiles:
        args += ["--profile", name]
    return [*args, "--groups", "2", "--seed", "7"]


async def test_cli_repeated_profile_runs_each_on_the_state_the_previous_left(
    client: TestClient, scim: Scim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "relay.jsonl"
    args = relay_args(client, scim, "okta-oin", "jumpcloud")
    code = await asyncio.to_thread(
        main, [*args, "--journal", str(journal), "--json", "scenario", "restart"]
    )
    summaries = json.loads(capsys.readouterr().out)
    assert code == 0, summaries
    assert [(s["profile"], s["failures"]) for s in summaries] == [
        ("okta-oin", []),
        ("jumpcloud", []),
    ]
    agents = [e.headers.get("User-Agent") for e in JournalClass.read(journal)]
    okta_requests = summaries[0]["requests"]
    assert set(agents[:okta_requests]) == {"Okta SCIM Client 1.0.0"}
    assert set(agents[okta_requests:]) == {None}  # JumpCloud sends none
    logins = sorted(u["userName"] for u in await listed(scim, "/Users"))
    assert len(logins) == 3 == len(set(logins))  # four people, the last step deleted one


async def test_cli_entra_flagged_after_entra_on_the_same_people_has_no_failures(
    client: TestClient, scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's reproduction: ``entra-optscim062020`` on a tenant where ``entra`` ran."""
    args = relay_args(client, scim, "entra", "entra-optscim062020")
    code = await asyncio.to_thread(main, [*args, "scenario", "full-lifecycle"])
    out = capsys.readouterr().out
    assert code == 0, out


# ---- the command as users run it: a subprocess -----------------------------------------------
@dataclass
class Ran:
    """What one ``idp-sim`` process did: its exit status and everything it wrote."""

    status: int
    stdout: str
    stderr: str


IDP_SIM = (sys.executable, "-m", "idp_sim.cli")


def idp_sim_environment(token: str | None) -> dict[str, str]:
    """The test's environment without any ``SCIM_`` setting, then ``SCIM_TOKEN`` if given."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_")}
    return environment if token is None else {**environment, "SCIM_TOKEN": token}


async def run_idp_sim(*args: str, token: str | None = None) -> Ran:
    """``idp-sim ARGS`` with stdout and stderr to pipes (as in a CI log), its token by
    ``$SCIM_TOKEN`` when given."""
    process = await asyncio.create_subprocess_exec(
        *IDP_SIM,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=idp_sim_environment(token),
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())


def read_until_closed(terminal: int) -> bytes:
    """Everything written to a pty, up to the moment its last writer closed it (Linux: EIO)."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:
            return b"".join(chunks)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


async def run_idp_sim_on_a_terminal(*args: str, token: str) -> Ran:
    """``idp-sim ARGS`` with stdout and stderr on a pseudo-terminal of 120 columns, as a
    person runs it; everything it wrote is ``stdout``."""
    terminal, child_end = os.openpty()
    fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        process = await asyncio.create_subprocess_exec(
            *IDP_SIM,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=child_end,
            stderr=child_end,
            env={**idp_sim_environment(token), "TERM": "xterm-256color"},
        )
        os.close(child_end)
        written = await asyncio.to_thread(read_until_closed, terminal)
        status = await process.wait()
    finally:
        os.close(terminal)
    return Ran(status, written.decode(errors="replace"), "")


def small_run(client: TestClient, *extra: str) -> list[str]:
    """``run`` of one Okta profile on a small directory, without ``--token``."""
    return [
        "run",
        "--profile",
        "okta-oin",
        "--base-url",
        base_url(client),
        "--users",
        "3",
        "--groups",
        "2",
        *extra,
        "scenario",
        "full-lifecycle",
    ]


async def run_then_replay(
    runner: Callable[..., Awaitable[Ran]],
    client: TestClient,
    scim: Scim,
    other_scim: Scim,
    journal: Path,
    *extra: str,
) -> tuple[Ran, Ran]:
    """A small run journaled into ``journal``, then its replay on a fresh tenant, each through
    ``runner`` with the token by ``$SCIM_TOKEN``; both must succeed."""
    ran = await runner(*small_run(client, "--journal", str(journal), *extra), token=scim.token)
    assert ran.status == 0, ran.stdout + ran.stderr
    replayed = await runner(
        "replay", str(journal), "--base-url", base_url(client, "globex"), token=other_scim.token
    )
    assert replayed.status == 0, replayed.stdout + replayed.stderr
    return ran, replayed


async def test_cli_takes_the_token_from_scim_token_for_run_and_replay(
    client: TestClient, scim: Scim, other_scim: Scim, tmp_path: Path
) -> None:
    journal = tmp_path / "run.jsonl"
    ran, replayed = await run_then_replay(run_idp_sim, client, scim, other_scim, journal)
    assert "failures: 0" in ran.stdout
    assert ", 0 status differences" in replayed.stdout
    for output in (ran.stdout, ran.stderr, replayed.stdout, replayed.stderr):
        assert scim.token not in output and other_scim.token not in output


async def test_cli_without_any_token_is_a_usage_error_naming_scim_token(
    client: TestClient,
) -> None:
    for args in (small_run(client), ["replay", "x.jsonl", "--base-url", base_url(client)]):
        ran = await run_idp_sim(*args)
        assert ran.status == 2
        assert "$SCIM_TOKEN" in ran.stderr and "Traceback" not in ran.stderr


OKTA_OIN_PHASES = [
    "test connection",
    "import users",
    "import groups",
    "assign users",
    "push groups",
    "update profile",
    "deactivate",
    "reactivate",
    "password push",
    "provision on demand",
    "unassign",
    "membership delta",
    "group rename",
    "push now",
    "group delete",
    "delete user",
]
PHASE_LINE = re.compile(
    r"(?P<label>[^:]+): (?P<phase>[^:]+): (?:(?P<done>\d+)/(?P<total>\d+) done|not done by "
    r"this IdP), (?P<requests>\d+) requests, (?P<errors>\d+) errors, \d+\.\ds"
)

ANSI_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""Colours and cursor moves, stripped to read what a terminal shows."""


async def test_cli_into_a_pipe_writes_one_plain_summary_line_per_phase_and_for_replay(
    client: TestClient, scim: Scim, other_scim: Scim, tmp_path: Path
) -> None:
    journal = tmp_path / "run.jsonl"
    ran, replayed = await run_then_replay(run_idp_sim, client, scim, other_scim, journal, "--json")
    summary = json.loads(ran.stdout)
    assert "\r" not in ran.stderr + ran.stdout
    phases = [PHASE_LINE.fullmatch(line) for line in ran.stderr.splitlines()]
    assert all(phases), ran.stderr
    assert [(m["label"], m["phase"]) for m in phases if m] == [
        ("okta-oin", phase) for phase in OKTA_OIN_PHASES
    ]
    assert sum(int(m["requests"]) for m in phases if m) == summary["requests"]
    assert sum(int(m["errors"]) for m in phases if m) == len(summary["failures"]) == 0
    assert next(m for m in phases if m and m["phase"] == "assign users")["done"] == "3"
    assert "\r" not in replayed.stderr + replayed.stdout
    sent = len(JournalClass.read(journal))
    assert re.fullmatch(
        rf"replay: {sent}/{sent} done, {sent} requests, 0 errors, \d+\.\ds\n", replayed.stderr
    )


async def test_cli_on_a_terminal_draws_a_bar_for_every_phase_and_for_replay(
    client: TestClient, scim: Scim, other_scim: Scim, tmp_path: Path
) -> None:
    journal = tmp_path / "run.jsonl"
    ran, replayed = await run_then_replay(
        run_idp_sim_on_a_terminal, client, scim, other_scim, journal
    )
    shown = ANSI_CONTROL.sub("", ran.stdout)
    for phase in OKTA_OIN_PHASES:  # each phase's bar, drawn as it starts, then its summary
        assert re.search(rf"okta-oin: {phase} ━+ +0/\d+ ", shown), phase
        assert re.search(rf"okta-oin: {phase}: .*, \d+ requests, 0 errors", shown), phase
    shown = ANSI_CONTROL.sub("", replayed.stdout)
    sent = len(JournalClass.read(journal))
    assert re.search(rf"replay ━+ +0/{sent} ", shown)
    assert re.search(rf"replay: {sent}/{sent} done", shown)


# ---- help ------------------------------------------------------------------------------------
def test_every_choice_of_every_idp_sim_command_is_explained_in_its_help() -> None:
    missing: list[str] = []
    for path, command in cli_help.commands(idp_sim_parser(), "idp-sim"):
        missing += cli_help.unexplained_choices(path, command)
    assert missing == []
    assert set(PROFILE_HELP) == set(PROFILES)


def test_idp_sim_help_shows_no_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``$SCIM_TOKEN`` is read when the command runs, never made an argparse default (which a
    help text would print)."""
    monkeypatch.setenv("SCIM_TOKEN", "secret-from-the-environment")
    shown = [command.format_help() for _, command in cli_help.commands(idp_sim_parser(), "idp")]
    assert not any("secret-from-the-environment" in text for text in shown)
