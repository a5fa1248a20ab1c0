"""What ``scim-conformance`` tells the person who runs it, against our real server.

A run that cannot start (a refused token, a base URL that is no SCIM server) says so in one
line and a distinct exit status instead of 36 identical failures; errors (checks that could
not reach a verdict) are counted apart from failures in every report; a long run shows its
progress without smearing carriage returns into a log file; and the HTML report is read in
a real Chromium.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import pty
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, expect

from conformance import html_report, reports
from conformance.checks import Verdict
from conformance.cli import EXIT_NOT_SCIM, EXIT_TOKEN_REFUSED, main
from conformance.runner import NotScimServer, RunResult, run
from tests.support.browser import Screenshots, chromium
from tests.support.proxy import Forward, Req, Resp, answer, is_, mutate, set_status, start_proxy
from tests.support.scim import Scim

ROOT = Path(__file__).resolve().parents[1]
HTML = b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>"


@pytest.fixture
def real_base(client: TestClient[Any, Any], scim: Scim) -> str:
    return str(client.make_url("")).rstrip("/") + scim.base


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``scim-conformance argv`` in this process: exit status, stdout, stderr."""
    status = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# --- a run that cannot start --------------------------------------------------------------


async def test_a_wrong_token_stops_before_any_check_with_one_message(
    real_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = await cli(capsys, "--base-url", real_base, "--token", "not-the-token")
    assert status == EXIT_TOKEN_REFUSED == 3
    assert out == ""
    assert err.splitlines() == [
        f"scim-conformance: {real_base}/ServiceProviderConfig answered HTTP 401: the server "
        f"refuses the token. Check the token, and the tenant in the base URL ({real_base})."
    ]


async def test_a_token_of_another_tenant_is_refused_the_same_way(
    client: TestClient[Any, Any], scim: Scim, other_scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    other_base = str(client.make_url("")).rstrip("/") + other_scim.base
    status, out, err = await cli(capsys, "--base-url", other_base, "--token", scim.token)
    assert (status, out) == (EXIT_TOKEN_REFUSED, "")
    assert "answered HTTP 401" in err and "the tenant in the base URL" in err


async def test_a_wrong_second_token_stops_a_tenancy_run(
    real_base: str, scim: Scim, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = await cli(
        capsys,
        *("--base-url", real_base, "--token", scim.token, "--suite", "tenancy"),
        *("--second-base-url", real_base, "--second-token", "wrong"),
    )
    assert (status, out) == (EXIT_TOKEN_REFUSED, "")
    assert f"{real_base}/ServiceProviderConfig answered HTTP 401" in err


async def test_a_public_service_provider_config_does_not_hide_a_refused_token(
    aiohttp_server: Any, real_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server whose discovery is public answers the SPC to any token: only /Users tells."""
    public = await start_proxy(
        aiohttp_server,
        real_base,
        answer(is_("GET", "/ServiceProviderConfig"), 200, {"schemas": [], "patch": {}}),
    )
    status, _, err = await cli(capsys, "--base-url", public, "--token", "wrong")
    assert status == EXIT_TOKEN_REFUSED
    assert f"{public}/Users?count=1 answered HTTP 401" in err


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("root", "/ServiceProviderConfig answered HTTP 404"),
        ("html", "/ServiceProviderConfig answered HTTP 200 (text/html): no SCIM server there"),
        ("closed", "cannot reach http://127.0.0.1:9/scim/v2/acme: ClientConnectorError"),
    ],
)
async def test_a_base_url_that_is_not_a_scim_server_gets_one_line(
    aiohttp_server: Any,
    client: TestClient[Any, Any],
    real_base: str,
    scim: Scim,
    capsys: pytest.CaptureFixture[str],
    where: str,
    said: str,
) -> None:
    base = {
        "root": str(client.make_url("")).rstrip("/"),
        "html": await start_proxy(
            aiohttp_server, real_base, answer(lambda r: True, 200, HTML, "text/html")
        ),
        "closed": "http://127.0.0.1:9/scim/v2/acme",
    }[where]
    status, out, err = await cli(capsys, "--base-url", base, "--token", scim.token)
    assert (status, out) == (EXIT_NOT_SCIM, "")
    assert len(err.splitlines()) == 1 and said in err and "check the base url" in err.lower()
    assert "Traceback" not in err


async def test_an_unreachable_server_stops_the_run_before_any_check() -> None:
    with pytest.raises(NotScimServer, match=r"cannot reach http://127\.0\.0\.1:9/scim"):
        await run("http://127.0.0.1:9/scim", "t", ["okta-spec"], timeout=5)


def test_list_keeps_the_suites_in_their_order_whatever_module_was_imported_first() -> None:
    # Importing a suite's module registers it: the listing must not follow import order.
    code = "import conformance.suites.saml; from conformance.cli import main; main(['--list'])"
    listed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    suites = [line for line in listed.splitlines() if not line.startswith(" ")]
    assert suites == [
        "rfc",
        "okta-spec",
        "okta-entitlements",
        "flows",
        "tenancy",
        "large",
        "entra-validator",
        "interop-draft",
        "ipsie",
        "saml",
        "wsfed",
        "oidc",
        "events",
        "cross-instance",
    ]


def test_list_needs_no_base_url_as_the_readme_says(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("rfc\n") and "  rfc.crud.create  " in out


# --- errors apart from failures -----------------------------------------------------------


@pytest.fixture
async def every_verdict(aiohttp_server: Any, real_base: str, scim: Scim) -> RunResult:
    """Each verdict: rfc.crud.create fails (201 answered as 200), a group fixture answered
    with an HTML 500 leaves rfc.crud.group-members in error, rfc.etag.header skips (etag not
    advertised), and rfc.errors.not-found and rfc.discovery.schemas (a long body) pass."""

    async def broken(req: Req, forward: Forward) -> Resp:
        if req.method == "POST" and req.path == "/Groups":
            return Resp(500, {"Content-Type": "text/html"}, HTML)
        resp = await forward(req)
        if req.method == "POST" and req.path == "/Users":
            set_status(200)(req, resp)
        if req.path == "/ServiceProviderConfig":
            mutate(lambda body: body.update(etag={"supported": False}))(req, resp)
        return resp

    proxy = await start_proxy(aiohttp_server, real_base, broken)
    return await run(
        proxy,
        scim.token,
        ["rfc"],
        only=[
            "rfc.discovery.schemas",
            "rfc.crud.create",
            "rfc.crud.group-members",
            "rfc.errors.not-found",
            "rfc.etag.header",
        ],
    )


def test_the_terminal_summary_counts_errors_apart_from_failures(every_verdict: RunResult) -> None:
    lines = reports.terminal(every_verdict).splitlines()
    assert "rfc: 2 passed, 1 failed, 1 errors, 1 skipped" in lines
    assert lines[-1].startswith("2 passed, 1 failed, 1 errors, 1 skipped in ")
    assert any(
        line.startswith("  ERROR rfc.crud.group-members: could not create") for line in lines
    )


def test_the_json_report_counts_errors_apart_from_failures(every_verdict: RunResult) -> None:
    data = json.loads(reports.to_json(every_verdict))
    assert data["counts"] == {"pass": 2, "fail": 1, "skip": 1, "error": 1}
    assert data["totals"] == {"rfc": data["counts"]}
    assert data["duration_ms"] >= sum(r["duration_ms"] for r in data["results"])
    assert data["finished"] >= data["started"]


def test_junit_has_error_and_failure_elements_and_counts_on_both_levels(
    every_verdict: RunResult,
) -> None:
    root = ET.fromstring(reports.junit(every_verdict))
    suite = root.find("testsuite")
    assert suite is not None
    for level in (root, suite):
        counts = [level.get(k) for k in ("tests", "failures", "errors", "skipped")]
        assert counts == ["5", "1", "1", "1"], level.tag
    assert suite.find("testcase[@name='rfc.crud.create']/failure") is not None
    error = suite.find("testcase[@name='rfc.crud.group-members']/error")
    assert error is not None and error.get("message", "").startswith("could not create")
    assert suite.find("testcase[@name='rfc.crud.group-members']/failure") is None


async def test_a_setup_step_refused_in_tenant_b_is_an_error_not_a_failure(
    aiohttp_server: Any, client: TestClient[Any, Any], scim: Scim, other_scim: Scim
) -> None:
    """tenancy.cross-tenant-member needs an empty group in tenant B before its assertion; when
    B cannot make one, the check could not run: an error, as a refused fixture in tenant A is."""

    async def no_empty_groups(req: Req, forward: Forward) -> Resp:
        if req.method == "POST" and req.path == "/Groups" and "members" not in req.json():
            return Resp(500, {"Content-Type": "text/html"}, HTML)
        return await forward(req)

    b_base = str(client.make_url("")).rstrip("/") + other_scim.base
    b_proxy = await start_proxy(aiohttp_server, b_base, no_empty_groups)
    result = await run(
        str(client.make_url("")).rstrip("/") + scim.base,
        scim.token,
        ["tenancy"],
        only=["tenancy.cross-tenant-member"],
        options={"second_base_url": b_proxy, "second_token": other_scim.token},
    )
    [outcome] = result.results
    assert (outcome.verdict, outcome.reason) == (
        Verdict.ERROR,
        "tenant B: could not create an empty group (HTTP 500)",
    )


async def test_a_request_without_an_answer_is_an_error_with_a_one_line_reason(
    aiohttp_server: Any, real_base: str, scim: Scim
) -> None:
    """A check whose request gets no answer in --timeout could not conclude: an error, whose
    reason says so in one line (a timeout's own message is empty)."""
    answered = asyncio.Event()

    async def stalls_on_unknown_ids(req: Req, forward: Forward) -> Resp:
        if req.method == "GET" and req.path.startswith("/Users/"):
            await answered.wait()  # released when the test ends: never within the timeout
        return await forward(req)

    proxy = await start_proxy(aiohttp_server, real_base, stalls_on_unknown_ids)
    try:
        result = await run(proxy, scim.token, ["rfc"], only=["rfc.errors.not-found"], timeout=1)
    finally:
        answered.set()
    [outcome] = result.results
    assert outcome.verdict is Verdict.ERROR
    assert outcome.reason == "no response: TimeoutError: no answer within 1 s", outcome.reason


# --- progress -----------------------------------------------------------------------------


def _cli_command(base: str, token: str) -> list[str]:
    return [sys.executable, "-m", "conformance.cli", "--base-url", base, "--token", token]


async def _finish(process: asyncio.subprocess.Process) -> int:
    return await asyncio.wait_for(process.wait(), 120)


async def test_progress_into_a_file_is_one_plain_line_per_suite(
    real_base: str, scim: Scim, tmp_path: Path
) -> None:
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        process = await asyncio.create_subprocess_exec(
            *_cli_command(real_base, scim.token),
            *("--suite", "okta-spec", "--suite", "rfc", "--check", "okta.01-users-endpoint"),
            *("--check", "okta.12-status-404", "--check", "rfc.crud.get"),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
        assert await _finish(process) == 0
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines] == ["okta-spec", "rfc"]
    assert lines[0].startswith("okta-spec: 2 passed, 0 failed, 0 errors, 0 skipped (")
    assert lines[1].startswith("rfc: 1 passed, 0 failed, 0 errors, 0 skipped (")


async def test_progress_on_a_terminal_is_a_live_bar_naming_the_running_check(
    real_base: str, scim: Scim
) -> None:
    controller, terminal = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        *_cli_command(real_base, scim.token),
        *("--suite", "okta-spec"),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color", "COLUMNS": "160"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=terminal,
    )
    os.close(terminal)

    def read_all() -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the child closed its end
                return b"".join(chunks)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    output, status = await asyncio.gather(asyncio.to_thread(read_all), _finish(process))
    os.close(controller)
    assert status == 0
    text = output.decode(errors="replace")
    assert "\r" in text or "\x1b[" in text  # redrawn in place
    assert re.search(r"okta\.\d\d-[a-z-]+", text)  # the running check, by id
    assert "/12" in text  # how far, of how many


# --- the HTML report, in a real browser ---------------------------------------------------


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A page in Debian's Chromium, as wide as a laptop screen."""
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        yield await context.new_page()


def test_the_html_report_is_one_offline_file_with_readable_bodies(every_verdict: RunResult) -> None:
    page = html_report.render(every_verdict)
    assert "<link" not in page and "src=" not in page and "@import" not in page
    schemas = next(r for r in every_verdict.results if r.check.id == "rfc.discovery.schemas")
    body = schemas.transcript[0].response_body
    assert len(body) > html_report.BODY_SHOWN
    shown = html_report.pretty(body)[: html_report.BODY_SHOWN]
    assert "\n" in shown and html.escape(shown, quote=False) in page  # laid out, then cut
    assert f"… {len(html_report.pretty(body)) - html_report.BODY_SHOWN:,} more characters" in page
    for verdict in ("pass", "fail", "error", "skip"):
        assert f"data-verdict='{verdict}'" in page


def schemas_twice(run: RunResult) -> RunResult:
    """The run's rfc.discovery.schemas result, and the same again under another id: one large
    body seen twice, as a directory listed before and after a step is."""
    schemas = next(r for r in run.results if r.check.id == "rfc.discovery.schemas")
    again = replace(schemas, check=replace(schemas.check, id="rfc.discovery.schemas-again"))
    return replace(run, results=[schemas, again])


def test_a_large_body_seen_twice_is_shown_once_and_linked(every_verdict: RunResult) -> None:
    twice = schemas_twice(every_verdict)
    schemas = twice.results[0]
    page = html_report.render(twice)
    shown = html_report.pretty(schemas.transcript[0].response_body)[: html_report.BODY_SHOWN]
    assert page.count(html.escape(shown, quote=False)) == 1
    linked = r"response body: the same [\d.]+ KB as <a href='#body-1'>shown in rfc\.discovery\."
    assert re.search(linked, page)
    single = html_report.render(replace(every_verdict, results=[schemas]))
    assert len(page) - len(single) < 2_000


async def test_the_html_report_filters_searches_and_expands_in_chromium(
    every_verdict: RunResult, page: Page, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    reports.write(report, html_report.render(every_verdict))
    shots = Screenshots(page, request.node.name)
    await page.goto(report.as_uri())
    rows = page.locator("details.check")
    visible = page.locator("details.check:visible")
    await expect(page.locator("#shown")).to_have_text("showing 5 of 5 checks")
    await expect(page.locator("h1 .verdict")).to_have_text("failed")
    await shots.take("opened")

    await page.get_by_label("passed").uncheck()
    await expect(visible).to_have_count(3)
    await expect(page.locator("#check-rfc\\.errors\\.not-found")).to_be_hidden()
    await expect(page.locator("#shown")).to_have_text("showing 3 of 5 checks")
    await page.locator("button.card.error").click()
    await expect(visible).to_have_count(1)
    await expect(page.locator("#check-rfc\\.crud\\.group-members")).to_be_visible()
    await shots.take("errors-only")

    await page.locator("button.card.total").click()
    await page.get_by_placeholder("search by check id").fill("DISCOVERY")
    await expect(visible).to_have_count(1)
    schemas = page.locator("#check-rfc\\.discovery\\.schemas")
    await expect(schemas).to_be_visible()
    body = schemas.locator("details.body").first
    await schemas.locator("summary").first.click()
    await schemas.locator("details.ex summary").first.click()
    await expect(body.locator("pre")).to_be_hidden()  # long: collapsed at first
    await body.locator("summary").click()
    await expect(body.locator("pre")).to_be_visible()
    await expect(body.locator("pre")).to_contain_text('"schemas": [')
    await shots.take("body-expanded")
    assert await rows.count() == 5


async def test_a_link_to_a_body_shown_elsewhere_opens_it_in_chromium(
    every_verdict: RunResult, page: Page, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    reports.write(report, html_report.render(schemas_twice(every_verdict)))
    shots = Screenshots(page, request.node.name)
    await page.goto(report.as_uri())
    first = page.locator("#check-rfc\\.discovery\\.schemas")
    again = page.locator("#check-rfc\\.discovery\\.schemas-again")
    await expect(first.locator("#body-1 pre")).to_be_hidden()
    await again.locator("summary").first.click()
    await again.locator("details.ex summary").first.click()
    await again.get_by_role("link", name="shown in rfc.discovery.schemas").click()
    await expect(first.locator("#body-1 pre")).to_be_visible()
    await expect(first.locator("#body-1 pre")).to_contain_text('"totalResults"')
    await shots.take("linked-body")
