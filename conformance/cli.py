"""``scim-conformance``: run check suites against any SCIM base URL (and, for the ``saml``
suite, any SAML SP's ACS) and write reports.

Exit status: 0 when every check passed or skipped, 1 on any failure or error, 2 on a
usage error, 3 when the server refuses the token (no check runs), 4 when the base URL
cannot be reached or is not a SCIM server (no check runs). Skips are not failures: they are
what the server's ServiceProviderConfig says it does not support, and the reports list them
with that reason.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance import html_report, oidc_target, progress, reports, saml_target, wsfed_target
from conformance.checks import suites
from conformance.oidc_target import OidcTarget
from conformance.runner import TokenRefused, Unusable, run
from conformance.saml_target import SamlTarget
from conformance.wsfed_target import WsFedTarget
from samlkit.certs import fingerprint_sha256
from toolkit_cli import quiet_on_closed_pipe

DEFAULT_SUITES = ("rfc", "okta-spec")
EXIT_TOKEN_REFUSED = 3
EXIT_NOT_SCIM = 4
OIDC_SECRET_VARIABLE = "SCIM_OIDC_CLIENT_SECRET"
SCIM_OPTIONAL = frozenset({"saml", "wsfed", "oidc"})
"""Suites that run without a SCIM server (then they skip only what needs one)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="scim-conformance",
        description="Check a SCIM 2.0 server against the RFCs and the "
        "test suites of identity providers.",
        epilog=f"exit status: 0 every check passed or skipped, 1 a check failed or errored, "
        f"2 usage error, {EXIT_TOKEN_REFUSED} the server refuses the token, {EXIT_NOT_SCIM} the "
        "base URL is unreachable or no SCIM server (nothing runs on 3 and 4)",
    )
    p.add_argument(
        "--base-url",
        help="the SCIM base URL, e.g. http://127.0.0.1:8080/scim/v2/acme "
        "(required unless --list, or only the saml, wsfed and oidc suites)",
    )
    p.add_argument(
        "--token", default=os.environ.get("SCIM_TOKEN"), help="bearer token (default: $SCIM_TOKEN)"
    )
    p.add_argument(
        "--suite",
        action="append",
        dest="suites",
        metavar="NAME",
        help=f"a suite to run, repeatable (default: {' '.join(DEFAULT_SUITES)})",
    )
    p.add_argument(
        "--check",
        action="append",
        dest="checks",
        metavar="ID",
        help="run only this check id, repeatable",
    )
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML here")
    p.add_argument("--json", metavar="FILE", help="write the JSON report here")
    p.add_argument("--html", metavar="FILE", help="write the HTML report here")
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave the users and groups the run created on the server",
    )
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per request (default: %(default)s)"
    )
    p.add_argument("--list", action="store_true", help="list the suites and checks, then exit")
    p.add_argument(
        "--second-base-url",
        help="a second tenant's SCIM base URL, for the tenancy suite (without it that suite skips)",
    )
    p.add_argument(
        "--second-token",
        default=os.environ.get("SCIM_SECOND_TOKEN"),
        help="the second tenant's bearer token (default: $SCIM_SECOND_TOKEN)",
    )
    p.add_argument(
        "--large",
        action="store_true",
        help="run the large suite's checks (a group of thousands of members)",
    )
    admin = p.add_argument_group(
        "events and cross-instance suites (this server's admin API; without a token they skip)"
    )
    admin.add_argument(
        "--admin-token",
        default=os.environ.get("SCIM_ADMIN_TOKEN"),
        help="the server's admin token, for the suites' own tenants (default: $SCIM_ADMIN_TOKEN)",
    )
    admin.add_argument(
        "--server-url",
        help="the server's root, serving /admin and /signin (default: the base URL without "
        "/scim/v2/{tenant})",
    )
    admin.add_argument(
        "--events-receiver-host",
        help="where the events suite serves its webhook receiver, an address the server can "
        "reach (default: 127.0.0.1; the server must allow private targets, "
        "SCIM_WEBHOOK_ALLOW_PRIVATE=1, for a private one)",
    )
    admin.add_argument(
        "--events-receiver-port",
        type=int,
        help="the events suite's webhook receiver port (default: a free one)",
    )
    saml = p.add_argument_group(
        "saml suite",
        "a SAML SP's ACS; with --base-url and --token of "
        "the same service, provisioned users are also looked up by SCIM",
    )
    saml.add_argument(
        "--saml-acs-url",
        help="the SP's Assertion Consumer Service URL (without it the saml suite skips)",
    )
    saml.add_argument("--saml-sp-entity-id", help="the SP's entity ID (the expected Audience)")
    saml.add_argument("--saml-idp-key", type=Path, help="PEM private key of the IdP the SP trusts")
    saml.add_argument("--saml-idp-cert", type=Path, help="PEM certificate of --saml-idp-key")
    saml.add_argument(
        "--saml-idp-entity-id", help="the IdP's entity ID, as the SP has it (default: the shape's)"
    )
    saml.add_argument(
        "--saml-shape",
        choices=sorted(saml_target.SHAPES),
        default="okta",
        help="the IdP whose response layout and signing is sent (default: okta)",
    )
    saml.add_argument(
        "--write-saml-idp",
        type=Path,
        metavar="DIR",
        help="create an IdP key in DIR (kept if present) and write the IdP "
        "metadata for the SP to import, then exit",
    )
    wsfed = p.add_argument_group(
        "wsfed suite",
        "a WS-Federation RP's reply URL; the STS signs with --wsfed-idp-key and "
        "--wsfed-idp-cert, else with the saml suite's --saml-idp-key and --saml-idp-cert",
    )
    wsfed.add_argument(
        "--wsfed-reply-url",
        help="the RP's reply URL, where tokens are posted (without it the wsfed suite skips)",
    )
    wsfed.add_argument(
        "--wsfed-realm",
        help="the RP's realm, the audience its tokens must name (default: the reply URL "
        "without its last /reply)",
    )
    wsfed.add_argument(
        "--wsfed-login-url",
        help="the RP's login URL: each sign-in starts there and posts back the wctx the RP "
        "sent (default: unsolicited tokens, no wctx)",
    )
    wsfed.add_argument(
        "--wsfed-idp-key", type=Path, help="PEM private key of the STS the RP trusts"
    )
    wsfed.add_argument("--wsfed-idp-cert", type=Path, help="PEM certificate of --wsfed-idp-key")
    wsfed.add_argument(
        "--wsfed-idp-entity-id",
        help="the STS's issuer, as the RP has it (default: Entra's https://sts.windows.net/…/)",
    )
    oidc = p.add_argument_group(
        "oidc suite",
        "the suite is the OpenID provider, on http://127.0.0.1:PORT/oauth2/default; configure "
        "the RP to trust that issuer with the client id and secret below, then run",
    )
    oidc.add_argument(
        "--oidc-login-url",
        help="the RP's login URL, where each sign-in starts (without it the oidc suite skips)",
    )
    oidc.add_argument(
        "--oidc-redirect-uri", help="the RP's redirect URI, registered for it at the suite's OP"
    )
    oidc.add_argument(
        "--oidc-op-port",
        type=int,
        default=oidc_target.DEFAULT_PORT,
        help="the loopback port the suite's OP listens on (default: %(default)s)",
    )
    oidc.add_argument(
        "--oidc-op-url",
        help="the origin the RP and the runner reach the OP at, when not "
        "http://127.0.0.1:PORT (a tunnel or reverse proxy to that port)",
    )
    oidc.add_argument(
        "--oidc-client-id",
        default=oidc_target.DEFAULT_CLIENT_ID,
        help="the RP's client id at the suite's OP (default: %(default)s)",
    )
    oidc.add_argument(
        "--oidc-client-secret",
        default=os.environ.get(OIDC_SECRET_VARIABLE),
        help=f"the RP's client secret at the suite's OP (default: ${OIDC_SECRET_VARIABLE})",
    )
    return p


def saml_option(args: argparse.Namespace) -> SamlTarget | None:
    """The saml suite's SP, None without --saml-acs-url; ValueError/OSError on bad flags."""
    if not args.saml_acs_url:
        return None
    needed = (
        ("--saml-sp-entity-id", args.saml_sp_entity_id),
        ("--saml-idp-key", args.saml_idp_key),
        ("--saml-idp-cert", args.saml_idp_cert),
    )
    missing = [flag for flag, value in needed if not value]
    if missing:
        raise ValueError(
            f"--saml-acs-url needs {', '.join(missing)} (--write-saml-idp DIR "
            f"creates an IdP key and the metadata the SP must import)"
        )
    idp = saml_target.load(
        args.saml_idp_key,
        args.saml_idp_cert,
        saml_target.shape(args.saml_shape, args.saml_idp_entity_id),
    )
    return SamlTarget(args.saml_acs_url, args.saml_sp_entity_id, idp)


def wsfed_option(args: argparse.Namespace) -> WsFedTarget | None:
    """The wsfed suite's RP, None without --wsfed-reply-url; ValueError/OSError on bad flags."""
    if not args.wsfed_reply_url:
        return None
    key = args.wsfed_idp_key or args.saml_idp_key
    cert = args.wsfed_idp_cert or args.saml_idp_cert
    if not (key and cert):
        raise ValueError(
            "--wsfed-reply-url needs the STS key the RP trusts: --wsfed-idp-key and "
            "--wsfed-idp-cert (or --saml-idp-key and --saml-idp-cert)"
        )
    return WsFedTarget(
        reply_url=args.wsfed_reply_url,
        realm=args.wsfed_realm or wsfed_target.default_realm(args.wsfed_reply_url),
        shape=wsfed_target.shape(args.wsfed_idp_entity_id),
        key=wsfed_target.load(key, cert),
        login_url=args.wsfed_login_url,
    )


def oidc_option(args: argparse.Namespace) -> OidcTarget | None:
    """The oidc suite's RP, None without --oidc-login-url; ValueError on incomplete flags."""
    if not args.oidc_login_url:
        return None
    if not (args.oidc_redirect_uri and args.oidc_client_secret):
        raise ValueError(
            f"--oidc-login-url needs --oidc-redirect-uri and the client secret "
            f"(${OIDC_SECRET_VARIABLE} or --oidc-client-secret)"
        )
    return OidcTarget(
        args.oidc_login_url,
        args.oidc_redirect_uri,
        args.oidc_client_id,
        args.oidc_client_secret,
        args.oidc_op_port,
        args.oidc_op_url,
    )


def announce_oidc(oidc: OidcTarget) -> str:
    """What the RP must trust for the oidc suite; the secret is never printed."""
    return (
        f"oidc suite: the OpenID provider is {oidc.issuer}, the RP its client "
        f"{oidc.client_id} (the secret of --oidc-client-secret or ${OIDC_SECRET_VARIABLE}), "
        f"redirect URI {oidc.redirect_uri}"
    )


def write_saml_idp(args: argparse.Namespace) -> int:
    """``--write-saml-idp DIR``: the IdP identity for the SP to trust, and how to run with it."""
    idp_shape = saml_target.shape(args.saml_shape, args.saml_idp_entity_id)
    try:
        idp, files = saml_target.write(args.write_saml_idp, idp_shape)
    except (OSError, ValueError) as exc:
        print(f"scim-conformance: {exc}", file=sys.stderr)
        return 2
    command = [
        "scim-conformance",
        "--suite",
        "saml",
        "--saml-acs-url",
        "ACS_URL",
        "--saml-sp-entity-id",
        "SP_ENTITY_ID",
        "--saml-shape",
        args.saml_shape,
        "--saml-idp-entity-id",
        idp_shape.entity_id,
        "--saml-idp-key",
        str(files.key),
        "--saml-idp-cert",
        str(files.cert),
    ]
    print(
        f"Import {files.metadata} into the SP (or enter: IdP entity ID "
        f"{idp_shape.entity_id}, sign-in URL {saml_target.sso_url(idp)}, certificate "
        f"{files.cert}, SHA-256 {fingerprint_sha256(idp.key.certificate)}), allow "
        f"IdP-initiated sign-in, then run:\n  {shlex.join(command)}\n"
        f"adding --base-url and a token ($SCIM_TOKEN or --token) when the SP is also a SCIM server."
    )
    return 0


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run-wide options suites read (``conformance.options``); ValueError or OSError when
    the saml flags are incomplete or name unusable key files."""
    return {
        "second_base_url": args.second_base_url,
        "second_token": args.second_token,
        "large": args.large,
        "saml": saml_option(args),
        "wsfed": wsfed_option(args),
        "oidc": oidc_option(args),
        "admin_token": args.admin_token,
        "server_url": args.server_url,
        "events_receiver_host": args.events_receiver_host,
        "events_receiver_port": args.events_receiver_port,
    }


@quiet_on_closed_pipe
def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for name, checks in suites().items():
            print(name)
            for c in checks:
                print(f"  {c.id}  {c.title}  [{c.source}]")
        return 0
    if args.write_saml_idp:
        return write_saml_idp(args)
    names = args.suites or list(DEFAULT_SUITES)
    if not args.base_url and not set(names) <= SCIM_OPTIONAL:
        print(
            f"scim-conformance: --base-url is required (only the suites "
            f"{', '.join(sorted(SCIM_OPTIONAL))} run without one)",
            file=sys.stderr,
        )
        return 2
    if args.base_url and not args.token:
        print("scim-conformance: a token is required (--token or $SCIM_TOKEN)", file=sys.stderr)
        return 2
    unknown = [n for n in names if n not in suites()]
    if unknown:
        print(
            f"scim-conformance: unknown suite(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(suites()))}",
            file=sys.stderr,
        )
        return 2
    try:
        options = run_options(args)
    except (OSError, ValueError) as exc:
        print(f"scim-conformance: {exc}", file=sys.stderr)
        return 2
    if isinstance(options["oidc"], OidcTarget) and "oidc" in names:
        print(announce_oidc(options["oidc"]), file=sys.stderr)
    try:
        with progress.observer(sys.stderr) as observer:
            result = asyncio.run(
                run(
                    args.base_url or "",
                    args.token or "",
                    names,
                    keep=args.keep,
                    only=args.checks,
                    timeout=args.timeout,
                    options=options,
                    observer=observer,
                )
            )
    except Unusable as exc:
        print(f"scim-conformance: {exc}", file=sys.stderr)
        return EXIT_TOKEN_REFUSED if isinstance(exc, TokenRefused) else EXIT_NOT_SCIM
    print(reports.terminal(result))
    if args.junit:
        reports.write(args.junit, reports.junit(result))
    if args.json:
        reports.write(args.json, reports.to_json(result))
    if args.html:
        reports.write(args.html, html_report.render(result))
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
