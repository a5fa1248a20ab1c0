"""``python -m conformance.local`` (``make conformance``) keeps its secrets off command lines.

A command line is readable by every user of the machine (``ps``, ``/proc/*/cmdline``): the admin
token, the token-signing secret and the tenants' bearer tokens must reach the server and the
runner through their environment, and no output may show them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conformance import local
from conformance.cli import parser

SECRET_VARIABLES = (
    "SCIM_ADMIN_TOKEN",
    "SCIM_TOKEN_SECRET",
    "SCIM_TOKEN",
    "SCIM_SECOND_TOKEN",
    "SCIM_OIDC_CLIENT_SECRET",
)


def test_local_plans_command_lines_without_secrets_and_hands_them_over_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = local.plan(local.parse(["--root", str(tmp_path), "--port", "18123"]), ["tenancy"])
    server = plan.server_argv(str(tmp_path / "data"))
    runner = plan.conformance_argv("http://a/scim/v2/a", "http://a/scim/v2/b")
    flags = {"--admin-token", "--token-secret", "--token", "--second-token"}
    assert not flags & {*server, *runner}
    assert "--webhook-allow-private" in server  # the events suite's receiver is on 127.0.0.1
    assert local.server_secrets("admin-t")["SCIM_ADMIN_TOKEN"] == "admin-t"
    assert set(local.server_secrets("admin-t")) == {"SCIM_ADMIN_TOKEN", "SCIM_TOKEN_SECRET"}
    handed = local.tenant_secrets("tok-a", "tok-b", "admin-t")
    environment = local.child_environment(handed)
    assert environment["PATH"] == os.environ["PATH"]  # the rest of the environment is inherited
    for name, value in handed.items():
        monkeypatch.setenv(name, value)
    args = parser().parse_args(runner)
    assert (args.token, args.second_token, args.admin_token) == ("tok-a", "tok-b", "admin-t")


def _without_configuration() -> dict[str, str]:
    """The test's environment without server configuration: local.py starts the embedded store."""
    return {
        key: value
        for key, value in os.environ.items()
        if key != "MONGODB_URI" and not key.startswith("SCIM_")
    }


def test_make_conformance_shows_no_secret_in_any_child_command_line_nor_output(
    tmp_path: Path,
) -> None:
    """Runs what ``make conformance`` runs (one small suite), watching every descendant's command
    line and environment while it runs: the secrets are found in the environments, and nowhere
    in a command line or in what was printed."""
    output = tmp_path / "output.txt"
    command = [sys.executable, "-m", "conformance.local", "--root", str(tmp_path)]
    with output.open("wb") as sink:
        run = subprocess.Popen(
            [*command, "--suite", "tenancy"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_without_configuration(),
        )
        command_lines: set[str] = set()
        secrets: dict[str, str] = {}
        while run.poll() is None:
            for child in psutil.Process(run.pid).children(recursive=True):
                try:
                    command_lines.add(" ".join(child.cmdline()))
                    environment = child.environ()
                except psutil.Error:  # gone between listing and reading
                    continue
                secrets.update({k: environment[k] for k in SECRET_VARIABLES if k in environment})
            time.sleep(0.05)
    printed = output.read_text()
    assert run.returncode == 0, printed
    assert set(secrets) == set(SECRET_VARIABLES), sorted(secrets)
    assert any("conformance.cli" in line for line in command_lines)
    leaks = [
        (name, where)
        for name, secret in secrets.items()
        for where, text in [("output", printed), *(("argv", line) for line in command_lines)]
        if secret in text
    ]
    assert leaks == []
    assert (tmp_path / "conformance-report.json").exists()
