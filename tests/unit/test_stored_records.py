"""A resource state laid out for storage reads back as the same typed record."""

from __future__ import annotations

from datetime import UTC, datetime

from scim_server.models import USERS
from scim_server.storage.documents import (
    Standing,
    new_document,
    standing,
    stored_form,
    stored_resource,
)
from scim_server.storage.events import USER_CREATED, Client, Emission
from tests.support.urns import ENTERPRISE

CREATED = Emission(USER_CREATED, Client("scim"))


def test_a_stored_user_reads_back_as_the_attributes_written_with_extensions_by_urn() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    written = {
        "schemas": [USERS.schema, ENTERPRISE],
        "id": "ignored",
        "password": "never stored",
        "userName": "Ada",
        "displayName": "Ada Lovelace",
        ENTERPRISE: {"employeeNumber": "7"},
    }
    document = new_document("acme", "u1", stored_form(USERS, written), "hash", now, 1, CREATED)
    record = stored_resource(document)
    assert (record.id, record.version, record.created, record.last_modified) == ("u1", 1, now, now)
    assert dict(record.attributes) == {
        "userName": "Ada",
        "displayName": "Ada Lovelace",
        ENTERPRISE: {"employeeNumber": "7"},
    }
    assert record.password_hash == "hash"
    assert record.name == "Ada Lovelace"
    assert not record.member_of


def test_no_password_stores_no_hash_and_a_membership_hint_reads_as_member_of() -> None:
    form = stored_form(USERS, {"userName": "ada"})
    document = new_document("acme", "u1", form, None, datetime.now(UTC), 1, CREATED)
    assert "pw" not in document
    assert stored_resource(document).password_hash is None
    assert stored_resource({**document, "gm": 2}).member_of


def test_a_user_written_inactive_records_when_and_an_active_one_does_not() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    inactive = new_document(
        "acme", "u1", stored_form(USERS, {"userName": "a", "active": False}), None, now, 1, CREATED
    )
    assert standing(inactive) == Standing(user_name="a", active=False, deactivated=now)
    form = stored_form(USERS, {"userName": "b"})
    active = new_document("acme", "u2", form, None, now, 1, CREATED)
    assert standing(active) == Standing(user_name="b", active=True, deactivated=None)
