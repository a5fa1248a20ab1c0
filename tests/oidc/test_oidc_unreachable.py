"""An IdP that is down or answers garbage: the browser gets the failure page, never a 500, and
the SSO log says what went wrong with which of the IdP's documents. And the IdP's keys: cached,
fetched again for an unknown ``kid`` (a key rollover), but not more often than the cooldown."""

from __future__ import annotations

import asyncio
import socket
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestServer

from idp_sim.oidc.provider import OidcProvider, okta_oidc
from samlkit.certs import SigningKey
from scim_server.core.sso.oidc import JWKS_REFRESH_COOLDOWN, OidcRejected, ProviderCache
from scim_server.web.idp_http import IdpClient
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, person_of
from tests.support.scim import ADMIN, Scim

Respond = Callable[[web.Request], web.Response]
LONG_SECRET = "a-client-secret-long-enough-for-hs256"


class BrokenIdp:
    """An IdP whose every document can be swapped for a broken answer."""

    def __init__(self, key: SigningKey) -> None:
        self.provider = OidcProvider(okta_oidc(iss_parameter=False), key)
        self.answers: dict[str, Respond] = {}
        self.hits: Counter[str] = Counter()
        self.stalled: set[str] = set()
        """The documents the IdP never answers (within any timeout a test sets)."""
        self.nonce = ""
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def _handle(self, request: web.Request) -> web.Response:
        kind = request.path.rsplit("/", 1)[-1]
        self.hits[kind] += 1
        if kind in self.stalled:
            await asyncio.sleep(30)
        if kind in self.answers:
            return self.answers[kind](request)
        if kind == "openid-configuration":
            return web.json_response(self.provider.discovery(self.base))
        if kind == "keys":
            return web.json_response(self.provider.jwks())
        token = self.provider.mint_id_token(
            person_of("ada@example.com"), CLIENT_ID, self.nonce, datetime.now(UTC), self.base
        )
        return web.json_response({"id_token": token, "token_type": "Bearer"})


@pytest.fixture
async def broken(scim: Scim, oidc_key: SigningKey) -> AsyncIterator[BrokenIdp]:
    idp = BrokenIdp(oidc_key)
    await idp.server.start_server()
    try:
        await _connect(scim, idp.provider.issuer(idp.base))
        yield idp
    finally:
        await idp.server.close()


async def _connect(scim: Scim, issuer: str) -> None:
    body = {
        "protocol": "oidc",
        "enabled": True,
        "oidc": {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    }
    response = await scim.client.put("/admin/tenants/acme/sso", json=body, headers=ADMIN)
    assert response.status == 200, await response.text()


async def _last_reason(scim: Scim) -> str:
    response = await scim.client.get("/admin/tenants/acme/sso/log", headers=ADMIN)
    return str((await response.json())["entries"][0]["reason"])


async def _login_refused(scim: Scim) -> str:
    response = await scim.client.get("/sso/acme/oidc/login", allow_redirects=False)
    assert response.status == 403, await response.text()
    assert "ask your administrator" in (await response.text()).lower()
    return await _last_reason(scim)


async def _round_trip(scim: Scim, idp: BrokenIdp, code: str = "a-code") -> ClientResponse:
    """Start a sign-in, and come back with ``code`` as the IdP would send the browser."""
    login = await scim.client.get("/sso/acme/oidc/login", allow_redirects=False)
    assert login.status == 302, await login.text()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(login.headers["Location"]).query)
    idp.nonce = query["nonce"][0]
    return await scim.client.get(
        "/sso/acme/oidc/callback",
        params={"state": query["state"][0], "code": code},
        allow_redirects=False,
    )


async def _callback_refused(scim: Scim, idp: BrokenIdp) -> str:
    response = await _round_trip(scim, idp)
    assert response.status == 403, await response.text()
    return await _last_reason(scim)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_idp_that_is_down_gives_the_failure_page_and_a_logged_reason(
    scim: Scim,
) -> None:
    await _connect(scim, f"http://127.0.0.1:{_closed_port()}/oauth2/default")
    reason = await _login_refused(scim)
    assert "discovery document" in reason and "cannot be reached" in reason


async def test_an_idp_that_does_not_answer_in_time_refuses_the_sign_in(
    scim: Scim, broken: BrokenIdp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scim_server.web.idp_http.TIMEOUT_SECONDS", 0.2)
    broken.stalled.add("token")
    reason = await _callback_refused(scim, broken)
    assert reason.startswith("the IdP's token endpoint at ")
    assert reason.endswith("did not answer within 0.2 s")


def _text(body: str, status: int = 200) -> Respond:
    return lambda request: web.Response(text=body, status=status)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (_text("<html>maintenance</html>"), "is not a JSON object"),
        (_text("[1, 2]"), "is not a JSON object"),
        (_text("{}", 503), "answered HTTP 503"),
        (_text(" " * (300 * 1024)), "exceeds 262144 bytes"),
        (
            lambda request: web.json_response({"issuer": "https://evil.example"}),
            "the discovery document names the issuer 'https://evil.example'",
        ),
        (
            lambda request: web.json_response(
                {"issuer": str(request.url.with_path("/oauth2/default").with_query(None))}
            ),
            "the discovery document's authorization_endpoint is not an http(s) URL",
        ),
    ],
)
async def test_a_garbage_discovery_document_refuses_the_sign_in_with_its_reason(
    scim: Scim, broken: BrokenIdp, answer: Respond, reason: str
) -> None:
    broken.answers["openid-configuration"] = answer
    assert reason in await _login_refused(scim)


async def test_the_minted_token_of_a_working_idp_signs_in(scim: Scim, broken: BrokenIdp) -> None:
    response = await _round_trip(scim, broken)
    assert response.status == 303, await response.text()


@pytest.mark.parametrize(
    ("document", "answer", "reason"),
    [
        ("token", _text("oops", 500), "token endpoint at"),
        ("token", _text('{"error": "invalid_client"}', 401), "HTTP 401: invalid_client"),
        ("token", _text('{"access_token": "a"}'), "the token endpoint's answer has no id_token"),
        ("keys", _text('{"keys": "none"}'), "the IdP's JWKS is not usable"),
        ("keys", _text("garbage"), "the IdP's JWKS at"),
    ],
)
async def test_a_garbage_token_answer_or_jwks_refuses_the_callback_with_its_reason(
    scim: Scim, broken: BrokenIdp, document: str, answer: Respond, reason: str
) -> None:
    broken.answers[document] = answer
    assert reason in await _callback_refused(scim, broken)


async def test_an_unknown_kid_fetches_the_keys_again_at_most_once_per_cooldown(
    broken: BrokenIdp,
) -> None:
    cache = ProviderCache(IdpClient())
    now = datetime.now(UTC)
    discovery = await cache.discovery(broken.provider.issuer(broken.base), now)
    await cache.key(discovery, "sim-key-1", now)
    await cache.key(discovery, "sim-key-1", now + timedelta(minutes=30))
    assert broken.hits["keys"] == 1 and broken.hits["openid-configuration"] == 1

    rolled = SigningKey.generate("rolled over", bits=1024)
    broken.provider = OidcProvider(broken.provider.shape, rolled, "sim-key-2")
    soon = now + JWKS_REFRESH_COOLDOWN / 2
    for _ in range(5):  # forged kids within the cooldown cost the IdP nothing
        with pytest.raises(OidcRejected, match="has no key 'sim-key-2'"):
            await cache.key(discovery, "sim-key-2", soon)
    assert broken.hits["keys"] == 1
    later = now + JWKS_REFRESH_COOLDOWN
    key = await cache.key(discovery, "sim-key-2", later)
    assert key.key_id == "sim-key-2" and broken.hits["keys"] == 2
    with pytest.raises(OidcRejected, match="has no key 'sim-key-1'"):
        await cache.key(discovery, "sim-key-1", later)
    assert broken.hits["keys"] == 2


async def test_an_hs256_token_keyed_with_the_client_secret_signs_in_only_when_listed(
    scim: Scim, broken: BrokenIdp
) -> None:
    def hs256_token(request: web.Request) -> web.Response:
        claims = broken.provider.claims(
            person_of("ada@example.com"), CLIENT_ID, broken.nonce, datetime.now(UTC), broken.base
        )
        token = jwt.encode(claims, LONG_SECRET, algorithm="HS256")
        return web.json_response({"id_token": token, "token_type": "Bearer"})

    broken.answers["token"] = hs256_token
    reason = await _callback_refused(scim, broken)
    assert reason.startswith("the ID token is signed with 'HS256', which this tenant does not")
    listed = await scim.client.patch(
        "/admin/tenants/acme/sso",
        json={"oidc": {"algorithms": ["RS256", "HS256"], "client_secret": LONG_SECRET}},
        headers=ADMIN,
    )
    assert listed.status == 200
    response = await _round_trip(scim, broken, "another-code")
    assert response.status == 303, await response.text()
