"""The admin API: tenants and their bearer tokens, behind the admin token; deleting a tenant
removes all of its data and nobody else's; ``SCIM_PUBLIC_URL`` in every URL handed out."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.scim import ADMIN, Scim, make_tenant, scim_error
from tests.support.urns import USER


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token_id(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


# --- the admin token ------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("POST", "/admin/tenants", {"name": "intruder"}),
    ("GET", "/admin/tenants", None),
    ("DELETE", "/admin/tenants/acme", None),
    ("POST", "/admin/tenants/acme/tokens", {}),
    ("GET", "/admin/tenants/acme/tokens", None),
    ("DELETE", "/admin/tenants/acme/tokens/0123", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p, _ in ADMIN_ROUTES]
)
async def test_every_admin_route_requires_the_admin_token(
    scim: Scim, mongo_db: AsyncDatabase[Any], method: str, path: str, body: Any
) -> None:
    refusals: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-admin-token"},
        {"Authorization": "Basic test-admin-token"},
        {"Authorization": "test-admin-token"},  # the raw form is only for SCIM tokens
        _bearer(scim.token),  # a tenant's token is not an admin token
    ]
    for headers in refusals:
        response = await scim.client.request(method, path, json=body, headers=headers)
        await scim_error(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # Nothing changed: acme and its single token are still there, no tenant was created.
    assert await mongo_db["tenants"].distinct("_id") == ["acme"]
    assert await mongo_db["tokens"].count_documents({}) == 1
    assert (await scim.get("/Users")).status == 200


async def test_the_admin_token_is_required_and_a_wrong_one_is_called_not_valid(
    client: TestClient,
) -> None:
    missing = await scim_error(await client.get("/admin/tenants"), 401)
    assert missing["detail"] == "the admin token is required"
    wrong = await scim_error(await client.get("/admin/tenants", headers=_bearer("nope")), 401)
    assert wrong["detail"] == "the admin token is not valid"


@pytest.mark.parametrize(
    "token",
    ["\u00e9", "caf\u00e9-token", "test-admin-token\u00e9"],
    ids=["e-acute", "latin-1 word", "the token plus one non-ASCII letter"],
)
async def test_a_non_ascii_admin_token_is_refused_with_401_not_500(
    client: TestClient, token: str
) -> None:
    # aiohttp sends str headers as UTF-8; the server once compared them as str and crashed.
    response = await client.get(
        "/admin/tenants", headers={"Authorization": f"Bearer {token}".encode().decode("latin-1")}
    )
    await scim_error(response, 401)


async def test_an_unknown_admin_path_asks_for_the_token_before_saying_it_does_not_exist(
    client: TestClient,
) -> None:
    await scim_error(await client.get("/admin/no-such-thing"), 401)
    response = await client.get("/admin/no-such-thing", headers=ADMIN)
    await scim_error(response, 404)


# --- tenants --------------------------------------------------------------------------------


async def test_create_tenant_answers_its_base_url_and_a_working_token(
    client: TestClient, mongo_db: AsyncDatabase[Any]
) -> None:
    response = await client.post("/admin/tenants", json={"name": "acme"}, headers=ADMIN)
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"name", "scim_base_url", "token", "token_id"}
    assert body["name"] == "acme"
    assert body["scim_base_url"] == str(client.make_url("/scim/v2/acme"))
    assert body["token_id"] == _token_id(body["token"])

    users = await client.get("/scim/v2/acme/Users", headers=_bearer(body["token"]))
    assert users.status == 200
    assert (await users.json())["totalResults"] == 0
    assert await mongo_db["tenants"].distinct("_id") == ["acme"]


async def test_duplicate_tenant_is_409_and_keeps_the_first(client: TestClient) -> None:
    first = await make_tenant(client, "acme")
    again = await client.post("/admin/tenants", json={"name": "acme"}, headers=ADMIN)
    body = await scim_error(again, 409)
    assert body["detail"] == "tenant 'acme' already exists"
    users = await client.get("/scim/v2/acme/Users", headers=_bearer(first["token"]))
    assert users.status == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": None},
        {"name": 42},
        {"name": ["acme"]},
        {"name": "Acme"},
        {"name": "-acme"},
        {"name": "_acme"},
        {"name": "ac me"},
        {"name": "ac/me"},
        {"name": "acme.corp"},
        {"name": "a" * 64},
    ],
    ids=repr,
)
async def test_invalid_tenant_name_is_400(
    client: TestClient, mongo_db: AsyncDatabase[Any], body: dict[str, Any]
) -> None:
    await scim_error(
        await client.post("/admin/tenants", json=body, headers=ADMIN), 400, "invalidValue"
    )
    assert await mongo_db["tenants"].count_documents({}) == 0


@pytest.mark.parametrize("name", ["a", "acme", "acme-corp", "acme_2", "0day", "a" * 63])
async def test_valid_tenant_names_are_accepted(client: TestClient, name: str) -> None:
    created = await make_tenant(client, name)
    assert created["name"] == name


async def test_create_tenant_body_must_be_a_json_object(client: TestClient) -> None:
    await scim_error(
        await client.post(
            "/admin/tenants", data=b"{", headers={**ADMIN, "Content-Type": "application/json"}
        ),
        400,
        "invalidSyntax",
    )
    await scim_error(
        await client.post("/admin/tenants", json=["acme"], headers=ADMIN), 400, "invalidSyntax"
    )


async def test_list_tenants_in_name_order(client: TestClient) -> None:
    assert (await (await client.get("/admin/tenants", headers=ADMIN)).json()) == {"tenants": []}
    for name in ("globex", "acme", "initech"):
        await make_tenant(client, name)

    response = await client.get("/admin/tenants", headers=ADMIN)
    assert response.status == 200
    tenants = (await response.json())["tenants"]
    assert [t["name"] for t in tenants] == ["acme", "globex", "initech"]
    for tenant in tenants:
        # The keys of GET .../seats, and seats_used: the former name of used, kept for old clients.
        assert set(tenant) == {
            "name",
            "scim_base_url",
            "created",
            "seats",
            "used",
            "available",
            "over",
            "seats_used",
        }
        seats = {key: tenant[key] for key in ("seats", "used", "available", "over")}
        assert seats == {"seats": None, "used": 0, "available": None, "over": 0}
        assert tenant["seats_used"] == tenant["used"]
        assert tenant["scim_base_url"] == str(client.make_url(f"/scim/v2/{tenant['name']}"))
        assert datetime.fromisoformat(tenant["created"]).tzinfo is not None


# --- tokens ---------------------------------------------------------------------------------


async def test_second_token_works_alongside_the_first(scim: Scim) -> None:
    response = await scim.client.post(
        "/admin/tenants/acme/tokens", json={"description": "okta"}, headers=ADMIN
    )
    assert response.status == 201
    issued = await response.json()
    # token_id as tenant creation names it; id, its former name here, kept for old clients.
    assert set(issued) == {"token_id", "id", "token", "tenant", "expires"}
    assert issued["tenant"] == "acme"
    assert issued["expires"] is None
    assert issued["token_id"] == issued["id"] == _token_id(issued["token"])
    assert issued["token"] != scim.token

    for token in (scim.token, issued["token"]):
        assert (await scim.client.get("/scim/v2/acme/Users", headers=_bearer(token))).status == 200

    listed = await scim.client.get("/admin/tenants/acme/tokens", headers=ADMIN)
    assert listed.status == 200
    tokens = (await listed.json())["tokens"]
    assert [t["token_id"] for t in tokens] == [_token_id(scim.token), issued["token_id"]]
    assert all(t["id"] == t["token_id"] for t in tokens)
    assert [t["description"] for t in tokens] == ["initial token", "okta"]
    assert all(t["revoked"] is None and t["tenant"] == "acme" for t in tokens)
    assert all("token" not in t for t in tokens)  # ids only, never the secrets


async def test_token_issued_without_a_body(scim: Scim) -> None:
    response = await scim.client.post("/admin/tenants/acme/tokens", headers=ADMIN)
    assert response.status == 201
    token = (await response.json())["token"]
    assert (await scim.client.get("/scim/v2/acme/Users", headers=_bearer(token))).status == 200


async def test_token_with_ttl_reports_its_expiry(scim: Scim) -> None:
    response = await scim.client.post(
        "/admin/tenants/acme/tokens", json={"ttl_seconds": 60}, headers=ADMIN
    )
    assert response.status == 201
    issued = await response.json()
    claims = jwt.decode(issued["token"], options={"verify_signature": False})
    assert datetime.fromisoformat(issued["expires"]).timestamp() == pytest.approx(
        claims["exp"], abs=1
    )
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize("ttl", [0, -5, "3600", 1.5, True, [60]], ids=repr)
async def test_invalid_ttl_is_400(scim: Scim, mongo_db: AsyncDatabase[Any], ttl: Any) -> None:
    response = await scim.client.post(
        "/admin/tenants/acme/tokens", json={"ttl_seconds": ttl}, headers=ADMIN
    )
    await scim_error(response, 400, "invalidValue")
    assert await mongo_db["tokens"].count_documents({}) == 1


async def test_tokens_of_an_unknown_tenant_are_404(client: TestClient) -> None:
    await scim_error(await client.post("/admin/tenants/nobody/tokens", json={}, headers=ADMIN), 404)
    await scim_error(await client.get("/admin/tenants/nobody/tokens", headers=ADMIN), 404)
    await scim_error(await client.delete("/admin/tenants/nobody/tokens/abc", headers=ADMIN), 404)


async def test_revoke_token(scim: Scim) -> None:
    token_id = _token_id(scim.token)
    assert (await scim.get("/Users")).status == 200

    response = await scim.client.delete(f"/admin/tenants/acme/tokens/{token_id}", headers=ADMIN)
    assert response.status == 204

    await scim_error(await scim.get("/Users"), 401)
    tokens = (await (await scim.client.get("/admin/tenants/acme/tokens", headers=ADMIN)).json())[
        "tokens"
    ]
    assert [t["id"] for t in tokens] == [token_id]
    assert datetime.fromisoformat(tokens[0]["revoked"]).tzinfo is not None


async def test_revoke_unknown_token_is_404(scim: Scim) -> None:
    missing = await scim.client.delete("/admin/tenants/acme/tokens/nope", headers=ADMIN)
    await scim_error(missing, 404)


async def test_a_token_cannot_be_revoked_through_another_tenant(
    scim: Scim, other_scim: Scim
) -> None:
    token_id = _token_id(scim.token)
    response = await scim.client.delete(f"/admin/tenants/globex/tokens/{token_id}", headers=ADMIN)
    await scim_error(response, 404)
    assert (await scim.get("/Users")).status == 200


# --- deleting a tenant ----------------------------------------------------------------------


async def _counts(db: AsyncDatabase[Any], tenant: str) -> dict[str, int]:
    return {
        collection: await db[collection].count_documents({"tenant": tenant})
        for collection in ("users", "groups", "memberships", "tokens")
    } | {"tenants": await db["tenants"].count_documents({"_id": tenant})}


async def test_delete_tenant_removes_all_its_data_and_nothing_else(
    scim: Scim, other_scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    for tenant in (scim, other_scim):
        alice = await tenant.create_user("alice")
        bob = await tenant.create_user("bob")
        inner = await tenant.create_group("inner", [bob["id"]])
        await tenant.create_group("outer", [alice["id"], inner["id"]])
    second = await (await scim.client.post("/admin/tenants/acme/tokens", headers=ADMIN)).json()
    assert await _counts(mongo_db, "acme") == {
        "users": 2,
        "groups": 2,
        "memberships": 3,
        "tokens": 2,
        "tenants": 1,
    }
    globex_before = await _counts(mongo_db, "globex")

    response = await scim.client.delete("/admin/tenants/acme", headers=ADMIN)
    assert response.status == 204

    assert await _counts(mongo_db, "acme") == {
        "users": 0,
        "groups": 0,
        "memberships": 0,
        "tokens": 0,
        "tenants": 0,
    }
    assert await _counts(mongo_db, "globex") == globex_before
    listed = await (await scim.client.get("/admin/tenants", headers=ADMIN)).json()
    assert [t["name"] for t in listed["tenants"]] == ["globex"]

    globex_users = await (await other_scim.get("/Users")).json()
    assert sorted(u["userName"] for u in globex_users["Resources"]) == ["alice", "bob"]
    # The deleted tenant's tokens stop working, also the one just used (and so cached).
    await scim_error(await scim.get("/Users"), 401)
    await scim_error(
        await scim.client.get("/scim/v2/acme/Users", headers=_bearer(second["token"])), 401
    )


async def test_deleted_tenants_token_does_not_open_a_recreated_tenant(scim: Scim) -> None:
    await scim.create_user("alice")
    assert (await scim.client.delete("/admin/tenants/acme", headers=ADMIN)).status == 204
    recreated = await make_tenant(scim.client, "acme")

    await scim_error(await scim.get("/Users"), 401)
    fresh = await scim.client.get("/scim/v2/acme/Users", headers=_bearer(recreated["token"]))
    assert fresh.status == 200
    assert (await fresh.json())["totalResults"] == 0


async def test_delete_unknown_tenant_is_404(client: TestClient) -> None:
    await scim_error(await client.delete("/admin/tenants/nobody", headers=ADMIN), 404)


# --- SCIM_PUBLIC_URL ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "root"),
    [
        ("https://scim.example.com", "https://scim.example.com"),
        ("https://proxy.example.com/idm/", "https://proxy.example.com/idm"),
    ],
)
async def test_public_url_is_used_in_every_url_handed_out(
    aiohttp_client: Any,
    settings: Settings,
    mongo_db: AsyncDatabase[Any],
    public_url: str,
    root: str,
) -> None:
    client = await aiohttp_client(create_app(replace(settings, public_url=public_url)))
    base = f"{root}/scim/v2/acme"

    tenant = await make_tenant(client, "acme")
    assert tenant["scim_base_url"] == base
    listed = await (await client.get("/admin/tenants", headers=ADMIN)).json()
    assert listed["tenants"][0]["scim_base_url"] == base

    scim = Scim(client, "acme", tenant["token"])
    created = await scim.post("/Users", {"schemas": [USER], "userName": "bjensen"})
    assert created.status == 201
    user = await created.json()
    assert created.headers["Location"] == f"{base}/Users/{user['id']}"
    assert user["meta"]["location"] == f"{base}/Users/{user['id']}"

    group = await scim.create_group("staff", [user["id"]])
    assert group["meta"]["location"] == f"{base}/Groups/{group['id']}"
    assert group["members"][0]["$ref"] == f"{base}/Users/{user['id']}"

    fetched = await (await scim.get(f"/Users/{user['id']}")).json()
    assert fetched["meta"]["location"] == f"{base}/Users/{user['id']}"
    assert fetched["groups"][0]["$ref"] == f"{base}/Groups/{group['id']}"
    listing = await (await scim.get("/Users")).json()
    assert listing["Resources"][0]["meta"]["location"] == f"{base}/Users/{user['id']}"

    config = await (await scim.get("/ServiceProviderConfig")).json()
    assert config["meta"]["location"] == f"{base}/ServiceProviderConfig"
    resource_type = await (await scim.get("/ResourceTypes/User")).json()
    assert resource_type["meta"]["location"] == f"{base}/ResourceTypes/User"
