"""Single sign-on end to end in headless Chromium: the SP and the simulated IdP on real ports,
a person clicking through both sites' pages, and the result checked through SCIM and the
admin API. Every page reached is photographed under test-artifacts/browser/.

The acme tenant is connected to an Okta-shaped IdP app, globex to a JumpCloud-shaped one;
both are configured by importing the IdP's metadata from its URL, as an admin would.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page, expect

from idp_sim.directory import Directory, DirectoryUser
from idp_sim.profiles import build_profile
from samlkit.certs import SigningKey, certificate_pem
from scim_server.config import Settings
from tests.support.browser import (
    IDP_HOST,
    JUMPCLOUD_TENANT,
    OKTA_TENANT,
    Screenshots,
    Stack,
    expect_signed_in,
    loopback_socket,
    pick_person,
    port_of,
    running_stack,
    sign_in_from_sp,
)
from tests.support.scim import ADMIN
from tests.support.urns import USER

SESSION_COOKIE = f"scim_sso_{OKTA_TENANT}"


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


# -- the pages themselves: words, sign-out landing, icon, branding ------------------------------

PASSWORD = "correct horse battery"


async def create_password_user(stack: Stack, user_name: str) -> None:
    """A user with a password, created through the tenant's SCIM API."""
    async with stack.http.post(
        f"/scim/v2/{OKTA_TENANT}/Users",
        json={"schemas": [USER], "userName": user_name, "password": PASSWORD},
        headers={"Authorization": f"Bearer {stack.tenants[OKTA_TENANT].token}"},
    ) as response:
        assert response.status == 201, await response.text()


async def sign_in_with_password(page: Page, stack: Stack, user_name: str, password: str) -> None:
    await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/")
    await page.locator("#username").fill(user_name)
    await page.locator("#password").fill(password)
    await page.locator("#sign-in-password").click()


async def test_a_wrong_password_says_so_and_leads_back_to_the_form(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    await create_password_user(stack, "bob@example.com")
    await sign_in_with_password(page, stack, "bob@example.com", "not the password")
    await expect(page.locator("#sso-error")).to_have_text("Sign-in failed")
    await expect(page.locator("#what-happened")).to_contain_text("user name or password")
    await expect(page.locator("main")).not_to_contain_text("identity provider")
    await shots.take("wrong-password")

    await page.locator("#back").click()
    await expect(page.locator("#password-form")).to_be_visible()


async def test_sign_out_lands_on_a_page_that_a_reload_does_not_post_again(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    await create_password_user(stack, "bob@example.com")
    await sign_in_with_password(page, stack, "bob@example.com", PASSWORD)
    await expect(page.locator("#signed-in-user")).to_have_text("bob@example.com")
    sent: list[tuple[str, str]] = []
    page.on("request", lambda request: sent.append((request.method, request.url)))

    await page.locator("#sign-out").click()
    await expect(page.locator("#signed-out")).to_have_text("You are signed out")
    landing = f"{stack.sp_url}/sso/{OKTA_TENANT}/signed-out"
    assert page.url == landing
    await page.reload()
    await expect(page.locator("#signed-out")).to_be_visible()
    await shots.take("signed-out-reloaded")

    logout = f"{stack.sp_url}/sso/{OKTA_TENANT}/logout"
    documents = [entry for entry in sent if not entry[1].endswith((".svg", ".ico"))]
    assert documents == [("POST", logout), ("GET", landing), ("GET", landing)]
    await page.locator("#sign-in-again").click()
    await expect(page.locator("#password-form")).to_be_visible()
    assert await session_cookies(page.context) == []


async def test_the_browser_loads_the_favicon_and_nothing_on_the_pages_fails(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    """The browser fetches the icon the page links (without one it asks /favicon.ico, which
    answered 404 before); it loads, and the console shows no failed resource."""
    failed: list[str] = []
    errors: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda request: failed.append(f"failed {request.url}"))
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )

    async with page.expect_response(f"{stack.sp_url}/favicon.svg") as fetched:
        await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/")
    icon = await fetched.value
    assert icon.ok
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert (await icon.text()).startswith("<svg")
    await shots.take("sign-in-page")
    assert failed == [] and errors == []


@asynccontextmanager
async def https_logo_server(key: SigningKey, folder: Path) -> AsyncIterator[str]:
    """An https site (a self-signed certificate, which the test's browser context accepts)
    serving a 64 by 32 SVG logo; yields the logo's URL."""
    (folder / "key.pem").write_bytes(key.private_key_pem())
    (folder / "cert.pem").write_text(certificate_pem(key.certificate))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(folder / "cert.pem", folder / "key.pem")

    async def logo(request: web.Request) -> web.Response:
        svg = (
            '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="32">'
            '<rect width="64" height="32" fill="#aa3300"/></svg>'
        )
        return web.Response(text=svg, content_type="image/svg+xml")

    app = web.Application()
    app.router.add_get("/brand/logo.svg", logo)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = loopback_socket()
    try:
        await web.SockSite(runner, sock, ssl_context=tls).start()
        yield f"https://{IDP_HOST}:{port_of(sock)}/brand/logo.svg"
    finally:
        await runner.cleanup()


async def test_a_branded_page_shows_the_name_the_logo_and_the_accent_colour(
    stack: Stack, browser: Browser, idp_key: SigningKey, tmp_path: Path
) -> None:
    context = await browser.new_context(
        viewport={"width": 1000, "height": 700}, ignore_https_errors=True
    )
    page = await context.new_page()
    shots = Screenshots(page, "test_a_branded_page")
    try:
        async with https_logo_server(idp_key, tmp_path) as logo_url:
            branding = {
                "display_name": "Acme Corp",
                "logo_url": logo_url,
                "accent_color": "#AA3300",
            }
            await stack.admin("PATCH", f"/{OKTA_TENANT}/sso", {"branding": branding})
            await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/")
            await expect(page.locator("#brand-name")).to_have_text("Acme Corp")
            await expect(page.locator("h1")).to_have_text("Sign in to Acme Corp")
            logo = page.locator("#brand-logo")
            await expect(logo).to_have_attribute("src", logo_url)
            await page.wait_for_function("document.getElementById('brand-logo').complete")
            assert await logo.evaluate("img => img.naturalWidth") == 64
            accent = "rgb(170, 51, 0)"
            button = page.locator("#sign-in-sso")
            await expect(button).to_have_css("background-color", accent)
            await expect(button).to_have_css("color", "rgb(255, 255, 255)")
            await expect(page.locator("#brand")).to_have_css("border-bottom-color", accent)
            await shots.take("branded")

            await page.locator("#username").fill("nobody@example.com")
            await page.locator("#password").fill("wrong")
            await page.locator("#sign-in-password").click()
            await expect(page.locator("#sso-error")).to_be_visible()
            await expect(page.locator("#brand-name")).to_have_text("Acme Corp")
            await expect(page.locator("#back")).to_have_css("color", accent)
            await shots.take("branded-failure")
    finally:
        await context.close()


async def test_a_light_accent_gets_dark_button_text_and_dark_links(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    await stack.admin("PATCH", f"/{OKTA_TENANT}/sso", {"branding": {"accent_color": "#ffd23f"}})
    await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/")
    button = page.locator("#sign-in-sso")
    await expect(button).to_have_css("background-color", "rgb(255, 210, 63)")
    await expect(button).to_have_css("color", "rgb(29, 35, 48)")
    await shots.take("light-accent")
    # Links on the white page are not drawn in a colour that does not read on it.
    await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/nowhere")
    await expect(page.locator("#back")).to_have_css("color", "rgb(29, 35, 48)")


async def test_markup_in_the_display_name_is_shown_as_text_and_never_runs(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    name = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await stack.admin("PATCH", f"/{OKTA_TENANT}/sso", {"branding": {"display_name": name}})
    await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/")
    await expect(page.locator("#brand-name")).to_have_text(name)
    await expect(page.locator("#tenant")).to_have_text(name)
    assert await page.locator("img, script").count() == 0
    assert await page.title() == f"Sign in to {name}"
    await shots.take("markup-name")
    assert dialogs == []


async def test_a_javascript_logo_url_is_refused_with_a_400_naming_the_field(
    stack: Stack, page: Page, shots: Screenshots
) -> None:
    async with stack.http.patch(
        f"/admin/tenants/{OKTA_TENANT}/sso",
        json={"branding": {"logo_url": "javascript:alert(document.cookie)"}},
        headers=ADMIN,
    ) as response:
        assert response.status == 400
        error = await response.json()
    assert error["scimType"] == "invalidValue"
    assert error["detail"].startswith("branding.logo_url must be an https URL")
    await page.goto(f"{stack.sp_url}/sso/{OKTA_TENANT}/")
    await expect(page.locator("#brand-name")).to_have_text(OKTA_TENANT)
    await expect(page.locator("#brand-logo")).to_have_count(0)
    await shots.take("unbranded")
