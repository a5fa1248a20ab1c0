"""The server's Prometheus metrics: every series it exposes is declared here, and only here.

A shared leaf module, like ``models.py``: the web middleware, the core (journal, sign-ins),
storage (database commands) and the store supervisor all count into it, and it imports
nothing of the server, so any layer may import it without crossing another.

One way of counting serves one process and N workers alike. ``scim-server serve`` calls
``shared_across_processes`` before it starts anything: each process (the one supervising the
embedded store, and every worker it spawns) then keeps its values in files of a private
temporary directory (prometheus-client's multiprocess mode), and ``exposition`` reads and
adds up all of them, so a scrape answers the same totals whichever worker takes it. An
application built in-process (the tests) counts in prometheus-client's default registry.

Every series has labels, so no value exists before its first use: the switch to files, made
once the process is running, reaches every value counted. A gauge, should one be added, needs
labels too, and a live ``multiprocess_mode`` (``livesum``) if exited workers must not count.

A request's own figures (the tenant it was proven to be for, the database commands it
started) are kept in a ``RequestTally`` that ``tallying`` puts in a context variable for the
time of the request. asyncio tasks copy context variables, so the tally is one mutable
object that the request's child tasks and threads count into as well.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections import Counter as Tally
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROCESS_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"
"""Where prometheus-client's multiprocess mode keeps each process's values (its own name)."""

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The media type of what ``exposition`` answers: the Prometheus text format 0.0.4, which
every Prometheus scrapes (the series have classic names, so nothing needs escaping)."""

NO_TENANT = "-"
"""The ``tenant`` label of a request not proven to be for a tenant (no tenant name is ``-``):
a name taken from the URL alone would let any client mint label values without bound."""

REQUESTS = Counter(
    "scim_requests_total",
    "HTTP requests answered, by tenant, operation, status code and IdP family.",
    ["tenant", "operation", "status", "idp"],
)
REQUEST_DURATION = Histogram(
    "scim_request_duration_seconds",
    "Time from a request's arrival in the application to its answer.",
    ["tenant", "operation", "status", "idp"],
)
DATABASE_COMMANDS = Histogram(
    "scim_request_database_commands",
    "Database commands one request started, by operation.",
    ["operation"],
    buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128, 256),
)
DATABASE_COMMANDS_BY_NAME = Counter(
    "scim_database_commands_total",
    "Database commands requests started, by operation, collection and command name.",
    ["operation", "collection", "command"],
)
JOURNAL_ENTRIES = Counter(
    "scim_journal_entries_total",
    "Provisioning journal entries: queued, written, dropped (queue full), failed (the "
    "database refused them) or discarded (their tenant no longer exists).",
    ["outcome"],
)
STORE_RESTARTS = Counter(
    "scim_store_restarts_total",
    "Restarts of the embedded store after it died: restarted, or failed (it did not come up).",
    ["outcome"],
)
SIGN_INS = Counter(
    "scim_sign_ins_total",
    "Sign-in attempts as the tenant's sign-in log records them, by protocol and outcome.",
    ["protocol", "outcome"],
)
RATE_LIMITED = Counter(
    "scim_rate_limited_total",
    "Requests refused with 429 by the per-tenant rate limit.",
    ["tenant"],
)
"""Counted by the rate limiter, once per refused request, labelled with the tenant whose
budget was spent (never a tenant named by an unauthenticated URL)."""


@dataclass
class RequestTally:
    """What one request is found to be while it is served, for its series."""

    tenant: str = NO_TENANT
    """Set once the request is proven to be for a tenant (``attribute_to_tenant``)."""
    commands: Tally[tuple[str, str]] = field(default_factory=Tally)
    """The database commands started, by (collection, command name)."""

    @property
    def command_count(self) -> int:
        return sum(self.commands.values())


_CURRENT: ContextVar[RequestTally | None] = ContextVar("scim_request_tally", default=None)


@contextlib.contextmanager
def tallying(tally: RequestTally) -> Iterator[RequestTally]:
    """Count into ``tally`` whatever runs inside, child tasks and threads included."""
    token = _CURRENT.set(tally)
    try:
        yield tally
    finally:
        _CURRENT.reset(token)


def attribute_to_tenant(tenant: str) -> None:
    """The request being served is proven to be for ``tenant`` (a token, an existing tenant)."""
    tally = _CURRENT.get()
    if tally is not None:
        tally.tenant = tenant


def count_command(collection: str, command: str) -> None:
    """A database command started on behalf of the request being served, if any."""
    tally = _CURRENT.get()
    if tally is not None:
        tally.commands[collection, command] += 1


@contextlib.contextmanager
def shared_across_processes() -> Iterator[str]:
    """Count in a fresh private directory, in this process and in the processes it starts.

    The directory is set in the environment, which spawned workers inherit, and removed at
    the end. This process imported prometheus-client before knowing it, when the library
    chose its in-memory values: values made from now on are switched to the directory's.
    """
    previous = os.environ.get(MULTIPROCESS_DIRECTORY)
    with tempfile.TemporaryDirectory(prefix="scim-metrics-") as directory:
        os.environ[MULTIPROCESS_DIRECTORY] = directory
        values.ValueClass = values.get_value_class()
        try:
            yield directory
        finally:
            if previous is None:
                del os.environ[MULTIPROCESS_DIRECTORY]
            else:
                os.environ[MULTIPROCESS_DIRECTORY] = previous
            values.ValueClass = values.get_value_class()


def process_exited(pid: int) -> None:
    """A worker exited: its live gauges no longer count (its counters do, to the end)."""
    directory = os.environ.get(MULTIPROCESS_DIRECTORY)
    if directory is not None:
        multiprocess.mark_process_dead(pid, directory)


def exposition() -> bytes:
    """Every series in the Prometheus text format, added up over every process counting."""
    directory = os.environ.get(MULTIPROCESS_DIRECTORY)
    if directory is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, directory)
    return generate_latest(registry)
