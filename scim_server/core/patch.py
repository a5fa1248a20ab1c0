"""PATCH (RFC 7644 §3.5.2): the IdP dialects we accept, and the attributes / members split.

scim2-models implements the operation semantics. Two things are ours:

* the *dialect policy*: what we tolerate from real identity providers, stated
  once as a ``ScimPolicy`` (Entra's ``remove`` with a ``value`` list, Entra's
  ``replace`` of a value-filtered path that matches nothing yet) on top of what
  the library already tolerates for everyone (capitalised ops, ``"True"``
  strings for booleans, path-less dotted keys such as ``name.givenName``,
  Okta's path-less ``replace`` with the group's own ``id``);
* the *membership split*: a group's members are not loaded into the resource
  (a group may hold a million), so operations on ``members`` become
  set operations on the membership relation instead.

Neither ever widens an operation: a ``remove`` with a value list removes those
members only, and a value-path ``remove`` removes the members it names only.

Two more bound what one request costs:

* the *operation cap*: a PATCH carries at most ``max_operations`` operations,
  counted after Entra's path-less keys are split, refused before any work;
* *coalescing*: scim2-models applies each operation to the whole resource
  (deduplicating against, snapshotting and re-checking every value of the
  attribute), so k single-entry ``add`` operations on one multi-valued attribute
  would cost O(k²). A run of them is handed over as one ``add`` of all the
  entries, which it applies in O(k), with the same outcome.
"""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from scim2_models import (
    Context,
    InvalidFilterException,
    InvalidPathException,
    InvalidSyntaxException,
    InvalidValueException,
    PatchOp,
    Path,
    Resource,
    SCIMException,
    ScimFilter,
    ScimPolicy,
)
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
)

from scim_server.core.errors import from_validation_error
from scim_server.models import (
    GROUPS,
    EnterpriseUser,
    Member,
    ResourceKind,
    is_users,
    parametrized,
    parse_members,
)

DIALECT_POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

MEMBERS = "members"

MANAGER_SCHEMA = str(EnterpriseUser.__schema__)
MANAGER = f"{MANAGER_SCHEMA}:manager"
"""The enterprise extension's ``manager``, by its full path."""


@dataclass(frozen=True)
class MemberChange:
    """One set operation on a group's members, applied in request order."""

    op: Literal["add", "remove", "replace", "clear"]
    members: tuple[Member, ...] = ()


@dataclass
class PatchPlan:
    operations: list[dict[str, Any]]
    """The operations scim2-models applies to the resource's own attributes."""
    member_changes: list[MemberChange]


def plan_patch(kind: ResourceKind, body: Any, max_operations: int) -> PatchPlan:
    """Check the PatchOp message and separate member operations from attribute operations.

    Over ``max_operations`` operations the message is refused (400 ``invalidValue``)
    before any is looked at, so a huge message costs no more than its parsing.
    """
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        raise InvalidSyntaxException(detail="a PatchOp message with an Operations list is required")
    schemas = body.get("schemas")
    if schemas is not None and PatchOp.__schema__ not in (
        schemas if isinstance(schemas, list) else []
    ):
        raise InvalidValueException(detail=f"schemas must contain {PatchOp.__schema__}")
    if not body["Operations"]:
        raise InvalidValueException(detail="Operations holds one or more operations")
    _check_count(len(body["Operations"]), max_operations)
    operations: list[dict[str, Any]] = []
    changes: list[MemberChange] = []
    for count, operation in enumerate(_expanded(body["Operations"]), start=1):
        _check_count(count, max_operations)
        if is_users(kind):
            operations.extend(map(_manager_dialect, _manager_keys_pathed(operation)))
            continue
        if kind is not GROUPS:
            operations.append(operation)
            continue
        rest, change = _split_members(operation)
        if change is not None:
            changes.append(change)
        if rest is not None:
            operations.append(rest)
    return PatchPlan(_coalesced(kind, operations), changes)


def _check_count(count: int, max_operations: int) -> None:
    if count > max_operations:
        raise InvalidValueException(
            detail=f"a PATCH carries at most {max_operations} operations "
            "(path-less keys with a value filter count one each); split the request"
        )


def _expanded(operations: list[Any]) -> Iterator[dict[str, Any]]:
    """Each operation, with Entra's value-filtered path-less keys made pathed operations.

    Entra (``aadOptscim062020``) sends ``{"op": "replace", "value": {"emails[type eq
    \"work\"].value": ..., "name.givenName": ...}}``. scim2-models takes attribute
    paths as keys, but not a value filter, so each such key becomes the operation
    it stands for, ``{"op": "replace", "path": key, "value": ...}``, in key order;
    the keys between them stay together in a path-less operation.
    """
    for operation in operations:
        if not isinstance(operation, dict):
            raise InvalidValueException(detail="each operation is a JSON object")
        value = operation.get("value")
        op = operation.get("op")
        if (
            operation.get("path") not in (None, "")
            or not isinstance(op, str)
            or op.lower() not in ("add", "replace")
            or not isinstance(value, dict)
            or not any("[" in key for key in value)
        ):
            yield operation
            continue
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if "[" not in key:
                plain[key] = item
                continue
            if plain:
                yield {"op": op, "value": plain}
                plain = {}
            yield {"op": op, "path": key, "value": item}
        if plain:
            yield {"op": op, "value": plain}


_MANAGER_KEYS = ("manager", "manager.value", MANAGER.lower(), f"{MANAGER.lower()}.value")
"""The keys of a path-less value that name the enterprise ``manager``, lower-cased."""


def _manager_keys_pathed(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """``operation``, with the manager a path-less value names taken out as a pathed operation.

    The validator and Entra send "Remove Manager" without a path too (``{"op": "replace",
    "value": {"urn:…:User:manager": {"value": ""}}}``, or under the extension's own key):
    made pathed, the manager gets the same reading as a pathed operation in
    ``_manager_dialect``, so an empty value removes it rather than storing an empty manager.
    The other keys stay together, ahead of it; they name other attributes, so the order of
    the two is immaterial.
    """
    value, op = operation.get("value"), operation.get("op")
    if operation.get("path") not in (None, "") or not isinstance(value, dict):
        return [operation]
    rest = dict(value)
    pathed = [
        {"op": op, "path": key, "value": rest.pop(key)}
        for key in list(rest)
        if key.lower() in _MANAGER_KEYS
    ]
    extension = next((key for key in rest if key.lower() == MANAGER_SCHEMA.lower()), None)
    if extension is not None and isinstance(rest[extension], dict) and "manager" in rest[extension]:
        attributes = dict(rest[extension])
        pathed.append({"op": op, "path": MANAGER, "value": attributes.pop("manager")})
        rest[extension] = attributes
        if not attributes:
            del rest[extension]
    if not pathed:
        return [operation]
    return ([{**operation, "value": rest}] if rest else []) + pathed


def _manager_dialect(operation: dict[str, Any]) -> dict[str, Any]:
    """An operation on the enterprise ``manager`` in the standard form, from Entra's dialect.

    Entra (and the Microsoft validator) name it ``manager`` without the extension's URN,
    send the value as a one-element list (``[{"$ref": ..., "value": "<id>"}]``) or as the
    bare id, and "Remove Manager" as a ``replace`` of an empty value (``""``, or
    ``{"value": ""}``, also on ``manager.value``), which removes it rather than storing an
    empty manager. Any other operation is left as it is.
    """
    path = operation.get("path")
    if not isinstance(path, str):
        return operation
    lowered = path.lower()
    if lowered in ("manager", "manager.value"):
        path = f"{MANAGER}{path[len('manager') :]}"
    elif lowered in (MANAGER.lower(), f"{MANAGER.lower()}.value"):
        path = f"{MANAGER}{path[len(MANAGER) :]}"
    else:
        return operation
    value = operation.get("value")
    if isinstance(value, list):
        if len(value) != 1:
            raise InvalidValueException(detail="manager takes one value, not a list of several")
        (value,) = value
    removed = value == "" or (isinstance(value, dict) and value.get("value") == "")
    op = operation.get("op")
    if removed and isinstance(op, str) and op.lower() in ("add", "replace"):
        return {"op": "remove", "path": MANAGER}
    if path == MANAGER and isinstance(value, str):
        value = {"value": value}
    return (
        {**operation, "path": path, "value": value}
        if "value" in operation
        else {
            **operation,
            "path": path,
        }
    )


def apply_operations(
    kind: ResourceKind, resource: Resource[Any], operations: list[dict[str, Any]]
) -> bool:
    """Apply attribute operations in place, all or nothing; answers whether anything changed."""
    if not operations:
        return False
    try:
        patch = parametrized(PatchOp, kind.model).model_validate(
            {"schemas": [PatchOp.__schema__], "Operations": operations},
            scim_ctx=Context.RESOURCE_PATCH_REQUEST,
            scim_policy=DIALECT_POLICY,
        )
        return bool(patch.patch(resource, DIALECT_POLICY))
    except ValidationError as error:
        raise from_validation_error(error) from None


def _coalesced(kind: ResourceKind, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operations, each run of entry ``add``s to one multi-valued attribute made one ``add``.

    Applied one by one, an ``add`` skips an entry equal to one already there and a
    ``primary`` entry unmarks the others. One ``add`` of many entries only compares
    them with the values already there, and refuses two primaries, so a run is cut
    before an entry that might equal an earlier entry of the run (compared loosely:
    a cut too many only costs speed) or before a second entry that names ``primary``.
    """
    coalesced: list[dict[str, Any]] = []
    run: _Run | None = None
    for operation in operations:
        target = _appended_attribute(kind, operation)
        entries = _entries(operation.get("value"))
        if target is None or entries is None:
            coalesced.append(operation)
            run = None
            continue
        batch = _Batch.of(entries)
        if run is None or run.target != target or not run.takes(batch):
            run = _Run(target, {"op": operation["op"], "path": operation["path"], "value": []})
            coalesced.append(run.operation)
        run.add(batch)
    return coalesced


Fingerprint = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class _Batch:
    """The entries of one ``add``, with what decides whether they may join a run."""

    entries: list[dict[str, Any]]
    fingerprints: list[Fingerprint]
    primaries: int
    """How many entries name ``primary``."""

    @classmethod
    def of(cls, entries: list[dict[str, Any]]) -> _Batch:
        return cls(
            entries,
            [_fingerprint(entry) for entry in entries],
            sum(any(key.lower() == "primary" for key in entry) for entry in entries),
        )


@dataclass
class _Run:
    """Consecutive ``add``s of entries to one attribute, gathered into one ``operation``."""

    target: tuple[type[BaseModel], str]
    operation: dict[str, Any]
    fingerprints: set[Fingerprint] = field(default_factory=set)
    primaries: int = 0

    def takes(self, batch: _Batch) -> bool:
        """Whether the batch can join the run and end as it would applied on its own."""
        return (
            len(set(batch.fingerprints)) == len(batch.fingerprints)
            and self.fingerprints.isdisjoint(batch.fingerprints)
            and self.primaries + batch.primaries <= 1
        )

    def add(self, batch: _Batch) -> None:
        self.operation["value"].extend(batch.entries)
        self.fingerprints.update(batch.fingerprints)
        self.primaries += batch.primaries


def _appended_attribute(
    kind: ResourceKind, operation: dict[str, Any]
) -> tuple[type[BaseModel], str] | None:
    """The multi-valued complex attribute an ``add`` appends entries to, or None."""
    op, path = operation.get("op"), operation.get("path")
    if not isinstance(op, str) or op.lower() != "add" or not isinstance(path, str):
        return None
    return _entry_list(kind, path)


@functools.lru_cache(maxsize=512)
def _entry_list(kind: ResourceKind, path: str) -> tuple[type[BaseModel], str] | None:
    """The multi-valued complex attribute ``path`` names (no filter), or None.

    Cached: resolving a path costs more than the rest of planning an operation, and
    the operations of one request name the same few attributes again and again.
    """
    if "[" in path:
        return None
    try:
        binding = Path[kind.model](path).resolve()  # type: ignore[name-defined]
    except SCIMException:
        return None
    if (
        binding is None
        or binding.sub_field_name is not None
        or not binding.is_multivalued
        or not isinstance(binding.field_type, type)
        or not issubclass(binding.field_type, BaseModel)
    ):
        return None
    return binding.model, binding.field_name


def _entries(value: Any) -> list[dict[str, Any]] | None:
    """An ``add`` value as a list of entry objects, or None when it is not one."""
    entries = value if isinstance(value, list) else [value]
    if not entries or not all(isinstance(entry, dict) for entry in entries):
        return None
    return entries


def _fingerprint(entry: dict[str, Any]) -> Fingerprint:
    """A loose key of an entry: equal for any two entries scim2-models takes as equal.

    Keys and values are case-folded, NFKC-normalised and stripped, non-strings taken as JSON
    and null attributes left out, so it only ever equates more than the library does.
    """
    return frozenset(
        (key.casefold(), _loose(item)) for key, item in entry.items() if item is not None
    )


def _loose(item: Any) -> str:
    text = item if isinstance(item, str) else json.dumps(item, sort_keys=True, ensure_ascii=False)
    return unicodedata.normalize("NFKC", text).casefold().strip()


def _op_name(operation: dict[str, Any]) -> str:
    op = operation.get("op")
    if not isinstance(op, str) or op.lower() not in ("add", "remove", "replace"):
        raise InvalidValueException(
            detail=f"{op!r} is not a PATCH operation: add, remove or replace"
        )
    return op.lower()


def _split_members(
    operation: dict[str, Any],
) -> tuple[dict[str, Any] | None, MemberChange | None]:
    op = _op_name(operation)
    path = operation.get("path")
    value = operation.get("value")
    if path is None or path == "":
        if op == "remove" or not isinstance(value, dict):
            return operation, None
        members_key = next((key for key in value if key.lower() == MEMBERS), None)
        if members_key is None:
            return operation, None
        rest = {key: item for key, item in value.items() if key != members_key}
        change = _member_change(op, value[members_key])
        return ({**operation, "value": rest} if rest else None), change
    if not isinstance(path, str):
        raise InvalidPathException(detail="path must be a string")
    target = _strip_group_urn(path)
    head = target.split("[", 1)[0].split(".", 1)[0]
    if head.lower() != MEMBERS:
        return operation, None
    if "[" in target:
        return None, _member_selection(op, target)
    if target.lower() != MEMBERS:
        raise InvalidPathException(detail=f"{path!r}: member sub-attributes are read-only")
    if op == "remove":
        if value is None:
            return None, MemberChange("clear")
        return None, _member_change("remove", value)
    return None, _member_change(op, value)


def _strip_group_urn(path: str) -> str:
    prefix = GROUPS.schema + ":"
    return path[len(prefix) :] if path.lower().startswith(prefix.lower()) else path


def _member_change(op: str, value: Any) -> MemberChange:
    members = parse_members(value)
    if op == "replace":
        return MemberChange("replace", members)
    return MemberChange("add" if op == "add" else "remove", members)


def _member_selection(op: str, path: str) -> MemberChange:
    """``members[value eq "id"]`` (joined by ``or``): the members a value path names."""
    if op != "remove":
        raise InvalidPathException(
            detail="only remove takes a filtered members path; add members with a value list"
        )
    if not path.endswith("]"):
        raise InvalidPathException(detail=f"{path!r}: member sub-attributes are read-only")
    inner = path[path.index("[") + 1 : -1]
    try:
        node = ScimFilter(inner).ast
    except (SCIMException, ValueError) as error:
        raise InvalidFilterException(detail=f"invalid members filter: {error}") from None
    return MemberChange("remove", tuple(Member(value) for value in _named_members(node)))


def _named_members(node: FilterNode) -> list[str]:
    if isinstance(node, LogicalExpr) and node.op == LogicalOperator.or_:
        return [member for term in node.terms for member in _named_members(term)]
    if (
        isinstance(node, Comparison)
        and node.op == CompareOperator.eq
        and node.attr_path == AttrPath("value")
        and isinstance(node.value, str)
    ):
        return [node.value]
    raise InvalidFilterException(
        detail='a members filter names members by value: members[value eq "id"]'
    )
