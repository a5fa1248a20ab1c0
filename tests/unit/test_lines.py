"""A resource's line in one process (``core/writes.py``): the writers of one resource take
turns holding it, so the line a writer holds is the one the next writer finds."""

from __future__ import annotations

import gc
import weakref

from scim_server.core.writes import Writes
from scim_server.models import GROUPS, USERS


def _writes() -> Writes:
    """A ``Writes`` with only its lines: they need no database."""
    writes = object.__new__(Writes)
    writes._lines = weakref.WeakValueDictionary()
    return writes


async def test_the_line_a_delete_holds_is_the_one_the_next_writer_finds() -> None:
    """A delete holds the line as it finds it, keeping no other reference to it."""
    writes = _writes()
    async with writes._line(USERS, "acme", "u1"):
        gc.collect()
        assert writes._line(USERS, "acme", "u1").held()


async def test_a_line_let_go_by_every_writer_is_forgotten() -> None:
    writes = _writes()
    async with writes._line(USERS, "acme", "u1"):
        pass
    gc.collect()
    assert len(writes._lines) == 0


async def test_each_resource_has_a_line_of_its_own() -> None:
    writes = _writes()
    async with writes._line(USERS, "acme", "u1"):
        assert not writes._line(USERS, "acme", "u2").held()
        assert not writes._line(USERS, "globex", "u1").held()
        assert not writes._line(GROUPS, "acme", "u1").held()
