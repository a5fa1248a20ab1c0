"""The SP's identity (entity ID, ACS URL, expected Audience and Destination) comes from the
tenant's pinned SP base URL, never from the Host header a request happens to carry."""

from __future__ import annotations

import urllib.parse

from idp_sim.saml.response import ServiceProvider
from samlkit.authn_request import parse_authn_request
from samlkit.bindings import decode_redirect
from tests.support.sso import Sso, person

SPOOFED = "evil.example"


def _spoofed_sp(tenant: str) -> ServiceProvider:
    base = f"http://{SPOOFED}/sso/{tenant}"
    return ServiceProvider(entity_id=f"{base}/saml/metadata", acs_url=f"{base}/saml/acs")


async def test_an_assertion_for_a_spoofed_host_is_refused_even_under_that_host(
    okta_sso: Sso,
) -> None:
    saml_response = okta_sso.idp.response_b64(person(), _spoofed_sp(okta_sso.tenant))
    response = await okta_sso.client.post(
        f"{okta_sso.base}/saml/acs",
        data={"SAMLResponse": saml_response},
        headers={"Host": SPOOFED},
        allow_redirects=False,
    )
    assert response.status == 403
    assert "is addressed to" in await okta_sso.last_reason()
    assert await okta_sso.users("ada@example.com") == []


async def test_a_spoofed_host_changes_neither_the_metadata_nor_the_authn_request(
    okta_sso: Sso,
) -> None:
    metadata = await okta_sso.client.get(
        f"{okta_sso.base}/saml/metadata", headers={"Host": SPOOFED}
    )
    text = await metadata.text()
    assert okta_sso.sp.acs_url in text and SPOOFED not in text

    login = await okta_sso.client.get(
        f"{okta_sso.base}/saml/login", headers={"Host": SPOOFED}, allow_redirects=False
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(login.headers["Location"]).query)
    request = parse_authn_request(decode_redirect(query["SAMLRequest"][0]))
    assert request.issuer == okta_sso.sp.entity_id
    assert request.acs_url == okta_sso.sp.acs_url


async def test_without_a_pinned_sp_base_url_or_public_url_sign_in_is_refused_clearly(
    okta_sso: Sso,
) -> None:
    await okta_sso.configure(sp_base_url=None)
    assert (await okta_sso.sign_in(person(), solicited=False)).status == 403
    assert "sp_base_url" in await okta_sso.last_reason()
    login = await okta_sso.client.get(f"{okta_sso.base}/saml/login", allow_redirects=False)
    assert login.status == 403
    assert "sp_base_url" in await okta_sso.last_reason()
    metadata = await okta_sso.client.get(f"{okta_sso.base}/saml/metadata")
    assert metadata.status == 404
