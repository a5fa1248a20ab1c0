"""SAML fixtures: the IdP signing keys, a tenant with SSO configured against idp_sim's IdP, and
the real browser of the browser tests (one Chromium per module, a fresh profile per test).

Every response is built at test time by idp_sim's own IdP with ``now`` injected, so
nothing here expires and nothing needs the network.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page

from idp_sim.saml import shapes
from samlkit.certs import SigningKey
from tests.support.browser import Screenshots, chromium, fresh_page
from tests.support.scim import Scim
from tests.support.sso import Sso, connect_sso


@pytest.fixture(scope="session")
def idp_key() -> SigningKey:
    return SigningKey.generate("idp-sim test IdP")


@pytest.fixture(scope="session")
def other_key() -> SigningKey:
    return SigningKey.generate("another IdP")


@pytest.fixture
async def okta_sso(scim: Scim, idp_key: SigningKey) -> Sso:
    return await connect_sso(scim, shapes.okta(), idp_key)


@pytest.fixture
async def jumpcloud_sso(scim: Scim, idp_key: SigningKey) -> Sso:
    return await connect_sso(scim, shapes.jumpcloud(), idp_key)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a fresh profile per test: no IdP session or SP cookie carries over."""
    page = await fresh_page(browser)
    yield page
    await page.context.close()


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(page, request.node.name)
