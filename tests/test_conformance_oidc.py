"""The ``oidc`` suite, proven both ways.

The suite is the OP; our server's tenant is made its RP through the admin API with
``conformance.local``'s body, and every check passes. Behind a proxy that turns our RP's
refusal of one forgery into an acceptance, exactly that forgery's check fails; an RP that
refuses everything fails acceptance and proves no refusal; one that trusts whatever the token
endpoint answers fails every forgery the OP can stage, and the PKCE check saying why.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance import local
from conformance.checks import Verdict, suites
from conformance.cli import announce_oidc, main, parser, run_options
from conformance.oidc_target import OidcTarget
from conformance.runner import run
from idp_sim.oidc.tampering import EVIL_ISSUER
from tests.support.proxy import Req, Resp, is_, set_status, start_proxy, when
from tests.support.scim import ADMIN, Scim
from tests.support.verdicts import explain, verdicts

OIDC_IDS = [
    "oidc.signed-accepted",
    "oidc.wrong-audience-refused",
    "oidc.wrong-issuer-refused",
    "oidc.expired-refused",
    "oidc.alg-none-refused",
    "oidc.wrong-key-refused",
    "oidc.hs256-key-confusion-refused",
    "oidc.nonce-mismatch-refused",
    "oidc.mix-up-refused",
    "oidc.replayed-code-refused",
    "oidc.missing-pkce-refused",
]
SECRET = "conformance-test-client-secret"
CALLBACK = r"/sso/acme/oidc/callback"


def root(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


async def configure_oidc(
    client: TestClient[Any, Any], tenant: str, behind: str | None = None
) -> OidcTarget:
    """Make ``tenant`` an RP of the suite's OP as ``make conformance`` does, reached ``behind``
    a proxy when one is given; the target with the RP values its view shows."""
    op = OidcTarget("", "", "scim-conformance", SECRET, local.free_port())
    body = local.oidc_settings(op) | ({"sp_base_url": behind} if behind else {})
    response = await client.put(f"/admin/tenants/{tenant}/sso", json=body, headers=ADMIN)
    assert response.status == 200, await response.text()
    sp = (await response.json())["service_provider"]
    return replace(op, login_url=sp["login_url"], redirect_uri=sp["redirect_uri"])


def test_the_suite_registers_one_refusal_per_variant_of_the_catalogue() -> None:
    assert [c.id for c in suites()["oidc"]] == OIDC_IDS


async def test_every_check_passes_against_our_rp(client: TestClient[Any, Any], scim: Scim) -> None:
    oidc = await configure_oidc(client, scim.tenant)
    base = str(client.make_url(scim.base))
    result = await run(base, scim.token, ["oidc"], options={"oidc": oidc})
    assert verdicts(result) == dict.fromkeys(OIDC_IDS, Verdict.PASS), explain(result)
    assert result.leftovers == []

    replay = {r.check.id: r for r in result.results}["oidc.replayed-code-refused"].transcript
    callbacks = [e.status for e in replay if e.url.startswith(oidc.redirect_uri)]
    assert callbacks == [303, 403]
    assert all("Authorization" not in e.request_headers for e in replay)  # no SCIM token


async def test_an_rp_that_accepts_one_forgery_fails_exactly_that_check(
    aiohttp_server: Any, client: TestClient[Any, Any], scim: Scim
) -> None:
    """Our RP behind a proxy that answers 303 where it refused the callback of a mix-up (an
    authorization response naming another issuer)."""

    def mixed_up(req: Req) -> bool:
        return is_("GET", CALLBACK)(req) and req.query.get("iss") == EVIL_ISSUER

    def accept(req: Req, resp: Resp) -> None:
        set_status(303)(req, resp)
        resp.headers["Location"] = "/"

    proxy = await start_proxy(aiohttp_server, root(client), when(mixed_up, after=accept))
    oidc = await configure_oidc(client, scim.tenant, behind=proxy)
    result = await run("", "", ["oidc"], options={"oidc": oidc})
    expected = dict.fromkeys(OIDC_IDS, Verdict.PASS) | {"oidc.mix-up-refused": Verdict.FAIL}
    assert verdicts(result) == expected, explain(result)
    assert {r.check.id: r for r in result.results}["oidc.mix-up-refused"].reason == (
        "the RP accepted mix_up (the authorization response names another issuer): HTTP 303 to /"
    )


async def test_an_rp_that_refuses_everything_fails_acceptance_and_proves_no_refusal(
    aiohttp_server: Any, client: TestClient[Any, Any], scim: Scim
) -> None:
    def refuse(req: Req, resp: Resp) -> None:
        set_status(403)(req, resp)

    proxy = await start_proxy(
        aiohttp_server, root(client), when(is_("GET", CALLBACK), after=refuse)
    )
    oidc = await configure_oidc(client, scim.tenant, behind=proxy)
    result = await run("", "", ["oidc"], options={"oidc": oidc})
    assert verdicts(result) == {
        "oidc.signed-accepted": Verdict.FAIL,
        **dict.fromkeys(OIDC_IDS[1:], Verdict.ERROR),
    }, explain(result)
    assert result.results[1].reason.startswith(
        "the RP refused a genuine sign-in (HTTP 403 to /sso/acme/), so refusing a broken one"
    )


async def test_without_an_rp_the_suite_skips_and_says_how_to_run_it() -> None:
    result = await run("", "", ["oidc"])
    assert verdicts(result) == dict.fromkeys(OIDC_IDS, Verdict.SKIP)
    assert all("--oidc-login-url" in r.reason for r in result.results)


def test_the_cli_takes_the_secret_from_the_environment_and_never_prints_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ["--suite", "oidc", "--oidc-login-url", "http://rp.test/sso/a/oidc/login"]
    flags += ["--oidc-redirect-uri", "http://rp.test/sso/a/oidc/callback", "--oidc-op-port", "1"]
    assert main(flags) == 2
    assert "--oidc-login-url needs" in capsys.readouterr().err
    monkeypatch.setenv("SCIM_OIDC_CLIENT_SECRET", SECRET)
    oidc = run_options(parser().parse_args(flags))["oidc"]
    assert isinstance(oidc, OidcTarget)
    assert (oidc.issuer, oidc.client_id, oidc.client_secret) == (
        "http://127.0.0.1:1/oauth2/default",
        "scim-conformance",
        SECRET,
    )
    announced = announce_oidc(oidc)
    assert "http://127.0.0.1:1/oauth2/default" in announced and SECRET not in announced
    tunnelled = run_options(parser().parse_args([*flags, "--oidc-op-url", "https://op.qa.test/"]))
    assert tunnelled["oidc"].issuer == "https://op.qa.test/oauth2/default"


def test_local_passes_its_oidc_tenant_s_rp_values_to_the_suite() -> None:
    view = {
        "login_url": "http://127.0.0.1:1/sso/conformance-oidc/oidc/login",
        "redirect_uri": "http://127.0.0.1:1/sso/conformance-oidc/oidc/callback",
    }
    args = parser().parse_args(local.oidc_argv(view, 4321))
    assert (args.oidc_login_url, args.oidc_redirect_uri, args.oidc_op_port) == (
        view["login_url"],
        view["redirect_uri"],
        4321,
    )


def naive_rp(oidc: OidcTarget) -> web.Application:
    """An RP that trusts whatever the token endpoint answers: no PKCE, no check of the ID
    token, of the ``iss`` parameter or even of the state."""

    async def login(request: web.Request) -> web.Response:
        query = {
            "response_type": "code",
            "client_id": oidc.client_id,
            "redirect_uri": oidc.redirect_uri,
            "scope": "openid",
            "state": "s",
            "nonce": "n",
        }
        authorize = oidc.origin + oidc.shape.authorize_path
        raise web.HTTPFound(f"{authorize}?{urllib.parse.urlencode(query)}")

    async def callback(request: web.Request) -> web.Response:
        form = {
            "grant_type": "authorization_code",
            "code": request.query.get("code", ""),
            "redirect_uri": oidc.redirect_uri,
            "client_id": oidc.client_id,
            "client_secret": oidc.client_secret,
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(oidc.origin + oidc.shape.token_path, data=form) as answer,
        ):
            return web.Response(status=303 if answer.status == 200 else 403)

    app = web.Application()
    app.router.add_get("/login", login)
    app.router.add_get("/callback", callback)
    return app


async def test_an_rp_that_trusts_the_token_endpoint_fails_every_forgery_and_pkce(
    aiohttp_server: Any,
) -> None:
    port = local.free_port()
    oidc = OidcTarget(
        f"http://127.0.0.1:{port}/login",
        f"http://127.0.0.1:{port}/callback",
        "naive",
        SECRET,
        local.free_port(),
    )
    await aiohttp_server(naive_rp(oidc), port=port)
    result = await run("", "", ["oidc"], options={"oidc": oidc})
    caught_by_the_op = {"oidc.signed-accepted", "oidc.replayed-code-refused"}
    assert verdicts(result) == {
        check_id: Verdict.PASS if check_id in caught_by_the_op else Verdict.FAIL
        for check_id in OIDC_IDS
    }, explain(result)
    assert {r.check.id: r.reason for r in result.results}["oidc.missing-pkce-refused"] == (
        "the RP's authorization request carries no PKCE code_challenge (RFC 7636)"
    )


async def test_the_op_serves_under_a_public_url_in_front_of_its_port(
    aiohttp_server: Any, client: TestClient[Any, Any], scim: Scim
) -> None:
    """``--oidc-op-url``: the RP and the runner reach the OP through a proxy to its port."""
    port = local.free_port()
    public = await start_proxy(aiohttp_server, f"http://127.0.0.1:{port}", when(lambda _: False))
    op = OidcTarget("", "", "scim-conformance", SECRET, port, public_url=public)
    response = await client.put(
        f"/admin/tenants/{scim.tenant}/sso", json=local.oidc_settings(op), headers=ADMIN
    )
    assert response.status == 200, await response.text()
    sp = (await response.json())["service_provider"]
    oidc = replace(op, login_url=sp["login_url"], redirect_uri=sp["redirect_uri"])
    assert oidc.issuer == f"{public}/oauth2/default"
    result = await run("", "", ["oidc"], options={"oidc": oidc})
    assert verdicts(result) == dict.fromkeys(OIDC_IDS, Verdict.PASS), explain(result)
