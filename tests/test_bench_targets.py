"""The benchmarks' server and peer processes start on whatever token they generated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.targets import Peer, Server, http


async def test_a_bench_server_starts_with_an_admin_token_that_reads_like_an_option(
    mongodb_uri: str, database_name: str, mongo_db: Any, tmp_path: Path
) -> None:
    """``secrets.token_urlsafe`` starts one token in 64 with ``-``, which argparse took for an
    option: the server exited 2 and the benchmark with it."""
    token = "-Vtv-generated-token-with-a-leading-dash"
    server = Server(mongodb_uri, database_name, tmp_path / "server.log", admin_token=token)
    try:
        server.start()
        assert http("GET", f"{server.root}/admin/tenants", token) == (200, {"tenants": []})
    finally:
        server.stop()


def test_the_bench_peer_starts_with_a_token_that_reads_like_an_option(tmp_path: Path) -> None:
    token = "-Vtv-generated-token-with-a-leading-dash"
    peer = Peer(tmp_path / "peer.json", tmp_path / "peer.log", 1, {}, token=token)
    try:
        peer.start(timeout=60)
        status, body = http("GET", f"{peer.base_url}/Users", token)
        assert status == 200 and body["totalResults"] == 1
    finally:
        peer.stop()
