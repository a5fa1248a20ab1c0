"""Fetching an IdP's metadata from the URL an admin pastes (Okta's and JumpCloud's "metadata URL").

The server makes this request on the admin's behalf, so it is held short: http or https only,
also after redirects (aiohttp refuses a redirect to any other scheme), a total time limit, and a
size cap enforced while reading, since a hostile or broken URL must cost a 400 and nothing more.
"""

from __future__ import annotations

import aiohttp
from scim2_models import InvalidValueException

FETCH_TIMEOUT_SECONDS = 10
MAX_METADATA_BYTES = 1024 * 1024
MAX_REDIRECTS = 5
ACCEPT = "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8"


async def fetch_metadata(url: str) -> bytes:
    """The document at ``url`` (already checked to be an absolute http(s) URL)."""
    timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, max_redirects=MAX_REDIRECTS, headers={"Accept": ACCEPT}) as response,
        ):
            if response.status != 200:
                raise InvalidValueException(
                    detail=f"fetching the IdP metadata from {url} answered HTTP {response.status}"
                )
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_METADATA_BYTES:
                    raise InvalidValueException(
                        detail=f"the IdP metadata at {url} exceeds {MAX_METADATA_BYTES} bytes"
                    )
            return bytes(body)
    except TimeoutError:
        reason = f"no answer within {FETCH_TIMEOUT_SECONDS} s"
    except aiohttp.ClientError as error:
        reason = str(error) or type(error).__name__
    raise InvalidValueException(detail=f"cannot fetch the IdP metadata from {url}: {reason}")
