"""The ``saml`` suite, proven both ways.

Against our server's ACS (SSO set through the admin API with ``conformance.local``'s body)
every check passes, with and without SCIM access. Against small stand-in SPs every check fails
somewhere: one that accepts everything fails each refusal check, one that also provisions
whoever the NameID's ``.text`` names (the CVE-2017-11427 mistake) fails the comment injection,
and one that refuses everything fails acceptance, provisioning, and leaves every refusal check
unproven (an error, never a pass).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from lxml import etree

from conformance import local, saml_target
from conformance.checks import Verdict, suites
from conformance.cli import main, parser, run_options
from conformance.runner import RunResult, run
from conformance.saml_target import SamlTarget
from idp_sim.saml.response import IdentityProvider
from samlkit.certs import SigningKey, fingerprint_sha256
from samlkit.metadata import parse_idp_metadata
from samlkit.namespaces import ASSERTION, q
from tests.support.scim import ADMIN, Scim

SAML_IDS = [
    "saml.signed-accepted",
    "saml.user-provisioned",
    "saml.replay-refused",
    "saml.wrong-audience-refused",
    "saml.unsigned-refused",
    "saml.wrong-key-refused",
    "saml.expired-refused",
    "saml.wrong-recipient-refused",
    "saml.wrapped-refused",
    "saml.comment-injection",
]
REFUSALS = SAML_IDS[2:-1]


@pytest.fixture(scope="module")
def idp_key() -> SigningKey:
    return SigningKey.generate("conformance test IdP")


def scim_base(client: TestClient, scim: Scim) -> str:
    return str(client.make_url(scim.base))


async def configure_sso(client: TestClient, tenant: str, idp: IdentityProvider) -> SamlTarget:
    """Trust ``idp`` on ``tenant`` as ``make conformance`` does; the target the view shows."""
    response = await client.put(
        f"/admin/tenants/{tenant}/sso", json=local.sso_settings(idp), headers=ADMIN
    )
    assert response.status == 200, await response.text()
    sp = (await response.json())["service_provider"]
    return SamlTarget(sp["acs_url"], sp["entity_id"], idp)


def verdicts(result: RunResult) -> dict[str, Verdict]:
    return {r.check.id: r.verdict for r in result.results}


def explain(result: RunResult) -> str:
    return "\n".join(
        f"{r.check.id}: {r.verdict} {r.reason}" for r in result.results if r.verdict != Verdict.PASS
    )


async def users_under(scim: Scim, prefix: str) -> list[str]:
    response = await scim.get("/Users", params={"filter": f'userName sw "{prefix}"'})
    return [u["userName"] for u in (await response.json())["Resources"]]


def test_the_suite_registers_the_documented_checks() -> None:
    assert [c.id for c in suites()["saml"]] == SAML_IDS


@pytest.mark.parametrize("vendor", ["okta", "jumpcloud"])
async def test_every_check_passes_against_our_sp_and_the_users_are_swept(
    client: TestClient, scim: Scim, idp_key: SigningKey, vendor: str
) -> None:
    saml = await configure_sso(
        client, scim.tenant, IdentityProvider(saml_target.shape(vendor), idp_key)
    )
    result = await run(scim_base(client, scim), scim.token, ["saml"], options={"saml": saml})
    assert verdicts(result) == dict.fromkeys(SAML_IDS, Verdict.PASS), explain(result)
    assert result.leftovers == []
    assert await users_under(scim, "scimconf-") == []

    by_id = {r.check.id: r for r in result.results}
    replay = [(e.method, e.url, e.status) for e in by_id["saml.replay-refused"].transcript]
    assert replay == [("POST", saml.acs_url, 303), ("POST", saml.acs_url, 403)]
    provisioned = by_id["saml.user-provisioned"].transcript
    assert [e.method for e in provisioned] == ["GET", "POST", "GET"]
    acs_posts = [e for r in result.results for e in r.transcript if e.url == saml.acs_url]
    assert all("Authorization" not in e.request_headers for e in acs_posts)  # no SCIM token


async def test_without_scim_access_only_the_provisioning_check_skips(
    client: TestClient, scim: Scim, idp_key: SigningKey
) -> None:
    saml = await configure_sso(
        client, scim.tenant, IdentityProvider(saml_target.shape("okta"), idp_key)
    )
    result = await run("", "", ["saml"], options={"saml": saml})
    skipped = {r.check.id: r.reason for r in result.results if r.verdict is Verdict.SKIP}
    assert skipped == {
        "saml.user-provisioned": (
            "no SCIM access to look the user up: run with --base-url and --token"
        )
    }
    assert set(verdicts(result).values()) == {Verdict.PASS, Verdict.SKIP}, explain(result)
    assert result.failed is False


async def test_without_an_sp_the_suite_skips_and_says_how_to_run_it(
    client: TestClient, scim: Scim
) -> None:
    result = await run(scim_base(client, scim), scim.token, ["saml"])
    assert verdicts(result) == dict.fromkeys(SAML_IDS, Verdict.SKIP)
    assert all("--saml-acs-url" in r.reason for r in result.results)


# --- stand-in SPs that break the rules -------------------------------------------------------

Acs = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answering(status: int) -> Acs:
    """An ACS that never looks at what it is sent."""

    async def acs(request: web.Request) -> web.StreamResponse:
        await request.post()
        return web.Response(status=status, headers={"Location": "/"} if status < 400 else {})

    return acs


def naive_jit(scim: Scim) -> Acs:
    """Accepts anything and provisions whoever the NameID's ``.text`` names: no signature
    check, and a parser that keeps comments (so text stops at the first one)."""

    async def acs(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        document = etree.fromstring(base64.b64decode(str(form["SAMLResponse"])))
        name_id = document.find(f".//{q(ASSERTION, 'NameID')}")
        if name_id is not None and name_id.text:
            await scim.post(
                "/Users",
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name_id.text,
                },
            )
        return web.Response(status=303, headers={"Location": "/"})

    return acs


async def stand_in(aiohttp_server: Any, acs: Acs, idp_key: SigningKey) -> SamlTarget:
    app = web.Application()
    app.router.add_post("/acs", acs)
    server = await aiohttp_server(app)
    return SamlTarget(
        str(server.make_url("/acs")),
        "https://sp.example.test/metadata",
        IdentityProvider(saml_target.shape("okta"), idp_key),
    )


async def test_an_sp_that_accepts_everything_fails_every_refusal_and_provisioning(
    aiohttp_server: Any, client: TestClient, scim: Scim, idp_key: SigningKey
) -> None:
    saml = await stand_in(aiohttp_server, answering(303), idp_key)
    result = await run(scim_base(client, scim), scim.token, ["saml"], options={"saml": saml})
    assert verdicts(result) == {
        "saml.signed-accepted": Verdict.PASS,
        "saml.user-provisioned": Verdict.FAIL,
        **dict.fromkeys(REFUSALS, Verdict.FAIL),
        # It signed nobody in, so nobody was impersonated either.
        "saml.comment-injection": Verdict.PASS,
    }, explain(result)
    by_id = {r.check.id: r for r in result.results}
    assert by_id["saml.replay-refused"].reason == (
        "the SP accepted the same response a second time: HTTP 303 to /"
    )
    assert by_id["saml.unsigned-refused"].reason.startswith(
        "the SP accepted an unsigned response (no signature anywhere): HTTP 303"
    )
    assert "SCIM finds 0 users with that userName" in by_id["saml.user-provisioned"].reason


async def test_an_sp_that_reads_the_name_id_up_to_a_comment_fails_the_injection_check(
    aiohttp_server: Any, client: TestClient, scim: Scim, idp_key: SigningKey
) -> None:
    saml = await stand_in(aiohttp_server, naive_jit(scim), idp_key)
    result = await run(
        scim_base(client, scim),
        scim.token,
        ["saml"],
        options={"saml": saml},
        only=["saml.user-provisioned", "saml.comment-injection"],
    )
    assert verdicts(result) == {
        "saml.user-provisioned": Verdict.PASS,
        "saml.comment-injection": Verdict.FAIL,
    }, explain(result)
    assert "read the NameID up to the comment and signed in scimconf-" in result.results[1].reason
    assert result.leftovers == []
    assert await users_under(scim, "scimconf-") == []  # the impersonated user was swept too


async def test_without_scim_an_accepted_injection_is_undecided_not_passed(
    aiohttp_server: Any, idp_key: SigningKey
) -> None:
    saml = await stand_in(aiohttp_server, answering(302), idp_key)
    result = await run("", "", ["saml"], options={"saml": saml}, only=["saml.comment-injection"])
    [outcome] = result.results
    assert outcome.verdict is Verdict.SKIP
    assert outcome.reason.startswith("the SP accepted the response (HTTP 302 to /); without SCIM")


async def test_an_sp_that_refuses_everything_fails_acceptance_and_proves_no_refusal(
    aiohttp_server: Any, client: TestClient, scim: Scim, idp_key: SigningKey
) -> None:
    saml = await stand_in(aiohttp_server, answering(403), idp_key)
    result = await run(scim_base(client, scim), scim.token, ["saml"], options={"saml": saml})
    assert verdicts(result) == {
        "saml.signed-accepted": Verdict.FAIL,
        "saml.user-provisioned": Verdict.FAIL,
        **dict.fromkeys([*REFUSALS, "saml.comment-injection"], Verdict.ERROR),
    }, explain(result)
    assert result.results[0].reason.startswith(
        "the SP refused a genuine signed response from http://www.okta.com/"
    )
    assert result.results[-1].reason.startswith(
        "the SP refused a genuine signed response (HTTP "
        "403), so refusing a broken one proves nothing"
    )
    assert result.failed is True


# --- the command line and make conformance ----------------------------------------------------


async def test_the_written_idp_metadata_lets_an_sp_trust_the_runner(
    client: TestClient, scim: Scim, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The QA flow: write the IdP, import its metadata into the SP, run the suite by CLI."""
    write = ["--write-saml-idp", str(tmp_path), "--saml-idp-entity-id", "https://idp.qa.test/"]
    assert await asyncio.to_thread(main, write) == 0
    printed = capsys.readouterr().out
    assert f"--saml-idp-key {tmp_path / saml_target.KEY_FILE}" in printed
    metadata = (tmp_path / saml_target.METADATA_FILE).read_bytes()
    [certificate] = parse_idp_metadata(metadata).certificates
    assert await asyncio.to_thread(main, write) == 0  # a second call keeps the key
    again = parse_idp_metadata((tmp_path / saml_target.METADATA_FILE).read_bytes())
    assert [fingerprint_sha256(c) for c in again.certificates] == [fingerprint_sha256(certificate)]
    assert again.entity_id == "https://idp.qa.test/"

    imported = await client.post(
        f"/admin/tenants/{scim.tenant}/sso/metadata",
        data=metadata,
        headers={**ADMIN, "Content-Type": "application/samlmetadata+xml"},
    )
    assert imported.status == 200, await imported.text()
    enabled = await client.patch(
        f"/admin/tenants/{scim.tenant}/sso", json={"enabled": True}, headers=ADMIN
    )
    sp = (await enabled.json())["service_provider"]
    flags = [
        "--suite",
        "saml",
        "--saml-acs-url",
        sp["acs_url"],
        "--saml-sp-entity-id",
        sp["entity_id"],
        "--saml-idp-entity-id",
        "https://idp.qa.test/",
        "--saml-idp-key",
        str(tmp_path / saml_target.KEY_FILE),
        "--saml-idp-cert",
        str(tmp_path / saml_target.CERT_FILE),
    ]
    scim_flags = ["--base-url", scim_base(client, scim), "--token", scim.token]
    assert await asyncio.to_thread(main, [*flags, *scim_flags]) == 0
    assert await asyncio.to_thread(main, flags) == 0  # SCIM-less: provisioning skips
    assert await users_under(scim, "scimconf-") != []  # the SCIM-less run cannot sweep


def test_the_cli_refuses_incomplete_saml_flags_and_scim_suites_without_a_base_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--suite", "saml", "--saml-acs-url", "http://sp.test/acs"]) == 2
    assert (
        "--saml-acs-url needs --saml-sp-entity-id, --saml-idp-key, --saml-idp-cert"
        in capsys.readouterr().err
    )
    missing = [
        "--suite",
        "saml",
        "--saml-acs-url",
        "http://sp.test/acs",
        "--saml-sp-entity-id",
        "sp",
        "--saml-idp-key",
        str(tmp_path / "none.pem"),
        "--saml-idp-cert",
        str(tmp_path / "none.pem"),
    ]
    assert main(missing) == 2
    assert "none.pem" in capsys.readouterr().err
    assert main(["--suite", "rfc", "--suite", "saml"]) == 2
    assert "--base-url is required" in capsys.readouterr().err


def test_local_passes_the_sp_values_of_its_tenant_to_the_saml_suite(tmp_path: Path) -> None:
    idp, files = saml_target.write(tmp_path, saml_target.shape("okta"))
    view = {
        "acs_url": "http://127.0.0.1:1/sso/conformance-a/saml/acs",
        "entity_id": "http://127.0.0.1:1/sso/conformance-a/saml/metadata",
    }
    plan = local.plan(local.parse(["--root", str(tmp_path), "--port", "1"]), ["saml"])
    argv = plan.conformance_argv("http://a", "http://b", local.saml_argv(view, files))
    saml = run_options(parser().parse_args(argv))["saml"]
    assert (saml.acs_url, saml.sp_entity_id) == (view["acs_url"], view["entity_id"])
    assert saml.idp.shape.entity_id == idp.shape.entity_id
    assert fingerprint_sha256(saml.idp.key.certificate) == fingerprint_sha256(idp.key.certificate)
    assert "saml" in local.default_suites(suites())
