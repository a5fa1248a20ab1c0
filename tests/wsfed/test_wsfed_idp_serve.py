"""The WS-Federation STS of ``idp-sim idp serve`` on a loopback port, end to end: the SP's login
sends the browser there, a person signs in, the STS's auto-posting form carries the token to
the reply URL, and the person is signed in at the SP. The STS refuses a realm or reply URL it
does not know, and its metadata configures the tenant."""

from __future__ import annotations

import argparse
import html
import re
import urllib.parse
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from idp_sim.saml.command import parse_wsfed_app
from idp_sim.saml.webapp import IdpServerConfig, create_idp_app
from idp_sim.wsfed.token import RelyingParty
from idp_sim.wsfed.webapp import HostedWsFedApp
from samlkit.certs import SigningKey
from tests.support.oidc import directory
from tests.support.scim import ADMIN, Scim
from tests.support.sso import HIDDEN_INPUT, TenantSso
from tests.support.wsfed import relying_party

SSO = "/admin/tenants/acme/sso"
FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


@pytest.fixture
async def sts(scim: Scim, sts_key: SigningKey) -> AsyncIterator[tuple[TestServer, RelyingParty]]:
    """idp_sim's STS with the tenant's realm and reply URL registered, and the tenant pointed at
    it by importing its federation metadata."""
    rp = relying_party(scim.client, "acme")
    people = directory(("ada@example.com", ("Engineering",)))
    config = IdpServerConfig(
        key=sts_key, directory=people, apps=(), wsfed_apps=(HostedWsFedApp(rp, token="1.1"),)
    )
    server = TestServer(create_idp_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        setup = {"protocol": "wsfed", "preset": "entra", "allowed_groups": ["*"]}
        assert (await scim.client.patch(SSO, json=setup, headers=ADMIN)).status == 200
        metadata_url = str(server.make_url(config.wsfed_apps[0].shape.metadata_path))
        async with aiohttp.ClientSession() as fetch:
            document = await (await fetch.get(metadata_url)).read()
        imported = await scim.client.post(
            f"{SSO}/metadata",
            data=document,
            headers={**ADMIN, "Content-Type": "application/samlmetadata+xml"},
        )
        assert imported.status == 200, await imported.text()
        assert (await scim.client.patch(SSO, json={"enabled": True}, headers=ADMIN)).status == 200
        yield server, rp
    finally:
        await server.close()


async def test_a_person_signs_in_through_the_served_sts(
    scim: Scim, sts: tuple[TestServer, RelyingParty]
) -> None:
    server, rp = sts
    login = await scim.client.get("/sso/acme/wsfed/login", allow_redirects=False)
    assert login.status == 302
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        asked = await browser.get(login.headers["Location"], allow_redirects=False)
        assert asked.status == 303, await asked.text()
        transaction = urllib.parse.parse_qs(urllib.parse.urlsplit(asked.headers["Location"]).query)
        page = await browser.post(
            server.make_url("/signin"),
            data={"txn": transaction["txn"][0], "login": "ada@example.com"},
            allow_redirects=False,
        )
        text = await page.text()
    [action] = FORM_ACTION.findall(text)
    assert html.unescape(action) == rp.reply_url
    fields = {name: html.unescape(value) for name, value in HIDDEN_INPUT.findall(text)}
    assert fields["wa"] == "wsignin1.0" and "wctx" in fields
    signed_in = await scim.client.post(
        urllib.parse.urlsplit(rp.reply_url).path, data=fields, allow_redirects=False
    )
    assert signed_in.status == 303, await signed_in.text()
    sso = TenantSso(scim.client, scim)
    [user] = await sso.users("ada@example.com")
    assert user["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    [entry, *_] = await sso.log()
    assert entry["outcome"] == "signed_in" and entry["protocol"] == "wsfed"


async def test_the_sts_refuses_a_realm_or_reply_url_it_does_not_know(
    sts: tuple[TestServer, RelyingParty],
) -> None:
    server, rp = sts
    async with aiohttp.ClientSession() as browser:
        for query in (
            {"wa": "wsignin1.0", "wtrealm": "urn:evil"},
            {"wa": "wsignin1.0", "wtrealm": rp.realm, "wreply": "https://evil.example/"},
            {"wa": "wattr1.0"},
        ):
            response = await browser.get(
                server.make_url("/9188040d-6c67-4c5b-b112-36a304b66dad/wsfed"), params=query
            )
            assert response.status == 400, query


def test_the_wsfed_app_option_reads_reply_url_realm_and_token() -> None:
    app = parse_wsfed_app("https://sp/sso/acme/wsfed/reply,token=1.1,name=hr")
    assert app.rp == RelyingParty("https://sp/sso/acme/wsfed", "https://sp/sso/acme/wsfed/reply")
    assert (app.token, app.label) == ("1.1", "hr")
    assert parse_wsfed_app("https://sp/r,realm=spn:x").rp.realm == "spn:x"
    for bad in ("ftp://sp/r", "https://sp/r,token=3", "https://sp/r,scope=x"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_wsfed_app(bad)
