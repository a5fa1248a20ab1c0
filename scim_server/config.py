"""Server configuration: environment variables, overridden by ``scim-server serve`` flags."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from scim_server.logs import FORMATS as LOG_FORMATS

ENVIRONMENT = {
    "host": "SCIM_HOST",
    "port": "SCIM_PORT",
    "public_url": "SCIM_PUBLIC_URL",
    "mongodb_uri": "MONGODB_URI",
    "database": "SCIM_DATABASE",
    "data_dir": "SCIM_DATA_DIR",
    "store_restarts": "SCIM_STORE_RESTARTS",
    "admin_token": "SCIM_ADMIN_TOKEN",
    "token_secret": "SCIM_TOKEN_SECRET",
    "max_body_bytes": "SCIM_MAX_BODY_BYTES",
    "max_results": "SCIM_MAX_RESULTS",
    "bulk_max_operations": "SCIM_BULK_MAX_OPERATIONS",
    "bulk_max_payload_bytes": "SCIM_BULK_MAX_PAYLOAD_BYTES",
    "patch_max_operations": "SCIM_PATCH_MAX_OPERATIONS",
    "cursor_timeout_seconds": "SCIM_CURSOR_TIMEOUT_SECONDS",
    "group_patch_response": "SCIM_GROUP_PATCH_RESPONSE",
    "workers": "SCIM_WORKERS",
    "journal_enabled": "SCIM_JOURNAL",
    "journal_ttl_seconds": "SCIM_JOURNAL_TTL_SECONDS",
    "rate_limit_per_second": "SCIM_RATE_LIMIT_PER_SECOND",
    "log_level": "SCIM_LOG_LEVEL",
    "metrics_bind": "SCIM_METRICS_BIND",
    "log_format": "SCIM_LOG_FORMAT",
    "access_log": "SCIM_ACCESS_LOG",
    "tracing": "SCIM_TRACING",
    "one_team_server_wide": "SCIM_ONE_TEAM_SERVER_WIDE",
    "webhook_allow_private": "SCIM_WEBHOOK_ALLOW_PRIVATE",
    "webhook_retry_base_seconds": "SCIM_WEBHOOK_RETRY_BASE_SECONDS",
    "webhook_retry_cap_seconds": "SCIM_WEBHOOK_RETRY_CAP_SECONDS",
    "webhook_retry_horizon_seconds": "SCIM_WEBHOOK_RETRY_HORIZON_SECONDS",
    "webhook_timeout_seconds": "SCIM_WEBHOOK_TIMEOUT_SECONDS",
    "webhook_log_ttl_seconds": "SCIM_WEBHOOK_LOG_TTL_SECONDS",
}


@dataclass(frozen=True)
class Settings:
    """Everything the server reads at start-up. Unset secrets are generated and kept in MongoDB."""

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    """Base URL clients reach the server at, used for ``meta.location`` behind a proxy."""
    mongodb_uri: str | None = None
    """An existing MongoDB; when unset, the embedded SecantusDB is started."""
    database: str = "scim"
    data_dir: str = ".scim-data"
    store_restarts: int = 5
    """How many times in a row the embedded store is restarted after dying (after 0.5, 1, 2, 4,
    8 ... seconds) before the server gives up and exits 1. Behind an orchestrator that restarts
    the whole container, a small number hands the outage over to it sooner."""
    admin_token: str | None = None
    token_secret: str | None = None
    max_body_bytes: int = 1024 * 1024
    max_results: int = 200
    """``filter.maxResults``: the largest page a list or search answers."""
    bulk_max_operations: int = 1000
    """``bulk.maxOperations``: the most operations one Bulk request may carry (413 above)."""
    bulk_max_payload_bytes: int = 4 * 1024 * 1024
    """``bulk.maxPayloadSize``: the largest Bulk request body (413 above, refused unread)."""
    patch_max_operations: int = 1000
    """The most operations one PATCH may carry, Bulk ones included (400 above): twenty times
    the 50 member operations the OpenID IPSIE SCIM profile asks a server to take."""
    cursor_timeout_seconds: int = 600
    """How long an RFC 9865 cursor stays valid (``cursorTimeout``)."""
    group_patch_response: str = "no-content"
    """What a Group PATCH that names neither ``attributes`` nor ``excludedAttributes`` answers:
    ``no-content`` (204 and the new ETag, RFC 7644 §3.5.2; what Okta, Entra and JumpCloud
    accept) or ``resource`` (200 with the whole group, members included: time that grows
    with the group on every membership change). Naming either parameter always asks for 200
    with that projection."""
    workers: int = 1
    """Worker processes sharing the port (SO_REUSEPORT)."""
    journal_enabled: bool = True
    """Keep the per-tenant provisioning journal (``SCIM_JOURNAL=0`` turns it off)."""
    journal_ttl_seconds: int = 7 * 24 * 3600
    """How long a journal entry is kept (a TTL index on ``at``)."""
    rate_limit_per_second: int = 100
    """The SCIM requests a tenant may make per second unless it has a limit of its own; 0
    turns rate limiting off. Four times the 25 the OpenID IPSIE SCIM profile asks a server
    to sustain (see ``scim_server.core.rate_limits``)."""
    log_level: str = "INFO"
    metrics_bind: str | None = None
    """``host:port`` of a separate listener serving ``/metrics`` without a token (for a
    Prometheus inside the private network); unset, the main port serves it behind the admin
    token."""
    log_format: str | None = None
    """``json`` or ``text`` (``scim_server/logs.py``); unset: text on a terminal, else JSON."""
    access_log: bool = True
    """One log line per request (``SCIM_ACCESS_LOG=0`` turns it off; request ids stay)."""
    tracing: bool = False
    """OpenTelemetry spans for requests and database commands (the ``tracing`` extra)."""
    one_team_server_wide: bool = False
    """The one-team policy across every tenant of the server: a userName active in one tenant
    is refused (409) in every other (docs/cross-instance.md)."""
    webhook_allow_private: bool = False
    """Let webhooks reach private, loopback and link-local addresses (tests, local development)."""
    webhook_retry_base_seconds: float = 30.0
    """The wait after a webhook delivery's first failure; each further failure doubles it (up
    to ``webhook_retry_cap_seconds``), times a random factor from 0.5 to 1."""
    webhook_retry_cap_seconds: float = 3600.0
    webhook_retry_horizon_seconds: float = 24 * 3600.0
    """How long an event is retried before it is dead-lettered."""
    webhook_timeout_seconds: float = 10.0
    """The time limit of one delivery attempt."""
    webhook_log_ttl_seconds: int = 7 * 24 * 3600
    """How long the delivery log keeps an attempt (a TTL index on ``at``)."""

    def __post_init__(self) -> None:
        if self.group_patch_response not in ("resource", "no-content"):
            raise ValueError("group_patch_response is 'resource' or 'no-content'")
        if self.patch_max_operations <= 0:
            raise ValueError("patch_max_operations is a positive number of operations")
        if self.store_restarts < 0:
            raise ValueError("store_restarts is zero or a positive number of restarts")
        if self.journal_ttl_seconds <= 0:
            raise ValueError("journal_ttl_seconds is a positive number of seconds")
        if self.log_level.upper() not in logging.getLevelNamesMapping():
            raise ValueError(
                "the log level (SCIM_LOG_LEVEL, --log-level) is one of "
                f"CRITICAL, ERROR, WARNING, INFO, DEBUG, not {self.log_level!r}"
            )
        if self.log_format is not None and self.log_format not in LOG_FORMATS:
            raise ValueError(
                f"the log format (SCIM_LOG_FORMAT, --log-format) is {' or '.join(LOG_FORMATS)}, "
                f"not {self.log_format!r}"
            )
        if self.rate_limit_per_second < 0:
            raise ValueError("rate_limit_per_second is a number of requests, or 0 for no limit")
        if min(self.webhook_retry_base_seconds, self.webhook_timeout_seconds) <= 0:
            raise ValueError("the webhook retry base and timeout are positive numbers of seconds")
        if self.webhook_retry_cap_seconds < self.webhook_retry_base_seconds:
            raise ValueError("the webhook retry cap is at least its base")
        if self.webhook_retry_horizon_seconds < 0 or self.webhook_log_ttl_seconds <= 0:
            raise ValueError("the webhook retry horizon and log TTL are positive seconds")
        if self.metrics_bind is not None:
            self.metrics_address  # noqa: B018 (checked now: a bad address fails at start-up)

    @property
    def metrics_address(self) -> tuple[str, int]:
        """``metrics_bind`` as (host, port); a bracketed IPv6 host loses its brackets."""
        host, _, port = (self.metrics_bind or "").rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"metrics_bind is host:port, such as 127.0.0.1:9464: {self.metrics_bind!r}"
            )
        return host, int(port)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the environment, then apply the non-None ``overrides`` (the CLI flags)."""
        environ = os.environ if environ is None else environ
        types = {field.name: field.type for field in fields(cls)}
        values: dict[str, Any] = {}
        for name, variable in ENVIRONMENT.items():
            if variable in environ and environ[variable] != "":
                raw = environ[variable]
                if types[name] == "int":
                    values[name] = _integer(variable, raw)
                elif types[name] == "float":
                    values[name] = _number(variable, raw)
                elif types[name] == "bool":
                    values[name] = _boolean(variable, raw)
                else:
                    values[name] = raw
        values.update({key: value for key, value in overrides.items() if value is not None})
        return replace(cls(), **values)


def _integer(variable: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{variable} is a whole number, not {raw!r}") from None


def _number(variable: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{variable} is a number, not {raw!r}") from None


def _boolean(variable: str, raw: str) -> bool:
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{variable} is a boolean: 1/0, true/false, yes/no or on/off, not {raw!r}")
