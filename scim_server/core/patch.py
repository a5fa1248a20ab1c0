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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from scim2_models import (
    Context,
    InvalidFilterException,
    InvalidPathException,
    InvalidSyntaxException,
    InvalidValueException,
    PatchOp,
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
from scim_server.models import GROUPS, Member, ResourceKind, parse_members

DIALECT_POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

MEMBERS = "members"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


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


def plan_patch(kind: ResourceKind, body: Any) -> PatchPlan:
    """Check the PatchOp message and separate member operations from attribute operations."""
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        raise InvalidSyntaxException(detail="a PatchOp message with an Operations list is required")
    schemas = body.get("schemas")
    if schemas is not None and PATCH_SCHEMA not in (schemas if isinstance(schemas, list) else []):
        raise InvalidValueException(detail=f"schemas must contain {PATCH_SCHEMA}")
    if not body["Operations"]:
        raise InvalidValueException(detail="Operations holds one or more operations")
    operations: list[dict[str, Any]] = []
    changes: list[MemberChange] = []
    for operation in body["Operations"]:
        if not isinstance(operation, dict):
            raise InvalidValueException(detail="each operation is a JSON object")
        if kind is GROUPS:
            operation, change = _split_members(operation)
            if change is not None:
                changes.append(change)
            if operation is None:
                continue
        operations.append(operation)
    return PatchPlan(operations, changes)


def apply_operations(
    kind: ResourceKind, resource: Resource[Any], operations: list[dict[str, Any]]
) -> bool:
    """Apply attribute operations in place, all or nothing; answers whether anything changed."""
    if not operations:
        return False
    try:
        patch = PatchOp[kind.model].model_validate(  # type: ignore[name-defined]
            {"schemas": [PATCH_SCHEMA], "Operations": operations},
            scim_ctx=Context.RESOURCE_PATCH_REQUEST,
            scim_policy=DIALECT_POLICY,
        )
        return bool(patch.patch(resource, DIALECT_POLICY))
    except ValidationError as error:
        raise from_validation_error(error) from None


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
