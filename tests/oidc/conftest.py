"""OIDC fixtures: the provider's key, and tenant ``acme`` signing in at idp_sim's Okta-shaped or
Entra-shaped provider on a loopback port, with the same people as the SAML tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from idp_sim.oidc.provider import entra_oidc, okta_oidc
from samlkit.certs import SigningKey
from tests.support.oidc import Oidc, directory, oidc_provider
from tests.support.scim import Scim

PEOPLE = directory(
    ("ada@example.com", ("Engineering",)),
    ("grace@example.com", ("Engineering", "Admins")),
    ("alan@example.com", ()),
)


@pytest.fixture(scope="session")
def oidc_key() -> SigningKey:
    return SigningKey.generate("idp-sim OIDC provider")


@pytest.fixture
async def okta(scim: Scim, oidc_key: SigningKey) -> AsyncIterator[Oidc]:
    async with oidc_provider(scim, okta_oidc(), oidc_key, PEOPLE) as sso:
        await sso.configure()
        yield sso


@pytest.fixture
async def entra(scim: Scim, oidc_key: SigningKey) -> AsyncIterator[Oidc]:
    """Entra-shaped, its overage threshold at one group so two groups go to userinfo."""
    async with oidc_provider(scim, entra_oidc(overage_at=1), oidc_key, PEOPLE) as sso:
        await sso.configure()
        yield sso
