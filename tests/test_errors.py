"""Errors over HTTP (RFC 7644 §3.12): every failure is an ``application/scim+json`` Error with
``status`` as a string, never HTML; routing, media types, body limits, an unreachable database;
``/Me`` unsupported; the discovery endpoints answer what the server really does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError
from scim2_models import (
    Error,
    InvalidPathException,
    PatchOp,
    SCIMException,
    UniquenessException,
)
from yarl import URL

from scim_server.config import Settings
from scim_server.core import errors
from scim_server.core.errors import (
    DatabaseUnavailable,
    InternalErrorException,
    ServiceUnavailableException,
    TooManyConcurrentChanges,
    error_document,
    error_status,
    from_validation_error,
)
from scim_server.core.provisioning import Provisioning
from scim_server.core.tokens import TokenAuthority
from scim_server.models import UserModel
from scim_server.storage.database import Database
from scim_server.storage.errors import StorageError, StorageUnavailable, WriteRefused
from scim_server.storage.tenants import TenantRepository
from scim_server.web.admin import MAX_TOKEN_TTL_SECONDS
from scim_server.web.app import create_app
from scim_server.web.middleware import MAX_URL_BYTES, PARSER_LIMITS, error_response
from scim_server.web.state import SERVICES, Services
from tests.support.raw_http import raw_request
from tests.support.scim import ADMIN, Scim, make_tenant, scim_error
from tests.support.stores import unreachable_database
from tests.support.urns import BULK_REQUEST as BULK
from tests.support.urns import ENTERPRISE, ERROR, GROUP, PATCH_OP, USER
from tests.support.urns import LIST_RESPONSE as LIST


def _user(user_name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": user_name}


# --- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nope",
        "/scim/v2",
        "/scim/v2/acme",
        "/scim/v2/acme/Nope",
        "/scim/v2/acme/users/extra/segments",
        "/administrator",
        # Under /admin the admin token is asked for first: tests/test_admin.py pins that.
    ],
)
async def test_unknown_route_is_404_scim_error(scim: Scim, path: str) -> None:
    response = await scim.client.get(path, headers={**scim.headers(), "Accept": "text/html"})
    body = await scim_error(response, 404)
    assert "scimType" not in body


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/scim/v2/acme/Users", {"GET", "HEAD", "POST"}),
        ("PATCH", "/scim/v2/acme/Groups", {"GET", "HEAD", "POST"}),
        ("PUT", "/scim/v2/acme/ServiceProviderConfig", {"GET", "HEAD"}),
        ("POST", "/scim/v2/acme/Schemas", {"GET", "HEAD"}),
        # ".search" is a reserved name (RFC 7644 §3.4.3), never a resource's id.
        ("GET", "/scim/v2/acme/Users/.search", {"POST"}),
        ("DELETE", "/scim/v2/acme/Groups/.search", {"POST"}),
        ("PUT", "/scim/v2/acme/Users/.search", {"POST"}),
        ("PATCH", "/scim/v2/acme/Groups/.search", {"POST"}),
        ("GET", "/scim/v2/acme/.search", {"POST"}),
        ("GET", "/scim/v2/acme/Bulk", {"POST"}),
        ("PUT", "/admin/tenants", {"GET", "HEAD", "POST"}),
    ],
)
async def test_wrong_method_is_405_with_allow(
    scim: Scim, method: str, path: str, allowed: set[str]
) -> None:
    credentials = ADMIN if path.startswith("/admin/") else scim.headers()
    response = await scim.client.request(
        method, path, headers={**credentials, "Accept": "text/html"}
    )
    await scim_error(response, 405)
    assert set(response.headers["Allow"].split(", ")) == allowed


# --- media types and bodies -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
async def test_unsupported_media_type_is_415(scim: Scim, mongo_db: Any, content_type: str) -> None:
    response = await scim.post(
        "/Users",
        data=b'{"schemas": ["%s"], "userName": "x"}' % USER.encode(),
        headers={"Content-Type": content_type},
    )
    await scim_error(response, 415)
    assert await mongo_db["users"].count_documents({}) == 0


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/scim+json",
        "application/scim+json; charset=utf-8",
        "application/json; charset=UTF-8",
        "APPLICATION/SCIM+JSON",
    ],
)
async def test_json_media_types_are_accepted(scim: Scim, content_type: str) -> None:
    body = b'{"schemas": ["%s"], "userName": "bjensen"}' % USER.encode()
    response = await scim.post("/Users", data=body, headers={"Content-Type": content_type})
    assert response.status == 201, await response.text()
    assert response.content_type == "application/scim+json"
    assert (await response.json())["userName"] == "bjensen"


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"userName": "x",}',
        b"{'userName': 'x'}",
        b"",
        b"\xff\xfe",
        b'{"userName": "x"} trailing',
    ],
    ids=repr,
)
async def test_malformed_json_is_400_invalid_syntax(scim: Scim, raw: bytes) -> None:
    response = await scim.post(
        "/Users", data=raw, headers={"Content-Type": "application/scim+json"}
    )
    await scim_error(response, 400, "invalidSyntax")


@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b'"user"', b"42", b"null", b"true"], ids=repr)
@pytest.mark.parametrize("path", ["/Users", "/Groups", "/Users/.search", "/.search", "/Bulk"])
async def test_json_that_is_not_an_object_is_400(scim: Scim, raw: bytes, path: str) -> None:
    response = await scim.post(path, data=raw, headers={"Content-Type": "application/scim+json"})
    await scim_error(response, 400, "invalidSyntax")


async def test_malformed_json_on_put_and_admin_is_400(scim: Scim) -> None:
    user = await scim.create_user("bjensen")
    headers = {"Content-Type": "application/scim+json"}
    await scim_error(
        await scim.put(f"/Users/{user['id']}", data=b"{", headers=headers), 400, "invalidSyntax"
    )
    await scim_error(
        await scim.client.post("/admin/tenants", data=b"{", headers={**ADMIN, **headers}),
        400,
        "invalidSyntax",
    )


@pytest.mark.parametrize("escape", [b"\\ud800", b"a\\udfffb", b"\\ude00\\ud83d"])
async def test_lone_surrogate_in_a_json_body_is_400_invalid_syntax(
    scim: Scim, mongo_db: Any, escape: bytes
) -> None:
    """No string a database cannot hold gets past the JSON reader, on any route."""
    user = await scim.create_user("bjensen")
    value = b'"%s"' % escape
    user_body = b'{"schemas": ["%s"], "userName": %s}' % (USER.encode(), value)
    patch = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": '
    patch += b'[{"op": "replace", "path": "title", "value": %s}]}' % value
    bulk = b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": '
    bulk += b'[{"method": "POST", "path": "/Users", "bulkId": "a", "data": %s}]}' % user_body
    headers = {"Content-Type": "application/scim+json"}
    for method, path, body in (
        ("POST", "/Users", user_body),
        ("PUT", f"/Users/{user['id']}", user_body),
        ("PATCH", f"/Users/{user['id']}", patch),
        ("POST", "/Bulk", bulk),
        ("POST", "/.search", b'{"filter": %s}' % value),
    ):
        response = await scim.request(method, path, data=body, headers=headers)
        await scim_error(response, 400, "invalidSyntax")
    response = await scim.client.post(
        "/admin/tenants", data=b'{"name": %s}' % value, headers={**ADMIN, **headers}
    )
    await scim_error(response, 400, "invalidSyntax")
    assert await mongo_db["users"].count_documents({}) == 1


# --- body limit -----------------------------------------------------------------------------

LIMIT = 1024


@pytest.fixture
async def small_body(aiohttp_client: Any, settings: Settings, mongo_db: Any) -> Scim:
    client: TestClient = await aiohttp_client(create_app(replace(settings, max_body_bytes=LIMIT)))
    tenant = await make_tenant(client, "acme")
    return Scim(client, "acme", tenant["token"])


def _padded_user(size: int) -> bytes:
    """A valid user body of exactly ``size`` bytes."""
    head = b'{"schemas": ["%s"], "userName": "bjensen", "nickName": "' % USER.encode()
    tail = b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def test_body_at_the_limit_is_accepted(small_body: Scim) -> None:
    response = await small_body.post(
        "/Users", data=_padded_user(LIMIT), headers={"Content-Type": "application/scim+json"}
    )
    assert response.status == 201, await response.text()


async def test_body_over_the_limit_with_content_length_is_413(
    small_body: Scim, mongo_db: Any
) -> None:
    body = _padded_user(LIMIT + 1)
    response = await small_body.post(
        "/Users", data=body, headers={"Content-Type": "application/scim+json"}
    )
    error = await scim_error(response, 413)
    assert error["detail"] == f"the body is {LIMIT + 1} bytes; the limit is {LIMIT}"
    assert await mongo_db["users"].count_documents({}) == 0


async def test_body_over_the_limit_is_413_even_unauthenticated(small_body: Scim) -> None:
    response = await small_body.client.post(
        "/scim/v2/acme/Users",
        data=_padded_user(4 * LIMIT),
        headers={"Content-Type": "application/scim+json"},
    )
    await scim_error(response, 413)


async def test_chunked_body_over_the_limit_is_413(small_body: Scim, mongo_db: Any) -> None:
    body = _padded_user(3 * LIMIT)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 256):
            yield body[start : start + 256]

    response = await small_body.post(
        "/Users", data=chunks(), headers={"Content-Type": "application/scim+json"}
    )
    assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
    await scim_error(response, 413)
    assert await mongo_db["users"].count_documents({}) == 0


async def test_chunked_body_under_the_limit_is_accepted(small_body: Scim) -> None:
    body = _padded_user(LIMIT // 2)

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:100]
        yield body[100:]

    response = await small_body.post(
        "/Users", data=chunks(), headers={"Content-Type": "application/scim+json"}
    )
    assert response.status == 201, await response.text()


async def test_body_limit_applies_to_patch_put_and_search(small_body: Scim) -> None:
    user = await small_body.create_user("bjensen")
    big = _padded_user(LIMIT + 1)
    headers = {"Content-Type": "application/scim+json"}
    for method, path in (
        ("PUT", f"/Users/{user['id']}"),
        ("PATCH", f"/Users/{user['id']}"),
        ("POST", "/Users/.search"),
        ("POST", "/.search"),
    ):
        await scim_error(await small_body.request(method, path, data=big, headers=headers), 413)


# --- the database away ----------------------------------------------------------------------


@pytest.fixture
async def unreachable() -> AsyncIterator[Database]:
    async with unreachable_database() as database:
        yield database


def _services(scim: Scim) -> Services:
    app = scim.client.app
    assert app is not None
    return app[SERVICES]


async def test_database_down_while_authenticating_is_503_not_401(
    scim: Scim, unreachable: Database
) -> None:
    services = _services(scim)
    services.tenants = TenantRepository(unreachable)
    services.tokens = TokenAuthority("test-signing-secret-of-at-least-32-bytes", services.tenants)

    response = await scim.get("/Users")
    await scim_error(response, 503)
    assert response.headers["Retry-After"] == "5"
    assert "WWW-Authenticate" not in response.headers


async def test_database_down_while_provisioning_is_503(scim: Scim, unreachable: Database) -> None:
    assert (await scim.get("/Users")).status == 200  # the token is now cached as valid
    services = _services(scim)
    services.provisioning = Provisioning(
        unreachable, max_results=200, cursors=services.provisioning.cursors
    )

    for response in await asyncio.gather(
        scim.get("/Users"),
        scim.post("/Users", _user("bjensen")),
        scim.get("/Groups?filter=displayName%20eq%20%22x%22"),
    ):
        await scim_error(response, 503)
        assert response.headers["Retry-After"] == "5"


async def test_database_down_on_the_admin_api_is_503(scim: Scim, unreachable: Database) -> None:
    _services(scim).tenancy.tenants = TenantRepository(unreachable)
    response = await scim.client.get("/admin/tenants", headers=ADMIN)
    await scim_error(response, 503)
    assert response.headers["Retry-After"] == "5"


async def test_database_down_during_bulk_is_503_for_the_operation_and_stops_the_bulk(
    scim: Scim, unreachable: Database
) -> None:
    assert (await scim.get("/Users")).status == 200  # the token is now cached as valid
    services = _services(scim)
    services.provisioning = Provisioning(
        unreachable, max_results=200, cursors=services.provisioning.cursors
    )
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": f"u{n}", "data": _user(f"u{n}")}
        for n in range(3)
    ]
    response = await scim.post("/Bulk", {"schemas": [BULK], "Operations": operations})

    assert response.status == 200, await response.text()
    [result] = (await response.json())["Operations"]
    assert result["status"] == "503"
    assert result["response"] == {
        "schemas": [ERROR],
        "status": "503",
        "detail": "The database is unavailable, retry later",
    }


# --- one translation ------------------------------------------------------------------------


def test_every_exception_becomes_a_scim_error_and_keeps_its_class() -> None:
    conflict = UniquenessException(detail="taken")
    assert errors.scim_error(conflict, "test") is conflict
    assert isinstance(errors.scim_error(StorageUnavailable("gone"), "test"), DatabaseUnavailable)
    for unforeseen in (WriteRefused("no"), StorageError("odd"), AssertionError(), KeyError("k")):
        translated = errors.scim_error(unforeseen, "test")
        assert isinstance(translated, InternalErrorException)
        assert error_document(translated)["detail"] == "The server failed to process the request"


def test_both_kinds_of_503_are_answered_with_retry_after() -> None:
    for unavailable in (DatabaseUnavailable(), TooManyConcurrentChanges()):
        assert isinstance(unavailable, ServiceUnavailableException)
        response = error_response(unavailable)
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
    assert DatabaseUnavailable().detail != TooManyConcurrentChanges().detail


def test_a_scim_error_inside_a_validation_error_keeps_its_exception_class() -> None:
    operation = {"op": "add", "path": "not a path!", "value": 1}
    with pytest.raises(ValidationError) as raised:
        PatchOp[UserModel].model_validate({"schemas": [PATCH_OP], "Operations": [operation]})
    translated = from_validation_error(raised.value)
    assert isinstance(translated, InvalidPathException)
    assert error_document(translated)["scimType"] == "invalidPath"


def test_an_error_with_a_status_no_class_has_keeps_that_status() -> None:
    exc = SCIMException.from_error(Error(status=429, detail="slow down"))
    assert error_status(exc) == 429
    assert error_document(exc) == {"schemas": [ERROR], "status": "429", "detail": "slow down"}


# --- /Me ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/Me", "/Me/anything"])
async def test_me_is_501(scim: Scim, method: str, path: str) -> None:
    body = None if method in ("GET", "DELETE") else _user("me")
    await scim_error(await scim.request(method, path, json=body), 501)


# --- never HTML -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_line", "header"),
    [
        (b"GET /scim/v2/acme/Users HTTP/1.1", b"Content-Length: abc"),
        (b"GET /scim/v2/acme/Users/\xff\xfe HTTP/1.1", b"X: y"),
        (b"GET /scim/v2/acme/Users?filter=userName+eq+%22\xed\xa0\x80%22 HTTP/1.1", b"X: y"),
        (b"GET /admin/tenants/\xff/tokens HTTP/1.1", b"X: y"),
        (
            b"GET /scim/v2/acme/Users?p=%s HTTP/1.1" % (b"x" * PARSER_LIMITS["max_line_size"]),
            b"X: y",
        ),
    ],
)
async def test_malformed_http_is_not_answered_with_html(
    scim: Scim, request_line: bytes, header: bytes
) -> None:
    """Requests aiohttp cannot parse (a URL must be ASCII and under the parser's ceiling) never
    reach the middleware; still a 400 and no HTML page."""
    answer = await raw_request(scim.client, request_line, b"Accept: text/html", header)
    assert answer.status == 400
    assert b"text/html" not in answer.head
    assert b"<html" not in answer.body.lower()


# --- over-long request lines and headers ----------------------------------------------------


@pytest.mark.parametrize("size", [8_191, 20_000, 200_000])
@pytest.mark.parametrize("parameter", ["filter", "attributes", "excludedAttributes"])
async def test_over_long_url_is_414_scim_error(scim: Scim, parameter: str, size: int) -> None:
    if parameter == "filter":
        value = " or ".join(f'userName eq "user{n}"' for n in range(size // 20))
    else:
        value = ",".join(f"name.givenName{n}" for n in range(size // 16))
    response = await scim.get(f"/Users?{parameter}={quote(value)}", headers={"Accept": "text/html"})
    body = await scim_error(response, 414)
    assert "POST" in body["detail"] and ".search" in body["detail"]


async def test_url_at_the_limit_is_served(scim: Scim) -> None:
    query = "?filter=" + quote('userName eq "x"')
    path = f"{scim.base}/Users{query}"
    padding = MAX_URL_BYTES - len(path) - len("&p=")
    response = await scim.client.get(f"{path}&p={'x' * padding}", headers=scim.headers())
    assert response.status == 200, await response.text()


async def test_over_long_url_on_admin_and_browser_routes_is_414(scim: Scim) -> None:
    long = "x" * 9_000
    await scim_error(await scim.client.get(f"/admin/tenants?q={long}", headers=ADMIN), 414)
    browser = await scim.client.get(f"/sso/acme/?RelayState={long}")
    assert (browser.status, browser.content_type) == (414, "text/html")  # a person is looking


async def test_over_long_header_is_431_scim_error(scim: Scim) -> None:
    response = await scim.get("/Users", headers={"If-None-Match": "W/" + "x" * 9_000})
    await scim_error(response, 431)
    answer = await raw_request(
        scim.client, b"GET /scim/v2/acme/Users HTTP/1.1", b"Authorization: Bearer " + b"a" * 20_000
    )
    assert answer.status == 431
    assert b"content-type: application/scim+json" in answer.head


# --- browser routes ------------------------------------------------------------------------


@pytest.mark.parametrize("tenant", ["%20", "a%3Bb", "%C3%A9", "UPPER", "a,b"])
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/logout"), ("GET", "/"), ("POST", "/password")]
)
async def test_browser_route_for_a_name_no_tenant_can_have_is_the_generic_page(
    scim: Scim, tenant: str, method: str, path: str
) -> None:
    response = await scim.client.request(method, URL(f"/sso/{tenant}{path}", encoded=True))
    assert response.status == 404, await response.text()
    assert response.content_type == "text/html"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"SAMLResponse=\xff\xfe&RelayState=x", "application/x-www-form-urlencoded"),
        (b"username=a&password=b", "application/x-www-form-urlencoded; charset=nope"),
        (b"username=a&password=b", "multipart/form-data; boundary=zz"),
        (b"username=a&password=b", "multipart/form-data"),
        (
            b"--zz\r\nContent-Disposition: form-data; name=username\r\n\r\n\xff\r\n--zz--\r\n",
            "multipart/form-data; boundary=zz",
        ),
    ],
)
@pytest.mark.parametrize("path", ["/saml/acs", "/password"])
async def test_unreadable_browser_form_is_the_generic_page_400(
    scim: Scim, path: str, body: bytes, content_type: str
) -> None:
    response = await scim.client.post(
        f"/sso/acme{path}", data=body, headers={"Content-Type": content_type}
    )
    assert response.status == 400, await response.text()
    assert response.content_type == "text/html"


# --- discovery ------------------------------------------------------------------------------


async def _ok(response: Any) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    assert response.content_type == "application/scim+json"
    return dict(await response.json())


async def test_service_provider_config_says_what_the_server_does(scim: Scim) -> None:
    config = await _ok(await scim.get("/ServiceProviderConfig"))
    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert config["patch"] == {"supported": True}
    assert config["bulk"] == {
        "supported": True,
        "maxOperations": 1000,
        "maxPayloadSize": 4 * 1024 * 1024,
    }
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["sort"] == {"supported": True}
    assert config["etag"] == {"supported": True}
    assert config["changePassword"] == {"supported": True}
    assert [s["type"] for s in config["authenticationSchemes"]] == ["oauthbearertoken"]
    assert config["authenticationSchemes"][0]["primary"] is True
    assert config["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{_base(scim)}/ServiceProviderConfig",
    }


async def test_service_provider_config_follows_the_settings(
    aiohttp_client: Any, settings: Settings, mongo_db: Any
) -> None:
    client = await aiohttp_client(
        create_app(
            replace(
                settings,
                max_results=50,
                bulk_max_operations=10,
                bulk_max_payload_bytes=65536,
            )
        )
    )
    tenant = await make_tenant(client, "acme")
    config = await _ok(
        await client.get(
            "/scim/v2/acme/ServiceProviderConfig",
            headers={"Authorization": f"Bearer {tenant['token']}"},
        )
    )
    assert config["filter"] == {"supported": True, "maxResults": 50}
    assert config["bulk"] == {"supported": True, "maxOperations": 10, "maxPayloadSize": 65536}


def _base(scim: Scim) -> str:
    return str(scim.client.make_url(scim.base))


async def test_resource_types_list_users_and_groups(scim: Scim) -> None:
    listing = await _ok(await scim.get("/ResourceTypes"))
    assert listing["schemas"] == [LIST]
    assert listing["totalResults"] == 2
    by_name = {r["name"]: r for r in listing["Resources"]}
    assert set(by_name) == {"User", "Group"}
    assert by_name["User"]["endpoint"] == "/Users"
    assert by_name["User"]["schema"] == USER
    assert by_name["User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    assert by_name["Group"]["endpoint"] == "/Groups"
    assert by_name["Group"]["schema"] == GROUP
    for name, resource_type in by_name.items():
        assert resource_type["meta"]["location"] == f"{_base(scim)}/ResourceTypes/{name}"


@pytest.mark.parametrize("name", ["User", "Group"])
async def test_one_resource_type(scim: Scim, name: str) -> None:
    resource_type = await _ok(await scim.get(f"/ResourceTypes/{name}"))
    listing = await _ok(await scim.get("/ResourceTypes"))
    assert resource_type == next(r for r in listing["Resources"] if r["name"] == name)


@pytest.mark.parametrize("name", ["Nope", "user", "Users"])
async def test_unknown_resource_type_is_404(scim: Scim, name: str) -> None:
    await scim_error(await scim.get(f"/ResourceTypes/{name}"), 404)


async def test_schemas_list_user_enterprise_and_group(scim: Scim) -> None:
    listing = await _ok(await scim.get("/Schemas"))
    assert listing["schemas"] == [LIST]
    assert listing["totalResults"] == 3
    assert [s["id"] for s in listing["Resources"]] == [USER, ENTERPRISE, GROUP]
    for schema in listing["Resources"]:
        assert schema["meta"]["location"] == f"{_base(scim)}/Schemas/{schema['id']}"
        one = await _ok(await scim.get(f"/Schemas/{schema['id']}"))
        assert one == schema
        quoted = await _ok(await scim.get(f"/Schemas/{quote(schema['id'], safe='')}"))
        assert quoted == schema


async def test_user_schema_describes_password_and_user_name(scim: Scim) -> None:
    schema = await _ok(await scim.get(f"/Schemas/{USER}"))
    attributes = {a["name"]: a for a in schema["attributes"]}
    assert attributes["password"]["mutability"] == "writeOnly"
    assert attributes["password"]["returned"] == "never"
    assert attributes["userName"]["uniqueness"] == "server"
    assert attributes["userName"]["required"] is True
    assert attributes["groups"]["mutability"] == "readOnly"


@pytest.mark.parametrize(
    "urn",
    [
        "urn:ietf:params:scim:schemas:core:2.0:Nope",
        "urn:ietf:params:scim:api:messages:2.0:Error",
        "User",
    ],
)
async def test_unknown_schema_is_404(scim: Scim, urn: str) -> None:
    await scim_error(await scim.get(f"/Schemas/{urn}"), 404)


# --- numbers out of range in bodies -----------------------------------------------------------


@pytest.mark.parametrize(
    "ttl", [b"9223372036854775807", b"9223372036854775808", b"18446744073709551615", b"1e308"]
)
async def test_token_ttl_beyond_any_date_is_400(scim: Scim, ttl: bytes) -> None:
    response = await scim.client.post(
        "/admin/tenants/acme/tokens",
        data=b'{"ttl_seconds": %s}' % ttl,
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    await scim_error(response, 400, "invalidValue")


async def test_token_ttl_at_the_bound_is_issued(scim: Scim) -> None:
    response = await scim.client.post(
        "/admin/tenants/acme/tokens", json={"ttl_seconds": MAX_TOKEN_TTL_SECONDS}, headers=ADMIN
    )
    assert response.status == 201, await response.text()
