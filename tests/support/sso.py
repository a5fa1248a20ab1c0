"""One tenant's SAML SSO as a browser-less test drives it, and the people who sign in.

Every response is built at test time by idp_sim's own IdP with ``now`` injected, so nothing
expires and nothing needs the network.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.test_utils import TestClient

from idp_sim.saml import shapes
from idp_sim.saml.response import IdentityProvider, SamlSubject, ServiceProvider
from idp_sim.saml.shapes import IdpShape
from samlkit.authn_request import parse_authn_request
from samlkit.bindings import decode_redirect
from samlkit.certs import SigningKey
from scim_server.config import Settings
from scim_server.core.sso.sessions import FORM_COOKIE, browser_key
from scim_server.core.sso.settings import PRESETS, SsoSettings
from scim_server.web.app import create_app
from scim_server.web.state import SERVICES
from tests.support.scim import ADMIN, Scim, make_tenant


def person(
    login: str = "ada@example.com",
    *,
    groups: tuple[str, ...] = (),
    first_name: str = "Ada",
    last_name: str = "Lovelace",
) -> SamlSubject:
    return SamlSubject(
        login=login,
        email=login,
        first_name=first_name,
        last_name=last_name,
        user_id="00u" + login.split("@")[0].ljust(17, "x")[:17],
        groups=groups,
    )


@dataclass
class TenantSso:
    """What a test reads of one tenant's sign-ins, whatever the protocol: its log, its users."""

    client: TestClient[Any, Any]
    scim: Scim

    @property
    def tenant(self) -> str:
        return self.scim.tenant

    async def log(self) -> list[dict[str, Any]]:
        services = self.client.app[SERVICES]
        entries: list[dict[str, Any]] = await services.sso.repository.entries(self.tenant, 50)
        return entries

    async def last_reason(self) -> str:
        entries = await self.log()
        assert entries, "nothing was logged"
        return str(entries[0].get("reason", ""))

    async def users(self, user_name: str) -> list[dict[str, Any]]:
        response = await self.scim.get("/Users", params={"filter": f'userName eq "{user_name}"'})
        assert response.status == 200
        return list((await response.json())["Resources"])


@dataclass
class Sso(TenantSso):
    """One tenant's SSO as a test drives it: its IdP, its SP values and its HTTP endpoints."""

    idp: IdentityProvider
    sp: ServiceProvider

    @property
    def base(self) -> str:
        return f"/sso/{self.tenant}"

    async def configure(self, idp: IdentityProvider | None = None, **changes: Any) -> None:
        """Point the tenant at ``idp`` (default: this harness's) and apply ``changes``."""
        idp = idp or self.idp
        services = self.client.app[SERVICES]
        settings = SsoSettings(
            enabled=True,
            preset=idp.shape.vendor,
            idp_entity_id=idp.shape.entity_id,
            idp_sso_url=f"https://idp.example.test{idp.shape.sso_path}",
            certificates=(idp.key.certificate,),
            attributes=PRESETS[idp.shape.vendor],
            sp_base_url=self.sp.acs_url.removesuffix(f"/sso/{self.tenant}/saml/acs"),
        )
        await services.sso.stored_settings.change(
            self.tenant, lambda _: replace(settings, **changes)
        )

    async def start(self, relay_state: str | None = None, test: str | None = None) -> str:
        """SP-initiated: GET the login URL; answers the AuthnRequest ID the SP issued."""
        query = {
            key: value
            for key, value in (("RelayState", relay_state), ("test", test))
            if value is not None
        }
        response = await self.client.get(
            f"{self.base}/saml/login", params=query, allow_redirects=False
        )
        assert response.status == 302, await response.text()
        location = urllib.parse.urlsplit(response.headers["Location"])
        request = urllib.parse.parse_qs(location.query)["SAMLRequest"][0]
        return parse_authn_request(decode_redirect(request)).id

    def response(
        self,
        subject: SamlSubject,
        *,
        in_response_to: str | None = None,
        now: datetime | None = None,
        idp: IdentityProvider | None = None,
    ) -> str:
        return (idp or self.idp).response_b64(
            subject, self.sp, in_response_to=in_response_to, now=now or datetime.now(UTC)
        )

    async def post(self, saml_response: str, relay_state: str | None = None) -> Any:
        form = {"SAMLResponse": saml_response}
        if relay_state is not None:
            form["RelayState"] = relay_state
        return await post_as_browser(
            lambda path, data: self.client.post(path, data=data, allow_redirects=False),
            f"{self.base}/saml/acs",
            form,
        )

    async def sign_in(
        self, subject: SamlSubject, *, solicited: bool = True, idp: IdentityProvider | None = None
    ) -> Any:
        request_id = await self.start() if solicited else None
        return await self.post(self.response(subject, in_response_to=request_id, idp=idp))


PostForm = Callable[[str, dict[str, str]], Awaitable[aiohttp.ClientResponse]]
HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
FORM_TOKEN = re.compile(r'<input type="hidden" name="form_token" value="([^"]+)">')
FORM = re.compile(r'<form [^>]*action="([^"]*)"[^>]*>(.*?)</form>', re.DOTALL)


async def form_token(
    client: TestClient[Any, Any] | aiohttp.ClientSession,
    page: str,
    action: str | None = None,
) -> str:
    """The form token of the form on ``page`` that posts to ``action`` (by default its password
    form: ``page`` + ``password`` for a tenant's home, else ``page`` itself), as the browser
    ``client`` is given it (the form key's cookie lands in its jar): what a person's browser
    posts with the form.

    A page that shows no such form now (the browser is signed in, or the tenant has closed
    password sign-in since) stands for one opened earlier, in another tab: the app's codec makes
    the token that page gave, for the browser's form key (a new one if it has none yet)."""
    wanted = action or (f"{page}password" if page.endswith("/") else page)
    async with client.get(page) as response:
        assert response.status == 200, await response.text()
        text = await response.text()
    for target, inside in FORM.findall(text):
        found = FORM_TOKEN.search(inside)
        if found is not None and urlsplit(html.unescape(target)).path == urlsplit(wanted).path:
            return html.unescape(found.group(1))
    assert isinstance(client, TestClient), f"{page} has no form posting to {wanted}"
    jar = client.session.cookie_jar
    keys = [cookie.value for cookie in jar if cookie.key == FORM_COOKIE]
    key = keys[0] if keys else browser_key(None)
    jar.update_cookies({FORM_COOKIE: key})
    return str(client.app[SERVICES].sso.sessions.codec.form_token(key, wanted))


async def with_form_token(
    client: TestClient[Any, Any] | aiohttp.ClientSession,
    page: str,
    form: dict[str, str],
    action: str | None = None,
) -> dict[str, str]:
    """``form`` with the token of the form on ``page`` posting to ``action`` (by default its
    password form) for the browser ``client``."""
    return {**form, "form_token": await form_token(client, page, action)}


async def sign_out_form(
    client: TestClient[Any, Any] | aiohttp.ClientSession, home: str = "/sso/acme/"
) -> dict[str, str]:
    """What the sign-out button of the tenant's ``home`` page posts (its form token) in the
    browser ``client``."""
    return {"form_token": await form_token(client, home, f"{home}logout")}


async def post_as_browser(post: PostForm, acs: str, form: dict[str, str]) -> Any:
    """POST a form to the ACS as a browser does: the page that has it posted again from the SP's
    own site (the ACS asks for that when the binding cookie did not come along) is followed."""
    response = await post(acs, form)
    if response.status == 200 and response.content_type == "text/html":
        page = await response.text()
        if 'id="sso-repost"' in page:
            fields = {name: html.unescape(value) for name, value in HIDDEN_INPUT.findall(page)}
            return await post(acs, fields)
    return response


def service_provider(client: TestClient[Any, Any], tenant: str) -> ServiceProvider:
    root = str(client.make_url("")).rstrip("/")
    return ServiceProvider(
        entity_id=f"{root}/sso/{tenant}/saml/metadata", acs_url=f"{root}/sso/{tenant}/saml/acs"
    )


async def set_seats(client: TestClient[Any, Any], tenant: str, seats: int | None) -> None:
    response = await client.put(
        f"/admin/tenants/{tenant}/seats", json={"seats": seats}, headers=ADMIN
    )
    assert response.status == 200, await response.text()


async def connect_sso(scim: Scim, shape: IdpShape, key: SigningKey) -> Sso:
    """A harness on ``scim``'s tenant, SSO pointed at an IdP of ``shape`` signing with ``key``."""
    sso = Sso(
        scim.client, scim, IdentityProvider(shape, key), service_provider(scim.client, scim.tenant)
    )
    await sso.configure()
    return sso


WORKERS_ROOT = "http://sp.example.test"
"""The public URL two workers of one server stand behind (``two_workers``)."""


async def two_workers(
    aiohttp_client: Any, settings: Settings, idp_key: SigningKey, *, one_browser: bool
) -> tuple[Sso, Sso]:
    """Two applications on one database, behind one public URL, as two workers (or servers):
    tenant ``acme`` with Okta-shaped SSO on. ``one_browser``: both clients share one cookie
    jar, as one browser whichever worker answers it; otherwise each has its own."""
    public = replace(settings, public_url=WORKERS_ROOT)
    shared = aiohttp.CookieJar(unsafe=True)
    jars = [shared, shared] if one_browser else [aiohttp.CookieJar(unsafe=True) for _ in range(2)]
    first, second = [await aiohttp_client(create_app(public), cookie_jar=jar) for jar in jars]
    token = (await make_tenant(first, "acme"))["token"]
    idp = IdentityProvider(shapes.okta(), idp_key)
    sp = ServiceProvider(
        entity_id=f"{WORKERS_ROOT}/sso/acme/saml/metadata",
        acs_url=f"{WORKERS_ROOT}/sso/acme/saml/acs",
    )
    one, two = (Sso(client, Scim(client, "acme", token), idp, sp) for client in (first, second))
    await one.configure()
    return one, two
