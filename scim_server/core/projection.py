"""``attributes`` and ``excludedAttributes`` (RFC 7644 §3.4.2.5), with RFC 7643 ``returned`` rules.

scim2-models applies the selection and the ``returned`` characteristics (``id``
and ``schemas`` always, ``password`` never); this module parses the request
parameters and answers one question the storage needs first: will the response
carry the expensive derived attributes (``members``, ``groups``) at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from scim2_models import Context, ResponseParameters

from scim_server.core.errors import from_validation_error
from scim_server.models import ResourceKind, parametrized

Payload = dict[str, Any]


def split_list(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Read a comma-separated query parameter, or a JSON list from a search body."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip() for item in items if item and item.strip())


@dataclass(frozen=True)
class Selection:
    attributes: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls, attributes: str | Sequence[str] | None, excluded: str | Sequence[str] | None
    ) -> Selection:
        return cls(split_list(attributes), split_list(excluded))

    def includes(self, kind: ResourceKind, attribute: str) -> bool:
        """Whether the top-level ``attribute`` of ``kind`` can appear in the response."""
        if self.attributes:
            return any(_head(kind, path) == attribute.lower() for path in self.attributes)
        return not any(_head(kind, path) == attribute.lower() for path in self.excluded)

    def apply(self, kind: ResourceKind, payload: Payload) -> Payload:
        if not self.attributes and not self.excluded and "password" not in payload:
            return payload
        try:
            resource = kind.model.model_validate(payload)
            # Parametrised by the resource type, so that attribute paths are checked against
            # its schema; validated from the wire names, as a client sends them.
            parameters = parametrized(ResponseParameters, kind.model).model_validate(
                {
                    "attributes": list(self.attributes) or None,
                    "excludedAttributes": list(self.excluded) or None,
                }
            )
        except ValidationError as error:
            raise from_validation_error(error) from None
        selected = dict(
            resource.model_dump(
                scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=parameters
            )
        )
        if isinstance(selected.get("meta"), dict) and isinstance(payload.get("meta"), dict):
            # Keep meta as stored (pydantic re-dumps timestamps as ".129000Z", not ".129Z").
            selected["meta"] = {
                key: payload["meta"][key] for key in selected["meta"] if key in payload["meta"]
            }
        return selected


def _head(kind: ResourceKind, path: str) -> str:
    """The top-level attribute a path designates: ``members.value`` -> ``members``."""
    lowered = path.lower()
    prefix = kind.schema.lower() + ":"
    if lowered.startswith(prefix):
        lowered = lowered[len(prefix) :]
    return lowered.split(".", 1)[0]
