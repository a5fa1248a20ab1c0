"""The identity-provider family of a ``User-Agent``: the one classification logs and metrics use."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp_sim.profiles.entra import ENTRA_USER_AGENT
from idp_sim.profiles.okta_oin import OKTA_USER_AGENT
from scim_server.core.clients import FAMILIES, idp_family


@pytest.mark.parametrize(
    ("user_agent", "family"),
    [
        (OKTA_USER_AGENT, "okta"),
        ("OKTA SCIM Integration", "okta"),
        ("Okta SCIM Client 2.3.1 (okta.com)", "okta"),
        (ENTRA_USER_AGENT, "entra"),
        ("Azure AD SCIM Provisioning", "entra"),
        ("Microsoft Entra ID provisioning", "entra"),
        ("Azure Active Directory SCIM", "entra"),
        ("JumpCloud SCIM Client/1.0", "jumpcloud"),
        ("jumpcloud-provisioning", "jumpcloud"),
    ],
)
def test_each_identity_providers_user_agent_names_its_family(user_agent: str, family: str) -> None:
    assert idp_family(user_agent) == family


@pytest.mark.parametrize(
    "user_agent",
    [
        None,
        "",
        "curl/8.5.0",
        "Python/3.11 aiohttp/3.10",
        "Centralis/2.0",
        "Oktavian",
        "Mozilla/5.0",
    ],
)
def test_any_other_or_no_user_agent_is_other(user_agent: str | None) -> None:
    assert idp_family(user_agent) == "other"


def test_only_the_start_of_a_long_user_agent_is_read() -> None:
    assert idp_family("x" * 600 + " Okta") == "other"
    assert idp_family("Okta " + "x" * 8000) == "okta"


@given(st.one_of(st.none(), st.text()))
def test_every_user_agent_gets_one_of_the_known_families(user_agent: str | None) -> None:
    assert idp_family(user_agent) in FAMILIES
