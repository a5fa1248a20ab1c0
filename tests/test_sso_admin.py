"""The SSO admin API and CLI: a tenant's SAML settings, pinned IdP certificates, metadata import
from a document or a URL, the sign-in log and the test link; all behind the admin token, every
bad input a 400 that names the field, and deleting a tenant takes its SSO state with it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pymongo.asynchronous.database import AsyncDatabase

from samlkit.certs import SigningKey, certificate_pem, fingerprint_sha256
from samlkit.metadata import idp_metadata
from samlkit.namespaces import EMAIL, UNSPECIFIED_11
from scim_server.cli import main
from scim_server.config import Settings
from scim_server.storage.sso import PendingRequest
from scim_server.web.app import create_app
from scim_server.web.state import SERVICES
from tests.support.scim import ADMIN, ADMIN_TOKEN, Scim, make_tenant, scim_error

SSO = "/admin/tenants/acme/sso"
OKTA_ENTITY = "http://www.okta.com/exk4x6wko7PcvdVq80x6"
OKTA_SSO = "https://acme.okta.com/app/scim_toolkit/exk4x6wko7PcvdVq80x6/sso/saml"
JUMPCLOUD_SSO = "https://sso.jumpcloud.com/saml2/scim-toolkit"


@pytest.fixture(scope="module")
def certs() -> list[x509.Certificate]:
    """Three IdP certificates: enough for a rollover that pushes the oldest out."""
    return [SigningKey.generate(f"idp-{n}", bits=1024).certificate for n in range(3)]


def _pem(cert: x509.Certificate) -> str:
    return certificate_pem(cert)


def _fingerprints(view: dict[str, Any]) -> list[str]:
    return [c["fingerprint_sha256"] for c in view["idp"]["certificates"]]


async def _view(
    client: TestClient, method: str = "GET", path: str = SSO, status: int = 200, **kwargs: Any
) -> dict[str, Any]:
    response = await client.request(
        method, path, headers={**ADMIN, **kwargs.pop("headers", {})}, **kwargs
    )
    assert response.status == status, await response.text()
    return dict(await response.json())


async def _configured(client: TestClient, cert: x509.Certificate, **extra: Any) -> dict[str, Any]:
    body = {
        "idp": {"entity_id": OKTA_ENTITY, "sso_url": OKTA_SSO, "certificates": [_pem(cert)]},
        **extra,
    }
    return await _view(client, "PATCH", json=body)


# --- the view -------------------------------------------------------------------------------


async def test_a_new_tenant_has_sso_off_and_shows_the_sp_values(scim: Scim) -> None:
    view = await _view(scim.client)
    root = str(scim.client.make_url("")).rstrip("/")
    assert view == {
        "enabled": False,
        "preset": "custom",
        "idp": {"entity_id": "", "sso_url": "", "certificates": []},
        "name_id": {"source": "nameid", "attribute": None, "format": None},
        "attributes": {
            "email": "email",
            "first_name": "firstName",
            "last_name": "lastName",
            "groups": "groups",
        },
        "jit": True,
        "allowed_groups": [],
        "require_signed_assertion": False,
        "enforced": False,
        "guest_user_type": "Guest",
        "enforced_since": None,
        "allow_idp_initiated": True,
        "clock_skew_seconds": 90,
        "session_ttl_seconds": 28800,
        "sp_base_url": None,
        "branding": {"display_name": None, "logo_url": None, "accent_color": None},
        "protocol": "saml",
        "oidc": {
            "issuer": None,
            "client_id": None,
            "client_secret_set": False,
            "scopes": ["openid", "email", "profile"],
            "claims": {
                "email": "email",
                "first_name": "given_name",
                "last_name": "family_name",
                "groups": "groups",
            },
            "algorithms": ["RS256"],
            "client_auth": "client_secret_basic",
            "client_key_id": None,
        },
        "wsfed": {"realm": None},
        "service_provider": {
            "tenant": "acme",
            "entity_id": f"{root}/sso/acme/saml/metadata",
            "acs_url": f"{root}/sso/acme/saml/acs",
            "metadata_url": f"{root}/sso/acme/saml/metadata",
            "login_url": f"{root}/sso/acme/saml/login",
            "redirect_uri": f"{root}/sso/acme/oidc/callback",
            "jwks_uri": f"{root}/sso/acme/oidc/jwks",
            "wsfed_realm": f"{root}/sso/acme/wsfed",
            "wsfed_reply_url": f"{root}/sso/acme/wsfed/reply",
        },
    }


async def test_sp_values_and_test_link_use_the_public_url(
    aiohttp_client: Any,
    settings: Settings,
    mongo_db: AsyncDatabase[Any],
    certs: list[x509.Certificate],
) -> None:
    client = await aiohttp_client(
        create_app(replace(settings, public_url="https://idm.example.com/base/"))
    )
    await make_tenant(client, "acme")
    view = await _configured(client, certs[0])
    assert view["sp_base_url"] == "https://idm.example.com/base"
    sp = view["service_provider"]
    assert sp["acs_url"] == "https://idm.example.com/base/sso/acme/saml/acs"
    assert (
        sp["entity_id"]
        == sp["metadata_url"]
        == "https://idm.example.com/base/sso/acme/saml/metadata"
    )
    test = await _view(client, "POST", f"{SSO}/test")
    assert test["url"].startswith("https://idm.example.com/base/sso/acme/saml/login?test=")


async def test_the_first_write_pins_the_sp_base_url_and_no_host_header_moves_it(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    root = str(scim.client.make_url("")).rstrip("/")
    view = await _configured(scim.client, certs[0])
    assert view["sp_base_url"] == root
    spoofed = {"Host": "evil.example"}
    later = await _view(scim.client, "PATCH", json={"jit": False}, headers=spoofed)
    assert later["sp_base_url"] == root
    assert later["service_provider"]["acs_url"] == f"{root}/sso/acme/saml/acs"
    shown = await _view(scim.client, headers=spoofed)
    assert shown["service_provider"]["entity_id"] == f"{root}/sso/acme/saml/metadata"
    test = await _view(scim.client, "POST", f"{SSO}/test", headers=spoofed)
    assert test["url"].startswith(f"{root}/sso/acme/saml/login?test=")


async def test_the_sp_base_url_can_be_set_explicitly_and_is_checked(scim: Scim) -> None:
    view = await _view(scim.client, "PATCH", json={"sp_base_url": "https://sso.example.com/"})
    assert view["sp_base_url"] == "https://sso.example.com"
    assert view["service_provider"]["acs_url"] == "https://sso.example.com/sso/acme/saml/acs"
    for invalid in ("ftp://sso.example.com", "/relative", "https://x.test/?q=1", 7):
        response = await scim.client.patch(SSO, json={"sp_base_url": invalid}, headers=ADMIN)
        assert "sp_base_url" in (await scim_error(response, 400))["detail"]
    assert (await _view(scim.client))["sp_base_url"] == "https://sso.example.com"
    # null unpins, and the write that stores it pins the root this admin request reached.
    repinned = await _view(scim.client, "PATCH", json={"sp_base_url": None})
    assert repinned["sp_base_url"] == str(scim.client.make_url("/")).rstrip("/")


# --- PUT and PATCH --------------------------------------------------------------------------


async def test_put_replaces_everything_and_get_answers_it_back(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    body: dict[str, Any] = {
        "enabled": True,
        "preset": "jumpcloud",
        "idp": {
            "entity_id": "JumpCloud",
            "sso_url": JUMPCLOUD_SSO,
            "certificates": [_pem(certs[0]), _pem(certs[1])],
        },
        "name_id": {"source": "attribute", "attribute": "employeeNumber", "format": EMAIL},
        "attributes": {
            "email": "mail",
            "first_name": "givenName",
            "last_name": "sn",
            "groups": None,
        },
        "jit": False,
        "allowed_groups": ["Engineering", "*"],
        "require_signed_assertion": True,
        "enforced": True,
        "guest_user_type": "External",
        "allow_idp_initiated": False,
        "clock_skew_seconds": 0,
        "session_ttl_seconds": 3600,
        "branding": {
            "display_name": "Globex",
            "logo_url": "https://cdn.example.com/globex.svg",
            "accent_color": "#0a7d3b",
        },
        "protocol": "saml",
        "oidc": {
            "issuer": "https://sso.jumpcloud.com/",
            "client_id": "globex-app",
            "client_secret_set": False,
            "scopes": ["openid", "email"],
            "claims": {
                "email": "email",
                "first_name": "given_name",
                "last_name": "family_name",
                "groups": None,
            },
            "algorithms": ["RS256", "ES256"],
            "client_auth": "client_secret_basic",
            "client_key_id": None,
        },
        "wsfed": {"realm": "urn:globex:scim-toolkit"},
    }
    put = await _view(scim.client, "PUT", json=body)
    root = str(scim.client.make_url("")).rstrip("/")
    assert {key: value for key, value in put.items() if key != "service_provider"} == {
        **body,
        "idp": {**body["idp"], "certificates": put["idp"]["certificates"]},
        "sp_base_url": root,  # pinned by the write, from the admin request
        "enforced_since": put["enforced_since"],  # read-only: when this write enforced SSO
    }
    assert put["enforced_since"] is not None
    assert _fingerprints(put) == [fingerprint_sha256(certs[0]), fingerprint_sha256(certs[1])]
    first = put["idp"]["certificates"][0]
    assert first["subject"] == "CN=idp-0"
    assert first["pem"] == _pem(certs[0])
    assert datetime.fromisoformat(first["not_after"]) > datetime.now(UTC)
    assert await _view(scim.client) == put

    # What GET answers can be PUT back as it is, and changes nothing.
    assert await _view(scim.client, "PUT", json=put) == put
    # PUT reads the body as PATCH does (the refusals are pinned below, through PATCH).
    for invalid in ({**put, "colour": "blue"}, {**put, "idp": {"sso_url": "/relative"}}):
        await scim_error(await scim.client.put(SSO, json=invalid, headers=ADMIN), 400)
    assert await _view(scim.client) == put

    # A PUT is a whole configuration: what it leaves out returns to its default.
    reset = await _view(scim.client, "PUT", json={"idp": {"entity_id": "JumpCloud"}})
    assert reset["enabled"] is False
    assert reset["idp"] == {"entity_id": "JumpCloud", "sso_url": "", "certificates": []}
    assert reset["preset"] == "custom" and reset["jit"] is True
    assert reset["attributes"]["groups"] == "groups"


async def test_patch_merges_nested_objects_member_by_member(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    await _configured(scim.client, certs[0], name_id={"format": EMAIL})
    view = await _view(
        scim.client,
        "PATCH",
        json={
            "idp": {"entity_id": "http://www.okta.com/exkOTHER"},
            "name_id": {"source": "attribute", "attribute": "login"},
            "attributes": {"groups": None},
            "allowed_groups": ["Staff", "Staff"],
            "jit": False,
        },
    )
    assert view["idp"]["entity_id"] == "http://www.okta.com/exkOTHER"
    assert view["idp"]["sso_url"] == OKTA_SSO
    assert _fingerprints(view) == [fingerprint_sha256(certs[0])]
    assert view["name_id"] == {"source": "attribute", "attribute": "login", "format": EMAIL}
    assert view["attributes"] == {
        "email": "email",
        "first_name": "firstName",
        "last_name": "lastName",
        "groups": None,
    }
    assert view["allowed_groups"] == ["Staff"]
    assert view["jit"] is False and view["clock_skew_seconds"] == 90

    cleared = await _view(
        scim.client, "PATCH", json={"name_id": {"source": "nameid", "format": None}}
    )
    assert cleared["name_id"] == {"source": "nameid", "attribute": "login", "format": None}
    assert await _view(scim.client) == cleared


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"colour": "blue"}, "unknown setting colour"),
    ({"idp": {"issuer": "x"}}, "unknown setting idp.issuer"),
    ({"attributes": {"mail": "x"}}, "unknown setting attributes.mail"),
    ({"enabled": "true"}, "enabled must be true or false"),
    ({"jit": 1}, "jit must be true or false"),
    ({"enforced": None}, "enforced must be true or false"),
    ({"guest_user_type": " Guest"}, "guest_user_type must not start or end with whitespace"),
    ({"guest_user_type": ""}, "guest_user_type must be a non-empty string"),
    ({"preset": "azure"}, "preset must be one of 'okta', 'entra', 'jumpcloud', 'custom'"),
    ({"idp": None}, "idp must be an object"),
    ({"idp": ["x"]}, "idp must be an object"),
    ({"idp": {"entity_id": ""}}, "idp.entity_id must be a non-empty string"),
    ({"idp": {"entity_id": " JumpCloud"}}, "idp.entity_id must not start or end with whitespace"),
    ({"idp": {"entity_id": "x" * 1025}}, "idp.entity_id must be a non-empty string"),
    ({"idp": {"sso_url": "ftp://sso.example.com/saml"}}, "idp.sso_url must be an absolute http"),
    ({"idp": {"sso_url": "/app/sso/saml"}}, "idp.sso_url must be an absolute http"),
    ({"idp": {"sso_url": "https://"}}, "idp.sso_url must be an absolute http"),
    ({"idp": {"sso_url": "https://[::1"}}, "idp.sso_url must be an absolute http"),
    ({"idp": {"sso_url": "https://sso.example.com/a b"}}, "idp.sso_url must be an absolute http"),
    ({"idp": {"sso_url": "javascript:alert(1)"}}, "idp.sso_url must be an absolute http"),
    ({"idp": {"certificates": "PEM"}}, "idp.certificates must be a list of at most 2"),
    (
        {"idp": {"certificates": ["not a certificate"]}},
        "idp.certificates[0] is not a PEM X.509 certificate",
    ),
    (
        {"idp": {"certificates": [{"subject": "CN=x"}]}},
        "idp.certificates[0] is not a PEM X.509 certificate",
    ),
    ({"name_id": {"source": "email"}}, "name_id.source must be one of 'nameid', 'attribute'"),
    (
        {"name_id": {"source": "attribute"}},
        "name_id.attribute is required when name_id.source is 'attribute'",
    ),
    ({"name_id": {"format": 7}}, "name_id.format must be a non-empty string"),
    ({"attributes": {"email": None}}, "attributes.email must be a non-empty string"),
    ({"attributes": {"first_name": ""}}, "attributes.first_name must be a non-empty string"),
    ({"allowed_groups": "Staff"}, "allowed_groups must be a list"),
    ({"allowed_groups": ["Staff", ""]}, "allowed_groups[1] must be a non-empty string"),
    ({"clock_skew_seconds": 601}, "clock_skew_seconds must be an integer from 0 to 600"),
    ({"clock_skew_seconds": -1}, "clock_skew_seconds must be an integer from 0 to 600"),
    ({"clock_skew_seconds": True}, "clock_skew_seconds must be an integer from 0 to 600"),
    ({"clock_skew_seconds": 1.5}, "clock_skew_seconds must be an integer from 0 to 600"),
    ({"session_ttl_seconds": 59}, "session_ttl_seconds must be an integer from 60 to 604800"),
    ({"session_ttl_seconds": 604801}, "session_ttl_seconds must be an integer from 60 to 604800"),
]


async def test_concurrent_patches_of_different_settings_all_land(
    scim: Scim, aiohttp_client: Any, settings: Settings
) -> None:
    """Two admins (here: two workers) patching at once: neither change is lost."""
    other = await aiohttp_client(create_app(settings))
    patches = [
        {"clock_skew_seconds": 30},
        {"jit": False},
        {"allowed_groups": ["Staff"]},
        {"session_ttl_seconds": 600},
        {"allow_idp_initiated": False},
        {"require_signed_assertion": True},
    ]
    responses = await asyncio.gather(
        *(
            client.patch(SSO, json=body, headers=ADMIN)
            for client, body in zip([scim.client, other] * 3, patches, strict=True)
        )
    )
    assert [response.status for response in responses] == [200] * len(patches)
    view = await _view(scim.client)
    assert (view["clock_skew_seconds"], view["jit"], view["allowed_groups"]) == (
        30,
        False,
        ["Staff"],
    )
    assert view["session_ttl_seconds"] == 600 and view["allow_idp_initiated"] is False
    assert view["require_signed_assertion"] is True


@pytest.mark.parametrize(("body", "detail"), INVALID, ids=[d for _, d in INVALID])
async def test_invalid_settings_are_400_naming_the_field_and_change_nothing(
    scim: Scim, body: dict[str, Any], detail: str
) -> None:
    before = await _view(scim.client, "PATCH", json={"jit": False})
    response = await scim.client.patch(SSO, json=body, headers=ADMIN)
    error = await scim_error(response, 400, "invalidValue")
    assert error["detail"].startswith(detail), error["detail"]
    assert await _view(scim.client) == before


async def test_more_than_two_certificates_or_the_same_one_twice_are_refused(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    three = await scim.client.patch(
        SSO, headers=ADMIN, json={"idp": {"certificates": [_pem(c) for c in certs]}}
    )
    assert (await scim_error(three, 400))["detail"].startswith(
        "idp.certificates must be a list of at most 2"
    )
    twice = await scim.client.patch(
        SSO, headers=ADMIN, json={"idp": {"certificates": [_pem(certs[0]), _pem(certs[0])]}}
    )
    assert (await scim_error(twice, 400))[
        "detail"
    ] == "idp.certificates holds the same certificate twice"


async def test_settings_body_must_be_a_json_object(scim: Scim) -> None:
    await scim_error(
        await scim.client.put(SSO, json=["enabled"], headers=ADMIN), 400, "invalidSyntax"
    )
    await scim_error(
        await scim.client.patch(
            SSO, data=b"{", headers={**ADMIN, "Content-Type": "application/json"}
        ),
        400,
        "invalidSyntax",
    )


async def test_enabling_needs_the_whole_idp_description(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    refused = await scim.client.patch(SSO, json={"enabled": True}, headers=ADMIN)
    assert (await scim_error(refused, 400, "invalidValue"))["detail"] == (
        "SSO cannot be enabled without idp.entity_id, idp.sso_url, idp.certificates"
    )

    await _view(scim.client, "PATCH", json={"idp": {"entity_id": OKTA_ENTITY, "sso_url": OKTA_SSO}})
    refused = await scim.client.patch(SSO, json={"enabled": True}, headers=ADMIN)
    assert (await scim_error(refused, 400))["detail"] == (
        "SSO cannot be enabled without idp.certificates"
    )
    assert (await _view(scim.client))["enabled"] is False

    enabled = await _view(
        scim.client, "PATCH", json={"enabled": True, "idp": {"certificates": [_pem(certs[0])]}}
    )
    assert enabled["enabled"] is True

    # Once on, the description cannot be taken away from under it.
    emptied = await scim.client.patch(SSO, json={"idp": {"certificates": []}}, headers=ADMIN)
    assert (await scim_error(emptied, 400))["detail"] == (
        "SSO cannot be enabled without idp.certificates"
    )
    assert _fingerprints(await _view(scim.client)) == [fingerprint_sha256(certs[0])]


async def test_choosing_a_preset_sets_its_attribute_names(scim: Scim) -> None:
    jumpcloud = await _view(scim.client, "PATCH", json={"preset": "jumpcloud"})
    assert jumpcloud["preset"] == "jumpcloud"
    assert jumpcloud["attributes"] == {
        "email": "email",
        "first_name": "firstname",
        "last_name": "lastname",
        "groups": "memberOf",
    }

    okta = await _view(scim.client, "PATCH", json={"preset": "okta"})
    assert okta["attributes"] == {
        "email": "email",
        "first_name": "firstName",
        "last_name": "lastName",
        "groups": "groups",
    }

    # Names given with the preset are applied on top of the preset's.
    mixed = await _view(
        scim.client, "PATCH", json={"preset": "jumpcloud", "attributes": {"groups": "groups"}}
    )
    assert mixed["attributes"] == {
        "email": "email",
        "first_name": "firstname",
        "last_name": "lastname",
        "groups": "groups",
    }

    # Changing one name later keeps the preset and the other names.
    renamed = await _view(scim.client, "PATCH", json={"attributes": {"email": "mail"}})
    assert renamed["preset"] == "jumpcloud"
    assert renamed["attributes"] == {**mixed["attributes"], "email": "mail"}


# --- certificates ---------------------------------------------------------------------------


async def test_certificates_upload_as_pem_der_or_json_and_rollover_keeps_two(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    path = f"{SSO}/certificates"
    der = certs[1].public_bytes(Encoding.DER)
    first = await _view(
        scim.client,
        "POST",
        path,
        data=_pem(certs[0]),
        headers={"Content-Type": "application/x-pem-file"},
    )
    assert _fingerprints(first) == [fingerprint_sha256(certs[0])]
    second = await _view(
        scim.client, "POST", path, data=der, headers={"Content-Type": "application/pkix-cert"}
    )
    assert _fingerprints(second) == [fingerprint_sha256(c) for c in certs[:2]]

    # A third pushes the oldest out: the IdP's old and new certificate, nothing older.
    third = await _view(scim.client, "POST", path, json={"pem": _pem(certs[2])})
    assert _fingerprints(third) == [fingerprint_sha256(c) for c in certs[1:]]

    # Uploading a pinned one again makes it the newest, never a duplicate.
    again = await _view(
        scim.client, "POST", path, data=_pem(certs[1]), headers={"Content-Type": "text/plain"}
    )
    assert _fingerprints(again) == [fingerprint_sha256(certs[2]), fingerprint_sha256(certs[1])]
    octets = await _view(
        scim.client, "POST", path, data=der, headers={"Content-Type": "application/octet-stream"}
    )
    assert _fingerprints(octets) == _fingerprints(again)
    assert await _view(scim.client) == octets


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        (
            "application/x-pem-file",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
            400,
        ),
        ("application/pkix-cert", b"\x30\x82\x01\x00garbage", 400),
        ("text/plain", b"", 400),
        ("application/json", b'{"pem": 42}', 400),
        ("application/json", b'{"pem": "nope"}', 400),
        ("image/png", b"\x89PNG", 415),
    ],
    ids=["bad-pem", "bad-der", "empty", "pem-not-text", "pem-garbage", "png"],
)
async def test_a_bad_certificate_upload_is_refused(
    scim: Scim, content_type: str, body: bytes, status: int
) -> None:
    response = await scim.client.post(
        f"{SSO}/certificates", data=body, headers={**ADMIN, "Content-Type": content_type}
    )
    await scim_error(response, status)
    assert (await _view(scim.client))["idp"]["certificates"] == []


async def test_a_certificate_is_unpinned_by_its_fingerprint(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    await _configured(scim.client, certs[0])
    await _view(scim.client, "POST", f"{SSO}/certificates", json={"pem": _pem(certs[1])})

    old = fingerprint_sha256(certs[0])
    removed = await _view(scim.client, "DELETE", f"{SSO}/certificates/{old}")
    assert _fingerprints(removed) == [fingerprint_sha256(certs[1])]

    missing = await scim.client.delete(f"{SSO}/certificates/{old}", headers=ADMIN)
    assert (await scim_error(missing, 404))["detail"] == (
        f"no pinned certificate has the fingerprint {old!r}"
    )

    # The fingerprint compares without colons and case, as admins copy it from consoles.
    bare = fingerprint_sha256(certs[1]).replace(":", "").lower()
    assert (await _view(scim.client, "DELETE", f"{SSO}/certificates/{bare}"))["idp"][
        "certificates"
    ] == []


async def test_the_last_certificate_stays_while_sso_is_enabled(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    await _configured(scim.client, certs[0], enabled=True)
    path = f"{SSO}/certificates/{fingerprint_sha256(certs[0])}"
    await scim_error(await scim.client.delete(path, headers=ADMIN), 409)
    assert _fingerprints(await _view(scim.client)) == [fingerprint_sha256(certs[0])]

    await _view(scim.client, "PATCH", json={"enabled": False})
    assert (await _view(scim.client, "DELETE", path))["idp"]["certificates"] == []


# --- metadata -------------------------------------------------------------------------------


def _okta_metadata(cert: x509.Certificate) -> bytes:
    return idp_metadata(OKTA_ENTITY, OKTA_SSO, [cert], [UNSPECIFIED_11, EMAIL])


def _jumpcloud_metadata(cert: x509.Certificate) -> bytes:
    return idp_metadata("JumpCloud", JUMPCLOUD_SSO, [cert], [EMAIL], redirect_binding=False)


async def test_okta_and_jumpcloud_metadata_set_the_idp_and_keep_the_rest(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    await _view(
        scim.client,
        "PATCH",
        json={
            "jit": False,
            "allowed_groups": ["Staff"],
            "preset": "okta",
            "idp": {"certificates": [_pem(certs[0]), _pem(certs[1])]},
        },
    )

    okta = await _view(
        scim.client,
        "POST",
        f"{SSO}/metadata",
        data=_okta_metadata(certs[2]),
        headers={"Content-Type": "application/samlmetadata+xml"},
    )
    assert okta["idp"]["entity_id"] == OKTA_ENTITY
    assert okta["idp"]["sso_url"] == OKTA_SSO
    assert _fingerprints(okta) == [fingerprint_sha256(certs[2])]
    assert okta["jit"] is False and okta["allowed_groups"] == ["Staff"]
    assert okta["preset"] == "okta"

    jumpcloud = await _view(
        scim.client,
        "POST",
        f"{SSO}/metadata",
        data=_jumpcloud_metadata(certs[0]),
        headers={"Content-Type": "text/xml"},
    )
    assert jumpcloud["idp"] == {
        **jumpcloud["idp"],
        "entity_id": "JumpCloud",
        "sso_url": JUMPCLOUD_SSO,
    }
    assert _fingerprints(jumpcloud) == [fingerprint_sha256(certs[0])]
    assert await _view(scim.client) == jumpcloud


async def test_metadata_with_a_rollover_pins_both_certificates(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    document = idp_metadata(OKTA_ENTITY, OKTA_SSO, certs[:2], [EMAIL])
    view = await _view(
        scim.client,
        "POST",
        f"{SSO}/metadata",
        data=document,
        headers={"Content-Type": "application/xml"},
    )
    assert _fingerprints(view) == [fingerprint_sha256(c) for c in certs[:2]]


def _doctype(payload: str) -> bytes:
    return (
        f'<?xml version="1.0"?>\n{payload}\n<md:EntityDescriptor '
        'xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&x;"/>'
    ).encode()


BAD_METADATA = {
    "external-entity": _doctype('<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'),
    "internal-entity": _doctype('<!DOCTYPE d [<!ENTITY x "JumpCloud">]>'),
    "billion-laughs": _doctype(
        '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY x "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    ),
    "external-dtd": (b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:9/x.dtd"><d/>'),
    "not-xml": b"this is not XML",
    "not-utf8": b'<?xml version="1.0"?><a>\xff\xfe</a>',
    "not-metadata": b"<html><body>Sign in</body></html>",
    "no-entity-id": (
        b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">'
        b"<md:IDPSSODescriptor/></md:EntityDescriptor>"
    ),
    "sp-metadata": (
        b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        b'entityID="sp"><md:SPSSODescriptor/></md:EntityDescriptor>'
    ),
}


@pytest.mark.parametrize("document", BAD_METADATA.values(), ids=BAD_METADATA.keys())
async def test_unsafe_or_unusable_metadata_is_400_and_changes_nothing(
    scim: Scim, certs: list[x509.Certificate], document: bytes
) -> None:
    before = await _configured(scim.client, certs[0])
    response = await scim.client.post(
        f"{SSO}/metadata",
        data=document,
        headers={**ADMIN, "Content-Type": "application/samlmetadata+xml"},
    )
    error = await scim_error(response, 400, "invalidValue")
    assert error["detail"].startswith("the IdP metadata is not usable: "), error["detail"]
    assert await _view(scim.client) == before


async def test_metadata_without_a_certificate_or_sign_in_url_is_refused(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    bare = idp_metadata(OKTA_ENTITY, OKTA_SSO, [], [EMAIL])
    response = await scim.client.post(
        f"{SSO}/metadata", data=bare, headers={**ADMIN, "Content-Type": "application/xml"}
    )
    assert (await scim_error(response, 400))["detail"] == (
        "the IdP metadata lists 0 signing certificates; 1 to 2 can be pinned"
    )
    crowded = idp_metadata(OKTA_ENTITY, OKTA_SSO, certs, [EMAIL])
    response = await scim.client.post(
        f"{SSO}/metadata", data=crowded, headers={**ADMIN, "Content-Type": "application/xml"}
    )
    assert (await scim_error(response, 400))["detail"] == (
        "the IdP metadata lists 3 signing certificates; 1 to 2 can be pinned"
    )
    no_sso = _okta_metadata(certs[0]).replace(b"SingleSignOnService", b"SingleLogoutService")
    response = await scim.client.post(
        f"{SSO}/metadata", data=no_sso, headers={**ADMIN, "Content-Type": "application/xml"}
    )
    assert "no SingleSignOnService" in (await scim_error(response, 400))["detail"]
    assert (await _view(scim.client))["idp"]["entity_id"] == ""


async def test_metadata_in_another_media_type_is_415(scim: Scim) -> None:
    response = await scim.client.post(
        f"{SSO}/metadata", data=b"<x/>", headers={**ADMIN, "Content-Type": "text/html"}
    )
    await scim_error(response, 415)


@pytest.fixture
async def metadata_site(aiohttp_server: Any, certs: list[x509.Certificate]) -> str:
    """A stand-in for an IdP's metadata URL, and the ways such a URL goes wrong."""
    document = _jumpcloud_metadata(certs[1])

    async def metadata(request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/samlmetadata+xml")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/metadata")

    async def to_file(request: web.Request) -> web.Response:
        raise web.HTTPFound("file:///etc/passwd")

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(17):
            await response.write(b" " * 65536)
        return response

    async def gone(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such app")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(body=document)

    app = web.Application()
    for path, handler in (
        ("/metadata", metadata),
        ("/moved", moved),
        ("/to-file", to_file),
        ("/huge", huge),
        ("/gone", gone),
        ("/slow", slow),
    ):
        app.router.add_get(path, handler)
    server = await aiohttp_server(app, host="127.0.0.1")
    return str(server.make_url("")).rstrip("/")


async def test_metadata_is_fetched_from_its_url_following_http_redirects(
    scim: Scim, metadata_site: str, certs: list[x509.Certificate]
) -> None:
    for path in ("/metadata", "/moved"):
        view = await _view(
            scim.client, "POST", f"{SSO}/metadata", json={"url": f"{metadata_site}{path}"}
        )
        assert view["idp"]["entity_id"] == "JumpCloud"
        assert view["idp"]["sso_url"] == JUMPCLOUD_SSO
        assert _fingerprints(view) == [fingerprint_sha256(certs[1])]


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("{site}/gone", "fetching the IdP metadata from {site}/gone answered HTTP 404"),
        ("{site}/huge", "the IdP metadata at {site}/huge exceeds 1048576 bytes"),
        ("{site}/to-file", "cannot fetch the IdP metadata from {site}/to-file: "),
        ("http://127.0.0.1:9/metadata", "cannot fetch the IdP metadata from http://127.0.0.1:9/"),
        ("file:///etc/passwd", "url must be an absolute http or https URL"),
        ("ftp://{host}/metadata", "url must be an absolute http or https URL"),
    ],
    ids=["404", "over-1MiB", "redirect-to-file", "refused", "file-url", "ftp-url"],
)
async def test_an_unusable_metadata_url_is_400(
    scim: Scim, metadata_site: str, url: str, detail: str
) -> None:
    host = urlsplit(metadata_site).netloc
    response = await scim.client.post(
        f"{SSO}/metadata", headers=ADMIN, json={"url": url.format(site=metadata_site, host=host)}
    )
    error = await scim_error(response, 400, "invalidValue")
    assert error["detail"].startswith(detail.format(site=metadata_site)), error["detail"]
    assert (await _view(scim.client))["idp"]["entity_id"] == ""


async def test_a_metadata_url_that_never_answers_times_out_as_400(
    scim: Scim, metadata_site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scim_server.web.idp_http.TIMEOUT_SECONDS", 0.2)
    response = await scim.client.post(
        f"{SSO}/metadata", headers=ADMIN, json={"url": f"{metadata_site}/slow"}
    )
    assert (await scim_error(response, 400))["detail"] == (
        f"cannot fetch the IdP metadata from {metadata_site}/slow: no answer within 0.2 s"
    )


@pytest.mark.parametrize(
    "body", [{}, {"url": 5}, {"url": "https://x.example", "extra": 1}], ids=repr
)
async def test_the_metadata_url_body_is_just_a_url(scim: Scim, body: dict[str, Any]) -> None:
    await scim_error(await scim.client.post(f"{SSO}/metadata", json=body, headers=ADMIN), 400)


# --- log and test link ----------------------------------------------------------------------


async def test_log_lists_the_tenants_attempts_newest_first(scim: Scim, other_scim: Scim) -> None:
    repository = scim.client.app[SERVICES].sso.repository
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for minute in range(3):
        await repository.record(
            "acme",
            {
                "at": start + timedelta(minutes=minute),
                "outcome": "rejected",
                "reason": f"attempt {minute}",
            },
        )
    await repository.record("globex", {"at": start, "outcome": "signed_in", "reason": None})

    entries = (await _view(scim.client, "GET", f"{SSO}/log"))["entries"]
    assert [e["reason"] for e in entries] == ["attempt 2", "attempt 1", "attempt 0"]
    assert entries[0] == {
        "at": "2026-03-01T12:02:00+00:00",
        "outcome": "rejected",
        "reason": "attempt 2",
    }
    limited = (await _view(scim.client, "GET", f"{SSO}/log?limit=1"))["entries"]
    assert [e["reason"] for e in limited] == ["attempt 2"]
    for limit in ("0", "1001", "ten"):
        await scim_error(await scim.client.get(f"{SSO}/log?limit={limit}", headers=ADMIN), 400)


async def test_test_link_carries_a_ticket_for_this_tenant_only(
    scim: Scim, certs: list[x509.Certificate]
) -> None:
    refused = await scim.client.post(f"{SSO}/test", headers=ADMIN)
    assert (await scim_error(refused, 409))["detail"] == (
        "a test sign-in needs idp.entity_id, idp.sso_url, idp.certificates"
    )

    view = await _configured(scim.client, certs[0])  # configured, not yet enabled
    url = (await _view(scim.client, "POST", f"{SSO}/test"))["url"]
    parts = urlsplit(url)
    assert url.startswith(view["service_provider"]["login_url"] + "?")
    [ticket] = parse_qs(parts.query)["test"]
    codec = scim.client.app[SERVICES].sso.codec
    assert codec.valid_test_ticket(ticket, "acme")
    assert not codec.valid_test_ticket(ticket, "globex")


# --- guard rails ----------------------------------------------------------------------------

SSO_ROUTES = [
    ("GET", ""),
    ("PUT", ""),
    ("PATCH", ""),
    ("POST", "/certificates"),
    ("DELETE", "/certificates/AB:CD"),
    ("POST", "/metadata"),
    ("GET", "/log"),
    ("POST", "/test"),
]


@pytest.mark.parametrize(("method", "suffix"), SSO_ROUTES, ids=[f"{m} {s}" for m, s in SSO_ROUTES])
async def test_every_sso_admin_route_needs_the_admin_token_and_an_existing_tenant(
    scim: Scim, method: str, suffix: str
) -> None:
    before = await _view(scim.client)
    refusals: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {scim.token}"},
    ]
    for headers in refusals:
        response = await scim.client.request(
            method, f"{SSO}{suffix}", json={"enabled": True}, headers=headers
        )
        await scim_error(response, 401)
    response = await scim.client.request(
        method, f"/admin/tenants/nobody/sso{suffix}", json={"enabled": False}, headers=ADMIN
    )
    assert (await scim_error(response, 404))["detail"] == "no tenant 'nobody'"
    assert await _view(scim.client) == before


async def test_deleting_a_tenant_removes_its_sso_state_and_nobody_elses(
    scim: Scim, other_scim: Scim, mongo_db: AsyncDatabase[Any], certs: list[x509.Certificate]
) -> None:
    repository = scim.client.app[SERVICES].sso.repository
    now = datetime.now(UTC)
    for tenant in ("acme", "globex"):
        await _view(
            scim.client,
            "PATCH",
            f"/admin/tenants/{tenant}/sso",
            json={
                "idp": {
                    "entity_id": OKTA_ENTITY,
                    "sso_url": OKTA_SSO,
                    "certificates": [_pem(certs[0])],
                },
                "enabled": True,
            },
        )
        await repository.record(tenant, {"at": now, "outcome": "signed_in"})
        await repository.remember_request(
            tenant, PendingRequest(f"_{tenant}", None, False, None), now + timedelta(minutes=5)
        )
        await repository.consume_assertion(tenant, OKTA_ENTITY, "id1", now + timedelta(minutes=5))
        await repository.link(tenant, OKTA_ENTITY, "alice@example.com", "user-1", now)
        await repository.claim_group_name(tenant, "pilots", now)
    collections = ("saml_requests", "saml_assertions", "sso_links", "sso_log", "jit_group_claims")

    async def counts(tenant: str) -> list[int]:
        return [await mongo_db[c].count_documents({"tenant": tenant}) for c in collections]

    assert await counts("acme") == await counts("globex") == [1, 1, 1, 1, 1]
    globex = await _view(scim.client, "GET", "/admin/tenants/globex/sso")

    assert (await scim.client.delete("/admin/tenants/acme", headers=ADMIN)).status == 204
    assert await counts("acme") == [0, 0, 0, 0, 0]
    assert await counts("globex") == [1, 1, 1, 1, 1]
    assert await _view(scim.client, "GET", "/admin/tenants/globex/sso") == globex

    await make_tenant(scim.client, "acme")
    fresh = await _view(scim.client)
    assert fresh["enabled"] is False and fresh["idp"]["certificates"] == []


# --- the CLI --------------------------------------------------------------------------------


async def _cli(client: TestClient, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``scim-server`` in a thread against the live test server; answer what it printed."""
    url = str(client.make_url("")).rstrip("/")
    code = await asyncio.to_thread(main, [*args, "--url", url, "--admin-token", ADMIN_TOKEN])
    assert code == 0
    return capsys.readouterr().out


async def test_cli_configures_sso_end_to_end(
    scim: Scim,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    certs: list[x509.Certificate],
    metadata_site: str,
) -> None:
    client = scim.client
    shown = json.loads(await _cli(client, capsys, "sso", "show", "--tenant", "acme"))
    assert shown == await _view(client)

    metadata = tmp_path / "okta.xml"
    metadata.write_bytes(_okta_metadata(certs[0]))
    imported = json.loads(
        await _cli(
            client, capsys, "sso", "import-metadata", "--tenant", "acme", "--file", str(metadata)
        )
    )
    assert imported["idp"]["entity_id"] == OKTA_ENTITY

    der = tmp_path / "new.cer"
    der.write_bytes(certs[1].public_bytes(Encoding.DER))
    added = json.loads(
        await _cli(client, capsys, "sso", "add-cert", "--tenant", "acme", "--file", str(der))
    )
    assert _fingerprints(added) == [fingerprint_sha256(c) for c in certs[:2]]

    pem = tmp_path / "newer.pem"
    pem.write_text(_pem(certs[2]))
    added = json.loads(
        await _cli(client, capsys, "sso", "add-cert", "--tenant", "acme", "--file", str(pem))
    )
    assert _fingerprints(added) == [fingerprint_sha256(c) for c in certs[1:]]

    removed = json.loads(
        await _cli(
            client, capsys, "sso", "remove-cert", "--tenant", "acme", fingerprint_sha256(certs[1])
        )
    )
    assert _fingerprints(removed) == [fingerprint_sha256(certs[2])]

    enabled = json.loads(
        await _cli(
            client,
            capsys,
            "sso",
            "set",
            "--tenant",
            "acme",
            "--json",
            '{"enabled": true, "preset": "okta"}',
        )
    )
    assert enabled["enabled"] is True and enabled["preset"] == "okta"
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"attributes": {"groups": None}, "jit": False}))
    changed = json.loads(
        await _cli(client, capsys, "sso", "set", "--tenant", "acme", "--file", str(changes))
    )
    assert changed["attributes"]["groups"] is None and changed["enabled"] is True

    fetched = json.loads(
        await _cli(
            client,
            capsys,
            "sso",
            "import-metadata",
            "--tenant",
            "acme",
            "--metadata-url",
            f"{metadata_site}/metadata",
        )
    )
    assert fetched["idp"]["entity_id"] == "JumpCloud" and fetched["jit"] is False

    link = (await _cli(client, capsys, "sso", "test-url", "--tenant", "acme")).strip()
    assert link.startswith(f"{fetched['service_provider']['login_url']}?test=")

    await client.app[SERVICES].sso.repository.record(
        "acme", {"at": datetime.now(UTC), "outcome": "test", "reason": None}
    )
    log = json.loads(await _cli(client, capsys, "sso", "log", "--tenant", "acme", "--limit", "5"))
    assert [e["outcome"] for e in log["entries"]] == ["test"]


async def test_cli_reports_refusals_without_a_traceback(
    scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit, match="settings are not valid JSON"):
        await _cli(scim.client, capsys, "sso", "set", "--tenant", "acme", "--json", "{")
    with pytest.raises(SystemExit, match=r"error 400: .*SSO cannot be enabled without"):
        await _cli(
            scim.client, capsys, "sso", "set", "--tenant", "acme", "--json", '{"enabled": true}'
        )
    with pytest.raises(SystemExit, match=r"cannot read /nonexistent\.pem"):
        await _cli(
            scim.client, capsys, "sso", "add-cert", "--tenant", "acme", "--file", "/nonexistent.pem"
        )


async def test_cli_issues_a_password_reset_link(
    scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    user = await scim.create_user("bob@example.com")
    issued = json.loads(
        await _cli(
            scim.client,
            capsys,
            "sso",
            "reset-link",
            "--tenant",
            "acme",
            "--user",
            user["id"],
            "--ttl-seconds",
            "120",
        )
    )
    assert issued["url"].startswith(str(scim.client.make_url("/sso/acme/password-reset#")))
    assert issued["user_name"] == "bob@example.com"
    with pytest.raises(SystemExit, match=r"error 404: "):
        await _cli(scim.client, capsys, "sso", "reset-link", "--tenant", "acme", "--user", "x")
