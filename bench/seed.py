"""Seeding large tenants fast: users, groups and memberships written straight into MongoDB.

The documents follow the server's stored layout (storage/documents.py, built with
its own ``stored_attributes``; storage/memberships.py: each membership carries the
member's name, each user its ``gm`` count of direct groups), so the server reads
them exactly as if it had written them; only the measured operations go through HTTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo import MongoClient

from bench.workload import user_body
from scim_server.models import USERS
from scim_server.storage.documents import MEMBER_OF, stored_attributes

BATCH = 5000


def stored_user(user_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A user's ``r`` and ``c`` sub-documents."""
    return stored_attributes(USERS, user_body(user_name))


@dataclass
class Seeded:
    users: list[str] = field(default_factory=list)
    user_names: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)


def _meta(now: datetime) -> dict[str, Any]:
    return {"created": now, "lastModified": now, "version": 1}


def seed_tenant(uri: str, database: str, tenant: str, users: int, groups: dict[str, int]) -> Seeded:
    """``users`` users named ``seed0000000``...; each group holds the first ``size`` of them."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    db = client[database]
    now = datetime.now(UTC)
    seeded = Seeded()
    try:
        batch: list[dict[str, Any]] = []
        names: dict[str, str] = {}
        for index in range(users):
            name = f"seed{index:07d}"
            raw, comparison = stored_user(name)
            resource_id = str(uuid.uuid4())
            member_of = sum(1 for size in groups.values() if index < size)
            batch.append(
                {
                    "_id": resource_id,
                    "tenant": tenant,
                    "meta": _meta(now),
                    "r": raw,
                    "c": comparison,
                    MEMBER_OF: member_of,
                }
            )
            seeded.users.append(resource_id)
            seeded.user_names.append(name)
            names[resource_id] = raw.get("displayName") or raw["userName"]
            if len(batch) == BATCH:
                db["users"].insert_many(batch, ordered=False)
                batch = []
        if batch:
            db["users"].insert_many(batch, ordered=False)
        for name, size in groups.items():
            group_id = str(uuid.uuid4())
            db["groups"].insert_one(
                {
                    "_id": group_id,
                    "tenant": tenant,
                    "meta": _meta(now),
                    "r": {"displayName": name},
                    "c": {"displayName": name.lower()},
                    MEMBER_OF: 0,
                }
            )
            seeded.groups[name] = group_id
            members = seeded.users[:size]
            for start in range(0, len(members), BATCH):
                db["memberships"].insert_many(
                    [
                        {
                            "tenant": tenant,
                            "group": group_id,
                            "member": member,
                            "type": "User",
                            "name": names[member],
                        }
                        for member in members[start : start + BATCH]
                    ],
                    ordered=False,
                )
    finally:
        client.close()
    return seeded


def count_members(uri: str, database: str, tenant: str, group: str) -> int:
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        return client[database]["memberships"].count_documents({"tenant": tenant, "group": group})
    finally:
        client.close()


def member_of_mismatches(
    uri: str, database: str, tenant: str, users: list[str]
) -> list[tuple[str, int, int]]:
    """Users whose ``gm`` hint is not their number of memberships: (id, gm, memberships).

    The seed writes the exact count, 0 for a user in no group (the server then reads
    one document for it), so any difference means the seed and the server disagree.
    """
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        db = client[database]
        wrong = []
        for user in users:
            document = db["users"].find_one({"tenant": tenant, "_id": user}, {MEMBER_OF: 1})
            hint = -1 if document is None else int(document.get(MEMBER_OF, 0))
            count = db["memberships"].count_documents({"tenant": tenant, "member": user})
            if hint != count:
                wrong.append((user, hint, count))
        return wrong
    finally:
        client.close()
