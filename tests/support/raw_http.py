"""Requests written byte for byte on a socket, for what an HTTP client library refuses to send
(bytes that are not UTF-8 in a header or a path, request lines over the parser's limits)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient


@dataclass(frozen=True)
class RawAnswer:
    status: int
    head: bytes
    """The status line and headers, lowercased."""
    body: bytes


async def raw_request(
    client: TestClient[Any, Any], request_line: bytes, *headers: bytes
) -> RawAnswer:
    """Send ``request_line`` and ``headers`` (then ``Connection: close``) and read the answer."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        lines = [request_line, b"Host: x", *headers, b"Connection: close"]
        writer.write(b"\r\n".join(lines) + b"\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:  # a server that never answers, or resets, leaves no socket open either
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return RawAnswer(int(head.split(b" ", 2)[1]), head.lower(), body)
