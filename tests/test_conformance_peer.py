"""The runner on a server it was not written for: the peer ``scim2-server`` from PyPI.

The peer runs as its authors ship it (``scim2-server --bearer-token T``: default schemas,
resource types and configuration, plus the bearer scheme it announces with a token), but
as its ASGI application on uvicorn, the way bench/peer.py serves it, in a subprocess on
a free port. The verdicts are pinned exactly, so the runner can neither flatter the peer
nor invent faults: the peer is right to answer PATCH with 204 (RFC 7644 §3.5.2), and
wrong to store a member id that names nothing, to keep listing a deleted user among a group's
members, to read ``GET /Users/.search`` as the user whose id is ``.search`` (404, not 405), and
to answer a filter on ``meta.location`` with no user rather than the one it names (or a 400).

``python -m tests.test_conformance_peer PORT TOKEN`` serves the peer (the subprocess).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.checks import Verdict, suites
from conformance.runner import RunResult, run

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "peer-conformance-token"
UNKNOWN_MEMBER = "rfc.groups.unknown-member-refused"
STALE_MEMBER = "rfc.crud.references-dropped-on-delete"
SEARCH_READ_AS_ID = "rfc.errors.method-not-allowed"
LOCATION_UNFILTERED = "rfc.filter.id-meta"
FAULTS = {UNKNOWN_MEMBER, STALE_MEMBER, SEARCH_READ_AS_ID, LOCATION_UNFILTERED}
NO_ENTITLEMENT_TYPE = "okta-ent.01-resource-types"


def serve_peer(port: int, token: str) -> None:
    """Serve scim2-server's ASGI app, configured as its ``scim2-server`` command would be."""
    import uvicorn
    from scim2_models import ScimProvider, UnauthorizedException
    from scim2_server.applications.asgi import ASGIApplication
    from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
    from scim2_server.requests import ScimRequest
    from scim2_server.service import ScimService
    from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
    from scim2_server.utils import (
        load_default_resource_types,
        load_default_schemas,
        load_default_service_provider_config,
    )

    config = load_default_service_provider_config()
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )

    class BearerApp(ASGIApplication):
        """The static bearer check of scim2-server's own BearerTokenApplication."""

        def check_auth(self, request: ScimRequest) -> None:
            scheme, _, given = (request.header("Authorization") or "").partition(" ")
            if scheme.lower() != "bearer" or given != token:
                raise UnauthorizedException

    app = BearerApp(
        AsyncInMemoryStorage(InMemoryStorage()),
        provider,
        ScimService(provider, secret="conformance-peer"),
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def peer_base() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.test_conformance_peer", str(port), TOKEN], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the peer scim2-server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def verdicts(result: RunResult, verdict: Verdict) -> set[str]:
    return {r.check.id for r in result.results if r.verdict is verdict}


async def test_peer_verdicts_are_exactly_the_honest_ones(peer_base: str) -> None:
    result = await run(peer_base, TOKEN, ["rfc", "okta-spec", "okta-entitlements"])
    every = {c.id for name in ("rfc", "okta-spec") for c in suites()[name]}
    # The peer serves User and Group only, so it is no entitlement app: the first check says
    # so, and the others, which read the types it found, skip.
    entitlements = {c.id for c in suites()["okta-entitlements"]}
    assert verdicts(result, Verdict.ERROR) == set()
    assert verdicts(result, Verdict.SKIP) == {"rfc.paging.cursor"} | entitlements - {
        NO_ENTITLEMENT_TYPE
    }
    assert verdicts(result, Verdict.FAIL) == FAULTS | {NO_ENTITLEMENT_TYPE}
    assert verdicts(result, Verdict.PASS) == every - {"rfc.paging.cursor", *FAULTS}
    assert result.totals() == {
        "rfc": {"pass": 53, "fail": 4, "skip": 1, "error": 0},
        "okta-spec": {"pass": 12, "fail": 0, "skip": 0, "error": 0},
        "okta-entitlements": {"pass": 0, "fail": 1, "skip": 5, "error": 0},
    }
    assert result.leftovers == []

    by_id = {r.check.id: r for r in result.results}
    assert by_id["rfc.paging.cursor"].reason == (
        "ServiceProviderConfig does not advertise pagination.cursor: true"
    )
    failed = by_id[UNKNOWN_MEMBER]
    assert failed.reason.startswith("expected HTTP 400, got 201")
    assert by_id[NO_ENTITLEMENT_TYPE].reason == (
        "/ResourceTypes lists no resource type beside User and Group"
    )
    assert [(e.method, e.status) for e in failed.transcript][:1] == [("POST", 201)]
    assert by_id[STALE_MEMBER].reason.startswith("members are [")
    assert by_id[SEARCH_READ_AS_ID].reason == ("GET /Users/.search: expected HTTP 405, got 404")
    location = by_id[LOCATION_UNFILTERED].reason
    assert " and meta.location eq " in location and " found [], not [" in location
    # The PATCH checks passed on a peer that answers PATCH with 204, then were proven by GET.
    patched = [(e.method, e.status) for e in by_id["rfc.patch.add"].transcript]
    assert ("PATCH", 204) in patched
    assert patched[-1] == ("GET", 200)


if __name__ == "__main__":
    serve_peer(int(sys.argv[1]), sys.argv[2])
