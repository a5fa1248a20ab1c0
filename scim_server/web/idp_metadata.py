"""Fetching an IdP's metadata from the URL an admin pastes (Okta's and JumpCloud's "metadata URL").

The server makes this request on the admin's behalf, so it is held short like every request to
an IdP (``idp_http``), since a hostile or broken URL must cost a 400 and nothing more.
"""

from __future__ import annotations

import aiohttp
from scim2_models import InvalidValueException

from scim_server.web import idp_http
from scim_server.web.idp_http import MAX_REDIRECTS, TooLarge, client_session, read_limited

MAX_METADATA_BYTES = 1024 * 1024
ACCEPT = "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8"


async def fetch_metadata(url: str) -> bytes:
    """The document at ``url`` (already checked to be an absolute http(s) URL)."""
    try:
        async with (
            client_session() as session,
            session.get(url, max_redirects=MAX_REDIRECTS, headers={"Accept": ACCEPT}) as response,
        ):
            if response.status != 200:
                raise InvalidValueException(
                    detail=f"fetching the IdP metadata from {url} answered HTTP {response.status}"
                )
            return await read_limited(response, MAX_METADATA_BYTES)
    except TooLarge:
        raise InvalidValueException(
            detail=f"the IdP metadata at {url} exceeds {MAX_METADATA_BYTES} bytes"
        ) from None
    except TimeoutError:
        reason = f"no answer within {idp_http.TIMEOUT_SECONDS} s"
    except aiohttp.ClientError as error:
        reason = str(error) or type(error).__name__
    raise InvalidValueException(detail=f"cannot fetch the IdP metadata from {url}: {reason}")
