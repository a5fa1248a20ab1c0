"""An RSA private key kept as PEM is parsed (and checked, some 70 to 100 ms of CPU on the event
loop) once per process, not at each use: each SET the SSF transmitter signs, each private_key_jwt
assertion and each fetch of a tenant's client JWKS reuse the parsed key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt.algorithms
import pytest
from cryptography.hazmat.primitives import serialization

from scim_server.core.ssf.keys import SigningKey
from scim_server.core.sso.oidc import client_assertion, client_jwks, client_key_id, new_client_key
from scim_server.core.sso.settings import OidcSettings


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every PEM the code under test hands to cryptography to parse."""
    seen: list[bytes] = []
    parse: Callable[..., Any] = serialization.load_pem_private_key

    def counted(data: bytes, *args: Any, **kwargs: Any) -> Any:
        seen.append(data)
        return parse(data, *args, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", counted)
    monkeypatch.setattr(jwt.algorithms, "load_pem_private_key", counted)  # pyjwt's own import
    return seen


def test_a_tenants_client_key_is_parsed_once_however_often_it_signs_or_is_published(
    parses: list[bytes],
) -> None:
    oidc = OidcSettings(client_id="sp", client_auth="private_key_jwt", client_key=new_client_key())
    assert oidc.client_key is not None
    for _ in range(5):
        client_jwks(oidc.client_key)
        client_key_id(oidc.client_key)
        client_assertion(oidc, "https://idp.example/token", datetime.now(UTC))
    assert len(parses) == 1


def test_the_transmitters_key_is_parsed_once_however_many_sets_it_signs(
    parses: list[bytes],
) -> None:
    key = SigningKey(new_client_key())
    for sequence in range(5):
        key.sign({"jti": f"s.{sequence}.scim"})
        key.jwks()
    assert len(parses) == 1
