"""The ``scim-server`` admin commands as a test runs them: in a thread, against the live test
server, with the suite's admin token."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from scim_server.cli import main
from tests.support.scim import ADMIN_TOKEN


async def admin_cli(
    client: TestClient[Any, Any], capsys: pytest.CaptureFixture[str], *args: str
) -> str:
    """Run ``scim-server ARGS`` against ``client``'s server; answer what it printed."""
    url = str(client.make_url("")).rstrip("/")
    code = await asyncio.to_thread(main, [*args, "--url", url, "--admin-token", ADMIN_TOKEN])
    assert code == 0
    return capsys.readouterr().out
