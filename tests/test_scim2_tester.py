"""scim2-tester's conformance checks against a real server process (discovery, CRUD, PATCH
add/remove/replace, attributes, search) on one tenant."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from pymongo import MongoClient
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from scim_server.embedded import free_port

ADMIN_TOKEN = "scim2-tester-admin-token"

# The server derives a member's ``display`` from the member itself (its displayName, else its
# userName) and ignores the one a client sends; scim2-tester expects its random ``display``
# echoed back by PATCH add/replace of Group.members.
MEMBERS_DISPLAY_GAP = {("Group", "check_add_attribute", "members"),
                       ("Group", "check_replace_attribute", "members")}


@pytest.fixture(scope="module")
def tester_results(mongodb_uri: str) -> Iterator[list[CheckResult]]:
    """Run every scim2-tester check once against a ``scim-server serve`` subprocess."""
    port = free_port()
    database = f"scim2tester_{uuid.uuid4().hex[:12]}"
    command = [
        sys.executable, "-m", "scim_server", "serve", "--port", str(port),
        "--mongodb-uri", mongodb_uri, "--database", database,
        "--admin-token", ADMIN_TOKEN, "--token-secret", "t" * 32, "--log-level", "WARNING",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "listening on" in banner, banner
        root = f"http://127.0.0.1:{port}"
        created = httpx2.post(f"{root}/admin/tenants", json={"name": "conformance"},
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert created.status_code == 201, created.text
        tenant = created.json()
        assert tenant["scim_base_url"] == f"{root}/scim/v2/conformance"

        with httpx2.Client(base_url=tenant["scim_base_url"], timeout=30,
                           headers={"Authorization": f"Bearer {tenant['token']}"}) as http:
            client = SyncSCIMClient(http)
            client.discover()
            yield check_server(client)
    finally:
        process.terminate()
        process.wait(timeout=30)
        with MongoClient(mongodb_uri) as mongo:
            mongo.drop_database(database)


def _key(result: CheckResult) -> tuple[str | None, str | None, str | None]:
    urn = result.data.get("urn") if isinstance(result.data, dict) else None
    return result.resource_type, result.title, urn


def _describe(results: list[CheckResult]) -> str:
    return "\n".join(
        f"{r.status.name} {r.resource_type or '-'} {r.title}: {r.reason}" for r in results
    )


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(item) for item in value]
    return value.model_dump() if hasattr(value, "model_dump") else value


def test_scim2_tester_ran_the_whole_suite(tester_results: list[CheckResult]) -> None:
    titles = {r.title for r in tester_results}
    assert {"object_creation", "object_query", "object_replacement", "object_deletion",
            "check_add_attribute", "check_remove_attribute",
            "check_replace_attribute"} <= titles
    assert {r.resource_type for r in tester_results} >= {"User", "Group"}
    assert len(tester_results) > 100


def test_scim2_tester_checks_all_succeed_but_the_member_display_gap(
    tester_results: list[CheckResult],
) -> None:
    failures = [r for r in tester_results if r.status is not Status.SUCCESS]
    unexpected = [r for r in failures if _key(r) not in MEMBERS_DISPLAY_GAP]
    assert not unexpected, _describe(unexpected)
    # The known gap is only ever the display: value, type and $ref come back as sent.
    for result in failures:
        expected = _dump(result.data["expected"])
        actual = _dump(result.data["modify_actual"])
        strip = [{k: v for k, v in m.items() if k != "display"} for m in expected]
        assert strip == [{k: v for k, v in m.items() if k != "display"} for m in actual]


@pytest.mark.xfail(strict=True, reason="members[].display is derived from the member, not "
                                       "kept as sent; the Group schema publishes it readWrite")
def test_scim2_tester_checks_all_succeed(tester_results: list[CheckResult]) -> None:
    failures = [r for r in tester_results if r.status is not Status.SUCCESS]
    assert not failures, _describe(failures)
