"""The errors the server answers with.

scim2-models already models RFC 7644 §3.12 as a hierarchy of ``SCIMException``
classes, one per ``scimType`` or status; the protocol code raises those. This
module adds the few HTTP-level failures the RFC leaves without a class, and the
one translation every error goes through on its way to the wire.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from pymongo.errors import ConnectionFailure, ExecutionTimeout, NetworkTimeout
from scim2_models import (
    Error,
    ForbiddenException,
    InvalidValueException,
    NotFoundException,
    SCIMException,
)

DATABASE_UNAVAILABLE = (ConnectionFailure, NetworkTimeout, ExecutionTimeout)
"""PyMongo's ways of saying the database cannot answer now: 503, never 500."""


class ServiceUnavailableException(SCIMException):
    """The database cannot be reached; the client should retry later."""

    status = 503
    _default_detail = "The service is temporarily unavailable, retry later"
    retry_after_seconds = 5


class MethodNotAllowedException(SCIMException):
    status = 405
    _default_detail = "The method is not allowed on this endpoint"

    def __init__(self, *, allowed: set[str] | frozenset[str], **kw: Any) -> None:
        self.allowed = sorted(allowed)
        super().__init__(**kw)


class UnsupportedMediaTypeException(SCIMException):
    status = 415
    _default_detail = "Send application/scim+json or application/json"


class URITooLongException(SCIMException):
    status = 414
    _default_detail = "The URL is too long; send the query in the body of POST .search"


class HeaderTooLargeException(SCIMException):
    status = 431
    _default_detail = "A request header is too large"


class InternalErrorException(SCIMException):
    status = 500
    _default_detail = "The server failed to process the request"


class SeatLimitExceeded(ForbiddenException):
    """Creating or reactivating a user would take a seat the tenant does not have.

    403, not 409 or 400: the request is valid and would succeed in a tenant with a
    free seat; the tenant's own limit forbids it. A class of its own so that callers
    other than the SCIM handlers (SSO's just-in-time provisioning) can catch it by
    type and show their own page.
    """

    def __init__(self, *, tenant: str, seats: int, used: int, **kw: Any) -> None:
        self.tenant = tenant
        self.seats = seats
        self.used = used
        super().__init__(detail=f"tenant {tenant!r} {_seats_in_use(seats, used)}", **kw)


def _seats_in_use(seats: int, used: int) -> str:
    if seats == 0:
        return "has no seats"
    if seats == 1:
        return "has 1 seat and it is in use" if used == 1 else f"has 1 seat and {used} are in use"
    return f"has {seats} seats and {'all ' if used == seats else ''}{used} are in use"


def resource_not_found(endpoint: str, resource_id: str) -> NotFoundException:
    return NotFoundException(detail=f"{endpoint} {resource_id!r} not found")


def from_validation_error(error: ValidationError) -> SCIMException:
    """Turn a pydantic validation failure of a SCIM payload into the SCIM error it stands for.

    scim2-models raises its own exceptions inside validators as pydantic errors
    whose context carries ``scimType`` and ``status``; anything else pydantic
    refuses (a missing required attribute, a wrong type) is an ``invalidValue``.
    """
    details = []
    for item in error.errors():
        context = item.get("ctx") or {}
        if context.get("scim_type") or context.get("status"):
            exc = SCIMException(detail=item["msg"])
            exc.status = int(context.get("status") or 400)
            exc.scim_type = str(context.get("scim_type") or "")
            return exc
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "__root__")
        details.append(f"{location}: {item['msg']}" if location else item["msg"])
    return InvalidValueException(detail="; ".join(details) or "invalid payload")


def error_document(exc: SCIMException) -> dict[str, Any]:
    """The RFC 7644 §3.12 body: ``status`` is a string, ``scimType`` only when there is one."""
    error: Error = exc.to_error()
    body: dict[str, Any] = {"schemas": [Error.__schema__], "status": str(exc.status)}
    if exc.scim_type:
        body["scimType"] = exc.scim_type
    body["detail"] = error.detail or exc.detail
    return body
