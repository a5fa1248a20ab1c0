"""The seat limit and counter, kept in the tenant document (the rules: ``scim_server.core.seats``).

``seats`` is the limit (None: unlimited) and ``seats_used`` the counter, which a tenant created
before seats existed does not have yet. Each method is one atomic MongoDB operation; the order
they run in, and what to do when one does not land, is the core's to decide.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import ReturnDocument

from scim_server.models import USERS
from scim_server.storage.database import Database, Document, translate_driver_errors

LIMIT = "seats"
USED = "seats_used"

HOLDS_SEAT: Document = {"c.active": {"$in": [True, None]}}
"""The stored users that hold a seat: ``None`` matches an absent ``active`` as well.

It is the stored form of ``scim_server.core.seats.holds_seat``: an active user, or one
without ``active``.
"""

BELOW_LIMIT: Document = {"$or": [{LIMIT: None}, {"$expr": {"$lt": [f"${USED}", f"${LIMIT}"]}}]}
"""A tenant with a free seat: unlimited, or fewer seats used than it has."""

PROJECTION = {LIMIT: 1, USED: 1}


@dataclass(frozen=True)
class SeatCount:
    """What a tenant document records: the limit, and the counter (None: never set up)."""

    seats: int | None
    used: int | None


def seat_count(document: Document) -> SeatCount:
    used = document.get(USED)
    return SeatCount(document.get(LIMIT), None if used is None else int(used))


@translate_driver_errors
class SeatCounter:
    def __init__(self, database: Database) -> None:
        self.tenants = database.tenants
        self.users = database[USERS.collection]

    async def read(self, tenant: str) -> SeatCount | None:
        """The tenant's limit and counter; None when there is no such tenant."""
        document = await self.tenants.find_one({"_id": tenant}, PROJECTION)
        return None if document is None else seat_count(document)

    async def set_limit(self, tenant: str, seats: int | None) -> SeatCount | None:
        document = await self.tenants.find_one_and_update(
            {"_id": tenant},
            {"$set": {LIMIT: seats}},
            PROJECTION,
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else seat_count(document)

    async def take(self, tenant: str) -> bool:
        """Count one more seat used, if the counter is set up and a seat is free: one update."""
        result = await self.tenants.update_one(
            {"_id": tenant, USED: {"$exists": True}, **BELOW_LIMIT}, {"$inc": {USED: 1}}
        )
        return result.matched_count == 1

    async def give_back(self, tenant: str, n: int) -> None:
        """Count ``n`` seats fewer, never below zero."""
        await self.tenants.update_one({"_id": tenant, USED: {"$gte": n}}, {"$inc": {USED: -n}})

    async def count_holders(self, tenant: str) -> int:
        """The users of ``tenant`` that hold a seat, counted on the ``tenant_active`` index."""
        return await self.users.count_documents({"tenant": tenant, **HOLDS_SEAT})

    async def set_counted(self, tenant: str, seen: int | None, used: int) -> SeatCount | None:
        """Set the counter to ``used`` if it still reads ``seen``; None when it moved meanwhile.

        ``seen`` None also matches a counter that was never set up.
        """
        document = await self.tenants.find_one_and_update(
            {"_id": tenant, USED: seen},
            {"$set": {USED: used}},
            PROJECTION,
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else seat_count(document)
