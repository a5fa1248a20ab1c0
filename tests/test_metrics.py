"""``/metrics``: each series counted from real traffic, right under ``--workers N``, guarded.

In-process tests scrape the application the suite builds (prometheus-client's default
registry, shared by the whole test session: they compare a scrape after the traffic with one
before). The served tests run ``scim-server serve`` as a subprocess, whose processes count
in a private directory that every scrape reads whole.
"""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from idp_sim.saml import shapes
from samlkit.certs import SigningKey
from scim_server import metrics
from scim_server.config import Settings
from scim_server.core.clients import idp_family
from scim_server.core.journal import ProvisioningJournal
from scim_server.embedded import MODULE, free_port
from scim_server.web.state import SERVICES
from tests.support.scim import ADMIN, ADMIN_TOKEN, Scim, scim_error
from tests.support.served import WAIT_SECONDS, Server, announced, finished, start_server
from tests.support.sso import connect_sso, person, with_form_token
from tests.support.urns import PATCH_OP, USER

OKTA = {"User-Agent": "Okta SCIM Client 1.0.0"}
ENTRA = {"User-Agent": "Microsoft Azure AD SCIM provisioning"}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by (sample name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples carrying ``labels`` (among others): 0 when none does."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


async def scrape(client: TestClient[Any, Any]) -> Samples:
    response = await client.get("/metrics", headers=ADMIN)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(await response.text())


class Delta:
    """What a series gained between the scrape ``before`` and the one ``after``."""

    def __init__(self, before: Samples, after: Samples) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)


def test_idp_family_is_told_from_the_user_agent() -> None:
    assert idp_family("Okta SCIM Client 1.0.0") == "okta"
    assert idp_family("Microsoft Azure AD SCIM provisioning") == "entra"
    assert idp_family("JumpCloud SCIM") == "jumpcloud"
    assert idp_family("curl/8.5.0") == "other"
    assert idp_family("") == "other"
    assert idp_family(None) == "other"


def test_every_series_has_labels_so_none_exists_before_serve_chooses_where_to_count() -> None:
    """A series without labels has its value from import on, in memory: under ``serve``, which
    switches to the shared directory later, no scrape would ever see it counted."""
    declared = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    assert len(declared) >= 7
    for metric in declared:
        for family in metric.collect():
            for sample in family.samples:
                assert set(sample.labels) - {"le"}, f"{family.name} has no labels"


def test_the_metrics_bind_is_a_host_and_a_port() -> None:
    assert Settings(metrics_bind="127.0.0.1:9464").metrics_address == ("127.0.0.1", 9464)
    assert Settings(metrics_bind="[::1]:9464").metrics_address == ("::1", 9464)
    for wrong in ("9464", "127.0.0.1:", ":9464", "127.0.0.1:port", "127.0.0.1:70000"):
        with pytest.raises(ValueError, match="metrics_bind is host:port"):
            Settings(metrics_bind=wrong)


async def test_scim_requests_are_counted_by_tenant_operation_status_and_idp_family(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    before = await scrape(client)
    response = await scim.post("/Users", {"schemas": [USER], "userName": "ada"}, headers=OKTA)
    assert response.status == 201, await response.text()
    created = await response.json()
    path = f"/Users/{created['id']}"
    for _ in range(3):
        assert (await scim.get(path, headers=OKTA)).status == 200
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ada"}],
    }
    assert (await scim.patch(path, json=rename, headers=ENTRA)).status == 200
    assert (await scim.get("/Groups")).status == 200
    assert (await scim.get("/Users/no-such-id", headers=OKTA)).status == 404
    bulk = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": []}
    assert (await scim.post("/Bulk", json=bulk)).status == 200
    delta = Delta(before, await scrape(client))

    requests = "scim_requests_total"
    acme = {"tenant": "acme"}
    assert delta(requests, **acme, operation="users.create", status="201", idp="okta") == 1
    assert delta(requests, **acme, operation="users.get", status="200", idp="okta") == 3
    assert delta(requests, **acme, operation="users.patch", status="200", idp="entra") == 1
    assert delta(requests, **acme, operation="groups.list", status="200", idp="other") == 1
    assert delta(requests, **acme, operation="users.get", status="404", idp="okta") == 1
    assert delta(requests, **acme, operation="bulk", status="200") == 1
    assert delta(requests, **acme) == 8
    assert delta(requests, operation="admin.create_tenant") == 0  # the tenant came before
    assert delta(requests, operation="metrics", tenant="-", status="200") == 1  # "before"
    # The duration histogram counts each request once, in the same series.
    duration = "scim_request_duration_seconds_count"
    assert delta(duration, **acme, operation="users.get", status="200", idp="okta") == 3
    assert delta(duration, **acme) == 8
    # Each GET of a user reads it once (its token's check is cached, or one more read).
    commands = "scim_request_database_commands"
    assert delta(f"{commands}_count", operation="users.get") == 4
    assert 4 <= delta(f"{commands}_sum", operation="users.get") <= 8
    assert delta(f"{commands}_count", operation="users.patch") == 1
    # The user's read and its conditional write (answered from what it wrote), and perhaps
    # the token's check.
    assert 2 <= delta(f"{commands}_sum", operation="users.patch") <= 3
    # The same commands by collection and name: the PATCH's read and write of the user.
    by_name = "scim_database_commands_total"
    assert delta(by_name, operation="users.patch", collection="users", command="find") == 1
    assert delta(by_name, operation="users.patch", collection="users", command="update") == 1
    for operation in ("users.get", "users.patch"):
        assert delta(by_name, operation=operation) == delta(f"{commands}_sum", operation=operation)


async def test_a_request_not_proven_for_a_tenant_is_labelled_with_no_tenant(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    """A tenant named only by the URL would let anyone mint label values without end."""
    before = await scrape(client)
    names = [f"t{uuid.uuid4().hex[:10]}" for _ in range(5)]
    for name in names:
        assert (await client.get(f"/scim/v2/{name}/Users")).status == 401
    assert (await client.get("/scim/v2/acme/Users")).status == 401  # exists: still unproven
    assert (await client.get("/no/such/route")).status == 404
    assert (await client.put("/healthz")).status == 405
    after = await scrape(client)
    delta = Delta(before, after)

    assert delta("scim_requests_total", tenant="-", operation="users.list", status="401") == 6
    assert delta("scim_requests_total", tenant="-", operation="other", status="404") == 1
    assert delta("scim_requests_total", tenant="-", operation="other", status="405") == 1
    tenants = {dict(labels).get("tenant") for _, labels in after}
    assert tenants.isdisjoint(names)


async def test_journal_entries_are_counted_queued_written_and_dropped(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    services = client.app[SERVICES]
    before = await scrape(client)
    for name in ("ada", "grace", "linus"):
        await scim.create_user(name)
    await services.journal.flush()
    # An entry of a tenant deleted meanwhile is discarded when the batch is written.
    entry = {"tenant": "gone", "at": datetime.now(UTC), "method": "GET", "path": "/", "status": 200}
    assert services.journal.record(entry)
    await services.journal.flush()
    # A full queue drops: a journal of one entry, on the same database.
    small = ProvisioningJournal(services.database, max_queue=1)
    assert small.record(entry) and not small.record(entry)
    delta = Delta(before, await scrape(client))

    journal = "scim_journal_entries_total"
    assert delta(journal, outcome="queued") == 5  # three requests, "gone", the small journal's
    assert delta(journal, outcome="written") == 3
    assert delta(journal, outcome="discarded") == 1
    assert delta(journal, outcome="dropped") == 1
    assert delta(journal, outcome="failed") == 0


async def test_sign_ins_are_counted_by_protocol_and_outcome(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    sso = await connect_sso(scim, shapes.okta(), SigningKey.generate("metrics IdP"))
    before = await scrape(client)
    assert (await sso.sign_in(person())).status == 303
    assert (await sso.post("not a SAML response")).status == 403
    wrong = {"username": "ada@example.com", "password": "not the password"}
    wrong = await with_form_token(client, f"{sso.base}/", wrong)
    assert (await client.post(f"{sso.base}/password", data=wrong)).status == 403
    delta = Delta(before, await scrape(client))

    sign_ins = "scim_sign_ins_total"
    assert delta(sign_ins, protocol="saml", outcome="signed_in") == 1
    assert delta(sign_ins, protocol="saml", outcome="refused") == 1
    assert delta(sign_ins, protocol="password", outcome="refused") == 1
    # The pages are requests of the tenant too, labelled with the page.
    assert delta("scim_requests_total", tenant="acme", operation="sso.acs", status="303") == 1
    assert delta("scim_requests_total", tenant="acme", operation="sso.login", status="302") == 1


async def test_metrics_need_the_admin_token_and_refuse_a_tenant_token(
    client: TestClient[Any, Any], scim: Scim
) -> None:
    await scim_error(await client.get("/metrics"), 401)
    await scim_error(await client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401)
    await scim_error(await client.get("/metrics", headers=scim.headers()), 401)
    await scim_error(await client.get("/metrics", headers={"Authorization": scim.token}), 401)
    assert (await client.get("/metrics", headers=ADMIN)).status == 200


async def test_scrapes_are_not_journaled(client: TestClient[Any, Any], scim: Scim) -> None:
    services = client.app[SERVICES]
    await services.journal.flush()
    journaled = len(await services.journal.entries("acme"))
    await scrape(client)
    await services.journal.flush()
    assert len(await services.journal.entries("acme")) == journaled


# -- served: scim-server serve as a subprocess ---------------------------------------------------


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    metrics_url: str

    def counting_directory(self) -> Path:
        """The directory the workers count in: they inherited it in their environment."""
        for worker in psutil.Process(self.process.pid).children():
            directory = worker.environ().get("PROMETHEUS_MULTIPROC_DIR")
            if directory:
                return Path(directory)
        raise AssertionError("no worker counts in a directory")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=40) == 0


@pytest.fixture
def two_workers_metrics_apart(mongodb_uri: str) -> Iterator[Served]:
    """``serve --workers 2 --metrics-bind``, on the suite's store."""
    port, metrics_port = free_port(), free_port()
    command = [sys.executable, "-m", "scim_server", "serve", "--workers", "2"]
    command += ["--port", str(port), "--metrics-bind", f"127.0.0.1:{metrics_port}"]
    command += ["--mongodb-uri", mongodb_uri, "--database", f"metrics_{uuid.uuid4().hex[:8]}"]
    command += ["--admin-token", ADMIN_TOKEN, "--log-level", "WARNING"]
    with announced(command) as process:
        yield Served(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}")


async def test_two_workers_answer_every_scrape_with_the_totals_of_both(
    two_workers_metrics_apart: Served,
) -> None:
    served = two_workers_metrics_apart
    url, metrics_url = served.url, served.metrics_url
    requests = 40
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/admin/tenants", json={"name": "acme"}, headers=ADMIN) as r:
            assert r.status == 201, await r.text()
            token = (await r.json())["token"]

        async def get_users(_: int) -> int:
            # A connection each, so that both workers take some of them.
            async with aiohttp.ClientSession() as one:
                headers = {"Authorization": f"Bearer {token}"}
                async with one.get(f"{url}/scim/v2/acme/Users", headers=headers) as response:
                    return response.status

        assert await asyncio.gather(*map(get_users, range(requests))) == [200] * requests

        # The main port does not serve /metrics at all; the listener apart does, no token.
        async with http.get(f"{url}/metrics", headers=ADMIN) as response:
            assert response.status == 404
        for _ in range(8):
            async with aiohttp.ClientSession() as one, one.get(f"{metrics_url}/metrics") as r:
                assert r.status == 200
                samples = parse(await r.text())
            assert value(samples, "scim_requests_total", operation="users.list") == requests
            assert value(samples, "scim_requests_total", operation="admin.create_tenant") == 1
            count = "scim_request_duration_seconds_count"
            assert value(samples, count, tenant="acme", operation="users.list") == requests
        async with http.get(f"{metrics_url}/Users") as response:
            assert response.status == 404

    # Each start counts in a private directory of its own, removed when the server stops.
    directory = served.counting_directory()
    assert list(directory.glob("counter_*.db"))
    served.stop()
    assert not directory.exists()


@pytest.mark.skipif(
    importlib.util.find_spec(MODULE) is None, reason="needs SecantusDB for the embedded store"
)
async def test_a_store_killed_outright_is_counted_as_restarted(tmp_path: Path) -> None:
    process, url = start_server(tmp_path / "data")
    try:
        async with aiohttp.ClientSession() as http:
            server = Server(process, url, tmp_path / "data", http, workers=1, token=ADMIN_TOKEN)
            await server.wait_ready()
            killed = server.store()
            killed.send_signal(signal.SIGKILL)
            # The restart is counted once the new store answers: scrape until it shows, as a
            # /readyz right after the kill may still be answered before the store is missed.
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                await server.wait_ready()
                async with http.get(f"{url}/metrics", headers=ADMIN) as response:
                    assert response.status == 200
                    samples = parse(await response.text())
                restarted = value(samples, "scim_store_restarts_total", outcome="restarted")
                if restarted or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert server.store().pid != killed.pid
    finally:
        process.send_signal(signal.SIGTERM)
        finished(process, 60)
    assert value(samples, "scim_store_restarts_total", outcome="restarted") == 1
    assert value(samples, "scim_store_restarts_total", outcome="failed") == 0
    assert value(samples, "scim_requests_total", operation="ready", status="200") >= 2
