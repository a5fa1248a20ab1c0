"""WS-Federation sign-in and sign-out end to end in headless Chromium: the SP on 127.0.0.1 and
idp_sim's Entra-shaped STS on localhost (two sites to the browser), a person clicking through
both, and the result checked through SCIM and the admin API. Over plain HTTP the STS's
cross-site POST arrives without the Lax binding cookie, so this also drives the one-time repost
from the SP's own site. Pages are photographed under test-artifacts/browser/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from idp_sim.directory import Directory
from idp_sim.saml.webapp import IdpServerConfig, create_idp_app
from idp_sim.wsfed.token import RelyingParty
from idp_sim.wsfed.webapp import HostedWsFedApp
from samlkit.certs import SigningKey
from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.browser import (
    IDP_HOST,
    Screenshots,
    Stack,
    chromium,
    create_tenant,
    expect_signed_in,
    fresh_page,
    loopback_socket,
    port_of,
    serving,
    sign_in_from_sp,
)

TENANT = "acme"


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with chromium() as browser:
        yield await fresh_page(browser)


@pytest.fixture
async def stack(settings: Settings, mongo_db: Any, sts_key: SigningKey) -> AsyncIterator[Stack]:
    """The SP with tenant acme signing in at an Entra-shaped STS, connected by its federation
    metadata and enabled."""
    directory = Directory.generate(seed=11, users=3, groups=2, members_per_group=3)
    sp_socket, idp_socket = loopback_socket(), loopback_socket()
    sp_url = f"http://127.0.0.1:{port_of(sp_socket)}"
    idp_url = f"http://{IDP_HOST}:{port_of(idp_socket)}"
    base = f"{sp_url}/sso/{TENANT}/wsfed"
    app = HostedWsFedApp(RelyingParty(base, f"{base}/reply"))
    idp = create_idp_app(
        IdpServerConfig(key=sts_key, directory=directory, apps=(), wsfed_apps=(app,))
    )
    sp = create_app(replace(settings, public_url=sp_url))
    async with serving(sp, sp_socket), aiohttp.ClientSession(base_url=sp_url) as http:
        tenant = await create_tenant(http, TENANT)
        async with serving(idp, idp_socket):
            stack = Stack(sp_url, idp_url, http, directory, {TENANT: tenant})
            await stack.admin("PATCH", f"/{TENANT}/sso", {"protocol": "wsfed"})
            await stack.admin(
                "POST", f"/{TENANT}/sso/metadata", {"url": idp_url + app.shape.metadata_path}
            )
            await stack.admin(
                "PATCH",
                f"/{TENANT}/sso",
                {
                    "enabled": True,
                    "preset": "entra",
                    "allowed_groups": [directory.groups[0].name],
                },
            )
            yield stack


async def test_a_person_signs_in_and_out_through_the_entra_sts(
    stack: Stack, page: Page, request: pytest.FixtureRequest
) -> None:
    shots = Screenshots(page, request.node.name)
    person = stack.directory.users[0]
    await sign_in_from_sp(page, stack, TENANT, person, shots)
    await expect_signed_in(page, TENANT, person, shots)
    [user] = await stack.users(TENANT, person.email)
    assert user["name"] == {"givenName": person.given_name, "familyName": person.family_name}
    [entry, *_] = await stack.sso_log(TENANT)
    assert (entry["outcome"], entry["protocol"], entry["jit"]) == ("signed_in", "wsfed", "created")

    await page.locator("#sign-out").click()
    await expect(page.locator("#signed-out")).to_be_visible()
    assert page.url == f"{stack.sp_url}/sso/{TENANT}/signed-out", page.url
    await shots.take("signed-out")
