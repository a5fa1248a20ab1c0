"""The sign-in rules around enforced single sign-on (docs/sso-rules.md): guests who keep their
password, password sessions that outlive the switch to SSO, and the one-time reset link that is
the way back in when the IdP is down. Real HTTP against the app, on a real SecantusDB."""

from __future__ import annotations

from typing import Any

from tests.support.sso import Sso

PASSWORD = "correct horse battery"


async def password_sign_in(sso: Sso, user_name: str, password: str = PASSWORD) -> Any:
    return await sso.client.post(
        f"{sso.base}/password",
        data={"username": user_name, "password": password},
        allow_redirects=False,
    )


async def signed_in_as(sso: Sso) -> str | None:
    """Who the client's cookie signs in as on the tenant's home page, if anyone."""
    page = await (await sso.client.get(f"{sso.base}/")).text()
    start = page.find('id="signed-in-user">')
    if start < 0:
        return None
    return page[start + len('id="signed-in-user">') :].split("<", 1)[0]


# -- guests ------------------------------------------------------------------------------------


async def test_a_guest_signs_in_with_a_password_while_sso_is_enforced(okta_sso: Sso) -> None:
    await okta_sso.scim.create_user("guest@partner.example", password=PASSWORD, userType="Guest")
    await okta_sso.configure(enforced=True)
    page = await (await okta_sso.client.get(f"{okta_sso.base}/")).text()
    assert 'id="password-form"' in page and 'id="sign-in-sso"' in page
    response = await password_sign_in(okta_sso, "guest@partner.example")
    assert response.status == 303
    assert await signed_in_as(okta_sso) == "guest@partner.example"
    [entry, *_] = await okta_sso.log()
    assert (entry["outcome"], entry["flow"], entry["guest"]) == ("signed_in", "password", True)


async def test_a_member_is_refused_a_password_sign_in_while_sso_is_enforced(
    okta_sso: Sso,
) -> None:
    await okta_sso.scim.create_user("bob@example.com", password=PASSWORD, userType="Member")
    await okta_sso.configure(enforced=True)
    response = await password_sign_in(okta_sso, "bob@example.com")
    assert response.status == 403
    assert "Sign-in failed" in await response.text()
    reason = await okta_sso.last_reason()
    assert "enforced" in reason and "not a guest" in reason
    assert await signed_in_as(okta_sso) is None


async def test_the_guest_user_type_is_the_tenants_to_choose_and_compared_without_case(
    okta_sso: Sso,
) -> None:
    await okta_sso.scim.create_user("ext@partner.example", password=PASSWORD, userType="external")
    await okta_sso.scim.create_user("old@partner.example", password=PASSWORD, userType="Guest")
    await okta_sso.configure(enforced=True, guest_user_type="External")
    assert (await password_sign_in(okta_sso, "ext@partner.example")).status == 303
    assert (await password_sign_in(okta_sso, "old@partner.example")).status == 403


async def test_no_guest_user_type_means_no_password_sign_in_under_enforcement(
    okta_sso: Sso,
) -> None:
    await okta_sso.scim.create_user("guest@partner.example", password=PASSWORD, userType="Guest")
    await okta_sso.configure(enforced=True, guest_user_type=None)
    page = await (await okta_sso.client.get(f"{okta_sso.base}/")).text()
    assert 'id="password-form"' not in page
    assert (await password_sign_in(okta_sso, "guest@partner.example")).status == 403


async def test_a_guest_with_a_wrong_password_is_refused_as_anyone_else(okta_sso: Sso) -> None:
    await okta_sso.scim.create_user("guest@partner.example", password=PASSWORD, userType="Guest")
    await okta_sso.configure(enforced=True)
    response = await password_sign_in(okta_sso, "guest@partner.example", "nope")
    assert response.status == 403
    assert await okta_sso.last_reason() == "wrong user name or password"
