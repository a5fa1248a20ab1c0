"""scim2-tester's conformance checks against a real server process (discovery, CRUD, PATCH
add/remove/replace, attributes, search) on one tenant."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx2
import pytest
from pymongo import MongoClient
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from scim_server.embedded import free_port
from tests.support.served import finished

ADMIN_TOKEN = "scim2-tester-admin-token"


@pytest.fixture(scope="module")
def tester_results(mongodb_uri: str) -> Iterator[list[CheckResult]]:
    """Run every scim2-tester check once against a ``scim-server serve`` subprocess."""
    port = free_port()
    database = f"scim2tester_{uuid.uuid4().hex[:12]}"
    command = [
        sys.executable,
        "-m",
        "scim_server",
        "serve",
        "--port",
        str(port),
        "--mongodb-uri",
        mongodb_uri,
        "--database",
        database,
        "--admin-token",
        ADMIN_TOKEN,
        "--token-secret",
        "t" * 32,
        "--log-level",
        "WARNING",
        # scim2-tester sends as fast as it can and does not back off on 429: it checks the
        # protocol, not the rate limit.
        "--rate-limit",
        "0",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "listening on" in banner, banner
        root = f"http://127.0.0.1:{port}"
        created = httpx2.post(
            f"{root}/admin/tenants",
            json={"name": "conformance"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert created.status_code == 201, created.text
        tenant = created.json()
        assert tenant["scim_base_url"] == f"{root}/scim/v2/conformance"

        with httpx2.Client(
            base_url=tenant["scim_base_url"],
            timeout=30,
            headers={"Authorization": f"Bearer {tenant['token']}"},
        ) as http:
            client = SyncSCIMClient(http)
            client.discover()
            yield check_server(client)
    finally:
        process.terminate()
        finished(process, 30)
        with MongoClient(mongodb_uri) as mongo:
            mongo.drop_database(database)


def _describe(results: list[CheckResult]) -> str:
    return "\n".join(
        f"{r.status.name} {r.resource_type or '-'} {r.title}: {r.reason}" for r in results
    )


def test_scim2_tester_ran_the_whole_suite(tester_results: list[CheckResult]) -> None:
    titles = {r.title for r in tester_results}
    assert {
        "object_creation",
        "object_query",
        "object_replacement",
        "object_deletion",
        "check_add_attribute",
        "check_remove_attribute",
        "check_replace_attribute",
    } <= titles
    assert {r.resource_type for r in tester_results} >= {"User", "Group"}
    assert len(tester_results) > 100


def test_scim2_tester_checks_all_succeed(tester_results: list[CheckResult]) -> None:
    failures = [r for r in tester_results if r.status is not Status.SUCCESS]
    assert not failures, _describe(failures)
