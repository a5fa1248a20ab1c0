"""Instance groups (issue 12): tenants linked for cross-instance sign-in, one of them primary,
managed through the admin API and the ``scim-server instance-groups`` command."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from scim_server import cli
from tests.support.scim import ADMIN, ADMIN_TOKEN, Scim, make_tenant, scim_error

GROUPS = "/admin/instance-groups"


async def _create(client: TestClient[Any, Any], **body: Any) -> Any:
    return await client.post(GROUPS, json=body, headers=ADMIN)


async def test_a_group_is_created_listed_read_changed_and_deleted(
    scim: Scim, other_scim: Scim
) -> None:
    client = scim.client
    await make_tenant(client, "acme-staging")
    created = await _create(client, name="acme", primary="acme", domain="Acme.COM")
    assert created.status == 201, await created.text()
    group = await created.json()
    assert group["tenants"] == ["acme"] and group["domain"] == "acme.com"
    assert group["admin_role"] == "admin" and group["one_team"] is False

    changed = await client.patch(
        f"{GROUPS}/acme",
        json={"tenants": ["acme-staging", "globex"], "one_team": True, "admin_role": "ops"},
        headers=ADMIN,
    )
    assert changed.status == 200, await changed.text()
    group = await changed.json()
    assert group["tenants"] == ["acme", "acme-staging", "globex"]
    assert group["one_team"] is True and group["admin_role"] == "ops"

    dropped = await client.patch(f"{GROUPS}/acme", json={"tenants": ["globex"]}, headers=ADMIN)
    assert (await dropped.json())["tenants"] == ["acme", "globex"]
    listing = await (await client.get(GROUPS, headers=ADMIN)).json()
    assert [g["name"] for g in listing["instance_groups"]] == ["acme"]
    read = await (await client.get(f"{GROUPS}/acme", headers=ADMIN)).json()
    assert read["tenants"] == ["acme", "globex"]

    assert (await client.delete(f"{GROUPS}/acme", headers=ADMIN)).status == 204
    await scim_error(await client.get(f"{GROUPS}/acme", headers=ADMIN), 404)
    # The tenants stay, and may join another group.
    again = await _create(client, name="other", primary="globex", domain="globex.com")
    assert again.status == 201, await again.text()


async def test_a_tenant_is_in_one_group_and_a_domain_names_one_group(
    scim: Scim, other_scim: Scim
) -> None:
    client = scim.client
    assert (await _create(client, name="a", primary="acme", domain="acme.com")).status == 201
    await scim_error(await _create(client, name="b", primary="acme", domain="b.com"), 409)
    await scim_error(await _create(client, name="c", primary="globex", domain="ACME.com"), 409)
    await scim_error(await _create(client, name="a", primary="globex", domain="a2.com"), 409)
    joined = await _create(client, name="g", primary="globex", domain="globex.com")
    assert joined.status == 201
    taken = await client.patch(f"{GROUPS}/g", json={"tenants": ["acme"]}, headers=ADMIN)
    body = await scim_error(taken, 409)
    assert "'acme'" in body["detail"]
    assert (await (await client.get(f"{GROUPS}/g", headers=ADMIN)).json())["tenants"] == ["globex"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "Bad Name", "primary": "acme", "domain": "acme.com"}, 400),
        ({"name": "g", "primary": "acme", "domain": "not a domain"}, 400),
        ({"name": "g", "primary": "acme"}, 400),
        ({"name": "g", "primary": 7, "domain": "acme.com"}, 400),
        ({"name": "g", "primary": "acme", "domain": "acme.com", "tenants": "x"}, 400),
        ({"name": "g", "primary": "acme", "domain": "acme.com", "one_team": "yes"}, 400),
        ({"name": "g", "primary": "acme", "domain": "acme.com", "admin_role": ""}, 400),
        ({"name": "g", "primary": "acme", "domain": "acme.com", "colour": "red"}, 400),
        ({"name": "g", "primary": "nobody", "domain": "acme.com"}, 404),
        ({"name": "g", "primary": "acme", "domain": "acme.com", "tenants": ["nobody"]}, 404),
    ],
)
async def test_a_bad_group_is_a_scim_error_naming_what_is_wrong(
    scim: Scim, body: dict[str, Any], status: int
) -> None:
    await scim_error(await scim.client.post(GROUPS, json=body, headers=ADMIN), status)
    listing = await (await scim.client.get(GROUPS, headers=ADMIN)).json()
    assert listing["instance_groups"] == []


async def test_a_group_s_name_primary_and_domain_do_not_change(scim: Scim) -> None:
    await _create(scim.client, name="acme", primary="acme", domain="acme.com")
    for field, value in (("primary", "globex"), ("domain", "x.com"), ("name", "b")):
        response = await scim.client.patch(f"{GROUPS}/acme", json={field: value}, headers=ADMIN)
        await scim_error(response, 400)


async def test_the_admin_token_guards_every_instance_group_route(scim: Scim) -> None:
    for method, path in (("GET", GROUPS), ("POST", GROUPS), ("GET", f"{GROUPS}/x")):
        await scim_error(await scim.client.request(method, path), 401)


async def test_deleting_a_tenant_takes_it_out_of_its_group_and_a_primary_its_group(
    scim: Scim, other_scim: Scim
) -> None:
    client = scim.client
    await make_tenant(client, "initech")
    await _create(client, name="acme", primary="acme", domain="acme.com", tenants=["globex"])
    await _create(client, name="ini", primary="initech", domain="initech.com")
    assert (await client.delete("/admin/tenants/globex", headers=ADMIN)).status == 204
    group = await (await client.get(f"{GROUPS}/acme", headers=ADMIN)).json()
    assert group["tenants"] == ["acme"]
    assert (await client.delete("/admin/tenants/initech", headers=ADMIN)).status == 204
    await scim_error(await client.get(f"{GROUPS}/ini", headers=ADMIN), 404)


async def test_the_cli_manages_groups_as_the_readme_shows(
    scim: Scim, other_scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(scim.client.make_url("")).rstrip("/")
    admin = ["--url", url, "--admin-token", ADMIN_TOKEN]

    async def run(*argv: str) -> str:
        assert await asyncio.to_thread(cli.main, [*argv, *admin]) == 0
        return capsys.readouterr().out

    created = await run(
        "instance-groups", "create", "acme", "--primary", "acme", "--domain", "acme.com",
        "--tenant", "globex", "--one-team",
    )  # fmt: skip
    assert '"one_team": true' in created and '"globex"' in created
    changed = await run("instance-groups", "set", "acme", "--no-one-team", "--admin-role", "ops")
    assert '"one_team": false' in changed and '"ops"' in changed
    assert '"acme"' in await run("instance-groups", "show", "acme")
    assert '"instance_groups"' in await run("instance-groups", "list")
    assert "deleted instance group acme" in await run("instance-groups", "delete", "acme")
