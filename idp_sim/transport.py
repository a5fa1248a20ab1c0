"""The HTTP client layer: one IdP's exact headers, query encoding, retries and journal.

Why a layer of its own: a profile only says *what* to send; how it is put on the wire (header set
and order, ``%20`` vs ``+``, parameter order, 429 back-off) must be exactly the IdP's, and every
exchange must reach the journal, so all of that lives here and nowhere else.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import aiohttp
from yarl import URL

from idp_sim.journal import Journal, JournalEntry

AuthForm = Literal["bearer", "header", "basic"]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class HeaderProfile:
    """The headers one IdP sends, in its order; ``None`` means the header is not sent at all.

    ``auth``: ``bearer`` → ``Authorization: Bearer <token>``; ``header`` → Okta's raw
    ``Authorization: <token>``; ``basic`` → ``Authorization: Basic base64(token)`` where the
    token is ``user:password``.
    """

    user_agent: str | None
    accept: str | None = "application/scim+json"
    accept_charset: str | None = None
    content_type: str | None = "application/scim+json"
    auth: AuthForm = "bearer"
    content_type_on_get: bool = False
    content_type_on_delete: bool = False
    extra: tuple[tuple[str, str], ...] = ()

    def authorization(self, token: str) -> str:
        if self.auth == "header":
            return token
        if self.auth == "basic":
            return "Basic " + base64.b64encode(token.encode()).decode()
        return f"Bearer {token}"

    def build(self, method: str, token: str, has_body: bool) -> dict[str, str]:
        """Headers for one request, in the IdP's printed order (see docs/idp-traffic.md)."""
        headers: dict[str, str] = {}
        if self.accept is not None:
            headers["Accept"] = self.accept
        if self.accept_charset is not None:
            headers["Accept-Charset"] = self.accept_charset
        wants_type = (
            has_body
            or (method == "GET" and self.content_type_on_get)
            or (method == "DELETE" and self.content_type_on_delete)
        )
        if self.content_type is not None and wants_type:
            headers["Content-Type"] = self.content_type
        if self.user_agent is not None:
            headers["User-Agent"] = self.user_agent
        headers["Authorization"] = self.authorization(token)
        headers.update(self.extra)
        return headers


@dataclass(frozen=True)
class RetryPolicy:
    """How an IdP meets a 429 (docs/idp-traffic.md). The defaults are Okta's documented rule:
    wait ``Retry-After`` seconds when it is an integer, else ``default_wait`` (an HTTP-date
    counts as "else"); double the wait on each repeat; give up after ``max_attempts`` requests
    in all, or when the next wait would take the waits of one request past ``max_total_wait``
    seconds, and hand back the last 429.

    ``honour_retry_after=False`` always waits ``default_wait`` (Entra's next cycle),
    ``backoff`` is the factor of each repeat's wait, and ``quarantine`` makes giving up stop the
    whole job: the transport sends nothing more (Entra's quarantine)."""

    default_wait: float = 300.0
    max_attempts: int = 10
    max_total_wait: float = 3600.0
    honour_retry_after: bool = True
    backoff: float = 2.0
    quarantine: bool = False

    def wait(self, retry_after: str | None, repeat: int) -> float:
        value = (retry_after or "").strip()
        use_header = self.honour_retry_after and value.isdigit()
        base = float(int(value)) if use_header else self.default_wait
        return base * self.backoff**repeat

    def next_wait(self, retry_after: str | None, repeat: int, waited: float) -> float | None:
        """How long to wait before trying again after the ``repeat``-th 429 (from 0), having
        waited ``waited`` seconds already; None: give up."""
        if repeat + 1 >= self.max_attempts:
            return None
        wait = self.wait(retry_after, repeat)
        return None if waited + wait > self.max_total_wait else wait


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def encode_query(params: Sequence[tuple[str, str | int]], space: Literal["%20", "+"]) -> str:
    """``k=v&…`` in the given order; spaces as ``%20`` (Okta ≥2019) or ``+`` (Okta 2018)."""
    quote_value = quote_plus if space == "+" else quote
    return "&".join(f"{k}={quote_value(str(v), safe='')}" for k, v in params)


class Transport:
    """Sends requests for one profile against one SCIM base URL (any server, plain HTTP)."""

    def __init__(
        self,
        base_url: str,
        token: str,
        headers: HeaderProfile,
        *,
        journal: Journal | None = None,
        space: Literal["%20", "+"] = "%20",
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        sort_keys: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.header_profile = headers
        self.journal = journal if journal is not None else Journal()
        self.space = space
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.sort_keys = sort_keys
        self.quarantined: str | None = None
        """Why the job is quarantined (its retry policy gave up on a 429): nothing more is
        sent."""
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # aiohttp would add its own Accept, Accept-Encoding and User-Agent: the IdP's set only.
            self._session = aiohttp.ClientSession(
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    def serialize(self, body: Any) -> bytes:
        return json.dumps(body, separators=(",", ":"), sort_keys=self.sort_keys).encode()

    async def request(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str | int]] = (),
        body: Any = None,
        *,
        raw_query: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One logical request, repeated on 429 per :class:`RetryPolicy`; every try journaled.
        A quarantined job sends nothing: the answer is status 0 saying so."""
        if self.quarantined is not None:
            return Response(0, None, error=self.quarantined)
        qs = raw_query if raw_query is not None else encode_query(query, self.space)
        target = path + (f"?{qs}" if qs else "")
        data = self.serialize(body) if body is not None else None
        sent = (
            headers
            if headers is not None
            else self.header_profile.build(method, self.token, data is not None)
        )
        repeat, waited = 0, 0.0
        while True:
            response = await self._send(method, target, sent, body, data, repeat + 1)
            if response.status != 429:
                return response
            wait = self.retry.next_wait(response.headers.get("Retry-After"), repeat, waited)
            if wait is None:
                if self.retry.quarantine:
                    self.quarantined = (
                        f"quarantined: {method} {path} was still refused with 429 after "
                        f"{repeat + 1} attempts"
                    )
                return response
            await self.sleep(wait)
            repeat, waited = repeat + 1, waited + wait

    async def _send(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Any,
        data: bytes | None,
        attempt: int,
    ) -> Response:
        url = self.base_url + target
        started = time.monotonic()
        try:
            async with self._client().request(
                method, URL(url, encoded=True), headers=headers, data=data
            ) as raw:
                text = await raw.text()
                result = Response(raw.status, _parse(text), dict(raw.headers))
        except TimeoutError:
            result = Response(0, None, error=f"timeout after {self.timeout}s")
        except aiohttp.ClientError as exc:
            result = Response(0, None, error=f"{type(exc).__name__}: {exc}")
        self.journal.record(
            JournalEntry(
                method=method,
                url=url,
                path=target,
                headers=dict(headers),
                body=body,
                status=result.status,
                response_body=result.body,
                elapsed=round(time.monotonic() - started, 6),
                attempt=attempt,
                error=result.error,
                response_headers={
                    k: v
                    for k, v in result.headers.items()
                    if k.lower() in ("retry-after", "location", "etag", "content-type")
                },
            )
        )
        return result


def _parse(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text
