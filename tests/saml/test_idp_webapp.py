"""The simulated IdP web app over HTTP: metadata, SP- and IdP-initiated sign-in, refusals, the
sign-in and launch pages, IdP sessions, and the ``idp-sim idp`` command line."""

from __future__ import annotations

import base64
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lxml.html
import pytest
from aiohttp.test_utils import TestClient
from lxml import etree
from signxml import DigestAlgorithm, SignatureConfiguration, SignatureMethod, XMLVerifier

from idp_sim.cli import main
from idp_sim.directory import Directory, DirectoryUser
from idp_sim.saml.command import okta_key_for, parse_app_spec
from idp_sim.saml.response import ServiceProvider
from idp_sim.saml.sessions import IdpSession, PendingLogins, SessionCookies
from idp_sim.saml.shapes import jumpcloud, okta
from idp_sim.saml.webapp import MAX_LISTED_USERS, HostedApp, IdpServerConfig, create_idp_app
from samlkit.authn_request import AuthnRequest, build_authn_request, new_request_id
from samlkit.bindings import encode_post, encode_redirect
from samlkit.certs import SigningKey, certificate_pem
from samlkit.metadata import parse_idp_metadata
from samlkit.namespaces import ASSERTION, DSIG, EMAIL, PERSISTENT, PROTOCOL, TRANSIENT
from samlkit.xml import parse_strict
from tests.support.idp_serve import idp_serve

OKTA_SP = ServiceProvider(
    "https://sp.example.test/sso/acme/saml/metadata", "https://sp.example.test/sso/acme/saml/acs"
)
JUMPCLOUD_SP = ServiceProvider(
    "https://sp.example.test/sso/globex/saml/metadata",
    "https://sp.example.test/sso/globex/saml/acs",
)
OKTA_SSO = okta().sso_path
OKTA_LAUNCH = OKTA_SSO.replace("/app/", "/home/").removesuffix("/sso/saml")
JUMPCLOUD_SSO = jumpcloud().sso_path
RELAY = "/reports?a=1&b=<2>&c=\"'"
NS = {"p": PROTOCOL, "a": ASSERTION, "ds": DSIG}


@pytest.fixture
def directory() -> Directory:
    """Four people in two groups; the last one is deactivated."""
    people = Directory.generate(seed=5, users=4, groups=2, members_per_group=2)
    people.users[3].active = False
    return people


@pytest.fixture
async def idp(aiohttp_client: Any, idp_key: SigningKey, directory: Directory) -> TestClient:
    config = IdpServerConfig(
        key=idp_key,
        directory=directory,
        apps=[
            HostedApp(okta(), OKTA_SP),
            HostedApp(jumpcloud(), JUMPCLOUD_SP, default_relay_state="/welcome"),
        ],
    )
    return await aiohttp_client(create_idp_app(config))


# ---- helpers ---------------------------------------------------------------------------------
def authn_request(
    sp: ServiceProvider = OKTA_SP,
    *,
    issuer: str | None = None,
    acs_url: str | None = "",
    name_id_format: str | None = EMAIL,
    force_authn: bool = False,
) -> tuple[str, bytes]:
    """A request ID and the AuthnRequest XML; ``acs_url=""`` means the SP's registered ACS."""
    request_id = new_request_id()
    xml = build_authn_request(
        AuthnRequest(
            id=request_id,
            issuer=issuer or sp.entity_id,
            destination=None,
            acs_url=sp.acs_url if acs_url == "" else acs_url,
            issue_instant=datetime.now(UTC),
            name_id_format=name_id_format,
            force_authn=force_authn,
        )
    )
    return request_id, xml


def transaction(response: Any) -> str:
    """The sign-in transaction the IdP redirected to."""
    assert response.status == 303, response.status
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert location.path == "/signin"
    return urllib.parse.parse_qs(location.query)["txn"][0]


async def sign_in(idp: TestClient, start: Any, login: str) -> Any:
    """Follow the redirect to the sign-in page and pick ``login`` there."""
    txn = transaction(start)
    page = await idp.get("/signin", params={"txn": txn})
    assert page.status == 200
    assert f'data-testid="user-{login}"' in await page.text()
    return await idp.post("/signin", data={"txn": txn, "login": login}, allow_redirects=False)


async def posted(response: Any, acs_url: str) -> dict[str, str]:
    """The fields of the auto-posting form, after checking it goes to ``acs_url``."""
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    form = lxml.html.fromstring(await response.text()).forms[0]
    assert form.method == "POST" and form.action == acs_url
    return dict(form.form_values())


def saml_response(fields: dict[str, str]) -> etree._Element:
    return parse_strict(base64.b64decode(fields["SAMLResponse"]))


def verify_pinned(xml: bytes, cert: Any, location: str) -> etree._Element:
    """The element signxml says the signature at ``location`` covers, pinned to the IdP cert."""
    config = SignatureConfiguration(
        location=location,
        signature_methods=frozenset({SignatureMethod.RSA_SHA256}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256}),
    )
    result = XMLVerifier().verify(xml, x509_cert=certificate_pem(cert), expect_config=config)
    return result.signed_xml


def attribute(root: etree._Element, name: str) -> list[str]:
    return root.xpath(
        f"a:Assertion/a:AttributeStatement/a:Attribute[@Name='{name}']/a:AttributeValue/text()",
        namespaces=NS,
    )


def one(root: etree._Element, path: str) -> str:
    [value] = root.xpath(path, namespaces=NS)
    return str(value)


# ---- metadata ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "entity_id", "sso_path"),
    [
        (okta().metadata_path, okta().entity_id, OKTA_SSO),
        (jumpcloud().metadata_path, "JumpCloud", JUMPCLOUD_SSO),
    ],
)
async def test_metadata_names_the_entity_id_sso_url_and_signing_certificate(
    idp: TestClient, idp_key: SigningKey, path: str, entity_id: str, sso_path: str
) -> None:
    response = await idp.get(path)
    assert response.status == 200
    metadata = parse_idp_metadata(await response.read())
    assert metadata.entity_id == entity_id
    assert metadata.sso_url == str(idp.make_url(sso_path))
    assert metadata.certificates == (idp_key.certificate,)
    assert metadata.name_id_formats == (EMAIL,)


# ---- SP-initiated ------------------------------------------------------------------------------
async def test_redirect_authn_request_is_answered_with_a_signed_okta_response_after_sign_in(
    idp: TestClient, idp_key: SigningKey, directory: Directory
) -> None:
    ada = directory.users[0]
    request_id, xml = authn_request()
    start = await idp.get(
        OKTA_SSO,
        params={"SAMLRequest": encode_redirect(xml), "RelayState": RELAY},
        allow_redirects=False,
    )
    fields = await posted(await sign_in(idp, start, ada.login), OKTA_SP.acs_url)

    assert fields["RelayState"] == RELAY
    raw = base64.b64decode(fields["SAMLResponse"])
    root = parse_strict(raw)
    signed_response = verify_pinned(raw, idp_key.certificate, "./")
    assert signed_response.get("ID") == root.get("ID")
    signed_assertion = verify_pinned(raw, idp_key.certificate, f"./{{{ASSERTION}}}Assertion/")
    assert signed_assertion.get("ID") == one(root, "a:Assertion/@ID")
    assert root.get("InResponseTo") == request_id
    assert root.get("Destination") == OKTA_SP.acs_url
    assert one(root, "p:Status/p:StatusCode/@Value").endswith(":Success")
    assert one(root, "a:Issuer/text()") == okta().entity_id
    confirmation = "a:Assertion/a:Subject/a:SubjectConfirmation/a:SubjectConfirmationData"
    assert one(root, f"{confirmation}/@InResponseTo") == request_id
    assert one(root, f"{confirmation}/@Recipient") == OKTA_SP.acs_url
    audience = "a:Assertion/a:Conditions/a:AudienceRestriction/a:Audience/text()"
    assert one(root, audience) == OKTA_SP.entity_id
    assert one(root, "a:Assertion/a:Subject/a:NameID/text()") == ada.email
    assert attribute(root, "firstName") == [ada.given_name]
    groups = sorted(g.name for g in directory.groups if ada.id in g.member_ids)
    assert sorted(attribute(root, "groups")) == groups


async def test_post_authn_request_gets_a_jumpcloud_response_with_only_the_assertion_signed(
    idp: TestClient, idp_key: SigningKey, directory: Directory
) -> None:
    request_id, xml = authn_request(JUMPCLOUD_SP)
    start = await idp.post(
        JUMPCLOUD_SSO,
        data={"SAMLRequest": encode_post(xml), "RelayState": RELAY},
        allow_redirects=False,
    )
    fields = await posted(await sign_in(idp, start, directory.users[1].login), JUMPCLOUD_SP.acs_url)

    assert fields["RelayState"] == RELAY
    raw = base64.b64decode(fields["SAMLResponse"])
    root = parse_strict(raw)
    assert root.find(f"{{{DSIG}}}Signature") is None
    verify_pinned(raw, idp_key.certificate, f"./{{{ASSERTION}}}Assertion/")
    assert root.get("InResponseTo") == request_id
    assert one(root, "a:Issuer/text()") == "JumpCloud"
    assert (
        one(root, "a:Assertion/a:Conditions/a:AudienceRestriction/a:Audience/text()")
        == JUMPCLOUD_SP.entity_id
    )
    assert attribute(root, "memberOf")


async def test_a_signed_in_browser_is_answered_at_once_with_the_same_session_index(
    idp: TestClient, directory: Directory
) -> None:
    _, first_xml = authn_request()
    start = await idp.get(
        OKTA_SSO, params={"SAMLRequest": encode_redirect(first_xml)}, allow_redirects=False
    )
    first = saml_response(
        await posted(await sign_in(idp, start, directory.users[0].login), OKTA_SP.acs_url)
    )
    request_id, xml = authn_request()
    again = await idp.get(
        OKTA_SSO, params={"SAMLRequest": encode_redirect(xml)}, allow_redirects=False
    )
    fields = await posted(again, OKTA_SP.acs_url)

    second = saml_response(fields)
    assert "RelayState" not in fields
    assert second.get("InResponseTo") == request_id
    index = "a:Assertion/a:AuthnStatement/@SessionIndex"
    assert one(second, index) == one(first, index)


async def test_force_authn_shows_the_sign_in_page_despite_a_session(
    idp: TestClient, directory: Directory
) -> None:
    await posted(
        await sign_in(
            idp, await idp.get(OKTA_LAUNCH, allow_redirects=False), directory.users[0].login
        ),
        OKTA_SP.acs_url,
    )
    _, xml = authn_request(force_authn=True)
    response = await idp.get(
        OKTA_SSO, params={"SAMLRequest": encode_redirect(xml)}, allow_redirects=False
    )
    assert transaction(response)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"issuer": "https://evil.test/metadata"}, "is not the service provider registered"),
        ({"acs_url": "https://evil.test/acs"}, "is not the ACS URL registered"),
        ({"name_id_format": PERSISTENT}, "does not match the NameID format"),
    ],
)
async def test_a_request_from_another_sp_or_for_another_acs_is_refused(
    idp: TestClient, params: dict[str, Any], reason: str
) -> None:
    _, xml = authn_request(**params)
    for response in (
        await idp.get(OKTA_SSO, params={"SAMLRequest": encode_redirect(xml)}),
        await idp.post(OKTA_SSO, data={"SAMLRequest": encode_post(xml)}),
    ):
        assert response.status == 400
        text = await response.text()
        assert 'id="page-error"' in text and reason in text
        assert "SAMLResponse" not in text


@pytest.mark.parametrize(
    "value",
    [
        "not base64 at all!",
        encode_redirect(b"<samlp:AuthnRequest"),
        encode_redirect(b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'),
        encode_redirect(b"<x/>" * 100_000),
    ],
)
async def test_an_unreadable_saml_request_gets_an_error_page(idp: TestClient, value: str) -> None:
    response = await idp.get(OKTA_SSO, params={"SAMLRequest": value})
    assert response.status == 400
    assert "Invalid SAML request" in await response.text()


async def test_a_post_without_saml_request_and_an_oversized_relay_state_are_refused(
    idp: TestClient,
) -> None:
    assert (await idp.post(OKTA_SSO, data={"RelayState": "/x"})).status == 400
    _, xml = authn_request()
    response = await idp.get(
        OKTA_SSO, params={"SAMLRequest": encode_redirect(xml), "RelayState": "x" * 3000}
    )
    assert response.status == 400


# ---- IdP-initiated -----------------------------------------------------------------------------
async def test_okta_tile_launch_posts_an_unsolicited_response_without_relay_state(
    idp: TestClient, idp_key: SigningKey, directory: Directory
) -> None:
    start = await idp.get(OKTA_LAUNCH, allow_redirects=False)
    fields = await posted(await sign_in(idp, start, directory.users[2].login), OKTA_SP.acs_url)

    assert "RelayState" not in fields
    raw = base64.b64decode(fields["SAMLResponse"])
    verify_pinned(raw, idp_key.certificate, "./")
    root = parse_strict(raw)
    assert root.get("InResponseTo") is None
    assert not root.xpath("//@InResponseTo")
    assert one(root, "a:Assertion/a:Subject/a:NameID/text()") == directory.users[2].email


async def test_jumpcloud_launch_on_the_sso_url_carries_the_default_relay_state(
    idp: TestClient, directory: Directory
) -> None:
    start = await idp.get(JUMPCLOUD_SSO, allow_redirects=False)
    fields = await posted(await sign_in(idp, start, directory.users[0].login), JUMPCLOUD_SP.acs_url)
    assert fields["RelayState"] == "/welcome"
    assert saml_response(fields).get("InResponseTo") is None


# ---- the sign-in page and the IdP session ------------------------------------------------------
async def test_the_sign_in_page_lists_every_directory_user_and_flags_the_deactivated(
    idp: TestClient, directory: Directory
) -> None:
    txn = transaction(await idp.get(OKTA_LAUNCH, allow_redirects=False))
    page = await idp.get("/signin", params={"txn": txn})
    document = lxml.html.fromstring(await page.text())
    buttons = document.xpath("//button[@name='login']")
    assert [b.get("data-testid") for b in buttons] == [f"user-{u.login}" for u in directory.users]
    assert [b.get("id") for b in buttons] == [f"user-{u.login}" for u in directory.users]
    assert document.get_element_by_id("login-input") is not None
    assert document.get_element_by_id("login-submit") is not None
    assert "(deactivated)" in document.xpath("//li")[3].text_content()


async def test_an_unknown_login_shows_the_sign_in_page_again_with_an_error(
    idp: TestClient, directory: Directory
) -> None:
    txn = transaction(await idp.get(OKTA_LAUNCH, allow_redirects=False))
    response = await idp.post("/signin", data={"txn": txn, "login": "nobody@example.com"})
    text = await response.text()
    assert 'id="page-signin"' in text and 'id="signin-error"' in text
    assert "nobody@example.com" in text
    retry = await idp.post("/signin", data={"txn": txn, "login": directory.users[0].login.upper()})
    await posted(retry, OKTA_SP.acs_url)


async def test_a_deactivated_user_cannot_sign_in(idp: TestClient, directory: Directory) -> None:
    inactive = directory.users[3]
    response = await sign_in(idp, await idp.get(OKTA_LAUNCH, allow_redirects=False), inactive.login)
    assert response.status == 403
    text = await response.text()
    assert "deactivated" in text and inactive.login in text and "SAMLResponse" not in text
    assert not [c for c in idp.session.cookie_jar if c.value]


async def test_a_session_of_a_user_deactivated_since_is_refused(
    idp: TestClient, directory: Directory
) -> None:
    await posted(
        await sign_in(
            idp, await idp.get(OKTA_LAUNCH, allow_redirects=False), directory.users[0].login
        ),
        OKTA_SP.acs_url,
    )
    directory.users[0].active = False
    assert (await idp.get(OKTA_LAUNCH, allow_redirects=False)).status == 403


async def test_sessions_are_per_vendor_and_sign_out_ends_them(
    idp: TestClient, directory: Directory
) -> None:
    ada = directory.users[0]
    await posted(
        await sign_in(idp, await idp.get(OKTA_LAUNCH, allow_redirects=False), ada.login),
        OKTA_SP.acs_url,
    )
    launch = await (await idp.get("/")).text()
    assert f'data-testid="session-okta">Signed in to Okta as <strong>{ada.login}' in launch
    assert transaction(await idp.get(JUMPCLOUD_SSO, allow_redirects=False))
    await posted(await idp.get(OKTA_LAUNCH, allow_redirects=False), OKTA_SP.acs_url)

    signed_out = await idp.get("/signout", allow_redirects=False)
    assert signed_out.status == 303 and signed_out.headers["Location"] == "/"
    assert 'data-testid="session-none"' in await (await idp.get("/")).text()
    assert transaction(await idp.get(OKTA_LAUNCH, allow_redirects=False))


@pytest.mark.parametrize(
    ("public_url", "attributes"),
    [
        (None, {"httponly": True, "secure": "", "samesite": "Lax", "path": "/"}),
        ("https://idp.example.test", {"httponly": True, "secure": True, "samesite": "None"}),
    ],
)
async def test_the_idp_session_cookie_is_http_only_and_secure_behind_https(
    aiohttp_client: Any,
    idp_key: SigningKey,
    directory: Directory,
    public_url: str | None,
    attributes: dict[str, Any],
) -> None:
    config = IdpServerConfig(idp_key, directory, [HostedApp(okta(), OKTA_SP)], public_url)
    idp = await aiohttp_client(create_idp_app(config))
    response = await sign_in(
        idp, await idp.get(OKTA_LAUNCH, allow_redirects=False), directory.users[0].login
    )
    cookie = response.cookies["idp_sim_session_okta"]
    assert {name: cookie[name] for name in attributes} == attributes


async def test_a_large_directory_lists_the_first_people_and_the_rest_can_type_their_login(
    aiohttp_client: Any, idp_key: SigningKey
) -> None:
    people = Directory(
        [
            DirectoryUser(
                f"00u{i:017d}", f"user{i}@example.com", "U", str(i), f"user{i}@example.com"
            )
            for i in range(205)
        ]
    )
    config = IdpServerConfig(idp_key, people, [HostedApp(okta(), OKTA_SP)])
    idp = await aiohttp_client(create_idp_app(config))
    txn = transaction(await idp.get(OKTA_LAUNCH, allow_redirects=False))
    document = lxml.html.fromstring(await (await idp.get("/signin", params={"txn": txn})).text())
    assert len(document.xpath("//button[@name='login']")) == MAX_LISTED_USERS
    assert document.get_element_by_id("unlisted").text_content().startswith("5 more")
    response = await idp.post("/signin", data={"txn": txn, "login": "user204@example.com"})
    assert (
        saml_response(await posted(response, OKTA_SP.acs_url)).xpath(
            "string(a:Assertion/a:Subject/a:NameID)", namespaces=NS
        )
        == "user204@example.com"
    )


async def test_an_unknown_sign_in_transaction_is_refused(idp: TestClient) -> None:
    assert (await idp.get("/signin", params={"txn": "forged"})).status == 400
    response = await idp.post("/signin", data={"txn": "forged", "login": "x"})
    assert response.status == 400
    assert "expired" in await response.text()


async def test_the_launch_page_has_a_tile_and_metadata_link_per_app(idp: TestClient) -> None:
    document = lxml.html.fromstring(await (await idp.get("/")).text())
    tile = document.get_element_by_id("app-scim_toolkit")
    assert tile.get("href") == str(idp.make_url(OKTA_LAUNCH))
    assert document.get_element_by_id("app-scim-toolkit").get("href") == str(
        idp.make_url(JUMPCLOUD_SSO)
    )
    assert document.get_element_by_id("metadata-scim-toolkit").get("href") == str(
        idp.make_url(jumpcloud().metadata_path)
    )


def test_a_session_cookie_only_holds_for_its_vendor_and_unaltered() -> None:
    cookies = SessionCookies(b"k" * 32)
    value = cookies.encode("okta", IdpSession("ada@example.com", "_s1"))
    assert cookies.decode("okta", value) == IdpSession("ada@example.com", "_s1")
    assert cookies.decode("jumpcloud", value) is None
    mac = value.split(".")[1]
    forged = base64.urlsafe_b64encode(b"_s1\nadmin@example.com").decode().rstrip("=")
    assert cookies.decode("okta", f"{forged}.{mac}") is None
    assert SessionCookies(b"o" * 32).decode("okta", value) is None
    assert cookies.decode("okta", "garbage") is None


def test_waiting_sign_ins_expire_and_stay_bounded() -> None:
    now = [0.0]
    pending: PendingLogins[str] = PendingLogins(ttl_seconds=10, capacity=2, clock=lambda: now[0])
    first, second = pending.add("a"), pending.add("b")
    third = pending.add("c")
    assert pending.get(first) is None
    assert (pending.get(second), pending.get(third)) == ("b", "c")
    now[0] = 11.0
    assert pending.get(third) is None


def test_two_apps_with_one_name_or_path_are_refused(idp_key: SigningKey) -> None:
    apps = [HostedApp(okta(), OKTA_SP), HostedApp(okta(), JUMPCLOUD_SP)]
    with pytest.raises(ValueError, match="named 'scim_toolkit'"):
        create_idp_app(IdpServerConfig(idp_key, Directory(), apps))
    renamed = [apps[0], HostedApp(okta(), JUMPCLOUD_SP, name="other")]
    with pytest.raises(ValueError, match="already taken"):
        create_idp_app(IdpServerConfig(idp_key, Directory(), renamed))


# ---- command line ------------------------------------------------------------------------------
def test_app_specs_parse_and_bad_ones_are_usage_errors(capsys: Any) -> None:
    spec = parse_app_spec("okta:https://sp/metadata,https://sp/acs,name=acme,relay=/home")
    assert (spec.vendor, spec.sp) == (
        "okta",
        ServiceProvider("https://sp/metadata", "https://sp/acs"),
    )
    assert spec.options == {"name": "acme", "relay": "/home"}
    for bad in (
        "azure:https://sp,https://sp/acs",
        "okta:https://sp",
        "okta:x,ftp://acs",
        "okta:x,https://acs,issuer=JumpCloud",
        "jumpcloud:x,https://acs,name=a/b",
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["idp", "metadata", "--app", bad])
        assert exit_info.value.code == 2
    assert "jumpcloud:SP_ENTITY_ID" in capsys.readouterr().err
    clash = [
        "--app",
        "okta:https://sp/a,https://sp/acs,name=x",
        "--app",
        "okta:https://sp/b,https://sp/acs,name=x",
    ]
    assert main(["idp", "metadata", *clash]) == 2
    assert main(["idp", "metadata", "--key", "k.pem", *clash[:2]]) == 2
    assert "named 'x'" in capsys.readouterr().err


def test_keygen_then_metadata_prints_the_app_with_the_flags_applied(
    tmp_path: Path, capsys: Any
) -> None:
    key, cert = tmp_path / "idp.key", tmp_path / "idp.crt"
    assert main(["idp", "keygen", "--key", str(key), "--cert", str(cert)]) == 0
    assert key.stat().st_mode & 0o077 == 0
    assert main(["idp", "keygen", "--key", str(key), "--cert", str(cert)]) == 2
    capsys.readouterr()
    status = main(
        [
            "idp",
            "metadata",
            "--key",
            str(key),
            "--cert",
            str(cert),
            "--public-url",
            "https://idp.example.test",
            "--name-id-format",
            "transient",
            "--app",
            "okta:https://sp/a,https://sp/a/acs",
            "--app",
            "okta:https://sp/b,https://sp/b/acs",
            "--name",
            "scim_toolkit2",
        ]
    )
    assert status == 0
    metadata = parse_idp_metadata(capsys.readouterr().out.strip().encode())
    key_b = okta_key_for("https://sp/b")
    assert metadata.entity_id == f"http://www.okta.com/{key_b}"
    assert metadata.sso_url == f"https://idp.example.test/app/scim_toolkit2/{key_b}/sso/saml"
    assert metadata.name_id_formats == (TRANSIENT,)
    assert metadata.certificates == (
        SigningKey.from_pem(key.read_bytes(), cert.read_bytes()).certificate,
    )
    assert okta_key_for("https://sp/b") == key_b and key_b.startswith("exk") and len(key_b) == 20


def test_serve_prints_its_urls_and_serves_metadata_until_terminated() -> None:
    app = "jumpcloud:https://sp/m,https://sp/acs,issuer=urn:test:idp"
    with idp_serve(["--app", app], banner_lines=6) as lines:
        url = next(line.split()[-1] for line in lines if "metadata URL" in line)
        with urllib.request.urlopen(url, timeout=10) as response:
            metadata = parse_idp_metadata(response.read())
        assert metadata.entity_id == "urn:test:idp"
        assert metadata.sso_url == url.removesuffix("/metadata")
