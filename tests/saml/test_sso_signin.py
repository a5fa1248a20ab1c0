"""Sign-in through the ACS over HTTP: both flows, JIT, sessions, test mode, seats, relay state."""

from __future__ import annotations

import asyncio
import urllib.parse
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from idp_sim.saml import shapes
from idp_sim.saml.response import IdentityProvider
from samlkit.certs import SigningKey
from samlkit.namespaces import UNSPECIFIED_11
from scim_server.core.sso.service import safe_relay
from tests.support.scim import ADMIN
from tests.support.sso import Sso, person, set_seats, sign_out_form, with_form_token


async def test_sp_initiated_sign_in_creates_the_user_and_a_session(okta_sso: Sso) -> None:
    before = datetime.now(UTC)
    response = await okta_sso.sign_in(person("ada@example.com"))
    assert response.status == 303
    assert response.headers["Location"] == "/sso/acme/"
    cookie = response.cookies["scim_sso_acme"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/sso/acme/"
    assert not cookie["secure"]  # plain http here; https roots get Secure

    [user] = await okta_sso.users("ada@example.com")
    assert user["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert user["emails"] == [{"value": "ada@example.com", "type": "work", "primary": True}]
    assert user["active"] is True
    assert datetime.fromisoformat(user["meta"]["created"]) >= before.replace(microsecond=0)

    page = await okta_sso.client.get("/sso/acme/")
    text = await page.text()
    assert 'id="signed-in-user">ada@example.com<' in text
    assert 'id="signed-in-tenant">acme<' in text
    [entry, *_] = await okta_sso.log()
    assert entry["outcome"] == "signed_in" and entry["jit"] == "created"
    assert entry["flow"] == "sp"


async def test_idp_initiated_sign_in_is_accepted_and_follows_a_relative_relay_state(
    jumpcloud_sso: Sso,
) -> None:
    response = await jumpcloud_sso.post(jumpcloud_sso.response(person()), relay_state="/reports")
    assert response.status == 303
    assert response.headers["Location"] == "/reports"
    assert (await jumpcloud_sso.log())[0]["flow"] == "idp"


async def test_an_open_redirect_relay_state_falls_back_to_the_tenant_home(okta_sso: Sso) -> None:
    for relay in ("https://evil.test/", "//evil.test/x", "/\\evil.test", "javascript:alert(1)"):
        response = await okta_sso.post(okta_sso.response(person()), relay_state=relay)
        assert response.status == 303
        assert response.headers["Location"] == "/sso/acme/", relay
    assert safe_relay("/a/b?c=d#e", "/") == "/a/b?c=d#e"
    assert safe_relay("/a\r\nSet-Cookie: x", "/") == "/"


async def test_sp_initiated_relay_state_is_the_one_stored_with_the_request(okta_sso: Sso) -> None:
    request_id = await okta_sso.start(relay_state="/dashboard?tab=2")
    response = await okta_sso.post(
        okta_sso.response(person(), in_response_to=request_id), relay_state="/somewhere-else"
    )
    assert response.headers["Location"] == "/dashboard?tab=2"


async def test_a_later_sign_in_updates_the_mapped_attributes(okta_sso: Sso) -> None:
    await okta_sso.sign_in(person(last_name="Lovelace"))
    response = await okta_sso.sign_in(person(last_name="King"))
    assert response.status == 303
    [user] = await okta_sso.users("ada@example.com")
    assert user["name"]["familyName"] == "King"
    assert user["displayName"] == "Ada King"
    assert (await okta_sso.log())[0]["jit"] == "updated"
    again = await okta_sso.sign_in(person(last_name="King"))
    assert again.status == 303
    assert (await okta_sso.log())[0]["jit"] == "unchanged"


async def test_a_user_provisioned_by_scim_is_adopted_and_keeps_its_id(okta_sso: Sso) -> None:
    created = await okta_sso.scim.create_user("ada@example.com", externalId="00uada")
    response = await okta_sso.sign_in(person())
    assert response.status == 303
    [user] = await okta_sso.users("ada@example.com")
    assert user["id"] == created["id"]
    assert user["externalId"] == "00uada"
    assert user["meta"]["created"] == created["meta"]["created"]


async def test_the_same_email_from_another_idp_does_not_take_the_account_over(
    okta_sso: Sso, other_key: SigningKey
) -> None:
    assert (await okta_sso.sign_in(person())).status == 303
    intruder = IdentityProvider(shapes.jumpcloud(entity_id="https://evil-idp.test"), other_key)
    await okta_sso.configure(idp=intruder)
    response = await okta_sso.sign_in(person(), idp=intruder)
    assert response.status == 403
    assert "linked to another identity provider" in await okta_sso.last_reason()
    assert len(await okta_sso.users("ada@example.com")) == 1


async def test_a_user_deactivated_by_scim_cannot_sign_in_and_jit_does_not_reactivate(
    okta_sso: Sso,
) -> None:
    await okta_sso.sign_in(person())
    [user] = await okta_sso.users("ada@example.com")
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    assert (await okta_sso.scim.patch(f"/Users/{user['id']}", patch)).status == 200
    response = await okta_sso.sign_in(person())
    assert response.status == 403
    assert "Sign-in failed" in await response.text()
    assert "deactivated" in await okta_sso.last_reason()
    [user] = await okta_sso.users("ada@example.com")
    assert user["active"] is False
    # The earlier session dies with the account.
    page = await okta_sso.client.get("/sso/acme/")
    assert 'id="sign-in-sso"' in await page.text()


async def test_with_jit_off_an_unknown_person_is_refused_and_nothing_is_created(
    okta_sso: Sso,
) -> None:
    await okta_sso.configure(jit=False)
    response = await okta_sso.sign_in(person())
    assert response.status == 403
    assert "JIT provisioning is off" in await okta_sso.last_reason()
    assert await okta_sso.users("ada@example.com") == []


async def test_groups_are_assigned_only_from_the_allowlist(okta_sso: Sso) -> None:
    engineering = await okta_sso.scim.create_group("Engineering")
    await okta_sso.configure(allowed_groups=("Engineering", "Design"))
    await okta_sso.sign_in(person(groups=("Engineering", "Design", "Admins")))
    [user] = await okta_sso.users("ada@example.com")
    assert sorted(g["display"] for g in user["groups"]) == ["Design", "Engineering"]
    groups = await okta_sso.scim.get("/Groups", params={"filter": 'displayName eq "Admins"'})
    assert (await groups.json())["totalResults"] == 0

    # Leaving a group at the IdP removes the membership at the next sign-in.
    await okta_sso.sign_in(person(groups=("Design",)))
    [user] = await okta_sso.users("ada@example.com")
    assert [g["display"] for g in user["groups"]] == ["Design"]
    group = await (await okta_sso.scim.get(f"/Groups/{engineering['id']}")).json()
    assert group.get("members", []) == []


async def test_groups_outside_the_allowlist_that_scim_manages_are_left_alone(okta_sso: Sso) -> None:
    await okta_sso.sign_in(person())
    [user] = await okta_sso.users("ada@example.com")
    await okta_sso.scim.create_group("Payroll", members=[user["id"]])
    await okta_sso.configure(allowed_groups=("Engineering",))
    await okta_sso.sign_in(person(groups=("Engineering",)))
    [user] = await okta_sso.users("ada@example.com")
    assert sorted(g["display"] for g in user["groups"]) == ["Engineering", "Payroll"]


async def test_the_subject_can_come_from_an_attribute_so_two_orgs_keep_two_accounts(
    okta_sso: Sso, other_key: SigningKey
) -> None:
    shape = replace(
        shapes.okta(),
        attributes={
            "email": "email",
            "firstName": "first_name",
            "lastName": "last_name",
            "uid": "user_id",
        },
    )
    okta = IdentityProvider(shape, okta_sso.idp.key)
    await okta_sso.configure(idp=okta, name_id_source="attribute", name_id_attribute="uid")
    response = await okta_sso.sign_in(person(), idp=okta)
    assert response.status == 303
    subject = person().user_id
    [user] = await okta_sso.users(subject)
    assert user["emails"][0]["value"] == "ada@example.com"


async def test_a_replayed_response_is_refused(okta_sso: Sso) -> None:
    saml_response = okta_sso.response(person())
    assert (await okta_sso.post(saml_response)).status == 303
    again = await okta_sso.post(saml_response)
    assert again.status == 403
    assert "replay" in await okta_sso.last_reason()


async def test_a_response_to_a_request_is_usable_once_even_when_posted_concurrently(
    okta_sso: Sso,
) -> None:
    request_id = await okta_sso.start()
    saml_response = okta_sso.response(person(), in_response_to=request_id)
    statuses = sorted(
        r.status for r in await asyncio.gather(*(okta_sso.post(saml_response) for _ in range(5)))
    )
    assert statuses == [303, 403, 403, 403, 403]


async def test_an_unknown_in_response_to_is_refused(okta_sso: Sso) -> None:
    response = await okta_sso.post(okta_sso.response(person(), in_response_to="_deadbeef"))
    assert response.status == 403
    assert "answers no outstanding request" in await okta_sso.last_reason()


async def test_unsolicited_responses_are_refused_when_the_tenant_disallows_them(
    okta_sso: Sso,
) -> None:
    await okta_sso.configure(allow_idp_initiated=False)
    assert (await okta_sso.sign_in(person(), solicited=False)).status == 403
    assert "unsolicited" in await okta_sso.last_reason()
    assert (await okta_sso.sign_in(person(), solicited=True)).status == 303


async def test_a_disabled_connection_signs_nobody_in(okta_sso: Sso) -> None:
    await okta_sso.configure(enabled=False)
    login = await okta_sso.client.get("/sso/acme/saml/login", allow_redirects=False)
    assert login.status == 403
    assert (await okta_sso.sign_in(person(), solicited=False)).status == 403
    assert "disabled" in await okta_sso.last_reason()


async def test_key_rollover_accepts_either_pinned_certificate(
    okta_sso: Sso, other_key: SigningKey
) -> None:
    rolled = IdentityProvider(okta_sso.idp.shape, other_key)
    await okta_sso.configure(certificates=(okta_sso.idp.key.certificate, other_key.certificate))
    assert (await okta_sso.sign_in(person("old@example.com"))).status == 303
    assert (await okta_sso.sign_in(person("new@example.com"), idp=rolled)).status == 303
    await okta_sso.configure(certificates=(other_key.certificate,))
    assert (await okta_sso.sign_in(person("old@example.com"))).status == 403


async def test_the_name_id_format_is_enforced_when_configured(okta_sso: Sso) -> None:
    await okta_sso.configure(name_id_format=UNSPECIFIED_11)
    assert (await okta_sso.sign_in(person())).status == 403
    assert "NameID format" in await okta_sso.last_reason()


async def test_sign_out_ends_the_session(okta_sso: Sso) -> None:
    await okta_sso.sign_in(person())
    response = await okta_sso.client.post(
        "/sso/acme/logout", data=await sign_out_form(okta_sso.client)
    )
    assert response.status == 200
    assert [step.status for step in response.history] == [303]
    assert 'id="signed-out"' in await response.text()
    page = await okta_sso.client.get("/sso/acme/")
    assert 'id="sign-in-sso"' in await page.text()


async def test_a_session_cookie_of_one_tenant_means_nothing_to_another(
    okta_sso: Sso, other_scim: object
) -> None:
    response = await okta_sso.sign_in(person())
    token = response.cookies["scim_sso_acme"].value
    page = await okta_sso.client.get("/sso/globex/", cookies={"scim_sso_globex": token})
    assert 'id="signed-in-user"' not in await page.text()


async def test_a_test_sign_in_reports_the_assertion_without_a_session_or_a_user(
    okta_sso: Sso,
) -> None:
    await okta_sso.configure(enabled=False)  # testing comes before enabling
    ticket_url = await okta_sso.client.post("/admin/tenants/acme/sso/test", headers=ADMIN)
    assert ticket_url.status == 200, await ticket_url.text()
    url = urllib.parse.urlsplit((await ticket_url.json())["url"])
    ticket = urllib.parse.parse_qs(url.query)["test"][0]
    request_id = await okta_sso.start(test=ticket)
    response = await okta_sso.post(
        okta_sso.response(person(groups=("Engineering",)), in_response_to=request_id)
    )
    assert response.status == 200
    text = await response.text()
    assert 'id="test-email">ada@example.com<' in text
    assert "Engineering" in text
    assert "a sign-in would create one" in text
    assert "Set-Cookie" not in response.headers
    assert await okta_sso.users("ada@example.com") == []
    assert (await okta_sso.log())[0]["outcome"] == "test"


async def test_a_forged_test_ticket_starts_nothing(okta_sso: Sso) -> None:
    response = await okta_sso.client.get(
        "/sso/acme/saml/login", params={"test": "forged"}, allow_redirects=False
    )
    assert response.status == 403
    assert "test sign-in link" in await okta_sso.last_reason()


async def test_a_sign_in_beyond_the_seat_count_shows_the_seat_page_and_creates_nothing(
    okta_sso: Sso,
) -> None:
    await okta_sso.scim.create_user("first@example.com")
    await set_seats(okta_sso.client, "acme", 1)
    response = await okta_sso.sign_in(person())
    assert response.status == 403
    text = await response.text()
    assert 'id="seat-limit"' in text and "administrator" in text
    assert await okta_sso.users("ada@example.com") == []
    assert "1 seat" in await okta_sso.last_reason()


async def test_sp_metadata_names_the_acs_and_entity_id(okta_sso: Sso) -> None:
    response = await okta_sso.client.get("/sso/acme/saml/metadata")
    assert response.status == 200
    assert response.content_type == "application/samlmetadata+xml"
    text = await response.text()
    assert f'entityID="{okta_sso.sp.entity_id}"' in text
    assert f'Location="{okta_sso.sp.acs_url}"' in text


async def test_the_login_redirect_carries_a_request_for_this_sp(okta_sso: Sso) -> None:
    response = await okta_sso.client.get(
        "/sso/acme/saml/login", params={"RelayState": "/x"}, allow_redirects=False
    )
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}"
        == f"https://idp.example.test{okta_sso.idp.shape.sso_path}"
    )
    query = urllib.parse.parse_qs(location.query)
    assert query["RelayState"] == ["/x"]


async def test_a_post_without_a_saml_response_gets_the_generic_page(okta_sso: Sso) -> None:
    response = await okta_sso.client.post("/sso/acme/saml/acs", data={"x": "y"})
    assert response.status == 403
    assert response.content_type == "text/html"
    assert "no SAMLResponse" in await okta_sso.last_reason()


async def test_an_unforeseen_failure_in_the_acs_is_the_generic_page_and_a_log_entry(
    okta_sso: Sso, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A defect nobody foresaw (here injected into the verifier) must still look like every other
    failure to the browser, never a SCIM JSON 500, and must leave a trace in the SSO log."""

    def broken(*args: object) -> None:
        raise RuntimeError("an unforeseen defect")

    monkeypatch.setattr("scim_server.core.sso.service.consume_response", broken)
    response = await okta_sso.post(okta_sso.response(person()))
    assert response.status == 500
    assert response.content_type == "text/html"
    text = await response.text()
    assert 'id="sso-error"' in text and "unforeseen" not in text
    [entry, *_] = await okta_sso.log()
    assert entry["outcome"] == "error"
    assert entry["reason"] == "unexpected RuntimeError: an unforeseen defect"


async def test_an_unknown_tenant_gets_the_not_found_page(okta_sso: Sso) -> None:
    response = await okta_sso.client.post(
        "/sso/nosuch/saml/acs", data={"SAMLResponse": okta_sso.response(person())}
    )
    assert response.status == 404
    assert response.content_type == "text/html"
    assert "Page not found" in await response.text()


def test_settings_default_to_a_disabled_unconfigured_connection() -> None:
    from scim_server.core.sso.settings import SsoSettings

    assert not SsoSettings().ready
    assert not replace(SsoSettings(), enabled=True).ready


async def test_password_sign_in_works_while_sso_is_optional(okta_sso: Sso) -> None:
    await okta_sso.scim.create_user("bob@example.com", password="correct horse battery")
    page = await (await okta_sso.client.get("/sso/acme/")).text()
    assert 'id="password-form"' in page and 'id="sign-in-sso"' in page
    response = await okta_sso.client.post(
        "/sso/acme/password",
        data=await with_form_token(
            okta_sso.client,
            "/sso/acme/",
            {"username": "BOB@example.com", "password": "correct horse battery"},
        ),
        allow_redirects=False,
    )
    assert response.status == 303
    page = await (await okta_sso.client.get("/sso/acme/")).text()
    assert 'id="signed-in-user">bob@example.com<' in page
    assert 'id="signed-in-idp">password<' in page


async def test_a_wrong_password_and_an_unknown_user_look_the_same(okta_sso: Sso) -> None:
    await okta_sso.scim.create_user("bob@example.com", password="correct horse battery")
    wrong = await okta_sso.client.post(
        "/sso/acme/password",
        data=await with_form_token(
            okta_sso.client, "/sso/acme/", {"username": "bob@example.com", "password": "nope"}
        ),
    )
    unknown = await okta_sso.client.post(
        "/sso/acme/password",
        data=await with_form_token(
            okta_sso.client, "/sso/acme/", {"username": "eve@example.com", "password": "x"}
        ),
    )
    assert wrong.status == unknown.status == 403
    assert await wrong.text() == await unknown.text()
    entries = await okta_sso.log()
    assert [entry["reason"] for entry in entries] == ["wrong user name or password"] * 2
    assert "nope" not in str(entries)


async def test_enforced_sso_turns_password_sign_in_off_for_all_but_guests(okta_sso: Sso) -> None:
    await okta_sso.scim.create_user("bob@example.com", password="correct horse battery")
    await okta_sso.configure(enforced=True)
    page = await (await okta_sso.client.get("/sso/acme/")).text()
    assert 'id="guests-only"' in page and 'id="sign-in-sso"' in page
    response = await okta_sso.client.post(
        "/sso/acme/password",
        data=await with_form_token(
            okta_sso.client,
            "/sso/acme/",
            {"username": "bob@example.com", "password": "correct horse battery"},
        ),
    )
    assert response.status == 403
    assert "enforced" in await okta_sso.last_reason()


async def test_password_guessing_is_locked_out_after_five_failures(okta_sso: Sso) -> None:
    await okta_sso.scim.create_user("bob@example.com", password="correct horse battery")
    for guess in range(5):
        response = await okta_sso.client.post(
            "/sso/acme/password",
            data=await with_form_token(
                okta_sso.client,
                "/sso/acme/",
                {"username": "bob@example.com", "password": f"g{guess}"},
            ),
        )
        assert response.status == 403
    right = await okta_sso.client.post(
        "/sso/acme/password",
        data=await with_form_token(
            okta_sso.client,
            "/sso/acme/",
            {"username": "Bob@Example.com", "password": "correct horse battery"},
        ),
        allow_redirects=False,
    )
    assert right.status == 403
    assert "locked" in await okta_sso.last_reason()
    # Another user is not affected.
    await okta_sso.scim.create_user("carol@example.com", password="another good one")
    other = await okta_sso.client.post(
        "/sso/acme/password",
        data=await with_form_token(
            okta_sso.client,
            "/sso/acme/",
            {"username": "carol@example.com", "password": "another good one"},
        ),
        allow_redirects=False,
    )
    assert other.status == 303


async def test_a_successful_password_sign_in_clears_earlier_failures(okta_sso: Sso) -> None:
    await okta_sso.scim.create_user("bob@example.com", password="correct horse battery")
    for _ in range(2):
        for guess in range(4):
            await okta_sso.client.post(
                "/sso/acme/password",
                data=await with_form_token(
                    okta_sso.client,
                    "/sso/acme/",
                    {"username": "bob@example.com", "password": f"{guess}"},
                ),
            )
        right = await okta_sso.client.post(
            "/sso/acme/password",
            data=await with_form_token(
                okta_sso.client,
                "/sso/acme/",
                {"username": "bob@example.com", "password": "correct horse battery"},
            ),
            allow_redirects=False,
        )
        assert right.status == 303


async def test_first_sign_ins_of_two_people_into_a_new_group_share_one_group(
    okta_sso: Sso,
) -> None:
    await okta_sso.configure(allowed_groups=("*",))
    for n in range(4):
        people = [person(f"{who}{n}@example.com", groups=(f"Team {n}",)) for who in "ab"]
        answers = await asyncio.gather(
            *(okta_sso.sign_in(someone, solicited=False) for someone in people)
        )
        assert [answer.status for answer in answers] == [303, 303]
        groups = await okta_sso.scim.get("/Groups", params={"filter": f'displayName eq "Team {n}"'})
        [group] = (await groups.json())["Resources"]
        assert len({member["value"] for member in group["members"]}) == 2


async def test_a_group_deleted_after_jit_made_it_is_made_again_by_the_next_sign_in(
    okta_sso: Sso,
) -> None:
    await okta_sso.configure(allowed_groups=("*",))
    ada = person("ada@example.com", groups=("Pilots",))
    assert (await okta_sso.sign_in(ada, solicited=False)).status == 303
    found = await okta_sso.scim.get("/Groups", params={"filter": 'displayName eq "Pilots"'})
    [group] = (await found.json())["Resources"]
    assert (await okta_sso.scim.delete(f"/Groups/{group['id']}")).status == 204
    assert (await okta_sso.sign_in(ada, solicited=False)).status == 303
    again = await okta_sso.scim.get("/Groups", params={"filter": 'displayName eq "Pilots"'})
    [remade] = (await again.json())["Resources"]
    assert remade["id"] != group["id"] and len(remade["members"]) == 1


async def test_a_saml_response_is_refused_once_the_tenant_signs_in_with_another_protocol(
    okta_sso: Sso,
) -> None:
    """Switching to OIDC keeps the SAML IdP's settings (to switch back), not its ACS open."""
    await okta_sso.configure(protocol="oidc")
    response = await okta_sso.sign_in(person(), solicited=False)
    assert response.status == 403
    assert "signs in with oidc, not saml" in await okta_sso.last_reason()
    assert await okta_sso.users("ada@example.com") == []
