"""What the storage layer raises when the database fails, in its own words.

PyMongo's exceptions stop at the storage boundary: every public coroutine of a
repository runs inside ``driver_errors()`` (``scim_server.storage.database``), which
turns them into these. The layers above catch these and never import the driver.
"""

from __future__ import annotations


class StorageError(Exception):
    """The database failed to do what was asked."""


class StorageUnavailable(StorageError):
    """The database cannot be reached or did not answer in time; the same request may
    succeed later."""


class WriteRefused(StorageError):
    """The database answered and refused a write (a rule of the server's, such as a
    unique index or a document validation); sending the same write again is refused again."""
