"""The server's admin API, for the suites that set up through it (``events``,
``cross-instance``): where the server's root is, and HTTP on its ``/admin``."""

from __future__ import annotations

from conformance.checks import Context, skip
from conformance.http import ScimHttp
from conformance.options import option


def server_root(context: Context) -> str:
    """Where the admin API and the sign-in pages are: ``--server-url``, else the base URL
    without its ``/scim/v2/{tenant}``."""
    configured = option(context, "server_url")
    if configured:
        return str(configured).rstrip("/")
    root, found, _ = context.http.base_url.partition("/scim/v2/")
    if not found:
        skip("the server's root is unknown: run with --server-url")
    return root.rstrip("/")


def admin_http(context: Context) -> ScimHttp:
    """HTTP on the admin API (``{root}/admin``), recording into the check's transcript; skip
    without an admin token."""
    token = option(context, "admin_token")
    if not token:
        skip("no admin token: run with --admin-token (or $SCIM_ADMIN_TOKEN)")
    http = context.http
    admin = f"{server_root(context)}/admin"
    return ScimHttp(http.session, admin, token, http.transcript, http.timeout)
