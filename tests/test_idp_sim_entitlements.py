"""idp_sim's ``okta-entitlements`` profile against our server: Okta with Identity Governance.

It discovers the app's entitlements as Okta does (``/ResourceTypes`` → ``/Schemas`` → each
endpoint paged) and pushes users carrying one of each type in ``entitlements`` and ``roles``;
the server keeps and returns them. On a tenant that serves no entitlement type the profile is
the OIN template's, with the discovery calls before.
"""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from idp_sim.profiles.okta_entitlements import OktaEntitlements
from tests.support.entitlements import entitlement_app
from tests.support.idp_runs import run_lifecycle, user_state
from tests.support.scim import Scim


async def test_okta_discovers_the_entitlements_and_pushes_users_carrying_them(
    client: TestClient, scim: Scim
) -> None:
    await entitlement_app(scim)
    profile, summary = await run_lifecycle(client, scim, "okta-entitlements")
    assert isinstance(profile, OktaEntitlements)
    assert summary.failures == []
    paths = [(e.method, e.path) for e in profile.transport.journal.entries]
    discovery = paths.index(("GET", "/ResourceTypes"))
    assert paths[discovery : discovery + 5] == [
        ("GET", "/ResourceTypes"),
        ("GET", "/Schemas"),
        ("GET", "/Roles?startIndex=1&count=100"),
        ("GET", "/Entitlements?startIndex=1&count=100"),
        ("GET", "/Licenses?startIndex=1&count=100"),
    ]
    assert {name: len(resources) for name, (_, resources) in profile.catalogue.items()} == {
        "Role": 3,
        "Entitlement": 1,
        "License": 2,
    }
    for user_id, scim_id in profile.user_links.items():
        granted = profile.grants[user_id]
        assert [v["type"] for v in granted["roles"]] == ["Role"]
        assert [v["type"] for v in granted["entitlements"]] == ["Entitlement", "License"]
        status, stored = await user_state(scim, scim_id)
        assert status == 200
        assert stored["roles"] == granted["roles"]
        assert stored["entitlements"] == granted["entitlements"]


async def test_without_entitlement_types_the_profile_pushes_plain_users(
    client: TestClient, scim: Scim
) -> None:
    profile, summary = await run_lifecycle(client, scim, "okta-entitlements")
    assert summary.failures == []
    assert isinstance(profile, OktaEntitlements) and profile.catalogue == {}
    for scim_id in profile.user_links.values():
        _, stored = await user_state(scim, scim_id)
        assert "entitlements" not in stored and "roles" not in stored
