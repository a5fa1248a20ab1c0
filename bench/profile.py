"""Where this server spends its time under POST and GET load: py-spy samples, summarized.

``python -m bench.profile`` starts the server on a seeded tenant, runs the
POST /Users and both GET /Users/{id} scenarios (user in no group, in one group) while
``py-spy record --format raw`` samples the server process, and writes the functions
holding the largest share of the samples (inclusive and self) to bench/results/profile.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import workload
from bench.report import Target
from bench.run import RESULTS, Bench, Budget
from bench.seed import seed_tenant
from bench.targets import Database, Server

TOP = 20
RATE = 100
BOILERPLATE = 0.9
"""Functions on nearly every stack (runpy, the event loop) are left out of the inclusive table."""
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
ROOTS = sorted(
    {
        f"{root}/"
        for root in (
            str(Path(__file__).resolve().parent.parent),  # this clone of the project
            *(sysconfig.get_paths()[key] for key in ("purelib", "platlib", "stdlib", "platstdlib")),
        )
    },
    key=len,
    reverse=True,
)
"""Where a sampled file may live, deepest first (a virtualenv may sit inside the clone): a frame
is named by its path below the first that holds it."""


def _frame_name(frame: str) -> str:
    """``function (path/to/module.py:123)`` -> ``function (module/path.py)``, without the line."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for root in ROOTS:
        if path.startswith(root):
            path = path.removeprefix(root)
            break
    return f"{match['function']} ({path})"


PACKAGES = (
    ("scim_server", ("scim_server/",)),
    (
        "scim2-models + pydantic",
        (
            "scim2_models/",
            "pydantic/",
            "pydantic_core/",
            "email_validator/",
            "typing.py",
            "annotationlib",
        ),
    ),
    ("pymongo + bson", ("pymongo/", "bson/")),
    ("aiohttp + yarl + multidict", ("aiohttp/", "yarl/", "multidict/")),
    ("asyncio + selectors (event loop, socket I/O)", ("asyncio/", "selectors.py", "socket.py")),
    ("PyJWT + hashing", ("jwt/", "hmac.py", "hashlib")),
    ("orjson / json", ("orjson", "json/")),
)


def package_of(frame: str) -> str:
    for name, markers in PACKAGES:
        if any(marker in frame for marker in markers):
            return name
    return "other (stdlib, uuid, datetime...)"


def summarize(raw: str) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """Total samples; inclusive and self samples per function; self samples per package."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        # Only whole stacks, from the interpreter's entry point down.
        if not count_text.isdigit() or not stack.startswith("_run_module_as_main"):
            continue
        count = int(count_text)
        frames = [_frame_name(frame) for frame in stack.split(";")]
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
        packages[package_of(frames[-1])] += count
    return total, inclusive, own, packages


def _table(title: str, total: int, counter: Counter[str], skip_above: float = 1.0) -> list[str]:
    lines = [f"#### {title}", "", "| share | function |", "|--:|---|"]
    rows = [(name, count) for name, count in counter.most_common() if count / total <= skip_above][
        :TOP
    ]
    for name, count in rows:
        lines.append(f"| {100 * count / total:.1f}% | `{name}` |")
    return [*lines, ""]


def _record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    # Blocking sampling (the default): non-blocking reads tear stacks apart.
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(RATE),
            "--duration",
            str(int(seconds)),
            "--format",
            "raw",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def profile_server(bench: Bench, db: Database, out: Path) -> None:
    budget = bench.budget
    server = Server(db.uri, "scim_profile", bench.work / "server.log")
    server.start()
    sections = [
        "# Profile of the server under load",
        "",
        f"py-spy samples of the server process ({RATE} Hz), {budget.concurrency} "
        "concurrent connections, one worker. Shares are of the samples in which the "
        "server was busy (py-spy leaves idle samples out); *inclusive* counts a "
        "function with everything it calls (functions on nearly every stack left "
        "out), *self* only its own frame. Regenerate: `python -m bench.profile`; "
        "for a flame graph, `py-spy record -o x.svg --pid <server pid>` under load.",
        "",
    ]
    try:
        base, token = server.create_tenant("small")
        crud_base, crud_token = server.create_tenant("crud")
        seeded = seed_tenant(
            db.uri, "scim_profile", "small", budget.small_users, bench.small_groups()
        )
        # The same readers as the benchmark's two GET scenarios.
        alone = seeded.users[bench.in_no_group(seeded)]
        grouped = seeded.users[bench.in_one_group()]
        names = [f"post{i:07d}" for i in range(50_000)]
        scenarios = [
            ("post", "POST /Users", crud_base, crud_token, workload.post_users(names)),
            (
                "get",
                "GET /Users/{id} (user in no group)",
                base,
                token,
                workload.get_users(alone, 50_000, bench.rng),
            ),
            (
                "get-grouped",
                "GET /Users/{id} (user in one group)",
                base,
                token,
                workload.get_users(grouped, 50_000, bench.rng),
            ),
        ]
        for slug, title, url, auth, lanes in scenarios:
            seconds = budget.seconds + 4
            raw = bench.work / f"profile-{slug}.collapsed"
            spy = _record(server.pid, seconds, raw)
            time.sleep(1.0)
            result = bench.measure(
                Target(slug),
                "profile",
                title,
                bench.http_plan(url, auth, lanes),
                {"server": server.pid},
            )
            spy.wait(timeout=seconds + 60)
            total, inclusive, own, packages = summarize(raw.read_text())
            sections += [
                f"## {title}",
                "",
                f"{result['throughput']:.0f} requests/s while sampled, {total} samples.",
                "",
                *_table("self time by package", total, packages),
                *_table("inclusive", total, inclusive, BOILERPLATE),
                *_table("self", total, own),
            ]
    finally:
        server.stop()
    (out / "profile.md").write_text("\n".join(sections))
    bench.log(f"wrote {out}/profile.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller tenant, shorter runs")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="connections of the load generator (default 16)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scim-profile-") as tmp:
        work = Path(tmp)
        db = Database(work / "db")
        db.start()
        try:
            profile_server(Bench(Budget.for_mode(args.quick, args.concurrency), work), db, args.out)
        finally:
            db.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
