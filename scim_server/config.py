"""Server configuration: environment variables, overridden by ``scim-server serve`` flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

ENVIRONMENT = {
    "host": "SCIM_HOST",
    "port": "SCIM_PORT",
    "public_url": "SCIM_PUBLIC_URL",
    "mongodb_uri": "MONGODB_URI",
    "database": "SCIM_DATABASE",
    "data_dir": "SCIM_DATA_DIR",
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
    group_patch_response: str = "resource"
    """What a Group PATCH answers: ``resource`` (200 with the group, members included) or
    ``no-content`` (204, which Okta and Entra accept): rendering a group of 100,000 members
    on every membership change costs what the change itself does not."""
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

    def __post_init__(self) -> None:
        if self.group_patch_response not in ("resource", "no-content"):
            raise ValueError("group_patch_response is 'resource' or 'no-content'")
        if self.patch_max_operations <= 0:
            raise ValueError("patch_max_operations is a positive number of operations")
        if self.journal_ttl_seconds <= 0:
            raise ValueError("journal_ttl_seconds is a positive number of seconds")
        if self.rate_limit_per_second < 0:
            raise ValueError("rate_limit_per_second is a number of requests, or 0 for no limit")

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
                    values[name] = int(raw)
                elif types[name] == "bool":
                    values[name] = _boolean(variable, raw)
                else:
                    values[name] = raw
        values.update({key: value for key, value in overrides.items() if value is not None})
        return replace(cls(), **values)


def _boolean(variable: str, raw: str) -> bool:
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{variable} is a boolean: 1/0, true/false, yes/no or on/off")
