"""A browser, as the suites that sign people in need one: it posts forms, follows redirects
(or stops at the first, to judge it) and keeps each site's cookies, every exchange in the
check's transcript.

Why not aiohttp's cookie jar: the runner's session keeps no cookies for an IP address (most
servers under test run on ``127.0.0.1``), and a check wants a browser of its own that starts
empty and is gone with the check. Cookies are kept per site (scheme, host and port) and by
name; their paths on the sites the suites visit never overlap in a way that matters.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field

from conformance.http import Response, ScimHttp

MAX_REDIRECTS = 10
REDIRECTS = (301, 302, 303, 307)
FORM = "application/x-www-form-urlencoded"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,*/*;q=0.8"
HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def site(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Browser:
    """One browser on ``http`` (relative paths are under its base URL, absolute URLs go
    anywhere), with the cookies each site set."""

    http: ScimHttp
    cookies: dict[str, dict[str, str]] = field(default_factory=dict)
    """Site -> cookie name -> value."""

    async def go(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None = None,
        *,
        follow: bool = True,
    ) -> Response:
        """Send a request and, with ``follow``, its redirects; the last response."""
        url = self.http.url(path)
        body = urllib.parse.urlencode(form) if form is not None else None
        for _ in range(MAX_REDIRECTS):
            response = await self.send(method, url, body)
            location = response.header("Location")
            if not follow or response.status not in REDIRECTS or not location:
                return response
            url = urllib.parse.urljoin(url, location)
            method, body = "GET", None
        return response

    async def fill(self, page: str, form: Mapping[str, str], action: str | None = None) -> Response:
        """Open ``page`` and post its form as a person does: the page's hidden fields (such as
        a form token against login CSRF) with the ``form`` typed in, to ``action`` (the page's
        own path if None); redirects followed."""
        opened = await self.go("GET", page)
        hidden = {name: html.unescape(value) for name, value in HIDDEN_INPUT.findall(opened.text)}
        return await self.go("POST", action or page, {**hidden, **form})

    async def send(self, method: str, url: str, body: str | None) -> Response:
        """One request with this site's cookies; the cookies it sets are kept."""
        headers = {"Accept": BROWSER_ACCEPT}
        jar = self.cookies.setdefault(site(url), {})
        if jar:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
        if body is not None:
            headers["Content-Type"] = FORM
        response = await self.http.request(method, url, raw_body=body, headers=headers, auth=False)
        for cookie in response.set_cookies:
            name, _, rest = cookie.partition("=")
            jar[name.strip()] = rest.split(";", 1)[0]
        return response
