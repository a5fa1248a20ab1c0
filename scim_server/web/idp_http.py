"""The server's own requests to identity providers: metadata, discovery, keys, tokens, userinfo.

Each is held short, since an IdP that is down, slow or hostile must cost a refusal with its
reason and nothing more: http or https only (also after redirects: aiohttp refuses a redirect
to another scheme), a total time limit, and a size cap enforced while reading.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

from scim_server.core.sso.oidc import OidcRejected

TIMEOUT_SECONDS = 10
MAX_REDIRECTS = 5
MAX_JSON_BYTES = 256 * 1024
CHUNK_BYTES = 64 * 1024
JSON = "application/json"


class TooLarge(Exception):
    """A body over the cap; read no further."""


async def read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The response's body, or :class:`TooLarge` as soon as it passes ``limit`` bytes."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(CHUNK_BYTES):
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


def client_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS))


class IdpClient:
    """:class:`~scim_server.core.sso.oidc.IdpHttp` over aiohttp: every answer a JSON object of
    at most ``MAX_JSON_BYTES``, or :class:`OidcRejected` naming the request and the fault."""

    async def get_json(self, url: str, what: str, bearer: str | None = None) -> dict[str, Any]:
        headers = {"Accept": JSON, **({"Authorization": f"Bearer {bearer}"} if bearer else {})}
        return await self._json("GET", url, what, headers=headers)

    async def post_form(
        self, url: str, what: str, form: Mapping[str, str], client: tuple[str, str] | None
    ) -> dict[str, Any]:
        headers = {"Accept": JSON}
        if client is not None:
            # client_secret_basic (RFC 6749 §2.3.1): each part form-encoded, then Basic.
            parts = (urllib.parse.quote_plus(part) for part in client)
            headers["Authorization"] = aiohttp.encode_basic_auth(*parts)
        return await self._json("POST", url, what, headers=headers, data=dict(form))

    async def _json(self, method: str, url: str, what: str, **options: Any) -> dict[str, Any]:
        try:
            async with (
                client_session() as session,
                session.request(method, url, max_redirects=MAX_REDIRECTS, **options) as response,
            ):
                body = await read_limited(response, MAX_JSON_BYTES)
                status = response.status
        except TooLarge:
            raise OidcRejected(
                f"the IdP's {what} at {url} exceeds {MAX_JSON_BYTES} bytes"
            ) from None
        except TimeoutError:
            raise OidcRejected(
                f"the IdP's {what} at {url} did not answer within {TIMEOUT_SECONDS} s"
            ) from None
        except aiohttp.ClientError as error:
            raise OidcRejected(
                f"the IdP's {what} at {url} cannot be reached: {error or type(error).__name__}"
            ) from None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        if status != 200:
            raise OidcRejected(
                f"the IdP's {what} at {url} answered HTTP {status}{_oauth(document)}"
            )
        if not isinstance(document, dict):
            raise OidcRejected(f"the IdP's {what} at {url} is not a JSON object")
        return document


def _oauth(document: Any) -> str:
    """An OAuth error answer (RFC 6749 §5.2) as text, for the log: ``: invalid_grant (...)``."""
    if not isinstance(document, dict) or not isinstance(document.get("error"), str):
        return ""
    description = document.get("error_description")
    return f": {document['error']}" + (f" ({description})" if isinstance(description, str) else "")
