"""Every broken WS-Federation token of idp_sim's catalogue, and the HTTP-level attacks (replay,
another sign-in's wctx, another browser), refused over HTTP: the generic failure page (never a
500), the tenant's SSO log naming the precise reason, and no user created."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp import ClientResponse

from idp_sim.saml.shapes import entra_wsfed
from idp_sim.wsfed.tampering import VARIANTS, Variant
from idp_sim.wsfed.token import WsFedIdp, serialise
from samlkit.certs import SigningKey
from samlkit.namespaces import ASSERTION_11, q
from scim_server.core.sso.sessions import binding_cookie_name
from scim_server.web.sso_pages import IDP_REFUSED
from tests.support.scim import Scim
from tests.support.sso import person
from tests.support.wsfed import WsFed, connect_wsfed


async def refused(sso: WsFed, response: ClientResponse, reason: str) -> None:
    """The sign-in was refused as a browser sees it and as the admin reads it."""
    assert response.status == 403
    assert response.content_type == "text/html"
    assert IDP_REFUSED.heading in await response.text()
    entry = (await sso.log())[0]
    assert entry["outcome"] == "refused" and entry["protocol"] == "wsfed"
    assert reason in entry["reason"], entry["reason"]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: variant.name)
async def test_each_broken_token_is_refused_with_its_reason(entra: WsFed, variant: Variant) -> None:
    wctx = await entra.start()
    wresult = variant.build(entra.idp, person(), entra.rp, datetime.now(UTC))
    response = await entra.post(wresult, wctx)
    await refused(entra, response, variant.reason)
    assert await entra.users("ada@example.com") == []
    assert await entra.users("admin@example.com") == []


async def test_a_replayed_token_is_refused(entra: WsFed) -> None:
    wresult = entra.wresult(person())
    assert (await entra.post(wresult, await entra.start())).status == 303
    await refused(entra, await entra.post(wresult, await entra.start()), "already used (replay)")


async def test_a_wctx_this_sp_never_issued_is_refused(entra: WsFed) -> None:
    response = await entra.post(entra.wresult(person()), "forged-context")
    await refused(entra, response, "wctx 'forged-context' answers no outstanding request")
    assert await entra.users("ada@example.com") == []


async def test_a_wctx_is_used_once(entra: WsFed) -> None:
    wctx = await entra.start()
    assert (await entra.post(entra.wresult(person()), wctx)).status == 303
    await refused(entra, await entra.post(entra.wresult(person()), wctx), "answers no outstanding")


async def test_a_token_posted_from_another_browser_is_refused(entra: WsFed) -> None:
    """Login CSRF: the attacker's token and wctx, posted from the victim's browser."""
    wctx = await entra.start()
    response = await entra.post(
        entra.wresult(person()), wctx, **{binding_cookie_name("acme"): "another-browser-key"}
    )
    await refused(entra, response, "not bound to this browser")
    assert await entra.users("ada@example.com") == []


async def test_a_post_that_is_no_sign_in_gets_the_generic_page(entra: WsFed) -> None:
    for form, reason in (
        ({"wa": "wsignin1.0"}, "carries no wresult"),
        ({"wa": "wattr1.0", "wresult": "<x/>"}, "not a WS-Federation sign-in"),
        ({"wa": "wsignin1.0", "wresult": "<x/>"}, "not a WS-Trust token response"),
        ({"wa": "wsignin1.0", "wresult": "not xml"}, "malformed XML"),
    ):
        response = await entra.client.post(f"{entra.base}/reply", data=form)
        await refused(entra, response, reason)


async def test_a_saml11_token_whose_statements_name_two_people_is_refused(
    sts_key: SigningKey, scim: Scim
) -> None:
    """SAML 1.1 repeats the subject in every statement: the attributes of one person must not
    ride on the authentication of another, even when the STS signed both."""
    sso = await connect_wsfed(scim, WsFedIdp(entra_wsfed(), sts_key, "1.1"))
    tree = sso.idp.build(person(), sso.rp, now=datetime.now(UTC))
    *_, authentication = tree.iter(q(ASSERTION_11, "NameIdentifier"))
    authentication.text = "admin@example.com"
    response = await sso.post(serialise(sso.idp.sign(tree)), await sso.start())
    await refused(sso, response, "about different subjects")
    assert await sso.users("ada@example.com") == []
