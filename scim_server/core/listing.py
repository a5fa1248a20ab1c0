"""The parameters of a list or search request (RFC 7644 §3.4.2, §3.4.3), read and bounded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from scim2_models import InvalidValueException, SearchRequest

from scim_server.core.errors import from_validation_error
from scim_server.core.projection import Selection

Payload = dict[str, Any]

MAX_PAGING_INTEGER = 2**31 - 1
"""The largest ``startIndex`` or ``count`` magnitude read, on every path (query or body).

Beyond it a value cannot mean a real page, and MongoDB's ``skip`` and ``limit`` are
64-bit: refusing it (400) keeps the arithmetic on it, and the database, in range.
"""


@dataclass(frozen=True)
class ListQuery:
    filter: str | None = None
    sort_by: str | None = None
    descending: bool = False
    start_index: int = 1
    """1-based; values below 1 are read as 1 (RFC 7644 §3.4.2.4)."""
    count: int | None = None
    """None: the server's page size. Never above ``filter.maxResults``."""
    selection: Selection = field(default_factory=Selection)
    cursor: str | None = None
    """RFC 9865: None for index pagination, "" for the first cursor page, else a cursor."""

    def page_size(self, max_results: int) -> int:
        return max_results if self.count is None else min(self.count, max_results)

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> ListQuery:
        """Read a list GET's query string; parameter names are case-insensitive."""
        lowered = {key.lower(): value for key, value in params.items()}
        return cls._build(
            filter=lowered.get("filter"),
            sort_by=lowered.get("sortby"),
            sort_order=lowered.get("sortorder"),
            start_index=_integer(lowered, "startindex"),
            count=_integer(lowered, "count"),
            selection=Selection.parse(lowered.get("attributes"), lowered.get("excludedattributes")),
            cursor=lowered.get("cursor"),
            explicit_start="startindex" in lowered,
        )

    @classmethod
    def from_search(cls, body: Mapping[str, Any]) -> ListQuery:
        """Read a ``POST .search`` body, validated as a SearchRequest message."""
        try:
            request: SearchRequest[Any] = SearchRequest.model_validate(dict(body))
        except ValidationError as error:
            raise from_validation_error(error) from None
        return cls._build(
            filter=request.filter,
            sort_by=request.sort_by,
            sort_order=request.sort_order.value if request.sort_order else None,
            start_index=request.start_index,
            count=request.count if "count" in body else None,
            selection=Selection.parse(
                [str(a) for a in request.attributes or []],
                [str(a) for a in request.excluded_attributes or []],
            ),
            cursor=body.get("cursor"),
            explicit_start="startIndex" in body,
        )

    @classmethod
    def _build(
        cls,
        *,
        filter: str | None,
        sort_by: str | None,
        sort_order: str | None,
        start_index: int | None,
        count: int | None,
        selection: Selection,
        cursor: Any,
        explicit_start: bool,
    ) -> ListQuery:
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidValueException(detail="cursor is a string")
        if cursor is not None and explicit_start:
            raise InvalidValueException(detail="use either cursor or startIndex, not both")
        if sort_order is not None and sort_order.lower() not in ("ascending", "descending"):
            raise InvalidValueException(detail="sortOrder is 'ascending' or 'descending'")
        return cls(
            filter=filter or None,
            sort_by=sort_by or None,
            descending=(sort_order or "").lower() == "descending",
            start_index=max(1, _bounded("startIndex", start_index or 1)),
            count=None if count is None else max(0, _bounded("count", count)),
            selection=selection,
            cursor=cursor,
        )


def list_response(resources: list[Payload], total: int | None, start_index: int | None) -> Payload:
    """A ListResponse; cursor pages (RFC 9865) carry neither a total nor a start index."""
    response: Payload = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}
    if total is not None:
        response["totalResults"] = total
    if start_index is not None:
        response["startIndex"] = start_index
    response["itemsPerPage"] = len(resources)
    response["Resources"] = resources
    return response


def _bounded(name: str, value: int) -> int:
    if not -MAX_PAGING_INTEGER <= value <= MAX_PAGING_INTEGER:
        raise InvalidValueException(
            detail=f"{name} must be an integer of at most {MAX_PAGING_INTEGER}, got {value}"
        )
    return value


def _integer(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidValueException(detail=f"{name} must be an integer, got {raw!r}") from None
