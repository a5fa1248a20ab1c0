"""Just-in-time provisioning takes an email of a private directory domain (``corp.local``)."""

from __future__ import annotations

from tests.support.sso import Sso, person

WORK_EMAIL = {"value": "ada@corp.local", "type": "work", "primary": True}


async def test_jit_creates_a_user_with_a_private_domain_email(okta_sso: Sso) -> None:
    response = await okta_sso.sign_in(person("ada@corp.local"))

    assert response.status == 303, await okta_sso.last_reason()
    [user] = await okta_sso.users("ada@corp.local")
    assert user["emails"] == [WORK_EMAIL]


async def test_jit_sets_a_private_domain_email_on_an_existing_user(okta_sso: Sso) -> None:
    await okta_sso.scim.create_user("ada@corp.local")

    response = await okta_sso.sign_in(person("ada@corp.local"))

    assert response.status == 303, await okta_sso.last_reason()
    [user] = await okta_sso.users("ada@corp.local")
    assert user["emails"] == [WORK_EMAIL]
