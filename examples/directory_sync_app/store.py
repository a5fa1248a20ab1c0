"""The application's own tables (SQLite): its users, its groups, and the deliveries it has seen.

Why the deliveries are a table: webhook delivery is at least once, so the same event may come
twice; its ``webhook-id`` is recorded in the same transaction that applies it, and a second
delivery finds it there and changes nothing. Each user and group also keeps the
``meta.version`` of the last event applied to it, and a deleted one its id: an event older than
that, or about a deleted resource (a delivery retried after a newer one), is recorded and
ignored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    display_name TEXT,
    email TEXT,
    active INTEGER NOT NULL,
    version INTEGER NOT NULL,
    invited INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS groups (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE IF NOT EXISTS deliveries (webhook_id TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS deleted (id TEXT PRIMARY KEY);
"""

DELETED = 2**63 - 1
"""The version of a deleted resource: every event about it is older."""


@dataclass(frozen=True)
class User:
    id: str
    user_name: str
    display_name: str | None
    email: str | None
    active: bool
    invited: bool

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Store:
    """The tables, on one SQLite connection (the app is one process and applies one event at
    a time)."""

    def __init__(self, path: str = ":memory:") -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All the writes inside, or none of them."""
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def seen(self, webhook_id: str) -> bool:
        """Record a delivery; False when it was recorded before (a duplicate)."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO deliveries (webhook_id) VALUES (?)", (webhook_id,)
        )
        return cursor.rowcount == 0

    def version(self, table: str, resource_id: str) -> int | None:
        """The version of the last event applied to a user or group (``table``: ``users`` or
        ``groups``); None when it is not known yet. A deleted one's is beyond any."""
        if self.db.execute("SELECT 1 FROM deleted WHERE id = ?", (resource_id,)).fetchone():
            return DELETED
        query = {
            "users": "SELECT version FROM users WHERE id = ?",
            "groups": "SELECT version FROM groups WHERE id = ?",
        }[table]
        row = self.db.execute(query, (resource_id,)).fetchone()
        return None if row is None else int(row["version"])

    def user(self, user_id: str) -> User | None:
        row = self.db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
        return None if row is None else _user(row)

    def users(self) -> list[User]:
        return [_user(row) for row in self.db.execute("SELECT * FROM users ORDER BY user_name")]

    def groups(self) -> dict[str, dict[str, Any]]:
        """Group id → its name and its members' ids (sorted)."""
        found = {
            row["id"]: {"display_name": row["display_name"], "members": []}
            for row in self.db.execute("SELECT * FROM groups ORDER BY id")
        }
        for row in self.db.execute("SELECT * FROM members ORDER BY user_id"):
            if row["group_id"] in found:
                found[row["group_id"]]["members"].append(row["user_id"])
        return found

    def put_user(self, user: User, version: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO users VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                user.id,
                user.user_name,
                user.display_name,
                user.email,
                int(user.active),
                version,
                int(user.invited),
            ),
        )

    def delete_user(self, user_id: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO deleted VALUES (?)", (user_id,))
        self.db.execute("DELETE FROM users WHERE id = ?", (user_id,))
        self.db.execute("DELETE FROM members WHERE user_id = ?", (user_id,))

    def put_group(self, group_id: str, display_name: str, version: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO groups VALUES (?, ?, ?)", (group_id, display_name, version)
        )

    def touch_group(self, group_id: str, version: int) -> None:
        self.db.execute("UPDATE groups SET version = ? WHERE id = ?", (version, group_id))

    def delete_group(self, group_id: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO deleted VALUES (?)", (group_id,))
        self.db.execute("DELETE FROM groups WHERE id = ?", (group_id,))
        self.db.execute("DELETE FROM members WHERE group_id = ?", (group_id,))

    def add_members(self, group_id: str, user_ids: list[str]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO members VALUES (?, ?)", [(group_id, u) for u in user_ids]
        )

    def remove_members(self, group_id: str, user_ids: list[str]) -> None:
        self.db.executemany(
            "DELETE FROM members WHERE group_id = ? AND user_id = ?",
            [(group_id, u) for u in user_ids],
        )

    def uninvited(self) -> list[User]:
        """Active users not sent their invitation yet."""
        rows = self.db.execute("SELECT * FROM users WHERE active = 1 AND invited = 0 ORDER BY id")
        return [_user(row) for row in rows]

    def mark_invited(self, user_id: str) -> None:
        self.db.execute("UPDATE users SET invited = 1 WHERE id = ?", (user_id,))


def _user(row: sqlite3.Row) -> User:
    return User(
        row["id"],
        row["user_name"],
        row["display_name"],
        row["email"],
        bool(row["active"]),
        bool(row["invited"]),
    )
