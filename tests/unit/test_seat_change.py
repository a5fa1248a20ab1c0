"""The seat decision (``scim_server.core.seats``): how a write moves a user in or out of a seat.

A user holds a seat while ``active`` is true or absent. ``seat_change`` answers +1 when a
write makes a user hold one, -1 when it stops, 0 otherwise; whether a seat is free is the
tenant's business (``SeatUsage``), not the write's, so the limit never changes the answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from scim_server.core.seats import SeatUsage, holds_seat, seat_change

ACTIVE: dict[str, Any] = {"userName": "bjensen", "active": True}
INACTIVE: dict[str, Any] = {"userName": "bjensen", "active": False}
UNSET: dict[str, Any] = {"userName": "bjensen"}
NULL: dict[str, Any] = {"userName": "bjensen", "active": None}


@pytest.mark.parametrize(
    ("attributes", "holds"),
    [(ACTIVE, True), (UNSET, True), (NULL, True), (INACTIVE, False)],
    ids=["active", "active absent", "active null", "inactive"],
)
def test_a_user_holds_a_seat_unless_active_is_false(
    attributes: dict[str, Any], holds: bool
) -> None:
    assert holds_seat(attributes) is holds


@pytest.mark.parametrize(
    ("before", "after", "change"),
    [
        pytest.param(None, ACTIVE, 1, id="create active"),
        pytest.param(None, UNSET, 1, id="create without active"),
        pytest.param(None, INACTIVE, 0, id="create inactive"),
        pytest.param(INACTIVE, ACTIVE, 1, id="activate"),
        pytest.param(INACTIVE, UNSET, 1, id="activate by removing active"),
        pytest.param(ACTIVE, INACTIVE, -1, id="deactivate"),
        pytest.param(UNSET, INACTIVE, -1, id="deactivate a user created without active"),
        pytest.param(ACTIVE, {**ACTIVE, "title": "Lead"}, 0, id="update an active user"),
        pytest.param(INACTIVE, {**INACTIVE, "title": "Lead"}, 0, id="update an inactive user"),
        pytest.param(UNSET, ACTIVE, 0, id="set active on a user without it"),
        pytest.param(ACTIVE, None, -1, id="delete active"),
        pytest.param(UNSET, None, -1, id="delete without active"),
        pytest.param(INACTIVE, None, 0, id="delete inactive"),
        pytest.param(None, None, 0, id="nothing before or after"),
    ],
)
def test_seat_change_decision_table(
    before: dict[str, Any] | None, after: dict[str, Any] | None, change: int
) -> None:
    assert seat_change(before, after) == change


@pytest.mark.parametrize(
    ("seats", "used", "available", "over"),
    [
        (None, 0, None, 0),
        (None, 1_000_000, None, 0),
        (5, 0, 5, 0),
        (5, 3, 2, 0),
        (5, 5, 0, 0),
        (3, 5, 0, 2),
        (0, 0, 0, 0),
    ],
    ids=[
        "unlimited, empty",
        "unlimited, busy",
        "limited, empty",
        "limited, some used",
        "limited, full",
        "limit lowered below the use",
        "no seats at all",
    ],
)
def test_seat_usage_with_and_without_a_limit(
    seats: int | None, used: int, available: int | None, over: int
) -> None:
    usage = SeatUsage(seats, used)
    assert (usage.available, usage.over) == (available, over)
