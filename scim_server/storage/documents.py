"""How a SCIM resource is laid out in a MongoDB document, and back.

A stored resource keeps its attributes twice: ``r`` exactly as written, which is
what clients read back, and ``c`` in *comparison form* (each string through
scim2-models' ``comparable``: NFC, lowercased unless the attribute is caseExact).
Filters, sorting and the uniqueness index all work on ``c``, so case-insensitive
matching is plain index equality on every MongoDB, with no collation or regex flag.
Beside them: ``_id`` (the resource id), ``tenant``, ``meta`` (``created``,
``lastModified``, ``version``), ``pw`` (a user's password hash), ``gm`` (the
membership hint, see ``memberships.py``) and ``deactivated`` (when a user was last
written inactive, see ``DEACTIVATED``).

This module is the one place those fields are named. The other layers see a
stored resource as a ``StoredResource`` and hand a new state to storage as a
``StoredForm``. The one exception is the query language: filters, sorting and
cursor positions are compiled in the core to MongoDB queries over ``c`` and ``_id``
(``core/filters.py``, ``core/cursors.py``), because that is what the database runs
on its indexes; storage runs them as given, always within the tenant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from scim2_models import AttributeBinding, Path

from scim_server.models import USERS, ResourceKind, scim_key, storage_key
from scim_server.storage.database import Document
from scim_server.storage.events import PENDING, Emission, PendingDocument, pending_event

Payload = dict[str, Any]

NOT_STORED = frozenset({"id", "meta", "schemas", "members", "groups", "password"})
"""Attributes that live elsewhere: identity and metadata at the top level, the
password as a hash, and the membership relation in its own collection."""


@lru_cache(maxsize=1024)
def _binding(model: type, path: str) -> AttributeBinding | None:
    return Path[model](path).resolve()  # type: ignore[valid-type]


def _comparison_form(model: type, path: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _comparison_form(model, f"{path}.{key}", item) for key, item in value.items()}
    if isinstance(value, list):
        return [_comparison_form(model, path, item) for item in value]
    if isinstance(value, str):
        binding = _binding(model, path)
        if binding is None:
            return value
        if binding.target_type is datetime:
            # As a filter's operand is compared (``core/filters.py``): a UTC BSON date, so
            # that ``gt`` and ``sortBy`` go by time, not by the text of the timestamp.
            return datetime.fromisoformat(value).astimezone(UTC)
        return binding.comparable(value)
    return value


def _comparison_attributes(kind: ResourceKind, raw: Payload) -> Payload:
    comparison: Payload = {}
    for key, value in raw.items():
        if key in kind.extensions:
            comparison[key] = {
                name: _comparison_form(kind.model, f"{key}:{name}", item)
                for name, item in value.items()
            }
        else:
            comparison[key] = _comparison_form(kind.model, key, value)
    return comparison


def comparable_user_name(user_name: str) -> str:
    """A userName in its comparison form, as ``c.userName`` and its unique index hold it."""
    return str(_comparison_form(USERS.model, "userName", user_name))


def stored_attributes(kind: ResourceKind, payload: Payload) -> tuple[Payload, Payload]:
    """Split a validated SCIM payload into its stored ``r`` and ``c`` sub-documents."""
    raw = {key: value for key, value in payload.items() if key not in NOT_STORED}
    comparison = _comparison_attributes(kind, raw)
    escape = {urn: storage_key(urn) for urn in kind.extensions}
    return (
        {escape.get(key, key): value for key, value in raw.items()},
        {escape.get(key, key): value for key, value in comparison.items()},
    )


MEMBER_OF = "gm"
DEACTIVATED = "deactivated"
"""When a state with ``active`` false was last written to the user: set by the same write,
never cleared. A sign-in session started before it is void, even once the user is active
again (see ``storage/sessions.py``)."""
MANAGES = "mr"
"""On a user: ``True`` once some user was given it as ``manager`` (a hint, never cleared)."""
NAME_FIELDS = {"r.displayName": 1, "r.userName": 1}
"""The projection that reads what ``resource_name`` needs."""


def stored_name(raw: Mapping[str, Any]) -> str | None:
    """displayName, else userName: what a member or a group shows as ``display``."""
    name = raw.get("displayName") or raw.get("userName")
    return None if name is None else str(name)


def resource_name(document: Mapping[str, Any]) -> str | None:
    """A stored document's ``stored_name``."""
    return stored_name(document.get("r", {}))


@dataclass(frozen=True)
class Standing:
    """What a session needs to know of its user: the name, whether it is active, when it
    was last deactivated, its ``userType`` (whether it is a guest), and the ``credential`` of
    its password now."""

    user_name: str
    active: bool
    deactivated: datetime | None
    user_type: str | None = None
    credential: str | None = None


STANDING_FIELDS = {"r.userName": 1, "r.active": 1, "r.userType": 1, DEACTIVATED: 1, "pw": 1}
"""The projection that reads what ``standing`` needs."""


def credential(password_hash: str | None) -> str | None:
    """What identifies the password a user has now, and changes whenever it is set: the
    SHA-256 of its hash, whose salt is new at every setting (None: no password). A session
    opened with a password keeps it, and stands only while it is still the user's; it reveals
    nothing of the password, nor of the hash."""
    if password_hash is None:
        return None
    return hashlib.sha256(password_hash.encode()).hexdigest()


def standing(document: Mapping[str, Any]) -> Standing:
    """A stored user's standing; a user with no ``active`` is active."""
    raw: Mapping[str, Any] = document.get("r", {})
    return Standing(
        user_name=str(raw.get("userName")),
        active=raw.get("active") is not False,
        deactivated=document.get(DEACTIVATED),
        user_type=raw.get("userType") if isinstance(raw.get("userType"), str) else None,
        credential=credential(document.get("pw")),
    )


def member_of_hint(document: Mapping[str, Any]) -> bool:
    """Whether a user or group document may belong to a group (see ``memberships.py``)."""
    return int(document.get(MEMBER_OF, 0)) > 0


@dataclass(frozen=True)
class StoredResource:
    """A stored user or group as the layers above storage see it: typed, never a document."""

    id: str
    version: int
    created: datetime
    last_modified: datetime
    attributes: Mapping[str, Any]
    """The SCIM attributes as written, extensions under their schema URN, read-only; never
    ``id``, ``meta``, ``schemas``, ``members``, ``groups`` or ``password``."""
    password_hash: str | None
    """The hash of the password last set, if any (never the password)."""
    member_of: bool
    """Whether it may be a direct member of some group; False spares looking up its groups."""
    manages: bool = False
    """Whether it may be some user's ``manager``; False spares clearing that when it goes."""
    created_events: PendingDocument | None = None
    """On a resource just inserted: the events its insert stored pending (its creation's),
    exactly as stored, which the relay moves without reading them back."""

    @property
    def name(self) -> str | None:
        """displayName, else userName: what it shows as in a group's ``members``."""
        return stored_name(self.attributes)


@dataclass(frozen=True)
class StoredForm:
    """A resource state laid out for storage, to be written by a repository.

    ``stored_form`` builds it (CPU work that grows with the resource, which the core
    runs off the event loop); nothing outside storage reads its fields.
    """

    raw: Payload
    comparison: Payload

    @property
    def name(self) -> str | None:
        """The name the state shows as in a group's ``members`` (``stored_name``)."""
        return stored_name(self.raw)

    @property
    def attributes(self) -> Mapping[str, Any]:
        """The state's SCIM attributes, as ``StoredResource.attributes`` will show them."""
        return _scim_attributes(self.raw)


def stored_form(kind: ResourceKind, payload: Payload) -> StoredForm:
    """A validated SCIM payload laid out for storage (``stored_attributes``)."""
    return StoredForm(*stored_attributes(kind, payload))


def stored_resource(document: Mapping[str, Any]) -> StoredResource:
    """The record of a stored document, or of the fields of it a projection read."""
    meta: Mapping[str, Any] = document["meta"]
    return StoredResource(
        id=str(document["_id"]),
        version=int(meta["version"]),
        created=meta["created"],
        last_modified=meta["lastModified"],
        attributes=_scim_attributes(document.get("r", {})),
        password_hash=document.get("pw"),
        member_of=member_of_hint(document),
        manages=bool(document.get(MANAGES, False)),
    )


def stored_instant(moment: datetime) -> datetime:
    """``moment`` as MongoDB keeps it: BSON dates have milliseconds."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def rewritten(
    stored: StoredResource,
    form: StoredForm,
    password_hash: str | None,
    now: datetime,
    versions: int = 1,
) -> StoredResource:
    """The record of ``stored`` once ``changed_fields(form, password_hash, now)`` landed on it,
    ``versions`` later (changes written at once make a version each).

    The update that writes a state is conditional on the version it was read at, so what
    it stored is known without reading it back. BSON keeps milliseconds, and so does the record.
    """
    return replace(
        stored,
        version=stored.version + versions,
        last_modified=stored_instant(now),
        attributes=_scim_attributes(form.raw),
        password_hash=password_hash or stored.password_hash,
    )


def _scim_attributes(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """Stored attributes (``r``) under their SCIM names (extensions under their URN), read-only."""
    return MappingProxyType({scim_key(k): v for k, v in raw.items()})


def new_document(
    tenant: str,
    resource_id: str,
    form: StoredForm,
    password_hash: str | None,
    now: datetime,
    version: int,
    emission: Emission,
) -> Document:
    """The document of a new resource, created ``now`` at ``version``, its event pending."""
    document: Document = {
        "_id": resource_id,
        "tenant": tenant,
        "meta": {"created": now, "lastModified": now, "version": version},
        PENDING: [pending_event(emission, now)],
    }
    document.update(changed_fields(form, password_hash, now))
    return document


def changed_fields(form: StoredForm, password_hash: str | None, now: datetime) -> Document:
    """The fields a new state written ``now`` sets: the password hash only when the state
    sets a password, the time of deactivation only when the state is inactive."""
    fields: Document = {"r": form.raw, "c": form.comparison}
    if password_hash is not None:
        fields["pw"] = password_hash
    if form.raw.get("active") is False:
        fields[DEACTIVATED] = now
    return fields


def value_at(document: Mapping[str, Any], field: str) -> Any:
    """The value a document has at a dotted field, such as a compiled sort key (None if absent)."""
    value: Any = document
    for part in field.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value
