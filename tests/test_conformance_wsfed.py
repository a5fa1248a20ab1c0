"""The ``wsfed`` suite, proven both ways.

Against our server's reply URL (SSO set through the admin API with ``conformance.local``'s
body) every check passes, each sign-in solicited at the login URL or unsolicited. Behind a
proxy that turns our RP's refusal of one forgery into an acceptance, exactly that forgery's
check fails; an RP that refuses everything fails acceptance and proves no refusal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from conformance import local, saml_target, wsfed_target
from conformance.checks import Verdict, suites
from conformance.cli import main, parser, run_options
from conformance.runner import run
from conformance.wsfed_target import WsFedTarget
from idp_sim.saml.response import IdentityProvider
from samlkit.certs import SigningKey
from tests.support.proxy import Req, Resp, is_, set_status, start_proxy, when
from tests.support.scim import ADMIN, Scim
from tests.support.verdicts import explain, verdicts

WSFED_IDS = [
    "wsfed.signed-accepted",
    "wsfed.replay-refused",
    "wsfed.wrong-audience-refused",
    "wsfed.expired-refused",
    "wsfed.unsigned-refused",
    "wsfed.wrong-key-refused",
    "wsfed.altered-refused",
    "wsfed.wrapped-refused",
    "wsfed.signature-moved-refused",
    "wsfed.comment-refused",
    "wsfed.wrong-issuer-refused",
]
REPLY = r"/sso/acme/wsfed/reply"


@pytest.fixture(scope="module")
def sts_key() -> SigningKey:
    return SigningKey.generate("conformance test STS")


def root(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


async def configure_wsfed(
    client: TestClient[Any, Any], tenant: str, key: SigningKey
) -> WsFedTarget:
    """Make ``tenant`` an RP of the runner's STS as ``make conformance`` does; the target its
    view shows."""
    idp = IdentityProvider(saml_target.shape("okta"), key)
    response = await client.put(
        f"/admin/tenants/{tenant}/sso", json=local.wsfed_settings(idp), headers=ADMIN
    )
    assert response.status == 200, await response.text()
    sp = (await response.json())["service_provider"]
    return WsFedTarget(
        sp["wsfed_reply_url"], sp["wsfed_realm"], wsfed_target.shape(), key, sp["login_url"]
    )


def test_the_suite_registers_one_refusal_per_broken_token_of_the_catalogue() -> None:
    assert [c.id for c in suites()["wsfed"]] == WSFED_IDS


@pytest.mark.parametrize("solicited", [True, False], ids=["solicited", "unsolicited"])
async def test_every_check_passes_against_our_rp_and_the_users_are_swept(
    client: TestClient[Any, Any], scim: Scim, sts_key: SigningKey, solicited: bool
) -> None:
    wsfed = await configure_wsfed(client, scim.tenant, sts_key)
    if not solicited:
        wsfed = WsFedTarget(wsfed.reply_url, wsfed.realm, wsfed.shape, wsfed.key)
    base = str(client.make_url(scim.base))
    result = await run(base, scim.token, ["wsfed"], options={"wsfed": wsfed})
    assert verdicts(result) == dict.fromkeys(WSFED_IDS, Verdict.PASS), explain(result)
    assert result.leftovers == []

    replay = result.results[1].transcript
    posted = [(e.method, e.status) for e in replay if e.url == wsfed.reply_url]
    assert posted == [("POST", 303), ("POST", 403)] * 2  # SAML 2.0, then SAML 1.1
    logins = [e for e in replay if e.url == wsfed.login_url]
    assert len(logins) == (4 if solicited else 0)
    assert all("Authorization" not in e.request_headers for e in replay)  # no SCIM token


async def test_an_rp_that_accepts_one_forgery_fails_exactly_that_check(
    aiohttp_server: Any, client: TestClient[Any, Any], scim: Scim, sts_key: SigningKey
) -> None:
    """Our RP behind a proxy that answers 303 where it refused a token for another realm."""
    honest = await configure_wsfed(client, scim.tenant, sts_key)

    def other_realm(req: Req) -> bool:
        return is_("POST", REPLY)(req) and b"urn%3Aevil.example%3Aapp" in req.body

    def accept(req: Req, resp: Resp) -> None:
        set_status(303)(req, resp)
        resp.headers["Location"] = "/"

    proxy = await start_proxy(aiohttp_server, root(client), when(other_realm, after=accept))
    wsfed = WsFedTarget(
        honest.reply_url.replace(root(client), proxy),
        honest.realm,
        honest.shape,
        honest.key,
        (honest.login_url or "").replace(root(client), proxy),
    )
    result = await run("", "", ["wsfed"], options={"wsfed": wsfed})
    expected = dict.fromkeys(WSFED_IDS, Verdict.PASS) | {
        "wsfed.wrong-audience-refused": Verdict.FAIL
    }
    assert verdicts(result) == expected, explain(result)
    assert result.results[2].reason == (
        "the RP accepted a SAML 2.0 token signed for another realm: HTTP 303 to /"
    )


async def test_an_rp_that_refuses_everything_fails_acceptance_and_proves_no_refusal(
    aiohttp_server: Any, sts_key: SigningKey
) -> None:
    async def reply(request: web.Request) -> web.Response:
        await request.post()
        return web.Response(status=403)

    app = web.Application()
    app.router.add_post("/reply", reply)
    server = await aiohttp_server(app)
    wsfed = WsFedTarget(
        str(server.make_url("/reply")), "urn:rp.test", wsfed_target.shape(), sts_key
    )
    result = await run("", "", ["wsfed"], options={"wsfed": wsfed})
    assert verdicts(result) == {
        "wsfed.signed-accepted": Verdict.FAIL,
        **dict.fromkeys(WSFED_IDS[1:], Verdict.ERROR),
    }, explain(result)
    assert result.results[0].reason.startswith("the RP refused a genuine SAML 2.0 token from")


async def test_without_an_rp_the_suite_skips_and_says_how_to_run_it() -> None:
    result = await run("", "", ["wsfed"])
    assert verdicts(result) == dict.fromkeys(WSFED_IDS, Verdict.SKIP)
    assert all("--wsfed-reply-url" in r.reason for r in result.results)


def test_the_cli_signs_with_the_saml_key_unless_given_one_and_derives_the_realm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    idp, files = saml_target.write(tmp_path, saml_target.shape("okta"))
    reply = ["--suite", "wsfed", "--wsfed-reply-url", "http://rp.test/sso/a/wsfed/reply"]
    keys = ["--saml-idp-key", str(files.key), "--saml-idp-cert", str(files.cert)]
    wsfed = run_options(parser().parse_args([*reply, *keys]))["wsfed"]
    assert isinstance(wsfed, WsFedTarget)
    assert (wsfed.realm, wsfed.login_url) == ("http://rp.test/sso/a/wsfed", None)
    assert wsfed.key.certificate == idp.key.certificate
    assert wsfed.shape.entity_id.startswith("https://sts.windows.net/")
    assert main(reply) == 2
    assert "--wsfed-reply-url needs the STS key the RP trusts" in capsys.readouterr().err


def test_local_passes_its_wsfed_tenant_s_rp_values_to_the_suite() -> None:
    view = {
        "wsfed_reply_url": "http://127.0.0.1:1/sso/conformance-wsfed/wsfed/reply",
        "wsfed_realm": "http://127.0.0.1:1/sso/conformance-wsfed/wsfed",
        "login_url": "http://127.0.0.1:1/sso/conformance-wsfed/wsfed/login",
    }
    args = parser().parse_args(local.wsfed_argv(view))
    assert (args.wsfed_reply_url, args.wsfed_realm, args.wsfed_login_url) == (
        view["wsfed_reply_url"],
        view["wsfed_realm"],
        view["login_url"],
    )
