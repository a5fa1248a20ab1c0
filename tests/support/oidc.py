"""One tenant's OpenID Connect sign-in as a browser-less test drives it: idp_sim's provider on a
loopback port, the tenant configured through the admin API, and the browser's steps (the SP's
login, the IdP's sign-in page, the callback) taken over real HTTP with both sites' cookies.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from idp_sim.directory import Directory, DirectoryGroup, DirectoryUser
from idp_sim.oidc.provider import OidcShape
from idp_sim.oidc.tampering import Variant
from idp_sim.oidc.webapp import HostedOidcApp
from idp_sim.saml.response import SamlSubject
from idp_sim.saml.webapp import IDP_STATE, IdpServerConfig, create_idp_app
from samlkit.certs import SigningKey
from tests.support.scim import ADMIN, Scim

CLIENT_ID = "0oa-scim-toolkit"
CLIENT_SECRET = "simulated-client-secret"


def person_of(login: str, groups: tuple[str, ...] = ()) -> SamlSubject:
    """The person ``directory`` makes of ``login``, as the provider describes them."""
    return SamlSubject.from_directory(_user(login), groups)


def _user(login: str) -> DirectoryUser:
    return DirectoryUser(
        id="00u" + login.split("@")[0].ljust(17, "x")[:17],
        login=login,
        given_name=login.split("@")[0].capitalize(),
        family_name="Lovelace",
        email=login,
    )


def directory(*people: tuple[str, tuple[str, ...]]) -> Directory:
    """People (login, their groups) for the simulated IdP; ids in Okta's shape."""
    users = [_user(login) for login, _ in people]
    names = sorted({group for _, groups in people for group in groups})
    groups = [
        DirectoryGroup(
            id=f"00g{index:017d}",
            name=name,
            member_ids=[u.id for u, (_, gs) in zip(users, people, strict=True) if name in gs],
        )
        for index, name in enumerate(names)
    ]
    return Directory(users=users, groups=groups)


@dataclass
class Oidc:
    """The tenant of ``scim`` signing in with OIDC at idp_sim's provider of ``shape``."""

    scim: Scim
    idp: TestServer
    shape: OidcShape
    browser: aiohttp.ClientSession
    """The browser's side at the IdP (its session cookie); the SP side is ``scim.client``."""

    @property
    def tenant(self) -> str:
        return self.scim.tenant

    @property
    def issuer(self) -> str:
        return str(self.idp.make_url(self.shape.issuer_path))

    def tamper(self, variant: Variant | None) -> None:
        """Make the provider misbehave (or behave again)."""
        self.idp.app[IDP_STATE].oidc.tampering = variant

    async def configure(self, **settings: Any) -> dict[str, Any]:
        body = {
            "protocol": "oidc",
            "enabled": True,
            "preset": self.shape.vendor,
            "allowed_groups": ["*"],
            "oidc": {
                "issuer": self.issuer,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scopes": ["openid", "email", "profile", "groups"],
            },
            **settings,
        }
        response = await self.scim.client.put(
            f"/admin/tenants/{self.tenant}/sso", json=body, headers=ADMIN
        )
        assert response.status == 200, await response.text()
        return dict(await response.json())

    async def start(self, **query: str) -> str:
        """GET the SP's login: answers the authorization URL it sends the browser to."""
        response = await self.scim.client.get(
            f"/sso/{self.tenant}/oidc/login", params=query, allow_redirects=False
        )
        assert response.status == 302, await response.text()
        return response.headers["Location"]

    async def authorize(self, url: str, login: str, **changes: str | None) -> str:
        """The person signs in at the IdP; answers the callback URL it sends the browser to.
        ``changes`` alter the authorization request first (None drops a parameter)."""
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        for name, value in changes.items():
            if value is None:
                query.pop(name, None)
            else:
                query[name] = value
        target = parts._replace(query=urllib.parse.urlencode(query)).geturl()
        response = await self.browser.get(target, allow_redirects=False)
        if response.status == 303:  # not signed in at the IdP yet: its sign-in page
            transaction = urllib.parse.parse_qs(
                urllib.parse.urlsplit(response.headers["Location"]).query
            )["txn"][0]
            response = await self.browser.post(
                self.idp.make_url("/signin"),
                data={"txn": transaction, "login": login},
                allow_redirects=False,
            )
        assert response.status == 302, await response.text()
        return response.headers["Location"]

    async def callback(self, url: str) -> aiohttp.ClientResponse:
        """The browser arrives back at the SP's redirect URI."""
        parts = urllib.parse.urlsplit(url)
        return await self.scim.client.get(f"{parts.path}?{parts.query}", allow_redirects=False)

    async def sign_in(self, login: str, **query: str) -> aiohttp.ClientResponse:
        return await self.callback(await self.authorize(await self.start(**query), login))

    async def sign_out_at_idp(self) -> None:
        response = await self.browser.get(self.idp.make_url("/signout"), allow_redirects=False)
        assert response.status == 303


@asynccontextmanager
async def oidc_provider(
    scim: Scim, shape: OidcShape, key: SigningKey, people: Directory, private_key_jwt: bool = False
) -> AsyncIterator[Oidc]:
    """idp_sim serving ``shape`` on a loopback port, with the SP's redirect URI registered (and
    with ``private_key_jwt``, the SP's JWKS as the client's key set)."""
    root = str(scim.client.make_url("")).rstrip("/")
    home = f"{root}/sso/{scim.tenant}/"
    app = HostedOidcApp(
        shape,
        CLIENT_ID,
        CLIENT_SECRET,
        (f"{home}oidc/callback",),
        jwks_uri=f"{home}oidc/jwks" if private_key_jwt else None,
    )
    config = IdpServerConfig(key=key, directory=people, apps=(), oidc_apps=(app,))
    server = TestServer(create_idp_app(config), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            yield Oidc(scim, server, shape, browser)
    finally:
        await server.close()


async def log(sso: Oidc) -> list[dict[str, Any]]:
    """The tenant's SSO log, newest first (through the admin API)."""
    response = await sso.scim.client.get(f"/admin/tenants/{sso.tenant}/sso/log", headers=ADMIN)
    assert response.status == 200
    return list((await response.json())["entries"])
