"""Versions as ETags, and conditional requests on them (RFC 7644 §3.14).

A resource's ``meta.version`` is a counter; its ETag is always the weak tag of that
number (``W/"7"``), in the ``ETag`` header, in ``meta.version`` and in a Bulk
operation's ``version``. The handlers pass on the tags a client sent; what they mean
is decided here: ``If-Match`` guards a write (412 when stale), ``If-None-Match``
spares a read (304 when the client's copy is current).
"""

from __future__ import annotations

from dataclasses import dataclass

from scim2_models import PreconditionFailedException


def etag(version: int) -> str:
    """The ETag of a version: weak, since equal versions are equivalent, not byte-identical."""
    return f'W/"{version}"'


@dataclass(frozen=True)
class Preconditions:
    """``If-Match`` / ``If-None-Match`` ETags (RFC 7644 §3.14); None when absent."""

    if_match: tuple[str, ...] | None = None
    if_none_match: tuple[str, ...] | None = None

    def expected_version(self, version: int) -> int | None:
        """The version a write must find, or None when the client did not ask; stale: 412."""
        if self.if_match is None:
            return None
        if not _matches(self.if_match, version):
            raise resource_changed()
        return version

    def not_modified(self, version: int) -> bool:
        """Whether a read answers 304: ``If-None-Match`` names the current version (or ``*``)."""
        return self.if_none_match is not None and _matches(self.if_none_match, version)


def resource_changed() -> PreconditionFailedException:
    """The 412 of a write whose ``If-Match`` version is no longer the stored one."""
    return PreconditionFailedException(detail="the resource has changed (If-Match)")


def _matches(tags: tuple[str, ...], version: int) -> bool:
    """Weak comparison (RFC 9110 §8.8.3.2): ``"7"`` and ``W/"7"`` both name version 7."""
    current = etag(version)
    return any(tag == "*" or _weak(tag) == current for tag in tags)


def _weak(tag: str) -> str:
    return tag if tag.startswith("W/") else f"W/{tag}"


UNCONDITIONAL = Preconditions()
