"""The per-tenant provisioning journal: what each SCIM client did, read back by an admin."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pymongo.asynchronous.database import AsyncDatabase

from scim_server.cli import main
from scim_server.config import Settings
from scim_server.core.journal import ProvisioningJournal
from scim_server.storage.database import Database
from scim_server.storage.journal import JournalEntry, JournalRepository
from scim_server.web.app import create_app
from tests.support.scim import ADMIN, ADMIN_TOKEN, Scim, make_tenant
from tests.support.urns import BULK_REQUEST as BULK
from tests.support.urns import ENTERPRISE, PATCH_OP, SEARCH, USER

OKTA = {"User-Agent": "Okta SCIM Client 1.0.0"}
REDACTED = "<redacted>"


async def _journal(client: TestClient, tenant: str, query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/admin/tenants/{tenant}/journal{query}", headers=ADMIN)
    assert response.status == 200, await response.text()
    return list((await response.json())["entries"])


def _summary(entries: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["method"], e["path"], e["status"], e["resource_id"]) for e in entries]


async def test_create_patch_delete_are_journaled_newest_first(scim: Scim) -> None:
    created = await scim.post("/Users", {"schemas": [USER], "userName": "bjensen"}, headers=OKTA)
    assert created.status == 201
    user_id = (await created.json())["id"]
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Babs"}],
    }
    assert (await scim.patch(f"/Users/{user_id}", patch, headers=OKTA)).status == 200
    assert (await scim.delete(f"/Users/{user_id}", headers=OKTA)).status == 204
    assert (
        await scim.get("/Users?filter=userName%20eq%20%22bjensen%22", headers=OKTA)
    ).status == 200

    entries = await _journal(scim.client, "acme")

    assert _summary(entries) == [
        ("GET", "/scim/v2/acme/Users", 200, None),
        ("DELETE", f"/scim/v2/acme/Users/{user_id}", 204, user_id),
        ("PATCH", f"/scim/v2/acme/Users/{user_id}", 200, user_id),
        ("POST", "/scim/v2/acme/Users", 201, user_id),
    ]
    assert {e["user_agent"] for e in entries} == {"Okta SCIM Client 1.0.0"}
    assert {e["tenant"] for e in entries} == {"acme"}
    assert {e["resource_type"] for e in entries} == {"Users"}
    assert entries[0]["query"] == 'filter=userName eq "bjensen"'
    assert [e["query"] for e in entries[1:]] == [None, None, None]
    assert entries[3]["request_body"] == {"schemas": [USER], "userName": "bjensen"}
    assert entries[2]["request_body"] == patch
    assert entries[1]["request_body"] is None
    assert all(isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0 for e in entries)
    times = [e["at"] for e in entries]
    assert times == sorted(times, reverse=True)


async def test_passwords_are_redacted_at_any_depth(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    created = await scim.create_user(
        "bjensen", password="Create-Secret-1", **{ENTERPRISE: {"employeeNumber": "701984"}}
    )
    user_id = created["id"]
    patches = [
        {"op": "replace", "path": "password", "value": "Patch-Path-Secret-2"},
        {"op": "replace", "path": f"{USER}:password", "value": "Patch-Urn-Secret-3"},
        {"op": "Replace", "value": {"password": "Patch-Pathless-Secret-4", "active": True}},
    ]
    for operation in patches:
        response = await scim.patch(
            f"/Users/{user_id}", {"schemas": [PATCH_OP], "Operations": [operation]}
        )
        assert response.status == 200, await response.text()
    bulk = {
        "schemas": [BULK],
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "u1",
                "data": {"schemas": [USER], "userName": "alice", "PassWord": "Bulk-Secret-5"},
            }
        ],
    }
    assert (await scim.post("/Bulk", bulk)).status == 200

    entries = await _journal(scim.client, "acme")

    bodies = [e["request_body"] for e in reversed(entries)]
    assert bodies[0] == {
        "schemas": [USER],
        "userName": "bjensen",
        "password": REDACTED,
        ENTERPRISE: {"employeeNumber": "701984"},
    }
    assert [body["Operations"][0] for body in bodies[1:4]] == [
        {"op": "replace", "path": "password", "value": REDACTED},
        {"op": "replace", "path": f"{USER}:password", "value": REDACTED},
        {"op": "Replace", "value": {"password": REDACTED, "active": True}},
    ]
    assert bodies[4]["Operations"][0]["data"] == {
        "schemas": [USER],
        "userName": "alice",
        "PassWord": REDACTED,
    }
    stored = str(await mongo_db["journal"].find({}).to_list(None))
    assert "Secret" not in stored


async def test_failed_requests_are_journaled_with_their_status(scim: Scim) -> None:
    await scim.create_user("bjensen")
    duplicate = {"schemas": [USER], "userName": "bjensen"}
    assert (await scim.post("/Users", duplicate)).status == 409
    malformed = await scim.post(
        "/Users",
        data=b'{"userName": "x", "password": "hunter2"',
        headers={"Content-Type": "application/scim+json"},
    )
    assert malformed.status == 400
    assert (await scim.get("/Users/no-such-id")).status == 404
    assert (await scim.get("/Nowhere")).status == 404
    denied = await scim.client.post(
        "/scim/v2/acme/Users",
        json=duplicate,
        headers={"Authorization": "Bearer not-a-valid-token", **OKTA},
    )
    assert denied.status == 401

    entries = await _journal(scim.client, "acme")

    assert [(e["method"], e["path"], e["status"], e["resource_type"]) for e in entries[:5]] == [
        ("POST", "/scim/v2/acme/Users", 401, "Users"),
        ("GET", "/scim/v2/acme/Nowhere", 404, "Nowhere"),
        ("GET", "/scim/v2/acme/Users/no-such-id", 404, "Users"),
        ("POST", "/scim/v2/acme/Users", 400, "Users"),
        ("POST", "/scim/v2/acme/Users", 409, "Users"),
    ]
    unauthenticated, _, missing, invalid, conflict = entries[:5]
    # A refused request's body was never read, and no header but User-Agent is kept.
    assert unauthenticated["request_body"] is None
    assert unauthenticated["user_agent"] == "Okta SCIM Client 1.0.0"
    assert "not-a-valid-token" not in json.dumps(entries)
    assert missing["resource_id"] == "no-such-id"
    # A body that is not JSON is not kept (a secret in it could not be found), only its size.
    assert invalid["request_body"] == "<not JSON, 39 bytes>"
    assert conflict["request_body"] == duplicate
    assert conflict["resource_id"] is None


async def test_requests_for_an_unknown_tenant_are_not_journaled(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    response = await scim.client.get(
        "/scim/v2/nobody/Users", headers={"Authorization": f"Bearer {scim.token}"}
    )
    assert response.status == 401
    assert (await scim.get("/Users")).status == 200

    assert _summary(await _journal(scim.client, "acme")) == [
        ("GET", "/scim/v2/acme/Users", 200, None)
    ]
    assert await mongo_db["journal"].count_documents({"tenant": {"$ne": "acme"}}) == 0


async def test_admin_requests_are_not_journaled(scim: Scim, mongo_db: AsyncDatabase[Any]) -> None:
    assert (await scim.client.get("/admin/tenants/acme/tokens", headers=ADMIN)).status == 200

    assert await _journal(scim.client, "acme") == []
    assert await mongo_db["journal"].count_documents({}) == 0


async def test_an_oversized_body_refused_unread_is_journaled_without_it(
    aiohttp_client: Any, settings: Settings, mongo_db: AsyncDatabase[Any]
) -> None:
    client = await aiohttp_client(create_app(replace(settings, max_body_bytes=200)))
    scim = Scim(client, "acme", (await make_tenant(client, "acme"))["token"])
    big = {"schemas": [USER], "userName": "bjensen", "displayName": "x" * 300}

    assert (await scim.post("/Users", big)).status == 413

    [entry] = await _journal(client, "acme")
    assert (entry["method"], entry["status"], entry["request_body"]) == ("POST", 413, None)


async def test_a_large_body_is_kept_truncated(scim: Scim) -> None:
    user = {"schemas": [USER], "userName": "bjensen", "displayName": "x" * 20_000}
    assert (await scim.post("/Users", user)).status == 201

    [entry] = await _journal(scim.client, "acme")

    text = json.dumps(user, separators=(",", ":"))
    marker = f"...<truncated, {len(text)} characters>"
    assert entry["request_body"] == text[: 16 * 1024] + marker


async def test_one_tenants_journal_shows_nothing_of_another(scim: Scim, other_scim: Scim) -> None:
    acme_user = await scim.create_user("alice")
    globex_user = await other_scim.create_user("bob")

    acme = await _journal(scim.client, "acme")
    globex = await _journal(scim.client, "globex")

    assert _summary(acme) == [("POST", "/scim/v2/acme/Users", 201, acme_user["id"])]
    assert _summary(globex) == [("POST", "/scim/v2/globex/Users", 201, globex_user["id"])]


async def test_journal_query_narrows_by_method_status_since_and_limit(scim: Scim) -> None:
    await scim.create_user("alice")
    await scim.create_user("bob")
    assert (await scim.post("/Users", {"schemas": [USER], "userName": "bob"})).status == 409
    assert (await scim.get("/Users")).status == 200
    everything = await _journal(scim.client, "acme")
    assert len(everything) == 4

    posts = await _journal(scim.client, "acme", "?method=post")
    assert [e["status"] for e in posts] == [409, 201, 201]
    conflicts = await _journal(scim.client, "acme", "?method=POST&status=409")
    assert [e["request_body"]["userName"] for e in conflicts] == ["bob"]
    assert await _journal(scim.client, "acme", "?limit=2") == everything[:2]
    since = everything[1]["at"].replace("+00:00", "Z")
    assert await _journal(scim.client, "acme", f"?since={since}") == [
        e for e in everything if e["at"] >= everything[1]["at"]
    ]
    assert await _journal(scim.client, "acme", "?since=2999-01-01T00:00:00") == []


@pytest.mark.parametrize(
    "query",
    [
        "?limit=0",
        "?limit=1001",
        "?limit=ten",
        "?status=abc",
        "?since=yesterday",
        # Before the year 1 in UTC: no database can store it.
        "?since=0001-01-01T00:00:00%2B05:00",
    ],
)
async def test_invalid_journal_query_is_400(scim: Scim, query: str) -> None:
    response = await scim.client.get(f"/admin/tenants/acme/journal{query}", headers=ADMIN)
    assert response.status == 400
    assert (await response.json())["scimType"] == "invalidValue"


async def test_journal_needs_the_admin_token_and_an_existing_tenant(scim: Scim) -> None:
    await scim.create_user("alice")
    as_tenant = await scim.client.get("/admin/tenants/acme/journal", headers=scim.headers())
    assert as_tenant.status == 401
    unknown = await scim.client.get("/admin/tenants/nobody/journal", headers=ADMIN)
    assert unknown.status == 404


async def test_deleting_a_tenant_deletes_its_journal(
    scim: Scim, other_scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    await scim.create_user("alice")
    await other_scim.create_user("bob")
    assert len(await _journal(scim.client, "acme")) == 1

    assert (await scim.client.delete("/admin/tenants/acme", headers=ADMIN)).status == 204

    assert await mongo_db["journal"].count_documents({"tenant": "acme"}) == 0
    assert await mongo_db["journal"].count_documents({"tenant": "globex"}) == 1
    await make_tenant(scim.client, "acme")
    assert await _journal(scim.client, "acme") == []


async def test_ttl_index_expires_entries_after_the_configured_time(
    aiohttp_client: Any, settings: Settings, mongo_db: AsyncDatabase[Any]
) -> None:
    await aiohttp_client(create_app(replace(settings, journal_ttl_seconds=3600)))
    indexes = await mongo_db["journal"].index_information()
    assert indexes["at_ttl"]["key"] == [("at", 1)]
    assert indexes["at_ttl"]["expireAfterSeconds"] == 3600
    assert indexes["tenant_at_id"]["key"] == [("tenant", 1), ("at", 1), ("_id", 1)]

    # A changed setting changes the existing index at the next start.
    await aiohttp_client(create_app(replace(settings, journal_ttl_seconds=60)))
    indexes = await mongo_db["journal"].index_information()
    assert indexes["at_ttl"]["expireAfterSeconds"] == 60


def test_journal_settings_come_from_the_environment() -> None:
    assert Settings.from_env({}).journal_ttl_seconds == 7 * 24 * 3600
    assert Settings.from_env({}).journal_enabled is True
    read = Settings.from_env({"SCIM_JOURNAL": "0", "SCIM_JOURNAL_TTL_SECONDS": "86400"})
    assert (read.journal_enabled, read.journal_ttl_seconds) == (False, 86400)
    with pytest.raises(ValueError, match="SCIM_JOURNAL is a boolean"):
        Settings.from_env({"SCIM_JOURNAL": "maybe"})


async def test_disabled_journal_records_nothing(
    aiohttp_client: Any, settings: Settings, mongo_db: AsyncDatabase[Any]
) -> None:
    client = await aiohttp_client(create_app(replace(settings, journal_enabled=False)))
    scim = Scim(client, "acme", (await make_tenant(client, "acme"))["token"])
    await scim.create_user("alice")

    assert await _journal(client, "acme") == []
    assert await mongo_db["journal"].count_documents({}) == 0


def _entry(tenant: str, path: str) -> dict[str, Any]:
    return {"tenant": tenant, "at": datetime.now(UTC), "method": "GET", "path": path, "status": 200}


@pytest.fixture
async def journal_database(
    mongodb_uri: str, database_name: str, mongo_db: AsyncDatabase[Any]
) -> Any:
    database = Database.connect(mongodb_uri, database_name)
    await mongo_db["tenants"].insert_one({"_id": "acme"})
    try:
        yield database
    finally:
        await database.close()


async def test_a_full_queue_drops_entries_instead_of_waiting(
    journal_database: Database, mongo_db: AsyncDatabase[Any]
) -> None:
    journal = ProvisioningJournal(journal_database, max_queue=2)

    recorded = [journal.record(_entry("acme", f"/{n}")) for n in range(5)]

    assert recorded == [True, True, False, False, False]
    assert (journal.dropped, journal.pending) == (3, 2)
    await journal.flush()
    assert journal.pending == 0
    stored = await mongo_db["journal"].find({}).sort("_id", 1).to_list(None)
    assert [e["path"] for e in stored] == ["/0", "/1"]
    assert journal.record(_entry("acme", "/5")) is True


async def test_stop_writes_what_is_still_queued(
    journal_database: Database, mongo_db: AsyncDatabase[Any]
) -> None:
    # The background task would wait an hour before writing: only stop() can have written.
    journal = ProvisioningJournal(journal_database, flush_interval=3600)
    await journal.start()
    for n in range(3):
        journal.record(_entry("acme", f"/{n}"))
    journal.record(_entry("deleted-tenant", "/gone"))
    await asyncio.sleep(0)

    await journal.stop()

    stored = await mongo_db["journal"].find({}).sort("_id", 1).to_list(None)
    assert [(e["tenant"], e["path"]) for e in stored] == [
        ("acme", "/0"),
        ("acme", "/1"),
        ("acme", "/2"),
    ]


async def test_background_task_writes_a_full_batch_without_waiting(
    journal_database: Database, mongo_db: AsyncDatabase[Any]
) -> None:
    journal = ProvisioningJournal(journal_database, batch_size=3, flush_interval=3600)
    await journal.start()
    try:
        for n in range(3):
            journal.record(_entry("acme", f"/{n}"))
        for _ in range(200):
            if await mongo_db["journal"].count_documents({}) == 3:
                break
            await asyncio.sleep(0.01)
        assert await mongo_db["journal"].count_documents({}) == 3
    finally:
        await journal.stop()


async def test_cli_prints_a_tenants_journal(scim: Scim, capsys: pytest.CaptureFixture[str]) -> None:
    await scim.create_user("alice")
    await scim.create_user("bob")
    url = str(scim.client.make_url("")).rstrip("/")

    code = await asyncio.to_thread(
        main, ["journal", "acme", "--limit", "1", "--url", url, "--admin-token", ADMIN_TOKEN]
    )

    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [e["request_body"]["userName"] for e in printed["entries"]] == ["bob"]


async def _raw_request(client: TestClient, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes as they are (an HTTP client would refuse a non-UTF-8 header) and read the
    answer's status line."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
        await writer.drain()
        return (await reader.readline()).strip()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_user_agent_that_is_not_utf8_never_costs_other_entries(
    scim: Scim, other_scim: Scim
) -> None:
    user = b'{"schemas": ["%s"], "userName": "mallory"}' % USER.encode()
    head = (
        b"POST /scim/v2/acme/Users HTTP/1.1\r\nHost: localhost\r\n"
        b"Authorization: Bearer %s\r\nContent-Type: application/scim+json\r\n"
        b"User-Agent: Evil \xff\xfe\xc3(\r\n" % scim.token.encode()
    )
    good = [other_scim.create_user(f"user{n}") for n in range(20)]

    statuses = await asyncio.gather(_raw_request(scim.client, head, user), *good)

    assert statuses[0] == b"HTTP/1.1 201 Created"
    [evil] = await _journal(scim.client, "acme")
    assert evil["user_agent"] == "Evil \ufffd\ufffd\ufffd("
    assert evil["request_body"]["userName"] == "mallory"
    assert len(await _journal(scim.client, "globex")) == 20


async def test_a_batch_with_an_unstorable_entry_still_writes_every_other_one(
    journal_database: Database, mongo_db: AsyncDatabase[Any]
) -> None:
    journal = ProvisioningJournal(journal_database)
    unstorable = {**_entry("acme", "/bad"), "status": 2**64}  # beyond BSON's 64-bit integers
    for entry in [_entry("acme", "/0"), unstorable, _entry("acme", "/1"), _entry("acme", "/2")]:
        journal.record(entry)

    await journal.flush()

    stored = await mongo_db["journal"].find({}).sort("_id", 1).to_list(None)
    assert [e["path"] for e in stored] == ["/0", "/1", "/2"]
    assert (journal.failed, journal.dropped) == (1, 0)


def _nested(levels: int, leaf: str) -> str:
    """JSON text nesting ``leaf`` ``levels`` containers deep (no encoder nests that far)."""
    return '{"a":[' * (levels // 2) + leaf + "]}" * (levels // 2)


@pytest.mark.parametrize("levels", [300, 1000])
async def test_a_deeply_nested_bulk_body_is_still_journaled_truncated(
    scim: Scim, levels: int
) -> None:
    user = {"schemas": [USER], "userName": "hidden", "password": "Deep-Secret-1"}
    bulk = {
        "schemas": [BULK],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": user},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": "DEEP"},
        ],
    }
    deep = _nested(levels, '{"password": "Deep-Secret-2"}')
    body = json.dumps(bulk).replace('"DEEP"', deep).encode()
    response = await scim.post(
        "/Bulk", data=body, headers={"Content-Type": "application/scim+json"}
    )
    assert response.status == 200, await response.text()
    results = (await response.json())["Operations"]
    assert [result["status"] for result in results] == ["201", "400"]

    [entry] = await _journal(scim.client, "acme")

    assert (entry["method"], entry["path"], entry["status"]) == ("POST", "/scim/v2/acme/Bulk", 200)
    assert entry["truncated"] is True
    operations = entry["request_body"]["Operations"]
    assert operations[0]["data"] == {**user, "password": REDACTED}
    assert "<nested too deep>" in json.dumps(operations[1]["data"])
    assert "Deep-Secret" not in json.dumps(entry)


async def test_a_body_nested_beyond_the_json_parser_is_refused_and_journaled(
    scim: Scim,
) -> None:
    body = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    response = await scim.post(
        "/Users", data=body, headers={"Content-Type": "application/scim+json"}
    )
    assert response.status == 400

    [entry] = await _journal(scim.client, "acme")

    assert (entry["method"], entry["status"]) == ("POST", 400)
    assert entry["request_body"] == f"<not JSON, {len(body)} bytes>"


@pytest.mark.parametrize(
    "expression",
    [
        'password eq "Filter-Secret"',
        'PassWord Eq "Filter-Secret"',
        'urn:ietf:params:scim:schemas:core:2.0:User:password sw "Filter-Secret"',
        'userName eq "bjensen" and not (password co "Filter-Secret")',
        'emails[type eq "work" or password ne "Filter-Secret"]',
        'password eq "Filter-Secret \\" still the secret"',
        "password gt Filter-Secret",
        'password eq "Filter-Secret',
    ],
)
async def test_passwords_in_filters_are_redacted(
    scim: Scim, mongo_db: AsyncDatabase[Any], expression: str
) -> None:
    await scim.get("/Users", params={"filter": expression})
    await scim.post("/Users/.search", {"schemas": [SEARCH], "filter": expression})
    await scim.client.get(
        f"{scim.base}/Users?filter={expression.replace(' ', '+')}", headers=scim.headers()
    )

    entries = await _journal(scim.client, "acme")

    assert len(entries) == 3
    assert "Filter-Secret" not in json.dumps(entries)
    assert "still the secret" not in json.dumps(entries)
    assert await mongo_db["journal"].count_documents({}) == 3
    assert "Filter-Secret" not in str(await mongo_db["journal"].find({}).to_list(None))
    assert REDACTED in entries[0]["query"]
    assert REDACTED in entries[1]["request_body"]["filter"]
    assert REDACTED in entries[2]["query"]


async def test_a_filter_without_a_password_is_kept_as_sent(scim: Scim) -> None:
    expression = 'userName eq "password" or displayName co "pass word"'
    await scim.get("/Users", params={"filter": expression, "count": "5"})

    [entry] = await _journal(scim.client, "acme")

    assert entry["query"] == f"filter={expression}&count=5"


async def test_every_text_field_is_made_valid_utf8_and_bounded(
    journal_database: Database, mongo_db: AsyncDatabase[Any]
) -> None:
    journal = ProvisioningJournal(journal_database)
    entry = {
        **_entry("acme", "/scim/v2/acme/Users/\udcff\udcfe"),
        "query": "filter=" + "q" * 10_000,
        "user_agent": "\ud800 agent",
        "resource_id": "\udcc3" + "i" * 1000,
    }

    journal.record(entry)
    await journal.flush()

    [stored] = await mongo_db["journal"].find({}).to_list(None)
    assert stored["path"] == "/scim/v2/acme/Users/\ufffd\ufffd"
    assert stored["user_agent"] == "\ufffd agent"
    assert stored["query"] == f"filter={'q' * (8 * 1024 - 7)}...<truncated, 10007 characters>"
    assert stored["resource_id"].startswith("\ufffdiii")
    assert stored["resource_id"].endswith("...<truncated, 1001 characters>")
    assert stored["truncated"] is True
    assert journal.failed == 0


async def test_flush_waits_for_the_batch_the_background_task_is_writing(
    journal_database: Database, mongo_db: AsyncDatabase[Any]
) -> None:
    # What the admin API reads right after flush() includes a batch already on its way.
    journal = ProvisioningJournal(journal_database, batch_size=1, flush_interval=0)
    await journal.start()
    try:
        for n in range(20):
            journal.record(_entry("acme", f"/{n}"))
            await asyncio.sleep(0)  # the background task takes the entry and starts its insert

            await journal.flush()

            assert await mongo_db["journal"].count_documents({}) == n + 1
    finally:
        await journal.stop()


async def test_the_repository_reads_back_the_entries_it_wrote_newest_first(
    journal_database: Database, mongo_db: AsyncDatabase[Any]
) -> None:
    repository = JournalRepository(journal_database)
    at = datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)  # BSON keeps milliseconds
    first = JournalEntry("acme", at, "POST", "/scim/v2/acme/Users", 201, request_body="{}")
    second = JournalEntry("acme", at, "GET", "/scim/v2/acme/Users", 200, query="count=1")

    assert await repository.insert([first, second]) == []

    assert await repository.entries("acme", limit=10) == [second, first]
    assert await repository.entries("acme", limit=10, method="POST", status=201) == [first]
    [stored] = await mongo_db["journal"].find({"_id": first.id}).to_list(None)
    assert stored["tenant"] == "acme" and "id" not in stored


async def test_an_entry_sent_again_after_a_lost_answer_counts_as_written_once(
    journal_database: Database, mongo_db: AsyncDatabase[Any]
) -> None:
    repository = JournalRepository(journal_database)
    entry = JournalEntry("acme", datetime.now(UTC), "GET", "/", 200)
    await repository.insert([entry])

    assert await repository.insert([entry, JournalEntry("acme", entry.at, "GET", "/2", 200)]) == []

    assert await mongo_db["journal"].count_documents({}) == 2


async def test_each_entry_carries_the_request_id_the_response_and_the_log_line_carry(
    scim: Scim,
) -> None:
    # An operator holding a customer's X-Request-Id finds the request in the journal with it.
    given = await scim.post(
        "/Users", {"schemas": [USER], "userName": "traced"}, headers={"X-Request-Id": "okta-42"}
    )
    assert given.status == 201 and given.headers["X-Request-Id"] == "okta-42"
    minted = await scim.get("/Users")
    assert minted.status == 200

    newest, oldest = await _journal(scim.client, "acme")

    assert oldest["request_id"] == "okta-42"
    assert newest["request_id"] == minted.headers["X-Request-Id"]
