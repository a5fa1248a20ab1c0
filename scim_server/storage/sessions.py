"""Single sign-on sessions in MongoDB: ``sso_sessions``, one document per signed-in browser.

A session is stored under the digest of its key (``_id``); the key itself travels only in the
browser's cookie, so neither this collection nor the admin API can hand out a usable session.
Each document names its tenant, its user, the IdP that vouched for it, when it was
created and when it expires; a password session, the ``credential`` of the password it was
opened with (``documents.credential``). A TTL index removes expired sessions
(MongoDB's monitor runs about once a minute, so every read also requires ``expires`` to be
ahead); sign-out and the admin delete them at once.

A session is read together with the current standing of its user, joined on the users'
``_id`` index in the same command (``Standing``: name, active, last deactivation, userType),
so that every use answers, in one round trip, whether the user still exists and may still be
signed in (and, for a password session, whether that password is still the user's). A
session opened on another tenant's session (cross-instance sign-in: ``parent``) is read with
that one too, and its user's standing, in the same command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from scim_server.models import USERS
from scim_server.storage.database import Database, Document, translate_driver_errors
from scim_server.storage.documents import STANDING_FIELDS, Standing, standing

COLLECTION = "sso_sessions"

INDEXES = [
    IndexModel([("tenant", ASCENDING), ("created", DESCENDING)], name="tenant_created"),
    IndexModel([("tenant", ASCENDING), ("user", ASCENDING)], name="tenant_user"),
    IndexModel([("expires", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
]


USER: Document = {
    "$lookup": {
        "from": USERS.collection,
        "localField": "user",
        "foreignField": "_id",
        "pipeline": [{"$project": {**STANDING_FIELDS, "tenant": 1}}],
        "as": "users",
    }
}
"""The stage that joins a session to its user, on the users' ``_id`` index, with the user's
tenant, which ``_stored_session`` holds to the session's: the same stage for a session and
for the session of another tenant it was opened on."""


@dataclass(frozen=True)
class NewSession:
    """A session to store: its id (the digest of the browser's key) and what it stands for."""

    id: str
    user_id: str
    issuer: str
    created: datetime
    expires: datetime
    credential: str | None = None
    """The credential of the password the session was opened with, if it was."""
    parent: str | None = None
    """The id of the session (of another tenant) this one was opened on, if it was: it
    stands only while that one does."""


@dataclass(frozen=True)
class StoredSession:
    """A stored, unexpired session, with its user's standing now (None: the user is gone)."""

    id: str
    user_id: str
    issuer: str
    created: datetime
    expires: datetime
    user: Standing | None
    credential: str | None = None
    parent: str | None = None
    opened_on: StoredSession | None = None
    """The unexpired session ``parent`` names, with its user's standing (None: there is no
    such session any more, or none was named)."""


def _stored_session(document: Mapping[str, Any]) -> StoredSession:
    users = [user for user in document.get("users") or [] if user["tenant"] == document["tenant"]]
    parents = document.get("parents") or []
    return StoredSession(
        id=str(document["_id"]),
        user_id=str(document["user"]),
        issuer=str(document["issuer"]),
        created=document["created"],
        expires=document["expires"],
        user=standing(users[0]) if users else None,
        credential=document.get("credential"),
        parent=document.get("parent"),
        opened_on=_stored_session(parents[0]) if parents else None,
    )


@translate_driver_errors
class SessionRepository:
    def __init__(self, database: Database) -> None:
        self.collection = database[COLLECTION]

    async def ensure_indexes(self) -> None:
        await self.collection.create_indexes(INDEXES)

    async def insert(self, tenant: str, session: NewSession) -> None:
        await self.collection.insert_one(
            {
                "_id": session.id,
                "tenant": tenant,
                "user": session.user_id,
                "issuer": session.issuer,
                "created": session.created,
                "expires": session.expires,
                **({"credential": session.credential} if session.credential else {}),
                **({"parent": session.parent} if session.parent else {}),
            }
        )

    async def get(self, tenant: str, session_id: str, now: datetime) -> StoredSession | None:
        """The unexpired session of that id with its user's standing, in one command."""
        found = await self._with_users({"_id": session_id, "tenant": tenant}, now, limit=1)
        return found[0] if found else None

    async def live(
        self,
        tenant: str,
        now: datetime,
        limit: int,
        user_id: str | None = None,
        after: StoredSession | None = None,
    ) -> list[StoredSession]:
        """The tenant's unexpired sessions (only the user's, if named), newest first, from
        the one after ``after`` on, at most ``limit``, each with its user's standing."""
        query: Document = {"tenant": tenant}
        if user_id is not None:
            query["user"] = user_id
        if after is not None:
            query["$or"] = [
                {"created": {"$lt": after.created}},
                {"created": after.created, "_id": {"$gt": after.id}},
            ]
        return await self._with_users(query, now, limit=limit)

    async def delete(self, tenant: str, session_id: str) -> bool:
        """Delete one session; whether it was there."""
        result = await self.collection.delete_one({"_id": session_id, "tenant": tenant})
        return result.deleted_count == 1

    async def delete_user_sessions(self, tenant: str, user_id: str) -> int:
        """Delete every session of one user; how many there were."""
        result = await self.collection.delete_many({"tenant": tenant, "user": user_id})
        return result.deleted_count

    async def delete_tenant(self, tenant: str) -> None:
        await self.collection.delete_many({"tenant": tenant})

    async def _with_users(
        self, query: Document, now: datetime, *, limit: int
    ) -> list[StoredSession]:
        """The unexpired sessions ``query`` matches, newest first, each joined to its user
        (within the tenant) on the users' ``_id`` index, and to the session it was opened on
        with that one's user: one command, whatever the count."""
        cursor = await self.collection.aggregate(
            [
                {"$match": {**query, "expires": {"$gt": now}}},
                {"$sort": {"created": DESCENDING, "_id": ASCENDING}},
                {"$limit": limit},
                USER,
                {
                    # The session it was opened on, on this collection's ``_id``: none for
                    # a session opened on none (no document has a null ``_id``).
                    "$lookup": {
                        "from": COLLECTION,
                        "localField": "parent",
                        "foreignField": "_id",
                        "pipeline": [
                            {"$match": {"expires": {"$gt": now}}},
                            USER,
                        ],
                        "as": "parents",
                    }
                },
            ]
        )
        return [_stored_session(document) async for document in cursor]
