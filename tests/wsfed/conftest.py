"""WS-Federation fixtures: tenant ``acme`` signing in at idp_sim's Entra-shaped STS."""

from __future__ import annotations

import pytest

from idp_sim.saml.shapes import entra_wsfed
from idp_sim.wsfed.token import WsFedIdp
from samlkit.certs import SigningKey
from tests.support.scim import Scim
from tests.support.wsfed import WsFed, relying_party


@pytest.fixture(scope="session")
def sts_key() -> SigningKey:
    return SigningKey.generate("idp-sim WS-Federation STS")


@pytest.fixture
async def entra(scim: Scim, sts_key: SigningKey) -> WsFed:
    sso = WsFed(
        scim.client, scim, WsFedIdp(entra_wsfed(), sts_key), relying_party(scim.client, "acme")
    )
    await sso.configure()
    return sso
