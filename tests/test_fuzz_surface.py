"""Generated hostile input over the whole request surface: no input ever gets a 5xx.

Each test sends a few hundred generated requests to one surface of a live server on the
real database: headers (credentials, preconditions, media types), list query strings,
JSON and non-JSON bodies for every SCIM write and search, Bulk, the admin API, and the
browser routes under ``/sso/{tenant}``. A SCIM or admin error must be an RFC 7644 §3.12
``application/scim+json`` document; a browser route may answer its generic page.

The server, its tenant and its resources are shared by all of a test's examples (hence
the suppressed ``function_scoped_fixture`` health check): the property holds whatever
state earlier examples left behind.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from scim_server.core.sso.sessions import cookie_name
from tests.support.raw_http import raw_request
from tests.support.scim import ADMIN, Scim
from tests.support.urns import BULK_REQUEST as BULK
from tests.support.urns import ENTERPRISE, ERROR, PATCH_OP, SEARCH, USER

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- strategies ---------------------------------------------------------------------------

HEADER_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=80
).filter(lambda text: text == text.strip())
"""What an HTTP client lets one put in a header value."""

TRICKY = st.sampled_from(
    [
        "",
        " ",
        "\\ud800",
        "\\udfff",
        "a\\udc80b",
        "\\ud83d\\ude00",
        "\\u0000",
        "\x00",
        "$where",
        "a.b",
        "$gt",
        '"',
        "\\",
        "*",
        "W/",
        '"1"',
        "null",
        "true",
        "-1",
        "0",
        "1e400",
        "99999999999999999999999",
        "9223372036854775808",
        "-9223372036854775809",
        "NaN",
        "é",
        "\U0001f600",
        "\ufffd",
        "%00",
        "%ff",
        "../",
        "<script>",
        "x" * 300,
    ]
)
"""Values known to break parsers, encoders and databases, mixed into generated text."""

WORDS = st.one_of(TRICKY, st.text(max_size=30))

ATTRIBUTES = st.sampled_from(
    [
        "userName",
        "externalId",
        "displayName",
        "title",
        "active",
        "id",
        "meta.created",
        "meta.lastModified",
        "meta.resourceType",
        "meta.version",
        "name.familyName",
        "emails",
        "emails.value",
        "emails.type",
        "members",
        "members.value",
        "groups",
        "password",
        "x509Certificates.value",
        f"{ENTERPRISE}:employeeNumber",
        f"{ENTERPRISE}:manager.value",
        "nosuch",
        "",
    ]
)

OPERATORS = st.sampled_from(
    ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "EQ", "zz", ""]
)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    WORDS,
)

JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(ATTRIBUTES, WORDS), inner, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def filters(draw: st.DrawFn) -> str:
    """Filters near the grammar: comparisons, presence, value paths and logic, with hostile
    values (JSON escapes included) quoted, unquoted or malformed."""
    value = draw(
        st.one_of(
            TRICKY.map(lambda word: '"' + word.replace('"', "") + '"'),
            WORDS.map(lambda word: '"' + word.replace('"', "") + '"'),
            WORDS.map(lambda word: word.replace(" ", "")),
            st.sampled_from(["true", "false", "null", "42", "-1.5e3", '"2011-05-13T04:42:34Z"']),
        )
    )
    term = f"{draw(ATTRIBUTES)} {draw(OPERATORS)} {value}".strip()
    shape = draw(st.integers(0, 5))
    if shape == 1:
        term = f"not ({term})"
    elif shape == 2:
        term = f"emails[{term}]"
    elif shape == 3:
        term = f"{term} and {draw(ATTRIBUTES)} pr"
    elif shape == 4:
        term = f"({term}) or {draw(WORDS)}"
    elif shape == 5:
        term = draw(WORDS)
    return term


INTEGERS = st.one_of(
    st.integers(min_value=-5, max_value=50),
    st.sampled_from([2**31 - 1, 2**31, 2**32, 2**40, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**23]),
    st.integers(min_value=2**31 - 3, max_value=2**80),
    st.integers(max_value=-(2**31)),
).map(str)

HOSTILE_PARAMETER = st.one_of(
    st.tuples(st.just("filter"), filters()),
    st.tuples(st.sampled_from(["startIndex", "count", "STARTINDEX"]), st.one_of(INTEGERS, WORDS)),
    st.tuples(
        st.sampled_from(["attributes", "excludedAttributes", "sortBy"]),
        st.one_of(ATTRIBUTES, WORDS),
    ),
    st.tuples(st.sampled_from(["cursor", "sortOrder", "x"]), WORDS),
)

VALID_PARAMETERS = st.fixed_dictionaries(
    {},
    optional={
        "filter": st.just("userName pr"),
        "sortBy": st.just("userName"),
        "sortOrder": st.sampled_from(["ascending", "descending"]),
        "count": st.integers(0, 5).map(str),
        "attributes": st.just("userName"),
    },
)

QUERY = st.builds(
    lambda valid, hostile: {**valid, hostile[0]: hostile[1]}, VALID_PARAMETERS, HOSTILE_PARAMETER
)
"""List parameters: one hostile, the others absent or valid, so that the hostile one is read."""


def _scim_user(data: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [USER], **data}


USER_BODIES = st.one_of(
    JSON,
    st.dictionaries(ATTRIBUTES, JSON, max_size=5).map(_scim_user),
    st.fixed_dictionaries(
        {"userName": WORDS},
        optional={
            "schemas": st.lists(st.one_of(st.just(USER), st.just(ENTERPRISE), WORDS), max_size=3),
            "emails": JSON,
            "name": JSON,
            "active": SCALARS,
            ENTERPRISE: JSON,
            "password": SCALARS,
            "meta": JSON,
            "id": SCALARS,
        },
    ).map(_scim_user),
)


def _operations(
    schema: str, operation: st.SearchStrategy[dict[str, Any]], **optional: st.SearchStrategy[Any]
) -> st.SearchStrategy[Any]:
    """Any JSON, or a message of ``schema`` carrying a few ``Operations``."""
    message = st.fixed_dictionaries(
        {"schemas": st.just([schema]), "Operations": st.lists(operation, max_size=4)},
        optional=optional,
    )
    return st.one_of(JSON, message)


PATCH_BODIES = _operations(
    PATCH_OP,
    st.fixed_dictionaries(
        {"op": st.one_of(st.sampled_from(["add", "replace", "remove", "Add"]), WORDS)},
        optional={"path": st.one_of(ATTRIBUTES, filters()), "value": JSON},
    ),
)

SEARCH_BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"schemas": st.just([SEARCH])},
        optional={
            "filter": st.one_of(filters(), SCALARS),
            "startIndex": st.one_of(INTEGERS.map(int), SCALARS),
            "count": st.one_of(INTEGERS.map(int), SCALARS),
            "cursor": SCALARS,
            "sortBy": st.one_of(ATTRIBUTES, SCALARS),
            "sortOrder": SCALARS,
            "attributes": st.one_of(st.lists(ATTRIBUTES, max_size=3), SCALARS),
            "excludedAttributes": st.one_of(st.lists(ATTRIBUTES, max_size=3), SCALARS),
        },
    ),
)

BULK_BODIES = _operations(
    BULK,
    st.fixed_dictionaries(
        {
            "method": st.one_of(st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]), SCALARS),
            "path": st.one_of(
                st.sampled_from(["/Users", "/Groups", "/Users/bulkId:a", "/Bulk"]), SCALARS
            ),
        },
        optional={"bulkId": SCALARS, "data": USER_BODIES, "version": SCALARS},
    ),
    failOnErrors=SCALARS,
)

RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    JSON.map(lambda value: json.dumps(value).encode()),
    st.sampled_from(
        [
            b'{"userName": "\\ud800"}',
            b'{"userName": "a\\u0000b"}',
            b'{"schemas": ["%s"], "userName": "x", "\\u0000": 1}' % USER.encode(),
            b'{"schemas": ["%s"], "userName": "x", "$set": 1}' % USER.encode(),
            b'{"schemas": ["%s"], "userName": "x", "a.b": 1}' % USER.encode(),
            b'{"count": 1e400}',
            b'{"startIndex": 99999999999999999999999}',
            b"[" * 5000,
            b'{"a":' * 5000,
        ]
    ),
)

CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "application/scim+json",
            "application/json",
            "application/json; charset=latin-1",
            "application/scim+json; charset=utf-16",
            "text/plain",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
            ";",
            "application/",
        ]
    ),
    HEADER_TEXT,
)

SEGMENTS = st.one_of(WORDS, st.sampled_from(["acme", ".search", "%2F", "bulkId:x"])).map(
    lambda segment: quote(segment, safe="") or "x"
)
"""Path segments (ids, tenant names, fingerprints), percent-encoded as a client would."""

# --- checks -------------------------------------------------------------------------------


async def _answered(response: Any, *, scim_errors: bool = True) -> None:
    """No 5xx; on the SCIM and admin routes a 4xx is an RFC 7644 §3.12 document."""
    text = await response.text()
    assert response.status < 500, f"{response.method} {response.url}: {response.status} {text}"
    if scim_errors and response.status >= 400:
        assert response.content_type == "application/scim+json", text
        body = json.loads(text)
        assert body["schemas"] == [ERROR], text
        assert body["status"] == str(response.status), text


@pytest.fixture
async def resources(scim: Scim) -> dict[str, str]:
    """A user and a group to aim reads, writes and preconditions at."""
    user = await scim.create_user("target", emails=[{"value": "t@example.com", "type": "work"}])
    group = await scim.create_group("team", members=[user["id"]])
    return {"user": user["id"], "group": group["id"]}


def _url(scim: Scim, path: str, query: dict[str, str] | None = None) -> URL:
    encoded = f"{scim.base}{path}"
    if query:
        encoded += "?" + urlencode(query)
    return URL(encoded, encoded=True)


# --- headers ------------------------------------------------------------------------------


@FUZZ
@given(
    authorization=st.one_of(HEADER_TEXT, HEADER_TEXT.map(lambda text: f"Bearer {text}")),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
)
async def test_any_authorization_header_is_answered(
    scim: Scim, resources: dict[str, str], authorization: str, method: str
) -> None:
    for path in (f"/Users/{resources['user']}", "/Users", "/Groups/.search"):
        if method == "DELETE" and not path.startswith("/Users/"):
            continue
        response = await scim.client.request(
            method, _url(scim, path), headers={"Authorization": authorization}
        )
        await _answered(response)
    response = await scim.client.get("/admin/tenants", headers={"Authorization": authorization})
    await _answered(response)


USER_WRITES = st.sampled_from(
    [
        ("GET", "/Users/{user}", None),
        ("PUT", "/Users/{user}", json.dumps({"schemas": [USER], "userName": "target"})),
        (
            "PATCH",
            "/Users/{user}",
            json.dumps(
                {
                    "schemas": [PATCH_OP],
                    "Operations": [{"op": "replace", "path": "title", "value": "x"}],
                }
            ),
        ),
        ("DELETE", "/Groups/{group}", None),
        ("POST", "/Users/.search", "{}"),
        ("POST", "/Users", json.dumps({"schemas": [USER], "userName": "other"})),
    ]
)


@FUZZ
@given(
    request=USER_WRITES,
    if_match=st.one_of(HEADER_TEXT, TRICKY.filter(str.isprintable)),
    if_none_match=st.one_of(HEADER_TEXT, TRICKY.filter(str.isprintable)),
    content_type=CONTENT_TYPES,
    accept=HEADER_TEXT,
)
async def test_any_precondition_and_media_type_headers_are_answered(
    scim: Scim,
    resources: dict[str, str],
    request: tuple[str, str, str | None],
    if_match: str,
    if_none_match: str,
    content_type: str,
    accept: str,
) -> None:
    method, path, data = request
    headers = {
        "If-Match": if_match,
        "If-None-Match": if_none_match,
        "Content-Type": content_type,
        "Accept": accept,
    }
    response = await scim.request(method, path.format(**resources), data=data, headers=headers)
    await _answered(response)


@settings(FUZZ, max_examples=80)
@given(
    target=st.sampled_from(
        [
            ("GET", "/scim/v2/acme/Groups/{group}"),
            ("DELETE", "/scim/v2/acme/Groups/{group}"),
            ("GET", "/sso/acme/"),
            ("GET", "/sso/acme/saml/login?test=x"),
        ]
    ),
    name=st.sampled_from(
        [b"Authorization", b"If-Match", b"Content-Type", b"User-Agent", b"Cookie", b"X"]
    ),
    value=st.binary(min_size=1, max_size=40).filter(
        lambda raw: b"\r" not in raw and b"\n" not in raw
    ),
)
async def test_header_bytes_that_are_not_utf8_are_answered(
    scim: Scim, resources: dict[str, str], target: tuple[str, str], name: bytes, value: bytes
) -> None:
    method, path = target
    if name == b"Cookie":
        value = cookie_name("acme").encode() + b"=" + value
    headers = [b"%s: %s" % (name, value)]
    if name != b"Authorization":
        headers.append(b"Authorization: Bearer " + scim.token.encode())
    request_line = b"%s %s HTTP/1.1" % (method.encode(), path.format(**resources).encode())
    answer = await raw_request(scim.client, request_line, *headers)
    assert answer.status < 500, answer
    if path.startswith("/scim") and answer.status >= 400 and b"text/plain" not in answer.head:
        assert b"application/scim+json" in answer.head, answer


# --- query strings ------------------------------------------------------------------------


@FUZZ
@given(query=QUERY, endpoint=st.sampled_from(["/Users", "/Groups"]))
async def test_any_list_query_is_answered(
    scim: Scim, resources: dict[str, str], query: dict[str, str], endpoint: str
) -> None:
    await _answered(await scim.client.get(_url(scim, endpoint, query), headers=scim.headers()))


@FUZZ
@given(
    query=QUERY,
    segment=SEGMENTS,
    path=st.sampled_from(
        ["/Users/{segment}", "/Groups/{segment}", "/Users/{user}", "/Schemas/{segment}"]
    ),
    method=st.sampled_from(["GET", "DELETE"]),
)
async def test_any_resource_path_and_query_is_answered(
    scim: Scim,
    resources: dict[str, str],
    query: dict[str, str],
    segment: str,
    path: str,
    method: str,
) -> None:
    url = _url(scim, path.format(segment=segment, **resources), query)
    await _answered(await scim.client.request(method, url, headers=scim.headers()))
    response = await scim.client.get(
        URL(f"/scim/v2/{segment}/Users", encoded=True), headers=scim.headers()
    )
    await _answered(response)


# --- bodies -------------------------------------------------------------------------------


@FUZZ
@given(
    target=st.sampled_from(
        [
            ("POST", "/Users", USER_BODIES),
            ("POST", "/Groups", USER_BODIES),
            ("PUT", "/Users/{user}", USER_BODIES),
            ("PUT", "/Groups/{group}", USER_BODIES),
            ("PATCH", "/Users/{user}", PATCH_BODIES),
            ("PATCH", "/Groups/{group}", PATCH_BODIES),
            ("POST", "/Users/.search", SEARCH_BODIES),
            ("POST", "/Groups/.search", SEARCH_BODIES),
            ("POST", "/.search", SEARCH_BODIES),
            ("POST", "/Bulk", BULK_BODIES),
        ]
    ),
    data=st.data(),
)
async def test_any_json_body_is_answered(
    scim: Scim,
    resources: dict[str, str],
    target: tuple[str, str, st.SearchStrategy[Any]],
    data: st.DataObject,
) -> None:
    method, path, bodies = target
    body = data.draw(bodies, label="body")
    await _answered(await scim.request(method, path.format(**resources), json=body))


@FUZZ
@given(
    raw=RAW_BODIES,
    target=st.sampled_from(
        [
            ("POST", "/Users"),
            ("PUT", "/Users/{user}"),
            ("PATCH", "/Users/{user}"),
            ("PATCH", "/Groups/{group}"),
            ("POST", "/.search"),
            ("POST", "/Bulk"),
        ]
    ),
    content_type=st.sampled_from(["application/scim+json", "application/json"]),
)
async def test_any_raw_body_is_answered(
    scim: Scim,
    resources: dict[str, str],
    raw: bytes,
    target: tuple[str, str],
    content_type: str,
) -> None:
    method, path = target
    response = await scim.request(
        method,
        path.format(**resources),
        data=raw,
        headers={"Content-Type": content_type},
    )
    await _answered(response)


# --- the admin API ------------------------------------------------------------------------


ADMIN_ROUTES = st.sampled_from(
    [
        ("POST", ""),
        ("POST", "/{segment}/tokens"),
        ("POST", "/acme/tokens"),
        ("DELETE", "/acme/tokens/{segment}"),
        ("DELETE", "/{segment}"),
        ("GET", "/{segment}/journal"),
        ("GET", "/acme/journal"),
        ("PUT", "/acme/seats"),
        ("GET", "/{segment}/seats"),
        ("PATCH", "/acme/sso"),
        ("PUT", "/{segment}/sso"),
        ("POST", "/acme/sso/certificates"),
        ("DELETE", "/acme/sso/certificates/{segment}"),
        ("POST", "/acme/sso/metadata"),
        ("GET", "/acme/sso/log"),
        ("POST", "/acme/sso/test"),
    ]
)


ADMIN_VALUES = st.one_of(INTEGERS.map(int), JSON)


def _admin_body(*keys: str) -> st.SearchStrategy[Any]:
    """Any JSON, or one of the keys a route reads with any value (alone, so that it is read)."""
    return st.one_of(
        JSON, st.sampled_from(keys).flatmap(lambda key: ADMIN_VALUES.map(lambda v: {key: v}))
    )


SSO_SETTINGS = _admin_body(
    "enabled",
    "preset",
    "idp",
    "name_id",
    "attributes",
    "jit",
    "allowed_groups",
    "require_signed_assertion",
    "enforced",
    "guest_user_type",
    "allow_idp_initiated",
    "clock_skew_seconds",
    "session_ttl_seconds",
)

ADMIN_ROUTES = st.sampled_from(
    [
        ("POST", "", _admin_body("name")),
        ("GET", "", JSON),
        ("POST", "/{segment}/tokens", _admin_body("ttl_seconds", "description")),
        ("POST", "/acme/tokens", _admin_body("ttl_seconds", "description")),
        ("POST", "/acme/tokens", _admin_body("ttl_seconds")),
        ("DELETE", "/acme/tokens/{segment}", JSON),
        ("DELETE", "/{segment}", JSON),
        ("GET", "/{segment}/journal", JSON),
        ("GET", "/acme/journal", JSON),
        ("PUT", "/acme/seats", _admin_body("seats")),
        ("GET", "/{segment}/seats", JSON),
        ("POST", "/acme/seats/recount", JSON),
        ("PATCH", "/acme/sso", SSO_SETTINGS),
        ("PUT", "/acme/sso", SSO_SETTINGS),
        ("PUT", "/{segment}/sso", SSO_SETTINGS),
        ("POST", "/acme/sso/certificates", _admin_body("pem")),
        ("DELETE", "/acme/sso/certificates/{segment}", JSON),
        ("POST", "/acme/sso/metadata", _admin_body("url")),
        ("GET", "/acme/sso/log", JSON),
        ("POST", "/acme/sso/test", _admin_body("url")),
        ("POST", "/acme/users/{segment}/password-reset", _admin_body("ttl_seconds")),
    ]
)
"""Every admin route, with the bodies it reads."""


@settings(FUZZ, max_examples=250)
@given(
    route=ADMIN_ROUTES,
    segment=SEGMENTS,
    data=st.data(),
    query=st.dictionaries(
        st.sampled_from(["limit", "since", "method", "status", "x"]),
        st.one_of(INTEGERS, WORDS),
        max_size=4,
    ),
)
async def test_any_admin_request_is_answered(
    scim: Scim,
    route: tuple[str, str, st.SearchStrategy[Any]],
    segment: str,
    data: st.DataObject,
    query: dict[str, str],
) -> None:
    method, path, bodies = route
    encoded = "/admin/tenants" + path.format(segment=segment)
    if query:
        encoded += "?" + urlencode(query)
    body = data.draw(bodies, label="body")
    response = await scim.client.request(
        method, URL(encoded, encoded=True), json=body, headers=ADMIN
    )
    await _answered(response)


# --- the browser routes -------------------------------------------------------------------


@FUZZ
@given(
    route=st.sampled_from(
        [
            ("GET", "/"),
            ("GET", "/saml/login"),
            ("GET", "/saml/metadata"),
            ("POST", "/saml/acs"),
            ("POST", "/password"),
            ("GET", "/password-reset"),
            ("POST", "/password-reset"),
            ("POST", "/logout"),
        ]
    ),
    tenant=st.one_of(st.just("acme"), SEGMENTS),
    relay_state=WORDS,
    form=st.dictionaries(
        st.sampled_from(
            ["SAMLResponse", "RelayState", "username", "password", "token", "confirm", "x"]
        ),
        st.one_of(WORDS, st.binary(max_size=60).map(lambda raw: raw.hex())),
        max_size=4,
    ),
    cookie=HEADER_TEXT.filter(lambda text: ";" not in text and "," not in text),
)
async def test_any_browser_request_is_answered(
    scim: Scim,
    route: tuple[str, str],
    tenant: str,
    relay_state: str,
    form: dict[str, str],
    cookie: str,
) -> None:
    method, path = route
    encoded = f"/sso/{tenant}{path}"
    if path == "/saml/login":
        encoded += "?" + urlencode({"RelayState": relay_state})
    response = await scim.client.request(
        method,
        URL(encoded, encoded=True),
        data=form if method == "POST" else None,
        cookies={cookie_name(tenant): cookie},
    )
    await _answered(response, scim_errors=False)


@FUZZ
@given(
    path=st.sampled_from(["/saml/acs", "/password", "/password-reset", "/logout"]),
    body=st.binary(max_size=120),
    content_type=st.one_of(
        st.sampled_from(
            [
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=latin-1",
                "application/x-www-form-urlencoded; charset=nope",
                "multipart/form-data; boundary=zz",
                "multipart/form-data",
            ]
        ),
        CONTENT_TYPES,
    ),
)
async def test_any_browser_form_body_is_answered(
    scim: Scim, path: str, body: bytes, content_type: str
) -> None:
    response = await scim.client.post(
        f"/sso/acme{path}", data=body, headers={"Content-Type": content_type}
    )
    await _answered(response, scim_errors=False)
