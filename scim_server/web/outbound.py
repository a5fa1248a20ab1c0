"""The server's deliveries to receivers (webhooks, SSF push): the engine's ``Sender`` on aiohttp.

Each POST is bounded as ``idp_http.py`` bounds the requests to IdPs: a time limit per attempt, at
most ``EXCERPT_BYTES`` of the answer read, no redirect followed (a 3xx is a failed attempt).
And each reaches only public addresses unless private ones are allowed: the check runs on the
very addresses the connection uses, after DNS resolution (``GuardedResolver``), so a name that
was public at registration and resolves to 127.0.0.1 now is refused now.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from collections.abc import Mapping

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from scim_server.core.delivery import Answer
from scim_server.core.webhooks import TargetRefused, refusal

EXCERPT_BYTES = 1024
"""How much of a receiver's answer is read (and kept, shortened, in the delivery log)."""


class GuardedResolver(AbstractResolver):
    """The default resolver, refusing a name any of whose addresses is no public one."""

    def __init__(self) -> None:
        self.resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.resolver.resolve(host, port, family)
        for result in found:
            if (why := refusal(result["host"])) is not None:
                raise TargetRefused(f"{host} resolves to {result['host']}: {why}")
        return found

    async def close(self) -> None:
        await self.resolver.close()


class HttpSender:
    """:class:`~scim_server.core.delivery.Sender` over one aiohttp session for the process."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = None if self.allow_private else GuardedResolver()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> Answer:
        started = time.perf_counter()
        try:
            self._refuse_literal(url)
            async with self._client().post(
                url,
                data=body,
                headers=dict(headers),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                excerpt = await response.content.read(EXCERPT_BYTES)
                status = response.status
        except TargetRefused as refused:
            return Answer(None, f"refused: {refused}", _ms(started))
        except TimeoutError:
            return Answer(None, f"no answer within {timeout:g} s", _ms(started))
        except aiohttp.ClientError as error:
            cause = error.__cause__ or error.__context__
            if isinstance(cause, TargetRefused):
                return Answer(None, f"refused: {cause}", _ms(started))
            return Answer(None, f"cannot reach: {error or type(error).__name__}", _ms(started))
        return Answer(status, excerpt.decode(errors="replace"), _ms(started))

    def _refuse_literal(self, url: str) -> None:
        """An IP address as the host is never resolved, so it is checked here."""
        host = urllib.parse.urlsplit(url).hostname or ""
        if self.allow_private:
            return
        try:
            why = refusal(host)
        except ValueError:
            return  # a name: the resolver checks what it resolves to
        if why is not None:
            raise TargetRefused(f"{host}: {why}")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
