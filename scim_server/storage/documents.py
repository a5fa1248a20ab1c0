"""How a SCIM resource is laid out in a MongoDB document, and back.

A stored resource keeps its attributes twice: ``r`` exactly as written, which is
what clients read back, and ``c`` in *comparison form* (each string through
scim2-models' ``comparable``: NFC, lowercased unless the attribute is caseExact).
Filters, sorting and the uniqueness index all work on ``c``, so case-insensitive
matching is plain index equality on every MongoDB, with no collation or regex flag.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from scim2_models import AttributeBinding, Path

from scim_server.models import ResourceKind, storage_key

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
        return binding.comparable(value) if binding is not None else value
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


def stored_attributes(kind: ResourceKind, payload: Payload) -> tuple[Payload, Payload]:
    """Split a validated SCIM payload into its stored ``r`` and ``c`` sub-documents."""
    raw = {key: value for key, value in payload.items() if key not in NOT_STORED}
    comparison = _comparison_attributes(kind, raw)
    escape = {urn: storage_key(urn) for urn in kind.extensions}
    return (
        {escape.get(key, key): value for key, value in raw.items()},
        {escape.get(key, key): value for key, value in comparison.items()},
    )
