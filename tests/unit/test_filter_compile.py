"""Filter and sortBy compilation (``scim_server.core.filters``), without a database.

Each SCIM filter is compared with the MongoDB query document it must become, written out
literally. Strings compare in their comparison form, stored under ``c``: NFC and lowercase
unless the attribute is caseExact (``externalId``, ``id``); ``meta`` dates and ``id`` are
native fields; ``meta.resourceType`` is a constant of the collection.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from scim2_models import InvalidFilterException, InvalidValueException

from scim_server.core.filters import compile_filter, compile_sort
from scim_server.models import GROUPS, USERS
from tests.support.urns import ENTERPRISE

User = USERS.model
Group = GROUPS.model

NOTHING: dict[str, Any] = {"_id": {"$in": []}}
PRESENT = {"$exists": True, "$nin": [None, "", [], {}]}
ENTERPRISE_FIELD = "c.urn:ietf:params:scim:schemas:extension:enterprise:2_0:User"
ANY_ELEMENT: dict[str, Any] = {"_": {"$not": {"$in": []}}}


def cases(*rows: tuple[str, Any]) -> pytest.MarkDecorator:
    """Parametrize rows of (filter, expected query), each test named by its filter."""
    return pytest.mark.parametrize(("text", "expected"), rows, ids=[row[0] for row in rows])


@cases(
    ('userName eq "BJensen"', {"c.userName": "bjensen"}),
    ('userName ne "BJensen"', {"c.userName": {"$ne": "bjensen"}}),
    ('userName gt "M"', {"c.userName": {"$gt": "m"}}),
    ('userName ge "M"', {"c.userName": {"$gte": "m"}}),
    ('userName lt "M"', {"c.userName": {"$lt": "m"}}),
    ('userName le "M"', {"c.userName": {"$lte": "m"}}),
    ('userName co "Jen"', {"c.userName": {"$regex": "jen"}}),
    ('userName sw "BJ"', {"c.userName": {"$gte": "bj", "$lt": "bk"}}),
    ('userName ew "Sen"', {"c.userName": {"$regex": "sen\\z"}}),
)
def test_every_comparison_operator_becomes_its_mongodb_operator(
    text: str, expected: dict[str, Any]
) -> None:
    assert compile_filter(text, User) == expected


@cases(
    ('userName co "a.b"', {"c.userName": {"$regex": "a\\.b"}}),
    ('userName sw "(a|b)*"', {"c.userName": {"$gte": "(a|b)*", "$lt": "(a|b)+"}}),
    ('userName ew "$^"', {"c.userName": {"$regex": "\\$\\^\\z"}}),
)
def test_substring_operands_are_literal_text_not_patterns(
    text: str, expected: dict[str, Any]
) -> None:
    assert compile_filter(text, User) == expected


@cases(
    ('userName eq "ÉCOLE"', {"c.userName": "école"}),
    ('userName eq "Straße"', {"c.userName": "straße"}),
    ('displayName eq "ǅ"', {"c.displayName": "ǆ"}),
    ('name.familyName eq "Jensen"', {"c.name.familyName": "jensen"}),
    ('emails.value eq "BJ@Example.COM"', {"c.emails.value": "bj@example.com"}),
    (f'{ENTERPRISE}:employeeNumber eq "E1"', {f"{ENTERPRISE_FIELD}.employeeNumber": "e1"}),
    # NFC: "e" followed by a combining acute accent is the one character "é".
    ('userName eq "E\u0301cole"', {"c.userName": "\u00e9cole"}),
)
def test_case_insensitive_strings_compare_lowercased_and_nfc(
    text: str, expected: dict[str, Any]
) -> None:
    assert compile_filter(text, User) == expected


@cases(
    ('externalId eq "AbC"', {"c.externalId": "AbC"}),
    ('id eq "AbC"', {"_id": "AbC"}),
    (f'{ENTERPRISE}:manager.value eq "Mgr"', {f"{ENTERPRISE_FIELD}.manager.value": "Mgr"}),
)
def test_case_exact_attributes_keep_their_case(text: str, expected: dict[str, Any]) -> None:
    assert compile_filter(text, User) == expected


@cases(
    (
        'meta.created gt "2020-01-01T00:00:00Z"',
        {"meta.created": {"$gt": datetime(2020, 1, 1, tzinfo=UTC)}},
    ),
    (
        'meta.lastModified le "2020-01-01T00:00:00+02:00"',
        {"meta.lastModified": {"$lte": datetime(2019, 12, 31, 22, tzinfo=UTC)}},
    ),
    (
        'meta.created ge "2020-01-01T00:00:00"',
        {"meta.created": {"$gte": datetime(2020, 1, 1, tzinfo=UTC)}},
    ),
    (
        'meta.created eq "2020-06-30T12:30:00Z"',
        {"meta.created": datetime(2020, 6, 30, 12, 30, tzinfo=UTC)},
    ),
)
def test_dates_are_native_utc_datetimes_an_offsetless_one_read_as_utc(
    text: str, expected: dict[str, Any]
) -> None:
    query = compile_filter(text, User)
    assert query == expected
    (condition,) = query.values()
    value = condition if isinstance(condition, datetime) else next(iter(condition.values()))
    assert value.tzinfo == UTC


@cases(
    ("active eq true", {"c.active": True}),
    ("active eq false", {"c.active": False}),
    ('active eq "true"', {"c.active": True}),
    ("active ne true", {"c.active": {"$ne": True}}),
)
def test_booleans_compare_as_booleans(text: str, expected: dict[str, Any]) -> None:
    assert compile_filter(text, User) == expected


@cases(
    ("userName eq null", {"c.userName": None}),
    ("title ne null", {"c.title": {"$ne": None}}),
)
def test_null_compares_as_null(text: str, expected: dict[str, Any]) -> None:
    assert compile_filter(text, User) == expected


@cases(
    ("title pr", {"c.title": PRESENT}),
    ("emails pr", {"c.emails": {"$elemMatch": {"$nin": [None, "", [], {}]}}}),
    ("emails.value pr", {"c.emails": {"$elemMatch": {"value": PRESENT}}}),
    ("emails[value pr]", {"c.emails": {"$elemMatch": {"value": PRESENT}}}),
    (f"{ENTERPRISE}:employeeNumber pr", {f"{ENTERPRISE_FIELD}.employeeNumber": PRESENT}),
)
def test_pr_requires_a_non_empty_value_in_some_element(text: str, expected: dict[str, Any]) -> None:
    assert compile_filter(text, User) == expected


@cases(
    ('emails[type eq "work"]', {"c.emails": {"$elemMatch": {"type": "work"}}}),
    (
        'emails[type eq "Work" and value co "@X"]',
        {"c.emails": {"$elemMatch": {"type": "work", "value": {"$regex": "@x"}}}},
    ),
    (
        'emails[type eq "work" or primary eq true]',
        {"c.emails": {"$elemMatch": {"$or": [{"type": "work"}, {"primary": True}], **ANY_ELEMENT}}},
    ),
    (
        'emails[not (type eq "work")]',
        {"c.emails": {"$elemMatch": {"$nor": [{"type": "work"}], **ANY_ELEMENT}}},
    ),
    (
        'userName sw "a" and emails[type eq "work"]',
        {"c.userName": {"$gte": "a", "$lt": "b"}, "c.emails": {"$elemMatch": {"type": "work"}}},
    ),
)
def test_a_value_path_holds_its_conditions_to_one_element(
    text: str, expected: dict[str, Any]
) -> None:
    assert compile_filter(text, User) == expected


@cases(
    ('not (userName eq "a")', {"$nor": [{"c.userName": "a"}]}),
    ('not (not (userName eq "a"))', {"$nor": [{"$nor": [{"c.userName": "a"}]}]}),
    (
        'userName eq "x" and not (title pr)',
        {"c.userName": "x", "$nor": [{"c.title": PRESENT}]},
    ),
)
def test_not_negates_its_expression(text: str, expected: dict[str, Any]) -> None:
    assert compile_filter(text, User) == expected


@cases(
    ('userName eq "a" and title eq "b"', {"c.userName": "a", "c.title": "b"}),
    (
        'userName eq "a" and userName eq "b"',
        {"$and": [{"c.userName": "a"}, {"c.userName": "b"}]},
    ),
    ('userName eq "a" or title eq "b"', {"$or": [{"c.userName": "a"}, {"c.title": "b"}]}),
    (
        'userName eq "a" or userName eq "b" and title eq "c"',
        {"$or": [{"c.userName": "a"}, {"c.userName": "b", "c.title": "c"}]},
    ),
    (
        'userName eq "a" and userName eq "b" or title eq "c"',
        {"$or": [{"$and": [{"c.userName": "a"}, {"c.userName": "b"}]}, {"c.title": "c"}]},
    ),
    (
        '(userName eq "a" or userName eq "b") and title eq "c"',
        {"$or": [{"c.userName": "a"}, {"c.userName": "b"}], "c.title": "c"},
    ),
)
def test_and_binds_tighter_than_or_and_parentheses_group(
    text: str, expected: dict[str, Any]
) -> None:
    assert compile_filter(text, User) == expected


@cases(
    ('meta.resourceType eq "User"', {}),
    ('meta.resourceType sw "Us"', {}),
    ("meta.resourceType pr", {}),
    ('meta.resourceType eq "user"', NOTHING),
    ('meta.resourceType eq "Group"', NOTHING),
    ('not (meta.resourceType eq "User")', NOTHING),
    ('userName eq "a" or meta.resourceType eq "User"', {}),
    ('userName eq "a" and meta.resourceType eq "User"', {"c.userName": "a"}),
    ('userName eq "a" and meta.resourceType eq "Group"', NOTHING),
    ('userName eq "a" or meta.resourceType eq "Group"', {"c.userName": "a"}),
)
def test_resource_type_is_decided_without_a_stored_field(
    text: str, expected: dict[str, Any]
) -> None:
    assert compile_filter(text, User) == expected


def test_a_group_filter_compiles_against_the_group_model() -> None:
    assert compile_filter('displayName eq "Admins"', Group) == {"c.displayName": "admins"}
    assert compile_filter('meta.resourceType eq "Group"', Group) == {}


def test_an_unknown_attribute_matches_nothing_when_not_strict() -> None:
    assert compile_filter('nickName eq "x"', Group, strict=False) == NOTHING
    assert compile_filter('bogus eq "x" or userName eq "A"', User, strict=False) == {
        "c.userName": "a"
    }


@pytest.mark.parametrize(
    "text",
    [
        'userName eq "a" and (',
        'bogus eq "x"',
        'name eq "x"',
        "userName eq 1",
        'active co "t"',
        'meta.created gt "not a date"',
        'emails[type eq "a" and emails[type eq "b"]]',
        'password eq "secret"',
        'groups.value eq "g"',
        "",
    ],
)
def test_invalid_filters_raise_invalid_filter(text: str) -> None:
    with pytest.raises(InvalidFilterException):
        compile_filter(text, User)


def test_group_members_are_filtered_only_by_value_equality() -> None:
    with pytest.raises(InvalidFilterException, match="members"):
        compile_filter('members.value ne "x"', Group)


@pytest.mark.parametrize(
    ("sort_by", "field"),
    [
        ("userName", "c.userName"),
        ("name.familyName", "c.name.familyName"),
        ("emails", "c.emails.value"),
        ("meta.created", "meta.created"),
        ("id", "_id"),
        (f"{ENTERPRISE}:employeeNumber", f"{ENTERPRISE_FIELD}.employeeNumber"),
    ],
)
def test_sort_by_names_the_stored_comparison_field(sort_by: str, field: str) -> None:
    assert compile_sort(sort_by, User) == field


@pytest.mark.parametrize("sort_by", ["name", "bogus", 'emails[type eq "work"]', ""])
def test_sort_by_a_complex_unknown_or_filtered_path_is_invalid(sort_by: str) -> None:
    with pytest.raises(InvalidValueException):
        compile_sort(sort_by, User)


def test_redundant_parentheses_and_long_or_chains_cannot_exhaust_the_stack() -> None:
    depth = 2 * sys.getrecursionlimit()
    assert compile_filter("(" * depth + 'userName eq "A"' + ")" * depth, User) == {
        "c.userName": "a"
    }
    chain = " or ".join(f'userName eq "u{n}"' for n in range(depth))
    assert compile_filter(chain, User) == {"$or": [{"c.userName": f"u{n}"} for n in range(depth)]}


def test_expressions_nested_deeper_than_the_limit_are_an_invalid_filter() -> None:
    depth = 2 * sys.getrecursionlimit()
    with pytest.raises(InvalidFilterException, match="nests more than"):
        compile_filter("not (" * depth + 'userName eq "a"' + ")" * depth, User)
