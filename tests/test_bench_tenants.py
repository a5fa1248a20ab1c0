"""The tenants-under-load benchmark runs end to end on tiny settings and reports every tenant:
a real server process on the suite's store, real open-loop traffic, nothing timed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import tenants
from bench.report import HISTORY

KINDS = set(tenants.KINDS)


def test_every_tenant_is_loaded_and_reported_with_its_p99(
    mongodb_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--tenants", "2", "--rate", "10", "--seconds", "1", "--users", "3"]
    assert tenants.main([*argv, "--mongodb-uri", mongodb_uri, "--out", str(tmp_path)]) == 0

    results = json.loads((tmp_path / "tenants.json").read_text())
    figures = results["figures"]
    assert set(figures["tenants"]) == {"t00", "t01"}
    for row in figures["tenants"].values():
        # Every mixed request was sent and succeeded: creates, reads, PATCHes, lookups, adds.
        assert (row["requests"], row["ok"], row["errors"]) == (10, 10, 0), row
        assert row["p50_ms"] is not None and row["p99_ms"] >= row["p50_ms"]
    assert figures["failures"] == {}
    assert set(figures["kinds"]) == KINDS
    assert all(kind["ok"] == 4 for kind in figures["kinds"].values())

    printed = capsys.readouterr().out
    assert "| t00 | 10 | 10 | 0 |" in printed and "| t01 | 10 | 10 | 0 |" in printed
    assert (tmp_path / "tenants.md").read_text() in printed
    assert "No error." in printed
    (line,) = (tmp_path / HISTORY).read_text().splitlines()
    assert json.loads(line)["suite"] == "tenants"
