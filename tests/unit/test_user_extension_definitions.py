"""A tenant's User extension definition: what it builds, how it is stored, what may change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from scim2_models import InvalidValueException

from scim_server.core.events import Event
from scim_server.core.ssf.sets import CREATE_FULL, StreamView, event_sets
from scim_server.core.user_extensions import definitions_key, parse_definition, reshaped, users_kind
from scim_server.models import USERS, scim_key, storage_key
from scim_server.storage.documents import new_document, stored_form, stored_resource
from scim_server.storage.events import USER_CREATED, Client, Emission
from tests.support.urns import ENTERPRISE, USER
from tests.support.user_extensions import ACME, ACME_SCHEMA


def acme(**changes: Any) -> dict[str, Any]:
    """``ACME_SCHEMA`` parsed, its ``level`` attribute with ``changes``."""
    attributes = [
        {**attribute, **changes} if attribute["name"] == "level" else attribute
        for attribute in ACME_SCHEMA["attributes"]
    ]
    return parse_definition(ACME, {**ACME_SCHEMA, "attributes": attributes})


def test_an_extension_urn_is_stored_under_a_name_that_reads_back_as_the_urn() -> None:
    stored = storage_key(ACME)
    assert "." not in stored and stored != ACME
    assert scim_key(stored) == ACME
    assert storage_key(ENTERPRISE) == ENTERPRISE.replace(".", "_")  # as it always was
    assert scim_key(storage_key(ENTERPRISE)) == ENTERPRISE
    assert scim_key("userName") == "userName"


def test_a_user_of_the_tenants_model_reads_back_with_its_extension_by_urn() -> None:
    kind = users_kind(definitions_key([acme()]))
    written = {"schemas": [USER, ACME], "userName": "ada", ACME: {"badge": "B-1", "level": 3}}
    now = datetime(2026, 1, 2, tzinfo=UTC)
    form = stored_form(kind, written)
    document = new_document(
        "acme", "u1", form, None, now, 1, Emission(USER_CREATED, Client("scim"))
    )
    assert dict(stored_resource(document).attributes) == {
        "userName": "ada",
        ACME: {"badge": "B-1", "level": 3},
    }


def test_a_datetime_is_compared_as_an_instant_in_utc() -> None:
    kind = users_kind(definitions_key([acme()]))
    written = {"userName": "ada", ACME: {"hired": "2024-05-01T11:00:00+02:00"}}
    comparison = stored_form(kind, written).comparison
    assert comparison[storage_key(ACME)]["hired"] == datetime(2024, 5, 1, 9, tzinfo=UTC)


def test_the_same_definitions_build_the_same_model_and_none_builds_users() -> None:
    assert users_kind(definitions_key([])) is USERS
    kind = users_kind(definitions_key([acme()]))
    assert kind is users_kind(definitions_key([acme()]))
    assert kind.name == USERS.name and kind.extensions == (ENTERPRISE, ACME)


@pytest.mark.parametrize(
    ("changes", "attributes"),
    [
        ({"description": "Seniority", "required": True, "returned": "request"}, []),
        ({"mutability": "readOnly", "canonicalValues": ["1", "2"]}, []),
        ({"name": "LEVEL"}, ["level"]),  # stored, filtered and sorted under its spelling
        ({"type": "decimal"}, ["level"]),
        ({"multiValued": True}, ["level"]),
        ({"caseExact": True}, ["level"]),
    ],
)
def test_what_changes_how_stored_values_read_is_a_reshape(
    changes: dict[str, Any], attributes: list[str]
) -> None:
    assert reshaped(acme(), acme(**changes)) == attributes


def test_a_removed_attribute_or_a_changed_sub_attribute_is_a_reshape() -> None:
    before = acme()
    without = {**before, "attributes": [a for a in before["attributes"] if a["name"] != "badge"]}
    assert reshaped(before, without) == ["badge"]
    site = next(a for a in before["attributes"] if a["name"] == "site")
    floor_text = {
        **site,
        "subAttributes": [{**s, "type": "string"} for s in site["subAttributes"]],
    }
    changed = [floor_text if a["name"] == "site" else a for a in before["attributes"]]
    assert reshaped(before, {**before, "attributes": changed}) == ["site"]


def test_a_definition_without_multi_valued_reads_as_single_valued() -> None:
    definition = parse_definition(ACME, {"attributes": [{"name": "badge", "type": "string"}]})
    assert definition["attributes"][0]["multiValued"] is False
    assert definition["name"] == "User"  # the URN's last part, when the schema names none


def test_a_definition_that_is_not_an_object_is_invalid() -> None:
    with pytest.raises(InvalidValueException):
        parse_definition(ACME, None)


def test_a_users_full_create_set_lists_the_schema_of_each_extension_it_carries() -> None:
    event = Event(
        id="e-1",
        tenant="acme",
        sequence=1,
        type=USER_CREATED,
        time=datetime(2026, 1, 2, tzinfo=UTC),
        resource_type=USERS.name,
        resource_id="u1",
        version=1,
        attributes=(ACME, ENTERPRISE, "userName"),
        values={"userName": "ada", ENTERPRISE: {"department": "R&D"}, ACME: {"badge": "B-1"}},
        members=(),
        client=Client("scim"),
    )
    stream = StreamView(
        "s1", "https://scim.example.com/ssf/acme", "receiver", frozenset({CREATE_FULL})
    )
    (created,) = event_sets(event, stream)
    data = created.claims["events"][CREATE_FULL]["data"]
    assert sorted(data["schemas"]) == sorted([USER, ENTERPRISE, ACME])
    assert data[ACME] == {"badge": "B-1"}
