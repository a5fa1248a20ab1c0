"""Reading SCIM request bodies and writing SCIM responses (aiohttp side)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson
from aiohttp import web
from scim2_models import InvalidSyntaxException, InvalidValueException, PayloadTooLargeException

from scim_server.core.errors import UnsupportedMediaTypeException
from scim_server.core.rendering import MemberStream

SCIM_CONTENT_TYPE = "application/scim+json"
ACCEPTED_CONTENT_TYPES = frozenset({SCIM_CONTENT_TYPE, "application/json"})

STREAM_FROM_BYTES = 256 * 1024
"""A document with group members is sent whole, with a ``Content-Length``, when it is at most
this long; a longer one is streamed from there on (chunked), a batch of members at a time."""

log = logging.getLogger(__name__)


def scim_response(
    payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return scim_response_bytes(orjson.dumps(payload), status=status, headers=headers)


def scim_response_bytes(
    body: bytes, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """An ``application/scim+json`` response of a document already serialised."""
    return web.Response(
        body=body, status=status, headers=headers, content_type=SCIM_CONTENT_TYPE, charset="utf-8"
    )


async def send_scim(
    request: web.Request,
    document: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """A SCIM document whose groups' ``members`` (``MemberStream``) are read as it is written.

    Up to ``STREAM_FROM_BYTES`` it is built in memory and answered as ``scim_response`` does,
    so a failure meanwhile is still answered as an error (§3.12). Past that, the status and
    headers are sent and the rest is streamed, one batch of members at a time: whatever
    could refuse the request (the group, the token, the selection, the ETag) was decided
    before. A failure after the first byte cannot change the status any more: it is logged
    and the connection closed, so the client sees a body cut short, never an error page in it.
    """
    chunks = _document_chunks(document)
    held: list[bytes] = []
    size = 0
    async for chunk in chunks:
        held.append(chunk)
        size += len(chunk)
        if size > STREAM_FROM_BYTES:
            break
    else:
        return scim_response_bytes(b"".join(held), status=status, headers=headers)
    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = SCIM_CONTENT_TYPE
    response.charset = "utf-8"
    await response.prepare(request)
    try:
        await response.write(b"".join(held))
        del held
        async for chunk in chunks:
            await response.write(chunk)
    except ConnectionResetError:
        log.info("%s %s: the client left before the response ended", request.method, request.path)
    except Exception:
        log.exception("%s %s: the response was cut short", request.method, request.path)
        if request.transport is not None:
            request.transport.close()
    finally:
        await chunks.aclose()  # the members' cursor, at once
    return response


async def _document_chunks(document: dict[str, Any]) -> AsyncGenerator[bytes]:
    """A resource, or a ListResponse of resources, as JSON text in pieces."""
    resources = document.get("Resources")
    if not isinstance(resources, list):
        async for chunk in _resource_chunks(document):
            yield chunk
        return
    envelope = orjson.dumps({key: value for key, value in document.items() if key != "Resources"})
    yield envelope[:-1] + b',"Resources":['
    for position, resource in enumerate(resources):
        if position:
            yield b","
        async for chunk in _resource_chunks(resource):
            yield chunk
    yield b"]}"


async def _resource_chunks(resource: dict[str, Any]) -> AsyncIterator[bytes]:
    """A resource as JSON text: its attributes, then its members a batch at a time."""
    members = resource.get("members")
    if not isinstance(members, MemberStream):
        yield orjson.dumps(resource)
        return
    head = orjson.dumps({key: value for key, value in resource.items() if key != "members"})
    sent = False
    async for batch in members:
        yield (b"," if sent else head[:-1] + b',"members":[') + orjson.dumps(batch)[1:-1]
        sent = True
    yield b"]}" if sent else head


def json_response(payload: Any, *, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload), status=status, content_type="application/json", charset="utf-8"
    )


async def read_json(request: web.Request) -> Any:
    """The request body as JSON: SCIM or plain JSON media types only (415 otherwise)."""
    if request.content_type not in ACCEPTED_CONTENT_TYPES and request.headers.get("Content-Type"):
        raise UnsupportedMediaTypeException(
            detail=f"{request.content_type} is not accepted; send {SCIM_CONTENT_TYPE}"
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLargeException(
            detail="the body exceeds the configured size limit"
        ) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidSyntaxException(detail=f"the body is not valid JSON: {error}") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidSyntaxException(detail="the body must be a JSON object")
    return body


def limit_in(body: dict[str, Any], key: str, low: int, high: int, null_means: str) -> int | None:
    """An admin setting's ``{key: N}``, an integer from ``low`` to ``high``, or ``null`` (which
    ``null_means``): 400 ``invalidValue`` when it is missing or anything else."""
    if key not in body:
        raise InvalidValueException(
            detail=f'send {{"{key}": N}}, or {{"{key}": null}} for {null_means}'
        )
    value = body[key]
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high
    ):
        raise InvalidValueException(
            detail=f"{key} is an integer from {low} to {high}, or null for {null_means}"
        )
    return value


def public_root(request: web.Request, configured: str | None) -> str:
    """The URL clients reach this server at: the configured public URL, else the request's own."""
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"
