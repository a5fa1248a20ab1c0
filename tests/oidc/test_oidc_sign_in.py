"""OpenID Connect sign-in over HTTP against idp_sim's provider: the code flow with PKCE, just-in-
time provisioning for both shapes, account links, seats, Test mode and the relay path."""

from __future__ import annotations

import asyncio
import urllib.parse

from idp_sim.oidc.provider import okta_oidc
from samlkit.certs import SigningKey
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, Oidc, directory, log, oidc_provider
from tests.support.scim import ADMIN, Scim
from tests.support.sso import set_seats


async def test_okta_sign_in_creates_the_user_with_its_groups_and_a_session(okta: Oidc) -> None:
    authorize = urllib.parse.urlsplit(await okta.start())
    query = urllib.parse.parse_qs(authorize.query)
    assert authorize.path == "/oauth2/default/v1/authorize"
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert query["scope"] == ["openid email profile groups"]
    response = await okta.callback(await okta.authorize(authorize.geturl(), "grace@example.com"))
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/sso/acme/"
    assert "scim_sso_acme" in response.cookies
    [user] = await _users(okta, "grace@example.com")
    assert user["name"] == {"givenName": "Grace", "familyName": "Lovelace"}
    assert sorted(g["display"] for g in user["groups"]) == ["Admins", "Engineering"]
    [entry, *_] = await log(okta)
    assert entry["outcome"] == "signed_in" and entry["protocol"] == "oidc"
    assert entry["jit"] == "created" and entry["issuer"] == okta.issuer
    page = await okta.scim.client.get("/sso/acme/")
    assert 'id="signed-in-user">grace@example.com<' in await page.text()


async def _users(sso: Oidc, user_name: str) -> list[dict[str, object]]:
    response = await sso.scim.get("/Users", params={"filter": f'userName eq "{user_name}"'})
    assert response.status == 200
    return list((await response.json())["Resources"])


async def test_entra_sign_in_reads_overage_groups_from_userinfo_and_links_by_sub(
    entra: Oidc,
) -> None:
    response = await entra.sign_in("grace@example.com")
    assert response.status == 303, await response.text()
    [user] = await _users(entra, "grace@example.com")
    # Two groups are over this provider's threshold of one: they came from userinfo.
    assert sorted(g["display"] for g in user["groups"]) == ["Admins", "Engineering"]
    [entry, *_] = await log(entra)
    assert entry["issuer"] == entra.issuer and entra.issuer.endswith("/v2.0")
    assert entry["subject"] != "00ugracexxxxxxxxxxxxx"  # Entra's sub is pairwise, not the oid
    await entra.sign_out_at_idp()
    assert (await entra.sign_in("ada@example.com")).status == 303
    [ada] = await _users(entra, "ada@example.com")
    assert [g["display"] for g in ada["groups"]] == ["Engineering"]


async def test_a_second_sign_in_follows_the_account_link_even_after_a_rename(okta: Oidc) -> None:
    assert (await okta.sign_in("ada@example.com")).status == 303
    [user] = await _users(okta, "ada@example.com")
    renamed = await okta.scim.patch(
        f"/Users/{user['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "userName", "value": "ada.l@example.com"}],
        },
    )
    assert renamed.status == 200, await renamed.text()
    again = await okta.sign_in("ada@example.com")  # the IdP's session: no sign-in page
    assert again.status == 303
    assert await _users(okta, "ada@example.com") == []
    [linked] = await _users(okta, "ada.l@example.com")
    assert linked["id"] == user["id"]
    assert (await log(okta))[0]["jit"] in ("unchanged", "updated")


async def test_a_user_the_scim_feed_made_is_adopted_on_first_sign_in(okta: Oidc) -> None:
    created = await okta.scim.post(
        "/Users",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alan@example.com",
        },
    )
    assert created.status == 201
    assert (await okta.sign_in("alan@example.com")).status == 303
    [user] = await _users(okta, "alan@example.com")
    assert user["id"] == (await created.json())["id"]
    assert user["name"]["givenName"] == "Alan"


async def test_jit_respects_the_seat_count(okta: Oidc) -> None:
    await set_seats(okta.scim.client, okta.tenant, 1)
    assert (await okta.sign_in("ada@example.com")).status == 303
    await okta.sign_out_at_idp()
    refused = await okta.sign_in("grace@example.com")
    assert refused.status == 403
    assert "seat" in (await refused.text()).lower()
    assert await _users(okta, "grace@example.com") == []
    [entry, *_] = await log(okta)
    assert entry["outcome"] == "refused" and "seat" in entry["reason"]


async def test_test_mode_reports_the_identity_and_changes_no_one(okta: Oidc) -> None:
    await okta.configure(enabled=False)
    link = await okta.scim.client.post("/admin/tenants/acme/sso/test", headers=ADMIN)
    assert link.status == 200, await link.text()
    url = urllib.parse.urlsplit((await link.json())["url"])
    assert url.path == "/sso/acme/oidc/login"
    ticket = urllib.parse.parse_qs(url.query)["test"][0]
    page = await okta.sign_in("ada@example.com", test=ticket)
    assert page.status == 200
    text = await page.text()
    assert 'id="test-result"' in text and okta.issuer in text
    assert "No user matches; a sign-in would create one" in text
    assert await _users(okta, "ada@example.com") == []
    assert "scim_sso_acme" not in page.cookies
    assert (await log(okta))[0]["outcome"] == "test"
    # Without the ticket, a disabled tenant does not start a sign-in at all.
    refused = await okta.scim.client.get("/sso/acme/oidc/login", allow_redirects=False)
    assert refused.status == 403


async def test_the_relay_path_given_at_login_is_where_the_browser_lands(okta: Oidc) -> None:
    response = await okta.sign_in("ada@example.com", RelayState="/reports?tab=2")
    assert response.headers["Location"] == "/reports?tab=2"
    evil = await okta.sign_in("ada@example.com", RelayState="https://evil.example/")
    assert evil.headers["Location"] == "/sso/acme/"


async def test_a_saml_tenant_does_not_start_an_oidc_sign_in_nor_the_reverse(okta: Oidc) -> None:
    saml = await okta.scim.client.get("/sso/acme/saml/login", allow_redirects=False)
    assert saml.status == 403
    assert (await log(okta))[0]["reason"] == "this tenant signs in with oidc, not saml"
    home = await okta.scim.client.get("/sso/acme/")
    assert 'href="/sso/acme/oidc/login"' in await home.text()


async def test_concurrent_first_sign_ins_of_one_person_make_one_user_and_one_link(
    scim: Scim, oidc_key: SigningKey
) -> None:
    people = directory(*((f"racer{n}@example.com", ("Engineering",)) for n in range(4)))
    async with oidc_provider(scim, okta_oidc(), oidc_key, people) as sso:
        await sso.configure()
        for n in range(4):
            login = f"racer{n}@example.com"
            await sso.sign_out_at_idp()
            callbacks = [await sso.authorize(await sso.start(), login) for _ in range(3)]
            answers = await asyncio.gather(*(sso.callback(url) for url in callbacks))
            assert [a.status for a in answers] == [303, 303, 303]
            [user] = await _users(sso, login)
            assert [g["display"] for g in user["groups"]] == ["Engineering"]
            entries = [e for e in await log(sso) if e.get("user_name") == login]
            # The creator may lose the link to a sign-in that adopted its user meanwhile, and log
            # "updated": never two creations, and every sign-in is the one user.
            assert len(entries) == 3 and [e["jit"] for e in entries].count("created") <= 1
            assert {e["user"] for e in entries} == {user["id"]}


async def test_first_sign_ins_of_two_people_into_a_new_group_both_land_in_it(
    scim: Scim, oidc_key: SigningKey
) -> None:
    rounds = 4
    people = directory(
        *((f"{who}{n}@example.com", (f"Team {n}",)) for n in range(rounds) for who in "ab")
    )
    async with oidc_provider(scim, okta_oidc(), oidc_key, people) as sso:
        await sso.configure()
        for n in range(rounds):
            callbacks = []
            for who in "ab":
                await sso.sign_out_at_idp()
                callbacks.append(await sso.authorize(await sso.start(), f"{who}{n}@example.com"))
            answers = await asyncio.gather(*(sso.callback(url) for url in callbacks))
            assert [a.status for a in answers] == [303, 303], [await a.text() for a in answers]
            groups = await sso.scim.get("/Groups", params={"filter": f'displayName eq "Team {n}"'})
            [group] = (await groups.json())["Resources"]
            assert len({member["value"] for member in group["members"]}) == 2


async def test_a_private_key_jwt_client_signs_in_with_the_key_the_sp_publishes(
    scim: Scim, oidc_key: SigningKey
) -> None:
    people = directory(("ada@example.com", ()))
    async with oidc_provider(scim, okta_oidc(), oidc_key, people, private_key_jwt=True) as sso:
        oidc = {"issuer": sso.issuer, "client_id": CLIENT_ID, "client_auth": "private_key_jwt"}
        view = await sso.configure(oidc=oidc)
        assert view["oidc"]["client_secret_set"] is False
        jwks_uri = urllib.parse.urlsplit(view["service_provider"]["jwks_uri"])
        assert jwks_uri.path == "/sso/acme/oidc/jwks"
        [key] = (await (await scim.client.get(jwks_uri.path)).json())["keys"]
        assert key["kid"] == view["oidc"]["client_key_id"] and "d" not in key
        first = await sso.sign_in("ada@example.com")
        assert first.status == 303, (await log(sso))[0]
        # The key stays across changes (a PUT is a whole new configuration, with a new key);
        # the IdP refuses the secret from this client.
        for change in ({"client_secret": CLIENT_SECRET}, {"client_auth": "client_secret_basic"}):
            patched = await scim.client.patch(
                "/admin/tenants/acme/sso", json={"oidc": change}, headers=ADMIN
            )
            assert (await patched.json())["oidc"]["client_key_id"] == key["kid"]
        assert (await sso.sign_in("ada@example.com")).status == 403
        assert (
            "HTTP 401: invalid_client (this client authenticates with private_key_jwt)"
            in ((await log(sso))[0]["reason"])
        )
