"""The wrk driver of the benchmark: its Lua script sends what the shape says, authenticated,
a fresh userName per POST, and its summary is read back with every failure counted. A real
wrk against a real server process on the suite's store; nothing timed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from bench import workload, wrk
from bench.targets import Server, http

pytestmark = pytest.mark.skipif(
    not wrk.installed(), reason="wrk is not installed (make bench installs it)"
)


@pytest.fixture
def served(mongodb_uri: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A tenant's SCIM base URL and token on a server of its own."""
    server = Server(mongodb_uri, f"scimtest_{uuid.uuid4().hex[:12]}", tmp_path / "server.log")
    try:
        server.start()
        yield server.create_tenant("acme")
    finally:
        server.stop()


def _measure(shape: wrk.Shape, base_url: str, token: str, work: Path) -> dict[str, object]:
    return wrk.measure(shape, base_url, token, work, wrk.Load(connections=4, seconds=1, run="t"))


def test_each_post_creates_a_user_of_its_own(served: tuple[str, str], tmp_path: Path) -> None:
    base_url, token = served
    post = wrk.Shape("post", "POST", "/Users", body=workload.user_body(f"w{wrk.UNIQUE}"))
    result = _measure(post, base_url, token, tmp_path)
    assert result["errors"] == 0, result  # no 409: every userName was fresh
    query = quote('userName sw "w"')
    status, body = http("GET", f"{base_url}/Users?count=0&filter={query}", token)
    assert status == 200
    # wrk may stop with requests in flight: those land, uncounted.
    assert body["totalResults"] >= result["ok"] > 0


def test_patches_of_one_user_and_lookups_of_many_all_succeed(
    served: tuple[str, str], tmp_path: Path
) -> None:
    base_url, token = served
    ids, names = [], []
    for n in range(3):
        status, user = http("POST", f"{base_url}/Users", token, workload.user_body(f"u{n}"))
        assert status == 201
        ids.append(user["id"])
        names.append(user["userName"])
    same = wrk.Shape(
        "same", "PATCH", f"/Users/{wrk.KEY}", tuple(ids), workload.rename(wrk.UNIQUE), "first"
    )
    lookup = wrk.Shape(
        "lookup", "GET", "/Users?filter=" + quote(f'userName eq "{wrk.KEY}"'), tuple(names)
    )
    for shape in (same, lookup):
        result = _measure(shape, base_url, token, tmp_path)
        assert result["errors"] == 0 and result["ok"] > 0, (shape.name, result)
    status, user = http("GET", f"{base_url}/Users/{ids[0]}", token)
    assert user["displayName"].startswith("Renamed t")  # the text __N__ became
    status, other = http("GET", f"{base_url}/Users/{ids[1]}", token)
    assert not other["displayName"].startswith("Renamed")  # every PATCH went to the first


def test_refused_requests_are_counted_as_errors(served: tuple[str, str], tmp_path: Path) -> None:
    base_url, _token = served
    get = wrk.Shape("get", "GET", f"/Users/{wrk.KEY}", ("nobody",))
    result = _measure(get, base_url, "not-a-token", tmp_path)
    assert result["ok"] == 0 and result["errors"] > 0, result
