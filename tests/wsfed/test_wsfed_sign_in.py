"""WS-Federation sign-in over HTTP: the login redirect, the posted token, JIT, account links,
seats, Test mode and the binding of a sign-in to its browser."""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime

from scim_server.core.sso.sessions import binding_cookie_name
from scim_server.web.state import SERVICES
from tests.support.scim import ADMIN
from tests.support.sso import person, set_seats
from tests.support.wsfed import PASSIVE_URL, WsFed


async def test_the_login_redirect_asks_the_sts_for_a_token_for_the_realm(entra: WsFed) -> None:
    response = await entra.client.get(
        f"{entra.base}/login", params={"RelayState": "/x"}, allow_redirects=False
    )
    assert response.status == 302
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PASSIVE_URL
    query = urllib.parse.parse_qs(location.query)
    assert query["wa"] == ["wsignin1.0"]
    assert query["wtrealm"] == [entra.rp.realm]
    assert query["wreply"] == [entra.rp.reply_url]
    assert len(query["wctx"][0]) >= 32
    cookie = response.cookies[binding_cookie_name("acme")]
    assert cookie["path"] == "/sso/acme/wsfed/" and cookie["httponly"]


async def test_sp_initiated_sign_in_creates_the_user_and_a_session(entra: WsFed) -> None:
    response = await entra.sign_in(person(groups=("Engineering",)))
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/sso/acme/"
    [user] = await entra.users("ada@example.com")
    assert user["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    page = await entra.client.get("/sso/acme/")
    assert 'id="signed-in-user">ada@example.com<' in await page.text()
    [entry, *_] = await entra.log()
    assert entry["outcome"] == "signed_in" and entry["jit"] == "created"
    assert entry["protocol"] == "wsfed" and entry["flow"] == "sp"
    assert entry["issuer"] == entra.idp.shape.entity_id


async def test_the_relay_state_stored_with_the_wctx_is_where_the_browser_lands(
    entra: WsFed,
) -> None:
    wctx = await entra.start(relay_state="/dashboard?tab=2")
    response = await entra.post(entra.wresult(person()), wctx)
    assert response.headers["Location"] == "/dashboard?tab=2"


async def test_a_second_sign_in_uses_the_account_link(entra: WsFed) -> None:
    assert (await entra.sign_in(person(last_name="Lovelace"))).status == 303
    assert (await entra.sign_in(person(last_name="King"))).status == 303
    [user] = await entra.users("ada@example.com")
    assert user["name"]["familyName"] == "King"
    assert (await entra.log())[0]["jit"] == "updated"


async def test_an_unsolicited_token_follows_the_idp_initiated_policy(entra: WsFed) -> None:
    assert (await entra.sign_in(person(), solicited=False)).status == 303
    assert (await entra.log())[0]["flow"] == "idp"
    await entra.configure(allow_idp_initiated=False)
    response = await entra.sign_in(person("grace@example.com"), solicited=False)
    assert response.status == 403
    assert "unsolicited" in await entra.last_reason()
    assert await entra.users("grace@example.com") == []


async def test_a_sign_in_beyond_the_seat_count_shows_the_seat_page(entra: WsFed) -> None:
    await entra.scim.create_user("first@example.com")
    await set_seats(entra.client, "acme", 1)
    response = await entra.sign_in(person())
    assert response.status == 403
    assert 'id="seat-limit"' in await response.text()
    assert await entra.users("ada@example.com") == []
    assert "1 seat" in await entra.last_reason()


async def test_a_test_sign_in_reports_without_a_session_or_a_user(entra: WsFed) -> None:
    await entra.configure(enabled=False)
    answer = await entra.client.post("/admin/tenants/acme/sso/test", headers=ADMIN)
    assert answer.status == 200, await answer.text()
    url = urllib.parse.urlsplit((await answer.json())["url"])
    assert url.path == "/sso/acme/wsfed/login"
    wctx = await entra.start(test=urllib.parse.parse_qs(url.query)["test"][0])
    response = await entra.post(entra.wresult(person(groups=("Engineering",))), wctx)
    assert response.status == 200
    text = await response.text()
    assert 'id="test-email">ada@example.com<' in text and "Engineering" in text
    assert "Set-Cookie" not in response.headers
    assert await entra.users("ada@example.com") == []
    assert (await entra.log())[0]["outcome"] == "test"


async def test_a_token_posted_at_the_saml_acs_of_a_wsfed_tenant_is_refused(entra: WsFed) -> None:
    response = await entra.client.post("/sso/acme/saml/acs", data={"SAMLResponse": "PHg+"})
    assert response.status == 403
    assert "signs in with wsfed, not saml" in await entra.last_reason()


async def test_a_wctx_cannot_answer_a_saml_sign_in_of_the_same_tenant(entra: WsFed) -> None:
    """A pending WS-Federation sign-in is not a SAML AuthnRequest (nor the reverse)."""
    wctx = await entra.start()
    repository = entra.client.app[SERVICES].sso.repository
    assert await repository.take_request("acme", wctx, datetime.now(UTC)) is None
    assert await repository.take_request("acme", wctx, datetime.now(UTC), "wsfed") is not None


async def test_a_refused_login_is_logged_as_a_wsfed_sign_in(entra: WsFed) -> None:
    await entra.configure(enabled=False)
    response = await entra.client.get(f"{entra.base}/login", allow_redirects=False)
    assert response.status == 403
    [entry, *_] = await entra.log()
    assert entry["outcome"] == "refused" and entry["protocol"] == "wsfed"
    assert "not enabled" in entry["reason"]
