"""SCIM filters (RFC 7644 §3.4.2.2) and sortBy paths compiled into MongoDB queries.

scim2-models parses and validates the filter and binds every attribute path to the
model; this module only decides which stored field each attribute lives in and which
MongoDB operator each SCIM operator becomes.

Case-insensitivity never comes from regex flags or collations: every resource is
stored twice, as sent (``r``) and in comparison form (``c``: each string put through
``AttributeBinding.comparable``). Filter values are put through the same function,
so a plain equality on ``c`` compares exactly as ``ScimFilter.match`` does, and an
ordinary index on a ``c.*`` field serves it.

A group's members are not in its document either: ``members[value eq "u"]`` and
``members.value eq "u"`` compile to a condition on the group's ``_id`` holding a
``GroupsOf`` placeholder, which ``with_member_groups`` replaces with the ids of the
groups the membership relation says hold ``u``, before the query runs.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from inspect import isclass
from typing import Any, cast

from scim2_models import (
    BaseModel,
    Extension,
    InvalidFilterException,
    InvalidValueException,
    Path,
    Resource,
    SCIMException,
    ScimFilter,
)
from scim2_models.path import (
    STRING_OPERATORS,
    AttributeBinding,
    AttrPath,
    CompareOperator,
    Comparison,
    FilterVisitor,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
    coerce_value,
)

from scim_server.models import storage_key
from scim_server.wire import is_unicode_text

Query = dict[str, Any]

COMPARISON_COPY = "c"
"""The document key holding the attributes in comparison form."""

_NATIVE_FIELDS = {
    "id": "_id",
    "meta": "meta",
    "meta.created": "meta.created",
    "meta.lastModified": "meta.lastModified",
}
"""Attributes stored outside the ``c`` copy, as native BSON values."""

_MEMBERS_SUPPORTED = (
    'groups are filtered by their members with members[value eq "<id>"] or '
    'members.value eq "<id>" (joined with and, or, not), nothing else of members'
)

_UNSTORED = {
    "groups": "filtering on 'groups' is not supported: group membership is not stored on the user",
    "members": f"'members' cannot be tested this way: {_MEMBERS_SUPPORTED}",
    "password": "'password' cannot be filtered on",
    "schemas": "filtering on 'schemas' is not supported",
}
"""Top-level core attributes the resource document does not hold."""

_RESOURCE_TYPE = "meta.resourceType"

_MEMBERS = "members"

_EMPTY_VALUES: list[Any] = [None, "", [], {}]
"""What ``pr`` does not count as a value (RFC 7644 §3.4.2.2)."""

_ANY_ELEMENT: Query = {"_": {"$not": {"$in": []}}}
"""A criterion every element satisfies, for ``$elemMatch`` bodies made only of operators.

SecantusDB reads an ``$elemMatch`` whose keys all start with ``$`` as the scalar form,
so ``{"$elemMatch": {"$or": [...]}}`` fails there ("unknown operator") where mongod
reads it as criteria. ``_`` can never be a SCIM attribute name, which must begin with a
letter, so the extra key changes nothing on either server.
"""

_OPERATORS = {
    CompareOperator.ne: "$ne",
    CompareOperator.gt: "$gt",
    CompareOperator.ge: "$gte",
    CompareOperator.lt: "$lt",
    CompareOperator.le: "$lte",
}


_BAREWORD = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<operator>(?<=\s)(?:eq|ne|co|sw|ew|gt|ge|lt|le)\s+)"
    r'(?P<word>[^\s"()\[\]]+)(?=[\s)\]]|$)',
    re.IGNORECASE,
)
"""A quoted string (skipped whole), or a comparison operator and the unquoted word after it."""

_LITERAL = re.compile(r"true|false|null|and|or|not|-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", re.I)
"""Words that keep their meaning unquoted: the grammar's literals, logical words, numbers."""


def unquoted_values_quoted(text: str) -> str:
    """The filter with each unquoted comparison value quoted as a JSON string.

    A dialect rule for Microsoft Entra, whose documented existence check is
    ``externalId eq jyoung``: a bare word after a comparison operator is read as the
    string it spells, unless it is ``true``, ``false``, ``null``, a number or a logical
    word, which keep their grammar meaning. Quoted strings are left as they are.
    """

    def quote(match: re.Match[str]) -> str:
        word = match["word"]
        if word is None or _LITERAL.fullmatch(word):
            return match[0]
        return match["operator"] + json.dumps(word, ensure_ascii=False)

    return _BAREWORD.sub(quote, text)


@dataclass(frozen=True)
class GroupsOf:
    """In a compiled query, the ids of the groups ``member`` directly belongs to.

    The membership relation answers them (``with_member_groups`` puts them in), so that a
    group filtered by a member is found on the relation's ``(tenant, member)`` index and then
    on the groups' ``_id``, never by reading any group's members.
    """

    member: str


def member_ids(query: Any) -> set[str]:
    """The members whose groups a compiled query needs (its ``GroupsOf`` placeholders)."""
    if isinstance(query, GroupsOf):
        return {query.member}
    if isinstance(query, Mapping):
        query = list(query.values())
    if isinstance(query, list):
        return set().union(*(member_ids(item) for item in query))
    return set()


def with_member_groups(query: Any, groups: Mapping[str, Sequence[str]]) -> Any:
    """The query with each ``GroupsOf`` replaced by the ids of that member's groups."""
    if isinstance(query, GroupsOf):
        return sorted(groups.get(query.member, ()))
    if isinstance(query, Mapping):
        return {key: with_member_groups(value, groups) for key, value in query.items()}
    if isinstance(query, list):
        return [with_member_groups(item, groups) for item in query]
    return query


def _member_condition(path: str, op: CompareOperator, value: Any) -> Query:
    """A comparison on a group's members, as the groups that hold the member it names."""
    if path != "members.value":
        raise InvalidFilterException(detail=f"'{path}' cannot be filtered on: {_MEMBERS_SUPPORTED}")
    if op != CompareOperator.eq or not isinstance(value, str):
        raise InvalidFilterException(
            detail=f"members.value cannot be compared with '{op.value}': {_MEMBERS_SUPPORTED}"
        )
    if not is_unicode_text(value):
        raise InvalidFilterException(detail=f"the value {value!r} is not Unicode text")
    return {"_id": {"$in": GroupsOf(value)}}


def match_nothing() -> Query:
    """A query no document satisfies, also inside ``$elemMatch`` (no element has ``_id``
    in an empty list), which ``{"_id": {"$exists": False}}`` would not be."""
    return {"_id": {"$in": []}}


def stored_field(binding: AttributeBinding) -> str:
    """The dotted MongoDB field a bound attribute is stored in.

    Raises InvalidFilterException for attributes the document does not hold.
    """
    extension, path = _schema_path(binding)
    if extension is not None:
        return f"{COMPARISON_COPY}.{storage_key(extension)}.{path}"
    if path in _NATIVE_FIELDS:
        return _NATIVE_FIELDS[path]
    head = path.split(".", 1)[0]
    if head in _UNSTORED:
        raise InvalidFilterException(detail=_UNSTORED[head])
    if head == "meta":
        raise InvalidFilterException(detail=f"'{path}' is not stored and cannot be queried")
    return f"{COMPARISON_COPY}.{path}"


def compile_filter(
    text: str,
    model: type[Resource[Any]],
    *,
    strict: bool = True,
    resource_type: str | None = None,
) -> Query:
    """Compile a SCIM filter into a MongoDB query on ``model``'s collection.

    With ``strict``, an attribute the model does not declare is an error; without it
    (the root ``/.search`` across resource types, RFC 7644 §3.4.2.1) the comparison is
    false for this resource type. ``resource_type`` is the name ``meta.resourceType``
    compares with, for a model several resource types share (Okta's ``Entitlement`` schema
    serves ``/Entitlements`` and ``/Licenses``); by default, the model schema's own name.
    Tenant (and type) scoping is left to the caller.
    """
    try:
        parse = cast(Any, ScimFilter[model])  # type: ignore[valid-type]
        scim_filter = parse(unquoted_values_quoted(text))
        compiler = _Compiler(scim_filter, model, strict=strict, resource_type=resource_type)
        return compiler.visit(scim_filter.ast)
    except InvalidFilterException:
        raise
    except (SCIMException, ValueError, TypeError) as exc:
        raise InvalidFilterException(filter=text, detail=f"invalid filter: {exc}") from exc


def compile_sort(sort_by: str, model: type[Resource[Any]]) -> str:
    """The stored field to sort on for a sortBy attribute (RFC 7644 §3.4.2.3).

    Sorting on the ``c`` copy orders caseExact=false attributes case-insensitively.
    A multi-valued complex attribute sorts on its ``value``; MongoDB then sorts an
    array by its smallest (ascending) or largest (descending) element.
    """
    try:
        path = cast(Any, Path[model])(sort_by)  # type: ignore[valid-type]
        if not isinstance(path.ast, AttrPath):
            raise InvalidValueException(detail=f"sortBy {sort_by!r} is not an attribute")
        binding = path.resolve()
        if binding is not None and _is_complex(binding) and binding.is_multivalued:
            binding = cast(Any, Path[model])(f"{path}.value").resolve()  # type: ignore[valid-type]
        if binding is None:
            raise InvalidValueException(detail=f"sortBy: unknown attribute {sort_by!r}")
        if _is_complex(binding):
            raise InvalidValueException(
                detail=f"sortBy: cannot sort on the complex attribute {sort_by!r}"
            )
        return stored_field(binding)
    except InvalidValueException:
        raise
    except (SCIMException, ValueError) as exc:
        raise InvalidValueException(detail=f"invalid sortBy {sort_by!r}: {exc}") from exc


def _schema_path(binding: AttributeBinding) -> tuple[str | None, str]:
    """The extension URN holding an attribute (None for the core schema) and its path."""
    schema = str(getattr(binding.model, "__schema__", None) or "")
    path = binding.urn
    if schema and path.startswith(schema + ":"):
        path = path[len(schema) + 1 :]
    is_extension = isclass(binding.model) and issubclass(binding.model, Extension)
    return (schema if is_extension else None), path


def _is_complex(binding: AttributeBinding) -> bool:
    target = binding.target_type
    return isclass(target) and issubclass(target, BaseModel)


def _operand(binding: AttributeBinding, value: Any) -> Any:
    """A coerced filter value in the form the stored field holds it in.

    A string must be one BSON can hold: the filter grammar's ``\\uXXXX`` escapes can
    spell a lone surrogate, which no UTF-8 string (so no stored value) contains.
    """
    if isinstance(value, str) and not is_unicode_text(value):
        raise InvalidFilterException(detail=f"the value {value!r} is not Unicode text")
    if isinstance(value, datetime):
        # BSON datetimes are UTC; a filter value without an offset is read as UTC.
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bytes):
        # Binary attributes are stored as the base64 text their JSON form carries.
        value = base64.b64encode(value).decode("ascii")
    return binding.comparable(value)


_LAST_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def _after_prefix(prefix: str) -> str | None:
    """The smallest string above every string that starts with ``prefix``; None if none is.

    BSON compares strings by their UTF-8 bytes, which orders them as their code points
    (as Python does): the bound is the prefix with its last code point incremented, once
    trailing U+10FFFF (which nothing follows) are dropped. Surrogates are skipped, since
    no stored string holds one.
    """
    stem = prefix.rstrip(chr(_LAST_CODE_POINT))
    if not stem:
        return None
    following = ord(stem[-1]) + 1
    if following in _SURROGATES:
        following = _SURROGATES.stop
    return stem[:-1] + chr(following)


def prefix_range(prefix: str) -> Query:
    """The strings starting with ``prefix``, as a range an index scans (``sw``).

    Exactly the strings an anchored ``$regex`` on the literal prefix matches, and only
    strings (comparison operators never match across types), but both SecantusDB and
    MongoDB bound an index scan with it, where SecantusDB scans the collection for a regex.
    """
    condition: Query = {"$gte": prefix}
    upper = _after_prefix(prefix)
    if upper is not None:
        condition["$lt"] = upper
    return condition


def _condition(op: CompareOperator, operand: Any) -> Any:
    """The MongoDB condition on one field; a substring operand must be a string."""
    if op == CompareOperator.eq:
        return operand
    if op in _OPERATORS:
        return {_OPERATORS[op]: operand}
    if op == CompareOperator.sw:
        return prefix_range(operand)
    escaped = re.escape(operand)
    if op == CompareOperator.ew:
        # \z is the absolute end in PCRE (and SecantusDB); $ also matches before "\n".
        return {"$regex": f"{escaped}\\z"}
    return {"$regex": escaped}


def _constant(actual: str, op: CompareOperator, expected: Any) -> bool:
    """Evaluate a comparison against a value every document of the collection shares."""
    if not isinstance(expected, str):
        return op == CompareOperator.ne
    return {
        CompareOperator.eq: actual == expected,
        CompareOperator.ne: actual != expected,
        CompareOperator.co: expected in actual,
        CompareOperator.sw: actual.startswith(expected),
        CompareOperator.ew: actual.endswith(expected),
        CompareOperator.gt: actual > expected,
        CompareOperator.ge: actual >= expected,
        CompareOperator.lt: actual < expected,
        CompareOperator.le: actual <= expected,
    }[op]


def all_of(terms: list[Query]) -> Query:
    """A conjunction, as one document when the terms' conditions can share one.

    A single document lets the planner use a compound index on its fields; a
    top-level ``$and`` is not index-planned by SecantusDB. Two conditions on one field
    merge when their operators differ (``id eq "g" and members[value eq "u"]``: one
    ``_id`` with ``$eq`` and ``$in``), which MongoDB reads as their conjunction.
    """
    if any(term == match_nothing() for term in terms):
        return match_nothing()
    terms = [term for term in terms if term]
    if len(terms) == 1:
        return terms[0]
    merged: Query = {}
    for term in terms:
        for field, condition in term.items():
            if field not in merged:
                merged[field] = condition
                continue
            earlier, later = _operators(merged[field]), _operators(condition)
            if (
                field.startswith("$")
                or earlier is None
                or later is None
                or earlier.keys() & later.keys()
            ):
                return {"$and": terms}
            merged[field] = {**earlier, **later}
    return merged


def _operators(condition: Any) -> Query | None:
    """A field's condition as a document of operators, if it can be one (``$eq`` for a value)."""
    if isinstance(condition, dict):
        operators = bool(condition) and all(key.startswith("$") for key in condition)
        return condition if operators else None
    return None if isinstance(condition, list) else {"$eq": condition}


def _any_of(terms: list[Query]) -> Query:
    if any(term == {} for term in terms):
        return {}
    terms = [term for term in terms if term != match_nothing()]
    if not terms:
        return match_nothing()
    return terms[0] if len(terms) == 1 else {"$or": terms}


def _on_one_element(field: str, binding: AttributeBinding, condition: Query) -> Query:
    """``condition`` held by one element of a multi-valued attribute, not spread over several.

    On an array, each operator of ``{"$gte": a, "$lt": b}`` may be met by a different
    element; ``$elemMatch`` holds them to the same one.
    """
    if binding.sub_field_name is None:
        return {field: {"$elemMatch": condition}}
    head, sub = field.rsplit(".", 1)
    return {head: {"$elemMatch": {sub: condition}}}


def _negation(query: Query) -> Query:
    if query == {}:
        return match_nothing()
    if query == match_nothing():
        return {}
    return {"$nor": [query]}


class _Compiler(FilterVisitor[Query]):
    """Turn a bound filter's syntax tree into a MongoDB query.

    Inside a value selection (``within`` set) attribute paths are resolved as
    sub-attributes of the selected attribute, and fields are relative to its
    elements, as ``$elemMatch`` wants them.
    """

    def __init__(
        self,
        scim_filter: Any,
        model: type[Resource[Any]],
        *,
        strict: bool,
        within: tuple[AttrPath, str] | None = None,
        resource_type: str | None = None,
    ) -> None:
        self.filter = scim_filter
        self.resource_type = resource_type or str(model.__schema__).rsplit(":", 1)[-1]
        self.strict = strict
        self.within = within

    def _bind(self, attr_path: AttrPath, *, comparison: bool) -> AttributeBinding | None:
        """Bind a path, or return None for an unknown attribute when not strict."""
        if self.within is not None:
            outer, _ = self.within
            if attr_path.uri is not None or attr_path.sub_attr is not None:
                if self.strict:
                    raise InvalidFilterException(
                        detail=f"'{attr_path}' is not a sub-attribute of '{outer}'"
                    )
                return None
            attr_path = AttrPath(outer.attr, attr_path.attr, outer.uri)
        resolve = self.filter.resolve_comparison if comparison else self.filter.resolve
        try:
            binding = cast(AttributeBinding | None, resolve(attr_path, strict=self.strict))
        except InvalidFilterException:
            binding = self._in_extension(attr_path, comparison=comparison)
            if binding is None:
                raise
        return binding or self._in_extension(attr_path, comparison=comparison)

    def _in_extension(self, attr_path: AttrPath, *, comparison: bool) -> AttributeBinding | None:
        """An attribute named without its URN, bound in the one extension that declares it.

        A dialect rule for Microsoft Entra, whose reference check is ``id eq "<user>" and
        manager eq "<manager>"``: ``manager`` is the enterprise extension's. A name that is
        neither a core attribute nor an extension's stays unknown.
        """
        if attr_path.uri is not None or self.within is not None:
            return None
        resolve = self.filter.resolve_comparison if comparison else self.filter.resolve
        for urn in self.filter.model.get_extension_models():
            qualified = AttrPath(attr_path.attr, attr_path.sub_attr, urn)
            try:
                return cast(AttributeBinding | None, resolve(qualified, strict=True))
            except InvalidFilterException:
                continue
        return None

    def _implied_value(self, attr_path: AttrPath, binding: AttributeBinding) -> AttributeBinding:
        """A comparison on a single-valued complex attribute that has a ``value``, such as
        ``manager eq "<id>"`` (Entra's shorthand), compares that ``value``."""
        if binding.is_multivalued or not _is_complex(binding):
            return binding
        if "value" not in cast(type[BaseModel], binding.target_type).model_fields:
            return binding
        extension, _ = _schema_path(binding)
        qualified = AttrPath(attr_path.attr, "value", extension or attr_path.uri)
        return cast(AttributeBinding, self.filter.resolve_comparison(qualified, strict=True))

    def _field(self, binding: AttributeBinding) -> str:
        field = stored_field(binding)
        if self.within is None:
            return field
        return field.removeprefix(self.within[1] + ".")

    def _is_resource_type(self, binding: AttributeBinding) -> bool:
        return self.within is None and _schema_path(binding) == (None, _RESOURCE_TYPE)

    def _members_path(self, binding: AttributeBinding) -> str | None:
        """A group's ``members`` path the binding names (``members``, ``members.value``)."""
        extension, path = _schema_path(binding)
        is_members = path.split(".", 1)[0] == _MEMBERS
        return path if self.resource_type == "Group" and extension is None and is_members else None

    def _in_members(self) -> bool:
        return self.within is not None and self.within[1] == _MEMBERS

    def visit_comparison(self, node: Comparison) -> Query:
        binding = self._bind(node.attr_path, comparison=True)
        if binding is None:
            return match_nothing()
        members_path = self._members_path(binding)
        if members_path is not None:
            return _member_condition(members_path, node.op, node.value)
        if self.within is None:
            binding = self._implied_value(node.attr_path, binding)
        if _is_complex(binding):
            raise InvalidFilterException(
                detail=f"the complex attribute '{node.attr_path}' cannot be compared"
            )
        value = coerce_value(binding, node.value, node.op)
        if self._is_resource_type(binding):
            # meta.resourceType is not stored: it is the same for the whole collection.
            holds = _constant(self.resource_type, node.op, value)
            return {} if holds else match_nothing()
        field = self._field(binding)
        operand = _operand(binding, value)
        if node.op in STRING_OPERATORS and not isinstance(operand, str):
            return match_nothing()  # as ScimFilter.match: only a string contains a string
        condition = _condition(node.op, operand)
        if node.op == CompareOperator.sw and self.within is None and binding.is_multivalued:
            return _on_one_element(field, binding, condition)
        return {field: condition}

    def visit_present(self, node: Present) -> Query:
        binding = self._bind(node.attr_path, comparison=False)
        if binding is None:
            return match_nothing()
        if self._is_resource_type(binding):
            return {}
        members_path = self._members_path(binding)
        if members_path is not None:
            raise InvalidFilterException(
                detail=f"'{members_path} pr' cannot be tested: {_MEMBERS_SUPPORTED}"
            )
        field = self._field(binding)
        present = {"$exists": True, "$nin": _EMPTY_VALUES}
        if self.within is not None or not binding.is_multivalued:
            return {field: present}
        if binding.sub_field_name is None:
            # Some element holds a value; "$nin" on the array itself would reject the
            # whole attribute for one empty element.
            return {field: {"$elemMatch": {"$nin": _EMPTY_VALUES}}}
        # Implicit array traversal reads a missing sub-attribute as null, which
        # "$nin" would count against the document: test each element on its own.
        return _on_one_element(field, binding, present)

    def visit_not(self, node: Not) -> Query:
        if self._in_members():
            raise InvalidFilterException(detail=f"'not' inside members[...]: {_MEMBERS_SUPPORTED}")
        return _negation(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> Query:
        terms = [self.visit(term) for term in node.terms]
        if node.op == LogicalOperator.or_:
            return _any_of(terms)
        if self._in_members():
            # One member cannot be two: and-ing values inside the selection means nothing here.
            raise InvalidFilterException(detail=f"'and' inside members[...]: {_MEMBERS_SUPPORTED}")
        return all_of(terms)

    def visit_value_path(self, node: ValuePath) -> Query:
        if self.within is not None:
            raise InvalidFilterException(detail="value selections cannot be nested")
        binding = self._bind(node.attr_path, comparison=False)
        if binding is None:
            return match_nothing()
        if not binding.is_multivalued or not _is_complex(binding):
            raise InvalidFilterException(
                detail=f"'{node.attr_path}' holds no complex values to select"
            )
        if self._members_path(binding) is not None:
            # Each selected value is a member: the selection is the groups holding one of them.
            return _Compiler(
                self.filter,
                self.filter.model,
                strict=self.strict,
                within=(node.attr_path, _MEMBERS),
                resource_type=self.resource_type,
            ).visit(node.val_filter)
        field = self._field(binding)
        inner = _Compiler(
            self.filter,
            self.filter.model,
            strict=self.strict,
            within=(node.attr_path, field),
            resource_type=self.resource_type,
        ).visit(node.val_filter)
        if inner == match_nothing():
            return inner
        if all(key.startswith("$") for key in inner):
            inner = {**inner, **_ANY_ELEMENT}
        return {field: {"$elemMatch": inner}}
