"""The large-tenants benchmark runs end to end on tiny tenants and reports every row at every
size, with its ratio: a real server process on the suite's store, real requests, nothing timed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import scale
from bench.report import HISTORY


def test_every_row_is_measured_at_every_size_and_set_against_the_smallest(
    mongodb_uri: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--sizes", "30,120", "--requests", "1", "--out", str(tmp_path)]
    assert scale.main([*argv, "--mongodb-uri", mongodb_uri]) == 0

    results = json.loads((tmp_path / "scale.json").read_text())
    figures = results["figures"]
    assert set(figures) == {"30", "120"}
    for size, rows in figures.items():
        assert set(rows) == set(scale.ROWS)
        # The seeded tenant answers whole: its total, a full page (the tenant fits in one
        # below 100), the sw prefix's 10 users, one user by eq.
        assert rows["list"]["total"] == rows["count_only"]["total"] == int(size)
        assert rows["list"]["items"] == rows["sort_first"]["items"] == min(int(size), 100)
        assert (rows["count_only"]["items"], rows["filter_sw"]["items"]) == (0, 10)
        assert rows["filter_eq"]["items"] == 1
        # The smallest tenant's cursor page carries no total (RFC 9865), whatever is beside it.
        assert rows["small_cursor"]["total"] is None and rows["small_cursor"]["items"] == 30
    assert {row["key"] for row in results["ratios"]} == {f"{key}_120" for key in scale.ROWS}

    printed = capsys.readouterr().out
    assert (tmp_path / "scale.md").read_text() in printed
    assert "## Ratios (target: at most 1.5)" in printed
    (line,) = (tmp_path / HISTORY).read_text().splitlines()
    entry = json.loads(line)
    assert entry["suite"] == "scale" and set(entry["ratios"]) == {
        row["key"] for row in results["ratios"]
    }
