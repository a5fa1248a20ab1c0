"""The database commands each SCIM operation costs: ``python -m bench.command_counts``.

Starts one ``python -m scim_server serve`` (one worker, default settings) on a new SecantusDB,
or on the MongoDB at ``MONGODB_URI`` (its database dropped first), and sends each operation
below a few times, one request at a time, each on a resource of its own. For each request it
reads the server's own count of the commands that request started
(``scim_request_database_commands`` on ``/metrics``: PyMongo's command monitoring inside the
server, the mechanism tests/test_command_counts.py pins the counts with by command name). The
journal's batches and the event relay are not a request's own, and the token check's cached
reads are left out.

The counts are deterministic for a given state (whether the tenant's seat limit was read in
the last 0.25 s, whether the relay is moving the tenant's events): the table shows their range
and each set of commands seen. Beside each: what the operation cost before issue 14's work,
and what it needs. It prints and writes bench/results/command_counts.json and
command_counts.md, and a line marked ``"suite": "command_counts"`` in history.jsonl.
Nothing is asserted: the test does.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import history
from bench.run import RESULTS
from bench.targets import Server, create_group, http, samples, server_on_store

DATABASE = "scim_bench_command_counts"
SUITE = "command_counts"
RUNS = 5
"""Requests per row."""
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@dataclass
class Tenant:
    base: str
    token: str
    made: int = 0

    def fresh(self, prefix: str) -> str:
        """A name no resource of the tenant has yet."""
        self.made += 1
        return f"{prefix}{self.made}"

    def user(self) -> str:
        """A new user's id."""
        status, body = http("POST", f"{self.base}/Users", self.token, _user(self.fresh("u")))
        assert status == 201, body
        return str(body["id"])

    def group(self) -> str:
        return create_group(self.base, self.token, self.fresh("g"))

    def in_a_group(self, user: str) -> str:
        """Add ``user`` to a new group; answers the group's id."""
        group = self.group()
        status, body = http(
            "PATCH", f"{self.base}/Groups/{group}", self.token, _members("add", user)
        )
        assert status in (200, 204), body
        return group


Request = tuple[str, str, Any]
"""A method, a path below the tenant's base, a body."""


@dataclass(frozen=True)
class Row:
    title: str
    before: int
    """What the operation cost before issue 14's work."""
    needed: int
    prepare: Callable[[Tenant], Request]
    """Makes what one request needs (unmeasured) and answers that request."""


def _user(name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name}


def _members(op: str, member: str) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [{"op": op, "path": "members", "value": [{"value": member}]}],
    }


def _bulk_of_creations(tenant: Tenant, count: int) -> dict[str, Any]:
    prefix = tenant.fresh("bulk")
    operations = [
        {"method": "POST", "path": "/Users", "bulkId": f"b{n}", "data": _user(f"{prefix}-{n}")}
        for n in range(count)
    ]
    return {"schemas": [BULK_REQUEST], "Operations": operations}


def _post(tenant: Tenant) -> Request:
    return "POST", "/Users", _user(tenant.fresh("new"))


def _get_in_no_group(tenant: Tenant) -> Request:
    return "GET", f"/Users/{tenant.user()}", None


def _get_in_one_group(tenant: Tenant) -> Request:
    user = tenant.user()
    tenant.in_a_group(user)
    return "GET", f"/Users/{user}", None


def _rename(tenant: Tenant) -> Request:
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Renamed"}],
    }
    return "PATCH", f"/Users/{tenant.user()}", rename


def _put(tenant: Tenant) -> Request:
    user = tenant.user()
    return "PUT", f"/Users/{user}", {**_user(f"put{user}"), "displayName": "Replaced"}


def _add_member(tenant: Tenant) -> Request:
    return (
        "PATCH",
        f"/Groups/{tenant.group()}?excludedAttributes=members",
        _members("add", tenant.user()),
    )


def _remove_member(tenant: Tenant) -> Request:
    user = tenant.user()
    group = tenant.in_a_group(user)
    return "PATCH", f"/Groups/{group}?excludedAttributes=members", _members("remove", user)


def _delete(tenant: Tenant) -> Request:
    return "DELETE", f"/Users/{tenant.user()}", None


ROWS = [
    Row("POST /Users", 2, 2, _post),
    Row("GET /Users/{id}, user in no group", 1, 1, _get_in_no_group),
    Row("GET /Users/{id}, user in one group", 3, 2, _get_in_one_group),
    Row("PATCH /Users/{id} replace displayName, user in no group", 4, 2, _rename),
    Row("PUT /Users/{id}", 3, 2, _put),
    Row("PATCH /Groups/{id} add one member (`excludedAttributes=members`)", 6, 4, _add_member),
    Row("PATCH /Groups/{id} remove one member", 6, 4, _remove_member),
    Row("DELETE /Users/{id}", 5, 4, _delete),
    Row(
        "POST /Bulk with 10 user creates",
        20,
        4,
        lambda tenant: ("POST", "/Bulk", _bulk_of_creations(tenant, 10)),
    ),
    Row(
        "POST /Bulk with 1,000 user creates",
        2000,
        40,
        lambda tenant: ("POST", "/Bulk", _bulk_of_creations(tenant, 1000)),
    ),
]


BY_NAME = "scim_database_commands"
"""``scim_database_commands_total``, as its family is named."""
NOT_THE_OPERATIONS_OWN = frozenset({"tokens"})
"""The token check's reads (cached for seconds), which the issue's counts leave out."""


def by_name(server: Server) -> Counter[tuple[str, str, str]]:
    """Every (operation, collection, command) the server counted so far, and how often."""
    return Counter(
        {
            (
                sample.labels["operation"],
                sample.labels["collection"],
                sample.labels["command"],
            ): int(sample.value)
            for sample in samples(server, BY_NAME)
            if sample.name == f"{BY_NAME}_total"
        }
    )


def counted(server: Server, tenant: Tenant, request: Request) -> Counter[str]:
    """The commands one request started, by ``collection.command``, by the server's count."""
    before = by_name(server)
    method, path, body = request
    status, answer = http(method, f"{tenant.base}{path}", tenant.token, body)
    assert status < 400, (method, path, status, answer)
    started = by_name(server) - before
    operations = {operation for operation, _, _ in started} - {"metrics"}
    assert len(operations) <= 1, operations
    return Counter(
        {
            f"{collection}.{command}": count
            for (operation, collection, command), count in started.items()
            if operation != "metrics" and collection not in NOT_THE_OPERATIONS_OWN
        }
    )


def measure(server: Server) -> dict[str, Any]:
    base, token = server.create_tenant("counted")
    tenant = Tenant(base, token)
    tenant.user()  # the tenant is read unlimited once, by its first creation
    figures: dict[str, Any] = {}
    for row in ROWS:
        runs = [counted(server, tenant, row.prepare(tenant)) for _ in range(RUNS)]
        figures[row.title] = {
            "before": row.before,
            "needed": row.needed,
            "counts": [sum(run.values()) for run in runs],
            "commands": [dict(sorted(run.items())) for run in runs],
        }
    return figures


@dataclass(frozen=True)
class Sizes:
    runs: int
    store: str


def kept(run: dict[str, Any]) -> dict[str, float]:
    return {title: float(max(row["counts"])) for title, row in run["operations"].items()}


def _shape(commands: dict[str, int]) -> str:
    return ", ".join(name if count == 1 else f"{count} {name}" for name, count in commands.items())


def _shapes(row: dict[str, Any]) -> str:
    """Each distinct set of commands the row's requests started, with how many did."""
    seen = Counter(_shape(commands) for commands in row["commands"])
    if len(seen) == 1:
        return next(iter(seen))
    return "; ".join(
        f"{shape} ({times} of {len(row['commands'])})" for shape, times in seen.items()
    )


def markdown(run: dict[str, Any], out: Path) -> str:
    machine, config = run["machine"], run["config"]
    rows = []
    for title, row in run["operations"].items():
        low, high = min(row["counts"]), max(row["counts"])
        now = str(low) if low == high else f"{low} to {high}"
        verdict = "met" if high <= row["needed"] else "missed"
        rows.append(
            f"| {title} | {row['before']} | {row['needed']} | {now} | {verdict} | {_shapes(row)} |"
        )
    return "\n".join(
        [
            "# Database commands per operation",
            "",
            f"{run['date']}, {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
            f"commit {machine.get('commit', '?')}, `python -m bench.command_counts`, on "
            f"{config['store']}. One worker, default settings; {config['runs']} requests per "
            "row, one at a time, each on a resource of its own. `now`: the commands each "
            "request started, by the server's own count (`scim_database_commands_total`, from "
            "PyMongo's command monitoring in the server), the token check's cached reads left "
            "out; `before`: issue 14's count before its work. A request also reads the tenant's "
            "policies when this process's last reading is old: its seat limit after 0.25 s "
            "(a creation, or a deletion of an active user: `core/seats.py`), its one-team "
            "policy after 1 s (a write of a userName: `core/one_team.py`); one request at a "
            "time, some do. On SecantusDB a lone member add looks its member up "
            "by a read and raises its hint by an update; on MongoDB both are one "
            '`findAndModify` (docs/storage.md, "A lone member add"). '
            "tests/test_command_counts.py pins both ways.",
            "",
            "| operation | before | needed | now | verdict | commands |",
            "|---|--:|--:|--:|---|---|",
            *rows,
            "",
            *history.table(out, SUITE, False, {title: title for title in run["operations"]}),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.command_counts", description=__doc__)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    uri = os.environ.get("MONGODB_URI")
    with (
        tempfile.TemporaryDirectory(prefix="scim-bench-commands-") as tmp,
        server_on_store(Path(tmp), uri, DATABASE) as (_uri, server, _pids),
    ):
        operations = measure(server)
    sizes = Sizes(RUNS, "MongoDB at MONGODB_URI" if uri else "SecantusDB")
    run = history.results(False, sizes, operations=operations)
    history.publish(args.out, "command_counts", SUITE, run, kept(run), markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
