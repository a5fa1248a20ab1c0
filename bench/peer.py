"""The peer: scim2-server's own in-memory SCIM server, served by uvicorn in this process.

``python -m bench.peer --port P --token T --manifest FILE [--users N] [--group NAME=SIZE]``
builds scim2-server's ASGI application the way its ``scim2-server`` command builds
its WSGI one (default schemas, resource types and configuration, a static bearer
token), seeds its storage directly (the counterpart of seeding MongoDB with
insert_many), writes the seeded ids to the manifest, and serves on one process and
one event loop, like ``scim-server serve``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, cast

from scim2_models import Resource, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.service import ScimService
from scim2_server.utils import load_default_provider

from bench.workload import user_body


class BearerASGIApplication(ASGIApplication):
    """scim2-server's ASGI application with its test server's static bearer-token check."""

    def __init__(self, storage: AsyncInMemoryStorage, token: str) -> None:
        provider = load_default_provider()
        super().__init__(storage, provider, ScimService(provider, secret="bench"))
        self.token = token

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token != self.token:
            raise UnauthorizedException


def _model(model: Any) -> type[Resource[Any]]:
    if model is None:
        raise RuntimeError("the default provider serves no such resource type")
    return cast("type[Resource[Any]]", model)


def seed(storage: InMemoryStorage, users: int, groups: dict[str, int]) -> dict[str, Any]:
    provider = load_default_provider()
    user_type = next(t for t in provider.resource_types if t.name == "User")
    group_type = next(t for t in provider.resource_types if t.name == "Group")
    user_model, group_model = (
        _model(provider.model_for(user_type)),
        _model(provider.model_for(group_type)),
    )
    ids: list[str] = []
    names: list[str] = []
    for index in range(users):
        body = user_body(f"seed{index:07d}")
        created = storage.create(user_type, user_model.model_validate(body))
        assert created.id is not None
        ids.append(created.id)
        names.append(body["userName"])
    group_ids: dict[str, str] = {}
    for name, size in groups.items():
        members = [{"value": member, "type": "User"} for member in ids[:size]]
        group = group_model.model_validate({"displayName": name, "members": members})
        created = storage.create(group_type, group)
        assert created.id is not None
        group_ids[name] = created.id
    return {"users": ids, "userNames": names, "groups": group_ids}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.peer")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--users", type=int, default=0)
    parser.add_argument("--group", action="append", default=[], metavar="NAME=SIZE")
    args = parser.parse_args(argv)

    import uvicorn

    storage = InMemoryStorage()
    groups = {name: int(size) for name, _, size in (g.partition("=") for g in args.group)}
    manifest = seed(storage, args.users, groups)
    with open(args.manifest, "w") as handle:
        json.dump(manifest, handle)
    app = BearerASGIApplication(AsyncInMemoryStorage(storage), args.token)
    # The same loop implementation as the server (asyncio), a C HTTP parser like aiohttp's.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="asyncio",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
