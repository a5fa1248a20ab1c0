"""SAML timestamps: xs:dateTime in UTC with millisecond precision, as Okta writes them.

Parsing insists on a timezone: a naive timestamp is ambiguous by hours, which is exactly the
window an attacker would use to stretch an assertion's validity (docs/saml.md, attack
``timestamps_without_timezone``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_INSTANT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})"
)


def format_instant(dt: datetime) -> str:
    """``2026-11-23T13:53:49.123Z`` for an aware datetime; naive ones are refused, not guessed."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("a SAML instant needs a timezone")
    utc = dt.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def parse_instant(text: str) -> datetime:
    """An aware UTC datetime from an xs:dateTime; ValueError without a timezone or on bad text."""
    match = _INSTANT.fullmatch(text)
    if match is None:
        raise ValueError(f"not a SAML instant with a timezone: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = UTC if zone == "Z" else _offset(zone)
    try:
        parsed = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
        )
    except ValueError as exc:
        raise ValueError(f"not a valid SAML instant: {text!r}") from exc
    return parsed.astimezone(UTC)


def _offset(zone: str) -> timezone:
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"not a valid timezone offset: {zone!r}")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if zone[0] == "-" else delta)
