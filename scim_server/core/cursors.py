"""Cursor pagination (RFC 9865): opaque, signed, expiring cursors over keyset pages.

A cursor records where a page ended (the sort key and ``_id`` of its last or
first resource) rather than how many resources came before it, so the next page
is an index range scan that costs the same on the first page and on the
ten-thousandth, and resources inserted or deleted meanwhile never make a walk
skip or repeat one that existed throughout.

Cursors are JWTs (HMAC) carrying the tenant and a fingerprint of the query, so a
cursor tampered with, or replayed on another tenant or another query, is
``invalidCursor``; one older than the timeout is ``expiredCursor``. The JWT
alphabet (base64url and ``.``) is within the unreserved characters RFC 9865 §2
allows in a cursor.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import jwt
from scim2_models import ExpiredCursorException, InvalidCursorException

Direction = Literal["next", "previous"]
SortSpec = list[tuple[str, int]]


@dataclass(frozen=True)
class Position:
    """A page boundary: the sort value and id of the resource the cursor continues from."""

    direction: Direction
    value: Any
    resource_id: str


def fingerprint(*parts: object) -> str:
    """A short digest binding a cursor to one query (resource type, filter, sort)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


class CursorCodec:
    def __init__(self, secret: str, timeout_seconds: int) -> None:
        self._key = hashlib.sha256(f"cursor:{secret}".encode()).hexdigest()
        self.timeout_seconds = timeout_seconds

    def encode(self, tenant: str, query: str, position: Position) -> str:
        claims = {
            "t": tenant,
            "q": query,
            "d": position.direction[0],
            "v": _claim(position.value),
            "i": position.resource_id,
            "exp": int(time.time()) + self.timeout_seconds,
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def decode(self, cursor: str, tenant: str, query: str) -> Position:
        try:
            claims = jwt.decode(
                cursor,
                self._key,
                algorithms=["HS256"],
                options={"require": ["exp", "t", "q", "d", "i"]},
            )
        except jwt.ExpiredSignatureError:
            raise ExpiredCursorException(detail="the cursor has expired; start again") from None
        except jwt.InvalidTokenError:
            raise InvalidCursorException(detail="the cursor is not valid") from None
        if claims["t"] != tenant or claims["q"] != query:
            raise InvalidCursorException(detail="the cursor belongs to another query")
        direction: Direction = "previous" if claims["d"] == "p" else "next"
        return Position(direction, _value(claims.get("v")), str(claims["i"]))


def _claim(value: Any) -> Any:
    # Sort keys are strings, numbers, booleans or (for meta dates) datetimes, which JSON lacks.
    return {"dt": value.isoformat()} if isinstance(value, datetime) else value


def _value(claim: Any) -> Any:
    return datetime.fromisoformat(claim["dt"]) if isinstance(claim, dict) else claim


def keyset_condition(sort: SortSpec, position: Position) -> dict[str, Any]:
    """The resources strictly after (or before) ``position`` in ``sort`` order.

    ``sort`` is ``[(field, direction), ("_id", direction)]``, ``[(field, direction)]`` for a
    field no two resources of a tenant share (``ResourceRepository.order_by``), or
    ``[("_id", 1)]``. Missing sort values sort first in MongoDB, and comparison operators
    never match across types, so a boundary on a missing value is spelt out. With no
    tiebreak, the condition is a range of the field alone, which every store bounds on the
    field's index (an ``$or`` beside the tenant is a scan of the collection on SecantusDB).
    """
    forward = position.direction == "next"
    (field, order), *tiebreak = sort
    ascending = (order == 1) == forward
    after = "$gt" if ascending else "$lt"
    if field == "_id":
        return {"_id": {after: position.resource_id}}
    beyond: dict[str, Any]
    if position.value is None:
        beyond = {field: {"$ne": None}} if ascending else {"_id": {"$in": []}}
    else:
        beyond = {field: {after: position.value}}
        if not ascending:
            # Descending, the missing values come last: they are all "after" a present one.
            beyond = {"$or": [beyond, {field: None}]}
    if not tiebreak:
        return beyond
    id_after = "$gt" if ((tiebreak[0][1] == 1) == forward) else "$lt"
    tie: dict[str, Any] = {field: position.value, "_id": {id_after: position.resource_id}}
    return {"$or": [tie, beyond]}


def traversal(sort: SortSpec, direction: Direction) -> SortSpec:
    """Read order: backwards pages are read in reverse and flipped back afterwards."""
    if direction == "next":
        return sort
    return [(field, -order) for field, order in sort]
