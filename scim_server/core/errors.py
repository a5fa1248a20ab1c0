"""The errors the server answers with.

scim2-models already models RFC 7644 §3.12 as a hierarchy of ``SCIMException``
classes, one per ``scimType`` or status; the protocol code raises those. This
module adds the few HTTP-level failures the RFC leaves without a class, and the
one translation every error goes through on its way to the wire: ``scim_error``,
shared by the HTTP middleware, Bulk (one answer per operation) and the browser pages.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Error,
    ForbiddenException,
    InvalidSyntaxException,
    InvalidValueException,
    NotFoundException,
    SCIMException,
)

from scim_server.storage.errors import StorageUnavailable

log = logging.getLogger(__name__)


class RetryLater(SCIMException):
    """A refusal that may not hold if the same request is sent again later: answered with
    ``Retry-After: retry_after_seconds`` (an integer, at least 1)."""

    retry_after_seconds = 5


class ServiceUnavailableException(RetryLater):
    """503: the request could not be served now and may succeed if sent again later.

    Raise one of the subclasses, which say why.
    """

    status = 503
    _default_detail = "The service is temporarily unavailable, retry later"


class RateLimitExceeded(RetryLater):
    """429: the tenant made more requests than its rate limit allows.

    scim2-models has no class for it (its ``TooManyException`` is the 400 ``tooMany`` of a
    filter). A tenant earns a request back at least every second (its limit is at least one
    per second), hence ``Retry-After: 1``.
    """

    status = 429
    retry_after_seconds = 1

    def __init__(self, *, tenant: str, requests_per_second: int, **kw: Any) -> None:
        self.tenant = tenant
        self.requests_per_second = requests_per_second
        super().__init__(
            detail=f"tenant {tenant!r} is over its rate limit of {requests_per_second} "
            "requests per second; retry after the time Retry-After gives",
            **kw,
        )


class DatabaseUnavailable(ServiceUnavailableException):
    """The database cannot be reached or did not answer in time."""

    _default_detail = "The database is unavailable, retry later"


class TooManyConcurrentChanges(ServiceUnavailableException):
    """A conditional write lost to concurrent writers every time it was tried: nothing is
    wrong with the request, the data it changes is busy."""

    _default_detail = "Too many concurrent changes, retry later"


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


def unknown_tenant(name: str) -> NotFoundException:
    return NotFoundException(detail=f"no tenant {name!r}")


def resource_not_found(endpoint: str, resource_id: str) -> NotFoundException:
    return NotFoundException(detail=f"{endpoint} {resource_id!r} not found")


UNDECLARED = "no schema of this request declares this attribute"


def from_validation_error(failure: ValidationError) -> SCIMException:
    """Turn a pydantic validation failure of a SCIM payload into the SCIM error it stands for.

    scim2-models raises its own exceptions inside validators as pydantic errors
    whose context carries ``scimType`` and ``status``. An attribute no schema declares
    (pydantic's ``extra_forbidden``) makes the body not "conform to the request schema",
    RFC 7644 §3.12's ``invalidSyntax``; anything else pydantic refuses (a missing required
    attribute, a wrong type) is an ``invalidValue``.
    """
    details = []
    undeclared = False
    for item in failure.errors():
        context = item.get("ctx") or {}
        if context.get("scim_type") or context.get("status"):
            return SCIMException.from_error(Error.from_validation_error(item))
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "__root__")
        extra = item["type"] == "extra_forbidden"
        message = UNDECLARED if extra else item["msg"]
        details.append(f"{location}: {message}" if location else message)
        undeclared = undeclared or extra
    detail = "; ".join(details) or "invalid payload"
    if undeclared:
        return InvalidSyntaxException(detail=detail)
    return InvalidValueException(detail=detail)


def scim_error(exc: Exception, during: str) -> SCIMException:
    """The SCIM error a failure is answered with, wherever it was raised.

    A ``SCIMException`` is its own answer. The database unavailable is a 503
    (``DatabaseUnavailable``), logged as a warning. Anything else is a failure of the
    server's own: logged with its traceback, and answered 500 without any detail of it.
    ``during`` says what was being done, for the log (``GET /scim/v2/acme/Users``).
    """
    if isinstance(exc, SCIMException):
        return exc
    if isinstance(exc, StorageUnavailable):
        log.warning("database unavailable during %s: %s", during, exc)
        return DatabaseUnavailable()
    log.error("unexpected failure during %s", during, exc_info=exc)
    return InternalErrorException()


def error_status(exc: SCIMException) -> int:
    """The HTTP status ``exc`` is answered with: its Error's, which ``SCIMException.from_error``
    keeps even where no exception class has that status."""
    return exc.to_error().status or exc.status


def error_document(exc: SCIMException) -> dict[str, Any]:
    """The RFC 7644 §3.12 body: ``status`` is a string, ``scimType`` only when there is one."""
    error: Error = exc.to_error()
    body: dict[str, Any] = {"schemas": [Error.__schema__], "status": str(error_status(exc))}
    if error.scim_type:
        body["scimType"] = error.scim_type
    body["detail"] = error.detail or exc.detail
    return body
