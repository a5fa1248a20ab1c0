"""The broken server: a small aiohttp proxy in front of the real one that breaks one rule.

A ``Violation`` sees each request and the ``Forward`` that sends it on to the real server; the
combinators below (``when``, ``answer`` and the edits they take) build the violations the
conformance tests show every check failing against. Redirects and cookies pass through as
they are, for the client to follow and keep, as a browser of the sign-in pages does.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web


class JsonBody:
    """A proxied message's body, read and rewritten as JSON."""

    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def set_json(self, value: Any) -> None:
        self.body = json.dumps(value).encode()


@dataclass
class Req(JsonBody):
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Resp(JsonBody):
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Forward = Callable[[Req], Awaitable[Resp]]
Violation = Callable[[Req, Forward], Awaitable[Resp]]
_PASSED_REQUEST = (
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "accept",
    "cookie",
)
_PASSED_RESPONSE = (
    "allow",
    "content-type",
    "location",
    "etag",
    "www-authenticate",
    "retry-after",
    "set-cookie",
)


async def start_proxy(
    aiohttp_server: Any, real_base: str, violation: Violation, ssl: SSLContext | None = None
) -> str:
    """A server at a new URL that forwards to ``real_base`` through ``violation``; over TLS
    with ``ssl`` (its URL then starts ``https``)."""
    sessions: list[aiohttp.ClientSession] = []
    """The proxy's client, for as long as its app runs (made and closed with it)."""
    proxy_base = ""

    async def forward(req: Req) -> Resp:
        url = real_base + req.path
        if req.query:
            url += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in req.query.items())
        headers = {k: v for k, v in req.headers.items() if k.lower() in _PASSED_REQUEST}
        async with sessions[0].request(
            req.method, url, data=req.body or None, headers=headers, allow_redirects=False
        ) as raw:
            body = (await raw.read()).replace(real_base.encode(), proxy_base.encode())
            kept = {
                k: v.replace(real_base, proxy_base)
                for k, v in raw.headers.items()
                if k.lower() in _PASSED_RESPONSE
            }
            return Resp(raw.status, kept, body)

    async def handle(request: web.Request) -> web.Response:
        req = Req(
            request.method,
            "/" + request.match_info["tail"],
            dict(request.query),
            dict(request.headers),
            await request.read(),
        )
        resp = await violation(req, forward)
        empty = resp.status in (204, 304)
        return web.Response(
            status=resp.status, headers=resp.headers, body=None if empty else resp.body
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)

    async def client(_: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            sessions.append(session)
            yield

    app.cleanup_ctx.append(client)
    server = await aiohttp_server(app, ssl=ssl)
    proxy_base = str(server.make_url("")).rstrip("/")
    return proxy_base


def when(
    predicate: Callable[[Req], bool],
    before: Callable[[Req], None] | None = None,
    after: Callable[[Req, Resp], None] | None = None,
) -> Violation:
    """A violation that edits matching requests before and/or their responses after."""

    async def violation(req: Req, forward: Forward) -> Resp:
        if not predicate(req):
            return await forward(req)
        if before:
            before(req)
        resp = await forward(req)
        if after:
            after(req, resp)
        return resp

    return violation


def answer(
    predicate: Callable[[Req], bool],
    status: int,
    body: Any = None,
    content_type: str = "application/scim+json",
) -> Violation:
    """A violation that answers matching requests itself, without the real server."""

    async def violation(req: Req, forward: Forward) -> Resp:
        if not predicate(req):
            return await forward(req)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Resp(status, {"Content-Type": content_type}, raw)

    return violation


def is_(method: str, pattern: str) -> Callable[[Req], bool]:
    return lambda req: req.method == method and re.fullmatch(pattern, req.path) is not None


def mutate(fn: Callable[[dict[str, Any]], None]) -> Callable[[Req, Resp], None]:
    def after(req: Req, resp: Resp) -> None:
        body = resp.json()
        if isinstance(body, dict):
            fn(body)
            resp.set_json(body)

    return after


def rewrite_filter(fn: Callable[[str], str]) -> Callable[[Req], None]:
    def before(req: Req) -> None:
        if "filter" in req.query:
            req.query["filter"] = fn(req.query["filter"])

    return before


def set_status(status: int) -> Callable[[Req, Resp], None]:
    def after(req: Req, resp: Resp) -> None:
        resp.status = status

    return after


def patch_ops(fn: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> Callable[[Req], None]:
    def before(req: Req) -> None:
        body = req.json()
        body["Operations"] = fn(body["Operations"])
        req.set_json(body)

    return before


def case_sensitive_username(req: Req, resp: Resp) -> None:
    wanted = re.fullmatch(r'userName eq "(.*)"', req.query.get("filter", ""))
    body = resp.json()
    if wanted and isinstance(body, dict):
        body["Resources"] = [
            r for r in body.get("Resources", []) if r.get("userName") == wanted.group(1)
        ]
        body["totalResults"] = len(body["Resources"])
        resp.set_json(body)
