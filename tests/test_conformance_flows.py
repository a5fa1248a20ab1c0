"""The flows, tenancy and large suites, proven both ways.

Against our real server every IdP flow passes and the tenancy suite passes with two tenants.
Against a server that acknowledges without applying (a proxy that answers a deactivation 200
without forwarding it) the flow fails; so do the populated-directory flows against filters that
hide inactive users or find nothing, a DELETE acknowledged but not applied, or group lookups
that miss; and against a leaky setup (tenant A handed in as "tenant B", or a proxy serving A's
data under B's URL) the tenancy checks fail: none can pass vacuously.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from conformance import local
from conformance.checks import CheckResult, Verdict, suites
from conformance.cli import parser, run_options
from conformance.runner import RunResult, run
from tests.support.proxy import Forward, Req, Resp, Violation, start_proxy
from tests.support.scim import ADMIN, Scim

PROFILES = ["okta-oin", "okta-aiw", "jumpcloud", "entra", "entra-optscim062020"]
LIFECYCLE_IDS = [f"flows.{p}.full-lifecycle" for p in PROFILES]
RETURNING_IDS = [f"flows.{p}.returning-users" for p in PROFILES]
RESTART_IDS = [f"flows.{p}.restart" for p in PROFILES]
CRUD_IDS = ["flows.okta-oin.crud-test", "flows.okta-aiw.crud-test"]
RELAY_ID = "flows.relay.all-profiles"
REVERSE_ID = "flows.relay.reverse"
FLOW_IDS = [*LIFECYCLE_IDS, *RETURNING_IDS, *RESTART_IDS, *CRUD_IDS, RELAY_ID, REVERSE_ID]
POPULATED_IDS = [*RETURNING_IDS, *RESTART_IDS, RELAY_ID, REVERSE_ID]
"""The checks that start from a populated directory."""
TENANCY_IDS = [
    "tenancy.read-by-id",
    "tenancy.write-by-id",
    "tenancy.query-isolation",
    "tenancy.cross-tenant-member",
]
LARGE_IDS = ["large.group-members"]


def base_url(client: TestClient, scim: Scim) -> str:
    return str(client.make_url(scim.base))


def verdicts(result: RunResult) -> dict[str, Verdict]:
    return {r.check.id: r.verdict for r in result.results}


def explain(result: RunResult) -> str:
    return "\n".join(
        f"{r.check.id}: {r.verdict} {r.reason}" for r in result.results if r.verdict != Verdict.PASS
    )


async def user_count(scim: Scim) -> int:
    response = await scim.get("/Users", params={"count": "0"})
    return int((await response.json())["totalResults"])


def test_suites_register_the_documented_checks() -> None:
    registry = suites()
    assert [c.id for c in registry["flows"]] == FLOW_IDS
    assert [c.id for c in registry["tenancy"]] == TENANCY_IDS
    assert [c.id for c in registry["large"]] == LARGE_IDS


async def test_every_idp_lifecycle_lands_on_our_server_and_is_cleaned_up(
    client: TestClient, scim: Scim
) -> None:
    result = await run(base_url(client, scim), scim.token, ["flows"], only=LIFECYCLE_IDS)
    assert verdicts(result) == dict.fromkeys(LIFECYCLE_IDS, Verdict.PASS), explain(result)
    assert result.leftovers == []
    assert await user_count(scim) == 0
    groups = await (await scim.get("/Groups")).json()
    assert groups["totalResults"] == 0
    okta = result.results[0]
    methods = {e.method for e in okta.transcript}
    assert {"POST", "PATCH", "GET", "DELETE"} <= methods
    agents = {e.request_headers.get("User-Agent") for e in okta.transcript}
    assert "Okta SCIM Client 1.0.0" in agents  # the journal is the transcript


@pytest.mark.parametrize("check_id", POPULATED_IDS)
async def test_populated_directory_flows_land_on_our_server_and_are_cleaned_up(
    client: TestClient, scim: Scim, check_id: str
) -> None:
    result = await run(base_url(client, scim), scim.token, ["flows"], only=[check_id])
    [outcome] = result.results
    assert outcome.verdict == Verdict.PASS, outcome.reason
    assert result.leftovers == []
    assert await user_count(scim) == 0
    assert (await (await scim.get("/Groups")).json())["totalResults"] == 0


async def test_okta_crud_tests_pass_on_our_server_and_are_cleaned_up(
    client: TestClient, scim: Scim
) -> None:
    result = await run(base_url(client, scim), scim.token, ["flows"], only=CRUD_IDS)
    assert verdicts(result) == dict.fromkeys(CRUD_IDS, Verdict.PASS), explain(result)
    assert result.leftovers == []
    assert await user_count(scim) == 0


async def test_flows_sharing_one_tenant_in_one_run_do_not_match_each_others_users(
    client: TestClient, scim: Scim
) -> None:
    """The checks of a run share the tenant until the sweep: Entra's existence check by
    ``externalId`` (its objectId) must not find the users another check provisioned."""
    checks = ["flows.entra.full-lifecycle", RELAY_ID]
    result = await run(base_url(client, scim), scim.token, ["flows"], only=checks)
    assert [r.verdict for r in result.results] == [Verdict.PASS, Verdict.PASS], explain(result)


async def failed_through(
    aiohttp_server: Any, client: TestClient, scim: Scim, violation: Violation, check_id: str
) -> CheckResult:
    """Run one check through a proxy that commits ``violation``: it must fail."""
    proxy = await start_proxy(aiohttp_server, base_url(client, scim), violation)
    result = await run(proxy, scim.token, ["flows"], only=[check_id])
    [outcome] = result.results
    assert outcome.verdict == Verdict.FAIL, outcome.reason
    return outcome


def deactivates(body: Any) -> bool:
    """Whether a PUT or PATCH body sets ``active`` false, in any IdP's dialect."""
    if not isinstance(body, dict):
        return False
    if body.get("active") in (False, "False"):
        return True
    for op in body.get("Operations") or []:
        value = op.get("value")
        if str(op.get("path", "")).lower() == "active" and value in (False, "False"):
            return True
        if op.get("path") is None and isinstance(value, dict) and value.get("active") is False:
            return True
    return False


@pytest.mark.parametrize("check_id", LIFECYCLE_IDS)
async def test_flow_fails_when_deactivation_is_acknowledged_but_dropped(
    aiohttp_server: Any, client: TestClient, scim: Scim, check_id: str
) -> None:
    async def drop_deactivation(req: Req, forward: Forward) -> Resp:
        if (
            req.method in ("PATCH", "PUT")
            and re.fullmatch(r"/Users/[^/]+", req.path)
            and deactivates(req.json())
        ):
            current = await forward(Req("GET", req.path, {}, req.headers, b""))
            return Resp(200, {"Content-Type": "application/scim+json"}, current.body)
        return await forward(req)

    outcome = await failed_through(aiohttp_server, client, scim, drop_deactivation, check_id)
    assert "active is True after the lifecycle, expected False" in outcome.reason


@pytest.mark.parametrize("name", ["entra", "entra-optscim062020"])
async def test_entra_flow_fails_when_the_manager_patch_is_acknowledged_but_dropped(
    aiohttp_server: Any, client: TestClient, scim: Scim, name: str
) -> None:
    async def drop_manager(req: Req, forward: Forward) -> Resp:
        body = req.json()
        operations = body.get("Operations") or [] if isinstance(body, dict) else []
        if req.method == "PATCH" and any(op.get("path") == "manager" for op in operations):
            return Resp(204)
        return await forward(req)

    outcome = await failed_through(
        aiohttp_server, client, scim, drop_manager, f"flows.{name}.full-lifecycle"
    )
    assert "manager is None, the IdP set " in outcome.reason


@pytest.mark.parametrize("check_id", CRUD_IDS)
async def test_crud_test_fails_when_a_first_name_change_is_acknowledged_but_dropped(
    aiohttp_server: Any, client: TestClient, scim: Scim, check_id: str
) -> None:
    """Okta's profile update (GET, then PUT) answered 200 with the user as it was."""

    async def keep_given_name(req: Req, forward: Forward) -> Resp:
        body = req.json()
        renamed = isinstance(body, dict) and "Renamed" in str(body.get("name") or {})
        if req.method == "PUT" and req.path.startswith("/Users/") and renamed:
            current = await forward(Req("GET", req.path, {}, req.headers, b""))
            return Resp(200, {"Content-Type": "application/scim+json"}, current.body)
        return await forward(req)

    outcome = await failed_through(aiohttp_server, client, scim, keep_given_name, check_id)
    assert outcome.reason.startswith("after C2: the first-name change: the user has {'givenName'")


@pytest.mark.parametrize("check_id", CRUD_IDS)
async def test_crud_test_fails_when_the_created_user_loses_its_names(
    aiohttp_server: Any, client: TestClient, scim: Scim, check_id: str
) -> None:
    """A server that stores the user but not its name: the C1 filter shows it."""

    async def drop_name(req: Req, forward: Forward) -> Resp:
        body = req.json()
        if req.method == "POST" and req.path == "/Users" and isinstance(body, dict):
            body.pop("name", None)
            req.set_json(body)
        return await forward(req)

    outcome = await failed_through(aiohttp_server, client, scim, drop_name, check_id)
    assert outcome.reason.startswith("C1: userName, emails[0].value, name.familyName")


async def test_flow_fails_when_a_member_add_is_dropped(
    aiohttp_server: Any, client: TestClient, scim: Scim
) -> None:
    async def drop_member_adds(req: Req, forward: Forward) -> Resp:
        body = req.json()
        if req.method == "PATCH" and req.path.startswith("/Groups/") and isinstance(body, dict):
            body["Operations"] = [
                op for op in body["Operations"] if str(op.get("op")).lower() != "add"
            ]
            if not body["Operations"]:
                return Resp(204)
            req.set_json(body)
        return await forward(req)

    outcome = await failed_through(
        aiohttp_server, client, scim, drop_member_adds, "flows.entra.full-lifecycle"
    )
    assert "members differ from the directory's" in outcome.reason


def listing(resources: list[Any]) -> Resp:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
    return Resp(200, {"Content-Type": "application/scim+json"}, json.dumps(body).encode())


def existence_check(req: Req, endpoint: str) -> bool:
    """An IdP's ``eq`` lookup on ``endpoint`` (the cleanup's ``sw`` sweep is left alone)."""
    return req.method == "GET" and req.path == endpoint and " eq " in req.query.get("filter", "")


@pytest.mark.parametrize("check_id", RETURNING_IDS)
async def test_returning_users_fail_when_filters_hide_inactive_users(
    aiohttp_server: Any, client: TestClient, scim: Scim, check_id: str
) -> None:
    """A server whose filters skip inactive users: a re-assigned user is not found, so the
    IdP creates it again and the server refuses the duplicate userName."""

    async def hide_inactive(req: Req, forward: Forward) -> Resp:
        response = await forward(req)
        if existence_check(req, "/Users") and response.status == 200:
            found = response.json()["Resources"]
            return listing([u for u in found if u.get("active") is not False])
        return response

    outcome = await failed_through(aiohttp_server, client, scim, hide_inactive, check_id)
    assert "assign: POST /Users -> 409" in outcome.reason


@pytest.mark.parametrize(
    "check_id", ["flows.jumpcloud.returning-users", "flows.entra.returning-users"]
)
async def test_returning_user_fails_when_a_user_delete_is_acknowledged_but_not_applied(
    aiohttp_server: Any, client: TestClient, scim: Scim, check_id: str
) -> None:
    async def keep_users(req: Req, forward: Forward) -> Resp:
        if req.method == "DELETE" and req.path.startswith("/Users/"):
            return Resp(204)
        return await forward(req)

    outcome = await failed_through(aiohttp_server, client, scim, keep_users, check_id)
    assert "then re-assigned: expected a new user created with 201" in outcome.reason


@pytest.mark.parametrize("check_id", [*RESTART_IDS, RELAY_ID, REVERSE_ID])
async def test_populated_flows_fail_when_existence_checks_find_nothing(
    aiohttp_server: Any, client: TestClient, scim: Scim, check_id: str
) -> None:
    async def find_nothing(req: Req, forward: Forward) -> Resp:
        if existence_check(req, "/Users"):
            return listing([])
        return await forward(req)

    outcome = await failed_through(aiohttp_server, client, scim, find_nothing, check_id)
    assert "POST /Users -> 409" in outcome.reason


async def _find_no_group(req: Req, forward: Forward) -> Resp:
    """Group lookups and imports that find nothing, so Okta pushes every group a second
    time."""
    found_by_import = req.method == "GET" and req.path == "/Groups" and "filter" not in req.query
    if found_by_import or (
        existence_check(req, "/Groups") and "members" not in req.query.get("filter", "")
    ):
        return listing([])
    return await forward(req)


async def test_restart_fails_when_a_pushed_group_is_not_found_and_pushed_twice(
    aiohttp_server: Any, client: TestClient, scim: Scim
) -> None:
    """Group names are unique: the second push is refused with a 409 the IdP does not accept."""
    outcome = await failed_through(
        aiohttp_server, client, scim, _find_no_group, "flows.okta-oin.restart"
    )
    assert "POST /Groups -> 409" in outcome.reason


async def test_restart_fails_when_groups_pushed_twice_are_left_behind(
    aiohttp_server: Any, client: TestClient, scim: Scim
) -> None:
    """On a tenant that allows duplicate group names every request succeeds, and the first
    groups are left behind, beside the second of the same name: only the read-back can see
    it."""
    allowed = await client.put(
        f"/admin/tenants/{scim.tenant}/group-names", json={"allow_duplicates": True}, headers=ADMIN
    )
    assert allowed.status == 200
    outcome = await failed_through(
        aiohttp_server, client, scim, _find_no_group, "flows.okta-oin.restart"
    )
    assert outcome.reason.startswith("groups pushed twice by displayName")


async def test_tenancy_skips_without_a_second_tenant(client: TestClient, scim: Scim) -> None:
    result = await run(base_url(client, scim), scim.token, ["tenancy"])
    assert verdicts(result) == dict.fromkeys(TENANCY_IDS, Verdict.SKIP)
    assert all("--second-base-url" in r.reason for r in result.results)


async def test_tenancy_passes_with_two_tenants_of_our_server(
    client: TestClient, scim: Scim, other_scim: Scim
) -> None:
    result = await run(
        base_url(client, scim),
        scim.token,
        ["tenancy"],
        options={"second_base_url": base_url(client, other_scim), "second_token": other_scim.token},
    )
    assert verdicts(result) == dict.fromkeys(TENANCY_IDS, Verdict.PASS), explain(result)
    assert await user_count(scim) == 0
    assert await user_count(other_scim) == 0
    groups = await (await other_scim.get("/Groups")).json()
    assert groups["totalResults"] == 0  # tenant B's groups were removed by the checks


async def test_tenancy_fails_when_both_tenants_are_the_same(client: TestClient, scim: Scim) -> None:
    url = base_url(client, scim)
    result = await run(
        url, scim.token, ["tenancy"], options={"second_base_url": url, "second_token": scim.token}
    )
    assert verdicts(result) == dict.fromkeys(TENANCY_IDS, Verdict.FAIL), explain(result)


async def test_tenancy_fails_when_b_lists_leak_a_resources(
    aiohttp_server: Any, client: TestClient, scim: Scim, other_scim: Scim
) -> None:
    """B's URL is a proxy onto tenant A: by-id requests answer 404 (looking isolated), but
    discovery, lists and filters are served from A's data."""

    async def leak_lists(req: Req, forward: Forward) -> Resp:
        if req.method == "GET" and req.path in ("/ServiceProviderConfig", "/Users", "/Groups"):
            req.headers = {**req.headers, "Authorization": f"Bearer {scim.token}"}
            return await forward(req)
        return Resp(404, {"Content-Type": "application/scim+json"}, b'{"status": "404"}')

    b_proxy = await start_proxy(aiohttp_server, base_url(client, scim), leak_lists)
    result = await run(
        base_url(client, scim),
        scim.token,
        ["tenancy"],
        only=["tenancy.read-by-id", "tenancy.query-isolation"],
        options={"second_base_url": b_proxy, "second_token": other_scim.token},
    )
    outcome = verdicts(result)
    assert outcome == {
        "tenancy.read-by-id": Verdict.PASS,
        "tenancy.query-isolation": Verdict.FAIL,
    }, explain(result)
    assert "returned tenant A's resources" in result.results[1].reason


async def test_large_group_skips_unless_asked(client: TestClient, scim: Scim) -> None:
    result = await run(base_url(client, scim), scim.token, ["large"])
    [outcome] = result.results
    assert (outcome.verdict, outcome.reason) == (Verdict.SKIP, "run with --large")


async def test_large_group_check_passes_on_our_server(client: TestClient, scim: Scim) -> None:
    result = await run(
        base_url(client, scim), scim.token, ["large"], options={"large": True, "large_members": 450}
    )
    [outcome] = result.results
    assert outcome.verdict == Verdict.PASS, outcome.reason
    patches = [e for e in outcome.transcript if e.method == "PATCH"]
    assert len(patches) == 3 + 2  # 450 members in batches of 200, then one add, one remove
    assert await user_count(scim) == 0


async def test_large_group_fails_when_excluded_attributes_is_ignored(
    aiohttp_server: Any, client: TestClient, scim: Scim
) -> None:
    async def ignore_excluded(req: Req, forward: Forward) -> Resp:
        req.query.pop("excludedAttributes", None)
        return await forward(req)

    proxy = await start_proxy(aiohttp_server, base_url(client, scim), ignore_excluded)
    result = await run(proxy, scim.token, ["large"], options={"large": True, "large_members": 20})
    [outcome] = result.results
    assert outcome.verdict == Verdict.FAIL
    assert outcome.reason == "excludedAttributes=members still returned 20 members"


def test_cli_passes_second_tenant_and_large_to_the_run() -> None:
    args = parser().parse_args(
        [
            "--base-url",
            "http://a",
            "--token",
            "t",
            "--suite",
            "tenancy",
            "--second-base-url",
            "http://b",
            "--second-token",
            "u",
            "--large",
        ]
    )
    options = run_options(args)
    assert {key: options[key] for key in ("second_base_url", "second_token", "large")} == {
        "second_base_url": "http://b",
        "second_token": "u",
        "large": True,
    }
    plain = parser().parse_args(["--base-url", "http://a", "--token", "t"])
    assert run_options(plain)["large"] is False
    assert run_options(plain)["second_base_url"] is None


def test_local_runs_every_suite_with_two_tenants_and_reports_in_the_root(tmp_path: Any) -> None:
    plan = local.plan(
        local.parse(["--root", str(tmp_path), "--port", "18123"]),
        ["rfc", "okta-spec", "flows", "tenancy", "large"],
    )
    argv = plan.conformance_argv(
        "http://127.0.0.1:18123/scim/v2/conf-a", "http://127.0.0.1:18123/scim/v2/conf-b"
    )
    assert argv == [
        "--base-url",
        "http://127.0.0.1:18123/scim/v2/conf-a",
        "--second-base-url",
        "http://127.0.0.1:18123/scim/v2/conf-b",
        "--suite",
        "rfc",
        "--suite",
        "okta-spec",
        "--suite",
        "flows",
        "--suite",
        "tenancy",
        "--suite",
        "large",
        "--html",
        str(tmp_path / "conformance-report.html"),
        "--junit",
        str(tmp_path / "conformance-report.xml"),
        "--json",
        str(tmp_path / "conformance-report.json"),
    ]
    server = plan.server_argv(str(tmp_path / "data"))
    assert server[1:4] == ["-m", "scim_server", "serve"]
    assert server[server.index("--port") + 1] == "18123"
    assert server[server.index("--data-dir") + 1] == str(tmp_path / "data")


@pytest.mark.parametrize("suite", ["entra-validator"])
def test_local_includes_optional_suites_only_when_registered(suite: str) -> None:
    chosen = local.default_suites({"rfc": [], "okta-spec": [], "flows": [], "tenancy": []})
    assert chosen == ["rfc", "okta-spec", "flows", "tenancy"]
    with_it = local.default_suites({"rfc": [], suite: [], "flows": []})
    assert with_it == ["rfc", "flows", suite]
