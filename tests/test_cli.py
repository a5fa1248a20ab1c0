"""``scim-server serve`` on the embedded store, administered with the ``scim-server`` CLI:
banner, tenants, a SCIM request, a clean SIGTERM that takes SecantusDB down with it, and data
that survives a restart on the same data directory."""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from conformance.cli import parser as conformance_parser
from idp_sim.cli import SCENARIO_HELP
from idp_sim.cli import _parser as idp_sim_parser
from idp_sim.scenarios import SCENARIOS
from scim_server import cli
from scim_server.cli import _parser as scim_server_parser
from scim_server.embedded import free_port
from tests.support import cli_help

CLI = str(Path(sys.executable).with_name("scim-server"))
BANNER_TIMEOUT = 60.0


def _environment() -> dict[str, str]:
    """The test's environment without any server configuration: the embedded store is used."""
    return {
        key: value
        for key, value in os.environ.items()
        if key != "MONGODB_URI" and not key.startswith("SCIM_")
    }


def _descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``, by pid, with its command line."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            ppid = next(
                line.split()[1]
                for line in status.read_text().splitlines()
                if line.startswith("PPid:")
            )
            command = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, StopIteration):
            continue
        child = int(status.parent.name)
        parents[child] = int(ppid)
        commands[child] = command
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = commands[child]
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = next(
            line
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("State:")
        )
    except (OSError, StopIteration):
        return False
    return "zombie" not in state


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Server:
    process: subprocess.Popen[str]
    root: str
    admin_token: str
    banner: list[str]
    transcript: list[str]
    readers: list[threading.Thread]

    def store(self) -> tuple[int, int]:
        """The pid and port of the SecantusDB child."""
        children = _descendants(self.process.pid)
        store = [(pid, command) for pid, command in children.items() if "secantus" in command]
        assert len(store) == 1, children
        pid, command = store[0]
        port = re.search(r"--port (\d+)", command)
        assert port is not None, command
        return pid, int(port.group(1))

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def kill_if_running(self) -> None:
        """What a test leaves behind when it failed before stopping the server."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def output(self) -> str:
        """Everything the stopped server wrote, on stdout and stderr."""
        assert self.process.poll() is not None
        for reader in self.readers:
            reader.join(timeout=60)
        return "".join(self.transcript)


def _serve(data_dir: Path, admin_token: str | None = None, *options: str) -> Server:
    """Start ``scim-server serve [options]``, with ``SCIM_ADMIN_TOKEN`` set if ``admin_token`` is.

    The server's admin token is the one printed in the banner, else the one given (if any).
    """
    port = free_port()
    environment = _environment()
    if admin_token is not None:
        environment["SCIM_ADMIN_TOKEN"] = admin_token
    process = subprocess.Popen(
        [
            *(CLI, "serve", "--port", str(port), "--data-dir", str(data_dir)),
            *("--log-level", "WARNING", *options),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    lines: queue.Queue[str] = queue.Queue()
    transcript: list[str] = []

    def pump(stream: IO[str], into: Callable[[str], None]) -> None:
        with stream:  # closed at the end of the output, when the server has exited
            for line in stream:
                transcript.append(line)
                into(line)

    assert process.stdout is not None and process.stderr is not None
    readers = [
        threading.Thread(target=pump, args=(process.stdout, lines.put), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, lambda _line: None), daemon=True),
    ]
    for reader in readers:
        reader.start()
    banner: list[str] = []
    deadline = time.monotonic() + BANNER_TIMEOUT
    try:
        while not any("scim-server tenants create" in line for line in banner):
            banner.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
    except queue.Empty:
        process.kill()
        process.wait()
        raise AssertionError(f"no banner within {BANNER_TIMEOUT}s: {banner}") from None
    printed = re.search(r"SCIM_ADMIN_TOKEN=(\S+)", banner[-1])
    token = printed.group(1) if printed is not None else admin_token
    return Server(process, f"http://127.0.0.1:{port}", token or "", banner, transcript, readers)


def _cli(*args: str, admin_token: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_environment(), "SCIM_ADMIN_TOKEN": admin_token},
    )


def _get(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_serve_on_the_embedded_store_administer_stop_and_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = _serve(data_dir)
    try:
        assert server.banner[0].startswith(
            f"SCIM server listening on {server.root} (embedded SecantusDB, data in {data_dir})"
        )
        assert f"Authorization: Bearer {server.admin_token}" in "".join(server.banner)
        store_pid, store_port = server.store()
        assert _listening(store_port)

        created = _cli("tenants", "create", "acme", admin_token=server.admin_token, url=server.root)
        assert created.returncode == 0, created.stderr
        tenant = json.loads(created.stdout)
        assert tenant["name"] == "acme"
        assert tenant["scim_base_url"] == f"{server.root}/scim/v2/acme"

        refused = _cli("tenants", "list", admin_token="wrong", url=server.root)
        assert refused.returncode != 0
        assert "error 401" in refused.stderr

        user = json.dumps(
            {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"}
        ).encode()
        request = urllib.request.Request(
            f"{tenant['scim_base_url']}/Users",
            data=user,
            method="POST",
            headers={
                "Authorization": f"Bearer {tenant['token']}",
                "Content-Type": "application/scim+json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 201
        status, users = _get(f"{tenant['scim_base_url']}/Users", tenant["token"])
        assert status == 200
        assert [u["userName"] for u in users["Resources"]] == ["bjensen"]

        issued = _cli(
            "tokens",
            "issue",
            "acme",
            "--ttl-seconds",
            "3600",
            admin_token=server.admin_token,
            url=server.root,
        )
        assert issued.returncode == 0, issued.stderr
        second = json.loads(issued.stdout)
        assert second["tenant"] == "acme" and second["expires"] is not None
        assert _get(f"{tenant['scim_base_url']}/Users", second["token"])[0] == 200
        assert second["token_id"] == second["id"]  # id: the former name, kept beside it
        revoked = _cli(
            "tokens",
            "revoke",
            "acme",
            second["token_id"],
            admin_token=server.admin_token,
            url=server.root,
        )
        assert revoked.returncode == 0, revoked.stderr
        assert revoked.stdout == f"revoked token {second['token_id']} of tenant acme\n"
        with pytest.raises(urllib.error.HTTPError) as refused_token:
            _get(f"{tenant['scim_base_url']}/Users", second["token"])
        assert refused_token.value.code == 401

        _cli("tenants", "create", "globex", admin_token=server.admin_token, url=server.root)
        deleted = _cli(
            "tenants", "delete", "globex", admin_token=server.admin_token, url=server.root
        )
        assert deleted.returncode == 0, deleted.stderr
        assert deleted.stdout == "deleted tenant globex and all its data\n"

        descendants = set(_descendants(server.process.pid))
        assert server.stop() == 0
        assert not [pid for pid in descendants | {store_pid} if _alive(pid)]
        assert not _listening(store_port)
    finally:
        server.kill_if_running()

    # Same data directory: the tenant, its user, its token and the admin token are all kept.
    again = _serve(data_dir)
    try:
        listed = _cli("tenants", "list", admin_token=server.admin_token, url=again.root)
        assert listed.returncode == 0, listed.stderr
        assert [t["name"] for t in json.loads(listed.stdout)["tenants"]] == ["acme"]
        status, users = _get(f"{again.root}/scim/v2/acme/Users", tenant["token"])
        assert status == 200
        assert [u["userName"] for u in users["Resources"]] == ["bjensen"]
        assert again.stop() == 0
    finally:
        if again.process.poll() is None:
            again.process.kill()
            again.process.wait()


# --- help texts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("program", "parser"),
    [
        ("scim-server", scim_server_parser),
        ("idp-sim", idp_sim_parser),
        ("scim-conformance", conformance_parser),
    ],
)
def test_every_command_and_option_has_help_and_shows_its_default(
    program: str, parser: Callable[[], argparse.ArgumentParser]
) -> None:
    missing: list[str] = []
    for path, command in cli_help.commands(parser(), program):
        command.format_help()  # renders: no stray % in a help text
        missing += cli_help.untaught(path, command)
    assert missing == []


def test_idp_sim_run_help_explains_every_scenario() -> None:
    assert set(SCENARIO_HELP) == set(SCENARIOS)
    run = dict(cli_help.commands(idp_sim_parser(), "idp-sim"))["idp-sim run"]
    assert all(f"  {name} " in run.format_help() for name in SCENARIOS)


def test_the_cli_loads_no_logging_library_until_a_server_is_served() -> None:
    """``--help`` and the admin commands start without structlog (and the rich tracebacks it
    brings in): a third of the command's start-up went to them, and only ``serve`` logs."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, scim_server.cli; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    modules = set(loaded.stdout.strip("[]\n").replace("'", "").split(", "))
    assert {"structlog", "rich"} & modules == set()


def _started_and_stopped(
    data_dir: Path, admin_token: str | None = None, *options: str, known_token: str | None = None
) -> Server:
    """A server that answered its admin API, then stopped cleanly. The admin token used is
    ``known_token`` (one an earlier start generated) or else the one this start announced."""
    server = _serve(data_dir, admin_token, *options)
    try:
        token = known_token or server.admin_token
        listed = _cli("tenants", "list", admin_token=token, url=server.root)
        assert listed.returncode == 0, listed.stderr
        assert server.stop() == 0
    finally:
        server.kill_if_running()
    return server


def test_a_generated_admin_token_is_printed_by_the_first_start_only(tmp_path: Path) -> None:
    first = _started_and_stopped(tmp_path / "data")
    assert first.admin_token
    assert f"Authorization: Bearer {first.admin_token}" in first.output()

    # Same data directory: the kept token still opens the admin API, but is never printed.
    again = _started_and_stopped(tmp_path / "data", known_token=first.admin_token)
    output = again.output()
    assert first.admin_token not in output
    assert "scim-server tenants create acme" in output  # the newcomer still learns the way
    assert "shown only this once" in first.output()
    assert "generated and printed at the first start" in output


def test_a_configured_admin_token_is_never_printed(tmp_path: Path) -> None:
    configured = "configured-admin-token-0123456789"
    for _start in range(2):  # the first start on a new data directory, then a later one
        server = _started_and_stopped(tmp_path / "data", configured)
        output = server.output()
        assert configured not in output
        assert "set by SCIM_ADMIN_TOKEN" in output
        assert "Bearer $SCIM_ADMIN_TOKEN" in output


def test_with_several_workers_the_generated_admin_token_is_printed_once_and_works(
    tmp_path: Path,
) -> None:
    # Exactly one announcement shows the generated token, and every worker accepts it: each CLI
    # call is a new connection, which the kernel spreads over the workers.
    server = _serve(tmp_path / "data", None, "--workers", "2")
    try:
        for _attempt in range(6):
            listed = _cli("tenants", "list", admin_token=server.admin_token, url=server.root)
            assert listed.returncode == 0, listed.stderr
        assert server.stop() == 0
    finally:
        server.kill_if_running()
    output = server.output()
    assert output.count("shown only this once") == 1
    assert output.count("SCIM server listening on") == 1


@pytest.mark.parametrize(
    ("flags", "environment", "said"),
    [
        ([], {"SCIM_PORT": "eighty"}, "SCIM_PORT is a whole number"),
        ([], {"SCIM_LOG_FORMAT": "xml"}, "the log format (SCIM_LOG_FORMAT, --log-format) is"),
        ([], {"SCIM_LOG_LEVEL": "LOUD"}, "the log level (SCIM_LOG_LEVEL, --log-level) is one of"),
        ([], {"SCIM_ACCESS_LOG": "maybe"}, "SCIM_ACCESS_LOG is a boolean"),
        (["--metrics-bind", "nonsense"], {}, "metrics_bind is host:port"),
        ([], {"SCIM_METRICS_BIND": "127.0.0.1:port"}, "metrics_bind is host:port"),
        (["--store-restarts", "-1"], {}, "store_restarts is zero or a positive number"),
    ],
)
def test_a_bad_setting_stops_serve_before_anything_starts_with_one_line_naming_it(
    flags: list[str],
    environment: dict[str, str],
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    assert cli.main(["serve", *flags]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # never listened
    [line] = err.splitlines()
    assert line.startswith(f"scim-server: {said}"), line


def test_resources_commands_serve_a_type_and_load_its_resources_from_a_file(
    tmp_path: Path,
) -> None:
    server = _serve(tmp_path / "data")
    try:

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return _cli(*args, admin_token=server.admin_token, url=server.root)

        tenant = json.loads(cli("tenants", "create", "acme").stdout)
        served = cli("resources", "types", "--tenant", "acme", "--set", "Role", "License")
        assert served.returncode == 0, served.stderr
        assert [t["name"] for t in json.loads(served.stdout)["resource_types"]] == [
            "Role",
            "License",
        ]
        roles = tmp_path / "roles.json"
        schema = "urn:okta:scim:schemas:core:1.0:Role"
        roles.write_text(
            json.dumps(
                {
                    "Resources": [
                        {"schemas": [schema], "displayName": n, "type": "Role", "externalId": n}
                        for n in ("admin", "viewer")
                    ]
                }
            )
        )
        loaded = cli("resources", "load", "--tenant", "acme", "--type", "Roles", str(roles))
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout == "loaded 2 Roles into tenant acme\n"
        status, page = _get(
            f"{tenant['scim_base_url']}/Roles?count=1&startIndex=1", tenant["token"]
        )
        assert status == 200 and page["itemsPerPage"] == 1 and page["totalResults"] == 2

        removed = cli(
            "resources", "remove", "--tenant", "acme", "--type", "Roles", page["Resources"][0]["id"]
        )
        assert removed.returncode == 0, removed.stderr
        assert _get(f"{tenant['scim_base_url']}/Roles", tenant["token"])[1]["totalResults"] == 1

        roles.write_text("[{")
        broken = cli("resources", "load", "--tenant", "acme", "--type", "Roles", str(roles))
        assert broken.returncode != 0 and "not valid JSON" in broken.stderr
        roles.write_text(json.dumps([{"schemas": [schema], "displayName": "x"}]))
        refused = cli("resources", "load", "--tenant", "acme", "--type", "Roles", str(roles))
        assert refused.returncode != 0 and "error 400" in refused.stderr
        assert "Resources[0]" in refused.stderr
        assert server.stop() == 0
    finally:
        server.kill_if_running()


def test_user_extensions_commands_define_show_and_remove_an_extension(tmp_path: Path) -> None:
    server = _serve(tmp_path / "data")
    try:

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return _cli(*args, admin_token=server.admin_token, url=server.root)

        tenant = json.loads(cli("tenants", "create", "acme").stdout)
        urn = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
        schema = tmp_path / "acme.json"
        schema.write_text(json.dumps({"attributes": [{"name": "badge", "type": "string"}]}))
        defined = cli("user-extensions", "set", "--tenant", "acme", urn, str(schema))
        assert defined.returncode == 0, defined.stderr
        assert json.loads(defined.stdout)["attributes"][0]["multiValued"] is False
        listed = json.loads(cli("user-extensions", "list", "--tenant", "acme").stdout)
        assert [d["id"] for d in listed["user_extensions"]] == [urn]
        shown = json.loads(cli("user-extensions", "show", "--tenant", "acme", urn).stdout)
        assert shown["name"] == "User"
        status, found = _get(f"{tenant['scim_base_url']}/Schemas/{urn}", tenant["token"])
        assert status == 200 and found["attributes"][0]["name"] == "badge"

        schema.write_text(json.dumps({"attributes": [{"name": "badge", "type": "binary"}]}))
        refused = cli("user-extensions", "set", "--tenant", "acme", urn, str(schema))
        assert refused.returncode != 0 and "error 400" in refused.stderr
        removed = cli("user-extensions", "remove", "--tenant", "acme", urn)
        assert removed.returncode == 0, removed.stderr
        assert removed.stdout == f"removed the User extension {urn} of tenant acme\n"
        with pytest.raises(urllib.error.HTTPError) as gone:
            _get(f"{tenant['scim_base_url']}/Schemas/{urn}", tenant["token"])
        assert gone.value.code == 404
        assert server.stop() == 0
    finally:
        server.kill_if_running()
