"""The SCIM filter compiler: the queries it emits, what they match, and that they use indexes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.asynchronous.database import AsyncDatabase
from scim2_models import InvalidFilterException, InvalidValueException, Path, ScimFilter

from scim_server.core.filters import (
    GroupsOf,
    compile_filter,
    compile_sort,
    match_nothing,
    prefix_range,
    stored_field,
    unquoted_values_quoted,
    with_member_groups,
)
from scim_server.models import GROUPS as GROUP_KIND
from scim_server.models import USERS as USER_KIND
from scim_server.models import GroupModel, ResourceKind, UserModel, storage_key
from scim_server.storage.documents import stored_attributes
from tests.support.plans import index_scans
from tests.support.urns import ENTERPRISE
from tests.support.urns import USER as CORE_USER

EXT = f"c.{storage_key(ENTERPRISE)}"
PRESENT = {"$exists": True, "$nin": [None, "", [], {}]}
ANY_ELEMENT = {"_": {"$not": {"$in": []}}}
NOTHING = match_nothing()


# --- compiled query shapes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName eq "BJensen"', {"c.userName": "bjensen"}),
        ('externalId eq "AbC"', {"c.externalId": "AbC"}),
        ('id eq "2819c223-7f76"', {"_id": "2819c223-7f76"}),
        ('userName ne "x"', {"c.userName": {"$ne": "x"}}),
        ('title gt "B"', {"c.title": {"$gt": "b"}}),
        ('title ge "B"', {"c.title": {"$gte": "b"}}),
        ('title lt "B"', {"c.title": {"$lt": "b"}}),
        ('title le "B"', {"c.title": {"$lte": "b"}}),
        ('userName co "J.S"', {"c.userName": {"$regex": r"j\.s"}}),
        ('userName sw "J"', {"c.userName": {"$gte": "j", "$lt": "k"}}),
        ('emails sw "BJ@"', {"c.emails": {"$elemMatch": {"value": {"$gte": "bj@", "$lt": "bjA"}}}}),
        ('userName ew "Sen"', {"c.userName": {"$regex": r"sen\z"}}),
        ('externalId co "A+B"', {"c.externalId": {"$regex": r"A\+B"}}),
        ("userName co 1", NOTHING),
        ("title eq null", {"c.title": None}),
        ("title ne null", {"c.title": {"$ne": None}}),
        ("title pr", {"c.title": PRESENT}),
        ("name pr", {"c.name": PRESENT}),
        ("active eq true", {"c.active": True}),
        ('name.givenName eq "Barbara"', {"c.name.givenName": "barbara"}),
        ('emails eq "BJ@Example.com"', {"c.emails.value": "bj@example.com"}),
        ('emails.value eq "BJ@Example.com"', {"c.emails.value": "bj@example.com"}),
        ('emails.type ne "work"', {"c.emails.type": {"$ne": "work"}}),
        ("emails pr", {"c.emails": {"$elemMatch": {"$nin": [None, "", [], {}]}}}),
        ("emails.value pr", {"c.emails": {"$elemMatch": {"value": PRESENT}}}),
        ('x509Certificates eq "AAEC"', {"c.x509Certificates.value": "AAEC"}),
        (
            'meta.lastModified gt "2011-05-13T04:42:34Z"',
            {"meta.lastModified": {"$gt": datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC)}},
        ),
        (
            'meta.created le "2011-05-13T06:42:34+02:00"',
            {"meta.created": {"$lte": datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC)}},
        ),
        ('meta.resourceType eq "User"', {}),
        ('meta.resourceType eq "Group"', NOTHING),
        ('meta.resourceType ne "Group"', {}),
        ("meta.resourceType pr", {}),
        (f'{CORE_USER}:userName eq "X"', {"c.userName": "x"}),
        (f'{ENTERPRISE}:employeeNumber eq "7A"', {f"{EXT}.employeeNumber": "7a"}),
        (f'{ENTERPRISE}:manager.value eq "M-1"', {f"{EXT}.manager.value": "M-1"}),
    ],
)
def test_comparison_shapes(text: str, expected: dict[str, Any]) -> None:
    assert compile_filter(text, UserModel) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Disjoint keys merge into one document, which a compound index can serve.
        (
            'userName eq "a" and active eq true and title pr',
            {"c.userName": "a", "c.active": True, "c.title": PRESENT},
        ),
        # Conditions on one field with different operators merge into that field's document.
        (
            'userName sw "a" and userName ew "z"',
            {"c.userName": {"$gte": "a", "$lt": "b", "$regex": r"z\z"}},
        ),
        ('userName eq "a" and userName ne "b"', {"c.userName": {"$eq": "a", "$ne": "b"}}),
        (
            'userName gt "a" and userName gt "b"',
            {"$and": [{"c.userName": {"$gt": "a"}}, {"c.userName": {"$gt": "b"}}]},
        ),
        (
            'userName eq "a" or userName eq "b"',
            {"$or": [{"c.userName": "a"}, {"c.userName": "b"}]},
        ),
        ('not (userName eq "a")', {"$nor": [{"c.userName": "a"}]}),
        # and binds tighter than or.
        (
            'userName eq "a" or userName eq "b" and active eq true',
            {"$or": [{"c.userName": "a"}, {"c.userName": "b", "c.active": True}]},
        ),
        (
            '(userName eq "a" or userName eq "b") and active eq true',
            {"$or": [{"c.userName": "a"}, {"c.userName": "b"}], "c.active": True},
        ),
        (
            '(title pr or nickName pr) and (userName eq "a" or userName eq "b")',
            {
                "$and": [
                    {"$or": [{"c.title": PRESENT}, {"c.nickName": PRESENT}]},
                    {"$or": [{"c.userName": "a"}, {"c.userName": "b"}]},
                ]
            },
        ),
        ('meta.resourceType eq "User" and userName eq "a"', {"c.userName": "a"}),
        ('meta.resourceType eq "Group" and userName eq "a"', NOTHING),
        ('meta.resourceType eq "User" or userName eq "a"', {}),
        ('not (meta.resourceType eq "User")', NOTHING),
    ],
)
def test_logical_shapes(text: str, expected: dict[str, Any]) -> None:
    assert compile_filter(text, UserModel) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'emails[type eq "work" and value co "@X"]',
            {"c.emails": {"$elemMatch": {"type": "work", "value": {"$regex": "@x"}}}},
        ),
        ("emails[primary eq true]", {"c.emails": {"$elemMatch": {"primary": True}}}),
        ("emails[value pr]", {"c.emails": {"$elemMatch": {"value": PRESENT}}}),
        (
            'emails[type eq "work" or primary eq true]',
            {
                "c.emails": {
                    "$elemMatch": {
                        "$or": [{"type": "work"}, {"primary": True}],
                        **ANY_ELEMENT,
                    }
                }
            },
        ),
        (
            'emails[not (type eq "work")]',
            {"c.emails": {"$elemMatch": {"$nor": [{"type": "work"}], **ANY_ELEMENT}}},
        ),
        (
            'emails[type eq "work"] and emails[type eq "home"]',
            {
                "$and": [
                    {"c.emails": {"$elemMatch": {"type": "work"}}},
                    {"c.emails": {"$elemMatch": {"type": "home"}}},
                ]
            },
        ),
        (
            f'{CORE_USER}:emails[type eq "work"]',
            {"c.emails": {"$elemMatch": {"type": "work"}}},
        ),
    ],
)
def test_value_path_shapes(text: str, expected: dict[str, Any]) -> None:
    assert compile_filter(text, UserModel) == expected


def test_group_display_name() -> None:
    assert compile_filter('displayName eq "Admins"', GroupModel) == {"c.displayName": "admins"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('foo eq "x"', NOTHING),
        ('not (foo eq "x")', {}),
        ('foo eq "x" or userName eq "a"', {"c.userName": "a"}),
        ('foo eq "x" and userName eq "a"', NOTHING),
        ("foo pr", NOTHING),
        ('foo[bar eq "x"]', NOTHING),
        ('emails[foo eq "x"]', NOTHING),
        ('emails[not (foo eq "x")]', {"c.emails": {"$elemMatch": ANY_ELEMENT}}),
        ('urn:example:unknown:Thing:attr eq "x"', NOTHING),
    ],
)
def test_unknown_attributes_match_nothing_when_not_strict(
    text: str, expected: dict[str, Any]
) -> None:
    assert compile_filter(text, UserModel, strict=False) == expected


@pytest.mark.parametrize(
    "text",
    [
        "userName eq",
        'userName eq "unterminated',
        '(userName eq "a"',
        'userName eq "a" and',
        "",
        "userName xx 1",
        'foo eq "x"',
        'name.foo eq "x"',
        'emails[foo eq "x"]',
        'emails[type.value eq "x"]',
        "active gt true",
        'active co "t"',
        'meta.created gt "not a date"',
        'emails eq "not an email"',
        'name[givenName eq "x"]',
        'name eq "x"',
        'password eq "x"',
        'groups eq "x"',
        'groups[value eq "x"]',
        'meta.version eq "W/1"',
        "meta.location pr",
        'schemas eq "x"',
    ],
)
def test_invalid_user_filters(text: str) -> None:
    with pytest.raises(InvalidFilterException) as info:
        compile_filter(text, UserModel)
    assert info.value.detail


@pytest.mark.parametrize(
    "text", ["members pr", 'members.display eq "x"', 'members.value sw "x"', 'members[type eq "x"]']
)
def test_members_is_filterable_only_by_value_equality(text: str) -> None:
    with pytest.raises(InvalidFilterException, match="members"):
        compile_filter(text, GroupModel)
    with pytest.raises(InvalidFilterException, match="members"):
        compile_filter(text, GroupModel, strict=False)


@pytest.mark.parametrize(
    "text", ['members eq "x"', 'members.value eq "x"', 'members[value eq "x"]']
)
def test_a_member_value_compiles_to_the_groups_holding_it(text: str) -> None:
    """The member's groups are put in before the query runs (``with_member_groups``)."""
    compiled = compile_filter(text, GroupModel)
    assert compiled == {"_id": {"$in": GroupsOf("x")}}
    assert with_member_groups(compiled, {"x": ["g2", "g1"]}) == {"_id": {"$in": ["g1", "g2"]}}


def test_stored_field() -> None:
    def field(path: str) -> str:
        binding = Path[UserModel](path).resolve()
        assert binding is not None
        return stored_field(binding)

    assert field("id") == "_id"
    assert field("meta.lastModified") == "meta.lastModified"
    assert field("name.givenName") == "c.name.givenName"
    assert field(f"{ENTERPRISE}:manager.value") == f"{EXT}.manager.value"
    with pytest.raises(InvalidFilterException):
        field("meta.resourceType")


@pytest.mark.parametrize(
    ("sort_by", "expected"),
    [
        ("userName", "c.userName"),
        ("USERNAME", "c.userName"),
        ("name.familyName", "c.name.familyName"),
        ("meta.created", "meta.created"),
        ("meta.lastModified", "meta.lastModified"),
        ("emails.value", "c.emails.value"),
        ("emails", "c.emails.value"),
        ("id", "_id"),
        (f"{ENTERPRISE}:employeeNumber", f"{EXT}.employeeNumber"),
        (f"{CORE_USER}:userName", "c.userName"),
    ],
)
def test_compile_sort(sort_by: str, expected: str) -> None:
    assert compile_sort(sort_by, UserModel) == expected


@pytest.mark.parametrize(
    "sort_by",
    ["foo", "name", "name.foo", 'emails[type eq "work"]', "groups", "meta.version", "a b", ""],
)
def test_compile_sort_rejects(sort_by: str) -> None:
    with pytest.raises(InvalidValueException):
        compile_sort(sort_by, UserModel)


# --- behaviour on a real database -----------------------------------------------------


def _document(
    doc_id: str, modified: datetime, raw: dict[str, Any], comparison: dict[str, Any]
) -> dict[str, Any]:
    """A stored resource: ``raw`` as sent, ``comparison`` as the storage keeps it for filters
    (written out literally: caseExact=false strings lowercased, every other value as sent)."""
    escape = {ENTERPRISE: storage_key(ENTERPRISE)}
    return {
        "_id": doc_id,
        "tenant": "t",
        "meta": {"created": modified, "lastModified": modified, "version": 1},
        "r": {escape.get(k, k): v for k, v in raw.items()},
        "c": {escape.get(k, k): v for k, v in comparison.items()},
    }


USERS = [
    _document(
        "u1",
        datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC),
        {
            "userName": "BJensen",
            "externalId": "Ext-1",
            "title": "Tour Guide",
            "active": True,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "BJensen@Example.com", "type": "work", "primary": True},
                {"value": "babs@home.org", "type": "home"},
            ],
            ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": "MGR-1"}},
        },
        {
            "userName": "bjensen",
            "externalId": "Ext-1",
            "title": "tour guide",
            "active": True,
            "name": {"givenName": "barbara", "familyName": "jensen"},
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": True},
                {"value": "babs@home.org", "type": "home"},
            ],
            ENTERPRISE: {"employeeNumber": "701984", "manager": {"value": "MGR-1"}},
        },
    ),
    _document(
        "u2",
        datetime(2012, 1, 1, tzinfo=UTC),
        {
            "userName": "JSmith",
            "externalId": "ext-1",
            "title": "",
            "active": False,
            "emails": [{"value": "js@example.com", "type": "home"}],
            ENTERPRISE: {"employeeNumber": "42"},
        },
        {
            "userName": "jsmith",
            "externalId": "ext-1",
            "title": "",
            "active": False,
            "emails": [{"value": "js@example.com", "type": "home"}],
            ENTERPRISE: {"employeeNumber": "42"},
        },
    ),
    _document(
        "u3",
        datetime(2020, 6, 1, tzinfo=UTC),
        {
            "userName": "ali.ce",
            "active": True,
            "emails": [{"value": "alice@work.example.org", "type": "work"}],
        },
        {
            "userName": "ali.ce",
            "active": True,
            "emails": [{"value": "alice@work.example.org", "type": "work"}],
        },
    ),
    _document(
        "u4",
        datetime(2021, 1, 1, tzinfo=UTC),
        {"userName": "bob", "nickName": "Bobby\n", "title": None, "emails": []},
        {"userName": "bob", "nickName": "bobby\n", "title": None, "emails": []},
    ),
]
ADMINS = _document(
    "g1", datetime(2020, 1, 1, tzinfo=UTC), {"displayName": "Admins"}, {"displayName": "admins"}
)
ALL = {"u1", "u2", "u3", "u4"}


@pytest.fixture
async def users(mongo_db: AsyncDatabase[Any]) -> Any:
    collection = mongo_db["users"]
    await collection.insert_many([dict(doc) for doc in USERS])
    return collection


async def _ids(collection: Any, text: str, *, strict: bool = True) -> set[str]:
    query = {"tenant": "t", **compile_filter(text, UserModel, strict=strict)}
    return {doc["_id"] async for doc in collection.find(query, {"_id": 1})}


MATCH_CASES: list[tuple[str, set[str]]] = [
    # case-insensitive userName, case-exact externalId
    ('userName eq "bjensen"', {"u1"}),
    ('userName eq "BJENSEN"', {"u1"}),
    ('externalId eq "ext-1"', {"u2"}),
    ('externalId eq "Ext-1"', {"u1"}),
    ('externalId eq "EXT-1"', set()),
    ('id eq "u3"', {"u3"}),
    # substring operators, with regex metacharacters and anchors taken literally
    ('userName co "ENS"', {"u1"}),
    ('userName co "."', {"u3"}),
    ('userName sw "J"', {"u2"}),
    ('userName ew "SMITH"', {"u2"}),
    ('userName ew "Jensen"', {"u1"}),
    ('nickName ew "bobby"', set()),
    ('nickName co "bobby"', {"u4"}),
    ('externalId sw "e"', {"u2"}),
    # presence
    ("title pr", {"u1"}),
    ("emails pr", {"u1", "u2", "u3"}),
    ("name pr", {"u1"}),
    (f"{ENTERPRISE}:manager pr", {"u1"}),
    ("title eq null", {"u3", "u4"}),
    ("title ne null", {"u1", "u2"}),
    # not, precedence, parentheses
    ('not (userName eq "bjensen")', {"u2", "u3", "u4"}),
    ("not (title pr)", {"u2", "u3", "u4"}),
    ('userName eq "bob" or userName eq "jsmith" and active eq true', {"u4"}),
    ('(userName eq "bob" or userName eq "jsmith") and active eq false', {"u2"}),
    ('userName sw "b" and not (userName eq "bob")', {"u1"}),
    # value paths select within one element; plain paths match any element each
    ('emails[type eq "work" and value co "example.com"]', {"u1"}),
    ('emails[type eq "home" and value co "@example.com"]', {"u2"}),
    ('emails.type eq "home" and emails.value co "@example.com"', {"u1", "u2"}),
    ('emails[type eq "work" or primary eq true]', {"u1", "u3"}),
    ('emails[not (type eq "work")]', {"u1", "u2"}),
    ("emails[value pr]", {"u1", "u2", "u3"}),
    ('emails.value eq "BJENSEN@example.com"', {"u1"}),
    ('emails eq "js@EXAMPLE.com"', {"u2"}),
    ('emails.value ew ".org"', {"u1", "u3"}),
    # ne on a multi-valued attribute: no element equals
    ('emails.type ne "work"', {"u2", "u4"}),
    # URN-qualified paths
    (f'{CORE_USER}:userName eq "JSMITH"', {"u2"}),
    (f'{ENTERPRISE}:employeeNumber eq "42"', {"u2"}),
    (f'{ENTERPRISE}:manager.value eq "MGR-1"', {"u1"}),
    (f'{ENTERPRISE}:manager.value eq "mgr-1"', set()),
    # dates and booleans
    ('meta.lastModified gt "2011-05-13T04:42:34Z"', {"u2", "u3", "u4"}),
    ('meta.lastModified ge "2011-05-13T04:42:34Z"', ALL),
    ('meta.lastModified eq "2011-05-13T06:42:34+02:00"', {"u1"}),
    ('meta.created lt "2020-06-01T00:00:00Z"', {"u1", "u2"}),
    ("active eq true", {"u1", "u3"}),
    ("active eq false", {"u2"}),
    ("active ne true", {"u2", "u4"}),
    # resource type
    ('meta.resourceType eq "User"', ALL),
    ('meta.resourceType eq "Group"', set()),
    ('not (meta.resourceType eq "Group") and active eq true', {"u1", "u3"}),
]


@pytest.mark.parametrize(("text", "expected"), MATCH_CASES)
async def test_matches(users: Any, text: str, expected: set[str]) -> None:
    assert await _ids(users, text) == expected


def _sent(document: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a stored document as the client sent them (extension URN unescaped)."""
    return {
        ENTERPRISE if key == storage_key(ENTERPRISE) else key: value
        for key, value in document["r"].items()
    }


@pytest.mark.parametrize(
    ("kind", "document"),
    [*((USER_KIND, user) for user in USERS), (GROUP_KIND, ADMINS)],
    ids=[*(user["_id"] for user in USERS), ADMINS["_id"]],
)
def test_the_documents_here_are_stored_as_the_storage_writes_them(
    kind: ResourceKind, document: dict[str, Any]
) -> None:
    assert stored_attributes(kind, _sent(document)) == (document["r"], document["c"])


def _as_resource(document: dict[str, Any]) -> Any:
    """The resource a stored document holds, as the SCIM layer would rebuild it."""
    raw = _sent(document)
    meta = document["meta"]
    return UserModel.model_validate(
        {
            "schemas": [CORE_USER, *([ENTERPRISE] if ENTERPRISE in raw else [])],
            "id": document["_id"],
            "meta": {
                "resourceType": "User",
                "created": meta["created"].isoformat(),
                "lastModified": meta["lastModified"].isoformat(),
            },
            **raw,
        }
    )


@pytest.mark.parametrize(("text", "expected"), MATCH_CASES)
def test_reference_evaluator_agrees(text: str, expected: set[str]) -> None:
    """scim2-models' in-memory ``ScimFilter.match`` selects what the query selects."""
    scim_filter = ScimFilter[UserModel](text)
    matched = {doc["_id"] for doc in USERS if scim_filter.match(_as_resource(doc))}
    assert matched == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('members eq "x" or userName eq "bob"', {"u4"}),
        ('not (members eq "x")', ALL),
        ('not (displayName eq "x" and members pr)', ALL),
        ('emails[foo eq "x"]', set()),
        ('emails[not (foo eq "x")]', {"u1", "u2", "u3"}),
    ],
)
async def test_unknown_attributes_across_resource_types(
    users: Any, text: str, expected: set[str]
) -> None:
    assert await _ids(users, text, strict=False) == expected


async def test_sort_is_case_insensitive(users: Any) -> None:
    cursor = users.find({"tenant": "t"}, {"_id": 1}).sort(compile_sort("userName", UserModel), 1)
    assert [doc["_id"] async for doc in cursor] == ["u3", "u1", "u4", "u2"]


async def test_group_display_name_matches(mongo_db: AsyncDatabase[Any]) -> None:
    groups = mongo_db["groups"]
    await groups.insert_many(
        [
            ADMINS,
            _document(
                "g2",
                datetime(2020, 1, 1, tzinfo=UTC),
                {"displayName": "Tour Guides"},
                {"displayName": "tour guides"},
            ),
        ]
    )
    query = compile_filter('displayName eq "ADMINS" or displayName co "guide"', GroupModel)
    assert {doc["_id"] async for doc in groups.find(query)} == {"g1", "g2"}


# --- index use ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("collection", "model", "fields", "text"),
    [
        ("users", UserModel, ["c.userName"], 'userName eq "BJENSEN"'),
        ("users", UserModel, ["c.emails.value"], 'emails.value eq "js@example.com"'),
        ("users", UserModel, ["c.emails.value"], 'emails eq "js@example.com"'),
        ("users", UserModel, ["c.externalId"], 'externalId eq "ext-1"'),
        ("groups", GroupModel, ["c.displayName"], 'displayName eq "Admins"'),
        # sw is a range on the comparison form, which SecantusDB plans (not a prefix $regex).
        ("users", UserModel, ["c.userName"], 'userName sw "BJ"'),
        ("users", UserModel, ["c.externalId"], 'externalId sw "ext"'),
        ("groups", GroupModel, ["c.displayName"], 'displayName sw "adm"'),
        # A merged "and" is one plain document, so a compound index serves it. (SecantusDB
        # only uses an index whose key prefix holds every field of the query.)
        (
            "users",
            UserModel,
            ["c.userName", "c.active"],
            'userName eq "bjensen" and active eq true',
        ),
    ],
)
async def test_index_is_used(
    mongo_db: AsyncDatabase[Any], collection: str, model: type, fields: list[str], text: str
) -> None:
    target = mongo_db[collection]
    await target.insert_many(
        [dict(doc) for doc in USERS]
        if model is UserModel
        else [
            ADMINS,
        ]
    )
    index = [("tenant", 1), *((field, 1) for field in fields)]
    await target.create_index(index)
    query = {"tenant": "t", **compile_filter(text, model)}
    explain = await target.find(query).explain()
    winning = explain["queryPlanner"]["winningPlan"]
    key_patterns = [dict(scan["keyPattern"]) for scan in index_scans(winning)]
    assert dict(index) in key_patterns, winning


# --- the unquoted-value dialect (Entra) --------------------------------------------------


@pytest.mark.parametrize(
    ("unquoted", "quoted"),
    [
        ("externalId eq jyoung", 'externalId eq "jyoung"'),
        ("userName eq jyoung@example.com", 'userName eq "jyoung@example.com"'),
        ("userName EQ JYoung", 'userName EQ "JYoung"'),
        ("userName eq a\\b", 'userName eq "a\\\\b"'),
        ("userName sw j and active eq true", 'userName sw "j" and active eq true'),
        ("(userName eq a) or (userName eq b)", '(userName eq "a") or (userName eq "b")'),
        ('emails[type eq work and value co "@x"]', 'emails[type eq "work" and value co "@x"]'),
        ("externalId eq 12ab", 'externalId eq "12ab"'),
        ("externalId eq trueish", 'externalId eq "trueish"'),
        (
            "meta.lastModified gt 2011-05-13T04:42:34Z",
            'meta.lastModified gt "2011-05-13T04:42:34Z"',
        ),
    ],
)
def test_unquoted_value_reads_as_a_string(unquoted: str, quoted: str) -> None:
    assert compile_filter(unquoted, UserModel) == compile_filter(quoted, UserModel)


@pytest.mark.parametrize(
    "text",
    [
        "active eq true",
        "active eq FALSE",
        "title eq null",
        "userName eq 42",
        "userName eq -1.5e3",
        "title pr",
        'userName eq "eq x" or title eq "a ) b"',
        'userName eq "say \\"hi\\" eq x"',
    ],
)
def test_literals_and_quoted_values_are_left_alone(text: str) -> None:
    assert unquoted_values_quoted(text) == text


@pytest.mark.parametrize("text", ["userName eq and", "userName eq or", "userName eq not"])
def test_an_operator_word_is_not_read_as_a_value(text: str) -> None:
    with pytest.raises(InvalidFilterException):
        compile_filter(text, UserModel)


# --- sw: a range on the comparison form ------------------------------------------------

EDGE_TEXT = st.text(
    st.sampled_from(
        [
            *("a", "b", "z", "é", ".", "*", "^", "\x00"),
            *("\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0010fffe", "\U0010ffff"),
        ]
    ),
    max_size=4,
)
"""Strings around the places a prefix's upper bound could go wrong: regex metacharacters,
the code points either side of the surrogates, U+FFFF, the astral planes and U+10FFFF."""


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(prefix=EDGE_TEXT, stored=st.lists(EDGE_TEXT, max_size=12))
async def test_the_sw_range_selects_exactly_the_strings_with_the_prefix(
    mongo_db: AsyncDatabase[Any], prefix: str, stored: list[str]
) -> None:
    values: list[Any] = [*stored, 7, None, True]
    await mongo_db.prefixes.delete_many({})
    await mongo_db.prefixes.insert_many([{"_id": i, "v": v} for i, v in enumerate(values)])
    found = {doc["_id"] async for doc in mongo_db.prefixes.find({"v": prefix_range(prefix)})}
    expected = {i for i, v in enumerate(values) if isinstance(v, str) and v.startswith(prefix)}
    assert found == expected


async def test_sw_on_emails_holds_the_range_to_one_address(users: Any) -> None:
    # "a@x" and "z@x" straddle the range of "m": no single address starts with it.
    await users.insert_one(
        {"_id": "u9", "tenant": "t", "c": {"emails": [{"value": "a@x"}, {"value": "z@x"}]}}
    )
    query = {"tenant": "t", **compile_filter('emails sw "m"', UserModel)}
    assert [doc["_id"] async for doc in users.find(query)] == []
