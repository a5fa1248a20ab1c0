"""SAML fixtures: the IdP signing keys, and a tenant with SSO configured against idp_sim's IdP.

Every response is built at test time by idp_sim's own IdP with ``now`` injected, so
nothing here expires and nothing needs the network.
"""

from __future__ import annotations

import pytest

from idp_sim.saml import shapes
from samlkit.certs import SigningKey
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
