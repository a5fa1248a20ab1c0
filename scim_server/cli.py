"""The ``scim-server`` command: run the server, and administer tenants on a running one."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scim_server.config import Settings
from scim_server.logs import FORMATS as LOG_FORMATS
from toolkit_cli import quiet_on_closed_pipe

DEFAULT_URL = "http://127.0.0.1:8080"


def _serve(args: argparse.Namespace) -> int:
    from scim_server.embedded import EmbeddedStoreError
    from scim_server.server import serve
    from scim_server.tracing import TracingUnavailable

    try:
        settings = _settings(args)
    except ValueError as error:  # a setting out of its range: one line, as argparse would
        print(f"scim-server: {error}", file=sys.stderr)
        return 2
    try:
        serve(settings)
    except (EmbeddedStoreError, TracingUnavailable) as error:
        print(f"scim-server: {error}", file=sys.stderr)
        return 1
    return 0


def _settings(args: argparse.Namespace) -> Settings:
    """The environment's settings, overridden by the flags given."""
    return Settings.from_env(
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        mongodb_uri=args.mongodb_uri,
        database=args.database,
        data_dir=args.data_dir,
        store_restarts=args.store_restarts,
        admin_token=args.admin_token,
        token_secret=args.token_secret,
        max_body_bytes=args.max_body_bytes,
        max_results=args.max_results,
        bulk_max_operations=args.bulk_max_operations,
        bulk_max_payload_bytes=args.bulk_max_payload_bytes,
        patch_max_operations=args.patch_max_operations,
        cursor_timeout_seconds=args.cursor_timeout_seconds,
        workers=args.workers,
        group_patch_response=args.group_patch_response,
        journal_enabled=args.journal,
        journal_ttl_seconds=args.journal_ttl_seconds,
        rate_limit_per_second=args.rate_limit,
        log_level=args.log_level,
        metrics_bind=args.metrics_bind,
        log_format=args.log_format,
        access_log=args.access_log,
        tracing=args.tracing,
        one_team_server_wide=args.one_team_server_wide,
        webhook_allow_private=args.webhook_allow_private,
        webhook_retry_base_seconds=args.webhook_retry_base_seconds,
        webhook_retry_cap_seconds=args.webhook_retry_cap_seconds,
        webhook_retry_horizon_seconds=args.webhook_retry_horizon_seconds,
        webhook_timeout_seconds=args.webhook_timeout_seconds,
        webhook_log_ttl_seconds=args.webhook_log_ttl_seconds,
    )


class AdminClient:
    """The admin HTTP API of a running server, for the CLI's tenant and token commands."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        return self.send(method, path, data, "application/json")

    def send(self, method: str, path: str, data: bytes | None, content_type: str) -> Any:
        """A request whose body is a file as it is (a certificate, a metadata document)."""
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise SystemExit(f"error {error.code}: {detail}") from None
        except urllib.error.URLError as error:
            raise SystemExit(f"cannot reach {self.url}: {error.reason}") from None
        return json.loads(raw) if raw else None


def _admin(args: argparse.Namespace) -> AdminClient:
    token = args.admin_token or os.environ.get("SCIM_ADMIN_TOKEN")
    if not token:
        raise SystemExit("pass --admin-token or set SCIM_ADMIN_TOKEN")
    return AdminClient(args.url, token)


def _print(value: Any) -> int:
    if value is not None:
        print(json.dumps(value, indent=2))
    return 0


def _tenant_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    if args.action == "create":
        return _print(client.call("POST", "/admin/tenants", {"name": args.tenant}))
    if args.action == "list":
        return _print(client.call("GET", "/admin/tenants"))
    client.call("DELETE", f"/admin/tenants/{args.tenant}")
    print(f"deleted tenant {args.tenant} and all its data")
    return 0


def _token_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    base = f"/admin/tenants/{args.tenant}/tokens"
    if args.action == "issue":
        body: dict[str, Any] = {}
        if args.ttl_seconds:
            body["ttl_seconds"] = args.ttl_seconds
        return _print(client.call("POST", base, body))
    if args.action == "list":
        return _print(client.call("GET", base))
    client.call("DELETE", f"{base}/{args.token_id}")
    print(f"revoked token {args.token_id} of tenant {args.tenant}")
    return 0


def _seat_limit(text: str) -> int | None:
    """A seat count, or ``unlimited``."""
    if text == "unlimited":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a number of seats, or 'unlimited'") from None


def _seats_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    base = f"/admin/tenants/{args.tenant}/seats"
    if args.action == "get":
        return _print(client.call("GET", base))
    if args.action == "set":
        return _print(client.call("PUT", base, {"seats": args.seats}))
    return _print(client.call("POST", f"{base}/recount"))


def _rate_limit_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    base = f"/admin/tenants/{args.tenant}/rate-limit"
    if args.action == "get":
        return _print(client.call("GET", base))
    if args.action == "set":
        return _print(client.call("PUT", base, {"requests_per_second": args.requests_per_second}))
    return _print(client.call("DELETE", base))


def _instance_group_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    base = "/admin/instance-groups"
    if args.action == "list":
        return _print(client.call("GET", base))
    if args.action == "show":
        return _print(client.call("GET", f"{base}/{args.group}"))
    if args.action == "delete":
        client.call("DELETE", f"{base}/{args.group}")
        print(f"deleted instance group {args.group}")
        return 0
    body: dict[str, Any] = {}
    if args.action == "create":
        body = {"name": args.group, "primary": args.primary, "domain": args.domain}
    if args.tenant is not None:
        body["tenants"] = args.tenant
    if args.admin_role is not None:
        body["admin_role"] = args.admin_role
    if args.one_team is not None:
        body["one_team"] = args.one_team
    if args.action == "create":
        return _print(client.call("POST", base, body))
    return _print(client.call("PATCH", f"{base}/{args.group}", body))


def _resources_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    tenant = f"/admin/tenants/{args.tenant}"
    if args.action == "types":
        if args.set is None:
            return _print(client.call("GET", f"{tenant}/resource-types"))
        return _print(client.call("PUT", f"{tenant}/resource-types", {"resource_types": args.set}))
    base = f"{tenant}/resources/{args.type}"
    if args.action == "load":
        loaded = _parsed(_read_file(args.file).decode(errors="replace"), "the resources")
        # The file holds the resources, or a ListResponse-like {"Resources": [...]}.
        resources = loaded.get("Resources") if isinstance(loaded, dict) else loaded
        answer = client.call("POST", base, {"Resources": resources})
        print(f"loaded {answer['loaded']} {args.type} into tenant {args.tenant}")
        return 0
    client.call("DELETE", f"{base}/{args.id}")
    print(f"removed {args.type}/{args.id} of tenant {args.tenant}")
    return 0


def _user_extensions_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    base = f"/admin/tenants/{args.tenant}/user-extensions"
    if args.action == "list":
        return _print(client.call("GET", base))
    path = f"{base}/{urllib.parse.quote(args.urn, safe=':')}"
    if args.action == "show":
        return _print(client.call("GET", path))
    if args.action == "set":
        schema = _parsed(_read_file(args.file).decode(errors="replace"), "the extension's schema")
        return _print(client.call("PUT", path, schema))
    client.call("DELETE", path)
    print(f"removed the User extension {args.urn} of tenant {args.tenant}")
    return 0


def _with_query(path: str, **parameters: Any) -> str:
    """``path`` with the parameters that are set (not None) as its query."""
    query = {key: value for key, value in parameters.items() if value is not None}
    return f"{path}?{urllib.parse.urlencode(query)}" if query else path


def _journal_command(args: argparse.Namespace) -> int:
    path = _with_query(
        f"/admin/tenants/{args.tenant}/journal",
        limit=args.limit,
        since=args.since,
        method=args.method,
        status=args.status,
    )
    return _print(_admin(args).call("GET", path))


def _sessions_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    base = f"/admin/tenants/{args.tenant}/sessions"
    if args.action == "list":
        return _print(client.call("GET", _with_query(base, user_id=args.user_id, limit=args.limit)))
    if args.session_id is not None:
        client.call("DELETE", f"{base}/{urllib.parse.quote(args.session_id, safe='')}")
        print(f"revoked session {args.session_id} of tenant {args.tenant}")
        return 0
    revoked = client.call("DELETE", _with_query(base, user_id=args.user_id))["revoked"]
    plural = "" if revoked == 1 else "s"
    print(f"revoked {revoked} session{plural} of user {args.user_id} in tenant {args.tenant}")
    return 0


TAIL_POLL_SECONDS = 0.5
"""How often ``events tail`` asks for new events when the last answer had none."""


def _events_command(args: argparse.Namespace) -> int:
    """Follow a tenant's provisioning events: one JSON line each, until interrupted."""
    client = _admin(args)
    base = f"/admin/tenants/{urllib.parse.quote(args.tenant, safe='')}/events"
    following = args.from_sequence
    if following is None:  # the current end: only events to come
        following = client.call("GET", base)["next_sequence"]
    print(f"events of {args.tenant} from sequence {following}:", file=sys.stderr, flush=True)
    try:
        while True:
            page = client.call("GET", _with_query(base, from_sequence=following, limit=1000))
            for event in page["events"]:
                print(json.dumps(event), flush=True)
            following = page["next_sequence"]
            if not page["events"]:
                time.sleep(TAIL_POLL_SECONDS)
    except KeyboardInterrupt:
        return 0


DELIVERY_ACTIONS = ("deliveries", "dead-letters", "redeliver")
"""The actions on an endpoint's deliveries, the same for a webhook and an SSF push stream."""


def _delivery_actions(action: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The ``DELIVERY_ACTIONS``, each made by ``action(name, help)`` (which names the
    endpoint)."""
    action("deliveries", "the delivery log, newest first").add_argument(
        "--limit", type=int, help="most attempts (default 100, at most 1000)"
    )
    action("dead-letters", "the events given up on after the retry horizon")
    action("redeliver", "one attempt now at dead letters").add_argument(
        "event_ids", nargs="*", help="the events' ids (default: every dead letter)"
    )


def _delivery_command(client: AdminClient, item: str, args: argparse.Namespace) -> int:
    """One of the ``DELIVERY_ACTIONS`` on the endpoint whose admin path is ``item``."""
    if args.action == "deliveries":
        return _print(client.call("GET", _with_query(f"{item}/deliveries", limit=args.limit)))
    if args.action == "dead-letters":
        return _print(client.call("GET", f"{item}/dead-letters"))
    body = {"event_ids": args.event_ids} if args.event_ids else {}
    return _print(client.call("POST", f"{item}/dead-letters/redeliver", body))


def _ssf_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    base = f"/admin/tenants/{args.tenant}/ssf"
    if args.action == "streams":
        return _print(client.call("GET", f"{base}/streams"))
    if args.action in DELIVERY_ACTIONS:
        stream = f"{base}/streams/{urllib.parse.quote(args.stream_id, safe='')}"
        return _delivery_command(client, stream, args)
    if args.receiver_action == "issue":
        body = {} if args.description is None else {"description": args.description}
        return _print(client.call("POST", f"{base}/receivers", body))
    if args.receiver_action == "list":
        return _print(client.call("GET", f"{base}/receivers"))
    client.call("DELETE", f"{base}/receivers/{urllib.parse.quote(args.token_id, safe='')}")
    print(f"revoked SSF receiver token {args.token_id} of tenant {args.tenant}")
    return 0


def _webhook_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The fields ``webhooks create`` or ``update`` sets: ``--events all`` is every type."""
    body: dict[str, Any] = {}
    if args.webhook_url is not None:
        body["url"] = args.webhook_url
    if args.events is not None:
        body["events"] = None if args.events == ["all"] else args.events
    if getattr(args, "enabled", None) is not None:
        body["enabled"] = args.enabled
    return body


def _webhooks_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    base = f"/admin/tenants/{urllib.parse.quote(args.tenant, safe='')}/webhooks"
    if args.action == "create":
        return _print(client.call("POST", base, _webhook_changes(args)))
    if args.action == "list":
        return _print(client.call("GET", base))
    item = f"{base}/{urllib.parse.quote(args.webhook_id, safe='')}"
    if args.action == "show":
        return _print(client.call("GET", item))
    if args.action == "update":
        return _print(client.call("PATCH", item, _webhook_changes(args)))
    if args.action == "delete":
        client.call("DELETE", item)
        print(f"deleted webhook {args.webhook_id} of tenant {args.tenant}")
        return 0
    if args.action == "rotate-secret":
        body = {} if args.grace_seconds is None else {"grace_seconds": args.grace_seconds}
        return _print(client.call("POST", f"{item}/rotate-secret", body))
    if args.action in DELIVERY_ACTIONS:
        return _delivery_command(client, item, args)
    since = {"from_sequence": args.from_sequence, "since": args.since}
    return _print(
        client.call("POST", f"{item}/replay", {k: v for k, v in since.items() if v is not None})
    )


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise SystemExit(f"cannot read {path}: {error.strerror}") from None


def _parsed(text: str, what: str) -> Any:
    """A JSON document, or the CLI's one-line error naming ``what`` it should have been."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise SystemExit(f"{what} are not valid JSON: {error}") from None


def _settings_changes(args: argparse.Namespace) -> Any:
    text = args.json if args.json is not None else _read_file(args.file).decode(errors="replace")
    return _parsed(text, "the settings")


def _sso_command(args: argparse.Namespace) -> int:
    client = _admin(args)
    base = f"/admin/tenants/{args.tenant}/sso"
    if args.action == "show":
        return _print(client.call("GET", base))
    if args.action == "set":
        return _print(client.call("PATCH", base, _settings_changes(args)))
    if args.action == "import-metadata":
        if args.metadata_url is not None:
            return _print(client.call("POST", f"{base}/metadata", {"url": args.metadata_url}))
        return _print(
            client.send(
                "POST", f"{base}/metadata", _read_file(args.file), "application/samlmetadata+xml"
            )
        )
    if args.action == "add-cert":
        data = _read_file(args.file)
        pem = b"-----BEGIN" in data
        return _print(
            client.send(
                "POST",
                f"{base}/certificates",
                data,
                "application/x-pem-file" if pem else "application/pkix-cert",
            )
        )
    if args.action == "remove-cert":
        fingerprint = urllib.parse.quote(args.fingerprint, safe=":")
        return _print(client.call("DELETE", f"{base}/certificates/{fingerprint}"))
    if args.action == "log":
        return _print(client.call("GET", _with_query(f"{base}/log", limit=args.limit)))
    if args.action == "reset-link":
        user = urllib.parse.quote(args.user, safe="")
        body = {} if args.ttl_seconds is None else {"ttl_seconds": args.ttl_seconds}
        path = f"/admin/tenants/{args.tenant}/users/{user}/password-reset"
        return _print(client.call("POST", path, body))
    print(client.call("POST", f"{base}/test")["url"])
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scim-server", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the SCIM server")
    serve.add_argument("--host", help="bind address (SCIM_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (SCIM_PORT, default 8080)")
    serve.add_argument(
        "--public-url", help="base URL clients use, for meta.location (SCIM_PUBLIC_URL)"
    )
    serve.add_argument(
        "--mongodb-uri", help="use this MongoDB instead of the embedded store (MONGODB_URI)"
    )
    serve.add_argument("--database", help="database name (SCIM_DATABASE, default scim)")
    serve.add_argument(
        "--data-dir", help="embedded store directory (SCIM_DATA_DIR, default ./.scim-data)"
    )
    serve.add_argument(
        "--store-restarts",
        type=int,
        help="restarts in a row of an embedded store that died before the server exits 1 "
        "(SCIM_STORE_RESTARTS, default 5)",
    )
    serve.add_argument(
        "--admin-token",
        help="admin API token (SCIM_ADMIN_TOKEN; generated and kept in the database when unset)",
    )
    serve.add_argument("--token-secret", help="bearer-token signing secret (SCIM_TOKEN_SECRET)")
    serve.add_argument(
        "--max-body-bytes", type=int, help="request body limit (SCIM_MAX_BODY_BYTES, default 1 MiB)"
    )
    serve.add_argument(
        "--max-results", type=int, help="largest page (SCIM_MAX_RESULTS, default 200)"
    )
    serve.add_argument(
        "--bulk-max-operations",
        type=int,
        help="most operations in one Bulk request (SCIM_BULK_MAX_OPERATIONS, default 1000)",
    )
    serve.add_argument(
        "--bulk-max-payload-bytes",
        type=int,
        help="largest Bulk request body (SCIM_BULK_MAX_PAYLOAD_BYTES, default 4 MiB)",
    )
    serve.add_argument(
        "--patch-max-operations",
        type=int,
        help="most operations in one PATCH (SCIM_PATCH_MAX_OPERATIONS, default 1000)",
    )
    serve.add_argument(
        "--cursor-timeout-seconds",
        type=int,
        help="RFC 9865 cursor lifetime (SCIM_CURSOR_TIMEOUT_SECONDS, default 600)",
    )
    serve.add_argument(
        "--group-patch-response",
        choices=("resource", "no-content"),
        help="what a Group PATCH with no attributes/excludedAttributes answers: 204, or 200 "
        "with the whole group (SCIM_GROUP_PATCH_RESPONSE, default no-content)",
    )
    serve.add_argument(
        "--workers", type=int, help="worker processes on the same port (SCIM_WORKERS, default 1)"
    )
    serve.add_argument(
        "--no-journal",
        dest="journal",
        action="store_const",
        const=False,
        help="keep no provisioning journal (SCIM_JOURNAL=0)",
    )
    serve.add_argument(
        "--journal-ttl-seconds",
        type=int,
        help="how long journal entries are kept (SCIM_JOURNAL_TTL_SECONDS, default 604800: 7 days)",
    )
    serve.add_argument(
        "--rate-limit",
        type=int,
        help="SCIM requests per second a tenant may make unless it has its own limit; 0: no "
        "limit (SCIM_RATE_LIMIT_PER_SECOND, default 100)",
    )
    serve.add_argument("--log-level", help="log level (SCIM_LOG_LEVEL, default INFO)")
    serve.add_argument(
        "--metrics-bind",
        help="host:port of a separate listener serving /metrics without a token, such as "
        "127.0.0.1:9464 (SCIM_METRICS_BIND; unset, the main port serves it behind the admin "
        "token)",
    )
    serve.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="log lines as JSON or as text (SCIM_LOG_FORMAT; default: text on a terminal, "
        "else JSON)",
    )
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_const",
        const=False,
        help="log no line per request (SCIM_ACCESS_LOG=0)",
    )
    serve.add_argument(
        "--tracing",
        action="store_const",
        const=True,
        help="OpenTelemetry spans for requests and database commands, exported as the OTEL_* "
        "variables say (SCIM_TRACING=1; needs the tracing extra)",
    )
    serve.add_argument(
        "--one-team-server-wide",
        action="store_const",
        const=True,
        help="refuse (409) a userName active in another tenant of the server "
        "(SCIM_ONE_TEAM_SERVER_WIDE=1; default: off, or per instance group)",
    )
    serve.add_argument(
        "--webhook-allow-private",
        action="store_const",
        const=True,
        help="let webhooks reach private, loopback and link-local addresses, for tests and local "
        "development (SCIM_WEBHOOK_ALLOW_PRIVATE=1; refused by default)",
    )
    serve.add_argument(
        "--webhook-retry-base-seconds",
        type=float,
        help="wait after a delivery's first failure, doubled at each further one, with jitter "
        "(SCIM_WEBHOOK_RETRY_BASE_SECONDS, default 30)",
    )
    serve.add_argument(
        "--webhook-retry-cap-seconds",
        type=float,
        help="longest wait between two attempts (SCIM_WEBHOOK_RETRY_CAP_SECONDS, default 3600)",
    )
    serve.add_argument(
        "--webhook-retry-horizon-seconds",
        type=float,
        help="how long an event is retried before it is dead-lettered "
        "(SCIM_WEBHOOK_RETRY_HORIZON_SECONDS, default 86400: a day)",
    )
    serve.add_argument(
        "--webhook-timeout-seconds",
        type=float,
        help="time limit of one delivery attempt (SCIM_WEBHOOK_TIMEOUT_SECONDS, default 10)",
    )
    serve.add_argument(
        "--webhook-log-ttl-seconds",
        type=int,
        help="how long the delivery log keeps an attempt (SCIM_WEBHOOK_LOG_TTL_SECONDS, default "
        "604800: 7 days)",
    )
    serve.set_defaults(handler=_serve)

    def admin_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--url",
            default=os.environ.get("SCIM_URL", DEFAULT_URL),
            help=f"server URL (SCIM_URL, default {DEFAULT_URL})",
        )
        command.add_argument("--admin-token", help="admin token (SCIM_ADMIN_TOKEN)")

    def tenant_action(
        actions: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        help: str,
        tenant: str = "the tenant's name",
    ) -> argparse.ArgumentParser:
        """An admin action on one tenant, named by its first argument."""
        command = actions.add_parser(name, help=help)
        command.add_argument("tenant", help=tenant)
        admin_options(command)
        return command

    tenants = commands.add_parser("tenants", help="create, list or delete tenants")
    tenant_actions = tenants.add_subparsers(dest="action", required=True)
    tenant_action(
        tenant_actions,
        "create",
        help="create a tenant; prints its SCIM base URL, first token and token_id",
        tenant="the new tenant's name: its SCIM base URL is /scim/v2/NAME",
    )
    admin_options(
        tenant_actions.add_parser("list", help="every tenant, with its SCIM base URL and seats")
    )
    tenant_action(tenant_actions, "delete", help="delete a tenant and all its data")
    tenants.set_defaults(handler=_tenant_command)

    tokens = commands.add_parser("tokens", help="issue, list or revoke a tenant's tokens")
    token_actions = tokens.add_subparsers(dest="action", required=True)
    tenant_action(
        token_actions, "issue", help="issue another SCIM bearer token; prints it and its token_id"
    ).add_argument(
        "--ttl-seconds",
        type=int,
        help="the token expires after this many seconds (default: never)",
    )
    tenant_action(token_actions, "list", help="the tenant's tokens, by token_id, never the secrets")
    tenant_action(
        token_actions, "revoke", help="revoke a token; the server refuses it within 5 seconds"
    ).add_argument("token_id", help="the token's token_id, as issue or list prints it")
    tokens.set_defaults(handler=_token_command)

    seats = commands.add_parser("seats", help="get or set a tenant's seats, or recount them")
    seat_actions = seats.add_subparsers(dest="action", required=True)
    tenant_action(
        seat_actions, "get", help="the seat limit and its use: seats, used, available, over"
    )
    tenant_action(
        seat_actions, "set", help="set the seat limit (below the seats in use is allowed)"
    ).add_argument("seats", type=_seat_limit, help="how many users may be active, or 'unlimited'")
    tenant_action(
        seat_actions, "recount", help="count the active users again, and correct the seats used"
    )
    seats.set_defaults(handler=_seats_command)

    rate_limit = commands.add_parser(
        "rate-limit", help="get or set a tenant's rate limit, or return it to the default"
    )
    rate_limit_actions = rate_limit.add_subparsers(dest="action", required=True)
    tenant_action(
        rate_limit_actions,
        "get",
        help="the SCIM requests per second the tenant may make, and whether that is the default",
    )
    tenant_action(
        rate_limit_actions, "set", help="give the tenant its own limit (applies within a second)"
    ).add_argument(
        "requests_per_second", type=int, help="SCIM requests per second, from 1 to 1000000"
    )
    tenant_action(
        rate_limit_actions, "clear", help="return the tenant to the server's default limit"
    )
    rate_limit.set_defaults(handler=_rate_limit_command)

    groups = commands.add_parser(
        "instance-groups",
        help="link tenants for cross-instance sign-in, and the one-team policy",
    )
    group_actions = groups.add_subparsers(dest="action", required=True)

    def group_action(name: str, help: str) -> argparse.ArgumentParser:
        command = group_actions.add_parser(name, help=help)
        command.add_argument("group", help="the instance group's name")
        admin_options(command)
        return command

    def group_settings(command: argparse.ArgumentParser, verb: str) -> None:
        command.add_argument(
            "--tenant",
            action="append",
            help=f"a member tenant beside the primary (repeat it); {verb} the list",
        )
        command.add_argument(
            "--admin-role",
            help="the SCIM roles value that makes a login an administrator (default: admin)",
        )
        command.add_argument(
            "--one-team",
            action=argparse.BooleanOptionalAction,
            help="refuse a userName active in another tenant of the group (default: off)",
        )

    create = group_action("create", help="create an instance group; prints it")
    create.add_argument("--primary", required=True, help="the primary tenant: the root logins'")
    create.add_argument("--domain", required=True, help="the logins' email domain: acme.com")
    group_settings(create, "sets")
    group_settings(group_action("set", help="change a group; prints it"), "replaces")
    group_action("show", help="one instance group")
    admin_options(group_actions.add_parser("list", help="every instance group"))
    group_action("delete", help="delete an instance group (its tenants stay)")
    groups.set_defaults(handler=_instance_group_command)
    resources = commands.add_parser(
        "resources",
        help="a tenant's custom resource types (Roles, Entitlements, Licenses) and their resources",
    )
    resource_actions = resources.add_subparsers(dest="action", required=True)

    def resource_action(name: str, help: str) -> argparse.ArgumentParser:
        command = resource_actions.add_parser(name, help=help)
        command.add_argument("--tenant", required=True, help="the tenant's name")
        admin_options(command)
        return command

    resource_action(
        "types", help="the custom resource types the tenant serves, or set them with --set"
    ).add_argument(
        "--set",
        nargs="*",
        metavar="NAME",
        help="serve exactly these types (Role, Entitlement, License; none: serve none)",
    )
    endpoint_help = "the type's endpoint: Roles, Entitlements or Licenses"
    load = resource_action(
        "load", help="load resources of one type; each replaces the one of its externalId"
    )
    load.add_argument("--type", required=True, help=endpoint_help)
    load.add_argument("file", help='a JSON file: a list of resources, or {"Resources": [...]}')
    remove = resource_action("remove", help="remove one resource")
    remove.add_argument("--type", required=True, help=endpoint_help)
    remove.add_argument("id", help="the resource's id")
    resources.set_defaults(handler=_resources_command)

    extensions = commands.add_parser(
        "user-extensions",
        help="a tenant's own User extensions: their RFC 7643 schemas, set, shown or removed",
    )
    extension_actions = extensions.add_subparsers(dest="action", required=True)

    def extension_action(name: str, help: str, *, urn: bool = True) -> argparse.ArgumentParser:
        command = extension_actions.add_parser(name, help=help)
        command.add_argument("--tenant", required=True, help="the tenant's name")
        if urn:
            command.add_argument("urn", help="the extension's schema URN")
        admin_options(command)
        return command

    extension_action("list", help="the tenant's User extensions", urn=False)
    extension_action("show", help="one User extension")
    extension_action(
        "set", help="define a User extension, or redefine it; prints it as stored"
    ).add_argument("file", help="a JSON file: the extension's schema (name, attributes, ...)")
    extension_action("remove", help="remove a User extension (no user may hold values of it)")
    extensions.set_defaults(handler=_user_extensions_command)

    journal = commands.add_parser("journal", help="a tenant's provisioning journal, newest first")
    journal.add_argument("tenant", help="the tenant's name")
    journal.add_argument("--limit", type=int, help="most entries (default 100, at most 1000)")
    journal.add_argument("--since", help="only entries at or after this ISO 8601 time")
    journal.add_argument("--method", help="only this HTTP method")
    journal.add_argument("--status", type=int, help="only this HTTP status")
    admin_options(journal)
    journal.set_defaults(handler=_journal_command)

    sessions = commands.add_parser(
        "sessions", help="list a tenant's single sign-on sessions, or end them"
    )
    session_actions = sessions.add_subparsers(dest="action", required=True)
    listing = tenant_action(
        session_actions, "list", help="the sessions that would be accepted now, newest first"
    )
    listing.add_argument("--user-id", help="only this user's sessions (the SCIM user id)")
    listing.add_argument("--limit", type=int, help="most sessions (default 100, at most 1000)")
    revoke = tenant_action(
        session_actions, "revoke", help="end one session, or all of a user's, at once"
    )
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("session_id", nargs="?", help="the session's session_id, as list prints it")
    which.add_argument("--user-id", help="end every session of this user (the SCIM user id)")
    sessions.set_defaults(handler=_sessions_command)

    events = commands.add_parser("events", help="a tenant's provisioning events")
    event_actions = events.add_subparsers(dest="action", required=True)
    tail = event_actions.add_parser(
        "tail", help="print the tenant's events as they come, one JSON object a line"
    )
    tail.add_argument("--tenant", required=True, help="the tenant's name")
    tail.add_argument(
        "--from-sequence",
        type=int,
        help="start at this sequence number (default: the current end, only new events)",
    )
    admin_options(tail)
    events.set_defaults(handler=_events_command)

    ssf = commands.add_parser(
        "ssf",
        help="a tenant's Shared Signals transmitter: receiver tokens, streams, push deliveries",
    )
    ssf_actions = ssf.add_subparsers(dest="action", required=True)
    receivers = ssf_actions.add_parser(
        "receivers", help="issue, list or revoke the tokens SSF receivers authenticate with"
    )
    receiver_actions = receivers.add_subparsers(dest="receiver_action", required=True)
    tenant_action(
        receiver_actions, "issue", help="issue a receiver token; prints it (once) and its token_id"
    ).add_argument("--description", help="whom the token is for (default: none)")
    tenant_action(receiver_actions, "list", help="the receiver tokens, never their secrets")
    tenant_action(
        receiver_actions, "revoke", help="revoke a receiver token; refused from the next request"
    ).add_argument("token_id", help="the token's token_id, as issue or list prints it")
    tenant_action(
        ssf_actions, "streams", help="the tenant's streams: configuration, status, position"
    )

    def push_stream_action(name: str, help: str) -> argparse.ArgumentParser:
        command = tenant_action(ssf_actions, name, help=f"{help} (a push stream's)")
        command.add_argument("stream_id", help="the push stream's id, as streams prints it")
        return command

    _delivery_actions(push_stream_action)
    ssf.set_defaults(handler=_ssf_command)
    webhooks = commands.add_parser(
        "webhooks", help="a tenant's webhooks: endpoints that receive its events, signed"
    )
    webhook_actions = webhooks.add_subparsers(dest="action", required=True)

    def webhook_action(name: str, help: str, one: bool = True) -> argparse.ArgumentParser:
        command = webhook_actions.add_parser(name, help=help)
        command.add_argument("--tenant", required=True, help="the tenant's name")
        if one:
            command.add_argument("webhook_id", help="the webhook's id, as create or list prints it")
        admin_options(command)
        return command

    def target_options(command: argparse.ArgumentParser, url_required: bool) -> None:
        # --url is already the server's own URL, as for every admin command.
        command.add_argument("--webhook-url", required=url_required, help="the receiver's URL")
        command.add_argument(
            "--events",
            nargs="+",
            help="the event types to deliver, such as user.created group.members_added, or "
            "'all' (default on create: all)",
        )

    target_options(
        webhook_action(
            "create",
            help="register an endpoint; prints its id and its secret (shown only now)",
            one=False,
        ),
        url_required=True,
    )
    webhook_action("list", help="the tenant's webhooks (never their secrets)", one=False)
    webhook_action("show", help="one webhook, with where its delivery stands")
    update = webhook_action("update", help="change a webhook's URL, events or state")
    target_options(update, url_required=False)
    state = update.add_mutually_exclusive_group()
    state.add_argument(
        "--enable", dest="enabled", action="store_const", const=True, help="deliver again"
    )
    state.add_argument(
        "--disable", dest="enabled", action="store_const", const=False, help="stop delivering"
    )
    webhook_action("delete", help="delete a webhook, its delivery log and dead letters")
    webhook_action(
        "rotate-secret", help="a new secret; the previous one signs too during the grace"
    ).add_argument(
        "--grace-seconds", type=int, help="how long the previous secret signs (default 86400)"
    )
    _delivery_actions(lambda name, help: webhook_action(name, help=help))
    replay = webhook_action("replay", help="deliver every event again from a number or a time")
    start = replay.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-sequence", type=int, help="from this sequence number")
    start.add_argument("--since", help="from this ISO 8601 time")
    webhooks.set_defaults(handler=_webhooks_command)

    sso = commands.add_parser(
        "sso", help="a tenant's single sign-on (SAML, OpenID Connect or WS-Federation)"
    )
    sso_actions = sso.add_subparsers(dest="action", required=True)

    def sso_action(name: str, help: str) -> argparse.ArgumentParser:
        command = sso_actions.add_parser(name, help=help)
        command.add_argument("--tenant", required=True, help="the tenant's name")
        admin_options(command)
        return command

    sso_action("show", help="the settings, and the SP values to enter in the IdP")
    changes = sso_action("set", help="change settings (a JSON merge-patch of what show prints)")
    source = changes.add_mutually_exclusive_group(required=True)
    source.add_argument("--json", help="the changes as inline JSON")
    source.add_argument("--file", help="a file holding the changes as JSON")
    metadata = sso_action(
        "import-metadata",
        help="take the IdP's entity ID, sign-in URL and certificates from its metadata "
        "(WS-Federation metadata when the tenant's protocol is wsfed)",
    )
    origin = metadata.add_mutually_exclusive_group(required=True)
    origin.add_argument("--file", help="the metadata XML file")
    # --url is already the server's own URL, as for every admin command.
    origin.add_argument("--metadata-url", help="the metadata URL (the server fetches it)")
    sso_action(
        "add-cert", help="pin an IdP signing certificate; two are kept for rollover"
    ).add_argument("--file", required=True, help="the certificate, PEM or DER")
    sso_action("remove-cert", help="unpin an IdP certificate").add_argument(
        "fingerprint", help="its SHA-256 fingerprint, as show prints it"
    )
    sso_action(
        "log", help="recent sign-in attempts, newest first, with their outcome"
    ).add_argument("--limit", type=int, help="most entries (default 100, at most 1000)")
    sso_action("test-url", help="a link that starts a test sign-in (valid for ten minutes)")
    reset = sso_action(
        "reset-link",
        help="a one-time link for a user to set a password (refused while SSO is enforced, "
        "but for guests); give it to the user only",
    )
    reset.add_argument("--user", required=True, help="the user's SCIM id")
    reset.add_argument(
        "--ttl-seconds", type=int, help="how long the link works: 60 to 3600 (default 900)"
    )
    sso.set_defaults(handler=_sso_command)
    return parser


@quiet_on_closed_pipe
def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
