"""Interop with independent implementations of OpenID Connect (issue 12).

Both directions, each over real HTTP: authlib's ID token rules (``authlib.oidc.core.
CodeIDToken``, on joserfc's JWS, as authlib's own clients now validate) accept the ID tokens
idp_sim's provider issues from its token endpoint, checked against the keys it publishes at its
``jwks_uri`` and nothing else, and refuse its catalogue's forged ones; and this server's RP
signs a person in with an ID token that joserfc, not the provider's own pyjwt, signed with the
key the provider publishes.
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey

from idp_sim.oidc.provider import OidcProvider, okta_oidc
from idp_sim.oidc.tampering import VARIANTS, Variant
from samlkit.certs import SigningKey
from tests.oidc.conftest import PEOPLE
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, Oidc, log, oidc_provider, person_of
from tests.support.scim import Scim

FORGED_ID_TOKENS = [variant for variant in VARIANTS if variant.kind == "id_token"]


async def published(browser: aiohttp.ClientSession, issuer: str) -> tuple[dict[str, Any], KeySet]:
    """The provider's discovery document and its key set, as any client fetches them."""
    async with browser.get(f"{issuer}/.well-known/openid-configuration") as response:
        discovery: dict[str, Any] = await response.json()
    async with browser.get(discovery["jwks_uri"]) as response:
        keys = KeySet.import_key_set(await response.json())
    return discovery, keys


def validated(
    id_token: str, keys: KeySet, issuer: str, nonce: str, access_token: str | None = None
) -> CodeIDToken:
    """The ID token as authlib's client code validates it: RS256 only, then OpenID Connect
    Core §3.1.3.7 (issuer, audience, expiry, nonce, at_hash)."""
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    claims = CodeIDToken(
        token.claims,
        token.header,
        options={"iss": {"essential": True, "value": issuer}},
        params={"nonce": nonce, "client_id": CLIENT_ID, "access_token": access_token},
    )
    claims.validate()
    return claims


async def code_flow(okta: Oidc, login: str, nonce: str) -> dict[str, Any]:
    """A client of our own (not the RP) through the provider's code flow with PKCE, as authlib
    computes the challenge; the token endpoint's answer."""
    discovery, _ = await published(okta.browser, okta.issuer)
    verifier = secrets.token_urlsafe(48)
    redirect_uri = str(okta.scim.client.make_url(f"/sso/{okta.tenant}/oidc/callback"))
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": "openid email profile",
        "state": secrets.token_urlsafe(16),
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    request = f"{discovery['authorization_endpoint']}?{urllib.parse.urlencode(query)}"
    callback = await okta.authorize(request, login)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    async with okta.browser.post(discovery["token_endpoint"], data=form) as response:
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
    return answer


async def test_authlib_validates_the_id_token_the_provider_issues(okta: Oidc) -> None:
    nonce = secrets.token_urlsafe(16)
    answer = await code_flow(okta, "grace@example.com", nonce)
    _, keys = await published(okta.browser, okta.issuer)
    claims = validated(answer["id_token"], keys, okta.issuer, nonce, answer["access_token"])
    assert claims["email"] == "grace@example.com"
    assert sorted(claims["groups"]) == ["Admins", "Engineering"]


@pytest.mark.parametrize("variant", FORGED_ID_TOKENS, ids=lambda variant: variant.name)
async def test_authlib_refuses_each_forged_id_token_of_the_catalogue(
    okta: Oidc, oidc_key: SigningKey, variant: Variant
) -> None:
    """The catalogue's forgeries are forgeries to an independent validator too."""
    _, keys = await published(okta.browser, okta.issuer)
    provider = OidcProvider(okta.shape, oidc_key)
    nonce = secrets.token_urlsafe(16)
    base = str(okta.idp.make_url("")).rstrip("/")
    claims = provider.claims(
        person_of("ada@example.com"), CLIENT_ID, nonce, datetime.now(UTC), base
    )
    assert variant.token is not None
    validated(provider.sign(claims), keys, okta.issuer, nonce)  # the genuine one passes
    with pytest.raises(JoseError):
        validated(variant.token(provider, claims), keys, okta.issuer, nonce)


def signed_by_joserfc(provider: OidcProvider, claims: Mapping[str, Any]) -> str:
    """The ID token signed by joserfc with the provider's published key and kid."""
    key = RSAKey.import_key(provider.key.private_key_pem(), {"kid": provider.kid})
    return jwt.encode({"alg": "RS256", "kid": provider.kid}, dict(claims), key)


async def test_our_rp_signs_in_with_an_id_token_signed_by_joserfc(
    scim: Scim, oidc_key: SigningKey
) -> None:
    """The provider's token endpoint answers an ID token that joserfc signed (its claims the
    provider's, the key the one it publishes): our RP signs the person in over HTTP."""
    joserfc_signer = Variant("joserfc", "signed by joserfc", "id_token", signed_by_joserfc)
    async with oidc_provider(scim, okta_oidc(), oidc_key, PEOPLE) as okta:
        await okta.configure()
        okta.tamper(joserfc_signer)
        response = await okta.sign_in("ada@example.com")
        assert response.status == 303, await response.text()
        [entry, *_] = await log(okta)
        assert entry["outcome"] == "signed_in" and entry["protocol"] == "oidc"
        users = await scim.get("/Users", params={"filter": 'userName eq "ada@example.com"'})
        assert len((await users.json())["Resources"]) == 1
