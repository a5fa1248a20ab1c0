"""The sign-in rules around enforced single sign-on (docs/sso-rules.md): guests who keep their
password, password sessions that outlive the switch to SSO, and the one-time reset link that is
the way back in when the IdP is down. Real HTTP against the app, on a real SecantusDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scim_server.web.state import SERVICES
from tests.support.scim import ADMIN
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


# -- password sessions and enforcement -----------------------------------------------------------


async def expire_sessions(sso: Sso) -> None:
    """Move the tenant's stored sessions past their expiry, as the passing of their TTL would."""
    sessions = sso.client.app[SERVICES].sso.repository.sessions.collection
    await sessions.update_many(
        {"tenant": sso.tenant}, {"$set": {"expires": datetime.now(UTC) - timedelta(seconds=1)}}
    )


async def admin(sso: Sso, method: str, path: str, body: Any = None) -> Any:
    response = await sso.client.request(
        method, f"/admin/tenants/{sso.tenant}{path}", json=body, headers=ADMIN
    )
    assert response.status in (200, 201), await response.text()
    return await response.json()


async def test_turning_enforcement_on_records_when_it_began_until_it_is_turned_off(
    okta_sso: Sso,
) -> None:
    before = datetime.now(UTC)
    view = await admin(okta_sso, "PATCH", "/sso", {"enforced": True})
    began = datetime.fromisoformat(view["enforced_since"])
    assert before <= began <= datetime.now(UTC)
    # Another change, or enforcing again, keeps the moment enforcement began.
    view = await admin(okta_sso, "PATCH", "/sso", {"enforced": True, "jit": False})
    assert datetime.fromisoformat(view["enforced_since"]) == began
    # What GET answers can be PUT back: enforced_since is read-only.
    shown = await admin(okta_sso, "GET", "/sso")
    assert (await admin(okta_sso, "PUT", "/sso", shown))["enforced_since"] == view["enforced_since"]
    assert (await admin(okta_sso, "PATCH", "/sso", {"enforced": False}))["enforced_since"] is None


async def test_a_password_session_opened_before_enforcement_stands_until_it_expires(
    okta_sso: Sso,
) -> None:
    await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    assert (await password_sign_in(okta_sso, "bob@example.com")).status == 303
    await admin(okta_sso, "PATCH", "/sso", {"enforced": True})
    assert await signed_in_as(okta_sso) == "bob@example.com"
    [listed] = (await admin(okta_sso, "GET", "/sessions"))["sessions"]
    assert listed["issuer"] == "password"
    # Once it has expired, the way in is single sign-on: the password is refused.
    await expire_sessions(okta_sso)
    assert await signed_in_as(okta_sso) is None
    assert (await password_sign_in(okta_sso, "bob@example.com")).status == 403


async def test_a_password_session_of_a_guest_ends_when_the_user_is_no_longer_a_guest(
    okta_sso: Sso,
) -> None:
    guest = await okta_sso.scim.create_user(
        "guest@partner.example", password=PASSWORD, userType="Guest"
    )
    await okta_sso.configure(enforced=True)
    assert (await password_sign_in(okta_sso, "guest@partner.example")).status == 303
    assert await signed_in_as(okta_sso) == "guest@partner.example"
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userType", "value": "Member"}],
    }
    response = await okta_sso.scim.patch(f"/Users/{guest['id']}", patch)
    assert response.status == 200, await response.text()
    # Opened under enforcement by someone who is no longer a guest: it could not be opened
    # now, so it is not accepted now, neither by the pages nor in the admin's list.
    assert await signed_in_as(okta_sso) is None
    assert (await admin(okta_sso, "GET", "/sessions"))["sessions"] == []


async def test_a_password_session_opened_between_two_enforcements_stands(okta_sso: Sso) -> None:
    await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    await admin(okta_sso, "PATCH", "/sso", {"enforced": True})
    await admin(okta_sso, "PATCH", "/sso", {"enforced": False})
    assert (await password_sign_in(okta_sso, "bob@example.com")).status == 303
    await admin(okta_sso, "PATCH", "/sso", {"enforced": True})
    assert await signed_in_as(okta_sso) == "bob@example.com"
