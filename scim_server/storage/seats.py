"""The seat limit and counter, kept in the tenant document (the rules: ``scim_server.core.seats``).

``seats`` is the limit (None: unlimited) and ``seats_used`` the counter, which only a tenant
with a limit keeps, and only once it has been counted: an unlimited tenant has none (nothing
pays for it), and neither has one whose first limit is being counted behind the fence that
``seats_fence`` dates, nor one created before seats existed. Each method
is one atomic MongoDB operation (``set_limit`` one or two); the order they run in, and what
to do when one does not land, is the core's to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo import ReturnDocument

from scim_server.models import USERS
from scim_server.storage.database import TENANTS, Database, Document, translate_driver_errors

LIMIT = "seats"
USED = "seats_used"
FENCE = "seats_fence"
COUNTED = "seats_counted_at"

HOLDS_SEAT: Document = {"c.active": {"$in": [True, None]}}
"""The stored users that hold a seat: ``None`` matches an absent ``active`` as well.

It is the stored form of ``scim_server.core.seats.holds_seat``: an active user, or one
without ``active``.
"""


def room_for(n: int) -> Document:
    """A tenant with ``n`` free seats: unlimited, or at least ``n`` fewer used than it has."""
    return {"$or": [{LIMIT: None}, {"$expr": {"$lte": [{"$add": [f"${USED}", n]}, f"${LIMIT}"]}}]}


PROJECTION = {LIMIT: 1, USED: 1, FENCE: 1, COUNTED: 1}

JOINED_LIMIT = "_seats"
"""Where ``WITH_LIMIT`` puts the tenant's limit on a document read with it."""
WITH_LIMIT: list[Document] = [
    {
        "$lookup": {
            "from": TENANTS,
            "localField": "tenant",
            "foreignField": "_id",
            "as": JOINED_LIMIT,
        }
    },
    {"$set": {JOINED_LIMIT: {"$map": {"input": f"${JOINED_LIMIT}", "in": f"$$this.{LIMIT}"}}}},
]
"""The stages that join to each document an aggregate reads its tenant's seat limit, by the
tenants' primary key, which every store looks up on its index: what a write freeing a seat
needs to know, read with the document it changes rather than apart (``joined_limit``). Only
the limit is kept of the tenant, by ``$map``: SecantusDB evaluates the shorter path into the
joined array (``"$_seats.seats"``) to nothing, where MongoDB gives the array of its values."""


def joined_limit(document: Document) -> bool:
    """Whether the tenant ``WITH_LIMIT`` joined to ``document`` (taken off it) has a limit."""
    return any(limit is not None for limit in document.pop(JOINED_LIMIT, []))


@dataclass(frozen=True)
class SeatCount:
    """What a tenant document records: the limit, and the counter (None: not kept or not yet)."""

    seats: int | None
    used: int | None
    fence: datetime | None = None
    """When a first limit was set, while its count is pending (``used`` None)."""
    counted_at: datetime | None = None
    """When the count that set the counter started."""


def seat_count(document: Document) -> SeatCount:
    used = document.get(USED)
    return SeatCount(
        document.get(LIMIT),
        None if used is None else int(used),
        document.get(FENCE),
        document.get(COUNTED),
    )


@translate_driver_errors
class SeatCounter:
    def __init__(self, database: Database) -> None:
        self.tenants = database.tenants
        self.users = database[USERS.collection]

    async def read(self, tenant: str) -> SeatCount | None:
        """The tenant's limit and counter; None when there is no such tenant."""
        document = await self.tenants.find_one({"_id": tenant}, PROJECTION)
        return None if document is None else seat_count(document)

    async def set_limit(self, tenant: str, seats: int | None, now: datetime) -> SeatCount | None:
        """Set the limit; answers the tenant's count after it, None when there is no such tenant.

        Unlimited drops the counter. A first limit (on an unlimited tenant) leaves the tenant
        uncounted, with its fence set ``now``; another limit keeps the counter as it is.
        """
        if seats is None:
            update: Document = {"$set": {LIMIT: None}, "$unset": {USED: "", FENCE: "", COUNTED: ""}}
            return await self._counted_after(tenant, update)
        first: Document = {"$set": {LIMIT: seats, FENCE: now}, "$unset": {USED: ""}}
        count = await self._counted_after(tenant, first, {LIMIT: None})
        return count or await self._counted_after(tenant, {"$set": {LIMIT: seats}})

    async def _counted_after(
        self, tenant: str, update: Document, condition: Document | None = None
    ) -> SeatCount | None:
        document = await self.tenants.find_one_and_update(
            {"_id": tenant, **(condition or {})},
            update,
            PROJECTION,
            return_document=ReturnDocument.AFTER,
        )
        return None if document is None else seat_count(document)

    async def take(self, tenant: str, n: int = 1) -> bool:
        """Count ``n`` more seats used, if the counter is set up and that many are free.

        One conditional update, all or nothing: whether it took them is whether it matched.
        (Not a ``findAndModify`` taking as many as are free and answering the counter before:
        SecantusDB may answer a document older than the one it updated.)
        """
        result = await self.tenants.update_one(
            {"_id": tenant, USED: {"$exists": True}, **room_for(n)}, {"$inc": {USED: n}}
        )
        return result.matched_count == 1

    async def add_taken(self, tenant: str, n: int = 1) -> None:
        """Count ``n`` more seats used whatever the limit, if the tenant keeps a counter."""
        await self.tenants.update_one({"_id": tenant, USED: {"$exists": True}}, {"$inc": {USED: n}})

    async def give_back(self, tenant: str, n: int) -> None:
        """Count ``n`` seats fewer, never below zero."""
        await self.tenants.update_one({"_id": tenant, USED: {"$gte": n}}, {"$inc": {USED: -n}})

    async def count_holders(self, tenant: str) -> int:
        """The users of ``tenant`` that hold a seat, counted on the ``tenant_active`` index."""
        return await self.users.count_documents({"tenant": tenant, **HOLDS_SEAT})

    async def set_counted(
        self, tenant: str, seen: int | None, used: int, started: datetime
    ) -> SeatCount | None:
        """Set the counter to ``used``, counted from ``started``, if it still reads ``seen`` and
        the tenant has a limit; None when either changed meanwhile. The fence comes down.

        ``seen`` None also matches a counter that was never set up.
        """
        return await self._counted_after(
            tenant,
            {"$set": {USED: used, COUNTED: started}, "$unset": {FENCE: ""}},
            {USED: seen, LIMIT: {"$ne": None}},
        )
