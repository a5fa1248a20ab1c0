"""Login CSRF: a response to an SP-initiated request signs in only the browser that asked for
it, and a password form signs in (or sets a password) only from the page that browser was given.

Each AuthnRequest is bound to the browser that started it by a short-lived cookie; an attacker
who starts a sign-in to their own account cannot post the IdP's answer from a victim's browser
(which would then be signed in as the attacker); nor can the attacker's page post the attacker's
user name and password from the victim's browser: each password form carries a token bound to
its browser's form key. Each test drives a second, real browser
session (its own cookie jar) against the same server.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from scim_server.core.sso.sessions import FORM_COOKIE, FORM_TOKEN_SECONDS
from scim_server.web.state import SERVICES
from tests.support.scim import ADMIN
from tests.support.sso import Sso, form_token, person, post_as_browser, with_form_token

BINDING_COOKIE = "scim_saml_acme"


@pytest.fixture
async def victim(okta_sso: Sso) -> AsyncIterator[aiohttp.ClientSession]:
    """Another browser: a client session with its own, empty cookie jar."""
    async with aiohttp.ClientSession(
        base_url=str(okta_sso.client.make_url("")),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    ) as session:
        yield session


async def _post(session: aiohttp.ClientSession, sso: Sso, saml_response: str) -> int:
    response = await post_as_browser(
        lambda path, data: session.post(path, data=data, allow_redirects=False),
        f"{sso.base}/saml/acs",
        {"SAMLResponse": saml_response},
    )
    if response.status != 303:
        assert response.content_type == "text/html"
    return int(response.status)


async def test_a_solicited_response_posted_from_another_browser_is_refused(
    okta_sso: Sso, victim: aiohttp.ClientSession
) -> None:
    request_id = await okta_sso.start()  # the attacker's browser asks
    attackers_answer = okta_sso.response(person("mallory@example.com"), in_response_to=request_id)

    assert await _post(victim, okta_sso, attackers_answer) == 403
    assert "not bound to this browser" in await okta_sso.last_reason()
    assert await okta_sso.users("mallory@example.com") == []
    assert not [c for c in victim.cookie_jar if c.key.startswith("scim_sso_")]


async def test_a_browser_with_its_own_request_cannot_use_the_answer_to_another(
    okta_sso: Sso, victim: aiohttp.ClientSession
) -> None:
    async with victim.get(f"{okta_sso.base}/saml/login", allow_redirects=False) as started:
        assert started.status == 302
    request_id = await okta_sso.start()
    attackers_answer = okta_sso.response(person("mallory@example.com"), in_response_to=request_id)

    assert await _post(victim, okta_sso, attackers_answer) == 403
    assert "not bound to this browser" in await okta_sso.last_reason()


async def test_the_binding_cookie_is_http_only_short_lived_and_scoped_to_the_saml_endpoints(
    okta_sso: Sso,
) -> None:
    response = await okta_sso.client.get(f"{okta_sso.base}/saml/login", allow_redirects=False)
    cookie = response.cookies[BINDING_COOKIE]
    assert cookie["httponly"] and cookie["path"] == "/sso/acme/saml/"
    assert cookie["max-age"] == "600"
    # Plain http: SameSite=None needs Secure, so Lax, which a same-site IdP's POST still carries.
    assert cookie["samesite"] == "Lax" and not cookie["secure"]


async def test_over_https_the_binding_cookie_is_same_site_none_and_secure(okta_sso: Sso) -> None:
    """The IdP's POST is cross-site: only a SameSite=None cookie comes along, and only Secure."""
    await okta_sso.configure(sp_base_url="https://sso.example.test")
    response = await okta_sso.client.get(f"{okta_sso.base}/saml/login", allow_redirects=False)
    cookie = response.cookies[BINDING_COOKIE]
    assert cookie["samesite"] == "None" and cookie["secure"] and cookie["httponly"]


async def test_two_sign_ins_started_in_one_browser_both_complete(okta_sso: Sso) -> None:
    """Two tabs: the second login keeps the browser's binding, so the first still completes."""
    first, second = await okta_sso.start(), await okta_sso.start()
    for request_id in (first, second):
        response = await okta_sso.post(okta_sso.response(person(), in_response_to=request_id))
        assert response.status == 303, await okta_sso.last_reason()


async def test_an_unsolicited_response_needs_no_binding(
    okta_sso: Sso, victim: aiohttp.ClientSession
) -> None:
    assert await _post(victim, okta_sso, okta_sso.response(person())) == 303


async def test_a_solicited_response_without_the_binding_cookie_is_posted_again_from_the_site(
    okta_sso: Sso, victim: aiohttp.ClientSession
) -> None:
    """Over plain HTTP the cookie is SameSite=Lax, so the IdP's cross-site POST lacks it: the ACS
    has the browser post the same form again from its own page, a same-site POST that carries
    it. Nothing is consumed by the first POST; the second, still without the cookie, is refused."""
    request_id = await okta_sso.start()
    form = {"SAMLResponse": okta_sso.response(person(), in_response_to=request_id)}
    async with victim.post(f"{okta_sso.base}/saml/acs", data=form) as first:
        assert first.status == 200
        page = await first.text()
        policy = first.headers["Content-Security-Policy"]
    assert 'id="sso-repost"' in page and 'name="reposted" value="1"' in page
    [nonce] = re.findall(r'<script nonce="([^"]+)">', page)
    assert f"script-src 'nonce-{nonce}'" in policy and "form-action 'self'" in policy
    assert await okta_sso.log() == []
    assert await _post(victim, okta_sso, form["SAMLResponse"]) == 403
    assert "not bound to this browser" in await okta_sso.last_reason()


# -- the password forms ------------------------------------------------------------------------

PASSWORD = "correct horse battery"
FORM_REFUSED = "This form cannot be accepted"


async def _attackers_form(sso: Sso, page: str, form: dict[str, str]) -> dict[str, str]:
    """``form`` with a token the attacker's own browser (``sso.client``) was given on ``page``:
    all a page of another site could embed."""
    return await with_form_token(sso.client, page, form)


async def _victim_posts(
    victim: aiohttp.ClientSession, path: str, form: dict[str, str]
) -> tuple[int, str]:
    async with victim.post(path, data=form, allow_redirects=False) as response:
        return response.status, await response.text()


async def test_a_password_sign_in_posted_from_another_site_signs_no_one_in(
    okta_sso: Sso, victim: aiohttp.ClientSession
) -> None:
    """The attacker's page posts the attacker's credentials from the victim's browser, with no
    token or with the one the attacker's browser got: the generic page, no session, logged."""
    await okta_sso.scim.create_user("mallory@example.com", password=PASSWORD)
    credentials = {"username": "mallory@example.com", "password": PASSWORD}
    forged = await _attackers_form(okta_sso, f"{okta_sso.base}/", credentials)
    for form in (credentials, forged):
        status, page = await _victim_posts(victim, f"{okta_sso.base}/password", form)
        assert status == 403 and FORM_REFUSED in page
        assert "no valid form token of this browser" in await okta_sso.last_reason()
    assert not [c for c in victim.cookie_jar if c.key.startswith("scim_sso_")]
    assert [entry["outcome"] for entry in await okta_sso.log()] == ["refused", "refused"]

    signed_in = await with_form_token(victim, f"{okta_sso.base}/", credentials)
    status, _ = await _victim_posts(victim, f"{okta_sso.base}/password", signed_in)
    assert status == 303


async def test_a_form_token_is_good_only_for_the_form_it_was_given_for(
    okta_sso: Sso, victim: aiohttp.ClientSession
) -> None:
    await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    credentials = {"username": "bob@example.com", "password": PASSWORD}
    reset_pages = await with_form_token(victim, f"{okta_sso.base}/password-reset", credentials)
    status, page = await _victim_posts(victim, f"{okta_sso.base}/password", reset_pages)
    assert status == 403 and FORM_REFUSED in page


async def test_an_expired_form_token_is_refused(
    okta_sso: Sso, victim: aiohttp.ClientSession
) -> None:
    await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    await form_token(victim, f"{okta_sso.base}/")
    [key] = [c.value for c in victim.cookie_jar if c.key == FORM_COOKIE]
    codec = okta_sso.client.app[SERVICES].sso.sessions.codec
    an_hour_ago = datetime.now(UTC) - timedelta(seconds=FORM_TOKEN_SECONDS + 1)
    stale = codec.form_token(key, f"{okta_sso.base}/password", an_hour_ago)
    form = {"username": "bob@example.com", "password": PASSWORD, "form_token": stale}
    status, page = await _victim_posts(victim, f"{okta_sso.base}/password", form)
    assert status == 403 and FORM_REFUSED in page


async def test_a_reset_form_posted_from_another_site_sets_nothing_and_spends_no_link(
    okta_sso: Sso, victim: aiohttp.ClientSession
) -> None:
    user = await okta_sso.scim.create_user("bob@example.com")
    issued = await okta_sso.client.post(
        f"/admin/tenants/{okta_sso.tenant}/users/{user['id']}/password-reset", headers=ADMIN
    )
    token = (await issued.json())["url"].split("#", 1)[1]
    form = {"token": token, "password": "a brand new passphrase"}
    form["confirm"] = form["password"]
    reset = f"{okta_sso.base}/password-reset"
    status, page = await _victim_posts(victim, reset, await _attackers_form(okta_sso, reset, form))
    assert status == 403 and FORM_REFUSED in page
    assert (await okta_sso.log())[0]["flow"] == "password_reset"

    status, page = await _victim_posts(victim, reset, await with_form_token(victim, reset, form))
    assert status == 200 and 'id="password-set"' in page


async def test_the_form_key_cookie_is_http_only_and_same_site_lax(okta_sso: Sso) -> None:
    response = await okta_sso.client.get(f"{okta_sso.base}/")
    cookie = response.cookies[FORM_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    again = await okta_sso.client.get(f"{okta_sso.base}/")
    assert FORM_COOKIE in again.cookies and again.cookies[FORM_COOKIE].value == cookie.value


async def test_a_sign_out_posted_from_another_site_signs_no_one_out(
    okta_sso: Sso, victim: aiohttp.ClientSession
) -> None:
    """Sign-out is a form too: another site's page posting it from the person's browser, with no
    token or with the one the attacker's own signed-in browser was given, leaves the person
    signed in (the generic page, logged); the person's own sign-out form still signs out."""
    await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    await okta_sso.scim.create_user("mallory@example.com", password=PASSWORD)
    home = f"{okta_sso.base}/"
    bob = {"username": "bob@example.com", "password": PASSWORD}
    status, _ = await _victim_posts(
        victim, f"{home}password", await with_form_token(victim, home, bob)
    )
    assert status == 303
    mallory = {"username": "mallory@example.com", "password": PASSWORD}
    await okta_sso.client.post(
        f"{home}password", data=await with_form_token(okta_sso.client, home, mallory)
    )
    forged = await with_form_token(okta_sso.client, home, {}, f"{home}logout")
    for form in ({}, forged):
        status, page = await _victim_posts(victim, f"{home}logout", form)
        assert status == 403 and FORM_REFUSED in page
        async with victim.get(home) as response:
            assert 'id="signed-in-user">bob@example.com<' in await response.text()
    assert (await okta_sso.log())[0]["flow"] == "sign_out"

    own = await with_form_token(victim, home, {}, f"{home}logout")
    status, _ = await _victim_posts(victim, f"{home}logout", own)
    assert status == 303
    async with victim.get(home) as response:
        assert 'id="sign-in-sso"' in await response.text()
