"""The command-count benchmark reads each request's commands by name from a real server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.command_counts import Tenant, counted, markdown
from bench.targets import Server
from scim_server.storage.database import learn_planner


async def test_each_request_is_counted_by_collection_and_command_without_the_token_check(
    mongodb_uri: str, database_name: str, mongo_db: Any, tmp_path: Path
) -> None:
    server = Server(mongodb_uri, database_name, tmp_path / "server.log")
    try:
        server.start()
        tenant = Tenant(*server.create_tenant("counted"))
        user = tenant.user()
        # The first request of the token reads it (the token check, left out); then none does.
        assert counted(server, tenant, ("GET", f"/Users/{user}", None)) == {"users.find": 1}
        assert counted(server, tenant, ("GET", f"/Users/{user}", None)) == {"users.find": 1}
        add = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}],
        }
        added = counted(server, tenant, ("PATCH", f"/Groups/{tenant.group()}", add))
    finally:
        server.stop()
    if (await learn_planner(mongo_db)).modifies_by_key:
        claimed = {"users.findAndModify": 1, "memberships.insert": 1, "users.find": 1}
        assert added == {**claimed, "groups.findAndModify": 1}
    else:
        looked_up = {"users.find": 2, "users.update": 1, "memberships.insert": 1}
        assert added == {**looked_up, "groups.findAndModify": 1}


def test_a_row_shows_the_range_of_its_counts_and_each_set_of_commands_seen() -> None:
    fast = {"users.insert": 1}
    read = {"tenants.find": 1, "users.insert": 1}
    run = {
        "date": "2026-12-02T00:00:00+00:00",
        "machine": {"cpu": "test", "cores": 2, "commit": "abc"},
        "config": {"runs": 3, "store": "SecantusDB", "quick": False},
        "operations": {
            "POST /Users": {
                "before": 2,
                "needed": 2,
                "counts": [1, 2, 1],
                "commands": [fast, read, fast],
            }
        },
    }
    text = markdown(run, Path("/nonexistent"))
    shapes = "users.insert (2 of 3); tenants.find, users.insert (1 of 3)"
    assert f"| POST /Users | 2 | 2 | 1 to 2 | met | {shapes} |" in text
