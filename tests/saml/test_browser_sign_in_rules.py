"""The sign-in rules around enforced single sign-on, in headless Chromium (docs/sso-rules.md):
a guest's password sign-in while SSO is enforced, the reset link that is the way back in when
the IdP is down, a password session that outlives the switch to SSO until it expires, and a
password form another site posts (login CSRF), refused.
The tenant (acme) is connected to the Okta-shaped IdP of the browser harness and configured
through the admin API, as an admin would; every page reached is photographed under
test-artifacts/browser/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, expect
from pymongo.asynchronous.database import AsyncDatabase

from idp_sim.directory import Directory
from samlkit.certs import SigningKey
from scim_server.config import Settings
from tests.support.browser import (
    OKTA_TENANT,
    Screenshots,
    Stack,
    browser_page,
    loopback_socket,
    port_of,
    running_stack,
    serving,
)
from tests.support.scim import ADMIN
from tests.support.sso import form_token
from tests.support.urns import USER

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def shots(request: pytest.FixtureRequest) -> AsyncIterator[Screenshots]:
    """A fresh page in a Chromium of its own (``shots.page``), photographed as the test goes."""
    async with browser_page() as page:
        yield Screenshots(page, request.node.name)


@pytest.fixture
async def stack(
    settings: Settings, mongo_db: AsyncDatabase[Any], idp_key: SigningKey
) -> AsyncIterator[Stack]:
    directory = Directory.generate(seed=11, users=2, groups=2, members_per_group=2)
    async with running_stack(settings, idp_key, directory) as running:
        yield running


async def provision(stack: Stack, user_name: str, **attributes: Any) -> str:
    """Create a user through the tenant's SCIM API, as its IdP would; answers the SCIM id."""
    token = stack.tenants[OKTA_TENANT].token
    async with stack.http.post(
        f"/scim/v2/{OKTA_TENANT}/Users",
        json={"schemas": [USER], "userName": user_name, **attributes},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["id"])


async def enforce(stack: Stack, enforced: bool) -> None:
    view = await stack.admin("PATCH", f"/{OKTA_TENANT}/sso", {"enforced": enforced})
    assert view["enforced"] is enforced


async def reset_link(stack: Stack, user_id: str) -> str:
    """The admin's ``POST .../users/{id}/password-reset``: the link's URL."""
    async with stack.http.post(
        f"/admin/tenants/{OKTA_TENANT}/users/{user_id}/password-reset", headers=ADMIN
    ) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["url"])


async def sign_in_with_password(page: Page, stack: Stack, user_name: str, password: str) -> None:
    """The tenant's landing page, its password form filled in and sent."""
    await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/")
    await page.locator("#username").fill(user_name)
    await page.locator("#password").fill(password)
    await page.locator("#sign-in-password").click()


async def set_new_password(page: Page, url: str, password: str) -> None:
    """Open a reset link, as from the message that brought it (a page load, never a mere change
    of fragment on the reset page already open), and set ``password`` on its page."""
    await page.goto("about:blank")
    await page.goto(url)
    await expect(page.locator("#reset-form")).to_be_visible()
    await page.locator("#new-password").fill(password)
    await page.locator("#confirm-password").fill(password)
    await page.locator("#set-password").click()


async def expect_password_session(page: Page, user_name: str) -> None:
    await expect(page.locator("#signed-in-user")).to_have_text(user_name)
    await expect(page.locator("#signed-in-idp")).to_have_text("password")


async def test_a_guest_signs_in_with_a_password_while_sso_is_enforced(
    stack: Stack, shots: Screenshots
) -> None:
    page = shots.page
    await provision(stack, "guest@partner.example", password=PASSWORD, userType="Guest")
    await provision(stack, "bob@example.com", password=PASSWORD, userType="Member")
    await enforce(stack, True)

    await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/")
    await expect(page.locator("#sign-in-sso")).to_be_visible()
    await expect(page.locator("#guests-only")).to_be_visible()
    await shots.take("enforced-sign-in")
    await sign_in_with_password(page, stack, "guest@partner.example", PASSWORD)
    await expect_password_session(page, "guest@partner.example")
    await shots.take("guest-signed-in")
    await page.locator("#sign-out").click()
    await expect(page.locator("#signed-out")).to_be_visible()

    await sign_in_with_password(page, stack, "bob@example.com", PASSWORD)
    await expect(page.locator("#sso-error")).to_have_text("Sign-in failed")
    await shots.take("member-refused")
    refused, guest = (await stack.sso_log(OKTA_TENANT))[:2]
    assert (refused["outcome"], refused["user_name"]) == ("refused", "bob@example.com")
    assert "not a guest" in refused["reason"]
    assert (guest["outcome"], guest["user_name"], guest["guest"]) == (
        "signed_in",
        "guest@partner.example",
        True,
    )


async def test_the_reset_link_is_the_way_back_in_when_the_idp_is_down(
    stack: Stack, shots: Screenshots, mongo_db: AsyncDatabase[Any]
) -> None:
    page = shots.page
    user_id = await provision(stack, "bob@example.com")
    await enforce(stack, True)
    # The IdP is down: the admin turns enforcement off and issues a reset link.
    await enforce(stack, False)
    url = await reset_link(stack, user_id)

    await page.goto(url)
    await expect(page.locator("#reset-form")).to_be_visible()
    assert "#" not in page.url  # the token left the address bar once the page read it
    await shots.take("reset-page")
    await set_new_password(page, url, NEW_PASSWORD)
    await expect(page.locator("#password-set-user")).to_have_text("bob@example.com")
    await shots.take("password-set")
    await page.locator("#sign-in-again").click()
    await page.locator("#username").fill("bob@example.com")
    await page.locator("#password").fill(NEW_PASSWORD)
    await page.locator("#sign-in-password").click()
    await expect_password_session(page, "bob@example.com")
    await shots.take("signed-in")

    # The link does not work twice.
    await set_new_password(page, url, "yet another passphrase")
    await expect(page.locator("#sso-error")).to_have_text("This link cannot be used")
    await shots.take("link-used")

    # An expired link is refused with the same generic page.
    expired = await reset_link(stack, user_id)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await mongo_db["password_resets"].update_many({}, {"$set": {"expires": past}})
    await set_new_password(page, expired, "yet another passphrase")
    await expect(page.locator("#sso-error")).to_have_text("This link cannot be used")
    await shots.take("link-expired")

    reasons = [entry.get("reason", "") for entry in await stack.sso_log(OKTA_TENANT)]
    assert "expired" in reasons[0] and "already used" in reasons[2]


async def test_a_password_session_from_before_enforcement_lasts_until_it_expires(
    stack: Stack, shots: Screenshots, mongo_db: AsyncDatabase[Any]
) -> None:
    page = shots.page
    await provision(stack, "bob@example.com", password=PASSWORD)
    await sign_in_with_password(page, stack, "bob@example.com", PASSWORD)
    await expect_password_session(page, "bob@example.com")
    await shots.take("signed-in-before")

    await enforce(stack, True)
    await page.reload()
    await expect_password_session(page, "bob@example.com")
    await shots.take("still-signed-in")

    # Its TTL passes: from then on the way in is single sign-on.
    past = datetime.now(UTC) - timedelta(seconds=1)
    await mongo_db["sso_sessions"].update_many({}, {"$set": {"expires": past}})
    await page.reload()
    await expect(page.locator("#sign-in-sso")).to_be_visible()
    await shots.take("session-expired")
    await sign_in_with_password(page, stack, "bob@example.com", PASSWORD)
    await expect(page.locator("#sso-error")).to_have_text("Sign-in failed")
    await shots.take("password-refused")


async def test_another_sites_page_cannot_sign_the_browser_in_to_the_attackers_account(
    stack: Stack, shots: Screenshots
) -> None:
    """Login CSRF: a page on another site (``localhost`` is another site than ``127.0.0.1``)
    posts the attacker's user name and password, with the form token the attacker's own
    browser was given, from the person's browser, which has opened the sign-in page before.
    The form is refused with the generic page, and the person is signed in as no one."""
    page = shots.page
    await provision(stack, "mallory@example.com", password=PASSWORD)
    home = f"{stack.sp_url}/sso/{OKTA_TENANT}/"
    attackers_token = await form_token(stack.http, f"/sso/{OKTA_TENANT}/")
    fields = {"username": "mallory@example.com", "password": PASSWORD}
    inputs = "".join(
        f'<input type="hidden" name="{name}" value="{value}">'
        for name, value in {**fields, "form_token": attackers_token}.items()
    )
    attacker = web.Application()

    async def lure(request: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text=f'<form id="f" method="post" action="{home}password">{inputs}</form>'
            '<script>document.getElementById("f").submit()</script>',
        )

    attacker.router.add_get("/", lure)
    sock = loopback_socket()
    async with serving(attacker, sock):
        await page.goto(home)
        await expect(page.locator("#password-form")).to_be_visible()
        await page.goto(f"http://localhost:{port_of(sock)}/")
        await expect(page.locator("#sso-error")).to_have_text("This form cannot be accepted")
        await shots.take("forged-form-refused")
    await page.goto(home)
    await expect(page.locator("#password-form")).to_be_visible()
    assert not [c for c in await page.context.cookies() if c["name"].startswith("scim_sso_")]
    [refused] = await stack.sso_log(OKTA_TENANT)
    assert refused["outcome"] == "refused" and "form token" in refused["reason"]


async def test_another_sites_page_cannot_sign_the_browser_out(
    stack: Stack, shots: Screenshots
) -> None:
    """Logout CSRF: a page on another site posts the sign-out form from the person's signed-in
    browser. The form is refused with the generic page, and the person is still signed in."""
    page = shots.page
    await provision(stack, "bob@example.com", password=PASSWORD)
    home = f"{stack.sp_url}/sso/{OKTA_TENANT}/"
    await page.goto(home)
    await sign_in_with_password(page, stack, "bob@example.com", PASSWORD)
    await expect_password_session(page, "bob@example.com")
    attacker = web.Application()

    async def lure(request: web.Request) -> web.Response:
        return web.Response(
            content_type="text/html",
            text=f'<form id="f" method="post" action="{home}logout"></form>'
            '<script>document.getElementById("f").submit()</script>',
        )

    attacker.router.add_get("/", lure)
    sock = loopback_socket()
    async with serving(attacker, sock):
        await page.goto(f"http://localhost:{port_of(sock)}/")
        await expect(page.locator("#sso-error")).to_have_text("This form cannot be accepted")
        await shots.take("forged-sign-out-refused")
    await page.goto(home)
    await expect_password_session(page, "bob@example.com")
    await page.locator("#sign-out").click()
    await expect(page.locator("#signed-out")).to_be_visible()
