"""Reports of a run: a terminal summary, JSON, and JUnit XML for CI.

The HTML page is ``conformance.html_report``. Every report keeps failures (a rule broken)
apart from errors (a check that could not reach its verdict).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from conformance.checks import CheckResult, Verdict
from conformance.http import Exchange
from conformance.runner import RunResult

_MARK = {Verdict.PASS: "PASS", Verdict.FAIL: "FAIL", Verdict.SKIP: "SKIP", Verdict.ERROR: "ERROR"}


def tally(counts: Mapping[str, int]) -> str:
    """Verdict counts as words: ``3 passed, 1 failed, 0 errors, 2 skipped``.

    Failures and errors stay apart: a failure is a broken rule, an error a check that could
    not reach its verdict (the server unreachable, a fixture refused, a timeout).
    """
    return (
        f"{counts.get('pass', 0)} passed, {counts.get('fail', 0)} failed, "
        f"{counts.get('error', 0)} errors, {counts.get('skip', 0)} skipped"
    )


def terminal(run: RunResult) -> str:
    """A summary for a person at a terminal: every non-pass with its reason, then totals."""
    lines = [f"scim-conformance against {run.base_url} (run {run.run_id})"]
    for result in run.results:
        if result.verdict is Verdict.PASS:
            continue
        reason = result.reason.splitlines()[0] if result.reason else ""
        lines.append(f"  {_MARK[result.verdict]:5} {result.check.id}: {reason}")
    for suite, counts in run.totals().items():
        lines.append(f"{suite}: {tally(counts)}")
    lines += run.profile_verdicts().values()
    if run.leftovers:
        lines.append("could not remove: " + ", ".join(run.leftovers))
    lines.append(f"{tally(run.counts())} in {run.duration_ms / 1000:.1f} s")
    return "\n".join(lines)


def to_json(run: RunResult) -> str:
    return json.dumps(run.to_dict(), indent=2)


def _exchange_text(exchange: Exchange) -> str:
    """One exchange as HTTP-like text, for JUnit output and the HTML report."""
    parts = [f"{exchange.method} {exchange.url}"]
    parts += [f"{k}: {v}" for k, v in exchange.request_headers.items()]
    if exchange.request_body is not None:
        parts += ["", exchange.request_body]
    parts.append("")
    if exchange.error:
        parts.append(f"<< no response: {exchange.error}")
    else:
        parts.append(f"<< HTTP {exchange.status} ({exchange.elapsed_ms} ms)")
        parts += [f"{k}: {v}" for k, v in exchange.response_headers.items()]
        if exchange.response_body:
            parts += ["", exchange.response_body]
    return "\n".join(parts)


def transcript_text(result: CheckResult) -> str:
    return "\n\n".join(_exchange_text(e) for e in result.transcript)


def junit(run: RunResult) -> str:
    """JUnit XML: one testsuite per suite, one testcase per check (errors as <error>)."""
    counts = run.counts()
    root = ET.Element(
        "testsuites",
        name="scim-conformance",
        tests=str(len(run.results)),
        failures=str(counts["fail"]),
        errors=str(counts["error"]),
        skipped=str(counts["skip"]),
        time=f"{run.duration_ms / 1000:.3f}",
    )
    by_suite: dict[str, list[CheckResult]] = {}
    for result in run.results:
        by_suite.setdefault(result.check.suite, []).append(result)
    verdicts = run.profile_verdicts()
    for suite, results in by_suite.items():
        element = ET.SubElement(
            root,
            "testsuite",
            name=suite,
            tests=str(len(results)),
            failures=str(sum(r.verdict is Verdict.FAIL for r in results)),
            errors=str(sum(r.verdict is Verdict.ERROR for r in results)),
            skipped=str(sum(r.verdict is Verdict.SKIP for r in results)),
            time=f"{sum(r.duration_ms for r in results) / 1000:.3f}",
        )
        profiles = dict.fromkeys(p for r in results for p in r.check.profiles)
        if profiles:
            _properties(element, {profile: verdicts[profile] for profile in profiles})
        for result in results:
            case = ET.SubElement(
                element,
                "testcase",
                classname=suite,
                name=result.check.id,
                time=f"{result.duration_ms / 1000:.3f}",
            )
            _properties(case, {"source": result.check.source})
            if result.verdict is Verdict.SKIP:
                ET.SubElement(case, "skipped", message=result.reason)
            elif result.verdict in (Verdict.FAIL, Verdict.ERROR):
                tag = "failure" if result.verdict is Verdict.FAIL else "error"
                detail = ET.SubElement(
                    case, tag, message=result.reason.splitlines()[0] if result.reason else ""
                )
                detail.text = (
                    f"{result.check.source}: {result.check.rule}\n\n{result.reason}"
                    f"\n\n{transcript_text(result)}"
                )
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _properties(parent: ET.Element, values: Mapping[str, str]) -> None:
    """JUnit ``<properties>``: a testsuite's profile verdicts, a testcase's source."""
    holder = ET.SubElement(parent, "properties")
    for name, value in values.items():
        ET.SubElement(holder, "property", name=name, value=value)


def write(path: str | Path, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")
