"""What the benchmark sends: user bodies, and the lanes of each scenario (see loadgen.py).

Every HTTP scenario is written once against a base URL (``.../scim/v2/{tenant}`` for
this server, ``.../v2`` for the peer), so both targets get byte-identical requests.
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import quote

Lane = list[dict[str, Any]]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PAGE_SIZE = 50


def user_body(user_name: str) -> dict[str, Any]:
    """A user as identity providers typically send one (core schema only, so the peer takes it)."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "externalId": f"ext-{user_name}",
        "name": {"givenName": "Barbara", "familyName": f"Jensen-{user_name}"},
        "displayName": f"Barbara Jensen {user_name}",
        "emails": [{"value": f"{user_name}@example.com", "type": "work", "primary": True}],
        "active": True,
    }


def _request(
    label: str, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200,)
) -> dict[str, Any]:
    return {"label": label, "method": method, "path": path, "body": body, "expect": list(expect)}


def post_user(name: str) -> dict[str, Any]:
    return _request("post", "POST", "/Users", user_body(name), (201,))


def post_users(names: list[str]) -> list[Lane]:
    return [[post_user(name)] for name in names]


def get_user(user_id: str) -> dict[str, Any]:
    return _request("get", "GET", f"/Users/{user_id}")


def get_users(ids: list[str], count: int, rng: random.Random) -> list[Lane]:
    return [[get_user(rng.choice(ids))] for _ in range(count)]


def user_name_lookup(name: str) -> dict[str, Any]:
    """``filter=userName eq``, the lookup identity providers make before they create a user."""
    return _request("filter", "GET", "/Users?filter=" + quote(f'userName eq "{name}"'))


def filter_user_name(names: list[str], count: int, rng: random.Random) -> list[Lane]:
    return [[user_name_lookup(rng.choice(names))] for _ in range(count)]


def rename(suffix: object) -> dict[str, Any]:
    """A PATCH replacing a user's ``displayName`` with ``Renamed {suffix}``."""
    return {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "replace", "path": "displayName", "value": f"Renamed {suffix}"}],
    }


def patch_user(user_id: str, suffix: object) -> dict[str, Any]:
    return _request("patch", "PATCH", f"/Users/{user_id}", rename(suffix), (200, 204))


def patch_users(ids: list[str], count: int) -> list[Lane]:
    # Consecutive lanes touch distinct users, so concurrent PATCHes rarely collide.
    return [[patch_user(ids[i % len(ids)], i)] for i in range(count)]


def sorted_pages(total: int, count: int, rng: random.Random) -> list[Lane]:
    def path() -> str:
        start = rng.randint(1, max(1, total - PAGE_SIZE))
        return f"/Users?sortBy=userName&sortOrder=ascending&startIndex={start}&count={PAGE_SIZE}"

    return [[_request("list", "GET", path())] for _ in range(count)]


def member_add(group: str, member: str, query: str = "") -> dict[str, Any]:
    body = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": member}]}],
    }
    return _request("add", "PATCH", f"/Groups/{group}{query}", body, (200, 204))


def member_remove(group: str, member: str, query: str = "") -> dict[str, Any]:
    body = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "remove", "path": f'members[value eq "{member}"]'}],
    }
    return _request("remove", "PATCH", f"/Groups/{group}{query}", body, (200, 204))


def member_cycles(group: str, members: list[str], *, present: bool, query: str = "") -> list[Lane]:
    """One lane per member: add then remove it (absent), or remove then add it back (present).

    Either way the group keeps its size, within the number of lanes in flight.
    """
    if present:
        return [[member_remove(group, m, query), member_add(group, m, query)] for m in members]
    return [[member_add(group, m, query), member_remove(group, m, query)] for m in members]


def concurrent_writers(group: str, members: list[str], writers: int) -> list[Lane]:
    """``writers`` lanes, each adding its own share of ``members`` one PATCH at a time."""
    return [
        [member_add(group, m, "?excludedAttributes=members") for m in members[i::writers]]
        for i in range(writers)
    ]


def bulk_body(names: list[str]) -> dict[str, Any]:
    return {
        "schemas": [BULK_SCHEMA],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": f"b{i}", "data": user_body(name)}
            for i, name in enumerate(names)
        ],
    }


def bulks(batches: list[list[str]]) -> list[Lane]:
    return [[_request("bulk", "POST", "/Bulk", bulk_body(names))] for names in batches]


# -- the limit: raw driver operations --------------------------------------------------


def inserts(stored: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[Lane]:
    """insert_one of documents in the server's layout; ``stored`` holds each (r, c)."""
    return [
        [{"label": "insert_one", "op": "insert_one", "raw": raw, "comparison": comparison}]
        for raw, comparison in stored
    ]


def finds(op: str, keys: list[str], count: int, rng: random.Random) -> list[Lane]:
    return [[{"label": op, "op": op, "key": rng.choice(keys)}] for _ in range(count)]
