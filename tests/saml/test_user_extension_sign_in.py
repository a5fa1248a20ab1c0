"""Just-in-time provisioning in a tenant with its own User extension: a sign-in builds the user
with the tenant's model, so a user carrying the extension's values signs in, is updated, and
keeps them."""

from __future__ import annotations

from tests.support.sso import Sso, person
from tests.support.urns import PATCH_OP
from tests.support.user_extensions import ACME, define


async def test_a_sign_in_updates_a_user_carrying_the_tenants_extension_and_keeps_it(
    okta_sso: Sso,
) -> None:
    assert (await define(okta_sso.scim)).status == 200
    created = await okta_sso.sign_in(person(last_name="Lovelace"))
    assert created.status == 303
    [user] = await okta_sso.users("ada@example.com")
    badge = {"op": "add", "path": f"{ACME}:badge", "value": "B-1"}
    patched = await okta_sso.scim.patch(
        f"/Users/{user['id']}", {"schemas": [PATCH_OP], "Operations": [badge]}
    )
    assert patched.status == 200, await patched.text()

    updated = await okta_sso.sign_in(person(last_name="King"))
    assert updated.status == 303, await okta_sso.last_reason()
    [user] = await okta_sso.users("ada@example.com")
    assert user["name"]["familyName"] == "King"
    assert user[ACME] == {"badge": "B-1"}
    assert (await okta_sso.log())[0]["jit"] == "updated"
