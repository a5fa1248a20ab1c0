"""Redaction of journaled bodies: in place, every secret at any depth, deep nesting cut."""

from __future__ import annotations

from typing import Any

from scim_server.core.journal import REDACTED, TOO_DEEP, redact


def test_a_body_is_redacted_in_place_not_copied() -> None:
    """A Bulk body of a thousand creations is walked once and changed where its secrets are,
    not copied whole for them."""
    operations: list[Any] = [
        {"method": "POST", "data": {"userName": f"u{n}", "PASSWORD": "s3cret"}} for n in range(3)
    ]
    body: dict[str, Any] = {
        "Operations": [
            *operations,
            {"op": "replace", "path": "password", "value": "s3cret"},
            {"filter": 'password eq "s3cret"', "path": "/Users"},
        ]
    }
    redacted = redact(body)
    assert redacted.value is body
    assert redacted.truncated is False
    assert body["Operations"][0] is operations[0]
    assert [operation["data"]["PASSWORD"] for operation in operations] == [REDACTED] * 3
    assert body["Operations"][3]["value"] == REDACTED
    assert body["Operations"][4] == {"filter": f'password eq "{REDACTED}"', "path": "/Users"}


def test_containers_deeper_than_the_limit_are_cut() -> None:
    nested: Any = {"a": [{"b": {"password": "x"}}]}
    redacted = redact(nested, max_depth=3)
    assert redacted.truncated is True
    assert redacted.value == {"a": [{"b": TOO_DEEP}]}
    assert redact("text") == ("text", False)
