"""Act as an identity provider against any SCIM 2.0 server: run a provisioning scenario, replay a
recorded journal, or serve the simulated SAML IdP.

Exit status: 0 when every request got a status the IdP expects, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from idp_sim.directory import add_directory_options, directory_from_options
from idp_sim.journal import Journal, JournalEntry
from idp_sim.profiles import PROFILES, build_profile
from idp_sim.progress import shown_on
from idp_sim.replay import replay
from idp_sim.saml.command import add_idp_parser, run_idp
from idp_sim.scenarios import SCENARIOS, relay
from toolkit_cli import quiet_on_closed_pipe

TOKEN_VARIABLE = "SCIM_TOKEN"
"""The environment variable that holds the tenant's bearer token (as for scim-conformance)."""
TIMEOUT_HELP = "seconds to wait for each response (default: %(default)s)"
SCENARIO_HELP = {
    "full-lifecycle": "connect, import, assign every user and push every group, then take one "
    "user and one group through update (with a manager), deactivate, reactivate, password, "
    "provision on demand, unassign, membership delta, rename, push now, delete and "
    "disassociate",
    "returning-users": "full-lifecycle, then assign again every user it unassigned or deleted",
    "restart": "full-lifecycle, then forget every link and run it again on the populated server",
}
"""What each scenario of ``run`` does, for its help."""
PROFILE_HELP = {
    "okta-oin": "Okta, OIN template (SCIM 2.0 test app, published OIN apps): updates by PATCH",
    "okta-aiw": "Okta, AIW custom app: every update is a GET, then a full PUT",
    "okta-entitlements": "Okta with Identity Governance: the OIN template, plus discovery of "
    "the app's entitlements (/ResourceTypes, /Schemas, each endpoint paged) and users pushed "
    "with entitlements and roles",
    "entra": 'Microsoft Entra ID, classic job: capitalised PATCH ops, "True"/"False" strings',
    "entra-optscim062020": "Entra ID with the aadOptscim062020 flag: lower-case ops, "
    "booleans, path-less replaces with dotted keys",
    "jumpcloud": "JumpCloud custom SCIM connector: sorted keys, full PUTs, no User-Agent",
}
"""Which IdP each profile of ``run`` imitates, for its help."""


def _entries(title: str, texts: dict[str, str]) -> str:
    """A help section listing each name with what it means, wrapped to 78 columns."""
    return f"{title}:\n" + "\n".join(
        textwrap.fill(text, 78, initial_indent=f"  {name:<21}", subsequent_indent=" " * 23)
        for name, text in texts.items()
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="idp-sim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="drive a scenario through an IdP profile",
        description="Provision a directory into a SCIM server the way an IdP does: each "
        "--profile in turn drives the scenario NAME, then a summary is printed.",
        epilog=_entries("profiles", PROFILE_HELP) + "\n\n" + _entries("scenarios", SCENARIO_HELP),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        action="append",
        required=True,
        help="the IdP to imitate (see profiles below); repeat to run several profiles one after "
        "another on the same directory and server, each on the state the previous one left",
    )
    run.add_argument("--base-url", required=True, help="SCIM base URL, e.g. .../scim/v2/acme")
    _add_token_option(run)
    add_directory_options(run)
    run.add_argument(
        "--journal",
        metavar="FILE",
        help="append every request and response to this JSON-lines file, for replay (the token "
        "redacted)",
    )
    run.add_argument(
        "--auth",
        choices=["bearer", "header", "basic"],
        default=None,
        help="Okta only: how the token is sent: bearer = 'Authorization: Bearer TOKEN', header = "
        "the raw token as the Authorization header, basic = HTTP Basic with TOKEN as "
        "user:password (default: the profile's)",
    )
    run.add_argument(
        "--plus-spaces",
        action="store_true",
        help="encode spaces in queries as + (Okta 2018) instead of %%20",
    )
    run.add_argument(
        "--user-agent", help="Entra/JumpCloud: override the User-Agent (default: the profile's)"
    )
    run.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="profile option (the unknowns each profile makes configurable), value "
        "as JSON when it parses, e.g. ad_group_schema=false, locale=en_US",
    )
    run.add_argument("--timeout", type=float, default=60.0, help=TIMEOUT_HELP)
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument(
        "scenario_word",
        choices=["scenario"],
        metavar="scenario",
        help="the word 'scenario', then the scenario's name",
    )
    run.add_argument(
        "scenario",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"what the IdP does: {', '.join(SCENARIO_HELP)} (see below)",
    )

    rep = commands.add_parser(
        "replay",
        help="re-send a journal's requests, report differences",
        description="Re-send every request of a journal (as recorded: headers, order, bodies, "
        "ids learnt from the new server's answers substituted) and list each status that "
        "differs from the recorded one.",
    )
    rep.add_argument(
        "journal", metavar="FILE", help="a JSON-lines journal written by run --journal"
    )
    rep.add_argument("--base-url", required=True, help="the SCIM base URL to send them to")
    _add_token_option(rep)
    rep.add_argument("--timeout", type=float, default=60.0, help=TIMEOUT_HELP)

    add_idp_parser(commands)
    return parser


def _add_token_option(command: argparse.ArgumentParser) -> None:
    # No argparse default: a default is what --help would print, and this one is a secret.
    command.add_argument(
        "--token",
        help=f"the tenant's SCIM bearer token (default: ${TOKEN_VARIABLE}, which keeps it out "
        "of the command line that every user of the machine can read)",
    )


def _token(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """``--token``, else ``$SCIM_TOKEN``; a usage error (exit 2) when neither is set."""
    token = args.token or os.environ.get(TOKEN_VARIABLE)
    if not token:
        parser.error(f"a token is required: set ${TOKEN_VARIABLE} (or pass --token)")
    return token


def _option(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep:
        raise SystemExit(f"idp-sim: --option wants KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(raw)
    except ValueError:
        return key.strip(), raw


async def _run(args: argparse.Namespace) -> int:
    directory = directory_from_options(args)
    journals = [Journal(args.journal) for _ in args.profile]  # appended to one after another
    profiles = [
        build_profile(
            name,
            args.base_url,
            args.token,
            directory,
            seed=args.seed,
            transport_options=_transport_options(args, name, journal),
            profile_options=dict(_option(o) for o in args.option),
        )
        for name, journal in zip(args.profile, journals, strict=True)
    ]
    try:
        with shown_on(sys.stderr) as progress:
            summaries = await relay(profiles, SCENARIOS[args.scenario], progress)
    finally:
        for profile, journal in zip(profiles, journals, strict=True):
            await profile.transport.close()
            journal.close()
    if args.json:
        rendered = [s.to_dict() for s in summaries]
        print(json.dumps(rendered[0] if len(rendered) == 1 else rendered, indent=2))
    else:
        print("\n".join(s.render() for s in summaries))
    return 0 if all(s.ok for s in summaries) else 1


def _transport_options(args: argparse.Namespace, profile: str, journal: Journal) -> dict[str, Any]:
    options: dict[str, Any] = {
        "journal": journal,
        "timeout": args.timeout,
        "space": "+" if args.plus_spaces else "%20",
    }
    if profile.startswith("okta") and args.auth:
        options["auth"] = args.auth
    if not profile.startswith("okta") and args.user_agent is not None:
        options["user_agent"] = args.user_agent
    return options


async def _replay(args: argparse.Namespace) -> int:
    entries: list[JournalEntry] = Journal.read(args.journal)
    with shown_on(sys.stderr) as progress:
        result = await replay(
            entries, args.base_url, args.token, timeout=args.timeout, progress=progress
        )
    print(result.render())
    return 0 if not result.differences else 1


@quiet_on_closed_pipe
def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "idp":
        return run_idp(args)
    args.token = _token(parser, args)
    handler = _run if args.command == "run" else _replay
    return asyncio.run(handler(args))


if __name__ == "__main__":
    sys.exit(main())
