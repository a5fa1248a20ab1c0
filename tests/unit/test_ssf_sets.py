"""What a stream's receiver is told of each event, decided in memory: the SETs an outbox event
makes (RFC 9967, CAEP, RISC), each signed and decoded with pyjwt against the JWKS, every claim
checked; and the RFC 8935 push request and the meaning of a receiver's answer."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import jwt
import pytest

from scim_server.core.events import Event
from scim_server.core.ssf.keys import SigningKey
from scim_server.core.ssf.push import Outcome, push_outcome, push_request
from scim_server.core.ssf.sets import (
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    ACTIVATE,
    CREATE_FULL,
    CREATE_NOTICE,
    DEACTIVATE,
    DELETE,
    EVENTS_SUPPORTED,
    PATCH_FULL,
    PATCH_NOTICE,
    SESSION_REVOKED,
    VERIFICATION,
    StreamView,
    event_sets,
    events_delivered,
    sequence_of,
    verification_set,
)
from scim_server.core.sso.oidc import new_client_key
from scim_server.models import USERS
from scim_server.storage.events import Client
from scim_server.storage.ssf import Delivery

ISSUER = "https://scim.example.com/ssf/acme"
AT = datetime(2026, 12, 1, 5, 0, 0, tzinfo=UTC)
OKTA = Client("scim", "token-1", "okta")
FULL = frozenset(EVENTS_SUPPORTED) - {CREATE_NOTICE, PATCH_NOTICE}
NOTICE = frozenset(EVENTS_SUPPORTED) - {CREATE_FULL, PATCH_FULL}
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@cache
def _key() -> SigningKey:
    return SigningKey(new_client_key())


def _stream(delivered: frozenset[str] = FULL) -> StreamView:
    return StreamView("s1", ISSUER, "receiver-1", delivered)


def _event(kind: str, resource: str = "User", **fields: Any) -> Event:
    values = fields.pop("values", {})
    return Event(
        id="e-42",
        tenant="acme",
        sequence=42,
        type=kind,
        time=AT,
        resource_type=resource,
        resource_id="u1" if resource == "User" else "g1",
        version=fields.pop("version", 3),
        attributes=fields.pop("attributes", tuple(sorted(values))),
        values=values,
        members=fields.pop("members", ()),
        client=fields.pop("client", OKTA),
    )


def _decoded(event: Event, stream: StreamView | None = None) -> list[dict[str, Any]]:
    """The event's SETs on the stream, signed, then verified as a receiver would."""
    stream = stream or _stream()
    keys = jwt.PyJWKSet.from_dict(_key().jwks())
    decoded = []
    for item in event_sets(event, stream):
        token = _key().sign(item.claims)
        header = jwt.get_unverified_header(token)
        assert header == {"alg": "RS256", "typ": "secevent+jwt", "kid": _key().kid}
        claims = jwt.decode(
            token,
            keys[header["kid"]].key,
            algorithms=["RS256"],
            audience="receiver-1",
            issuer=ISSUER,
        )
        assert claims["jti"] == item.jti
        decoded.append(claims)
    return decoded


def test_a_users_creation_is_one_full_create_set_with_every_claim() -> None:
    event = _event(
        "user.created",
        values={"userName": "ada", "title": "Eng"},
        attributes=("password", "title", "userName"),
    )
    (claims,) = _decoded(event)
    assert claims == {
        "iss": ISSUER,
        "aud": "receiver-1",
        "iat": int(AT.timestamp()),
        "jti": "s1.42.scim",
        "txn": "e-42",
        "sub_id": {"format": "scim", "uri": "/Users/u1"},
        "events": {
            CREATE_FULL: {
                "data": {
                    "schemas": [USERS.schema],
                    "id": "u1",
                    "title": "Eng",
                    "userName": "ada",
                },
                "version": 'W/"3"',
            }
        },
    }


def test_a_notice_stream_is_told_the_names_of_what_changed_never_the_values() -> None:
    created = _event(
        "user.created", values={"userName": "ada"}, attributes=("password", "userName")
    )
    updated = _event("user.updated", values={"title": "CTO"})
    assert [claims["events"] for claims in _decoded(created, _stream(NOTICE))] == [
        {CREATE_NOTICE: {"attributes": ["password", "userName"], "version": 'W/"3"'}}
    ]
    assert [claims["events"] for claims in _decoded(updated, _stream(NOTICE))] == [
        {PATCH_NOTICE: {"attributes": ["title"], "version": 'W/"3"'}}
    ]


def test_an_update_is_a_patch_request_that_replays_it() -> None:
    event = _event("user.updated", values={"title": "CTO", "nickName": None})
    (claims,) = _decoded(event)
    assert claims["events"][PATCH_FULL]["data"] == {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": "title", "value": "CTO"},
            {"op": "remove", "path": "nickName"},
        ],
    }


def test_members_added_or_removed_are_a_patch_of_the_group() -> None:
    added = _event("group.members_added", "Group", members=("u1", "u2"), attributes=("members",))
    removed = _event("group.members_removed", "Group", members=("u1",), attributes=("members",))
    (add,) = _decoded(added)
    (remove,) = _decoded(removed)
    assert add["sub_id"] == {"format": "scim", "uri": "/Groups/g1"}
    assert add["events"][PATCH_FULL]["data"]["Operations"] == [
        {"op": "add", "path": "members", "value": [{"value": "u1"}, {"value": "u2"}]}
    ]
    assert remove["events"][PATCH_FULL]["data"]["Operations"] == [
        {"op": "remove", "path": 'members[value eq "u1"]'}
    ]


def test_a_deactivation_revokes_sessions_and_disables_the_account() -> None:
    event = _event("user.deactivated", values={"active": False})
    scim, session, account = _decoded(event)
    assert scim["events"] == {DEACTIVATE: {"version": 'W/"3"'}}
    assert scim["sub_id"] == {"format": "scim", "uri": "/Users/u1"}
    subject = {"format": "iss_sub", "iss": ISSUER, "sub": "u1"}
    assert session["sub_id"] == subject and account["sub_id"] == subject
    assert session["events"] == {
        SESSION_REVOKED: {
            "event_timestamp": int(AT.timestamp()),
            "initiating_entity": "admin",
            "reason_admin": {"en": "the user was deactivated"},
        }
    }
    assert account["events"] == {ACCOUNT_DISABLED: {}}
    assert [claims["jti"] for claims in (scim, session, account)] == [
        "s1.42.scim",
        "s1.42.session",
        "s1.42.account",
    ]
    assert {claims["txn"] for claims in (scim, session, account)} == {"e-42"}


def test_a_deletion_is_a_delete_and_revokes_the_users_sessions() -> None:
    scim, session, account = _decoded(_event("user.deleted"))
    assert scim["events"] == {DELETE: {}}
    assert session["events"][SESSION_REVOKED]["reason_admin"] == {"en": "the user was deleted"}
    assert account["events"] == {ACCOUNT_DISABLED: {}}
    (group,) = _decoded(_event("group.deleted", "Group"))
    assert group["events"] == {DELETE: {}} and group["sub_id"]["uri"] == "/Groups/g1"


def test_a_reactivation_activates_and_enables_the_account() -> None:
    scim, account = _decoded(_event("user.reactivated", values={"active": True}))
    assert scim["events"] == {ACTIVATE: {"version": 'W/"3"'}}
    assert account["events"] == {ACCOUNT_ENABLED: {}}


def test_a_deactivating_put_that_changed_more_also_says_the_rest_as_a_patch() -> None:
    event = _event("user.deactivated", values={"active": False, "title": "Left"})
    uris = [next(iter(claims["events"])) for claims in _decoded(event)]
    assert uris == [DEACTIVATE, PATCH_FULL, SESSION_REVOKED, ACCOUNT_DISABLED]


def test_a_stream_gets_only_the_events_it_requested() -> None:
    only_sessions = _stream(frozenset({SESSION_REVOKED}))
    assert _decoded(_event("user.created", values={"userName": "ada"}), only_sessions) == []
    (claims,) = _decoded(_event("user.deleted"), only_sessions)
    assert claims["events"].keys() == {SESSION_REVOKED}


def test_a_removed_subject_makes_no_set() -> None:
    removed = StreamView("s1", ISSUER, "receiver-1", FULL, frozenset({"Users/u1"}))
    assert _decoded(_event("user.deleted"), removed) == []
    assert len(_decoded(_event("group.deleted", "Group"), removed)) == 1


def test_events_delivered_are_the_requested_ones_supported_full_over_notice() -> None:
    requested = [CREATE_NOTICE, CREATE_FULL, PATCH_NOTICE, "urn:example:unknown", DELETE]
    assert events_delivered(requested) == (CREATE_FULL, PATCH_NOTICE, DELETE)
    assert events_delivered([]) == ()


def test_a_set_built_again_is_the_same_set_and_its_jti_names_its_event() -> None:
    event = _event("user.updated", values={"title": "CTO"})
    first, again = event_sets(event, _stream()), event_sets(event, _stream())
    assert first == again
    assert _key().sign(first[0].claims) == _key().sign(again[0].claims)
    assert sequence_of("s1", first[0].jti) == 42
    for foreign in ("s2.42.scim", "s1.x.scim", "s1.42.other", "s1.verify.abc", "s1.٤٢.scim", "x"):
        assert sequence_of("s1", foreign) is None


def test_a_verification_set_names_the_stream_and_carries_the_state() -> None:
    item = verification_set(_stream(), "s1.verify.v1", "xyz", AT)
    assert item.claims == {
        "iss": ISSUER,
        "aud": "receiver-1",
        "iat": int(AT.timestamp()),
        "jti": "s1.verify.v1",
        "sub_id": {"format": "opaque", "id": "s1"},
        "events": {VERIFICATION: {"state": "xyz"}},
    }


def test_the_jwks_holds_the_public_key_under_its_thumbprint() -> None:
    (jwk,) = _key().jwks()["keys"]
    assert jwk["kid"] == _key().kid and jwk["kty"] == "RSA" and jwk["alg"] == "RS256"
    assert "d" not in jwk  # never the private half
    assert SigningKey(new_client_key()).kid != _key().kid


def test_a_push_is_the_set_alone_with_its_media_type_and_the_streams_authorization() -> None:
    delivery = Delivery("urn:ietf:rfc:8935", "https://rp.example/events", "Bearer rp-secret")
    request = push_request(delivery, "a.b.c")
    assert request.url == "https://rp.example/events"
    assert request.headers == {
        "Content-Type": "application/secevent+jwt",
        "Accept": "application/json",
        "Authorization": "Bearer rp-secret",
    }
    assert request.body == b"a.b.c"
    unauthorized = push_request(Delivery("urn:ietf:rfc:8935", "https://rp.example/events"), "x")
    assert "Authorization" not in unauthorized.headers


@pytest.mark.parametrize(
    ("status", "body", "outcome", "error"),
    [
        (202, b"", Outcome.DELIVERED, None),
        (
            400,
            b'{"err": "invalid_key", "description": "unknown kid"}',
            Outcome.REJECTED,
            "invalid_key",
        ),
        (400, b"not json", Outcome.RETRY, None),
        (400, b'{"error": "x"}', Outcome.RETRY, None),
        (200, b"", Outcome.RETRY, None),
        (503, b"", Outcome.RETRY, None),
    ],
)
def test_a_receivers_answer_is_delivered_rejected_for_good_or_to_retry(
    status: int, body: bytes, outcome: Outcome, error: str | None
) -> None:
    result = push_outcome(status, body)
    assert result.outcome is outcome and result.error == error
