"""Unit tests: the pure logic, in memory, in milliseconds.

They must not start the database or a server. The suite's database fixture is
session-scoped but not autouse, so it starts only for a test that asks for it; this
conftest refuses, at collection, a unit test that asks for it (or for a client).
"""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT_TESTS = Path(__file__).parent
SERVER_FIXTURES = frozenset({"mongodb_uri", "mongo_db", "client", "aiohttp_client", "settings"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(UNIT_TESTS):
            continue
        wanted = SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if wanted:
            raise pytest.UsageError(
                f"{item.nodeid} is a unit test but asks for {', '.join(sorted(wanted))}: "
                "it would start the database; move it out of tests/unit"
            )
