"""The real-browser SSO harness: both servers on loopback TCP ports, tenants configured through
the admin API the way an admin would, and helpers that drive Chromium through the pages.

The SP is addressed as ``127.0.0.1`` and the IdP as ``localhost`` (both listen on 127.0.0.1):
two different sites to the browser, as an IdP and an SP are in production, so the SameSite
rules that govern the cross-site POST to the ACS and the redirect after it are exercised.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright, expect

from idp_sim.directory import Directory, DirectoryUser
from idp_sim.saml.response import ServiceProvider
from idp_sim.saml.shapes import IdpShape, jumpcloud, okta
from idp_sim.saml.webapp import HostedApp, IdpServerConfig, create_idp_app
from samlkit.certs import SigningKey
from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.scim import ADMIN

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SKIP_VARIABLE = "SCIM_SKIP_BROWSER"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"

SP_HOST = "127.0.0.1"
IDP_HOST = "localhost"
OKTA_TENANT = "acme"
JUMPCLOUD_TENANT = "globex"
SHAPES: dict[str, IdpShape] = {
    OKTA_TENANT: okta(app_name=OKTA_TENANT),
    JUMPCLOUD_TENANT: jumpcloud(custom_value=JUMPCLOUD_TENANT),
}


def chromium_executable() -> str:
    """The system Chromium, or a test failure that says how to get it.

    A missing browser fails rather than skips: a silently skipped end-to-end suite looks
    green while proving nothing. ``SCIM_SKIP_BROWSER=1`` is the explicit opt-out.
    """
    if os.environ.get(SKIP_VARIABLE) == "1":
        pytest.skip(f"{SKIP_VARIABLE}=1: real-browser tests skipped")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"the real-browser SSO tests need Debian's Chromium at {CHROMIUM}: run "
            f"`make browser` (apt-get install chromium), or set {SKIP_VARIABLE}=1 to "
            "skip them",
            pytrace=False,
        )
    return str(CHROMIUM)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, with the suite's flags (``chromium_executable`` says what
    happens when it is missing)."""
    executable = chromium_executable()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def fresh_page(browser: Browser) -> Page:
    """A page in a fresh profile (no IdP session or SP cookie carries over), at the suite's
    window size, waiting at most 10 s for anything."""
    context = await browser.new_context(viewport={"width": 1000, "height": 700})
    context.set_default_timeout(10_000)
    return await context.new_page()


@asynccontextmanager
async def browser_page() -> AsyncIterator[Page]:
    """A fresh page (``fresh_page``) in a Chromium of its own, for a test that drives one."""
    async with chromium() as browser:
        yield await fresh_page(browser)


class Screenshots:
    """Writes ``<test>-<step>.png`` for one test, checking each file really holds an image."""

    def __init__(self, page: Page, test_name: str) -> None:
        self.page = page
        self.prefix = test_name.removeprefix("test_")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    async def take(self, step: str) -> Path:
        path = ARTIFACTS / f"{self.prefix}-{step}.png"
        # An earlier run's file must not stand in for a screenshot that was never written.
        path.unlink(missing_ok=True)
        await self.page.screenshot(path=path, full_page=True)
        assert path.is_file() and path.stat().st_size > 0, path
        return path


@asynccontextmanager
async def serving(app: web.Application, sock: socket.socket) -> AsyncIterator[None]:
    """Run ``app`` on an already bound socket (so its URL can be known before it starts)."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        yield
    finally:
        await runner.cleanup()


def loopback_socket() -> socket.socket:
    return socket.create_server(("127.0.0.1", 0))


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


@dataclass
class Tenant:
    name: str
    token: str
    sp: ServiceProvider
    """The SP's entity ID and ACS as the admin API shows them, pasted into the IdP app."""


@dataclass
class Stack:
    """The running SP and IdP, and what a test needs to drive and inspect them."""

    sp_url: str
    idp_url: str
    http: aiohttp.ClientSession
    """Bound to the SP: the admin API and the tenants' SCIM APIs, as an operator calls them."""
    directory: Directory
    tenants: dict[str, Tenant]

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        """An admin API call under /admin/tenants that must succeed; answers its JSON."""
        async with self.http.request(
            method, f"/admin/tenants{path}", json=body, headers=ADMIN
        ) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def users(self, tenant: str, user_name: str) -> list[dict[str, Any]]:
        """The tenant's SCIM users with this userName, read through the SCIM API."""
        token = self.tenants[tenant].token
        async with self.http.get(
            f"/scim/v2/{tenant}/Users",
            params={"filter": f'userName eq "{user_name}"'},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            assert response.status == 200, await response.text()
            return list((await response.json())["Resources"])

    async def sso_log(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's sign-in log, newest first, as the admin reads it."""
        return list((await self.admin("GET", f"/{tenant}/sso/log"))["entries"])

    async def seats_used(self, tenant: str) -> int:
        return int((await self.admin("GET", f"/{tenant}/seats"))["used"])

    def scim_base(self, tenant: str) -> str:
        return f"{self.sp_url}/scim/v2/{tenant}"


async def create_tenant(http: aiohttp.ClientSession, name: str) -> Tenant:
    async with http.post("/admin/tenants", json={"name": name}, headers=ADMIN) as response:
        assert response.status == 201, await response.text()
        token = (await response.json())["token"]
    async with http.get(f"/admin/tenants/{name}/sso", headers=ADMIN) as response:
        assert response.status == 200, await response.text()
        sp = (await response.json())["service_provider"]
    return Tenant(name, token, ServiceProvider(entity_id=sp["entity_id"], acs_url=sp["acs_url"]))


def idp_app(key: SigningKey, directory: Directory, tenants: dict[str, Tenant]) -> web.Application:
    """The IdP with one app per tenant, each registered for that tenant's SP values."""
    apps = [HostedApp(shape, tenants[name].sp) for name, shape in SHAPES.items()]
    return create_idp_app(IdpServerConfig(key=key, directory=directory, apps=apps))


async def connect_tenant(stack: Stack, tenant: str, allowed_groups: list[str]) -> None:
    """What an admin does: import the IdP app's metadata by URL, then switch SSO on."""
    shape = SHAPES[tenant]
    await stack.admin(
        "POST", f"/{tenant}/sso/metadata", {"url": stack.idp_url + shape.metadata_path}
    )
    view = await stack.admin(
        "PATCH",
        f"/{tenant}/sso",
        {"enabled": True, "preset": shape.vendor, "allowed_groups": allowed_groups},
    )
    assert view["idp"]["entity_id"] == shape.entity_id
    assert view["idp"]["sso_url"] == stack.idp_url + shape.sso_path


@asynccontextmanager
async def running_stack(
    settings: Settings, key: SigningKey, directory: Directory
) -> AsyncIterator[Stack]:
    """The SP (on the test's database) and the IdP, both tenants connected and enabled.

    Each tenant allows exactly the IdP's first group, so the allowlist has work to do:
    every person in ``directory`` should be in more groups than that.
    """
    sp_socket, idp_socket = loopback_socket(), loopback_socket()
    sp_url = f"http://{SP_HOST}:{port_of(sp_socket)}"
    idp_url = f"http://{IDP_HOST}:{port_of(idp_socket)}"
    sp = create_app(replace(settings, public_url=sp_url))
    async with serving(sp, sp_socket), aiohttp.ClientSession(base_url=sp_url) as http:
        tenants = {name: await create_tenant(http, name) for name in SHAPES}
        async with serving(idp_app(key, directory, tenants), idp_socket):
            stack = Stack(sp_url, idp_url, http, directory, tenants)
            for name in SHAPES:
                await connect_tenant(stack, name, [directory.groups[0].name])
            yield stack


async def pick_person(page: Page, person: DirectoryUser, shots: Screenshots) -> None:
    """On the IdP's sign-in page: photograph it and choose ``person``; the IdP then posts
    the response to the SP's ACS from its auto-submitting form."""
    await expect(page.get_by_test_id("page-signin")).to_be_visible()
    assert page.url.startswith(f"http://{IDP_HOST}:"), page.url
    await shots.take("idp-signin")
    await page.get_by_test_id(f"user-{person.login}").click()


async def sign_in_from_sp(
    page: Page, stack: Stack, tenant: str, person: DirectoryUser, shots: Screenshots
) -> None:
    """SP-initiated: the tenant's landing page, its SSO button, then the IdP's sign-in page."""
    await page.goto(f"{stack.sp_url}/sso/{tenant}/")
    await shots.take("sp-signin")
    await page.locator("#sign-in-sso").click()
    await pick_person(page, person, shots)


async def expect_signed_in(
    page: Page, tenant: str, person: DirectoryUser, shots: Screenshots
) -> None:
    """Back at the SP, on the tenant's signed-in page, showing who and where."""
    await expect(page.locator("#signed-in-user")).to_have_text(person.login)
    await expect(page.locator("#signed-in-tenant")).to_have_text(tenant)
    assert page.url.startswith(f"http://{SP_HOST}:"), page.url
    await shots.take("signed-in")
