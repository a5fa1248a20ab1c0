"""``scim-conformance``: run check suites against any SCIM base URL and write reports.

Exit status: 0 when every check passed or skipped, 1 on any failure or error, 2 on a
usage error. Skips are not failures: they are what the server's ServiceProviderConfig
says it does not support, and the reports list them with that reason.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import Any

from conformance import reports
from conformance.checks import suites
from conformance.runner import run

DEFAULT_SUITES = ("rfc", "okta-spec")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scim-conformance",
                                description="Check a SCIM 2.0 server against the RFCs and the "
                                            "test suites of identity providers.")
    p.add_argument("--base-url", help="the SCIM base URL, e.g. "
                   "http://127.0.0.1:8080/scim/v2/acme (required unless --list)")
    p.add_argument("--token", default=os.environ.get("SCIM_TOKEN"),
                   help="bearer token (default: $SCIM_TOKEN)")
    p.add_argument("--suite", action="append", dest="suites", metavar="NAME",
                   help=f"a suite to run, repeatable (default: {' '.join(DEFAULT_SUITES)})")
    p.add_argument("--check", action="append", dest="checks", metavar="ID",
                   help="run only this check id, repeatable")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    p.add_argument("--json", metavar="FILE", help="write the JSON report here")
    p.add_argument("--html", metavar="FILE", help="write the HTML report here")
    p.add_argument("--keep", action="store_true",
                   help="leave the users and groups the run created on the server")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    p.add_argument("--list", action="store_true", help="list the suites and checks, then exit")
    p.add_argument("--second-base-url", help="a second tenant's SCIM base URL, for the tenancy "
                   "suite (without it that suite skips)")
    p.add_argument("--second-token", default=os.environ.get("SCIM_SECOND_TOKEN"),
                   help="the second tenant's bearer token (default: $SCIM_SECOND_TOKEN)")
    p.add_argument("--large", action="store_true",
                   help="run the large suite's checks (a group of thousands of members)")
    return p


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run-wide options suites read (``conformance.options``)."""
    return {"second_base_url": args.second_base_url, "second_token": args.second_token,
            "large": args.large}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for name, checks in suites().items():
            print(name)
            for c in checks:
                print(f"  {c.id}  {c.title}  [{c.source}]")
        return 0
    if not args.base_url:
        print("scim-conformance: --base-url is required", file=sys.stderr)
        return 2
    if not args.token:
        print("scim-conformance: a token is required (--token or $SCIM_TOKEN)", file=sys.stderr)
        return 2
    names = args.suites or list(DEFAULT_SUITES)
    unknown = [n for n in names if n not in suites()]
    if unknown:
        print(f"scim-conformance: unknown suite(s) {', '.join(unknown)}; known: "
              f"{', '.join(sorted(suites()))}", file=sys.stderr)
        return 2
    result = asyncio.run(run(args.base_url, args.token, names, keep=args.keep,
                             only=args.checks, timeout=args.timeout,
                             options=run_options(args)))
    print(reports.terminal(result))
    if args.junit:
        reports.write(args.junit, reports.junit(result))
    if args.json:
        reports.write(args.json, reports.to_json(result))
    if args.html:
        reports.write(args.html, reports.html_report(result))
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
