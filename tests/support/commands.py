"""The database commands a request costs, read from the server's own per-request tally.

The command listener on the server's client counts every command a request starts into that
request's tally (the one ``scim_request_database_commands`` is fed from); an application hook
hands each tally here when its response is prepared, so nothing another task runs meanwhile
is counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Collection
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from scim_server.config import Settings
from scim_server.core import one_team, seats, tokens, user_extensions
from scim_server.web.app import create_app
from scim_server.web.request_metrics import REQUEST_TALLY

READING_SECONDS = 3600.0


def readings_serve_the_whole_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the server reads once and reuses for a moment (a tenant read as unlimited, its
    teams, its User extensions, a token found live), and the seat fence's lease, last a whole
    test, so that no count depends on how long the requests took: on a busy machine a
    creation that took longer than the lease (0.5 s) checked the tenant's count once more, and
    the 5-second token check was renewed mid-test, each adding a read to a count now and
    then."""
    monkeypatch.setattr(seats, "UNLIMITED_READING_SECONDS", READING_SECONDS)
    monkeypatch.setattr(seats, "LEASE_SECONDS", READING_SECONDS)
    monkeypatch.setattr(one_team, "POLICY_READING_SECONDS", READING_SECONDS)
    monkeypatch.setattr(tokens, "CACHE_SECONDS", READING_SECONDS)
    monkeypatch.setattr(user_extensions, "READING_SECONDS", READING_SECONDS)


class Commands:
    """The commands each request started on ``collections``, by command name."""

    def __init__(self, collections: Collection[str]) -> None:
        self.collections = frozenset(collections)
        self.answered: list[Counter[str]] = []

    async def prepared(self, request: web.Request, _response: web.StreamResponse) -> None:
        tally = request[REQUEST_TALLY]
        seen: Counter[str] = Counter()
        for (collection, command), count in tally.commands.items():
            if collection in self.collections:
                seen[command] += count
        self.answered.append(seen)

    async def of(self, request: Awaitable[Any], *, succeeds: bool = True) -> dict[str, int]:
        """The commands one awaited request costs, by command name; ``succeeds``: it must."""
        self.answered.clear()
        response = await request
        if succeeds:
            assert response.status < 400, await response.text()
        (seen,) = self.answered
        return dict(seen)

    async def client(self, aiohttp_client: Any, settings: Settings) -> TestClient[Any, Any]:
        """A test client on an application that hands each request's tally here."""
        app = create_app(settings)
        app.on_response_prepare.append(self.prepared)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        return client
