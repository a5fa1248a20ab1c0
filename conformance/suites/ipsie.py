"""The ``ipsie`` suite: every SP-side testable item of the OpenID IPSIE AL SCIM 2.0 profile.

One check per item of draft 00 (AL1 and AL2; AL3 defines nothing yet), in the order of the
draft, each naming its section. Every check counts towards the ``IPSIE AL2`` verdict (AL2
extends AL1) and the items of §4, §5 and §8 towards ``IPSIE AL1`` as well; the reports print
one verdict line per profile. Items the runner cannot test yet (OAuth client credentials, token
lifetimes, audit logs) are registered all the same and skip, saying why, so a verdict always
counts every item of the profile.

Two items are judged with bounds a run can afford: the rate limit by a burst of at most
``BURST_LIMIT`` requests sent ``BURST_WAVE`` at a time, and the 25 requests per second by
``SUSTAINED_SECONDS`` seconds of paced requests started right after the burst's limit was
reached and its ``Retry-After`` waited out, so a limiter's burst allowance cannot hide a
slower steady rate. Deactivation ending sign-in and sessions is driven through the ``saml``
suite's IdP, and skips without it.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urljoin

from conformance.browser import BROWSER_ACCEPT
from conformance.checks import (
    CheckFailed,
    Context,
    check,
    expect_object,
    expect_status,
    fail,
    require,
    resources_of,
    skip,
)
from conformance.http import Exchange, Response
from conformance.suites import saml
from conformance.suites.rfc import ids, patch, query, read, require_error_document
from conformance.urns import BULK_REQUEST, GROUP, PATCH_OP, USER

SUITE = "ipsie"
DRAFT = "OpenID IPSIE AL SCIM 2.0 Profile draft 00"
AL1 = "IPSIE AL1"
AL2 = "IPSIE AL2"
BOTH = (AL1, AL2)
AL2_ONLY = (AL2,)

BURST_WAVE = 100
"""Requests sent at once while looking for the rate limit."""
BURST_LIMIT = 1000
"""The most requests a burst sends before concluding the server has no limit."""
RETRY_AFTER_CAP = 10
"""The longest ``Retry-After`` the run waits out, in seconds."""
SUSTAINED_RATE = 25
"""Requests per second a tenant must be served (§4.3)."""
SUSTAINED_SECONDS = 3
MEMBER_OPERATIONS = 50
"""Single-member add operations in one PATCH (§6.2.6 asks for at least 50)."""

PAGE_MAXIMUM = 1000
LEAK_MARKERS = re.compile(
    r"Traceback|File \"|\.py\b|pymongo|bson|mongodb://|E11000|errmsg|"
    r"at [a-z]+\.[A-Za-z.]+\(|NullPointer|SQLSTATE|stack ?trace",
    re.IGNORECASE,
)
"""What an error body shows when it leaks the implementation: a traceback, source files, the
database's own error codes and messages, a Java or SQL failure."""


def section(number: str) -> str:
    return f"{DRAFT} §{number}"


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def replace(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


async def feature(context: Context, name: str) -> dict[str, Any]:
    """A feature of ``/ServiceProviderConfig``, asked again so the evidence is in the check's
    own transcript (``{}`` when absent)."""
    value = (await read(context, "/ServiceProviderConfig")).get(name)
    return value if isinstance(value, dict) else {}


async def user_with_external_id(context: Context) -> dict[str, Any]:
    return await context.fixtures.user(externalId=context.fixtures.name("ext"))


# --- §4.1: OAuth, and the other items the runner cannot test yet --------------------------


@dataclass(frozen=True)
class Pending:
    """An item of the profile the runner has no means to test yet: it skips with ``reason``."""

    id: str
    title: str
    source: str
    rule: str
    reason: str
    profiles: tuple[str, ...] = BOTH

    async def run(self, context: Context) -> None:
        skip(self.reason)


NO_OAUTH = (
    "the runner has no OAuth 2.0 client yet (client_credentials with RFC 7523 JWT client "
    "authentication): it authenticates with the bearer token it is given"
)
PENDING_OAUTH = (
    Pending(
        "ipsie.oauth-client-credentials",
        "SCIM requests are authorised by OAuth 2.0 client credentials",
        section("4.1"),
        "OAuth 2.0 interactions MUST use the client_credentials grant type with JWT Client "
        "Authentication (RFC 7523 §2.2), the client authenticating with HTTP Basic.",
        NO_OAUTH,
    ),
    Pending(
        "ipsie.oauth-scim-scope",
        "The access token carries the scim scope and nothing broader",
        section("4.1"),
        'The Access Token MUST include the "scim" scope and not grant broader permissions.',
        NO_OAUTH,
    ),
    Pending(
        "ipsie.oauth-server-metadata",
        "The Application publishes RFC 8414 metadata with a token_endpoint",
        section("4.1"),
        "The Application MUST expose OAuth Authorization Server metadata (RFC 8414) that "
        'includes a "token_endpoint".',
        NO_OAUTH,
    ),
)
for pending in PENDING_OAUTH:
    check(SUITE, pending.id, pending.title, pending.source, pending.rule, pending.profiles)(
        pending.run
    )


# --- §4.3: performance and efficiency -----------------------------------------------------


async def exhaust(context: Context) -> tuple[Response | None, int, float]:
    """Send ``GET /Users?count=1`` ``BURST_WAVE`` at a time until one is answered 429, at most
    ``BURST_LIMIT`` requests; answer that 429 (None if none came), how many were sent, and at
    what rate (requests a second).

    Only the first request and the first 429 go into the check's transcript: a thousand
    identical exchanges would bury them.
    """
    scratch: list[Exchange] = []
    http = context.http.bound_to(scratch)
    started = time.perf_counter()
    sent = 0
    limited: Response | None = None
    while sent < BURST_LIMIT and limited is None:
        wave = await asyncio.gather(
            *(http.get("/Users", params={"count": "1"}, retry=False) for _ in range(BURST_WAVE))
        )
        sent += len(wave)
        limited = next((response for response in wave if response.status == 429), None)
    shown = scratch[:1] + [e for e in scratch[1:] if e.status == 429][:1]
    context.http.transcript.extend(shown)
    return limited, sent, sent / (time.perf_counter() - started)


def retry_after_seconds(response: Response) -> float | None:
    """``Retry-After`` as seconds (delay-seconds or an HTTP-date, RFC 9110 §10.2.3); None when
    absent or neither."""
    value = (response.header("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


async def wait_out(context: Context, limited: Response) -> float:
    """Wait the 429's ``Retry-After`` (at most ``RETRY_AFTER_CAP``); fail without a usable one."""
    seconds = retry_after_seconds(limited)
    if seconds is None:
        fail(f"a 429 must say when to retry: Retry-After is {limited.header('Retry-After')!r}")
    waited = min(seconds, RETRY_AFTER_CAP)
    await asyncio.sleep(waited)
    return waited


@check(
    SUITE,
    "ipsie.rate-limit-burst",
    "A burst is answered 429 with Retry-After, and served again after it",
    section("4.3") + "; §8 (Rate Limiting); RFC 6585 §4",
    f"The Application MUST enforce rate limits on all SCIM endpoints and respond 429 Too Many "
    f"Requests with Retry-After when they are exceeded. Sent {BURST_WAVE} at a time, at most "
    f"{BURST_LIMIT} GET /Users must meet a 429 that is an RFC 7644 §3.12 error with a "
    f"Retry-After; once it is waited out (up to {RETRY_AFTER_CAP} s) a request is served.",
    BOTH,
)
async def rate_limit_burst(context: Context) -> None:
    limited, sent, rate = await exhaust(context)
    if limited is None:
        fail(
            f"no 429 in {sent} requests sent {BURST_WAVE} at a time, {rate:.0f} a second: no "
            f"limit, or one this runner cannot reach from here"
        )
    require_error_document(limited, 429)
    waited = await wait_out(context, limited)
    if waited < RETRY_AFTER_CAP:
        again = await context.http.get("/Users", params={"count": "1"}, retry=False)
        require(
            again.status == 200,
            f"after waiting Retry-After ({waited:g} s) the request was answered "
            f"HTTP {again.status}, not served",
        )


@check(
    SUITE,
    "ipsie.sustained-rate",
    f"{SUSTAINED_RATE} requests per second are served, right after the limit was reached",
    section("4.3"),
    f"The Application MUST support at least {SUSTAINED_RATE} SCIM requests per second, per "
    f"tenant. The run first reaches the limit (as ipsie.rate-limit-burst) and waits out its "
    f"Retry-After, so no burst allowance is left to hide a slower rate, then sends "
    f"{SUSTAINED_RATE * SUSTAINED_SECONDS} GET /Users/{{id}} paced at {SUSTAINED_RATE} per "
    f"second: none may be refused (429) or fail.",
    BOTH,
)
async def sustained_rate(context: Context) -> None:
    user = await context.fixtures.user()
    limited, _, _ = await exhaust(context)
    if limited is not None:
        await wait_out(context, limited)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def paced(index: int) -> Response:
        await asyncio.sleep(max(0.0, started + index / SUSTAINED_RATE - loop.time()))
        return await context.http.get(f"/Users/{user['id']}", retry=False)

    total = SUSTAINED_RATE * SUSTAINED_SECONDS
    answers = await asyncio.gather(*(paced(index) for index in range(total)))
    refused = [answer.status for answer in answers if answer.status != 200]
    require(
        not refused,
        f"{len(refused)} of {total} requests paced at {SUSTAINED_RATE}/s were not served "
        f"(statuses {sorted(set(refused))})",
    )


@check(
    SUITE,
    "ipsie.bulk",
    "/Bulk is supported",
    section("4.3") + "; RFC 7644 §3.7",
    "The Application MUST support the SCIM /Bulk endpoint: ServiceProviderConfig advertises "
    "bulk.supported, and a Bulk request creating one user answers that operation 201.",
    BOTH,
)
async def bulk(context: Context) -> None:
    require(
        (await feature(context, "bulk")).get("supported") is True,
        "ServiceProviderConfig does not advertise bulk.supported: true",
    )
    body = context.fixtures.user_body()
    response = await context.http.post(
        "/Bulk",
        {
            "schemas": [BULK_REQUEST],
            "Operations": [{"method": "POST", "path": "/Users", "bulkId": "u", "data": body}],
        },
    )
    expect_status(response, 200, what="POST /Bulk")
    operations = expect_object(response, "bulk response").get("Operations") or []
    require(len(operations) == 1, f"one operation sent, {len(operations)} answered")
    result = operations[0]
    location = str(result.get("location") or "")
    if location:
        context.fixtures.track("/Users", {"id": location.rstrip("/").rsplit("/", 1)[-1]})
    require(str(result.get("status")) == "201", f"the Bulk POST was answered {result}")


@check(
    SUITE,
    "ipsie.patch-several-attributes",
    "One PATCH updates several attributes",
    section("4.3"),
    "The Application MUST support PATCH requests that update multiple attributes within a "
    "single request: displayName, title and name.givenName replaced by one PATCH all change.",
    BOTH,
)
async def patch_several_attributes(context: Context) -> None:
    user = await context.fixtures.user()
    location = f"/Users/{user['id']}"
    wanted = {"displayName": "Several Changed", "title": "Auditor", "name.givenName": "Several"}
    await patch(context, location, *(replace(path, value) for path, value in wanted.items()))
    stored = await read(context, location)
    found = {
        "displayName": stored.get("displayName"),
        "title": stored.get("title"),
        "name.givenName": (stored.get("name") or {}).get("givenName"),
    }
    require(found == wanted, f"after one PATCH of three attributes the user holds {found}")


# --- §5: AL1, user deprovisioning ---------------------------------------------------------


async def set_active(context: Context, location: str, active: bool) -> dict[str, Any]:
    await patch(context, location, replace("active", active))
    return await read(context, location)


@check(
    SUITE,
    "ipsie.deactivate",
    "PATCH active false deactivates a user",
    section("5.1"),
    "Deactivation is performed by PATCH /Users/{id}: afterwards the user reads active: false.",
    BOTH,
)
async def deactivate(context: Context) -> None:
    user = await context.fixtures.user()
    stored = await set_active(context, f"/Users/{user['id']}", False)
    require(
        stored.get("active") is False, f"after PATCH active false: active {stored.get('active')!r}"
    )


@check(
    SUITE,
    "ipsie.reactivate",
    "A deactivated user can be reactivated",
    section("5.1"),
    "The Application MUST allow reactivation of a deactivated user, by PATCH /Users/{id}: "
    "active false, then active true, and the user reads active: true.",
    BOTH,
)
async def reactivate(context: Context) -> None:
    user = await context.fixtures.user()
    location = f"/Users/{user['id']}"
    await set_active(context, location, False)
    stored = await set_active(context, location, True)
    require(stored.get("active") is True, f"after reactivation: active {stored.get('active')!r}")


def session_cookie(response: Response) -> str:
    """The ``Cookie`` header a browser would send back after ``response``."""
    jar: SimpleCookie = SimpleCookie()
    for header in response.set_cookies:
        jar.load(header)
    return "; ".join(f"{name}={morsel.value}" for name, morsel in jar.items() if morsel.value)


async def landing_page(context: Context, url: str, cookie: str) -> Response:
    return await context.http.request(
        "GET", url, auth=False, headers={"Cookie": cookie, "Accept": BROWSER_ACCEPT}
    )


@check(
    SUITE,
    "ipsie.deactivation-ends-sign-in",
    "Deactivation ends the user's sign-in and session",
    section("5.1"),
    "When a user account is deactivated, all access mechanisms associated with it MUST also "
    "be deactivated, web sessions included. Driven through the saml suite's IdP: a new person "
    "signs in, SCIM deactivates them, and a new genuine response for them is refused (judged "
    "on the HTTP status); the page the sign-in landed on, which named them, no longer does "
    "with the same cookie. Skips without a SAML SP and SCIM access to it.",
    BOTH,
)
async def deactivation_ends_sign_in(context: Context) -> None:
    target = saml.target(context)
    if not saml.scim_available(context):
        skip("no SCIM access to deactivate the user: run with --base-url and --token")
    person = saml.fresh_person(context, "ipsie-leaver")
    signed_in = await saml.post(context, target, saml.genuine(target, person))
    require(
        saml.accepted(signed_in),
        f"the SP refused a new person's genuine response: {saml.outcome(signed_in)}",
    )
    found = await saml.users_named(context, person.email)
    for user in found:
        context.fixtures.track("/Users", user)
    require(len(found) == 1, f"SCIM finds {len(found)} users {person.email}, expected 1")
    landing = urljoin(target.acs_url, signed_in.header("Location") or "")
    cookie = session_cookie(signed_in)
    before = await landing_page(context, landing, cookie)
    await set_active(context, f"/Users/{found[0]['id']}", False)
    again = await saml.post(context, target, saml.genuine(target, person))
    require(
        not saml.accepted(again),
        f"the SP signed in {person.email} after SCIM deactivated them: {saml.outcome(again)}",
    )
    if not cookie or person.email not in before.text:
        skip(
            f"sign-in is refused, but the session cannot be observed: the page the sign-in "
            f"landed on ({landing}) does not name {person.email}"
        )
    after = await landing_page(context, landing, cookie)
    require(
        person.email not in after.text,
        f"the session of {person.email} outlived their deactivation: {landing} still names "
        f"them with the session cookie (HTTP {after.status})",
    )


@check(
    SUITE,
    "ipsie.recreate-after-delete",
    "A deleted user's userName can be used again",
    section("5.2"),
    "After a user is deleted, the Application MUST allow the creation of a new user with the "
    "same username: DELETE answers 204, the same POST then 201 with another id.",
    BOTH,
)
async def recreate_after_delete(context: Context) -> None:
    first = await context.fixtures.user()
    deleted = await context.http.delete(f"/Users/{first['id']}")
    expect_status(deleted, 204, what="DELETE /Users/{id}")
    again = await context.http.post("/Users", context.fixtures.user_body(first["userName"]))
    context.fixtures.track("/Users", again.json())
    expect_status(again, 201, what="POST of the deleted user's userName")
    recreated = expect_object(again, "recreated user")
    require(recreated.get("id") != first["id"], "the recreated user has the deleted user's id")


@dataclass(frozen=True)
class ByIdCheck:
    """GET ``{endpoint}/{id}`` of a resource the check creates answers that resource."""

    id: str
    endpoint: str
    create: Callable[[Context], Awaitable[dict[str, Any]]]
    name_attribute: str

    async def run(self, context: Context) -> None:
        created = await self.create(context)
        stored = await read(context, f"{self.endpoint}/{created['id']}")
        require(
            (stored.get("id"), stored.get(self.name_attribute))
            == (created["id"], created[self.name_attribute]),
            f"GET {self.endpoint}/{{id}} answered id {stored.get('id')!r}, "
            f"{self.name_attribute} {stored.get(self.name_attribute)!r}",
        )


async def new_user(context: Context) -> dict[str, Any]:
    return await context.fixtures.user()


async def new_group(context: Context) -> dict[str, Any]:
    return await context.fixtures.group()


GET_USER = ByIdCheck("ipsie.get-user", "/Users", new_user, "userName")
check(
    SUITE,
    GET_USER.id,
    "GET /Users/{id} answers the user",
    section("5.3"),
    "The Application MUST support retrieving a single user by ID via GET /Users/{id}.",
    BOTH,
)(GET_USER.run)


@dataclass(frozen=True)
class FilterCheck:
    """A filter the profile requires finds exactly the resource it names."""

    id: str
    title: str
    section: str
    endpoint: str
    build: Callable[[Context], Awaitable[tuple[dict[str, Any], str]]]
    """Create what the filter must find; answer it and the filter."""
    profiles: tuple[str, ...]

    async def run(self, context: Context) -> None:
        wanted, expression = await self.build(context)
        _, found = await query(context, self.endpoint, expression)
        require(
            ids(found) == [wanted["id"]],
            f"filter {expression} found {ids(found)}, not [{wanted['id']!r}]",
        )


def work_email(user: dict[str, Any]) -> str:
    return str(user["emails"][0]["value"])


async def by_user_name(context: Context) -> tuple[dict[str, Any], str]:
    user = await context.fixtures.user()
    return user, f'userName eq "{user["userName"]}"'


async def by_user_external_id(context: Context) -> tuple[dict[str, Any], str]:
    user = await user_with_external_id(context)
    return user, f'externalId eq "{user["externalId"]}"'


async def by_email(context: Context) -> tuple[dict[str, Any], str]:
    user = await context.fixtures.user()
    return user, f'emails[value eq "{work_email(user)}"]'


async def by_work_email(context: Context) -> tuple[dict[str, Any], str]:
    user = await context.fixtures.user()
    return user, f'emails[type eq "work" and value eq "{work_email(user)}"]'


async def by_display_name(context: Context) -> tuple[dict[str, Any], str]:
    group = await context.fixtures.group()
    return group, f'displayName eq "{group["displayName"]}"'


async def by_group_external_id(context: Context) -> tuple[dict[str, Any], str]:
    group = await context.fixtures.group(externalId=context.fixtures.name("gext"))
    return group, f'externalId eq "{group["externalId"]}"'


async def by_member(context: Context) -> tuple[dict[str, Any], str]:
    user = await context.fixtures.user()
    await context.fixtures.group()
    group = await context.fixtures.group(members=[user["id"]])
    return group, f'members[value eq "{user["id"]}"]'


USER_FILTERS = (
    FilterCheck("ipsie.filter.user-username", "userName eq", "5.4", "/Users", by_user_name, BOTH),
    FilterCheck(
        "ipsie.filter.user-externalid", "externalId eq", "5.4", "/Users", by_user_external_id, BOTH
    ),
    FilterCheck("ipsie.filter.user-email", "emails[value eq]", "5.4", "/Users", by_email, BOTH),
    FilterCheck(
        "ipsie.filter.user-work-email",
        'emails[type eq "work" and value eq]',
        "5.4",
        "/Users",
        by_work_email,
        BOTH,
    ),
)
GROUP_FILTERS = (
    FilterCheck(
        "ipsie.filter.group-displayname",
        "displayName eq",
        "6.2.5",
        "/Groups",
        by_display_name,
        AL2_ONLY,
    ),
    FilterCheck(
        "ipsie.filter.group-externalid",
        "externalId eq",
        "6.2.5",
        "/Groups",
        by_group_external_id,
        AL2_ONLY,
    ),
    FilterCheck(
        "ipsie.filter.group-members", "members[value eq]", "6.2.5", "/Groups", by_member, AL2_ONLY
    ),
)


def register_filters(filters: tuple[FilterCheck, ...]) -> None:
    for item in filters:
        check(
            SUITE,
            item.id,
            f"{item.endpoint} filter {item.title} finds the one resource",
            section(item.section),
            f"The Application MUST support the filter expression {item.title} on "
            f"{item.endpoint}: it finds the resource it names, and only that one.",
            item.profiles,
        )(item.run)


register_filters(USER_FILTERS)


# --- §6.1: AL2, user provisioning ---------------------------------------------------------


async def schema_attributes(context: Context, urn: str) -> set[str]:
    """The top-level attribute names ``/Schemas/{urn}`` declares."""
    schema = await read(context, f"/Schemas/{urn}")
    return {
        str(attribute.get("name"))
        for attribute in schema.get("attributes") or []
        if isinstance(attribute, dict)
    }


async def require_schema(
    context: Context, urn: str, required: tuple[str, ...], location: str, created: dict[str, Any]
) -> None:
    """``urn`` declares ``required``, and ``created`` (made with an externalId, read back at
    ``location``) kept its externalId."""
    declared = await schema_attributes(context, urn)
    missing = [name for name in required if name not in declared]
    require(not missing, f"/Schemas/{urn} does not declare {missing}")
    stored = await read(context, f"{location}/{created['id']}")
    require(
        stored.get("externalId") == created.get("externalId") is not None,
        f"externalId is not kept: sent {created.get('externalId')!r}, "
        f"read {stored.get('externalId')!r}",
    )


@check(
    SUITE,
    "ipsie.user-schema",
    "The User schema has userName, displayName and active; externalId is kept",
    section("6.1.1"),
    "The Application MUST include userName, displayName and active in the User schema, and "
    "support externalId: /Schemas declares them, and a user created with an externalId keeps it.",
    AL2_ONLY,
)
async def user_schema(context: Context) -> None:
    user = await user_with_external_id(context)
    await require_schema(context, USER, ("userName", "displayName", "active"), "/Users", user)


PASSWORD_TOLERATED = (
    "IPSIE AL2 forbids it, but Okta's OIN integrations send a placeholder password with every "
    "create, so this item is reported, not enforced (docs/conformance.md)"
)


@check(
    SUITE,
    "ipsie.no-password",
    "The password attribute is not supported",
    section("6.1.2"),
    'The Application MUST NOT support the "password" attribute. A server that declares it '
    "(/Schemas or changePassword.supported) skips, saying so; one that does not must refuse a "
    "create carrying a password with a 400.",
    AL2_ONLY,
)
async def no_password(context: Context) -> None:
    declared = "password" in await schema_attributes(context, USER)
    if declared or (await feature(context, "changePassword")).get("supported") is True:
        skip(f"the server supports password: {PASSWORD_TOLERATED}")
    response = await context.http.post(
        "/Users", context.fixtures.user_body(password="Placeholder-1234")
    )
    context.fixtures.track("/Users", response.json())
    require(
        response.status == 400,
        f"a create carrying a password the server does not declare was answered "
        f"HTTP {response.status}, not refused",
    )


@check(
    SUITE,
    "ipsie.create-user",
    "POST /Users creates a user",
    section("6.1.3"),
    "The Application MUST support user creation via POST /Users: 201 with the user's id.",
    AL2_ONLY,
)
async def create_user(context: Context) -> None:
    body = context.fixtures.user_body()
    response = await context.http.post("/Users", body)
    context.fixtures.track("/Users", response.json())
    expect_status(response, 201, what="POST /Users")
    created = expect_object(response, "created user")
    require(
        isinstance(created.get("id"), str) and created.get("userName") == body["userName"],
        f"the created user lacks its id or userName: {created}",
    )


@check(
    SUITE,
    "ipsie.patch-user",
    "PATCH /Users/{id} updates a user",
    section("6.1.4"),
    "The Application MUST support updating a user's attribute values via PATCH /Users/{id}.",
    AL2_ONLY,
)
async def patch_user(context: Context) -> None:
    user = await context.fixtures.user()
    location = f"/Users/{user['id']}"
    await patch(context, location, replace("displayName", "Patched Person"))
    stored = await read(context, location)
    require(
        stored.get("displayName") == "Patched Person",
        f"after PATCH displayName reads {stored.get('displayName')!r}",
    )


@check(
    SUITE,
    "ipsie.list-users-page-size",
    f"GET /Users answers at most {PAGE_MAXIMUM:,} users a page",
    section("6.1.5"),
    f"The Application MUST support GET /Users and SHOULD avoid returning more than "
    f"{PAGE_MAXIMUM:,} users per page: filter.maxResults and pagination.maxPageSize (when "
    f"advertised) are at most {PAGE_MAXIMUM:,}, and count={PAGE_MAXIMUM + 1} is answered a "
    f"page of at most {PAGE_MAXIMUM:,}.",
    AL2_ONLY,
)
async def list_users_page_size(context: Context) -> None:
    for name, key in (("filter", "maxResults"), ("pagination", "maxPageSize")):
        advertised = (await feature(context, name)).get(key)
        require(
            not isinstance(advertised, int) or advertised <= PAGE_MAXIMUM,
            f"ServiceProviderConfig {name}.{key} is {advertised}",
        )
    await context.fixtures.user()
    response = await context.http.get(
        "/Users", params={"count": str(PAGE_MAXIMUM + 1), "attributes": "userName"}
    )
    expect_status(response, 200, what="GET /Users")
    page = len(resources_of(response))
    per_page = expect_object(response).get("itemsPerPage", page)
    require(
        page <= PAGE_MAXIMUM and isinstance(per_page, int) and per_page <= PAGE_MAXIMUM,
        f"a page of {page} users (itemsPerPage {per_page!r})",
    )
    require(page >= 1, "GET /Users answered no user although the run created one")


# --- §6.2: AL2, groups --------------------------------------------------------------------


@check(
    SUITE,
    "ipsie.group-schema",
    "The Group schema has displayName and members; externalId is kept",
    section("6.2.1"),
    "The Application MUST include displayName and members in the Group schema and support "
    "externalId: /Schemas declares them, and a group created with an externalId keeps it.",
    AL2_ONLY,
)
async def group_schema(context: Context) -> None:
    group = await context.fixtures.group(externalId=context.fixtures.name("gext"))
    await require_schema(context, GROUP, ("displayName", "members"), "/Groups", group)


@check(
    SUITE,
    "ipsie.group-unique-name",
    "A second group with the same displayName is refused",
    section("6.2.1") + "; RFC 7644 §3.3 (409 uniqueness)",
    "The Application SHOULD NOT allow multiple groups with the same displayName: a second "
    "POST of the name is answered 409 uniqueness.",
    AL2_ONLY,
)
async def group_unique_name(context: Context) -> None:
    group = await context.fixtures.group()
    twin = await context.http.post(
        "/Groups", {"schemas": [GROUP], "displayName": group["displayName"]}
    )
    context.fixtures.track("/Groups", twin.json())
    error = require_error_document(twin, 409)
    require(error.get("scimType") == "uniqueness", f"scimType is {error.get('scimType')!r}")


@check(
    SUITE,
    "ipsie.group-zero-members",
    "POST /Groups creates a group with zero members",
    section("6.2.2"),
    "The Application MUST support POST /Groups and MUST allow groups with zero members: "
    "created without members and with members: [], each is 201 and reads no member.",
    AL2_ONLY,
)
async def group_zero_members(context: Context) -> None:
    without: tuple[dict[str, Any], ...] = ({}, {"members": []})
    for extra in without:
        body = {"schemas": [GROUP], "displayName": context.fixtures.name("empty"), **extra}
        response = await context.http.post("/Groups", body)
        context.fixtures.track("/Groups", response.json())
        expect_status(response, 201, what=f"POST /Groups with {extra or 'no members'}")
        stored = await read(context, f"/Groups/{expect_object(response)['id']}")
        require(not stored.get("members"), f"the empty group reads members {stored.get('members')}")


@check(
    SUITE,
    "ipsie.list-groups",
    "GET /Groups lists the groups",
    section("6.2.3"),
    "The Application MUST support retrieval of all groups via GET /Groups (here with "
    "excludedAttributes=members, as the profile asks the IdP to send): a ListResponse holding "
    "the group the check created, without members.",
    AL2_ONLY,
)
async def list_groups(context: Context) -> None:
    group = await context.fixtures.group()
    response = await context.http.get(
        "/Groups", params={"excludedAttributes": "members", "count": str(PAGE_MAXIMUM)}
    )
    expect_status(response, 200, what="GET /Groups")
    groups = resources_of(response)
    total = expect_object(response).get("totalResults")
    if not isinstance(total, int) or total < 1:
        fail(f"totalResults is {total!r}, although the check created a group")
    require(all("members" not in g for g in groups), "excludedAttributes=members is ignored")
    if total <= len(groups):
        require(
            any(g.get("id") == group["id"] for g in groups),
            "the group the check created is not listed",
        )


GET_GROUP = ByIdCheck("ipsie.get-group", "/Groups", new_group, "displayName")
check(
    SUITE,
    GET_GROUP.id,
    "GET /Groups/{id} answers the group",
    section("6.2.4"),
    "The Application MUST support retrieving a single group by ID via GET /Groups/{id}.",
    AL2_ONLY,
)(GET_GROUP.run)

register_filters(GROUP_FILTERS)


async def member_ids(context: Context, location: str) -> set[str]:
    stored = await read(context, location)
    return {str(member.get("value")) for member in stored.get("members") or []}


@check(
    SUITE,
    "ipsie.patch-group",
    "PATCH /Groups/{id} renames a group",
    section("6.2.6"),
    "The Application MUST support updating a group's attribute values via PATCH /Groups/{id}.",
    AL2_ONLY,
)
async def patch_group(context: Context) -> None:
    group = await context.fixtures.group()
    location = f"/Groups/{group['id']}"
    renamed = context.fixtures.name("renamed")
    await patch(context, location, replace("displayName", renamed))
    stored = await read(context, location)
    require(stored.get("displayName") == renamed, f"displayName is {stored.get('displayName')!r}")


@check(
    SUITE,
    "ipsie.patch-group-member-operations",
    f"One PATCH carries {MEMBER_OPERATIONS} member adds, another {MEMBER_OPERATIONS} removes",
    section("6.2.6"),
    f"The Application MUST support at least 50 add or remove operations on members in a "
    f"single PATCH: to a group holding one member, {MEMBER_OPERATIONS} single-member adds in "
    f"one PATCH, then {MEMBER_OPERATIONS} removes by members[value eq ...] in another, leave "
    f"first all {MEMBER_OPERATIONS + 1}, then only the first member.",
    AL2_ONLY,
)
async def patch_group_member_operations(context: Context) -> None:
    keeper, *users = await asyncio.gather(
        *(context.fixtures.user() for _ in range(MEMBER_OPERATIONS + 1))
    )
    joined = [user["id"] for user in users]
    group = await context.fixtures.group(members=[keeper["id"]])
    location = f"/Groups/{group['id']}"
    await patch(
        context,
        location,
        *({"op": "add", "path": "members", "value": [{"value": i}]} for i in joined),
    )
    held = await member_ids(context, location)
    require(
        held == {keeper["id"], *joined},
        f"after {len(joined)} adds the group holds {len(held & set(joined))} of them",
    )
    await patch(
        context, location, *({"op": "remove", "path": f'members[value eq "{i}"]'} for i in joined)
    )
    held = await member_ids(context, location)
    require(
        held == {keeper["id"]},
        f"after {len(joined)} removes the group holds {len(held)} members, expected only the one "
        f"it held before the adds",
    )


# --- §8: security considerations ----------------------------------------------------------


def no_body(context: Context, user: dict[str, Any]) -> Any:
    return None


@dataclass(frozen=True)
class Provocation:
    """A request the server must refuse with an RFC 7644 §3.12 error of ``status``."""

    what: str
    method: str
    path: str
    status: int
    body: Callable[[Context, dict[str, Any]], Any] = no_body
    """The JSON body, given the context and the check's user."""
    raw: str | None = None
    params: dict[str, str] | None = None


PROVOCATIONS = (
    Provocation("an unknown id", "GET", "/Users/ipsie-no-such-id", 404),
    Provocation(
        "a filter that does not parse", "GET", "/Users", 400, params={"filter": 'userName eq "'}
    ),
    Provocation("a body that is not JSON", "POST", "/Users", 400, raw='{"userName": '),
    Provocation(
        "an existing userName",
        "POST",
        "/Users",
        409,
        body=lambda context, user: context.fixtures.user_body(user["userName"]),
    ),
    Provocation(
        "a PATCH op that does not exist",
        "PATCH",
        "/Users/{id}",
        400,
        body=lambda context, user: patch_body({"op": "explode", "path": "title", "value": 1}),
    ),
)


@check(
    SUITE,
    "ipsie.error-format",
    "Errors use the SCIM format and leak nothing of the implementation",
    section("8") + " (Error Handling); RFC 7644 §3.12",
    "Error responses SHALL use the SCIM error format and SHALL NOT leak internal details: an "
    "unknown id, a broken filter, a body that is not JSON, a duplicate userName and an unknown "
    "PATCH op are each an Error with the right status, with no traceback, source file or "
    "database message in it.",
    BOTH,
)
async def error_format(context: Context) -> None:
    user = await context.fixtures.user()
    for provocation in PROVOCATIONS:
        response = await context.http.request(
            provocation.method,
            provocation.path.replace("{id}", user["id"]),
            json_body=provocation.body(context, user),
            raw_body=provocation.raw,
            params=provocation.params,
        )
        context.fixtures.track("/Users", response.json())
        try:
            require_error_document(response, provocation.status)
        except CheckFailed as failed:
            fail(f"{provocation.what}: {failed}")
        leak = LEAK_MARKERS.search(response.text)
        if leak:
            fail(
                f"the error for {provocation.what} leaks {leak.group(0)!r}: {response.text[:300]!r}"
            )


PENDING_SECURITY = (
    Pending(
        "ipsie.token-expiry",
        "Access tokens expire and resist replay",
        section("8") + " (Replay Resistance)",
        "Access tokens SHALL expire and nonces SHALL be validated to prevent replay.",
        f"{NO_OAUTH}; the lifetime of a given bearer token cannot be observed without waiting "
        f"it out",
    ),
    Pending(
        "ipsie.audit-log",
        "Every create, update and delete is logged for audit",
        section("8") + " (Auditing)",
        "All SCIM requests resulting in the creation, deletion, or modification of a SCIM "
        "resource SHALL be logged for audit and troubleshooting.",
        "an audit log is not observable over SCIM: check it in the Application's own logs "
        "(this server: the journal, GET /admin/tenants/{name}/journal)",
    ),
)
for pending in PENDING_SECURITY:
    check(SUITE, pending.id, pending.title, pending.source, pending.rule, pending.profiles)(
        pending.run
    )
