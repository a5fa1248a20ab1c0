"""OpenID Connect sign-in end to end in headless Chromium: the SP on 127.0.0.1 and idp_sim's
Okta-shaped OpenID provider on localhost (two sites to the browser), a person clicking through
both sites' pages, and the result checked through SCIM and the admin API. Pages are
photographed under test-artifacts/browser/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page

from idp_sim.directory import Directory
from idp_sim.oidc.provider import okta_oidc
from idp_sim.oidc.webapp import HostedOidcApp
from idp_sim.saml.webapp import IdpServerConfig, create_idp_app
from samlkit.certs import SigningKey
from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.browser import (
    IDP_HOST,
    OKTA_TENANT,
    SP_HOST,
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
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with chromium() as browser:
        yield await fresh_page(browser)


@pytest.fixture
async def stack(settings: Settings, mongo_db: Any, oidc_key: SigningKey) -> AsyncIterator[Stack]:
    """The SP with tenant acme signing in at an Okta-shaped OpenID provider, enabled."""
    directory = Directory.generate(seed=11, users=3, groups=2, members_per_group=3)
    sp_socket, idp_socket = loopback_socket(), loopback_socket()
    sp_url = f"http://{SP_HOST}:{port_of(sp_socket)}"
    idp_url = f"http://{IDP_HOST}:{port_of(idp_socket)}"
    shape = okta_oidc()
    client = HostedOidcApp(
        shape, CLIENT_ID, CLIENT_SECRET, (f"{sp_url}/sso/{OKTA_TENANT}/oidc/callback",)
    )
    idp = create_idp_app(
        IdpServerConfig(key=oidc_key, directory=directory, apps=(), oidc_apps=(client,))
    )
    sp = create_app(replace(settings, public_url=sp_url))
    async with serving(sp, sp_socket), aiohttp.ClientSession(base_url=sp_url) as http:
        tenant = await create_tenant(http, OKTA_TENANT)
        async with serving(idp, idp_socket):
            stack = Stack(sp_url, idp_url, http, directory, {OKTA_TENANT: tenant})
            await stack.admin(
                "PUT",
                f"/{OKTA_TENANT}/sso",
                {
                    "protocol": "oidc",
                    "enabled": True,
                    "preset": "okta",
                    "allowed_groups": [directory.groups[0].name],
                    "oidc": {
                        "issuer": idp_url + shape.issuer_path,
                        "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET,
                        "scopes": ["openid", "email", "profile", "groups"],
                    },
                },
            )
            yield stack


async def test_a_person_signs_in_through_the_okta_oidc_provider_and_is_created_just_in_time(
    stack: Stack, page: Page, request: pytest.FixtureRequest
) -> None:
    shots = Screenshots(page, request.node.name)
    person = stack.directory.users[0]
    await sign_in_from_sp(page, stack, OKTA_TENANT, person, shots)
    await expect_signed_in(page, OKTA_TENANT, person, shots)
    [user] = await stack.users(OKTA_TENANT, person.email)
    assert user["name"] == {"givenName": person.given_name, "familyName": person.family_name}
    assert [group["display"] for group in user["groups"]] == [stack.directory.groups[0].name]
    [entry, *_] = await stack.sso_log(OKTA_TENANT)
    assert (entry["outcome"], entry["protocol"], entry["jit"]) == ("signed_in", "oidc", "created")
