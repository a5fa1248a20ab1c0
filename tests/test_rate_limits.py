"""Per-tenant rate limiting: 429 with Retry-After over the limit, per tenant, across workers.

A tenant's bucket holds one second's worth of permits and earns them back at its rate, and
each worker may hold a batch it reserved earlier: over a span of T seconds at most
``limit * (1 + T) + workers * batch`` requests are admitted (``most_admitted``), T measured
on the clock around the requests.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pymongo import monitoring
from pymongo.asynchronous.database import AsyncDatabase

from conformance.http import Exchange, ScimHttp
from idp_sim.profiles.okta_oin import okta_headers
from idp_sim.transport import RetryPolicy, Transport
from scim_server.cli import _parser, main
from scim_server.config import Settings
from scim_server.core.rate_limits import BATCH_SHARE, RateLimits
from scim_server.embedded import free_port
from scim_server.storage.database import Database
from scim_server.storage.rate_limits import RATE_LIMITS, RateLimitRepository
from scim_server.web.app import create_app
from tests.support.idp_runs import (
    FakeSleep,
    Recorder,
    assert_server_holds_the_directory,
    run_lifecycle,
)
from tests.support.scim import ADMIN, ADMIN_TOKEN, Scim, make_tenant, scim_error
from tests.support.served import announced, finished
from tests.support.stores import unreachable_database

DEFAULT = 100


def most_admitted(limit: int, seconds: float, workers: int = 1) -> int:
    """The most requests a tenant may be admitted in ``seconds`` (see the module's docstring)."""
    return limit + math.ceil(limit * seconds) + workers * max(1, limit // BATCH_SHARE)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with rate limiting on, at the server's default."""
    return replace(settings, rate_limit_per_second=DEFAULT)


@dataclass(frozen=True)
class Burst:
    statuses: list[int]
    refusals: list[tuple[dict[str, str], dict[str, Any]]]
    """The headers and body of each 429."""
    seconds: float
    """How long the burst took."""

    @property
    def admitted(self) -> int:
        return self.statuses.count(200)


async def burst(scim: Scim, n: int, path: str = "/Users?count=1") -> Burst:
    """``n`` concurrent GETs of the tenant's."""
    began = time.monotonic()
    responses = await asyncio.gather(*[scim.get(path) for _ in range(n)])
    seconds = time.monotonic() - began
    refusals = [
        (dict(response.headers), await response.json())
        for response in responses
        if response.status == 429
    ]
    return Burst([response.status for response in responses], refusals, seconds)


async def set_limit(client: TestClient[Any, Any], tenant: str, value: Any) -> Any:
    return await client.put(
        f"/admin/tenants/{tenant}/rate-limit", json={"requests_per_second": value}, headers=ADMIN
    )


class RateLimitCommands(monitoring.CommandListener):
    """The commands on ``rate_limits`` started while ``counting``: the reservations, and any
    other (none is expected on a SCIM request)."""

    def __init__(self) -> None:
        self.counting = False
        self.reservations = 0
        self.others = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        if not self.counting:
            return
        if target == RATE_LIMITS and event.command_name == "findAndModify":
            self.reservations += 1
        elif target == RATE_LIMITS:
            self.others += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Only starts are counted."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Only starts are counted."""


_COMMANDS = RateLimitCommands()
monitoring.register(_COMMANDS)


@pytest.fixture
def commands() -> Iterator[RateLimitCommands]:
    _COMMANDS.reservations = _COMMANDS.others = 0
    _COMMANDS.counting = True
    yield _COMMANDS
    _COMMANDS.counting = False


def test_the_default_is_read_from_the_environment_and_the_serve_flag() -> None:
    assert Settings.from_env({}).rate_limit_per_second == DEFAULT
    assert Settings.from_env({"SCIM_RATE_LIMIT_PER_SECOND": "0"}).rate_limit_per_second == 0
    assert _parser().parse_args(["serve", "--rate-limit", "25"]).rate_limit == 25
    with pytest.raises(ValueError, match="rate_limit_per_second"):
        Settings.from_env({"SCIM_RATE_LIMIT_PER_SECOND": "-1"})


async def test_requests_over_the_tenants_limit_get_429_with_retry_after_and_a_scim_error(
    scim: Scim,
) -> None:
    assert (await set_limit(scim.client, "acme", 5)).status == 200
    result = await burst(scim, 30)
    assert set(result.statuses) == {200, 429}
    assert result.admitted <= most_admitted(5, result.seconds)
    for headers, body in result.refusals:
        assert headers["Content-Type"].startswith("application/scim+json")
        assert int(headers["Retry-After"]) >= 1
        assert body["status"] == "429"
        assert "rate limit of 5 requests per second" in body["detail"]
    refused = await scim.get("/Users")
    while refused.status != 429:  # permits earned since the burst: spend them
        refused = await scim.get("/Users")
    await scim_error(refused, 429, None)


async def test_a_request_refused_for_its_rate_costs_no_command(
    scim: Scim, commands: RateLimitCommands
) -> None:
    """Once a worker learns the bucket is empty, it refuses without asking until the next
    permit is earned: a reservation per request admitted, and one per permit earned meanwhile
    at most."""
    await set_limit(scim.client, "acme", 5)
    commands.reservations = 0
    result = await burst(scim, 60)
    assert result.statuses.count(429) > 0
    assert commands.reservations <= result.admitted + math.ceil(5 * result.seconds) + 1


async def test_a_tenant_over_its_limit_leaves_the_other_tenants_alone(
    scim: Scim, other_scim: Scim
) -> None:
    await set_limit(scim.client, "acme", 5)
    assert 429 in (await burst(scim, 30)).statuses
    assert (await burst(other_scim, 30)).statuses == [200] * 30


async def test_requests_without_a_valid_token_do_not_use_the_tenants_limit_up(
    scim: Scim,
) -> None:
    await set_limit(scim.client, "acme", 5)
    strangers = Scim(scim.client, "acme", "not-a-token")
    assert (await burst(strangers, 30)).statuses == [401] * 30
    for _ in range(5):  # the bucket is as full as it was
        assert (await scim.get("/Users")).status == 200


async def test_health_admin_and_sign_in_routes_are_not_limited(scim: Scim) -> None:
    client = scim.client
    await set_limit(client, "acme", 1)
    assert 429 in (await burst(scim, 10)).statuses
    for _ in range(20):
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200
        assert (await client.get("/admin/tenants", headers=ADMIN)).status == 200
        assert (await client.get("/sso/acme/")).status != 429


async def test_the_admin_api_shows_sets_and_clears_a_tenants_own_limit(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    """A tenant's own limit is kept in its bucket, which then never expires."""
    client = scim.client
    bucket = mongo_db[RATE_LIMITS]
    url = "/admin/tenants/acme/rate-limit"
    default = {"requests_per_second": DEFAULT, "default": True, "enforced": True}
    own = {"requests_per_second": 7, "default": False, "enforced": True}
    assert await (await client.get(url, headers=ADMIN)).json() == default
    assert await (await set_limit(client, "acme", 7)).json() == own
    assert await (await client.get(url, headers=ADMIN)).json() == own
    assert (await bucket.find_one({"_id": "acme"}) or {})["expires"] is None
    assert await (await set_limit(client, "acme", None)).json() == default
    await set_limit(client, "acme", 7)
    assert await (await client.delete(url, headers=ADMIN)).json() == default
    assert await (await client.get(url, headers=ADMIN)).json() == default
    assert (await bucket.find_one({"_id": "acme"}) or {})["expires"] is not None


async def test_the_cli_gets_sets_and_clears_a_tenants_limit(
    scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    options = ["--url", str(scim.client.make_url("/")), "--admin-token", ADMIN_TOKEN]

    async def run(*args: str) -> str:
        assert await asyncio.to_thread(main, [*args, *options]) == 0
        return capsys.readouterr().out

    assert '"default": true' in await run("rate-limit", "get", "acme")
    assert '"requests_per_second": 30' in await run("rate-limit", "set", "acme", "30")
    assert '"default": false' in await run("rate-limit", "get", "acme")
    cleared = await run("rate-limit", "clear", "acme")
    assert f'"requests_per_second": {DEFAULT}' in cleared and '"default": true' in cleared
    with pytest.raises(SystemExit) as refused:
        await asyncio.to_thread(main, ["rate-limit", "set", "acme", "0", *options])
    assert "error 400" in str(refused.value.code)


@pytest.mark.parametrize("value", [0, -1, "5", True, 1.5, 1_000_001])
async def test_a_rate_limit_that_is_not_a_positive_integer_is_refused(
    scim: Scim, value: Any
) -> None:
    body = await scim_error(await set_limit(scim.client, "acme", value), 400, "invalidValue")
    assert "requests_per_second" in body["detail"]


async def test_a_rate_limit_request_without_the_field_or_for_no_tenant_is_refused(
    client: TestClient[Any, Any],
) -> None:
    url = "/admin/tenants/nobody/rate-limit"
    await scim_error(await client.put(url, json={}, headers=ADMIN), 400, "invalidValue")
    await scim_error(await client.put(url, json=[5], headers=ADMIN), 400, "invalidSyntax")
    await scim_error(await client.get(url, headers=ADMIN), 404)
    await scim_error(await set_limit(client, "nobody", 5), 404)
    await scim_error(await client.delete(url, headers=ADMIN), 404)


async def test_a_worker_reserves_permits_in_batches_of_a_tenth_of_the_limit(
    scim: Scim, commands: RateLimitCommands
) -> None:
    """At the default of 100 per second a reservation is of 10 permits: the first request
    leaves 9 held, and the next 60 take 6 reservations (9 + 51, with 9 left over), which
    read the tenant's limit too: nothing else is asked."""
    await scim.get("/Users")
    commands.reservations = commands.others = 0
    for _ in range(60):
        assert (await scim.get("/Users?count=1")).status == 200
    assert commands.reservations == 6
    assert commands.others == 0


async def test_with_the_limit_off_a_burst_is_admitted_and_costs_no_command(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, commands: RateLimitCommands
) -> None:
    client = await aiohttp_client(create_app(replace(settings, rate_limit_per_second=0)))
    scim = Scim(client, "acme", (await make_tenant(client, "acme"))["token"])
    url = "/admin/tenants/acme/rate-limit"
    shown = await (await client.get(url, headers=ADMIN)).json()
    assert shown == {"requests_per_second": None, "default": True, "enforced": False}
    await set_limit(client, "acme", 1)
    commands.reservations = commands.others = 0
    assert (await burst(scim, 50)).statuses == [200] * 50
    assert commands.reservations == 0
    assert commands.others == 0


async def test_the_database_unavailable_admits_requests_and_logs_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fail open: the request then meets the database as it would without a limiter."""
    caplog.set_level(logging.WARNING, "scim_server.core.rate_limits")
    async with unreachable_database() as database:
        limits = RateLimits(RateLimitRepository(database, timeout=0.3), 1)
        for _ in range(20):
            await limits.admit("acme")
    warnings = [r for r in caplog.records if "database is unavailable" in r.getMessage()]
    assert len(warnings) == 1


async def test_deleting_a_tenant_deletes_its_counts(
    scim: Scim, mongo_db: AsyncDatabase[Any]
) -> None:
    await scim.get("/Users")
    assert await mongo_db[RATE_LIMITS].count_documents({"tenant": "acme"}) == 1
    assert (await scim.client.delete("/admin/tenants/acme", headers=ADMIN)).status == 204
    assert await mongo_db[RATE_LIMITS].count_documents({"tenant": "acme"}) == 0


WORKERS_ADMIN = "rate-limit-admin-token"
WORKERS_LIMIT = 20
TENANT_LIMIT = 10


@pytest.fixture
def two_workers(mongodb_uri: str) -> Iterator[str]:
    """``scim-server serve --workers 2 --rate-limit 20``: its URL."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "scim_server", "serve", "--workers", "2"),
        *("--port", str(port), "--mongodb-uri", mongodb_uri),
        *("--database", f"ratelimit_{uuid.uuid4().hex[:8]}", "--admin-token", WORKERS_ADMIN),
        *("--token-secret", "r" * 32, "--rate-limit", str(WORKERS_LIMIT)),
        *("--log-level", "WARNING", "--no-journal"),
    ]
    with announced(command) as process:
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            finished(process, 30)


async def test_two_workers_share_one_limit(two_workers: str) -> None:
    """The tenant's own limit, set through either worker, then three times the limit, each
    request on a connection of its own (so both workers take them), in several rounds: never
    more admitted than one limit shared allows."""
    url = two_workers
    admin = {"Authorization": f"Bearer {WORKERS_ADMIN}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/admin/tenants", json={"name": "acme"}, headers=admin) as made:
            assert made.status == 201
            token = (await made.json())["token"]
        own = {"requests_per_second": TENANT_LIMIT}
        async with http.put(
            f"{url}/admin/tenants/acme/rate-limit", json=own, headers=admin
        ) as set_:
            assert set_.status == 200

    async def get(http: aiohttp.ClientSession) -> int:
        async with http.get(
            f"{url}/scim/v2/acme/Users?count=1", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            return response.status

    refused = 0
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(4):
            await asyncio.sleep(1)  # the bucket fills up again
            began = time.monotonic()
            statuses = await asyncio.gather(*[get(http) for _ in range(3 * TENANT_LIMIT)])
            seconds = time.monotonic() - began
            assert set(statuses) <= {200, 429}
            assert 1 <= statuses.count(200) <= most_admitted(TENANT_LIMIT, seconds, workers=2)
            refused += statuses.count(429)
    assert refused > 0


# --- clients that back off ---------------------------------------------------------------------


async def test_an_idp_sim_profile_backs_off_on_429_and_provisions_everything(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    """okta-oin's whole lifecycle (6 users, 3 groups) at 10 requests per second, starting on
    an empty bucket (so refused at least at once, and whenever it outpaces the limit): it
    waits each Retry-After out and ends with the server holding its directory."""
    await set_limit(client, "acme", 10)
    assert 429 in (await burst(scim, 30)).statuses
    profile, summary = await run_lifecycle(client, scim, "okta-oin")
    assert summary.failures == []
    refused = [e for e in profile.transport.journal if e.status == 429]
    assert refused and all(e.response_headers["Retry-After"] == "1" for e in refused)
    await set_limit(client, "acme", 1_000_000)  # the check below reads without backing off
    assert len(profile.user_links) == len(profile.directory.users)
    await assert_server_holds_the_directory(scim, profile)


async def test_idp_sim_gives_up_when_the_next_wait_would_pass_the_total_cap(
    aiohttp_client: Any,
) -> None:
    recorder = Recorder([(429, {"Retry-After": "100"}, {})])
    url = await recorder.start(aiohttp_client)
    sleep = FakeSleep()
    policy = RetryPolicy(max_total_wait=250)
    async with Transport(url, "t", okta_headers(), sleep=sleep, retry=policy) as transport:
        response = await transport.request("GET", "/Users")
    assert response.status == 429
    assert sleep.waits == [100.0]  # then 200 more would make 300, past 250
    assert len(recorder.seen) == 2


async def test_the_conformance_client_sends_a_request_refused_with_429_again(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    await set_limit(client, "acme", 5)
    assert 429 in (await burst(scim, 20)).statuses  # the bucket is empty: refused at first
    transcript: list[Exchange] = []
    async with aiohttp.ClientSession() as session:
        http = ScimHttp(session, str(client.make_url(scim.base)), scim.token, transcript)
        statuses = [(await http.get("/Users?count=1")).status for _ in range(12)]
    assert statuses == [200] * 12
    assert 429 in [exchange.status for exchange in transcript]


async def test_workers_reserving_a_new_tenants_first_permits_at_once_are_each_answered(
    mongodb_uri: str, database_name: str, mongo_db: Any
) -> None:
    # Two workers (two clients) create the same bucket at the same moment: the one that loses
    # the upsert race reads the bucket the other made, whatever the store answers it.
    workers = [Database.connect(mongodb_uri, database_name) for _ in range(2)]
    try:
        repositories = [RateLimitRepository(database) for database in workers]
        tenants = [f"t{round_}" for round_ in range(40)]
        await mongo_db["tenants"].insert_many([{"_id": tenant} for tenant in tenants])
        for tenant in tenants:
            now = time.time()
            grants = await asyncio.gather(
                *[
                    repository.reserve(tenant, now, 100, 1.0, BATCH_SHARE)
                    for repository in repositories
                    for _ in range(3)
                ]
            )
            assert sum(grant.permits for grant in grants) <= 100
            assert all(grant.rate == 100 for grant in grants)
    finally:
        for database in workers:
            await database.close()
