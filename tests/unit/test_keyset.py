"""Keyset pages (``scim_server.core.cursors.keyset_condition``): the resources after a cursor.

A cursor holds the sort value and ``_id`` of the resource a page ended on. The condition must
select exactly the resources strictly after it in the page's reading order: for every sort
direction, reading forwards (``next``) or backwards (``previous``), with ``_id`` breaking
ties, and with a missing sort value, which MongoDB sorts before every present one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cmp_to_key
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scim_server.core.cursors import Direction, Position, SortSpec, keyset_condition, traversal

FIELD = "c.userName"
ASC: SortSpec = [(FIELD, 1), ("_id", 1)]
DESC: SortSpec = [(FIELD, -1), ("_id", -1)]
ASC_ID_DESC: SortSpec = [(FIELD, 1), ("_id", -1)]
NOTHING: dict[str, Any] = {"_id": {"$in": []}}


@pytest.mark.parametrize(
    ("sort", "direction", "expected"),
    [
        (ASC, "next", {"$or": [{FIELD: "m", "_id": {"$gt": "u5"}}, {FIELD: {"$gt": "m"}}]}),
        (
            ASC,
            "previous",
            {
                "$or": [
                    {FIELD: "m", "_id": {"$lt": "u5"}},
                    {"$or": [{FIELD: {"$lt": "m"}}, {FIELD: None}]},
                ]
            },
        ),
        (
            DESC,
            "next",
            {
                "$or": [
                    {FIELD: "m", "_id": {"$lt": "u5"}},
                    {"$or": [{FIELD: {"$lt": "m"}}, {FIELD: None}]},
                ]
            },
        ),
        (DESC, "previous", {"$or": [{FIELD: "m", "_id": {"$gt": "u5"}}, {FIELD: {"$gt": "m"}}]}),
        (
            ASC_ID_DESC,
            "next",
            {"$or": [{FIELD: "m", "_id": {"$lt": "u5"}}, {FIELD: {"$gt": "m"}}]},
        ),
        (
            ASC_ID_DESC,
            "previous",
            {
                "$or": [
                    {FIELD: "m", "_id": {"$gt": "u5"}},
                    {"$or": [{FIELD: {"$lt": "m"}}, {FIELD: None}]},
                ]
            },
        ),
    ],
    ids=["asc next", "asc previous", "desc next", "desc previous", "id desc next", "id desc prev"],
)
def test_after_a_present_value_ties_go_by_id_and_missing_values_sort_first(
    sort: SortSpec, direction: Direction, expected: dict[str, Any]
) -> None:
    assert keyset_condition(sort, Position(direction, "m", "u5")) == expected


@pytest.mark.parametrize(
    ("sort", "direction", "expected"),
    [
        (ASC, "next", {"$or": [{FIELD: None, "_id": {"$gt": "u5"}}, {FIELD: {"$ne": None}}]}),
        (ASC, "previous", {"$or": [{FIELD: None, "_id": {"$lt": "u5"}}, NOTHING]}),
        (DESC, "next", {"$or": [{FIELD: None, "_id": {"$lt": "u5"}}, NOTHING]}),
        (DESC, "previous", {"$or": [{FIELD: None, "_id": {"$gt": "u5"}}, {FIELD: {"$ne": None}}]}),
    ],
    ids=["asc next", "asc previous", "desc next", "desc previous"],
)
def test_after_a_missing_value_come_the_other_missing_ones_then_every_present_one(
    sort: SortSpec, direction: Direction, expected: dict[str, Any]
) -> None:
    assert keyset_condition(sort, Position(direction, None, "u5")) == expected


@pytest.mark.parametrize(
    ("sort", "direction", "expected"),
    [
        ([("_id", 1)], "next", {"_id": {"$gt": "u5"}}),
        ([("_id", 1)], "previous", {"_id": {"$lt": "u5"}}),
        ([("_id", -1)], "next", {"_id": {"$lt": "u5"}}),
        ([("_id", -1)], "previous", {"_id": {"$gt": "u5"}}),
    ],
    ids=["asc next", "asc previous", "desc next", "desc previous"],
)
def test_without_sort_by_the_id_alone_is_the_key(
    sort: SortSpec, direction: Direction, expected: dict[str, Any]
) -> None:
    assert keyset_condition(sort, Position(direction, "ignored", "u5")) == expected


def test_a_date_boundary_compares_as_a_date() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    sort: SortSpec = [("meta.created", -1), ("_id", -1)]
    assert keyset_condition(sort, Position("next", created, "u5")) == {
        "$or": [
            {"meta.created": created, "_id": {"$lt": "u5"}},
            {"$or": [{"meta.created": {"$lt": created}}, {"meta.created": None}]},
        ]
    }


def test_backward_pages_are_read_in_the_reverse_order() -> None:
    assert traversal(ASC, "next") == ASC
    assert traversal(ASC, "previous") == DESC
    assert traversal([("_id", -1)], "previous") == [("_id", 1)]


# --- the condition selects exactly what follows, on any data ----------------------------------


def _matches(document: dict[str, Any], query: dict[str, Any]) -> bool:
    """MongoDB's reading of the few query forms a keyset condition is made of.

    A missing field equals null; ``$gt``/``$lt`` only compare values of one type.
    """
    for key, condition in query.items():
        if key == "$or":
            if not any(_matches(document, term) for term in condition):
                return False
        elif not _satisfies(document.get(key), condition):
            return False
    return True


def _satisfies(value: Any, condition: Any) -> bool:
    if not isinstance(condition, dict):
        return bool(value == condition)
    for operator, operand in condition.items():
        if operator == "$ne":
            holds = value != operand
        elif operator == "$in":
            holds = value in operand
        else:
            comparable = value is not None and type(value) is type(operand)
            holds = comparable and (value > operand if operator == "$gt" else value < operand)
        if not holds:
            return False
    return True


def _order(sort: SortSpec) -> Any:
    """MongoDB's sort order: a missing value before any string, each key in its direction."""

    def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
        for field, direction in sort:
            x, y = a.get(field), b.get(field)
            x_key, y_key = (x is not None, x or ""), (y is not None, y or "")
            if x_key != y_key:
                return direction if x_key > y_key else -direction
        return 0

    return cmp_to_key(compare)


def _documents(values: list[str | None]) -> list[dict[str, Any]]:
    """A document of each value, in id order (``None``: without the field)."""
    return [
        {"_id": f"u{n:02}", **({FIELD: value} if value is not None else {})}
        for n, value in enumerate(values)
    ]


documents = st.lists(st.sampled_from([None, "a", "b", "c"]), min_size=1, max_size=12).map(
    _documents
)


unique_documents = st.lists(
    st.sampled_from([None, "a", "b", "c", "d"]), min_size=1, max_size=5, unique=True
).map(_documents)
"""As a unique index holds them: no two documents share a value, a missing one included."""

pages_and_sorts = st.one_of(
    st.tuples(documents, st.sampled_from([ASC, DESC, ASC_ID_DESC, [("_id", 1)], [("_id", -1)]])),
    # Without a tiebreak, on a key unique in the tenant.
    st.tuples(unique_documents, st.sampled_from([[(FIELD, 1)], [(FIELD, -1)]])),
)


@given(pages_and_sorts, st.sampled_from(["next", "previous"]), st.data())
def test_the_condition_selects_exactly_the_documents_after_the_cursor_in_reading_order(
    page_and_sort: tuple[list[dict[str, Any]], SortSpec],
    direction: Direction,
    data: st.DataObject,
) -> None:
    page, sort = page_and_sort
    boundary = data.draw(st.sampled_from(page))
    position = Position(direction, boundary.get(sort[0][0]), boundary["_id"])
    in_order = sorted(page, key=_order(traversal(sort, direction)))
    after = in_order[in_order.index(boundary) + 1 :]
    condition = keyset_condition(sort, position)
    assert [d["_id"] for d in in_order if _matches(d, condition)] == [d["_id"] for d in after]


@pytest.mark.parametrize(
    ("sort", "direction", "expected"),
    [
        ([(FIELD, 1)], "next", {FIELD: {"$gt": "m"}}),
        ([(FIELD, 1)], "previous", {"$or": [{FIELD: {"$lt": "m"}}, {FIELD: None}]}),
        ([(FIELD, -1)], "next", {"$or": [{FIELD: {"$lt": "m"}}, {FIELD: None}]}),
        ([(FIELD, -1)], "previous", {FIELD: {"$gt": "m"}}),
    ],
    ids=["asc next", "asc previous", "desc next", "desc previous"],
)
def test_a_key_unique_in_the_tenant_needs_no_tie_only_its_range(
    sort: SortSpec, direction: Direction, expected: dict[str, Any]
) -> None:
    assert keyset_condition(sort, Position(direction, "m", "u5")) == expected
