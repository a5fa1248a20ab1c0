"""What a stream's receiver is told of an event: the claims of its Security Event Tokens.

Pure functions from an outbox ``Event`` and the stream it goes to (``StreamView``) to the
claims of each SET (RFC 8417), one event URI per SET. SCIM provisioning events follow RFC 9967
(``sub_id`` of format ``scim``, full or notice payloads, as the stream chose); a user's
deactivation or deletion also says what it means for sign-in: CAEP ``session-revoked`` and
RISC ``account-disabled`` (``sub_id`` of format ``iss_sub``), and a reactivation RISC
``account-enabled``. The mapping is tabled in docs/ssf.md.

Each SET's ``jti`` is ``{stream}.{sequence}.{tag}``: the same SET is named alike every time it
is built, so a receiver can acknowledge it, and the transmitter knows from the name alone which
event of the stream it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from scim_server.core.events import Event
from scim_server.models import GROUPS, USERS, is_extension_key
from scim_server.storage.events import (
    GROUP_CREATED,
    GROUP_DELETED,
    GROUP_MEMBERS_ADDED,
    GROUP_MEMBERS_REMOVED,
    GROUP_UPDATED,
    USER_CREATED,
    USER_DEACTIVATED,
    USER_DELETED,
    USER_REACTIVATED,
    USER_UPDATED,
)
from scim_server.storage.ssf import StreamRecord

SCIM_EVENT: Final = "urn:ietf:params:SCIM:event:prov:"
CREATE_FULL: Final = f"{SCIM_EVENT}create:full"
CREATE_NOTICE: Final = f"{SCIM_EVENT}create:notice"
PATCH_FULL: Final = f"{SCIM_EVENT}patch:full"
PATCH_NOTICE: Final = f"{SCIM_EVENT}patch:notice"
DELETE: Final = f"{SCIM_EVENT}delete"
ACTIVATE: Final = f"{SCIM_EVENT}activate"
DEACTIVATE: Final = f"{SCIM_EVENT}deactivate"
SESSION_REVOKED: Final = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
ACCOUNT_DISABLED: Final = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
ACCOUNT_ENABLED: Final = "https://schemas.openid.net/secevent/risc/event-type/account-enabled"
VERIFICATION: Final = "https://schemas.openid.net/secevent/ssf/event-type/verification"

EVENTS_SUPPORTED: Final = (
    CREATE_FULL,
    CREATE_NOTICE,
    PATCH_FULL,
    PATCH_NOTICE,
    DELETE,
    ACTIVATE,
    DEACTIVATE,
    SESSION_REVOKED,
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
)
"""What a stream may request. A verification is sent whenever a receiver asks for one."""
FULL_OR_NOTICE: Final = {CREATE_NOTICE: CREATE_FULL, PATCH_NOTICE: PATCH_FULL}
"""A notice event, and the full one that says more: a stream requesting both gets the full."""

PATCH_OP: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

# The tags that end a jti: which of an event's SETs it is.
TAG_SCIM: Final = "scim"
TAG_CHANGE: Final = "change"
TAG_SESSION: Final = "session"
TAG_ACCOUNT: Final = "account"
TAG_VERIFY: Final = "verify"
EVENT_TAGS: Final = frozenset({TAG_SCIM, TAG_CHANGE, TAG_SESSION, TAG_ACCOUNT})


@dataclass(frozen=True)
class StreamView:
    """What the SETs of a stream depend on: who issues them, for whom, and which events."""

    stream_id: str
    issuer: str
    audience: str
    delivered: frozenset[str]
    removed: frozenset[str] = frozenset()
    """The subjects the receiver removed from the stream (``subject_key``): none of their
    events reach it."""


@dataclass(frozen=True)
class SetClaims:
    """One SET before signing: its ``jti`` and its claims (``jti`` among them)."""

    jti: str
    claims: Mapping[str, Any]


def events_delivered(requested: Iterable[str]) -> tuple[str, ...]:
    """The requested events the transmitter supports, in its order; a notice event is dropped
    when its full twin is requested too (RFC 9967: one SET says one change, once)."""
    wanted = set(requested)
    return tuple(
        uri
        for uri in EVENTS_SUPPORTED
        if uri in wanted and FULL_OR_NOTICE.get(uri, "") not in wanted
    )


def stream_view(stream: StreamRecord, issuer: str) -> StreamView:
    return StreamView(
        stream_id=stream.id,
        issuer=issuer,
        audience=stream.audience,
        delivered=frozenset(events_delivered(stream.configuration.events_requested)),
        removed=stream.removed,
    )


def jti(stream_id: str, sequence: int, tag: str) -> str:
    return f"{stream_id}.{sequence}.{tag}"


def sequence_of(stream_id: str, set_id: str) -> int | None:
    """The outbox sequence a jti of this stream's events names (None: none such)."""
    stream, _, rest = set_id.partition(".")
    number, _, tag = rest.partition(".")
    if (
        stream != stream_id
        or tag not in EVENT_TAGS
        or not (number.isascii() and number.isdecimal())
    ):
        return None
    return int(number)


def subject_key(event: Event) -> str:
    """The resource an event is about, as a stream names its subjects: ``Users/{id}``."""
    endpoint = USERS.endpoint if event.resource_type == USERS.name else GROUPS.endpoint
    return f"{endpoint}/{event.resource_id}"


def scim_subject(event: Event) -> dict[str, str]:
    """RFC 9967 §2.1: the resource, by its path relative to the tenant's SCIM base."""
    return {"format": "scim", "uri": f"/{subject_key(event)}"}


def user_subject(issuer: str, event: Event) -> dict[str, str]:
    """RFC 9493 ``iss_sub``: the user by its SCIM id, an identifier this issuer assigns."""
    return {"format": "iss_sub", "iss": issuer, "sub": event.resource_id}


def _version(event: Event) -> str:
    return f'W/"{event.version}"'


def _full_resource(event: Event) -> dict[str, Any]:
    """The resource as created: its schemas, id and every attribute set (never a password)."""
    kind = USERS if event.resource_type == USERS.name else GROUPS
    # Every extension the values carry, a tenant's own too (``core/user_extensions.py``).
    schemas = [kind.schema, *filter(is_extension_key, event.values)]
    data: dict[str, Any] = {"schemas": schemas, "id": event.resource_id}
    data |= {name: value for name, value in event.values.items() if value is not None}
    if event.members:
        data["members"] = [{"value": member} for member in event.members]
    return data


def _patch_request(event: Event) -> dict[str, Any]:
    """The change as a SCIM PATCH request that replays it: members added or removed, or each
    attribute whose new value the event carries replaced (or removed: None)."""
    if event.type == GROUP_MEMBERS_ADDED:
        operations: list[dict[str, Any]] = [
            {"op": "add", "path": "members", "value": [{"value": m} for m in event.members]}
        ]
    elif event.type == GROUP_MEMBERS_REMOVED:
        operations = [
            {"op": "remove", "path": f'members[value eq "{member}"]'} for member in event.members
        ]
    else:
        operations = [
            {"op": "remove", "path": name}
            if value is None
            else {"op": "replace", "path": name, "value": value}
            for name, value in event.values.items()
        ]
    return {"schemas": [PATCH_OP], "Operations": operations}


def _scim_payload(uri: str, event: Event) -> dict[str, Any]:
    if uri in (CREATE_FULL, PATCH_FULL):
        data = _full_resource(event) if uri == CREATE_FULL else _patch_request(event)
        return {"data": data, "version": _version(event)}
    if uri in (CREATE_NOTICE, PATCH_NOTICE):
        return {"attributes": list(event.attributes), "version": _version(event)}
    if uri == DELETE:
        return {}
    return {"version": _version(event)}


def _chosen(full: str, notice: str, delivered: frozenset[str]) -> str | None:
    if full in delivered:
        return full
    return notice if notice in delivered else None


def _planned(event: Event, delivered: frozenset[str]) -> list[tuple[str, str]]:
    """The (tag, event URI) of each SET the event makes on a stream delivering ``delivered``."""
    created = _chosen(CREATE_FULL, CREATE_NOTICE, delivered)
    patched = _chosen(PATCH_FULL, PATCH_NOTICE, delivered)
    plan: list[tuple[str, str | None]]
    if event.type in (USER_CREATED, GROUP_CREATED):
        plan = [(TAG_SCIM, created)]
    elif event.type in (USER_UPDATED, GROUP_UPDATED, GROUP_MEMBERS_ADDED, GROUP_MEMBERS_REMOVED):
        plan = [(TAG_SCIM, patched)]
    elif event.type == GROUP_DELETED:
        plan = [(TAG_SCIM, DELETE)]
    elif event.type in (USER_DEACTIVATED, USER_DELETED):
        plan = [
            (TAG_SCIM, DEACTIVATE if event.type == USER_DEACTIVATED else DELETE),
            (TAG_SESSION, SESSION_REVOKED),
            (TAG_ACCOUNT, ACCOUNT_DISABLED),
        ]
    elif event.type == USER_REACTIVATED:
        plan = [(TAG_SCIM, ACTIVATE), (TAG_ACCOUNT, ACCOUNT_ENABLED)]
    else:
        plan = []
    if event.type in (USER_DEACTIVATED, USER_REACTIVATED) and set(event.attributes) - {"active"}:
        plan.insert(1, (TAG_CHANGE, patched))  # a PUT that also changed other attributes
    return [(tag, uri) for tag, uri in plan if uri is not None and uri in delivered]


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def _payload(uri: str, event: Event) -> dict[str, Any]:
    if uri == SESSION_REVOKED:
        deleted = event.type == USER_DELETED
        return {
            "event_timestamp": _timestamp(event.time),
            "initiating_entity": "admin" if event.client.via == "scim" else "system",
            "reason_admin": {"en": f"the user was {'deleted' if deleted else 'deactivated'}"},
        }
    if uri in (ACCOUNT_DISABLED, ACCOUNT_ENABLED):
        return {}
    return _scim_payload(uri, event)


def event_sets(event: Event, stream: StreamView) -> list[SetClaims]:
    """The SETs the event makes on the stream, in order; none when it requested none of its
    kinds, or when its subject was removed from the stream. ``iat`` is the event's time, so
    that a SET built again is the same SET."""
    if subject_key(event) in stream.removed:
        return []
    sets = []
    for tag, uri in _planned(event, stream.delivered):
        set_id = jti(stream.stream_id, event.sequence, tag)
        cross_domain = uri in (SESSION_REVOKED, ACCOUNT_DISABLED, ACCOUNT_ENABLED)
        claims = {
            "iss": stream.issuer,
            "aud": stream.audience,
            "iat": _timestamp(event.time),
            "jti": set_id,
            "txn": event.id,
            "sub_id": user_subject(stream.issuer, event) if cross_domain else scim_subject(event),
            "events": {uri: _payload(uri, event)},
        }
        sets.append(SetClaims(set_id, claims))
    return sets


def verification_set(stream: StreamView, set_id: str, state: str | None, at: datetime) -> SetClaims:
    """SSF §8.1.4.1: the stream, by an ``opaque`` subject, and the receiver's ``state``."""
    payload = {} if state is None else {"state": state}
    claims = {
        "iss": stream.issuer,
        "aud": stream.audience,
        "iat": _timestamp(at),
        "jti": set_id,
        "sub_id": {"format": "opaque", "id": stream.stream_id},
        "events": {VERIFICATION: payload},
    }
    return SetClaims(set_id, claims)
