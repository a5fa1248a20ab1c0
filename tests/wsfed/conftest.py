"""WS-Federation fixtures: tenant ``acme`` signing in at idp_sim's Entra-shaped STS."""

from __future__ import annotations

import pytest

from idp_sim.saml.shapes import entra_wsfed
from idp_sim.wsfed.token import WsFedIdp
from samlkit.certs import SigningKey
from tests.support.scim import Scim
from tests.support.wsfed import WsFed, connect_wsfed


@pytest.fixture(scope="session")
def sts_key() -> SigningKey:
    return SigningKey.generate("idp-sim WS-Federation STS")


@pytest.fixture(params=["2.0", "1.1"], ids=["saml2", "saml11"])
async def entra(scim: Scim, sts_key: SigningKey, request: pytest.FixtureRequest) -> WsFed:
    """The tenant's STS, its tokens carrying a SAML 2.0 assertion (Entra ID's) or a SAML 1.1
    one (AD FS's default for WS-Federation): every test runs with both."""
    return await connect_wsfed(scim, WsFedIdp(entra_wsfed(), sts_key, request.param))
