"""``idp-sim idp serve --oidc-app``: the OpenID provider as a process, its banner giving what an
SP admin enters (issuer, client ID and secret), its documents served; bad usage exits 2."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from idp_sim.cli import main
from idp_sim.saml.command import parse_oidc_app
from tests.support.idp_serve import idp_serve

REDIRECT = "https://idm.example/sso/acme/oidc/callback"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_serve_prints_each_oidc_client_and_serves_its_discovery_and_keys() -> None:
    apps = ["--oidc-app", f"okta:{REDIRECT},client_id=0oa-acme", "--oidc-app", f"entra:{REDIRECT}"]
    with idp_serve(apps, banner_lines=13) as lines:
        issuers = [line.split()[-1] for line in lines if line.strip().startswith("issuer")]
        assert [i.rsplit("/", 1)[-1] for i in issuers] == ["default", "v2.0"]
        assert any(line.split()[-1] == "0oa-acme" for line in lines if "client ID" in line)
        for issuer in issuers:
            discovery = _get(f"{issuer}/.well-known/openid-configuration")
            assert discovery["issuer"] == issuer
            [key] = _get(discovery["jwks_uri"])["keys"]
            assert key["kty"] == "RSA" and key["use"] == "sig"


def test_the_client_secret_is_stable_for_a_redirect_uri_unless_given() -> None:
    first, again = parse_oidc_app(f"okta:{REDIRECT}"), parse_oidc_app(f"okta:{REDIRECT}")
    assert first.client_secret == again.client_secret and len(first.client_secret) == 32
    given = parse_oidc_app(f"entra:{REDIRECT},client_secret=s,name=hr,jwks_uri=https://sp/k")
    assert (given.client_secret, given.label, given.shape.vendor) == ("s", "hr", "entra")
    assert given.jwks_uri == "https://sp/k" and first.jwks_uri is None


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("azure:https://sp/cb", "expected okta:REDIRECT_URI or entra:REDIRECT_URI"),
        ("okta:ftp://sp/cb", "expected okta:REDIRECT_URI or entra:REDIRECT_URI"),
        (
            "okta:https://sp/cb,scope=x",
            "'scope=x' is not one of client_id, client_secret, jwks_uri, name",
        ),
    ],
)
def test_a_bad_oidc_app_is_a_usage_error(
    bad: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["idp", "serve", "--oidc-app", bad])
    assert exit_info.value.code == 2
    assert says in capsys.readouterr().err


def test_serving_nothing_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["idp", "metadata"]) == 2
    assert "give at least one --app, --oidc-app or --wsfed-app" in capsys.readouterr().err
