"""The sign-in rules around enforced single sign-on (docs/sso-rules.md): guests who keep their
password, password sessions that outlive the switch to SSO, and the one-time reset link that is
the way back in when the IdP is down. Real HTTP against the app, on a real SecantusDB."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from scim_server.web.state import SERVICES
from tests.support.events import awaited_events
from tests.support.scim import ADMIN
from tests.support.sso import Sso, with_form_token
from tests.support.urns import PATCH_OP

PASSWORD = "correct horse battery"


async def password_sign_in(sso: Sso, user_name: str, password: str = PASSWORD) -> Any:
    form = {"username": user_name, "password": password}
    return await sso.client.post(
        f"{sso.base}/password",
        data=await with_form_token(sso.client, f"{sso.base}/", form),
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


# -- the reset link ----------------------------------------------------------------------------

NEW_PASSWORD = "a brand new passphrase"


async def reset_link(sso: Sso, user_id: str, body: Any = None) -> Any:
    """``POST .../users/{id}/password-reset``, as the admin calls it; answers the response."""
    return await sso.client.post(
        f"/admin/tenants/{sso.tenant}/users/{user_id}/password-reset", json=body, headers=ADMIN
    )


async def issued_token(sso: Sso, user_id: str, body: Any = None) -> str:
    """A fresh reset link's token: what follows the ``#`` of its URL."""
    response = await reset_link(sso, user_id, body)
    assert response.status == 201, await response.text()
    url = (await response.json())["url"]
    assert url.startswith(f"http://127.0.0.1:{sso.client.port}{sso.base}/password-reset#")
    return str(url.split("#", 1)[1])


async def set_password(
    sso: Sso, token: str, password: str = NEW_PASSWORD, confirm: str | None = None
) -> Any:
    """Post the reset page's form, as the browser does once the page read the token."""
    form = {
        "token": token,
        "password": password,
        "confirm": password if confirm is None else confirm,
    }
    page = f"{sso.base}/password-reset"
    form = await with_form_token(sso.client, page, form)
    return await sso.client.post(page, data=form, allow_redirects=False)


async def test_a_reset_link_sets_a_password_once_and_the_user_signs_in_with_it(
    okta_sso: Sso,
) -> None:
    user = await okta_sso.scim.create_user("bob@example.com")
    before = datetime.now(UTC)
    response = await reset_link(okta_sso, user["id"])
    assert response.status == 201, await response.text()
    issued = await response.json()
    expires = datetime.fromisoformat(issued["expires_at"])
    assert before + timedelta(minutes=15) <= expires <= datetime.now(UTC) + timedelta(minutes=15)
    assert (issued["user_id"], issued["user_name"]) == (user["id"], "bob@example.com")
    token = issued["url"].split("#", 1)[1]

    page = await okta_sso.client.get(f"{okta_sso.base}/password-reset")
    assert page.status == 200
    assert 'id="reset-form"' in await page.text()
    done = await set_password(okta_sso, token)
    assert done.status == 200
    assert 'id="password-set"' in await done.text()
    # Set through SCIM's own rules: an event names the password, never its value.
    events = await awaited_events(okta_sso.client, okta_sso.tenant, 2)
    changed = events[-1]
    assert (changed["type"], changed["attributes"]) == ("user.updated", ["password"])
    assert changed["client"] == {"via": "sso"} and NEW_PASSWORD not in str(events)
    assert (await password_sign_in(okta_sso, "bob@example.com", NEW_PASSWORD)).status == 303

    again = await set_password(okta_sso, token, "yet another passphrase")
    assert again.status == 403
    assert "This link cannot be used" in await again.text()
    outcomes = [(entry["outcome"], entry["flow"]) for entry in await okta_sso.log()]
    assert outcomes == [
        ("refused", "password_reset"),
        ("signed_in", "password"),
        ("password_set", "password_reset"),
        ("reset_link_issued", "password_reset"),
    ]
    assert "already used" in (await okta_sso.log())[0]["reason"]


async def test_setting_a_password_by_reset_link_ends_the_users_sessions(okta_sso: Sso) -> None:
    user = await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    assert (await password_sign_in(okta_sso, "bob@example.com")).status == 303
    assert await signed_in_as(okta_sso) == "bob@example.com"
    assert (await set_password(okta_sso, await issued_token(okta_sso, user["id"]))).status == 200
    assert await signed_in_as(okta_sso) is None
    assert (await password_sign_in(okta_sso, "bob@example.com")).status == 403


async def test_a_password_sign_in_racing_a_reset_leaves_no_session_behind(okta_sso: Sso) -> None:
    """A sign-in that checked the old password just before a reset set a new one must not open
    a session the reset's ending of sessions missed: whatever the interleaving, once both have
    answered the browser is signed in as no one. Each round starts the sign-in a little later
    into the reset, so the rounds sweep the window; a sign-in with the new password after each
    round clears the failures the lost races count (and its session is the next reset's to end)."""
    user = await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    old, sign_ins = PASSWORD, []
    for round_ in range(24):
        new = f"{NEW_PASSWORD} {round_}"
        token = await issued_token(okta_sso, user["id"])
        credentials = {"username": "bob@example.com", "password": old}
        sign_in = await with_form_token(okta_sso.client, f"{okta_sso.base}/", credentials)
        reset = await with_form_token(
            okta_sso.client,
            f"{okta_sso.base}/password-reset",
            {"token": token, "password": new, "confirm": new},
        )

        async def signing_in(delay: float, form: dict[str, str] = sign_in) -> int:
            await asyncio.sleep(delay)
            answer = await okta_sso.client.post(
                f"{okta_sso.base}/password", data=form, allow_redirects=False
            )
            return int(answer.status)

        signed_in, reset_answer = await asyncio.gather(
            signing_in(round_ % 6 * 0.01),
            okta_sso.client.post(f"{okta_sso.base}/password-reset", data=reset),
        )
        assert reset_answer.status == 200, await reset_answer.text()
        sign_ins.append(signed_in)
        assert await signed_in_as(okta_sso) is None, f"round {round_}: a session outlived a reset"
        assert (await admin(okta_sso, "GET", "/sessions"))["sessions"] == [], f"round {round_}"
        assert (await password_sign_in(okta_sso, "bob@example.com", new)).status == 303
        old = new
    assert set(sign_ins) <= {303, 403}


async def test_a_password_set_through_scim_ends_the_sessions_opened_with_the_old_one(
    okta_sso: Sso,
) -> None:
    """The sibling of the race: the IdP setting the password over SCIM (Okta's password push)
    also leaves the sessions opened with the old one standing no longer, on every use and in
    the admin's list; a change of anything else keeps them."""
    user = await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    assert (await password_sign_in(okta_sso, "bob@example.com")).status == 303
    renamed = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title",
               "value": "Engineer"}]}  # fmt: skip
    assert (await okta_sso.scim.patch(f"/Users/{user['id']}", renamed)).status == 200
    assert await signed_in_as(okta_sso) == "bob@example.com"
    pushed = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "password",
              "value": NEW_PASSWORD}]}  # fmt: skip
    assert (await okta_sso.scim.patch(f"/Users/{user['id']}", pushed)).status == 200
    assert await signed_in_as(okta_sso) is None
    assert (await admin(okta_sso, "GET", "/sessions"))["sessions"] == []
    assert (await password_sign_in(okta_sso, "bob@example.com", NEW_PASSWORD)).status == 303
    assert await signed_in_as(okta_sso) == "bob@example.com"


async def test_an_expired_reset_link_is_refused_with_the_generic_page(okta_sso: Sso) -> None:
    user = await okta_sso.scim.create_user("bob@example.com")
    token = await issued_token(okta_sso, user["id"], {"ttl_seconds": 60})
    resets = okta_sso.client.app[SERVICES].sso.repository.password_resets
    await resets.update_many(
        {"tenant": okta_sso.tenant}, {"$set": {"expires": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    response = await set_password(okta_sso, token)
    assert response.status == 403
    assert "This link cannot be used" in await response.text()
    assert "expired" in await okta_sso.last_reason()


async def test_passwords_that_differ_or_are_short_leave_the_link_usable(okta_sso: Sso) -> None:
    user = await okta_sso.scim.create_user("bob@example.com")
    token = await issued_token(okta_sso, user["id"])
    differ = await set_password(okta_sso, token, NEW_PASSWORD, "another passphrase")
    short = await set_password(okta_sso, token, "short")
    assert differ.status == short.status == 400
    assert "Password not set" in await differ.text()
    assert (await set_password(okta_sso, token)).status == 200


async def test_reset_links_are_refused_while_sso_is_enforced_except_for_guests(
    okta_sso: Sso,
) -> None:
    member = await okta_sso.scim.create_user("bob@example.com")
    guest = await okta_sso.scim.create_user("guest@partner.example", userType="Guest")
    await okta_sso.configure(enforced=True)
    refused = await reset_link(okta_sso, member["id"])
    assert refused.status == 409
    error = await refused.json()
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert "enforced" in error["detail"]
    token = await issued_token(okta_sso, guest["id"])
    assert (await set_password(okta_sso, token)).status == 200
    assert (await password_sign_in(okta_sso, "guest@partner.example", NEW_PASSWORD)).status == 303


async def test_a_link_issued_before_enforcement_is_refused_once_sso_is_enforced(
    okta_sso: Sso,
) -> None:
    user = await okta_sso.scim.create_user("bob@example.com")
    token = await issued_token(okta_sso, user["id"])
    await admin(okta_sso, "PATCH", "/sso", {"enforced": True})
    response = await set_password(okta_sso, token)
    assert response.status == 403
    assert "enforced" in await okta_sso.last_reason()


async def test_reset_link_requests_the_admin_api_refuses_get_scim_errors(okta_sso: Sso) -> None:
    user = await okta_sso.scim.create_user("bob@example.com")
    gone = await okta_sso.scim.create_user("carol@example.com", active=False)
    cases = [
        (await reset_link(okta_sso, "no-such-user"), 404),
        (await reset_link(okta_sso, gone["id"]), 409),
        (await reset_link(okta_sso, user["id"], {"ttl_seconds": 0}), 400),
        (await reset_link(okta_sso, user["id"], {"ttl_seconds": 3601}), 400),
        (await reset_link(okta_sso, user["id"], {"ttl_seconds": True}), 400),
        (await reset_link(okta_sso, user["id"], {"ttl": 60}), 400),
        (await reset_link(okta_sso, user["id"], [1]), 400),
        (
            await okta_sso.client.post(
                f"/admin/tenants/nobody/users/{user['id']}/password-reset", headers=ADMIN
            ),
            404,
        ),
    ]
    for response, status in cases:
        assert response.status == status, await response.text()
        error = await response.json()
        assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


async def test_a_reset_page_post_without_a_token_or_a_wrong_one_gets_the_generic_page(
    okta_sso: Sso,
) -> None:
    page = f"{okta_sso.base}/password-reset"
    missing = await okta_sso.client.post(
        page, data=await with_form_token(okta_sso.client, page, {"password": NEW_PASSWORD})
    )
    forged = await set_password(okta_sso, "A" * 43)
    assert (missing.status, forged.status) == (400, 403)
    for response in (missing, forged):
        assert response.content_type == "text/html"
        assert "This link cannot be used" in await response.text()


async def test_concurrent_uses_of_one_reset_link_set_one_password(okta_sso: Sso) -> None:
    user = await okta_sso.scim.create_user("bob@example.com")
    for _ in range(3):
        token = await issued_token(okta_sso, user["id"])
        passwords = [f"{NEW_PASSWORD} {n}" for n in range(4)]
        answers = await asyncio.gather(*(set_password(okta_sso, token, p) for p in passwords))
        assert sorted(answer.status for answer in answers) == [200, 403, 403, 403]
        [kept] = [p for p, answer in zip(passwords, answers, strict=True) if answer.status == 200]
        assert (await password_sign_in(okta_sso, "bob@example.com", kept)).status == 303


async def test_the_clear_token_is_in_no_log_line_and_no_log_entry(
    okta_sso: Sso, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = await okta_sso.scim.create_user("bob@example.com")
    token = await issued_token(okta_sso, user["id"])
    await okta_sso.client.get(f"{okta_sso.base}/password-reset")
    assert (await set_password(okta_sso, token)).status == 200
    assert (await set_password(okta_sso, token)).status == 403
    lines = [f"{record.getMessage()} {record.__dict__}" for record in caplog.records]
    assert any("request" in line for line in lines)  # the access log was on
    assert not [line for line in lines if token in line]
    assert token not in str(await okta_sso.log())
    services = okta_sso.client.app[SERVICES]
    stored = await services.sso.repository.password_resets.database["journal"].find().to_list()
    assert token not in str(stored)


async def test_a_new_reset_link_replaces_the_users_earlier_one(okta_sso: Sso) -> None:
    bob = await okta_sso.scim.create_user("bob@example.com")
    carol = await okta_sso.scim.create_user("carol@example.com")
    first = await issued_token(okta_sso, bob["id"])
    carols = await issued_token(okta_sso, carol["id"])
    second = await issued_token(okta_sso, bob["id"])
    assert (await set_password(okta_sso, first)).status == 403
    assert (await set_password(okta_sso, second)).status == 200
    assert (await set_password(okta_sso, carols)).status == 200


def sign_ins(outcome: str, protocol: str = "password") -> float:
    """The ``scim_sign_ins_total`` count of this protocol and outcome, in this process."""
    labels = {"protocol": protocol, "outcome": outcome}
    return REGISTRY.get_sample_value("scim_sign_ins_total", labels) or 0.0


async def test_reset_links_are_counted_as_password_sign_in_steps_not_saml(okta_sso: Sso) -> None:
    user = await okta_sso.scim.create_user("bob@example.com")
    before = {outcome: sign_ins(outcome) for outcome in ("reset_link_issued", "password_set")}
    saml_before = sign_ins("password_set", protocol="saml")
    assert (await set_password(okta_sso, await issued_token(okta_sso, user["id"]))).status == 200
    assert sign_ins("reset_link_issued") == before["reset_link_issued"] + 1
    assert sign_ins("password_set") == before["password_set"] + 1
    assert sign_ins("password_set", protocol="saml") == saml_before
