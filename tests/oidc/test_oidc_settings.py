"""A tenant's OpenID Connect settings through the admin API and the CLI: ``"protocol": "oidc"``
with the provider under ``oidc``, presets for the claim names, a write-only client secret, and
every bad value a 400 naming its field that changes nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from scim_server.cli import main
from scim_server.web.state import SERVICES
from tests.support.scim import ADMIN, ADMIN_TOKEN, Scim, scim_error

SSO = "/admin/tenants/acme/sso"
OKTA_ISSUER = "https://acme.okta.com/oauth2/default"
CONNECTION = {
    "protocol": "oidc",
    "preset": "okta",
    "oidc": {"issuer": OKTA_ISSUER, "client_id": "0oa1x", "client_secret": "s3cret"},
}


async def _view(scim: Scim, method: str = "GET", **kwargs: Any) -> dict[str, Any]:
    response = await scim.client.request(method, SSO, headers=ADMIN, **kwargs)
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def test_an_oidc_connection_is_set_shown_and_enabled(scim: Scim) -> None:
    view = await _view(scim, "PUT", json={**CONNECTION, "enabled": True})
    assert view["protocol"] == "oidc" and view["enabled"] is True
    assert view["oidc"] == {
        "issuer": OKTA_ISSUER,
        "client_id": "0oa1x",
        "client_secret_set": True,
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
    }
    assert "s3cret" not in json.dumps(view)
    sp = view["service_provider"]
    assert sp["redirect_uri"].endswith("/sso/acme/oidc/callback")
    assert sp["login_url"].endswith("/sso/acme/oidc/login")


async def test_presets_name_the_claims_of_okta_entra_and_jumpcloud(scim: Scim) -> None:
    await _view(scim, "PUT", json=CONNECTION)
    entra = await _view(scim, "PATCH", json={"preset": "entra"})
    assert entra["oidc"]["claims"]["email"] == "preferred_username"
    assert entra["attributes"]["email"].endswith("/claims/emailaddress")
    jumpcloud = await _view(
        scim, "PATCH", json={"preset": "jumpcloud", "oidc": {"claims": {"groups": "memberOf"}}}
    )
    assert jumpcloud["oidc"]["claims"] == {
        "email": "email",
        "first_name": "given_name",
        "last_name": "family_name",
        "groups": "memberOf",
    }


async def test_the_client_secret_is_kept_by_a_patch_and_by_writing_the_view_back(
    scim: Scim,
) -> None:
    view = await _view(scim, "PUT", json=CONNECTION)
    patched = await _view(scim, "PATCH", json={"oidc": {"scopes": ["openid", "email", "groups"]}})
    assert patched["oidc"]["client_secret_set"] is True
    assert patched["oidc"]["scopes"] == ["openid", "email", "groups"]
    written_back = await _view(scim, "PATCH", json={"oidc": view["oidc"]})
    assert written_back["oidc"] == view["oidc"]
    stored = await scim.client.app[SERVICES].sso.stored_settings.get("acme")
    assert stored is not None and stored.oidc.client_secret == "s3cret"


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"protocol": "ws-fed"}, "protocol must be one of 'saml', 'oidc'"),
    ({"oidc": {"issuer": "ftp://idp.example"}}, "oidc.issuer must be an absolute http"),
    ({"oidc": {"issuer": "https://idp.example/?a=1"}}, "oidc.issuer must not carry a query"),
    ({"oidc": {"client_id": ""}}, "oidc.client_id must be a non-empty string"),
    ({"oidc": {"client_secret": 7}}, "oidc.client_secret must be a non-empty string"),
    ({"oidc": {"scopes": ["email"]}}, "oidc.scopes must include openid"),
    ({"oidc": {"scopes": "openid"}}, "oidc.scopes must be a list of 1 to 20 scopes"),
    ({"oidc": {"scopes": ["openid", "a b"]}}, "oidc.scopes[1] is not a scope token"),
    ({"oidc": {"claims": {"email": ""}}}, "oidc.claims.email must be a non-empty string"),
    ({"oidc": {"claims": {"phone": "x"}}}, "unknown setting oidc.claims.phone"),
    ({"oidc": {"algorithms": ["none"]}}, "oidc.algorithms[0] must be one of RS256"),
    ({"oidc": {"algorithms": []}}, "oidc.algorithms must be a non-empty list"),
    ({"oidc": {"audience": "x"}}, "unknown setting oidc.audience"),
    ({"oidc": {"client_auth": "tls"}}, "oidc.client_auth must be one of 'client_secret_basic'"),
    ({"oidc": []}, "oidc must be an object"),
    (
        {"oidc": {"client_secret": "short", "algorithms": ["HS256"]}},
        "oidc.algorithms lists HS256, whose key is the client secret: it must be at least 32",
    ),
    (
        {"protocol": "oidc", "enabled": True, "oidc": {"issuer": OKTA_ISSUER}},
        "SSO cannot be enabled without oidc.client_id, oidc.client_secret",
    ),
]


@pytest.mark.parametrize(("body", "detail"), INVALID, ids=[d for _, d in INVALID])
async def test_bad_oidc_settings_are_400_naming_the_field_and_change_nothing(
    scim: Scim, body: dict[str, Any], detail: str
) -> None:
    before = await _view(scim, "PATCH", json={"jit": False})
    response = await scim.client.patch(SSO, json=body, headers=ADMIN)
    error = await scim_error(response, 400, "invalidValue")
    assert error["detail"].startswith(detail), error["detail"]
    assert await _view(scim) == before


async def test_the_cli_sets_an_oidc_connection_and_its_test_link_starts_an_oidc_sign_in(
    scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    url = str(scim.client.make_url("")).rstrip("/")

    async def cli(*args: str) -> str:
        code = await asyncio.to_thread(main, [*args, "--url", url, "--admin-token", ADMIN_TOKEN])
        assert code == 0
        return capsys.readouterr().out

    shown = json.loads(
        await cli("sso", "set", "--tenant", "acme", "--json", json.dumps(CONNECTION))
    )
    assert shown["protocol"] == "oidc" and shown["oidc"]["client_secret_set"] is True
    link = (await cli("sso", "test-url", "--tenant", "acme")).strip()
    assert link.startswith(f"{url}/sso/acme/oidc/login?test=")
