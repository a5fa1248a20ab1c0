"""Single sign-on end to end in headless Chromium: the SP and the simulated IdP on real ports,
a person clicking through both sites' pages, and the result checked through SCIM and the
admin API. Every page reached is photographed under test-artifacts/browser/.

The acme tenant is connected to an Okta-shaped IdP app, globex to a JumpCloud-shaped one;
both are configured by importing the IdP's metadata from its URL, as an admin would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from idp_sim.directory import Directory, DirectoryUser
from idp_sim.profiles import build_profile
from samlkit.certs import SigningKey, certificate_pem
from scim_server.config import Settings
from tests.support.browser import (
    JUMPCLOUD_TENANT,
    OKTA_TENANT,
    Screenshots,
    Stack,
    chromium,
    expect_signed_in,
    pick_person,
    running_stack,
    sign_in_from_sp,
)

SESSION_COOKIE = f"scim_sso_{OKTA_TENANT}"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile per test: no IdP session or SP cookie carries over."""
    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    context.set_default_timeout(10_000)
    yield context
    await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(page, request.node.name)


@pytest.fixture
def directory() -> Directory:
    """Six people, each in both of the IdP's two groups (only the first is allowlisted)."""
    return Directory.generate(seed=11, users=6, groups=2, members_per_group=6)


@pytest.fixture
async def stack(
    settings: Settings, mongo_db: Any, idp_key: SigningKey, directory: Directory
) -> AsyncIterator[Stack]:
    async with running_stack(settings, idp_key, directory) as running:
        yield running


async def session_cookies(context: BrowserContext) -> list[dict[str, Any]]:
    return [
        dict(cookie) for cookie in await context.cookies() if cookie["name"].startswith("scim_sso_")
    ]


async def test_sp_initiated_sign_in_at_the_okta_tenant_creates_the_user_just_in_time(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    person = stack.directory.users[0]
    before = datetime.now(UTC).replace(microsecond=0)
    await sign_in_from_sp(page, stack, OKTA_TENANT, person, shots)
    await expect_signed_in(page, OKTA_TENANT, person, shots)
    after = datetime.now(UTC)

    [user] = await stack.users(OKTA_TENANT, person.login)
    assert before <= datetime.fromisoformat(user["meta"]["created"]) <= after
    assert user["name"] == {"givenName": person.given_name, "familyName": person.family_name}
    assert [email["value"] for email in user["emails"]] == [person.email]
    assert user["active"] is True
    # The IdP asserts both groups; only the allowlisted one is assigned.
    assert [group["display"] for group in user["groups"]] == [stack.directory.groups[0].name]
    [entry, *_] = await stack.sso_log(OKTA_TENANT)
    assert (entry["outcome"], entry["flow"], entry["jit"]) == ("signed_in", "sp", "created")


async def test_idp_initiated_sign_in_from_the_launch_page_at_the_jumpcloud_tenant(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    person = stack.directory.users[1]
    await page.goto(f"{stack.idp_url}/")
    await expect(page.get_by_test_id("page-launch")).to_be_visible()
    await shots.take("launch")
    await page.get_by_test_id(f"app-{JUMPCLOUD_TENANT}").click()
    await pick_person(page, person, shots)
    await expect_signed_in(page, JUMPCLOUD_TENANT, person, shots)

    [user] = await stack.users(JUMPCLOUD_TENANT, person.login)
    assert user["name"] == {"givenName": person.given_name, "familyName": person.family_name}
    # JumpCloud's preset reads groups from memberOf; the allowlist still applies.
    assert [group["display"] for group in user["groups"]] == [stack.directory.groups[0].name]
    assert await stack.users(OKTA_TENANT, person.login) == []
    [entry, *_] = await stack.sso_log(JUMPCLOUD_TENANT)
    assert (entry["outcome"], entry["flow"], entry["jit"]) == ("signed_in", "idp", "created")


async def provision(stack: Stack, person: DirectoryUser) -> str:
    """Assign ``person`` to the SCIM app as Okta's provisioning would; answers the SCIM id."""
    profile = build_profile(
        "okta-oin", stack.scim_base(OKTA_TENANT), stack.tenants[OKTA_TENANT].token, stack.directory
    )
    try:
        scim_id = await profile.assign_user(person)
    finally:
        await profile.transport.close()
    assert scim_id is not None and not profile.failures, profile.failures
    return scim_id


async def test_a_person_provisioned_by_scim_signs_in_to_the_same_account(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    person = stack.directory.users[2]
    scim_id = await provision(stack, person)
    await sign_in_from_sp(page, stack, OKTA_TENANT, person, shots)
    await expect_signed_in(page, OKTA_TENANT, person, shots)

    [user] = await stack.users(OKTA_TENANT, person.login)
    assert user["id"] == scim_id
    assert user["externalId"] == person.id
    [entry, *_] = await stack.sso_log(OKTA_TENANT)
    assert entry["outcome"] == "signed_in" and entry["jit"] != "created"
    assert entry["user"] == scim_id


async def test_a_sign_in_beyond_the_seat_count_shows_the_seat_page_and_creates_nobody(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    await provision(stack, stack.directory.users[0])
    used = await stack.seats_used(OKTA_TENANT)
    await stack.admin("PUT", f"/{OKTA_TENANT}/seats", {"seats": used})
    newcomer = stack.directory.users[3]
    await sign_in_from_sp(page, stack, OKTA_TENANT, newcomer, shots)
    await expect(page.locator("#seat-limit")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("administrator")
    await shots.take("seat-limit")

    assert await stack.users(OKTA_TENANT, newcomer.login) == []
    assert await stack.seats_used(OKTA_TENANT) == used
    assert await session_cookies(page.context) == []
    [entry, *_] = await stack.sso_log(OKTA_TENANT)
    assert entry["outcome"] == "refused" and "seat" in entry["reason"]


async def test_a_response_signed_by_an_unpinned_key_gets_the_generic_failure_page(
    stack: Stack, page: Page, shots: Screenshots, other_key: SigningKey
) -> None:
    await stack.admin(
        "PATCH",
        f"/{OKTA_TENANT}/sso",
        {"idp": {"certificates": [certificate_pem(other_key.certificate)]}},
    )
    person = stack.directory.users[4]
    await sign_in_from_sp(page, stack, OKTA_TENANT, person, shots)
    await expect(page.locator("#sso-error")).to_be_visible()
    await shots.take("failure")

    [entry, *_] = await stack.sso_log(OKTA_TENANT)
    assert entry["outcome"] == "refused"
    assert "signature does not verify" in entry["reason"]
    shown = (await page.content()).lower()
    for revealing in ("signature", "certificate", entry["reason"].lower()):
        assert revealing not in shown
    assert await stack.users(OKTA_TENANT, person.login) == []
    assert await session_cookies(page.context) == []


async def test_sign_out_ends_the_session_and_the_landing_page_offers_sign_in_again(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    person = stack.directory.users[5]
    await sign_in_from_sp(page, stack, OKTA_TENANT, person, shots)
    await expect_signed_in(page, OKTA_TENANT, person, shots)
    [cookie] = await session_cookies(page.context)
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (SESSION_COOKIE, True, "Lax")

    await page.locator("#sign-out").click()
    await expect(page.locator("#signed-out")).to_be_visible()
    await shots.take("signed-out")
    assert await session_cookies(page.context) == []
    await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/")
    await expect(page.locator("#sign-in-sso")).to_be_visible()
    await expect(page.locator("#signed-in-user")).to_have_count(0)


async def test_the_admin_test_sign_in_reports_the_assertion_without_a_session_or_a_user(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    await stack.admin("PATCH", f"/{OKTA_TENANT}/sso", {"enabled": False})
    person = stack.directory.users[0]
    link = await stack.admin("POST", f"/{OKTA_TENANT}/sso/test")
    await page.goto(link["url"])
    await pick_person(page, person, shots)
    await expect(page.locator("#test-result")).to_be_visible()
    await expect(page.locator("#test-email")).to_have_text(person.email)
    await expect(page.locator("#test-match")).to_contain_text("would create")
    await shots.take("test-report")

    assert await session_cookies(page.context) == []
    assert await stack.users(OKTA_TENANT, person.login) == []
    assert (await stack.sso_log(OKTA_TENANT))[0]["outcome"] == "test"
