"""Tenant bearer tokens: every SCIM endpoint needs one, bound to its tenant, unexpired and
unrevoked; every refusal is a 401 SCIM error with a ``WWW-Authenticate: Bearer`` challenge."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient

from scim_server.config import Settings
from tests.support.raw_http import raw_request
from tests.support.scim import ADMIN, Scim, scim_error
from tests.support.urns import ERROR, GROUP, PATCH_OP, SEARCH, USER

MISSING_ID = "2819c223-7f76-453a-919d-413861904646"


async def _unauthorized(response: Any) -> dict[str, Any]:
    assert response.status == 401, await response.text()
    assert response.content_type == "application/scim+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = dict(await response.json())
    assert body["schemas"] == [ERROR]
    assert body["status"] == "401"
    return body


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


async def _users(client: TestClient, tenant: str, authorization: str | None) -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    return await client.get(f"/scim/v2/{tenant}/Users", headers=headers)


# --- refused -------------------------------------------------------------------------------


async def test_no_authorization_header_is_401(scim: Scim) -> None:
    body = await _unauthorized(await _users(scim.client, "acme", None))
    assert body["detail"] == "a bearer token is required"


@pytest.mark.parametrize("authorization", ["", "   ", "Bearer", "Bearer ", "Bearer   "])
async def test_empty_credentials_are_401(scim: Scim, authorization: str) -> None:
    await _unauthorized(await _users(scim.client, "acme", authorization))


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
    ],
)
async def test_malformed_token_is_401(scim: Scim, token: str) -> None:
    body = await _unauthorized(await _users(scim.client, "acme", f"Bearer {token}"))
    assert body["detail"] == "the bearer token is not valid"


async def test_token_signed_with_another_secret_is_401(scim: Scim) -> None:
    forged = jwt.encode(
        _claims(scim.token), "another-secret-of-at-least-32-bytes!", algorithm="HS256"
    )
    body = await _unauthorized(await _users(scim.client, "acme", f"Bearer {forged}"))
    assert body["detail"] == "the bearer token is not valid"


async def test_unsigned_token_is_401(scim: Scim) -> None:
    unsigned = jwt.encode(_claims(scim.token), None, algorithm="none")
    await _unauthorized(await _users(scim.client, "acme", f"Bearer {unsigned}"))


async def test_tampered_tenant_claim_is_401(scim: Scim, other_scim: Scim) -> None:
    header, _, signature = other_scim.token.split(".")
    claims = {**_claims(other_scim.token), "sub": "acme"}
    # Globex's token with its tenant claim rewritten to acme: the signature no longer matches.
    payload = jwt.encode(claims, "x" * 32, algorithm="HS256").split(".")[1]
    tampered = f"{header}.{payload}.{signature}"
    await _unauthorized(await _users(scim.client, "acme", f"Bearer {tampered}"))


async def test_expired_token_is_401(scim: Scim, settings: Settings) -> None:
    claims = _claims(scim.token)  # a real, unrevoked token id of acme
    claims["iat"] = int(time.time()) - 7200
    claims["exp"] = int(time.time()) - 3600
    assert settings.token_secret is not None
    expired = jwt.encode(claims, settings.token_secret, algorithm="HS256")

    body = await _unauthorized(await _users(scim.client, "acme", f"Bearer {expired}"))
    assert body["detail"] == "the bearer token has expired"
    # The same claims, unexpired, are accepted: only the expiry refused it.
    del claims["exp"]
    valid = jwt.encode(claims, settings.token_secret, algorithm="HS256")
    assert (await _users(scim.client, "acme", f"Bearer {valid}")).status == 200


async def test_token_with_an_unknown_token_id_is_401(scim: Scim, settings: Settings) -> None:
    assert settings.token_secret is not None
    claims = {**_claims(scim.token), "jti": "0" * 32}
    never_issued = jwt.encode(claims, settings.token_secret, algorithm="HS256")
    await _unauthorized(await _users(scim.client, "acme", f"Bearer {never_issued}"))


@pytest.mark.parametrize("missing", ["sub", "jti", "iat"])
async def test_token_missing_a_required_claim_is_401(
    scim: Scim, settings: Settings, missing: str
) -> None:
    assert settings.token_secret is not None
    claims = _claims(scim.token)
    del claims[missing]
    token = jwt.encode(claims, settings.token_secret, algorithm="HS256")
    await _unauthorized(await _users(scim.client, "acme", f"Bearer {token}"))


async def test_revoked_token_is_401_at_once_on_the_revoking_server(scim: Scim) -> None:
    # Used first, so its validity is cached: the revocation must drop the cached entry.
    assert (await scim.get("/Users")).status == 200
    token_id = _claims(scim.token)["jti"]

    revoked = await scim.client.delete(f"/admin/tenants/acme/tokens/{token_id}", headers=ADMIN)
    assert revoked.status == 204

    body = await _unauthorized(await scim.get("/Users"))
    assert body["detail"] == "the bearer token has been revoked"


async def test_revoking_one_token_leaves_the_tenants_other_tokens_working(scim: Scim) -> None:
    issued = await scim.client.post("/admin/tenants/acme/tokens", json={}, headers=ADMIN)
    assert issued.status == 201
    second = (await issued.json())["token"]
    token_id = _claims(scim.token)["jti"]
    revoked = await scim.client.delete(f"/admin/tenants/acme/tokens/{token_id}", headers=ADMIN)
    assert revoked.status == 204

    await _unauthorized(await scim.get("/Users"))
    assert (await _users(scim.client, "acme", f"Bearer {second}")).status == 200


async def test_another_tenants_token_is_401_on_this_tenants_url(
    scim: Scim, other_scim: Scim
) -> None:
    await scim.create_user("bjensen")
    body = await _unauthorized(await _users(scim.client, "acme", f"Bearer {other_scim.token}"))
    assert body["detail"] == "the bearer token is not valid for this tenant"
    # ... and the same token still works where it belongs.
    assert (await other_scim.get("/Users")).status == 200


async def test_token_for_a_tenant_that_does_not_exist_is_401(scim: Scim) -> None:
    await _unauthorized(await _users(scim.client, "nobody", f"Bearer {scim.token}"))


async def test_basic_scheme_is_401(scim: Scim) -> None:
    body = await _unauthorized(await _users(scim.client, "acme", f"Basic {scim.token}"))
    assert body["detail"] == "use the Bearer authentication scheme"


async def test_admin_token_is_not_a_scim_token(scim: Scim) -> None:
    await _unauthorized(await _users(scim.client, "acme", ADMIN["Authorization"]))


# --- accepted ------------------------------------------------------------------------------


async def test_bearer_token_is_accepted(scim: Scim) -> None:
    response = await _users(scim.client, "acme", f"Bearer {scim.token}")
    assert response.status == 200
    assert (await response.json())["totalResults"] == 0


async def test_okta_raw_token_without_scheme_is_accepted(scim: Scim) -> None:
    await scim.create_user("bjensen")
    response = await _users(scim.client, "acme", scim.token)
    assert response.status == 200
    assert [u["userName"] for u in (await response.json())["Resources"]] == ["bjensen"]


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
async def test_bearer_scheme_is_case_insensitive(scim: Scim, scheme: str) -> None:
    assert (await _users(scim.client, "acme", f"{scheme} {scim.token}")).status == 200


async def test_a_token_accepted_before_is_refused_once_it_expires(
    scim: Scim, settings: Settings
) -> None:
    """The server remembers a token it verified; the expiry is still checked on each request."""
    claims = _claims(scim.token)
    claims["exp"] = int(time.time()) + 2
    assert settings.token_secret is not None
    token = jwt.encode(claims, settings.token_secret, algorithm="HS256")
    assert (await _users(scim.client, "acme", f"Bearer {token}")).status == 200

    await asyncio.sleep(claims["exp"] - time.time() + 0.1)  # past the expiry: waits, asserts none
    body = await _unauthorized(await _users(scim.client, "acme", f"Bearer {token}"))
    assert body["detail"] == "the bearer token has expired"


async def test_token_with_a_ttl_is_accepted_before_it_expires(scim: Scim) -> None:
    issued = await scim.client.post(
        "/admin/tenants/acme/tokens", json={"ttl_seconds": 3600}, headers=ADMIN
    )
    assert issued.status == 201
    token = (await issued.json())["token"]
    claims = _claims(token)
    assert claims["exp"] - claims["iat"] == 3600
    assert (await _users(scim.client, "acme", f"Bearer {token}")).status == 200


# --- every SCIM endpoint --------------------------------------------------------------------

ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "/ServiceProviderConfig", None),
    ("GET", "/ResourceTypes", None),
    ("GET", "/ResourceTypes/User", None),
    ("GET", "/Schemas", None),
    ("GET", f"/Schemas/{USER}", None),
    ("GET", "/Users", None),
    ("POST", "/Users", {"schemas": [USER], "userName": "intruder"}),
    ("POST", "/Users/.search", {"schemas": [SEARCH]}),
    ("GET", f"/Users/{MISSING_ID}", None),
    ("PUT", f"/Users/{MISSING_ID}", {"schemas": [USER], "userName": "intruder"}),
    (
        "PATCH",
        f"/Users/{MISSING_ID}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        },
    ),
    ("DELETE", f"/Users/{MISSING_ID}", None),
    ("GET", "/Groups", None),
    ("POST", "/Groups", {"schemas": [GROUP], "displayName": "intruders"}),
    ("POST", "/Groups/.search", {"schemas": [SEARCH]}),
    ("GET", f"/Groups/{MISSING_ID}", None),
    ("PUT", f"/Groups/{MISSING_ID}", {"schemas": [GROUP], "displayName": "intruders"}),
    (
        "PATCH",
        f"/Groups/{MISSING_ID}",
        {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "displayName", "value": "x"}],
        },
    ),
    ("DELETE", f"/Groups/{MISSING_ID}", None),
    ("POST", "/.search", {"schemas": [SEARCH]}),
    (
        "POST",
        "/Bulk",
        {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []},
    ),
    ("GET", "/Me", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
async def test_every_scim_endpoint_requires_a_token(
    scim: Scim, mongo_db: Any, method: str, path: str, body: Any
) -> None:
    response = await scim.client.request(method, scim.base + path, json=body)
    await _unauthorized(response)
    garbage = await scim.client.request(
        method, scim.base + path, json=body, headers={"Authorization": "Bearer not-a-jwt"}
    )
    await _unauthorized(garbage)
    # Nothing was written by the refused requests.
    assert await mongo_db["users"].count_documents({}) == 0
    assert await mongo_db["groups"].count_documents({}) == 0


# --- credentials that are not text --------------------------------------------------------


@pytest.mark.parametrize("token", ["é", "Bearer é", "日本語", "test-admin-tokén"])
async def test_non_ascii_admin_token_is_401(scim: Scim, token: str) -> None:
    response = await scim.client.get("/admin/tenants", headers={"Authorization": f"Bearer {token}"})
    await scim_error(response, 401)


@pytest.mark.parametrize("token", ["é", "eyJhbGciOiJIUzI1NiJ9.é.x", "日本語"])
async def test_non_ascii_bearer_token_is_401(scim: Scim, token: str) -> None:
    body = await _unauthorized(await _users(scim.client, "acme", f"Bearer {token}"))
    assert body["detail"] == "the bearer token is not valid"


@pytest.mark.parametrize("path", ["/scim/v2/acme/Users", "/admin/tenants"])
@pytest.mark.parametrize("token", [b"\xff\xfe", b"eyJhbGciOiJIUzI1NiJ9.\xc3(.x", b"\xed\xa0\x80"])
async def test_bearer_token_that_is_not_utf8_is_401(scim: Scim, path: str, token: bytes) -> None:
    for authorization in (b"Bearer " + token, token):
        answer = await raw_request(
            scim.client, b"GET %s HTTP/1.1" % path.encode(), b"Authorization: " + authorization
        )
        assert answer.status == 401, answer
        assert b"content-type: application/scim+json" in answer.head
        assert b'"status":"401"' in answer.body


@pytest.mark.parametrize("cookie", [b"\xff\xfe", b"eyJ\xc3(.x.y", b"\xed\xa0\x80"])
async def test_session_cookie_that_is_not_utf8_reads_as_signed_out(
    scim: Scim, cookie: bytes
) -> None:
    answer = await raw_request(
        scim.client, b"GET /sso/acme/ HTTP/1.1", b"Cookie: %s=%s" % (b"scim_sso_acme", cookie)
    )
    assert answer.status < 500, answer
    assert b"content-type: text/html" in answer.head
