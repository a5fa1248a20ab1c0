"""Client text as it came over the wire, and whether a database can hold it.

aiohttp decodes header bytes as UTF-8 with ``surrogateescape``: bytes that are not UTF-8
become lone surrogates, which encode back to those bytes and to nothing else. JSON-style
``\\uD800`` escapes (in filters) can spell a lone surrogate too. No BSON string can hold
one, and no secret or token is made of one.
"""

from __future__ import annotations

from datetime import UTC, datetime


def header_bytes(value: str) -> bytes:
    """The bytes a header value (a token, a cookie) was sent as, to compare or decode."""
    return value.encode("utf-8", "surrogateescape")


def is_unicode_text(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8, as every BSON string must (no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def client_instant(text: object) -> datetime | None:
    """An ISO 8601 date-time a client sent, in UTC (UTC when it names no offset), or None
    when it is none, or one that no database can store (before the year 1 once in UTC)."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
