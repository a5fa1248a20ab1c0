"""What an event says, decided in memory: its type, the attributes it names and values, and
the version each pending event is at, read off its document."""

from __future__ import annotations

from datetime import UTC, datetime

from scim_server.core.events import Event, emission
from scim_server.models import GROUPS, USERS
from scim_server.storage.events import (
    GROUP_MEMBERS_ADDED,
    USER_DELETED,
    USER_UPDATED,
    Client,
    Emission,
    deletion_mark,
    pending_document,
    pending_event,
)

OKTA = Client("scim", "token-1", "okta")


def test_an_update_turning_active_off_or_on_is_a_deactivation_or_a_reactivation() -> None:
    active, inactive = {"userName": "ada", "active": True}, {"userName": "ada", "active": False}
    assert emission(USERS, OKTA, active, inactive).type == "user.deactivated"
    assert emission(USERS, OKTA, inactive, {"userName": "ada"}).type == "user.reactivated"
    assert emission(USERS, OKTA, {"userName": "ada"}, active).type == "user.updated"
    assert emission(USERS, OKTA, None, inactive).type == "user.created"
    assert emission(GROUPS, OKTA, None, {"displayName": "eng"}).type == "group.created"


def test_an_event_names_what_changed_and_values_all_but_the_password() -> None:
    changed = emission(
        USERS,
        OKTA,
        {"userName": "ada", "title": "Eng", "nickName": "A"},
        {"userName": "ada", "title": "CTO", "displayName": "Ada"},
        password_set=True,
    )
    assert changed.attributes == ("displayName", "nickName", "password", "title")
    assert dict(changed.values) == {"displayName": "Ada", "nickName": None, "title": "CTO"}


def test_pending_events_are_at_the_versions_counted_back_from_the_documents() -> None:
    now = datetime(2026, 12, 2, tzinfo=UTC)
    document = {
        "_id": "g1",
        "tenant": "acme",
        "meta": {"version": 7},
        "ev": [
            pending_event(
                Emission(USER_UPDATED, OKTA, ("displayName",), {"displayName": "x"}), now
            ),
            pending_event(Emission(GROUP_MEMBERS_ADDED, OKTA, members=("u1", "u2")), now),
        ],
    }
    pending = pending_document("Group", document)
    assert [event.version for event in pending.events] == [6, 7]
    assert not pending.deleting
    added = Event.of(pending.events[1]).to_json()
    assert added["members"] == ["u1", "u2"]
    assert added["client"] == {"via": "scim", "token_id": "token-1", "idp": "okta"}
    assert added["resource"] == {"type": "Group", "id": "g1", "version": 7}
    # The same pending event read again (by another relay) has the same id.
    assert pending_document("Group", document).events[1].id == pending.events[1].id


def test_a_deletion_mark_moves_the_events_read_then_its_own_at_the_next_version() -> None:
    """What the deleter moves once its mark landed on the version it read: the events it read,
    then the mark's, each with the id any relay reading the marked document gives it."""
    now = datetime(2026, 12, 2, tzinfo=UTC)
    updated = pending_event(Emission(USER_UPDATED, OKTA, ("title",), {"title": "CTO"}), now)
    read = {"_id": "u1", "tenant": "acme", "meta": {"version": 4}, "ev": [updated]}

    update, marked = deletion_mark(
        "User", pending_document("User", read), Emission(USER_DELETED, OKTA), now
    )

    assert update["$set"]["dl"] is True
    assert update["$inc"] == {"meta.version": 1}
    (pushed,) = update["$push"]["ev"]["$each"]
    stored = {**read, "meta": {"version": 5}, "ev": [updated, pushed], "dl": True}
    assert marked == pending_document("User", stored)
    assert [(event.type, event.version) for event in marked.events] == [
        (USER_UPDATED, 4),
        (USER_DELETED, 5),
    ]
