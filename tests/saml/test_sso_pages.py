"""The words, landing pages, icon and branding of the browser pages under ``/sso/{tenant}``,
over real HTTP (the same pages in Chromium: ``test_browser_pages.py``)."""

from __future__ import annotations

import urllib.parse
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from scim_server.config import Settings
from scim_server.core.sso.settings import SettingsStore
from scim_server.storage.sso import SsoRepository
from scim_server.web.state import SERVICES
from tests.support.commands import Commands
from tests.support.scim import ADMIN
from tests.support.sso import Sso, person, set_seats, sign_out_form, with_form_token
from tests.support.stores import unreachable_database

PASSWORD = "correct horse battery"
LOGO = "https://cdn.example.com/brand/acme-logo.png?v=2"


async def _text(response: Any, status: int) -> str:
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"
    return str(await response.text())


async def _patch_sso(sso: Sso, body: Any) -> Any:
    return await sso.client.patch(f"/admin/tenants/{sso.tenant}/sso", json=body, headers=ADMIN)


# -- failure pages: what happened, and the way out from where the person came -----------------


async def test_a_wrong_password_says_the_user_name_or_password_is_wrong_and_offers_the_form(
    okta_sso: Sso,
) -> None:
    await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    response = await okta_sso.client.post(
        "/sso/acme/password",
        data=await with_form_token(
            okta_sso.client, "/sso/acme/", {"username": "bob@example.com", "password": "nope"}
        ),
    )
    text = await _text(response, 403)
    assert 'id="sso-error"' in text
    assert "user name or password" in text
    assert "identity provider" not in text
    assert 'id="back" href="/sso/acme/">Try again</a>' in text


async def test_a_refused_identity_provider_answer_says_to_start_again(okta_sso: Sso) -> None:
    await okta_sso.configure(allow_idp_initiated=False)
    text = await _text(await okta_sso.sign_in(person(), solicited=False), 403)
    assert "identity provider" in text
    assert "password" not in text
    assert 'id="back" href="/sso/acme/">' in text


async def test_single_sign_on_that_cannot_start_says_so_and_names_the_administrator(
    okta_sso: Sso,
) -> None:
    await okta_sso.configure(enabled=False)
    response = await okta_sso.client.get("/sso/acme/saml/login")
    text = await _text(response, 403)
    assert "not available" in text and "administrator" in text
    assert "identity provider" not in text


async def test_an_unavailable_database_says_to_try_again_in_a_moment(okta_sso: Sso) -> None:
    """No sign-in was refused: the page says the service is briefly away, not that it failed."""
    sso = okta_sso.client.app[SERVICES].sso
    async with unreachable_database() as unreachable:
        sso.stored_settings = SettingsStore(SsoRepository(unreachable))
        response = await okta_sso.client.get("/sso/acme/")
    text = await _text(response, 503)
    assert "try again in a moment" in text.lower()
    assert "Sign-in failed" not in text


# -- sign-out: POST, then 303 to a page a reload cannot re-post --------------------------------


async def test_sign_out_answers_303_to_the_signed_out_page_and_ends_the_session(
    okta_sso: Sso,
) -> None:
    await okta_sso.sign_in(person())
    response = await okta_sso.client.post(
        "/sso/acme/logout", data=await sign_out_form(okta_sso.client), allow_redirects=False
    )
    assert response.status == 303
    assert response.headers["Location"] == "/sso/acme/signed-out"
    assert response.cookies["scim_sso_acme"].value == ""
    landing = await _text(await okta_sso.client.get("/sso/acme/signed-out"), 200)
    assert "You are signed out" in landing
    assert '<a id="sign-in-again" href="/sso/acme/">' in landing
    home = await _text(await okta_sso.client.get("/sso/acme/"), 200)
    assert 'id="sign-in-sso"' in home


async def test_the_signed_out_page_of_someone_still_signed_in_leads_home(okta_sso: Sso) -> None:
    """A bookmarked landing page must not claim a sign-out that did not happen."""
    await okta_sso.sign_in(person())
    response = await okta_sso.client.get("/sso/acme/signed-out", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/sso/acme/"


# -- the icon --------------------------------------------------------------------------------


async def test_the_favicon_is_served_and_every_page_links_it(okta_sso: Sso) -> None:
    for path in ("/favicon.ico", "/favicon.svg"):
        icon = await okta_sso.client.get(path)
        assert icon.status == 200, path
        assert icon.content_type == "image/svg+xml"
        assert (await icon.text()).startswith("<svg")
    page = await _text(await okta_sso.client.get("/sso/acme/"), 200)
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in page


# -- branding ----------------------------------------------------------------------------------


async def test_branding_is_set_through_the_admin_api_and_shown_on_the_pages(
    okta_sso: Sso,
) -> None:
    branding = {"display_name": "Acme Corp", "logo_url": LOGO, "accent_color": "#AA3300"}
    response = await _patch_sso(okta_sso, {"branding": branding})
    assert response.status == 200, await response.text()
    assert (await response.json())["branding"] == {**branding, "accent_color": "#aa3300"}

    page = await okta_sso.client.get("/sso/acme/")
    text = await _text(page, 200)
    assert '<span id="brand-name">Acme Corp</span>' in text
    logo = f'<img id="brand-logo" src="{LOGO}" alt="" referrerpolicy="no-referrer">'
    assert logo in text.replace("&amp;", "&")
    assert "--accent:#aa3300" in text
    policy = page.headers["Content-Security-Policy"]
    assert "img-src 'self' https://cdn.example.com/brand/acme-logo.png;" in policy


async def test_branding_defaults_to_the_tenant_name_no_logo_and_the_house_colour(
    okta_sso: Sso,
) -> None:
    view = await (await okta_sso.client.get("/admin/tenants/acme/sso", headers=ADMIN)).json()
    assert view["branding"] == {"display_name": None, "logo_url": None, "accent_color": None}
    page = await okta_sso.client.get("/sso/acme/")
    text = await _text(page, 200)
    assert '<span id="brand-name">acme</span>' in text
    assert 'id="brand-logo"' not in text
    assert "img-src 'self';" in page.headers["Content-Security-Policy"]


async def test_branding_is_a_merge_patch_and_null_restores_a_default(okta_sso: Sso) -> None:
    await _patch_sso(okta_sso, {"branding": {"display_name": "Acme", "accent_color": "#123456"}})
    response = await _patch_sso(okta_sso, {"branding": {"display_name": None}})
    assert (await response.json())["branding"] == {
        "display_name": None,
        "logo_url": None,
        "accent_color": "#123456",
    }


async def test_a_name_that_is_markup_is_shown_as_text(okta_sso: Sso) -> None:
    name = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    assert (await _patch_sso(okta_sso, {"branding": {"display_name": name}})).status == 200
    text = await _text(await okta_sso.client.get("/sso/acme/"), 200)
    assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text


@pytest.mark.parametrize(
    ("branding", "field"),
    [
        ({"logo_url": "javascript:alert(1)"}, "branding.logo_url"),
        ({"logo_url": "http://cdn.example.com/logo.png"}, "branding.logo_url"),
        ({"logo_url": "data:image/png;base64,iVBORw0KGgo="}, "branding.logo_url"),
        ({"logo_url": "https://user:pw@cdn.example.com/logo.png"}, "branding.logo_url"),
        ({"logo_url": "https://cdn.example.com/a;b.png"}, "branding.logo_url"),
        ({"logo_url": "https://cdn.example.com/a b.png"}, "branding.logo_url"),
        ({"logo_url": "https://cdn.example.com/logo.png#x"}, "branding.logo_url"),
        ({"logo_url": "https:///logo.png"}, "branding.logo_url"),
        ({"accent_color": "red"}, "branding.accent_color"),
        ({"accent_color": "#12345"}, "branding.accent_color"),
        ({"accent_color": "#1234567"}, "branding.accent_color"),
        ({"accent_color": "#12345g"}, "branding.accent_color"),
        ({"accent_color": "#123456;}"}, "branding.accent_color"),
        ({"display_name": ""}, "branding.display_name"),
        ({"display_name": "x" * 101}, "branding.display_name"),
        ({"display_name": "Acme\nCorp"}, "branding.display_name"),
        ({"display_name": 7}, "branding.display_name"),
        ({"colour": "#123456"}, "branding.colour"),
    ],
)
async def test_a_bad_branding_value_is_a_400_naming_the_field(
    okta_sso: Sso, branding: dict[str, Any], field: str
) -> None:
    response = await _patch_sso(okta_sso, {"branding": branding})
    assert response.status == 400, await response.text()
    error = await response.json()
    assert error["scimType"] == "invalidValue"
    assert field in error["detail"]
    view = await (await okta_sso.client.get("/admin/tenants/acme/sso", headers=ADMIN)).json()
    assert view["branding"]["logo_url"] is None


async def test_every_page_of_the_tenant_carries_its_branding(okta_sso: Sso) -> None:
    await _patch_sso(okta_sso, {"branding": {"display_name": "Acme Corp"}})
    await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    failed = await okta_sso.client.post(
        "/sso/acme/password",
        data=await with_form_token(
            okta_sso.client, "/sso/acme/", {"username": "bob@example.com", "password": "nope"}
        ),
    )
    signed_in = await okta_sso.client.post(
        "/sso/acme/password",
        data=await with_form_token(
            okta_sso.client, "/sso/acme/", {"username": "bob@example.com", "password": PASSWORD}
        ),
    )
    signed_out = await okta_sso.client.post(
        "/sso/acme/logout", data=await sign_out_form(okta_sso.client)
    )
    missing = await okta_sso.client.get("/sso/acme/nowhere")
    wrong_method = await okta_sso.client.get("/sso/acme/password")
    answered = ((failed, 403), (signed_in, 200), (signed_out, 200), (missing, 404))
    for response, status in (*answered, (wrong_method, 405)):
        assert '<span id="brand-name">Acme Corp</span>' in await _text(response, status)


# -- every failure on a browser route is a page --------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/sso/acme/logout", 405, "POST"),
        ("POST", "/sso/acme/signed-out", 405, "GET, HEAD"),
        ("PUT", "/sso/acme/saml/acs", 405, "POST"),
        ("GET", "/sso/acme/nowhere", 404, None),
        ("GET", "/sso/nosuch/signed-out", 404, None),
        ("GET", "/sso/nosuch/", 404, None),
    ],
)
async def test_a_wrong_method_or_path_under_sso_is_a_page_not_scim_json(
    okta_sso: Sso, method: str, path: str, status: int, allow: str | None
) -> None:
    response = await okta_sso.client.request(method, path, allow_redirects=False)
    assert 'id="sso-error"' in await _text(response, status)
    assert response.headers.get("Allow") == allow


async def test_the_seat_test_report_and_repost_pages_carry_the_branding_too(
    okta_sso: Sso, tenant_reads: Commands
) -> None:
    await _patch_sso(okta_sso, {"branding": {"display_name": "Acme Corp", "logo_url": LOGO}})
    shown = '<span id="brand-name">Acme Corp</span>'

    request_id = await okta_sso.start()
    form = {"SAMLResponse": okta_sso.response(person(), in_response_to=request_id)}
    # Posted from a browser without the binding cookie: the page that posts it again.
    root = str(okta_sso.client.make_url(""))
    async with (
        aiohttp.ClientSession(base_url=root) as elsewhere,
        elsewhere.post(f"{okta_sso.base}/saml/acs", data=form) as repost,
    ):
        text = await _text(repost, 200)
        assert 'id="sso-repost"' in text and shown in text
        policy = repost.headers["Content-Security-Policy"]
        assert "img-src 'self' https://cdn.example.com/brand/acme-logo.png;" in policy
        assert "script-src 'nonce-" in policy

    await okta_sso.scim.create_user("first@example.com")
    await set_seats(okta_sso.client, "acme", 1)
    assert shown in await _text(await okta_sso.sign_in(person()), 403)

    await _patch_sso(okta_sso, {"enabled": False})
    ticket = await okta_sso.client.post("/admin/tenants/acme/sso/test", headers=ADMIN)
    url = urllib.parse.urlsplit((await ticket.json())["url"])
    request_id = await okta_sso.start(test=urllib.parse.parse_qs(url.query)["test"][0])
    report = await okta_sso.post(okta_sso.response(person(), in_response_to=request_id))
    text = await _text(report, 200)
    assert 'id="test-result"' in text and shown in text


# -- what branding costs: no read on the pages of a request that went well ---------------------


@pytest.fixture
def tenant_reads() -> Commands:
    """The commands on the tenants collection, where the SSO settings and branding live."""
    return Commands({"tenants"})


@pytest.fixture
async def client(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, tenant_reads: Commands
) -> TestClient[Any, Any]:
    """The suite's client, on an application that hands each request's tally to ``tenant_reads``."""
    return await tenant_reads.client(aiohttp_client, settings)


async def test_a_branded_page_reads_the_tenant_once_and_a_failure_page_once_more(
    okta_sso: Sso, tenant_reads: Commands
) -> None:
    await _patch_sso(okta_sso, {"branding": {"display_name": "Acme Corp", "logo_url": LOGO}})
    await okta_sso.scim.create_user("bob@example.com", password=PASSWORD)
    client = okta_sso.client
    assert await tenant_reads.of(client.get("/sso/acme/")) == {"find": 1}
    wrong = await with_form_token(
        client, "/sso/acme/", {"username": "bob@example.com", "password": "nope"}
    )
    # The sign-in reads the settings; the failure page reads the branding again.
    failed = client.post("/sso/acme/password", data=wrong)
    assert await tenant_reads.of(failed, succeeds=False) == {"find": 2}
    assert await tenant_reads.of(client.get("/sso/acme/signed-out")) == {"find": 1}


# -- a request refused before any SSO handler runs is a page too --------------------------------


async def test_a_request_over_the_limits_under_sso_is_a_page_not_scim_json(okta_sso: Sso) -> None:
    client = okta_sso.client
    long_url = await client.get("/sso/acme/", params={"RelayState": "x" * 9000})
    assert 'id="sso-error"' in await _text(long_url, 414)
    big_header = await client.get("/sso/acme/", headers={"X-Padding": "x" * 9000})
    assert 'id="sso-error"' in await _text(big_header, 431)
    big_body = await client.post(
        "/sso/acme/password", data=b"username=a&password=" + b"x" * 2_000_000
    )
    text = await _text(big_body, 413)
    assert 'id="sso-error"' in text and 'href="/sso/acme/"' in text


@pytest.mark.parametrize(
    ("path", "home"), [("/sso/acme", "/sso/acme/"), ("/sso/", "/"), ("/sso/a%3Bb", "/")]
)
async def test_a_path_under_sso_that_names_no_page_is_the_not_found_page(
    okta_sso: Sso, path: str, home: str
) -> None:
    response = await okta_sso.client.get(URL(path, encoded=True), allow_redirects=False)
    text = await _text(response, 404)
    assert "Page not found" in text and f'id="back" href="{home}"' in text
