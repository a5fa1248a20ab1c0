"""Conditional requests on versions (RFC 7644 §3.14): ``If-Match`` and ``If-None-Match``.

A resource's ``meta.version`` is a counter; its ETag is always the weak tag of that
number. The handlers pass the tags a client sent; the core decides what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass

from scim2_models import PreconditionFailedException

from scim_server.storage.documents import etag


@dataclass(frozen=True)
class Preconditions:
    """``If-Match`` / ``If-None-Match`` ETags (RFC 7644 §3.14); None when absent."""

    if_match: tuple[str, ...] | None = None
    if_none_match: tuple[str, ...] | None = None

    @staticmethod
    def matches(tags: tuple[str, ...], version: int) -> bool:
        current = etag(version)
        return any(tag == "*" or _weak(tag) == current for tag in tags)

    def expected_version(self, version: int) -> int | None:
        """The version a write must find, or None when the client did not ask; stale: 412."""
        if self.if_match is None:
            return None
        if not self.matches(self.if_match, version):
            raise resource_changed()
        return version


def resource_changed() -> PreconditionFailedException:
    """The 412 of a write whose ``If-Match`` version is no longer the stored one."""
    return PreconditionFailedException(detail="the resource has changed (If-Match)")


def _weak(tag: str) -> str:
    return tag if tag.startswith("W/") else f"W/{tag}"


UNCONDITIONAL = Preconditions()
