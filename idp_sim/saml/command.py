"""``idp-sim idp ...``: serve the simulated IdP (SAML apps and OpenID Connect clients), print its
SAML metadata, make a signing key.

The help texts (:data:`DESCRIPTION`, :data:`APPS`) say how apps are given and what they take.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import os
import re
import signal
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from idp_sim.directory import add_directory_options, directory_from_options
from idp_sim.oidc.provider import OidcShape, entra_oidc, okta_oidc
from idp_sim.oidc.tampering import BY_NAME, VARIANTS
from idp_sim.oidc.webapp import HostedOidcApp
from idp_sim.saml.response import IdentityProvider, ServiceProvider
from idp_sim.saml.shapes import IdpShape, jumpcloud, okta
from idp_sim.saml.webapp import IDP_STATE, HostedApp, IdpServerConfig, create_idp_app
from idp_sim.wsfed.token import RelyingParty
from idp_sim.wsfed.webapp import HostedWsFedApp
from samlkit.certs import SigningKey, certificate_pem, fingerprint_sha256
from samlkit.namespaces import EMAIL, PERSISTENT, TRANSIENT, UNSPECIFIED_11, UNSPECIFIED_20

SERVED_TAMPERING = [variant for variant in VARIANTS if variant.kind != "flow"]
"""The variants the provider itself plays (the others are an attacker's steps in a test)."""
DESCRIPTION = """\
Serve the simulated IdP: SAML apps (Okta- or JumpCloud-shaped) and OpenID Connect clients (Okta-
or Entra-shaped); print an app's SAML metadata, or make a signing key. The directory options
match idp-sim run: the same seed gives the same people, so a person provisioned by SCIM can then
sign in by SAML or OIDC."""
APPS = """\
apps:
  --app VENDOR:SP_ENTITY_ID,ACS_URL[,KEY=VALUE...], VENDOR being okta or jumpcloud; the SP entity
  ID and ACS URL are what the service provider shows its admin. KEY=VALUE options:
    name    Okta app name / JumpCloud custom value: the URL segment and tile name
    key     Okta's exk... app key (default: one derived from the SP entity ID, so a restart
            keeps every URL an SP was configured with)
    issuer  JumpCloud's IdP entity ID
    relay   the default RelayState of IdP-initiated sign-in
  --oidc-app VENDOR:REDIRECT_URI[,KEY=VALUE...], VENDOR being okta or entra: an OpenID Connect
  client registered with that redirect URI (the SP's callback). KEY=VALUE options:
    client_id      default idp-sim-client
    client_secret  default: one derived from the redirect URI, so a restart keeps it
    name           the app's name (default okta-oidc / entra-oidc)
    jwks_uri       the client's key set: it authenticates with private_key_jwt, not the secret
  --wsfed-app REPLY_URL[,KEY=VALUE...]: an Entra-shaped WS-Federation application whose tokens
  are posted to REPLY_URL (the SP's wsfed_reply_url). KEY=VALUE options:
    realm          its identifier, the wtrealm (default: REPLY_URL without its /reply)
    token          2.0 (default) or 1.1: the SAML version of the token's assertion
    name           the app's name (default entra-wsfed)
  --oidc-tamper VARIANT makes the OpenID provider misbehave on purpose (idp_sim.oidc.tampering):
""" + "\n".join(f"    {variant.name:<20} {variant.description}" for variant in SERVED_TAMPERING)
SERVE_ORIGIN = "http://127.0.0.1:8090"
NAME_ID_FORMATS = {
    "email": EMAIL,
    "unspecified": UNSPECIFIED_11,
    "unspecified-2.0": UNSPECIFIED_20,
    "persistent": PERSISTENT,
    "transient": TRANSIENT,
}
SIGNING = {"response": (True, False), "assertion": (False, True), "both": (True, True)}
_APP_OPTIONS = {"okta": {"name", "key", "relay"}, "jumpcloud": {"name", "issuer", "relay"}}
_OIDC_OPTIONS = {"client_id", "client_secret", "name", "jwks_uri"}
_WSFED_OPTIONS = {"realm", "token", "name"}
OIDC_SHAPES: dict[str, Callable[[], OidcShape]] = {"okta": okta_oidc, "entra": entra_oidc}
DEFAULT_CLIENT_ID = "idp-sim-client"
_DEFAULT_NAMES = {"okta": "scim_toolkit", "jumpcloud": "scim-toolkit"}
_URL_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


@dataclass(frozen=True)
class AppSpec:
    """One ``--app`` argument, parsed."""

    vendor: str
    sp: ServiceProvider
    options: dict[str, str]


def parse_app_spec(text: str) -> AppSpec:
    """``VENDOR:SP_ENTITY_ID,ACS_URL[,KEY=VALUE...]``; argparse reports the error on bad input."""
    vendor, colon, rest = text.partition(":")
    if not colon or vendor not in _APP_OPTIONS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected okta:SP_ENTITY_ID,ACS_URL or jumpcloud:SP_ENTITY_ID,ACS_URL"
        )
    entity_id, _, remainder = rest.partition(",")
    acs_url, *extras = remainder.split(",")
    if not entity_id or not acs_url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r}: needs an SP entity ID and an http(s) ACS URL")
    options: dict[str, str] = {}
    for extra in extras:
        key, equals, value = extra.partition("=")
        if not equals or key not in _APP_OPTIONS[vendor]:
            allowed = ", ".join(sorted(_APP_OPTIONS[vendor]))
            raise argparse.ArgumentTypeError(f"{text!r}: {extra!r} is not one of {allowed}=VALUE")
        if key in ("name", "key") and not _URL_SEGMENT.fullmatch(value):
            raise argparse.ArgumentTypeError(f"{text!r}: {key} must be a plain URL segment")
        options[key] = value
    return AppSpec(vendor, ServiceProvider(entity_id, acs_url), options)


def parse_oidc_app(text: str) -> HostedOidcApp:
    """``VENDOR:REDIRECT_URI[,KEY=VALUE...]``; argparse reports the error on bad input."""
    vendor, colon, rest = text.partition(":")
    redirect_uri, *extras = rest.split(",")
    if (
        not colon
        or vendor not in OIDC_SHAPES
        or not redirect_uri.startswith(("http://", "https://"))
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected okta:REDIRECT_URI or entra:REDIRECT_URI (an http(s) URL)"
        )
    options = _key_values(text, extras, _OIDC_OPTIONS)
    secret = hashlib.sha256(f"idp-sim client secret\n{redirect_uri}".encode()).hexdigest()[:32]
    return HostedOidcApp(
        OIDC_SHAPES[vendor](),
        options.get("client_id", DEFAULT_CLIENT_ID),
        options.get("client_secret", secret),
        (redirect_uri,),
        name=options.get("name"),
        jwks_uri=options.get("jwks_uri"),
    )


def parse_wsfed_app(text: str) -> HostedWsFedApp:
    """``REPLY_URL[,KEY=VALUE...]``; argparse reports the error on bad input."""
    reply_url, *extras = text.split(",")
    if not reply_url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected REPLY_URL (an http(s) URL) first")
    options = _key_values(text, extras, _WSFED_OPTIONS)
    token = options.get("token", "2.0")
    if token not in ("2.0", "1.1"):
        raise argparse.ArgumentTypeError(f"{text!r}: token must be 2.0 or 1.1")
    realm = options.get("realm", reply_url.removesuffix("/reply"))
    return HostedWsFedApp(
        RelyingParty(realm, reply_url),
        token="1.1" if token == "1.1" else "2.0",
        name=options.get("name"),
    )


def _key_values(text: str, extras: list[str], allowed: set[str]) -> dict[str, str]:
    """The ``KEY=VALUE`` options of an app's spec, each one of ``allowed``."""
    options: dict[str, str] = {}
    for extra in extras:
        key, equals, value = extra.partition("=")
        if not equals or key not in allowed or not value:
            names = ", ".join(sorted(allowed))
            raise argparse.ArgumentTypeError(f"{text!r}: {extra!r} is not one of {names}=VALUE")
        options[key] = value
    return options


def _name_id_format(text: str) -> str:
    if text in NAME_ID_FORMATS or text.startswith("urn:"):
        return NAME_ID_FORMATS.get(text, text)
    raise argparse.ArgumentTypeError(
        f"{text!r}: expected one of {', '.join(NAME_ID_FORMATS)} or a urn:... format"
    )


def okta_key_for(sp_entity_id: str) -> str:
    """A stable Okta-style app key (``exk`` + 17 base62) for an SP: same SP, same URLs."""
    number = int.from_bytes(hashlib.sha256(sp_entity_id.encode()).digest(), "big")
    digits = []
    for _ in range(17):
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return "exk" + "".join(digits)


def add_idp_parser(commands: Any) -> None:
    """Register ``idp serve|metadata|keygen`` on the top-level sub-command set."""
    idp = commands.add_parser(
        "idp",
        help="the simulated IdP: SAML (Okta, JumpCloud) and OpenID Connect (Okta, Entra)",
        description=DESCRIPTION,
        epilog=APPS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = idp.add_subparsers(dest="idp_command", required=True)
    shared = _shared_options()
    serve = actions.add_parser(
        "serve",
        parents=[shared],
        help="run the IdP web app",
        description="Run the IdP web app: it signs the directory's people in to each --app.",
        epilog=APPS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default: %(default)s)")
    serve.add_argument(
        "--port", type=int, default=8090, help="0 picks a free port (default: %(default)s)"
    )
    metadata = actions.add_parser(
        "metadata",
        parents=[shared],
        help=f"print one app's IdP metadata XML (URLs under --public-url, default {SERVE_ORIGIN})",
        description="Print one app's IdP metadata XML, for its service provider to import.",
        epilog=APPS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    metadata.add_argument("--name", help="which app (default: the first)")
    keygen = actions.add_parser(
        "keygen",
        help="write a signing key and certificate (PEM)",
        description="Write a signing key and its self-signed certificate, for serve --key/--cert.",
    )
    keygen.add_argument("--key", required=True, type=Path, help="write the PEM private key here")
    keygen.add_argument("--cert", required=True, type=Path, help="write the PEM certificate here")
    keygen.add_argument(
        "--common-name", default="idp-sim", help="the certificate's CN (default: %(default)s)"
    )


def _shared_options() -> argparse.ArgumentParser:
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--app",
        action="append",
        type=parse_app_spec,
        default=[],
        metavar="VENDOR:SP_ENTITY_ID,ACS_URL[,KEY=VALUE...]",
        help="a SAML app the IdP signs users in to, repeatable (see apps below)",
    )
    shared.add_argument(
        "--oidc-app",
        action="append",
        type=parse_oidc_app,
        default=[],
        metavar="VENDOR:REDIRECT_URI[,KEY=VALUE...]",
        help="an OpenID Connect client the IdP signs users in to, repeatable (see apps below)",
    )
    shared.add_argument(
        "--wsfed-app",
        action="append",
        type=parse_wsfed_app,
        default=[],
        metavar="REPLY_URL[,KEY=VALUE...]",
        help="a WS-Federation app the IdP signs users in to, repeatable (see apps below)",
    )
    shared.add_argument(
        "--oidc-tamper",
        choices=[variant.name for variant in SERVED_TAMPERING],
        help="make the OIDC provider misbehave on purpose (see the variants below)",
    )
    shared.add_argument("--public-url", help="the origin browsers use, e.g. https://idp.example")
    shared.add_argument("--key", type=Path, help="PEM private key (with --cert); default: fresh")
    shared.add_argument("--cert", type=Path, help="PEM certificate of --key")
    add_directory_options(shared)
    shared.add_argument(
        "--sign",
        choices=sorted(SIGNING),
        help="what is signed: the response, the assertion, or both (default: Okta both, "
        "JumpCloud assertion)",
    )
    shared.add_argument(
        "--name-id-format",
        type=_name_id_format,
        help=f"{', '.join(NAME_ID_FORMATS)} or a URN (default: email)",
    )
    shared.add_argument(
        "--name-id-source",
        choices=["email", "login", "id"],
        help="the user field sent as the NameID: email, login or id (default: email)",
    )
    groups = shared.add_mutually_exclusive_group()
    groups.add_argument(
        "--groups-attribute",
        help="name of the groups attribute (default: Okta groups, JumpCloud memberOf)",
    )
    groups.add_argument("--no-groups", action="store_true", help="send no groups attribute")
    return shared


def run_idp(args: argparse.Namespace) -> int:
    """Run ``idp-sim idp ...``: 0 on success, 1 when the server cannot listen, 2 on bad usage."""
    if args.idp_command == "keygen":
        return _keygen(args)
    try:
        config = build_config(args)
        app = create_idp_app(config)
        if args.oidc_tamper:
            app[IDP_STATE].oidc.tampering = BY_NAME[args.oidc_tamper]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Unreadable or mismatched key files, a malformed directory file, clashing app names.
        print(f"idp-sim: {exc}", file=sys.stderr)
        return 2
    if args.idp_command == "metadata":
        return _print_metadata(config, args.name)
    try:
        asyncio.run(_serve(app, config, args.host, args.port))
    except OSError as exc:
        print(f"idp-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def build_config(args: argparse.Namespace) -> IdpServerConfig:
    """The web app's config from parsed options; ValueError / OSError on bad files or apps."""
    if not (args.app or args.oidc_app or args.wsfed_app):
        raise ValueError("give at least one --app, --oidc-app or --wsfed-app")
    if (args.key is None) != (args.cert is None):
        raise ValueError("--key and --cert go together")
    if args.public_url and not args.public_url.startswith(("http://", "https://")):
        raise ValueError("--public-url must be an http(s) origin")
    key = (
        SigningKey.from_pem(args.key.read_bytes(), args.cert.read_bytes())
        if args.key
        else SigningKey.generate("idp-sim")
    )
    directory = directory_from_options(args)
    counts: dict[str, int] = {}
    apps = []
    for spec in args.app:
        counts[spec.vendor] = counts.get(spec.vendor, 0) + 1
        apps.append(
            HostedApp(
                _shape(spec, counts[spec.vendor], args),
                spec.sp,
                default_relay_state=spec.options.get("relay"),
            )
        )
    return IdpServerConfig(
        key=key,
        directory=directory,
        apps=apps,
        public_url=args.public_url,
        oidc_apps=tuple(args.oidc_app),
        wsfed_apps=tuple(args.wsfed_app),
    )


def _shape(spec: AppSpec, ordinal: int, args: argparse.Namespace) -> IdpShape:
    """The vendor's default shape, then the command-line overrides that were given."""
    default = _DEFAULT_NAMES[spec.vendor]
    name = spec.options.get("name") or (default if ordinal == 1 else f"{default}{ordinal}")
    if spec.vendor == "okta":
        shape = okta(name, spec.options.get("key") or okta_key_for(spec.sp.entity_id))
    else:
        shape = jumpcloud(name, entity_id=spec.options.get("issuer", "JumpCloud"))
    overrides: dict[str, Any] = {}
    if args.sign:
        overrides["sign_response"], overrides["sign_assertion"] = SIGNING[args.sign]
    if args.name_id_format:
        overrides["name_id_format"] = args.name_id_format
    if args.name_id_source:
        overrides["name_id_source"] = args.name_id_source
    if args.groups_attribute or args.no_groups:
        overrides["groups_attribute"] = None if args.no_groups else args.groups_attribute
    return replace(shape, **overrides)


def _print_metadata(config: IdpServerConfig, name: str | None) -> int:
    chosen = [app for app in config.apps if name in (None, app.label)]
    if not chosen:
        print(f"idp-sim: no app named {name!r}", file=sys.stderr)
        return 2
    base = config.public_url or SERVE_ORIGIN
    print(IdentityProvider(chosen[0].shape, config.key).metadata_xml(base).decode("utf-8"))
    return 0


def _keygen(args: argparse.Namespace) -> int:
    """A fresh key pair for ``--key``/``--cert``, so restarts keep the metadata SPs imported."""
    existing = [str(path) for path in (args.key, args.cert) if path.exists()]
    if existing:
        print(f"idp-sim: will not overwrite {', '.join(existing)}", file=sys.stderr)
        return 2
    key = SigningKey.generate(args.common_name)
    descriptor = os.open(args.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key.private_key_pem())
    args.cert.write_text(certificate_pem(key.certificate), encoding="ascii")
    print(f"certificate SHA-256 {fingerprint_sha256(key.certificate)}")
    return 0


async def _serve(app: web.Application, config: IdpServerConfig, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM, after printing every URL an SP admin needs."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1]
        origin = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
        print(describe(config, config.public_url or origin), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def describe(config: IdpServerConfig, base: str) -> str:
    """The start-up banner: per app, what to paste into the service provider's SSO settings."""
    base = base.rstrip("/")
    lines = [
        f"idp-sim IdP on {base}/ (launch page)",
        f"signing certificate SHA-256 {fingerprint_sha256(config.key.certificate)}",
        f"directory: {len(config.directory.users)} users, {len(config.directory.groups)} groups",
    ]
    for app in config.apps:
        lines += [
            f"app {app.label} ({app.shape.vendor}) for SP {app.sp.entity_id}",
            f"  IdP entity ID  {app.shape.entity_id}",
            f"  metadata URL   {base}{app.shape.metadata_path}",
            f"  SSO URL        {base}{app.shape.sso_path}",
            f"  launch URL     {base}{app.launch_path}",
            f"  posts to ACS   {app.sp.acs_url}",
        ]
    for client in config.oidc_apps:
        lines += [
            f"OIDC app {client.label} ({client.shape.vendor})",
            f"  issuer         {base}{client.shape.issuer_path}",
            f"  client ID      {client.client_id}",
            f"  client secret  {client.client_secret}",
            f"  redirect URI   {', '.join(client.redirect_uris)}",
        ]
    for wsfed in config.wsfed_apps:
        lines += [
            f"WS-Federation app {wsfed.label} ({wsfed.shape.vendor}, SAML {wsfed.token} tokens)",
            f"  IdP entity ID  {wsfed.shape.entity_id}",
            f"  passive URL    {base}{wsfed.shape.sso_path}",
            f"  metadata URL   {base}{wsfed.shape.metadata_path}",
            f"  realm          {wsfed.rp.realm}",
            f"  posts to       {wsfed.rp.reply_url}",
        ]
    return "\n".join(lines)
