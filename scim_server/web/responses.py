"""Reading SCIM request bodies and writing SCIM responses (aiohttp side)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from scim2_models import InvalidSyntaxException, InvalidValueException, PayloadTooLargeException

from scim_server.core.errors import UnsupportedMediaTypeException

SCIM_CONTENT_TYPE = "application/scim+json"
ACCEPTED_CONTENT_TYPES = frozenset({SCIM_CONTENT_TYPE, "application/json"})


def scim_response(
    payload: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        headers=headers,
        content_type=SCIM_CONTENT_TYPE,
        charset="utf-8",
    )


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
