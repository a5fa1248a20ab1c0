"""Every variant of idp_sim's OIDC tampering catalogue, staged over HTTP, is refused: the browser
gets the generic failure page (never a 500), the SSO log its own precise reason, and no user is
created or changed."""

from __future__ import annotations

import urllib.parse

import pytest

from idp_sim.oidc.tampering import BY_NAME, VARIANTS
from tests.support.oidc import Oidc, log

REASONS = {
    "wrong_audience": "the ID token's audience 'x' does not include the client id",
    "wrong_issuer": "the ID token's issuer 'https://evil.example/oauth2/default' is not",
    "expired": "the ID token expired at",
    "alg_none": "the ID token is signed with 'none', which this tenant does not accept",
    "wrong_key": "the ID token's signature does not verify with the IdP's key",
    "hs256_key_confusion": "the ID token is signed with 'HS256', which this tenant does not",
    "nonce_mismatch": "the ID token's nonce is not the one this sign-in sent",
    "mix_up": "mix-up: the authorization response comes from the issuer 'https://evil.example",
    "replayed_code": "the authorization code was already used (replay)",
    "missing_pkce": "invalid_grant (a code_verifier for a code issued without a code_challenge)",
}
IDP_REFUSED = "Start again from the sign-in page"


def test_the_catalogue_and_the_expected_reasons_name_the_same_variants() -> None:
    assert {variant.name for variant in VARIANTS} == set(REASONS)
    assert len(set(REASONS.values())) == len(REASONS)


async def _stage(okta: Oidc, name: str) -> str:
    """Play the variant; answers the callback URL the browser is sent to with it."""
    variant = BY_NAME[name]
    if variant.kind != "flow":
        okta.tamper(variant)
        return await okta.authorize(await okta.start(), "ada@example.com")
    if name == "replayed_code":
        exchanged = await okta.authorize(await okta.start(), "ada@example.com")
        assert (await okta.callback(exchanged)).status == 303
        await okta.scim.delete(f"/Users/{(await _users(okta))[0]['id']}")
        code = urllib.parse.parse_qs(urllib.parse.urlsplit(exchanged).query)["code"][0]
        fresh = await okta.authorize(await okta.start(), "ada@example.com")
        return _with(fresh, code=code)
    # missing_pkce: the code comes from an authorization made without a PKCE challenge.
    return await okta.authorize(
        await okta.start(), "ada@example.com", code_challenge=None, code_challenge_method=None
    )


def _with(url: str, **values: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = {**dict(urllib.parse.parse_qsl(parts.query)), **values}
    return parts._replace(query=urllib.parse.urlencode(query)).geturl()


async def _users(okta: Oidc) -> list[dict[str, object]]:
    response = await okta.scim.get("/Users")
    return list((await response.json())["Resources"])


@pytest.mark.parametrize("name", sorted(REASONS))
async def test_each_tampering_variant_is_refused_with_its_own_reason(okta: Oidc, name: str) -> None:
    callback = await _stage(okta, name)
    response = await okta.callback(callback)
    page = await response.text()
    assert response.status == 403, page
    assert IDP_REFUSED in page and "Traceback" not in page
    assert "scim_sso_acme" not in response.cookies
    [entry, *_] = await log(okta)
    assert entry["outcome"] == "refused" and entry["protocol"] == "oidc"
    assert REASONS[name] in entry["reason"], entry["reason"]
    assert await _users(okta) == []


async def test_a_callback_replayed_as_it_was_is_refused_by_its_used_state(okta: Oidc) -> None:
    callback = await okta.authorize(await okta.start(), "ada@example.com")
    assert (await okta.callback(callback)).status == 303
    again = await okta.callback(callback)
    assert again.status == 403
    assert "answers no outstanding sign-in" in (await log(okta))[0]["reason"]


async def test_a_callback_in_another_browser_is_refused_as_login_csrf(okta: Oidc) -> None:
    callback = await okta.authorize(await okta.start(), "ada@example.com")
    okta.scim.client.session.cookie_jar.clear()
    response = await okta.callback(callback)
    assert response.status == 403
    assert "possible login CSRF" in (await log(okta))[0]["reason"]
    assert await _users(okta) == []


async def test_an_error_answer_of_the_idp_is_logged_as_it_came(okta: Oidc) -> None:
    start = urllib.parse.urlsplit(await okta.start())
    state = urllib.parse.parse_qs(start.query)["state"][0]
    response = await okta.scim.client.get(
        "/sso/acme/oidc/callback",
        params={"error": "access_denied", "error_description": "User not assigned", "state": state},
    )
    assert response.status == 403
    assert (await log(okta))[0]["reason"] == "the IdP answered 'access_denied': User not assigned"


async def test_a_callback_without_state_or_code_is_refused(okta: Oidc) -> None:
    for query in ({}, {"state": "x"}, {"code": "y"}):
        response = await okta.scim.client.get("/sso/acme/oidc/callback", params=query)
        assert response.status == 403
        assert (await log(okta))[0]["reason"] == "the callback carries no state or no code"
