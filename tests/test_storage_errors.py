"""Driver errors end at the storage boundary: every repository answers in the storage layer's
own exceptions (``scim_server.storage.errors``), against a real server and an unreachable one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

import scim_server.storage
from scim_server.models import USERS
from scim_server.storage.database import Database, Document, translate_driver_errors
from scim_server.storage.errors import StorageError, StorageUnavailable, WriteRefused
from scim_server.storage.resources import ResourceRepository
from scim_server.storage.seats import SeatCounter
from scim_server.storage.sso import SsoRepository
from scim_server.storage.tenants import TenantRepository
from tests.support.stores import unreachable_database


def _storage_classes() -> Iterator[type]:
    """Every class defined in a module of ``scim_server.storage``."""
    for module_info in pkgutil.iter_modules(scim_server.storage.__path__):
        module = importlib.import_module(f"scim_server.storage.{module_info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                yield cls


def _public_database_methods(cls: type) -> list[str]:
    return [
        name
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member))
    ]


def test_every_public_coroutine_of_the_storage_layer_translates_driver_errors() -> None:
    untranslated = [
        f"{cls.__module__}.{cls.__name__}.{name}"
        for cls in _storage_classes()
        for name in _public_database_methods(cls)
        if not hasattr(getattr(cls, name), "__wrapped__")
    ]
    assert untranslated == []


@pytest.fixture
async def unreachable() -> AsyncIterator[Database]:
    async with unreachable_database() as database:
        yield database


async def test_an_unreachable_database_is_storage_unavailable_from_every_repository(
    unreachable: Database,
) -> None:
    calls = [
        unreachable.ping(5),
        TenantRepository(unreachable).get("acme"),
        ResourceRepository(unreachable, USERS).find("acme", {}, [("_id", 1)], skip=0, limit=1),
        SeatCounter(unreachable).take("acme"),
        SsoRepository(unreachable).entries("acme", 10),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable) as raised:
            await call
        assert isinstance(raised.value.__cause__, PyMongoError)


@translate_driver_errors
class _Probe:
    """A repository of the test's own, to drive each branch of the translation on a real server."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.collection: AsyncCollection[Document] = database["probe"]

    async def insert(self, document: Document) -> None:
        await self.collection.insert_one(document)

    async def run(self, command: str) -> None:
        await self.database.db.command(command)

    async def stream(self) -> AsyncIterator[Document]:
        async for document in self.collection.find({}):
            yield document


@pytest.fixture
async def database(mongo_db: Any) -> Database:
    return Database(client=mongo_db.client, db=mongo_db)


async def test_a_write_the_server_refuses_is_write_refused(database: Database) -> None:
    probe = _Probe(database)
    await probe.insert({"_id": "one", "at": datetime.now(UTC)})
    with pytest.raises(WriteRefused):
        await probe.insert({"_id": "one"})


async def test_any_other_driver_error_is_a_storage_error_and_not_unavailable(
    database: Database,
) -> None:
    with pytest.raises(StorageError) as raised:
        await _Probe(database).run("noSuchCommandAnywhere")
    assert not isinstance(raised.value, StorageUnavailable | WriteRefused)


async def test_an_async_generator_method_translates_while_it_is_iterated(
    unreachable: Database,
) -> None:
    with pytest.raises(StorageUnavailable):
        [document async for document in _Probe(unreachable).stream()]
