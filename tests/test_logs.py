"""The server's log: one access line per request, request ids, the log formats, and tracing.

Most tests read the stderr of ``scim-server serve`` run as a subprocess, as an operator's log
shipper would; the 500 path and tracing run the application in this process, on real HTTP,
to make a handler fail and to read spans from an in-memory exporter.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from idp_sim.profiles import PROFILES
from scim_server.config import Settings
from scim_server.embedded import free_port
from scim_server.logs import configure_logging
from scim_server.tracing import start_tracing, stop_tracing, trace_ids
from scim_server.web.app import create_app
from tests.support.scim import ADMIN, ADMIN_TOKEN, make_tenant
from tests.support.urns import USER

CLI = str(Path(sys.executable).with_name("scim-server"))
BANNER_TIMEOUT = 60.0
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Served:
    """A ``scim-server serve`` subprocess, and the log it writes on stderr."""

    process: subprocess.Popen[str]
    root: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def records(self) -> list[dict[str, Any]]:
        """Every JSON line of the log so far (each line must be one)."""
        return [json.loads(line) for line in self.log().splitlines()]

    def access_line(self, request_id: str) -> dict[str, Any]:
        """The one access-log line of the request with this id, waiting for it to be written."""
        deadline = time.monotonic() + 10
        while True:
            lines = [
                record
                for record in self.records()
                if record["event"] == "request" and record.get("request_id") == request_id
            ]
            if lines or time.monotonic() > deadline:
                assert len(lines) == 1, lines
                return lines[0]
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _serve(mongodb_uri: str, directory: Path, *options: str, **environment: str) -> Served:
    """``scim-server serve`` on the suite's database server, in a database of its own."""
    port = free_port()
    log_path = directory / f"server-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIM_")} | environment
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                *(CLI, "serve", "--port", str(port), "--mongodb-uri", mongodb_uri),
                *("--database", f"logs_{uuid.uuid4().hex[:8]}", "--admin-token", ADMIN_TOKEN),
                *("--token-secret", "logs-signing-secret-of-at-least-32-bytes", *options),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=env,
        )
    assert process.stdout is not None
    served = Served(process, f"http://127.0.0.1:{port}", log_path)
    banner = process.stdout.readline()  # the first line, printed once the server listens
    if "listening on" not in banner:
        served.stop()
        raise AssertionError(f"no banner: {banner!r}; log: {served.log()}")
    return served


@pytest.fixture(scope="module")
def json_server(mongodb_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = _serve(mongodb_uri, tmp_path_factory.mktemp("json"), "--log-format", "json")
    yield served
    served.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _tenant(http: aiohttp.ClientSession, root: str) -> tuple[str, str]:
    """A new tenant of the server at ``root``: its name and a bearer token."""
    name = f"t{uuid.uuid4().hex[:10]}"
    async with http.post(f"{root}/admin/tenants", json={"name": name}, headers=ADMIN) as answer:
        assert answer.status == 201, await answer.text()
        return name, (await answer.json())["token"]


async def test_each_request_logs_one_json_line_with_its_route_template_status_and_client(
    json_server: Served, http: aiohttp.ClientSession
) -> None:
    tenant, token = await _tenant(http, json_server.root)
    base = f"{json_server.root}/scim/v2/{tenant}"
    okta = {"Authorization": f"Bearer {token}", "User-Agent": "Okta SCIM Client 1.0.0"}
    user = {"schemas": [USER], "userName": "bjensen"}
    async with http.post(f"{base}/Users", json=user, headers=okta) as created:
        assert created.status == 201
        user_id = (await created.json())["id"]
        create_id = created.headers["X-Request-Id"]
    async with http.get(f"{base}/Users/{user_id}", headers=okta) as read:
        read_id = read.headers["X-Request-Id"]
    async with http.get(f"{base}/Users/nobody", headers=okta) as missing:
        assert missing.status == 404
        missing_id = missing.headers["X-Request-Id"]

    line = json_server.access_line(create_id)
    assert GENERATED_ID.fullmatch(create_id)
    assert line["level"] == "info" and line["logger"] == "scim_server.access"
    assert {key: line[key] for key in ("tenant", "method", "route", "status", "client")} == {
        "tenant": tenant,
        "method": "POST",
        "route": "/scim/v2/{tenant}/Users",
        "status": 201,
        "client": "okta",
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert isinstance(line["process"], int) and line["timestamp"].endswith("Z")
    # The template, never the path with its id.
    assert json_server.access_line(read_id)["route"] == "/scim/v2/{tenant}/Users/{id}"
    assert user_id not in json.dumps(json_server.access_line(read_id))
    assert json_server.access_line(missing_id)["status"] == 404


async def test_every_response_echoes_the_request_id_and_a_bad_one_is_replaced(
    json_server: Served, http: aiohttp.ClientSession
) -> None:
    tenant, token = await _tenant(http, json_server.root)
    root = json_server.root
    scim = f"/scim/v2/{tenant}"
    requests: list[tuple[str, str, dict[str, str], int, str | None]] = [
        ("GET", "/healthz", {}, 200, None),
        ("GET", "/no/such/endpoint", {}, 404, None),
        ("GET", "/admin/tenants", {}, 401, None),
        ("GET", "/admin/tenants", ADMIN, 200, None),
        ("GET", f"{scim}/Users", {}, 401, tenant),
        ("DELETE", f"{scim}/ServiceProviderConfig", {}, 405, None),  # no route: no tenant
        ("GET", f"{scim}/Users", {"Authorization": f"Bearer {token}"}, 200, tenant),
        ("GET", f"/sso/{tenant}/", {}, 200, tenant),
        ("GET", "/sso/NO%20SUCH/", {}, 404, None),  # not a tenant name: not logged as one
    ]
    for method, path, headers, status, logged_tenant in requests:
        sent = f"req-{uuid.uuid4()}"
        async with http.request(
            method, root + path, headers={**headers, "X-Request-Id": sent}
        ) as answer:
            assert answer.status == status, (path, await answer.text())
            assert answer.headers["X-Request-Id"] == sent, path
        line = json_server.access_line(sent)
        assert (line["method"], line["status"]) == (method, status)
        assert line["tenant"] == logged_tenant

    refused = ["", "has space", "x" * 129, 'quote"d', "semi;colon", "caf\u00e9"]
    for bad in refused:
        async with http.get(f"{root}/healthz", headers={"X-Request-Id": bad}) as answer:
            assert answer.status == 200
            replaced = answer.headers["X-Request-Id"]
        assert GENERATED_ID.fullmatch(replaced), (bad, replaced)
        assert json_server.access_line(replaced)["route"] == "/healthz"
    assert "has space" not in json_server.log()


async def test_no_token_cookie_query_or_body_reaches_the_log(
    json_server: Served, http: aiohttp.ClientSession
) -> None:
    tenant, token = await _tenant(http, json_server.root)
    base = f"{json_server.root}/scim/v2/{tenant}"
    marker = f"marker{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {token}", "Cookie": f"session=cookie{marker}"}
    user = {"schemas": [USER], "userName": f"body{marker}", "password": f"secret{marker}"}
    async with http.post(f"{base}/Users", json=user, headers=headers) as created:
        assert created.status == 201
    query = {"filter": f'userName eq "query{marker}"'}
    async with http.get(f"{base}/Users", params=query, headers=headers) as listed:
        assert listed.status == 200
        listed_id = listed.headers["X-Request-Id"]
    scim_json = {**headers, "Content-Type": "application/scim+json"}
    async with http.post(f"{base}/Users", data=f"{{broken{marker}", headers=scim_json) as broken:
        assert broken.status == 400
        broken_id = broken.headers["X-Request-Id"]
    json_server.access_line(listed_id)
    json_server.access_line(broken_id)

    log = json_server.log()
    assert token not in log
    assert token.split(".")[-1] not in log  # not even the signature alone
    assert ADMIN_TOKEN not in log
    assert marker not in log


async def test_the_client_of_each_idp_sim_profile_is_its_identity_providers_family(
    json_server: Served,
) -> None:
    async with aiohttp.ClientSession() as http:
        tenant, token = await _tenant(http, json_server.root)
    base = f"{json_server.root}/scim/v2/{tenant}"
    expected = {
        "okta-oin": "okta",
        "okta-aiw": "okta",
        "okta-entitlements": "okta",
        "entra": "entra",
        "entra-optscim062020": "entra",
        "jumpcloud": "other",  # it sends no User-Agent unless told one
    }
    assert set(expected) == set(PROFILES)
    sent = [(name, PROFILES[name][1](base, token), expected[name]) for name in PROFILES]
    sent.append(
        ("jumpcloud", PROFILES["jumpcloud"][1](base, token, user_agent="JumpCloud"), "jumpcloud")
    )
    for name, transport, family in sent:
        async with transport:
            answer = await transport.request("GET", "/Users", [("count", 1)])
        assert answer.status == 200, (name, answer.body)
        line = json_server.access_line(CIMultiDict(answer.headers)["X-Request-Id"])
        assert line["client"] == family, name


async def test_text_format_and_no_access_log_on_request(
    mongodb_uri: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    text = _serve(mongodb_uri, tmp_path, SCIM_LOG_FORMAT="text")
    quiet = _serve(mongodb_uri, tmp_path, "--no-access-log", "--log-format", "json")
    try:
        for served in (text, quiet):
            async with http.get(f"{served.root}/healthz", headers={"X-Request-Id": "r-1"}) as ok:
                assert ok.headers["X-Request-Id"] == "r-1"
    finally:
        text.stop()
        quiet.stop()

    text_lines = text.log().splitlines()
    assert not any(line.startswith("{") for line in text_lines), text_lines
    [request] = [line for line in text_lines if " request " in line]
    assert "[info" in request and "route=/healthz" in request and "request_id=r-1" in request
    assert "status=200" in request and "client=other" in request
    records = quiet.records()  # still JSON lines, one per record
    assert any(record["event"].startswith("listening on") for record in records)
    assert not [record for record in records if record["event"] == "request"]


def test_tracing_without_its_extra_stops_the_start_with_one_clear_line(mongodb_uri: str) -> None:
    # The tracing packages hidden from the server, as in an install without the extra.
    program = (
        "import sys\n"
        "class Hidden:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'opentelemetry':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hidden())\n"
        "from scim_server.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    port = free_port()
    finished = subprocess.run(
        [
            *(sys.executable, "-c", program, "serve", "--tracing", "--port", str(port)),
            *("--mongodb-uri", mongodb_uri, "--admin-token", ADMIN_TOKEN),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("SCIM_")},
    )
    assert finished.returncode == 1
    assert finished.stdout == ""  # never listened
    assert finished.stderr.splitlines() == [
        "scim-server: tracing needs the tracing extra (pip install 'scim-toolkit[tracing]'): "
        "opentelemetry is missing"
    ]


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """This process's log, as JSON lines in memory, for the length of one test."""
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("INFO", "json", stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_configuring_the_log_again_replaces_it(log_stream: io.StringIO) -> None:
    again = io.StringIO()
    configure_logging("INFO", "json", again)
    logging.getLogger("scim_server").info("once")
    assert log_stream.getvalue() == ""
    [line] = again.getvalue().splitlines()
    assert json.loads(line)["event"] == "once"


async def _explode(request: web.Request) -> web.Response:
    raise RuntimeError(f"the handler of {request.match_info['tenant']} failed")


async def test_a_500_logs_its_traceback_with_the_request_id(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, log_stream: io.StringIO
) -> None:
    app = create_app(settings)
    app.router.add_get("/scim/v2/{tenant}/Explode", _explode)  # a handler with a bug
    client: TestClient[Any, Any] = await aiohttp_client(app)
    answer = await client.get("/scim/v2/acme/Explode", headers={"X-Request-Id": "boom-1"})
    assert answer.status == 500
    assert answer.headers["X-Request-Id"] == "boom-1"
    assert "Traceback" not in await answer.text()

    records = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    [failure] = [record for record in records if record["level"] == "error"]
    assert failure["request_id"] == "boom-1"
    assert failure["event"] == "unexpected failure during GET /scim/v2/acme/Explode"
    assert "Traceback" in failure["exception"]
    assert "RuntimeError: the handler of acme failed" in failure["exception"]
    [access] = [record for record in records if record["event"] == "request"]
    assert (access["request_id"], access["status"]) == ("boom-1", 500)
    # Nothing logged while handling another request carries this one's id.
    await client.get("/healthz")
    later = [json.loads(line) for line in log_stream.getvalue().splitlines()][len(records) :]
    assert later and all(record.get("request_id") != "boom-1" for record in later)


async def test_a_text_log_line_cannot_be_forged_by_a_path(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, log_stream: io.StringIO
) -> None:
    configure_logging("INFO", "text", log_stream)
    app = create_app(settings)
    app.router.add_get("/scim/v2/{tenant}/Explode/{rest}", _explode)
    client: TestClient[Any, Any] = await aiohttp_client(app)
    forged = "%0A2026-01-01T00:00:00Z [error    ] forged line"
    answer = await client.get(f"/scim/v2/acme/Explode/x{forged.replace(' ', '%20')}")
    assert answer.status == 500
    lines = log_stream.getvalue().splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01")], lines
    assert any("Explode/x\\n2026-01-01" in line for line in lines), lines


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """This process traced into memory for this module's tests; untraced again after."""
    exporter = InMemorySpanExporter()
    start_tracing(exporter)
    yield exporter
    stop_tracing()


async def test_a_traced_request_has_a_server_span_with_a_child_span_per_database_command(
    aiohttp_client: Any,
    settings: Settings,
    mongo_db: Any,
    spans: InMemorySpanExporter,
    log_stream: io.StringIO,
) -> None:
    configure_logging("INFO", "json", log_stream, fields=[trace_ids])
    # No journal: no command of its background writer among the request's.
    traced = replace(settings, journal_enabled=False)
    client: TestClient[Any, Any] = await aiohttp_client(create_app(traced))
    tenant = await make_tenant(client, "acme")
    spans.clear()
    answer = await client.get(
        "/scim/v2/acme/Users/nobody", headers={"Authorization": f"Bearer {tenant['token']}"}
    )
    assert answer.status == 404

    finished = spans.get_finished_spans()
    [server] = [span for span in finished if span.kind == SpanKind.SERVER]
    assert server.name == "GET /scim/v2/{tenant}/Users/{id}"
    assert server.attributes is not None and server.attributes["http.status_code"] == 404
    commands = [span for span in finished if span.kind == SpanKind.CLIENT]
    # At least the tenant's token check and the user's lookup, each its own span.
    assert len(commands) >= 2, finished
    for command in commands:
        assert command.parent is not None and command.parent.span_id == server.context.span_id
        assert command.context.trace_id == server.context.trace_id
        assert command.name.startswith(f"{settings.database}.")
    # The request's access line leads to its trace.
    records = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    [line] = [record for record in records if record.get("route") == server.name.split()[1]]
    assert line["trace_id"] == f"{server.context.trace_id:032x}"
    assert line["span_id"] == f"{server.context.span_id:016x}"
