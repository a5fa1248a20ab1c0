"""Reports of a run: a terminal summary, JSON, JUnit XML for CI, and one HTML file.

The HTML report is self-contained (inline CSS, no scripts, no external assets) so it can
be attached to a ticket or a CI run and opened anywhere. Each failure shows the rule it
breaks, quoted, next to the exact requests and responses that prove it.
"""

from __future__ import annotations

import html
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
        for result in results:
            case = ET.SubElement(
                element,
                "testcase",
                classname=suite,
                name=result.check.id,
                time=f"{result.duration_ms / 1000:.3f}",
            )
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


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:75rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.pass{color:#17702b}.fail,.error{color:#b00020}.skip{color:#8a6d00}
details{margin:.4rem 0;border:1px solid #ddd;border-radius:4px;padding:.4rem .8rem}
summary{cursor:pointer;font-weight:600}blockquote{border-left:4px solid #999;margin:.5rem 0;
padding:.2rem .8rem;background:#f6f6f6}pre{background:#f3f3f3;padding:.6rem;overflow-x:auto;
white-space:pre-wrap;word-break:break-all;font-size:.85rem}
"""


def html_report(run: RunResult) -> str:
    """One self-contained page: totals per suite, failures with rule and transcript first."""
    esc = html.escape
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>SCIM conformance: {esc(run.base_url)}</title><style>{_CSS}</style></head>",
        f"<body><h1>SCIM conformance report</h1><p>Server <code>{esc(run.base_url)}</code>, "
        f"run <code>{esc(run.run_id)}</code>, started {esc(run.started)}. "
        f"<strong class='{'fail' if run.failed else 'pass'}'>"
        f"{'FAILED' if run.failed else 'PASSED'}</strong></p>",
        "<h2>Totals</h2><table><tr><th>suite</th>"
        + "".join(f"<th>{v}</th>" for v in Verdict)
        + "</tr>",
    ]
    for suite, counts in run.totals().items():
        out.append(
            f"<tr><td>{esc(suite)}</td>"
            + "".join(f"<td class='{v}'>{counts[str(v)]}</td>" for v in Verdict)
            + "</tr>"
        )
    out.append("</table>")
    if run.leftovers:
        out.append("<p class='fail'>Could not remove: " + esc(", ".join(run.leftovers)) + "</p>")
    order = [Verdict.FAIL, Verdict.ERROR, Verdict.SKIP, Verdict.PASS]
    for verdict in order:
        results = [r for r in run.results if r.verdict is verdict]
        if not results:
            continue
        out.append(f"<h2 class='{verdict}'>{verdict} ({len(results)})</h2>")
        for result in results:
            check = result.check
            is_open = " open" if verdict in (Verdict.FAIL, Verdict.ERROR) else ""
            out.append(
                f"<details{is_open}><summary class='{verdict}'>{esc(check.id)}: "
                f"{esc(check.title)}</summary>"
            )
            out.append(
                f"<p><strong>{esc(check.source)}</strong></p>"
                f"<blockquote>{esc(check.rule)}</blockquote>"
            )
            if result.reason:
                out.append(
                    f"<p class='{verdict}'><strong>{verdict}:</strong></p>"
                    f"<pre>{esc(result.reason)}</pre>"
                )
            if result.transcript:
                out.append(
                    f"<p>Transcript ({len(result.transcript)} exchanges)</p>"
                    f"<pre>{esc(transcript_text(result))}</pre>"
                )
            out.append("</details>")
    out.append("</body></html>")
    return "\n".join(out)


def write(path: str | Path, text: str) -> None:
    Path(path).write_text(text, encoding="utf-8")
