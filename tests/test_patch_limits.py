"""What one PATCH may cost: the operation cap, linear application, and the event loop kept free.

A PATCH is applied by scim2-models one operation at a time, each over the whole resource,
so the server caps the operations one request carries (``patch_max_operations``, Bulk
included) and hands runs of entry ``add``s over as one operation.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st
from scim2_models import Context, Resource, SCIMException

from scim_server.cli import _parser
from scim_server.config import Settings
from scim_server.core.patch import apply_operations, plan_patch
from scim_server.core.writes import validate
from scim_server.models import USERS
from scim_server.web.app import create_app
from tests.support.scim import Scim, make_tenant, scim_error
from tests.support.urns import BULK_REQUEST, PATCH_OP, USER


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def email_adds(count: int) -> list[dict[str, Any]]:
    return [
        {"op": "add", "path": "emails", "value": [{"value": f"u{i}@example.com", "type": "work"}]}
        for i in range(count)
    ]


async def capped_scim(aiohttp_client: Any, settings: Settings, cap: int) -> Scim:
    app = create_app(dataclasses.replace(settings, patch_max_operations=cap))
    client = await aiohttp_client(app)
    tenant = await make_tenant(client, "acme")
    return Scim(client, "acme", tenant["token"])


# --- the cap -------------------------------------------------------------------------------------


async def test_patch_over_the_operation_cap_is_400_and_changes_nothing(
    aiohttp_client: Any, settings: Settings, mongo_db: Any
) -> None:
    scim = await capped_scim(aiohttp_client, settings, cap=5)
    user = await scim.create_user("bjensen")
    titles = [{"op": "replace", "path": "title", "value": f"t{i}"} for i in range(6)]

    refused = await scim.patch(f"/Users/{user['id']}", patch_body(*titles))

    error = await scim_error(refused, 400, "invalidValue")
    assert "at most 5 operations" in error["detail"]
    after = await (await scim.get(f"/Users/{user['id']}")).json()
    assert "title" not in after
    assert after["meta"]["version"] == user["meta"]["version"]
    allowed = await scim.patch(f"/Users/{user['id']}", patch_body(*titles[:5]))
    assert allowed.status == 200
    assert (await allowed.json())["title"] == "t4"


async def test_path_less_keys_with_value_filters_count_toward_the_cap(
    aiohttp_client: Any, settings: Settings, mongo_db: Any
) -> None:
    scim = await capped_scim(aiohttp_client, settings, cap=3)
    user = await scim.create_user("bjensen")
    value = {f'emails[type eq "t{i}"].value': f"u{i}@example.com" for i in range(4)}

    refused = await scim.patch(
        f"/Users/{user['id']}", patch_body({"op": "replace", "value": value})
    )

    await scim_error(refused, 400, "invalidValue")


async def test_bulk_patch_over_the_cap_fails_that_operation_only(
    aiohttp_client: Any, settings: Settings, mongo_db: Any
) -> None:
    scim = await capped_scim(aiohttp_client, settings, cap=5)
    user = await scim.create_user("bjensen")
    too_many = patch_body(*[{"op": "replace", "path": "title", "value": "x"}] * 6)
    body = {
        "schemas": [BULK_REQUEST],
        "Operations": [
            {"method": "PATCH", "path": f"/Users/{user['id']}", "data": too_many},
            {"method": "POST", "bulkId": "a", "path": "/Users", "data": {"userName": "alice"}},
        ],
    }

    response = await scim.post("/Bulk", body)

    assert response.status == 200
    first, second = (await response.json())["Operations"]
    assert first["status"] == "400"
    assert first["response"]["scimType"] == "invalidValue"
    assert "at most 5 operations" in first["response"]["detail"]
    assert second["status"] == "201"


async def test_group_member_operations_count_one_each_whatever_they_carry(
    aiohttp_client: Any, settings: Settings, mongo_db: Any
) -> None:
    scim = await capped_scim(aiohttp_client, settings, cap=2)
    people = [(await scim.create_user(f"user{i}"))["id"] for i in range(6)]
    group = await scim.create_group("Readers")
    add = {"op": "add", "path": "members", "value": [{"value": p} for p in people]}

    allowed = await scim.patch(f"/Groups/{group['id']}", patch_body(add, add))
    refused = await scim.patch(f"/Groups/{group['id']}", patch_body(add, add, add))

    assert allowed.status == 204
    group_read = await (await scim.get(f"/Groups/{group['id']}")).json()
    assert len(group_read["members"]) == 6
    await scim_error(refused, 400, "invalidValue")


def test_the_cap_is_read_from_the_environment_and_the_serve_flag() -> None:
    assert Settings.from_env({}).patch_max_operations == 1000
    assert Settings.from_env({"SCIM_PATCH_MAX_OPERATIONS": "50"}).patch_max_operations == 50
    flags = _parser().parse_args(["serve", "--patch-max-operations", "7"])
    assert flags.patch_max_operations == 7
    with pytest.raises(ValueError, match="patch_max_operations"):
        Settings.from_env({"SCIM_PATCH_MAX_OPERATIONS": "0"})


# --- linear application ----------------------------------------------------------------------


async def test_the_largest_allowed_patch_of_email_adds_applies_every_one(scim: Scim) -> None:
    user = await scim.create_user("bjensen")

    answer = await scim.patch(f"/Users/{user['id']}", patch_body(*email_adds(1000)))

    assert answer.status == 200, await answer.text()
    emails = (await answer.json())["emails"]
    assert [email["value"] for email in emails] == [f"u{i}@example.com" for i in range(1000)]
    refused = await scim.patch(f"/Users/{user['id']}", patch_body(*email_adds(1001)))
    await scim_error(refused, 400, "invalidValue")


def test_a_run_of_entry_adds_reaches_scim2_models_as_one_operation() -> None:
    plan = plan_patch(USERS, patch_body(*email_adds(1000)), 1000)

    assert len(plan.operations) == 1
    assert len(plan.operations[0]["value"]) == 1000


def new_user() -> Resource[Any]:
    return validate(
        USERS,
        {
            "schemas": [USER],
            "userName": "bjensen",
            "emails": [{"value": "Existing@example.com", "type": "work"}],
        },
        Context.DEFAULT,
    )


ENTRIES = st.fixed_dictionaries(
    {"value": st.sampled_from(["a@example.com", "A@example.com", "b@example.com"])},
    optional={
        "type": st.sampled_from(["work", "Work", "home"]),
        "primary": st.sampled_from([True, False, "True"]),
    },
)
OPERATIONS = st.lists(
    st.one_of(
        st.builds(
            lambda entries: {"op": "add", "path": "emails", "value": entries},
            st.lists(ENTRIES, min_size=1, max_size=3),
        ),
        st.builds(lambda entry: {"op": "Add", "path": "emails", "value": entry}, ENTRIES),
        st.just({"op": "add", "path": "emails", "value": {"value": "existing@example.com"}}),
        st.just({"op": "replace", "path": "title", "value": "Guide"}),
        st.just({"op": "add", "path": "phoneNumbers", "value": [{"value": "555"}]}),
    ),
    min_size=1,
    max_size=12,
)


@examples(max_examples=150, deadline=None)
@given(OPERATIONS)
def test_coalesced_operations_end_as_applying_them_one_by_one(
    operations: list[dict[str, Any]],
) -> None:
    one_by_one = new_user()
    one_by_one_error = None
    try:
        for operation in operations:
            apply_operations(USERS, one_by_one, [operation])
    except SCIMException as error:  # the same refusal is expected from both
        one_by_one_error = (type(error), getattr(error, "scim_type", None))
    coalesced = new_user()
    coalesced_error = None
    try:
        apply_operations(
            USERS, coalesced, plan_patch(USERS, patch_body(*operations), 100).operations
        )
    except SCIMException as error:
        coalesced_error = (type(error), getattr(error, "scim_type", None))

    assert coalesced_error == one_by_one_error
    if one_by_one_error is None:
        assert coalesced.model_dump() == one_by_one.model_dump()
