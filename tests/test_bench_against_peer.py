"""The report of ``bench.against_peer``: the targets judged on one worker, and the run with
``--workers N`` (this server at its recommended deployment) in a table of its own, labelled,
judged against nothing. Built from made-up figures; nothing is run or timed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import against_peer


def _side(throughput: float) -> dict[str, Any]:
    return {
        "throughput": throughput,
        "p50_ms": 10.0,
        "p99_ms": 50.0,
        "errors": 0,
        "foreign_cores": 0.0,
        "users_created": 3000,
    }


def _figures(server: float, peer: float) -> dict[str, Any]:
    figures: dict[str, Any] = {
        compared.key: {"server": _side(server), "peer": _side(peer), "ratio": server / peer}
        for compared in against_peer.COMPARED
    }
    figures["bulk"]["server_bulk_vs_post"] = 2.0
    figures["bulk"]["peer_bulk_vs_post"] = 1.0
    return figures


def _results(scaled: dict[str, Any] | None = None) -> dict[str, Any]:
    results: dict[str, Any] = {
        "date": "2026-12-02T09:00:00+00:00",
        "machine": {"cpu": "cpu", "cores": 2, "commit": "abc1234"},
        "config": {
            "quick": True,
            "users": 1000,
            "seconds": 3,
            "bulk_seconds": 5,
            "connections": 16,
        },
        "figures": _figures(server=500, peer=1000),
    }
    if scaled is not None:
        results["scaled"] = scaled
    return results


def _section(text: str, heading: str) -> str:
    """The text of the section under ``heading``, up to the next one."""
    after = text.split(heading, 1)[1]
    return after.split("\n## ", 1)[0]


def test_one_worker_is_judged_against_the_targets(tmp_path: Path) -> None:
    text = against_peer.markdown(_results(), tmp_path)
    judged = _section(text, "## One worker: like for like, the targets judged")
    assert "| GET /Users/{id} | 500 |" in judged
    assert "| 0.50 | ≥ 1.0 | miss |" in judged
    assert "workers" not in text.split("\n", 3)[2]  # the command line names no --workers
    assert "recommended deployment" not in text


def test_several_workers_get_a_table_of_their_own_judged_against_nothing(tmp_path: Path) -> None:
    scaled = {"workers": 2, "figures": _figures(server=1500, peer=1000)}
    text = against_peer.markdown(_results(scaled), tmp_path)
    assert "`python -m bench.against_peer --quick --workers 2`" in text
    judged = _section(text, "## One worker: like for like, the targets judged")
    assert "| 0.50 | ≥ 1.0 | miss |" in judged  # the verdicts stay those of one worker
    deployment = _section(text, "## 2 workers: this server at its recommended deployment")
    assert "(not judged)" in deployment
    assert "| GET /Users/{id} | 1,500 |" in deployment
    assert "| 1.50 | 0.00 / 0.00 |" in deployment
    assert "pass" not in deployment and "miss" not in deployment and "≥" not in deployment


def test_workers_below_one_are_refused() -> None:
    with pytest.raises(SystemExit) as refused:
        against_peer.main(["--workers", "0"])
    assert refused.value.code == 2


def test_bulk_is_compared_with_posts_on_n_connections_and_one_at_a_time(tmp_path: Path) -> None:
    """The judged ratio (POSTs on N connections) and, labelled apart, the like-for-like one
    (POSTs one at a time on one connection, as Bulk is sent), with the CPU per create."""
    results = _results()
    bulk = results["figures"]["bulk"]
    bulk["server_bulk_vs_serial_post"] = 6.0
    bulk["peer_bulk_vs_serial_post"] = 1.5
    for compared in against_peer.CREATING:
        figures = results["figures"][compared.key]
        figures["server"]["cpu_ms_per_create"] = {"server": 0.5, "store": 2.25}
        figures["peer"]["cpu_ms_per_create"] = {"peer": 0.75}
    text = against_peer.markdown(results, tmp_path)
    assert "÷ single POSTs on 16 connections, in creates per second: 2.00 on this server" in text
    assert "(target ≥ 5: **miss**)" in text
    assert "one at a time on one connection (not judged): 6.00 on this server, 1.50" in text
    assert "| POST /Users, one at a time on one connection | 0.50 | 2.25 | 0.75 |" in text
    assert against_peer.ratios(results["figures"])["bulk_vs_serial_post"] == 6.0
