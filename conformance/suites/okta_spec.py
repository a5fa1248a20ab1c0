"""The ``okta-spec`` suite: the 12 cases of Okta's "SCIM 2.0 SPEC Test" (Runscope/BlazeMeter).

Reproduced from ``Okta-SCIM-20-SPEC-Test.json`` (PR OKTA-728721, May 2024): the same requests,
headers, random values and assertions, in the same order. Okta's suite needs one user to exist
already; the first case creates one under the run's prefix so an empty server can run it, and
says so.
Cases 2, 7 and 8 depend on what earlier cases found or created, as in Okta's suite;
the shared values live on the run's fixture tracker.
"""

from __future__ import annotations

import random
import string
from typing import Any

from conformance.checks import (
    CheckFailed,
    CheckSkipped,
    Context,
    check,
    expect_object,
    expect_status,
    require,
)
from conformance.http import Response
from conformance.urns import ERROR, LIST_RESPONSE, USER

S = "okta-spec"
SOURCE = "Okta SCIM 2.0 SPEC Test (Okta-SCIM-20-SPEC-Test.json, OKTA-728721)"
INVALID_USER_EMAIL = "abcdefgh@atko.com"
USER_ID_THAT_DOES_NOT_EXIST = "010101001010101011001010101011"

GET_HEADERS = {
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
    "Accept": "application/scim+json",
    "User-Agent": "OKTA SCIM Integration",
}
POST_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/scim+json; charset=utf-8",
}


def state(ctx: Context) -> dict[str, Any]:
    """Values the cases pass along (Okta's environment variables), one set per run."""
    shared = ctx.fixtures.tracker.shared.setdefault("okta", {})
    if "email" not in shared:
        digits = "".join(random.choices(string.digits, k=3))
        given = f"Runscope{digits}"
        family = (
            random.choice(string.ascii_uppercase)
            + "".join(random.choices(string.ascii_lowercase, k=8))
            + "".join(random.choices(string.digits, k=3))
        )
        email = f"{ctx.fixtures.tracker.prefix}{given}{family}@atko.com"
        shared.update(given=given, family=family, email=email)
    return dict(shared)


def remember(ctx: Context, **values: Any) -> None:
    ctx.fixtures.tracker.shared.setdefault("okta", {}).update(values)


def needed(ctx: Context, key: str, case: str) -> Any:
    value = state(ctx).get(key)
    if value is None:
        raise CheckSkipped(f"depends on {case}, which did not provide {key}")
    return value


async def get(ctx: Context, path: str, **kw: Any) -> Response:
    return await ctx.http.get(path, headers={**GET_HEADERS, **kw.pop("headers", {})}, **kw)


def nonempty(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def require_user_fields(user: dict[str, Any], where: str) -> None:
    """Okta's field assertions on a returned user (cases 1 and 2)."""
    name = user.get("name") or {}
    email_list = user.get("emails") or [{}]
    for label, value in (
        ("id", user.get("id")),
        ("name.familyName", name.get("familyName")),
        ("name.givenName", name.get("givenName")),
        ("userName", user.get("userName")),
        ("active", user.get("active")),
        ("emails[0].value", (email_list[0] or {}).get("value")),
    ):
        require(nonempty(value), f"{where}: {label} is empty or missing")


def require_list_response(body: dict[str, Any]) -> None:
    require(LIST_RESPONSE in (body.get("schemas") or []), f"schemas lacks {LIST_RESPONSE}")


def require_error(body: dict[str, Any], status: int | None = None) -> None:
    require(nonempty(body.get("detail")), "detail is empty or missing")
    require(ERROR in (body.get("schemas") or []), f"schemas lacks {ERROR}")
    if status is not None:
        # Runscope compares loosely: 404 and "404" both satisfy "equals 404".
        require(
            str(body.get("status")) == str(status),
            f"status is {body.get('status')!r}, not {status}",
        )


def create_body(ctx: Context) -> dict[str, Any]:
    values = state(ctx)
    return {
        "schemas": [USER],
        "userName": values["email"],
        "name": {"givenName": values["given"], "familyName": values["family"]},
        "emails": [{"primary": True, "value": values["email"], "type": "work"}],
        "displayName": f"{values['given']} {values['family']}",
        "active": True,
    }


@check(
    S,
    "okta.01-users-endpoint",
    "Required Test: Test Users endpoint",
    SOURCE,
    "GET /Users?count=1&startIndex=1: 200, a ListResponse with numeric itemsPerPage, "
    "startIndex, totalResults and a first user with id, names, userName, active, email.",
)
async def users_endpoint(ctx: Context) -> None:
    listing = await get(ctx, "/Users", params={"count": "1", "startIndex": "1"})
    body = listing.json() if listing.status == 200 else None
    if isinstance(body, dict) and not body.get("Resources"):
        # Okta's precondition: a user exists on the SP. Make one, then ask again.
        await ctx.fixtures.user(ctx.fixtures.name("okta-seed"))
        listing = await get(ctx, "/Users", params={"count": "1", "startIndex": "1"})
    expect_status(listing, 200)
    body = expect_object(listing)
    resources = body.get("Resources")
    if not isinstance(resources, list) or not resources:
        raise CheckFailed("Resources is empty")
    require_list_response(body)
    for key in ("itemsPerPage", "startIndex", "totalResults"):
        require(
            isinstance(body.get(key), int) and not isinstance(body.get(key), bool),
            f"{key} is not a number: {body.get(key)!r}",
        )
    first = resources[0]
    require_user_fields(first, "Resources[0]")
    remember(ctx, isv_user_id=first["id"])


@check(
    S,
    "okta.02-get-user-by-id",
    "Required Test: Get Users/{{id}}",
    SOURCE,
    "GET /Users/{{ISVUserid}}: 200, the same non-empty fields, and the same id.",
)
async def get_user_by_id(ctx: Context) -> None:
    user_id = needed(ctx, "isv_user_id", "okta.01-users-endpoint")
    response = await get(ctx, f"/Users/{user_id}")
    expect_status(response, 200)
    user = expect_object(response)
    require_user_fields(user, "the user")
    require(user.get("id") == user_id, f"id is {user.get('id')!r}, not {user_id!r}")


@check(
    S,
    "okta.03-invalid-user-by-username",
    "Required Test: Test invalid User by username",
    SOURCE,
    'GET /Users?filter=userName eq "abcdefgh@atko.com": 200, ListResponse, totalResults 0.',
)
async def invalid_by_username(ctx: Context) -> None:
    response = await get(ctx, "/Users", params={"filter": f'userName eq "{INVALID_USER_EMAIL}"'})
    expect_status(response, 200)
    body = expect_object(response)
    require_list_response(body)
    require(body.get("totalResults") == 0, f"totalResults is {body.get('totalResults')!r}")


@check(
    S,
    "okta.04-invalid-user-by-id",
    "Required Test: Test invalid User by ID",
    SOURCE,
    "GET /Users/010101001010101011001010101011: 404 with a detail and the Error schema.",
)
async def invalid_by_id(ctx: Context) -> None:
    response = await get(ctx, f"/Users/{USER_ID_THAT_DOES_NOT_EXIST}")
    expect_status(response, 404)
    require_error(expect_object(response))


@check(
    S,
    "okta.05-random-user-absent",
    "Required Test: Make sure random user doesn't exist",
    SOURCE,
    "GET /Users?filter=userName eq the random email: 200, totalResults 0, ListResponse.",
)
async def random_user_absent(ctx: Context) -> None:
    email = state(ctx)["email"]
    response = await get(ctx, "/Users", params={"filter": f'userName eq "{email}"'})
    expect_status(response, 200)
    body = expect_object(response)
    require(body.get("totalResults") == 0, f"totalResults is {body.get('totalResults')!r}")
    require_list_response(body)


@check(
    S,
    "okta.06-create-user",
    "Required Test: Create Okta user with realistic values",
    SOURCE,
    "POST /Users: 201, active true, an id, the same names and userName, the User schema.",
)
async def create_user(ctx: Context) -> None:
    body = create_body(ctx)
    response = await ctx.http.post("/Users", body, headers=POST_HEADERS)
    ctx.fixtures.track("/Users", response.json())
    expect_status(response, 201)
    user = expect_object(response)
    require(user.get("active") is True, f"active is {user.get('active')!r}")
    require(nonempty(user.get("id")), "id is empty")
    name = user.get("name") or {}
    require(name.get("familyName") == body["name"]["familyName"], "familyName differs")
    require(name.get("givenName") == body["name"]["givenName"], "givenName differs")
    require(USER in (user.get("schemas") or []), f"schemas lacks {USER}")
    require(
        user.get("userName") == body["userName"],
        f"userName is {user.get('userName')!r}, not {body['userName']!r}",
    )
    remember(ctx, id_user_one=user["id"])


@check(
    S,
    "okta.07-verify-created",
    "Required Test: Verify that user was created",
    SOURCE,
    "GET /Users/{{idUserOne}}: 200 with the userName, familyName and givenName sent.",
)
async def verify_created(ctx: Context) -> None:
    user_id = needed(ctx, "id_user_one", "okta.06-create-user")
    values = state(ctx)
    response = await get(ctx, f"/Users/{user_id}")
    expect_status(response, 200)
    user = expect_object(response)
    name = user.get("name") or {}
    require(user.get("userName") == values["email"], f"userName is {user.get('userName')!r}")
    require(name.get("familyName") == values["family"], "familyName differs")
    require(name.get("givenName") == values["given"], "givenName differs")


@check(
    S,
    "okta.08-recreate-conflict",
    "Required Test: Expect failure when recreating user with same values",
    SOURCE,
    "POST /Users with the same body again: 409.",
)
async def recreate_conflict(ctx: Context) -> None:
    needed(ctx, "id_user_one", "okta.06-create-user")
    response = await ctx.http.post("/Users", create_body(ctx), headers=POST_HEADERS)
    ctx.fixtures.track("/Users", response.json())
    expect_status(response, 409)


@check(
    S,
    "okta.09-username-case",
    "Required Test: Username Case Sensitivity Check",
    SOURCE,
    "GET /Users?filter=userName eq the upper-cased userName: 200.",
)
async def username_case(ctx: Context) -> None:
    caps = state(ctx)["email"].upper()
    response = await get(ctx, "/Users", params={"filter": f'userName eq "{caps}"'})
    expect_status(response, 200)


@check(
    S,
    "okta.10-groups-endpoint",
    "Optional Test: Verify Groups endpoint",
    SOURCE,
    "GET /Groups: 200 within 600 ms; if totalResults > 0, Resources is an array.",
)
async def groups_endpoint(ctx: Context) -> None:
    response = await get(ctx, "/Groups")
    expect_status(response, 200)
    elapsed = ctx.http.transcript[-1].elapsed_ms
    require(elapsed < 600, f"GET /Groups took {elapsed} ms; Okta asserts under 600 ms")
    body = expect_object(response)
    total = body.get("totalResults")
    if isinstance(total, int) and total > 0:
        require(isinstance(body.get("Resources"), list), "Resources is not an array")


@check(
    S,
    "okta.11-status-401",
    "Required Test: Check status 401",
    SOURCE,
    "GET /Users?filter=... with 'Authorization: non-token': 401, a detail, status "
    '"401", the Error schema.',
)
async def status_401(ctx: Context) -> None:
    caps = state(ctx)["email"].upper()
    response = await ctx.http.get(
        "/Users",
        auth=False,
        params={"filter": f'userName eq "{caps}"'},
        headers={**GET_HEADERS, "Authorization": "non-token"},
    )
    expect_status(response, 401)
    require_error(expect_object(response), 401)


@check(
    S,
    "okta.12-status-404",
    "Required Test: Check status 404",
    SOURCE,
    'GET /Users/00919288221112222: 404, a detail, status "404", the Error schema.',
)
async def status_404(ctx: Context) -> None:
    response = await get(ctx, "/Users/00919288221112222")
    expect_status(response, 404)
    require_error(expect_object(response), 404)
