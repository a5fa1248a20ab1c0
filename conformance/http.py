"""The runner's only way to talk to a server: plain HTTP that records every exchange.

A verdict is only worth as much as the evidence behind it, so each request a check
makes, and the response it got, lands in that check's transcript for the reports.
Nothing here knows about any particular server: paths are relative to the base URL.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

SCIM_JSON = "application/scim+json"
RETRY_ATTEMPTS = 5
"""Requests in all for one answered 429 after 429, each after the server's ``Retry-After``."""
RETRY_TOTAL_WAIT = 30.0
"""The longest one request waits on 429s in all: past it, the last 429 is the answer."""
_BODY_LIMIT = 100_000
"""Transcripts keep at most this many characters of a body: enough for a whole ``/Schemas``
(so it stays JSON the HTML report can pretty-print), and the HTML report shows less."""


@dataclass
class Exchange:
    """One request and the response it got, as the reports show it."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    elapsed_ms: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Response:
    """A response, fully read: checks inspect it after the connection is released."""

    status: int
    headers: dict[str, str]
    text: str
    set_cookies: list[str] = field(default_factory=list)
    """Every ``Set-Cookie`` header, which ``headers`` (one value per name) cannot hold."""

    @property
    def content_type(self) -> str:
        return self.header("Content-Type") or ""

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (the check then says so)."""
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= _BODY_LIMIT:
        return text
    return f"{text[:_BODY_LIMIT]}… ({len(text) - _BODY_LIMIT} more characters)"


def _redact(headers: dict[str, str]) -> dict[str, str]:
    """Transcripts end up in CI artefacts: never write a bearer token into them."""
    out = {}
    for key, value in headers.items():
        if key.lower() == "authorization" and len(value) > 16:
            value = value[:10] + "…(redacted)"
        out[key] = value
    return out


def _retry_wait(response: Response) -> float | None:
    """The seconds to wait before sending a request answered ``response`` again; None: don't."""
    if response.status != 429:
        return None
    value = (response.header("Retry-After") or "").strip()
    return float(min(int(value), RETRY_TOTAL_WAIT)) if value.isdigit() else 1.0


class ScimHttp:
    """An HTTP client on one SCIM base URL that appends each exchange to a transcript."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        transcript: list[Exchange],
        timeout: float = 30.0,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.transcript = transcript
        self.timeout = timeout

    def bound_to(self, transcript: list[Exchange]) -> ScimHttp:
        """The same connection, recording into another check's transcript."""
        return ScimHttp(self.session, self.base_url, self.token, transcript, self.timeout)

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + (path if path.startswith("/") else "/" + path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        raw_body: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        auth: bool = True,
        retry: bool = True,
    ) -> Response:
        """Send one request; ``auth=False`` leaves out the Authorization header entirely.

        A 429 (the server's rate limit) is sent again after its ``Retry-After``, a few times
        (every try is in the transcript): a check judges the server's answer to the request,
        not its limit on how fast the runner sends them. ``retry=False`` answers the 429
        itself, for the checks that judge the limit.
        """
        sent: dict[str, str] = {"Accept": SCIM_JSON}
        if auth:
            sent["Authorization"] = f"Bearer {self.token}"
        body: str | None = raw_body
        if json_body is not None:
            body = json.dumps(json_body)
        if body is not None:
            sent["Content-Type"] = SCIM_JSON
        sent.update(headers or {})
        url = self.url(path)
        if params:
            query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
            url = f"{url}{'&' if '?' in url else '?'}{query}"
        waited = 0.0
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            response = await self._exchange(method, url, sent, body)
            wait = _retry_wait(response)
            if (
                not retry
                or wait is None
                or attempt == RETRY_ATTEMPTS
                or waited + wait > RETRY_TOTAL_WAIT
            ):
                break
            await asyncio.sleep(wait)
            waited += wait
        return response

    async def _exchange(
        self, method: str, url: str, sent: dict[str, str], body: str | None
    ) -> Response:
        """One round trip, recorded in the transcript."""
        exchange = Exchange(method, url, _redact(sent), _clip(body))
        self.transcript.append(exchange)
        started = time.perf_counter()
        try:
            async with self.session.request(
                method,
                url,
                data=body.encode() if body is not None else None,
                headers=sent,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as raw:
                text = await raw.text(errors="replace")
                response = Response(
                    raw.status, dict(raw.headers), text, raw.headers.getall("Set-Cookie", [])
                )
        except Exception as exc:  # recorded, then the check errors with it
            exchange.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            exchange.elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        exchange.status = response.status
        exchange.response_headers = response.headers
        exchange.response_body = _clip(text) or ""
        return response

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("POST", path, json_body=body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("PUT", path, json_body=body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("PATCH", path, json_body=body, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        return await self.request("DELETE", path, **kw)
