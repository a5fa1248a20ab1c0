"""Cross-instance sign-in in headless Chromium (issue 12): the server-level sign-in page, one
authentication in the primary tenant (through idp_sim's SAML IdP, or a password), the instance
selection for an administrator, none for anyone else. Every page reached is photographed under
test-artifacts/browser/, as the other browser tests do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from idp_sim.directory import Directory
from samlkit.certs import SigningKey
from scim_server.config import Settings
from tests.support.browser import (
    JUMPCLOUD_TENANT,
    OKTA_TENANT,
    Screenshots,
    Stack,
    pick_person,
    running_stack,
)
from tests.support.scim import ADMIN
from tests.support.urns import USER

PRIMARY, MEMBER = OKTA_TENANT, JUMPCLOUD_TENANT
PASSWORD = "correct horse battery staple"
ADMIN_ROLE = [{"value": "admin"}]


@pytest.fixture
def directory() -> Directory:
    return Directory.generate(seed=12, users=3, groups=1, members_per_group=3)


@pytest.fixture
async def stack(
    settings: Settings, mongo_db: Any, idp_key: SigningKey, directory: Directory
) -> AsyncIterator[Stack]:
    """The SP and the IdP, with acme (primary, Okta-shaped SSO) and globex in one group whose
    domain is that of the directory's people."""
    async with running_stack(settings, idp_key, directory) as running:
        domain = directory.users[0].login.rpartition("@")[2]
        body = {"name": "team", "primary": PRIMARY, "domain": domain, "tenants": [MEMBER]}
        async with running.http.post(
            "/admin/instance-groups", json=body, headers=ADMIN
        ) as response:
            assert response.status == 201, await response.text()
        yield running


async def provision(stack: Stack, tenant: str, user_name: str, **attributes: Any) -> None:
    async with stack.http.post(
        f"/scim/v2/{tenant}/Users",
        json={"schemas": [USER], "userName": user_name, **attributes},
        headers={"Authorization": f"Bearer {stack.tenants[tenant].token}"},
    ) as response:
        assert response.status == 201, await response.text()


def instance_login(root: str, tenant: str) -> str:
    local, _, domain = root.rpartition("@")
    return f"{local}+{tenant}@{domain}"


async def test_an_admin_signs_in_through_the_primary_s_sso_and_chooses_an_instance(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    person = stack.directory.users[0]
    await provision(stack, PRIMARY, person.login, roles=ADMIN_ROLE)
    await provision(stack, MEMBER, instance_login(person.login, MEMBER), roles=ADMIN_ROLE)

    await page.goto(f"{stack.sp_url}/signin")
    await shots.take("signin")
    await page.locator("#email").fill(person.login)
    await page.locator("#continue").click()
    await pick_person(page, person, shots)

    await expect(page.locator("#choose-instance")).to_be_visible()
    assert page.url == f"{stack.sp_url}/signin/instances"
    await expect(page.locator("#root-login")).to_have_text(person.login)
    await expect(page.locator("#instances button")).to_have_count(2)
    await shots.take("selection")

    await page.locator(f"#instance-{MEMBER}").click()
    await expect(page.locator("#signed-in-user")).to_have_text(instance_login(person.login, MEMBER))
    await expect(page.locator("#signed-in-tenant")).to_have_text(MEMBER)
    await shots.take("signed-in")
    [entry, *_] = await stack.sso_log(MEMBER)
    assert (entry["outcome"], entry["flow"]) == ("signed_in", "instance")


async def test_a_non_admin_signs_in_with_a_password_and_lands_in_the_primary(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    root = stack.directory.users[1].login
    await provision(stack, PRIMARY, root, password=PASSWORD)
    await provision(stack, MEMBER, instance_login(root, MEMBER))  # a login, but no admin
    visited: list[str] = []
    page.on("framenavigated", lambda frame: visited.append(frame.url))

    await page.goto(f"{stack.sp_url}/signin")
    await page.locator("#email").fill(root)
    await page.locator("#password").fill(PASSWORD)
    await shots.take("signin")
    await page.locator("#continue").click()

    await expect(page.locator("#signed-in-user")).to_have_text(root)
    await expect(page.locator("#signed-in-tenant")).to_have_text(PRIMARY)
    await shots.take("signed-in")
    # The selection's URL only redirected: no page of it was ever shown.
    assert f"{stack.sp_url}/signin/instances" not in visited, visited
    assert visited[-1] == f"{stack.sp_url}/sso/{PRIMARY}/"
    [entry, *_] = await stack.sso_log(PRIMARY)
    assert entry["outcome"] == "not_an_admin"
