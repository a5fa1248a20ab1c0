"""``python -m conformance.local`` (``make conformance``): our server, every suite, one report.

Why a module and not a Make recipe: starting a server on a free port, waiting for it, creating
two tenants and always stopping the server again is control flow, which a shell one-liner gets
wrong on the first Ctrl-C. The server runs as a child process on the embedded store in a
temporary data directory, exactly as ``scim-server serve`` would for a user; the runner then
talks to it over plain HTTP like to any other server. The first tenant's SSO trusts a freshly
generated IdP key, set through the admin API as an admin would, for the ``saml`` suite, has a
rate limit of its own (``RATE_LIMIT``) for the ``ipsie`` suite, and is an entitlement app
(custom resource types and their resources, ``ENTITLEMENT_APP``) for the ``okta-entitlements``
suite. A third tenant is a WS-Federation RP of an STS signing with that same key, for the
``wsfed`` suite, and a fourth an OpenID Connect RP of the ``oidc`` suite's OP, on a free port,
with a fresh client secret (a tenant signs in with one protocol).

Secrets (the admin token, the token-signing secret, the tenants' bearer tokens, the OIDC client
secret) reach the children through their environment, never their command line, which every user
of the machine can read (``ps``), and are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance import saml_target, wsfed_target
from conformance.checks import suites
from conformance.cli import OIDC_SECRET_VARIABLE
from conformance.oidc_target import DEFAULT_CLIENT_ID, OidcTarget
from conformance.saml_target import IdpFiles
from conformance.urns import OKTA_ENTITLEMENT, OKTA_ROLE
from idp_sim.saml.response import IdentityProvider
from samlkit.certs import certificate_pem

PREFERRED = (
    "rfc",
    "okta-spec",
    "okta-entitlements",
    "flows",
    "tenancy",
    "entra-validator",
    "interop-draft",
    "ipsie",
    "saml",
    "wsfed",
    "oidc",
    "events",
    "cross-instance",
)
"""Suites in report order; any other registered suite runs after them."""
RATE_LIMIT = 25
"""The first tenant's own rate limit (requests a second): the 25 the IPSIE profile asks a tenant
to be served, so that the ``ipsie`` suite's burst reaches the limit on any machine, however slow,
and its sustained check proves that exactly 25 a second pass."""
WSFED_TENANT = "conformance-wsfed"
"""A tenant of its own for the ``wsfed`` suite: a tenant signs in with one protocol."""
OIDC_TENANT = "conformance-oidc"
"""A tenant of its own for the ``oidc`` suite, an RP of the suite's OP."""
ENTITLEMENT_APP: dict[str, list[dict[str, Any]]] = {
    "Roles": [
        {"schemas": [OKTA_ROLE], "displayName": name, "type": "Role", "externalId": name}
        for name in ("Administrator", "Editor", "Viewer")
    ],
    "Entitlements": [
        {"schemas": [OKTA_ENTITLEMENT], "displayName": name, "type": "Feature", "externalId": name}
        for name in ("Reports", "Exports")
    ],
    "Licenses": [
        {"schemas": [OKTA_ENTITLEMENT], "displayName": name, "type": "License", "externalId": name}
        for name in ("Gold", "Silver", "Bronze")
    ],
}
"""The first tenant's custom resource types and resources, loaded as an entitlement app would
(``okta-entitlements`` reads them, pages through them and assigns them to a user)."""
REPORT = "conformance-report"
STARTUP_SECONDS = 60.0


def default_suites(registry: Mapping[str, Any]) -> list[str]:
    """Every registered suite, the known ones first (a peer's suite joins when it exists)."""
    return [name for name in PREFERRED if name in registry] + [
        name for name in registry if name not in PREFERRED
    ]


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m conformance.local", description=__doc__)
    p.add_argument("--root", default=".", help="where the reports are written (default: .)")
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument(
        "--suite",
        action="append",
        dest="suites",
        metavar="NAME",
        help="a suite to run, repeatable (default: every registered suite)",
    )
    p.add_argument("--large", action="store_true", help="also build a large group")
    return p.parse_args(argv)


@dataclass
class Plan:
    """What to start and what to run, decided before anything starts (and testable)."""

    root: Path
    port: int
    suites: list[str]
    large: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server_argv(self, data_dir: str) -> list[str]:
        """``scim-server serve`` on the embedded store; the secrets by :func:`server_secrets`."""
        return [
            sys.executable,
            "-m",
            "scim_server",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            data_dir,
            "--public-url",
            self.url,
            "--log-level",
            "WARNING",
            "--webhook-allow-private",  # the events suite's webhook receiver is on 127.0.0.1
        ]

    def conformance_argv(self, a_url: str, b_url: str, saml: Sequence[str] = ()) -> list[str]:
        """``scim-conformance``'s options; the tenants' tokens come by :func:`tenant_secrets`."""
        argv = ["--base-url", a_url, "--second-base-url", b_url, *saml]
        for name in self.suites:
            argv += ["--suite", name]
        if self.large:
            argv.append("--large")
        return [
            *argv,
            "--html",
            str(self.root / f"{REPORT}.html"),
            "--junit",
            str(self.root / f"{REPORT}.xml"),
            "--json",
            str(self.root / f"{REPORT}.json"),
        ]


def server_secrets(admin_token: str) -> dict[str, str]:
    """The server's secrets, as the environment variables ``scim-server serve`` reads."""
    return {"SCIM_ADMIN_TOKEN": admin_token, "SCIM_TOKEN_SECRET": secrets.token_urlsafe(32)}


def tenant_secrets(a_token: str, b_token: str, admin_token: str) -> dict[str, str]:
    """The two tenants' bearer tokens and the admin token (the ``events`` and ``cross-instance``
    suites make tenants of their own), as the environment variables ``scim-conformance`` reads."""
    return {"SCIM_TOKEN": a_token, "SCIM_SECOND_TOKEN": b_token, "SCIM_ADMIN_TOKEN": admin_token}


def child_environment(secret: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``secret`` added (replacing any inherited value)."""
    return {**os.environ, **secret}


def plan(args: argparse.Namespace, registered: Sequence[str]) -> Plan:
    return Plan(
        Path(args.root), args.port or free_port(), list(args.suites or registered), args.large
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def admin(url: str, token: str, method: str = "GET", body: Any = None) -> Any:
    """One admin API call; the JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def sso_tenant(url: str, token: str, name: str, settings: Mapping[str, Any]) -> Any:
    """Create tenant ``name`` signing in with ``settings``; the SSO view the admin API shows."""
    admin(f"{url}/admin/tenants", token, "POST", {"name": name})
    return admin(f"{url}/admin/tenants/{name}/sso", token, "PUT", settings)


def serve_entitlements(url: str, admin_token: str, tenant: str) -> None:
    """Make ``tenant`` an entitlement app: serve Roles, Entitlements and Licenses, and load
    ``ENTITLEMENT_APP`` through the admin API."""
    tenant_url = f"{url}/admin/tenants/{tenant}"
    names = ["Role", "Entitlement", "License"]
    admin(f"{tenant_url}/resource-types", admin_token, "PUT", {"resource_types": names})
    for endpoint, resources in ENTITLEMENT_APP.items():
        admin(f"{tenant_url}/resources/{endpoint}", admin_token, "POST", {"Resources": resources})


def sso_settings(idp: IdentityProvider) -> dict[str, Any]:
    """Our admin API's SSO body that makes a tenant trust the runner's IdP."""
    return {
        "enabled": True,
        "preset": idp.shape.vendor,
        "idp": {
            "entity_id": idp.shape.entity_id,
            "sso_url": saml_target.sso_url(idp),
            "certificates": [certificate_pem(idp.key.certificate)],
        },
    }


def wsfed_settings(idp: IdentityProvider) -> dict[str, Any]:
    """Our admin API's SSO body that makes a tenant a WS-Federation RP of the runner's STS,
    which signs with the same key as its SAML IdP."""
    sts = wsfed_target.shape()
    return {
        "protocol": "wsfed",
        "enabled": True,
        "preset": "entra",
        "idp": {
            "entity_id": sts.entity_id,
            "sso_url": saml_target.SSO_ORIGIN + sts.sso_path,
            "certificates": [certificate_pem(idp.key.certificate)],
        },
    }


def wsfed_argv(service_provider: Mapping[str, Any]) -> list[str]:
    """The wsfed suite's options, from the RP values our admin API shows back (the STS key is
    the saml suite's)."""
    return [
        "--wsfed-reply-url",
        service_provider["wsfed_reply_url"],
        "--wsfed-realm",
        service_provider["wsfed_realm"],
        "--wsfed-login-url",
        service_provider["login_url"],
    ]


def oidc_settings(oidc: OidcTarget) -> dict[str, Any]:
    """Our admin API's SSO body that makes a tenant an OIDC RP of the suite's OP."""
    return {
        "protocol": "oidc",
        "enabled": True,
        "preset": "okta",
        "oidc": {
            "issuer": oidc.issuer,
            "client_id": oidc.client_id,
            "client_secret": oidc.client_secret,
            "scopes": ["openid", "email", "profile"],
        },
    }


def oidc_argv(service_provider: Mapping[str, Any], port: int) -> list[str]:
    """The oidc suite's options, from the RP values our admin API shows back (the client
    secret goes by environment)."""
    return [
        "--oidc-login-url",
        service_provider["login_url"],
        "--oidc-redirect-uri",
        service_provider["redirect_uri"],
        "--oidc-op-port",
        str(port),
    ]


def saml_argv(service_provider: Mapping[str, Any], files: IdpFiles) -> list[str]:
    """The saml suite's options, from the SP values our admin API shows back."""
    return [
        "--saml-acs-url",
        service_provider["acs_url"],
        "--saml-sp-entity-id",
        service_provider["entity_id"],
        "--saml-idp-key",
        str(files.key),
        "--saml-idp-cert",
        str(files.cert),
    ]


def wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    """Poll ``/healthz`` until the server answers; fail early if it exited."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {url}/healthz within {STARTUP_SECONDS}s")


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main(argv: Sequence[str] | None = None) -> int:
    the_plan = plan(parse(argv), default_suites(suites()))
    admin_token = secrets.token_urlsafe(24)
    with (
        tempfile.TemporaryDirectory(prefix="scim-conformance-") as data_dir,
        tempfile.TemporaryDirectory(prefix="scim-conformance-idp-") as idp_dir,
    ):
        server = subprocess.Popen(
            the_plan.server_argv(data_dir), env=child_environment(server_secrets(admin_token))
        )
        try:
            wait_ready(the_plan.url, server)
            tenants = [
                admin(f"{the_plan.url}/admin/tenants", admin_token, "POST", {"name": name})
                for name in ("conformance-a", "conformance-b")
            ]
            admin(
                f"{the_plan.url}/admin/tenants/conformance-a/rate-limit",
                admin_token,
                "PUT",
                {"requests_per_second": RATE_LIMIT},
            )
            serve_entitlements(the_plan.url, admin_token, "conformance-a")
            idp, files = saml_target.write(Path(idp_dir), saml_target.shape("okta"))
            sso = admin(
                f"{the_plan.url}/admin/tenants/conformance-a/sso",
                admin_token,
                "PUT",
                sso_settings(idp),
            )
            wsfed = sso_tenant(the_plan.url, admin_token, WSFED_TENANT, wsfed_settings(idp))
            op = OidcTarget("", "", DEFAULT_CLIENT_ID, secrets.token_urlsafe(24), free_port())
            oidc = sso_tenant(the_plan.url, admin_token, OIDC_TENANT, oidc_settings(op))
            print(
                f"server {the_plan.url}, tenants conformance-a (SSO from "
                f"{idp.shape.entity_id}, {RATE_LIMIT} requests/s), conformance-b, "
                f"{WSFED_TENANT} (WS-Federation) and {OIDC_TENANT} (OpenID Connect)",
                f"{idp.shape.entity_id}, {RATE_LIMIT} requests/s, an entitlement app) and "
                "conformance-b",
                file=sys.stderr,
            )
            argv = the_plan.conformance_argv(
                tenants[0]["scim_base_url"],
                tenants[1]["scim_base_url"],
                [
                    *saml_argv(sso["service_provider"], files),
                    *wsfed_argv(wsfed["service_provider"]),
                    *oidc_argv(oidc["service_provider"], op.port),
                ],
            )
            handed = {
                **tenant_secrets(tenants[0]["token"], tenants[1]["token"], admin_token),
                OIDC_SECRET_VARIABLE: op.client_secret,
            }
            status = subprocess.run(
                [sys.executable, "-m", "conformance.cli", *argv],
                env=child_environment(handed),
                check=False,
            ).returncode
        finally:
            stop(server)
    print(f"reports: {the_plan.root / REPORT}.html (.xml, .json)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
