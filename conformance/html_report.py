"""The HTML report: one self-contained page a QA engineer can work through.

One file, opened from disk, attached to a ticket or a CI run: inline CSS and a small inline
script, no external assets. The summary header says how the run went and how long it took;
the checks follow, failures first, each with the rule it enforces (quoted), the reason, and
the exact requests and responses behind the verdict. The script only adds conveniences:
filtering by verdict, searching by check id, relative times, opening what a link points into.
Without it every check is still there.

JSON bodies are laid out for reading; a long one starts collapsed, one over its bound
(``BODY_SHOWN``, more in a failed check) is cut with a note (the JSON report keeps it), and a
large body seen before (``/Schemas``, a directory listed twice) is shown once and linked from
the others. Below the run's base URL, exchanges show the decoded path only.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from conformance.checks import CheckResult, Verdict
from conformance.http import Exchange
from conformance.runner import RunResult

BODY_SHOWN = 500
"""Characters of a pretty-printed body shown in a passed or skipped check; the rest is left
to the JSON report. A failure's evidence is what a reader studies: it gets ``BODY_SHOWN_BAD``."""
BODY_SHOWN_BAD = 5_000
BODY_OPEN_LINES = 15
"""A body of more lines than this starts collapsed; in a failed or errored check, where the
bodies are the evidence, ``BODY_OPEN_LINES_BAD``."""
BODY_OPEN_LINES_BAD = 60
BODY_SHARED = 400
"""A body at least this long, seen before, is linked to rather than repeated."""
LINE_WIDTH = 90
"""JSON arrays and objects that fit in this many characters stay on one line."""

ORDER = (Verdict.FAIL, Verdict.ERROR, Verdict.SKIP, Verdict.PASS)
LABEL = {
    Verdict.PASS: "passed",
    Verdict.FAIL: "failed",
    Verdict.ERROR: "errors",
    Verdict.SKIP: "skipped",
}

_CSS = """
:root{--pass:#1a7f37;--fail:#cf222e;--error:#bc4c00;--skip:#6e7781;--line:#d0d7de;
--soft:#f6f8fa;--ink:#1f2328;--muted:#59636e}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);margin:0;
background:#fff}
main,header>div{max-width:78rem;margin:0 auto;padding:0 1.5rem}
header{background:var(--soft);border-bottom:1px solid var(--line);padding:1.2rem 0 1rem}
h1{font-size:1.5rem;margin:0 0 .4rem;display:flex;gap:.8rem;align-items:center}
h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.4rem 0 .8rem;
color:var(--muted)}.meta dd{margin:0;color:var(--ink)}
.verdict{display:inline-block;min-width:4.6rem;text-align:center;border-radius:2rem;
padding:.05rem .6rem;font-size:.75rem;font-weight:700;text-transform:uppercase;color:#fff;
letter-spacing:.03em}
.verdict.pass{background:var(--pass)}.verdict.fail{background:var(--fail)}
.verdict.error{background:var(--error)}.verdict.skip{background:var(--skip)}
.cards{display:flex;gap:.7rem;flex-wrap:wrap}
.card{border:1px solid var(--line);border-left:6px solid var(--c);border-radius:6px;
background:#fff;padding:.4rem .9rem;min-width:8rem;font:inherit;text-align:left;color:inherit}
.card b{display:block;font-size:1.5rem;line-height:1.2;color:var(--c)}
button.card{cursor:pointer}button.card:hover{background:var(--soft)}
.card.pass{--c:var(--pass)}.card.fail{--c:var(--fail)}.card.error{--c:var(--error)}
.card.skip{--c:var(--skip)}.card.total{--c:var(--ink)}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
td,th{border-bottom:1px solid var(--line);padding:.3rem .9rem;text-align:right}
td:first-child,th:first-child{text-align:left}th{font-weight:600;color:var(--muted)}
td.pass{color:var(--pass)}td.fail{color:var(--fail)}td.error{color:var(--error)}
td.skip{color:var(--skip)}td.zero{color:#aab}
.filters{position:sticky;top:0;z-index:1;background:#fff;border-bottom:1px solid var(--line);
padding:.6rem 0;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
.filters label{cursor:pointer;user-select:none}.filters input[type=search]{font:inherit;
padding:.25rem .6rem;border:1px solid var(--line);border-radius:6px;min-width:18rem}
#shown{color:var(--muted);margin-left:auto}
details.check{border:1px solid var(--line);border-left:5px solid var(--c);border-radius:6px;
margin:.45rem 0;background:#fff}
details.check.pass{--c:var(--pass)}details.check.fail{--c:var(--fail)}
details.check.error{--c:var(--error)}details.check.skip{--c:var(--skip)}
details.check>summary{cursor:pointer;padding:.45rem .8rem;display:flex;gap:.8rem;
align-items:baseline}
details.check>summary .id{font-weight:600}details.check>summary .title{color:var(--muted);
flex:1}details.check>summary .ms{color:var(--muted);font-variant-numeric:tabular-nums}
details.check>div{padding:.2rem 1rem .8rem;border-top:1px solid var(--line)}
blockquote{border-left:4px solid var(--line);margin:.5rem 0;padding:.2rem .9rem;
background:var(--soft);color:var(--muted)}
.reason{border-left:4px solid var(--c);background:var(--soft);padding:.5rem .8rem;
white-space:pre-wrap;word-break:break-word;margin:.6rem 0}
details.ex{margin:.35rem 0;border:1px solid var(--line);border-radius:6px}
details.ex>summary{cursor:pointer;padding:.3rem .7rem;background:var(--soft);
word-break:break-all;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
font-size:.85em}
details.ex>summary i{color:var(--muted);font-style:normal}
details.ex>div{padding:.3rem .8rem}
b.ok{color:var(--pass)}b.bad{color:var(--fail)}
.hd.response{border-top:1px dashed var(--line);padding-top:.3rem}
.card[aria-pressed=true]{box-shadow:0 0 0 2px var(--c)}
.hd{color:var(--muted);margin:.3rem 0;white-space:pre-wrap;word-break:break-all;
font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em}
details.body>summary{cursor:pointer;color:var(--muted);font-size:.9em}
pre{background:var(--soft);border-radius:6px;padding:.6rem .8rem;overflow-x:auto;margin:.3rem 0;
white-space:pre-wrap;word-break:break-word}
.leftovers{--c:var(--fail)}
.note,.same{color:var(--muted);font-style:italic;font-size:.9em}
details{scroll-margin-top:4rem}[hidden]{display:none!important}
"""

_SCRIPT = """
(() => {
  const rows = [...document.querySelectorAll('details.check')];
  const boxes = [...document.querySelectorAll('#filters input[type=checkbox]')];
  const search = document.getElementById('search');
  const shown = document.getElementById('shown');
  const cards = [...document.querySelectorAll('button.card[data-verdict]')];
  const apply = () => {
    const on = new Set(boxes.filter(b => b.checked).map(b => b.value));
    cards.forEach(card => card.setAttribute('aria-pressed',
      String(card.dataset.verdict === 'all' ? on.size === boxes.length
        : on.size === 1 && on.has(card.dataset.verdict))));
    const text = search.value.trim().toLowerCase();
    let count = 0;
    for (const row of rows) {
      row.hidden = !(on.has(row.dataset.verdict) && row.dataset.id.includes(text));
      if (!row.hidden) count++;
    }
    shown.textContent = `showing ${count} of ${rows.length} checks`;
  };
  boxes.forEach(b => b.addEventListener('change', apply));
  search.addEventListener('input', apply);
  cards.forEach(card =>
    card.addEventListener('click', () => {
      const wanted = card.dataset.verdict;
      boxes.forEach(b => { b.checked = wanted === 'all' || b.value === wanted; });
      apply();
    }));
  const reveal = () => {
    const target = location.hash && document.getElementById(location.hash.slice(1));
    for (let node = target; node; node = node.parentElement) {
      if (node.tagName === 'DETAILS') node.open = true;
      if (node.hidden) node.hidden = false;
    }
    if (target) target.scrollIntoView();
  };
  window.addEventListener('hashchange', reveal);
  const ago = ms => {
    const s = Math.round(ms / 1000);
    if (s < 90) return `${s} s ago`;
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 129600) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
  };
  document.querySelectorAll('time[data-ago]').forEach(t => {
    t.nextElementSibling.textContent = `(${ago(Date.now() - Date.parse(t.dateTime))})`;
  });
  document.getElementById('filters').hidden = false;
  apply();
  reveal();
})();
"""


def _text(text: str) -> str:
    """Text as element content: ``<``, ``>`` and ``&`` escaped, quotes (all over JSON) kept."""
    return html.escape(text, quote=False)


def _when(iso: str) -> str:
    """An ISO 8601 instant as people read it: ``2026-12-01 23:55:04 UTC``."""
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def seconds(ms: float) -> str:
    """A duration as people read it: ``420 ms``, ``12.3 s``, ``4 min 05 s``."""
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, rest = divmod(round(ms / 1000), 60)
    return f"{minutes} min {rest:02d} s"


def _size(characters: int) -> str:
    return f"{characters / 1000:.1f} KB" if characters >= 1000 else f"{characters} characters"


def pretty(body: str) -> str:
    """A JSON body laid out for reading (``layout``); anything else as it came."""
    try:
        return layout(json.loads(body))
    except ValueError:
        return body


def layout(value: Any, depth: int = 0) -> str:
    """JSON indented by two spaces, except that an array or object short enough to fit on
    one line (``"name": {"givenName": "Ann", "familyName": "Lee"}``) stays on it: a SCIM
    resource reads at a glance, in about half the lines of a fully indented one."""
    flat = json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict | list) or not value or len(flat) + 2 * depth <= LINE_WIDTH:
        return flat
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict):
        items = [
            f"{inner}{json.dumps(key, ensure_ascii=False)}: {layout(item, depth + 1)}"
            for key, item in value.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    items = [f"{inner}{layout(item, depth + 1)}" for item in value]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"


class _Page:
    """The page being written, and the bodies it already shows (for links to them)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        """URLs under it are shown by their path below it (the header names it once)."""
        self.out: list[str] = []
        self.bodies: dict[str, tuple[str, str, int]] = {}
        """Pretty body -> (its element id, the check it is shown in, characters shown)."""
        self.sent: dict[str, str] | None = None
        """The request headers of the check's previous exchange (shown once, not each time)."""

    def add(self, *parts: str) -> None:
        self.out.extend(parts)

    def body(self, label: str, raw: str, check_id: str, bad: bool) -> None:
        """One body: pretty, collapsed when long, cut past ``BODY_SHOWN``, linked when seen."""
        text = pretty(raw)
        limit = BODY_SHOWN_BAD if bad else BODY_SHOWN
        seen = self.bodies.get(text)
        if seen and seen[2] >= limit:
            anchor, where, _ = seen
            self.add(
                f"<p class='same'>{label}: the same {_size(len(text))} as "
                f"<a href='#{anchor}'>shown in {html.escape(where)}</a></p>"
            )
            return
        anchor = ""
        if len(text) >= BODY_SHARED:
            anchor = f"body-{len(self.bodies) + 1}"
            self.bodies[text] = (anchor, check_id, limit)
        lines = text.count("\n") + 1
        attributes = (f" id='{anchor}'" if anchor else "") + (
            " open" if lines <= (BODY_OPEN_LINES_BAD if bad else BODY_OPEN_LINES) else ""
        )
        self.add(
            f"<details class=body{attributes}><summary>{label} ({lines} "
            f"line{'s' if lines > 1 else ''}, {_size(len(text))})</summary>"
            f"<pre>{_text(text[:limit])}</pre>"
        )
        if len(text) > limit:
            self.add(
                f"<p class=note>… {len(text) - limit:,} more characters in the JSON report</p>"
            )
        self.add("</details>")

    def exchange(self, exchange: Exchange, check_id: str, bad: bool) -> None:
        """One request and its response; a failing check's open, with more of each body."""
        esc = html.escape
        if exchange.error:
            outcome = f"<b class=bad>no response</b>: {esc(exchange.error)}"
        else:
            ok = "ok" if exchange.status is not None and exchange.status < 400 else "bad"
            outcome = f"<b class={ok}>{exchange.status}</b> <i>{seconds(exchange.elapsed_ms)}</i>"
        # Below the base URL, and decoded: a filter reads as the filter it is.
        url = unquote(exchange.url.removeprefix(self.base_url) if self.base_url else exchange.url)
        self.add(
            f"<details class=ex{' open' if bad else ''}><summary>"
            f"{esc(exchange.method)} {esc(url)} → {outcome}</summary><div>",
            _headers(exchange.request_headers)
            if exchange.request_headers != self.sent
            else "<div class=hd>(request headers as above)</div>",
        )
        self.sent = exchange.request_headers
        if exchange.request_body is not None:
            self.body("request body", exchange.request_body, check_id, bad)
        if not exchange.error:
            self.add(_headers(exchange.response_headers, "hd response"))
            if exchange.response_body:
                self.body("response body", exchange.response_body, check_id, bad)
        self.add("</div></details>")

    def check(self, result: CheckResult) -> None:
        esc = html.escape
        check, verdict = result.check, result.verdict
        bad = verdict in (Verdict.FAIL, Verdict.ERROR)
        self.add(
            f"<details class='check {verdict}' id='check-{esc(check.id)}' "
            f"data-verdict='{verdict}' data-id='{esc(check.id.lower())}'{' open' if bad else ''}>"
            f"<summary><span class='verdict {verdict}'>{verdict}</span>"
            f"<span class='id mono'>{esc(check.id)}</span>"
            f"<span class='title'>{esc(check.title)}</span>"
            f"<span class='ms'>{seconds(result.duration_ms)}</span></summary><div>"
            f"<p><strong>{esc(check.source)}</strong> ({esc(check.suite)} suite"
            f"{''.join(f'; {esc(p)}' for p in check.profiles)})</p>"
            f"<blockquote>{esc(check.rule)}</blockquote>"
        )
        if result.reason:
            self.add(f"<div class='reason mono'>{_text(result.reason)}</div>")
        if result.transcript:
            self.sent = None
            count = len(result.transcript)
            self.add(f"<p>{count} exchange{'s' if count > 1 else ''}:</p>")
            for exchange in result.transcript:
                self.exchange(exchange, check.id, bad)
        self.add("</div></details>")


def _headers(headers: dict[str, str], kind: str = "hd") -> str:
    return (
        f"<div class='{kind}'>"
        + _text("\n".join(f"{k}: {v}" for k, v in headers.items()))
        + "</div>"
    )


def _summary(run: RunResult) -> str:
    """The header: verdict, server, when and how long, and the counts as filter buttons."""
    esc = html.escape
    counts = run.counts()
    outcome = "fail" if run.failed else "pass"
    checks_ms = sum(r.duration_ms for r in run.results)
    finished = (
        f"<dt>Finished</dt><dd><time datetime='{esc(run.finished)}' data-ago>"
        f"{esc(_when(run.finished))}</time> <span class='ago'></span></dd>"
        if run.finished
        else ""
    )
    cards = "".join(
        f"<button type='button' class='card {v}' data-verdict='{v}'>"
        f"<b>{counts[str(v)]}</b>{LABEL[v]}</button>"
        for v in (Verdict.PASS, Verdict.FAIL, Verdict.ERROR, Verdict.SKIP)
    )
    return (
        "<header><div>"
        f"<h1>SCIM conformance report <span class='verdict {outcome}'>"
        f"{'failed' if run.failed else 'passed'}</span></h1>"
        "<dl class='meta'>"
        f"<dt>Server</dt><dd class='mono'>{esc(run.base_url)}</dd>"
        f"<dt>Run</dt><dd class='mono'>{esc(run.run_id)}</dd>"
        f"<dt>Started</dt><dd><time datetime='{esc(run.started)}'>{esc(_when(run.started))}"
        f"</time></dd>{finished}"
        f"<dt>Duration</dt><dd>{seconds(run.duration_ms or checks_ms)} "
        f"({len(run.results)} checks, {seconds(checks_ms)} in the checks)</dd></dl>"
        f"<div class='cards'>{cards}<button type='button' class='card total' "
        f"data-verdict='all'><b>{len(run.results)}</b>checks</button></div>"
        "</div></header>"
    )


def _suites(run: RunResult) -> str:
    """Counts and time per suite, then each interop profile's verdict."""
    out = ["<h2>Suites</h2><table><tr><th>suite</th>"]
    out += [
        f"<th>{LABEL[v]}</th>" for v in (Verdict.PASS, Verdict.FAIL, Verdict.ERROR, Verdict.SKIP)
    ]
    out.append("<th>time</th></tr>")
    for suite, counts in run.totals().items():
        ms = sum(r.duration_ms for r in run.results if r.check.suite == suite)
        cells = "".join(
            f"<td class='{v if counts[str(v)] else 'zero'}'>{counts[str(v)]}</td>"
            for v in (Verdict.PASS, Verdict.FAIL, Verdict.ERROR, Verdict.SKIP)
        )
        out.append(f"<tr><td>{html.escape(suite)}</td>{cells}<td>{seconds(ms)}</td></tr>")
    out.append("</table>")
    verdicts = run.profile_verdicts()
    if verdicts:
        out.append("<h2>Profiles</h2><ul class='profiles'>")
        out += [f"<li>{html.escape(line)}</li>" for line in verdicts.values()]
        out.append("</ul>")
    return "".join(out)


def _filters() -> str:
    """Verdict boxes and the id search; hidden until the script makes them work."""
    boxes = "".join(
        f"<label><input type='checkbox' value='{v}' checked> {LABEL[v]}</label>" for v in ORDER
    )
    return (
        f"<div class='filters' id='filters' hidden>{boxes}"
        "<input type='search' id='search' placeholder='search by check id' "
        "aria-label='search by check id'><span id='shown'></span></div>"
    )


def render(run: RunResult) -> str:
    """The whole page for ``run``."""
    esc = html.escape
    page = _Page(run.base_url if run.base_url.startswith(("http://", "https://")) else "")
    page.add(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>SCIM conformance: {esc(run.base_url)}</title><style>{_CSS}</style></head>"
        f"<body>{_summary(run)}<main>{_suites(run)}"
    )
    if run.leftovers:
        page.add(
            f"<p class='reason leftovers'>Could not remove: {esc(', '.join(run.leftovers))}</p>"
        )
    page.add("<h2>Checks</h2>", _filters())
    for verdict in ORDER:
        for result in run.results:
            if result.verdict is verdict:
                page.check(result)
    page.add(f"</main><script>{_SCRIPT}</script></body></html>")
    return "".join(page.out)
