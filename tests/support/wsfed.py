"""One tenant's WS-Federation sign-in as a browser-less test drives it.

Tokens are minted at test time by idp_sim's Entra-shaped STS with ``now`` injected; the SP's
realm and reply URL are the ones it shows the admin, so nothing needs the network.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient

from idp_sim.saml.response import SamlSubject
from idp_sim.wsfed.token import RelyingParty, WsFedIdp
from scim_server.core.sso.settings import PRESETS, SsoSettings
from scim_server.web.state import SERVICES
from tests.support.scim import Scim
from tests.support.sso import TenantSso, post_as_browser

PASSIVE_URL = "https://login.example.test/wsfed"


@dataclass
class WsFed(TenantSso):
    """One tenant's WS-Federation connection: its STS, its realm and reply URL, its routes."""

    idp: WsFedIdp
    rp: RelyingParty

    @property
    def base(self) -> str:
        return f"/sso/{self.tenant}/wsfed"

    async def configure(self, **changes: Any) -> None:
        """Point the tenant at this harness's STS, its realm the SP's own, and apply ``changes``."""
        services = self.client.app[SERVICES]
        settings = SsoSettings(
            enabled=True,
            protocol="wsfed",
            preset="entra",
            idp_entity_id=self.idp.shape.entity_id,
            idp_sso_url=PASSIVE_URL,
            certificates=(self.idp.key.certificate,),
            attributes=PRESETS["entra"],
            sp_base_url=str(self.client.make_url("")).rstrip("/"),
        )
        await services.sso.stored_settings.change(
            self.tenant, lambda _: replace(settings, **changes)
        )

    async def start(self, relay_state: str | None = None, test: str | None = None) -> str:
        """SP-initiated: GET the login URL; answers the wctx the SP sent to the STS."""
        query = {
            key: value
            for key, value in (("RelayState", relay_state), ("test", test))
            if value is not None
        }
        response = await self.client.get(f"{self.base}/login", params=query, allow_redirects=False)
        assert response.status == 302, await response.text()
        sent = urllib.parse.parse_qs(urllib.parse.urlsplit(response.headers["Location"]).query)
        assert sent["wa"] == ["wsignin1.0"] and sent["wreply"] == [self.rp.reply_url]
        return sent["wctx"][0]

    def wresult(self, subject: SamlSubject, *, now: datetime | None = None) -> str:
        return self.idp.wresult(subject, self.rp, now=now or datetime.now(UTC))

    async def post(self, wresult: str, wctx: str | None, **cookies: str) -> Any:
        """POST the token to the reply URL as the STS has the browser do."""
        form = {"wa": "wsignin1.0", "wresult": wresult}
        if wctx is not None:
            form["wctx"] = wctx
        return await post_as_browser(
            lambda path, data: self.client.post(
                path, data=data, allow_redirects=False, cookies=cookies or None
            ),
            f"{self.base}/reply",
            form,
        )

    async def sign_in(self, subject: SamlSubject, *, solicited: bool = True) -> Any:
        wctx = await self.start() if solicited else None
        return await self.post(self.wresult(subject), wctx)


async def connect_wsfed(scim: Scim, idp: WsFedIdp) -> WsFed:
    """A harness on ``scim``'s tenant, signing in with WS-Federation at ``idp``."""
    sso = WsFed(scim.client, scim, idp, relying_party(scim.client, scim.tenant))
    await sso.configure()
    return sso


def relying_party(client: TestClient[Any, Any], tenant: str) -> RelyingParty:
    """The SP as the admin registers it at the STS: its default realm and reply URL."""
    base = f"{str(client.make_url('')).rstrip('/')}/sso/{tenant}/wsfed"
    return RelyingParty(realm=base, reply_url=f"{base}/reply")
