"""WS-Federation sign-out: from here (the session ends, then the STS signs the browser out,
``wa=wsignout1.0``) and from the STS (``wa=wsignout1.0`` or ``wa=wsignoutcleanup1.0`` at the
reply URL). Either way the session is over on the server, not only in the browser."""

from __future__ import annotations

import urllib.parse

from scim_server.core.sso.sessions import cookie_name
from tests.support.sso import person, sign_out_form
from tests.support.wsfed import PASSIVE_URL, WsFed


async def _signed_in(entra: WsFed) -> str:
    response = await entra.sign_in(person())
    assert response.status == 303
    return str(response.cookies[cookie_name("acme")].value)


async def _still_signed_in(entra: WsFed, token: str) -> bool:
    page = await entra.client.get("/sso/acme/", cookies={cookie_name("acme"): token})
    return 'id="signed-in-user"' in await page.text()


async def test_signing_out_here_ends_the_session_and_signs_out_at_the_sts(entra: WsFed) -> None:
    token = await _signed_in(entra)
    response = await entra.client.post(
        "/sso/acme/logout", data=await sign_out_form(entra.client), allow_redirects=False
    )
    assert response.status == 303
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == PASSIVE_URL
    query = urllib.parse.parse_qs(location.query)
    assert query["wa"] == ["wsignout1.0"]
    assert query["wtrealm"] == [entra.rp.realm]
    assert query["wreply"][0].endswith("/sso/acme/signed-out")
    assert not await _still_signed_in(entra, token)


async def test_the_sts_signing_the_browser_out_ends_the_session(entra: WsFed) -> None:
    for action in ("wsignout1.0", "wsignoutcleanup1.0"):
        token = await _signed_in(entra)
        response = await entra.client.get(
            f"{entra.base}/reply", params={"wa": action}, cookies={cookie_name("acme"): token}
        )
        assert response.status == 200
        assert 'id="signed-out"' in await response.text()
        assert response.headers["Cache-Control"] == "no-store"
        assert not await _still_signed_in(entra, token), action


async def test_a_get_of_the_reply_url_that_is_no_sign_out_is_not_found(entra: WsFed) -> None:
    token = await _signed_in(entra)
    for query in ({}, {"wa": "wsignin1.0"}):
        response = await entra.client.get(
            f"{entra.base}/reply", params=query, cookies={cookie_name("acme"): token}
        )
        assert response.status == 404
    assert await _still_signed_in(entra, token)


async def test_the_signed_in_page_lets_its_sign_out_form_go_on_to_the_sts(entra: WsFed) -> None:
    """Browsers hold a form's redirects to its form-action: the STS's origin must be allowed,
    and nothing more."""
    await _signed_in(entra)
    page = await entra.client.get("/sso/acme/")
    policy = page.headers["Content-Security-Policy"]
    assert "form-action 'self' https://login.example.test;" in policy
    await entra.configure(idp_sso_url="https://login.example.test;script-src */wsfed")
    policy = (await entra.client.get("/sso/acme/")).headers["Content-Security-Policy"]
    assert "form-action 'self';" in policy and "script-src *" not in policy
