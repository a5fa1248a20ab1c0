"""The ``cross-instance`` suite: cross-instance sign-in for admins and the one-team policy.

Specific to this server (scim-toolkit): no standard defines instance groups, so the suite
speaks this server's admin API (``/admin/tenants``, ``/admin/instance-groups``, with
``--admin-token``) and its sign-in pages (``/signin``, ``/signin/instances`` and the
tenants' ``/sso/{tenant}/`` pages, by their element ids). Any server that offers the same is
judged by it. Each check builds its own world under the server's root (``--server-url``, else
the base URL without ``/scim/v2/{tenant}``): three tenants named ``scimconf-<run id>-…``, a
group of them, people provisioned by SCIM; and deletes the tenants afterwards. The sign-in is
driven as a browser drives it: forms posted, redirects followed, cookies kept, every exchange
in the transcript.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from conformance.admin import admin_http, server_root
from conformance.browser import Browser
from conformance.checks import Context, check, expect_object, expect_status, require
from conformance.http import Response, ScimHttp
from conformance.urns import PATCH_OP, USER

SUITE = "cross-instance"
SOURCE = "scim-toolkit issue 12 (docs/cross-instance.md); this server's own feature"
PASSWORD = "scimconf-Correct-Horse-7"
ADMIN_ROLE = "admin"
STATE = re.compile(r'name="state" value="([^"]*)"')
SIGNED_IN_USER = re.compile(r'id="signed-in-user">([^<]*)<')
INSTANCE_BUTTON = re.compile(r'id="instance-([^"]+)"')


@dataclass
class World:
    """Three tenants in one group (``primary``, ``member``, ``plain``), their SCIM APIs."""

    names: dict[str, str]
    scim: dict[str, ScimHttp]
    domain: str
    pages: ScimHttp
    """The server's root, on a session of its own that keeps no cookies (``Browser`` does)."""

    def login(self, local: str, role: str) -> str:
        """``local``'s login in the tenant of ``role``: the root one in the primary."""
        tenant = self.names[role]
        return f"{local}@{self.domain}" if role == "primary" else f"{local}+{tenant}@{self.domain}"

    async def provision(self, role: str, local: str, **attributes: Any) -> dict[str, Any]:
        body = {"schemas": [USER], "userName": self.login(local, role), **attributes}
        response = await self.scim[role].post("/Users", body)
        expect_status(response, 201, what=f"creating {body['userName']} in {self.names[role]}")
        return expect_object(response, "the created user")


@asynccontextmanager
async def world(context: Context, *, one_team: bool = False) -> AsyncIterator[World]:
    """Create the tenants and their group through the admin API; delete them afterwards."""
    admin = admin_http(context)
    server = server_root(context)
    prefix = context.fixtures.tracker.prefix
    names = {role: f"{prefix}{role}" for role in ("primary", "member", "plain")}
    domain = f"{context.fixtures.tracker.run_id}.scimconf.test"
    scim: dict[str, ScimHttp] = {}
    http = context.http
    pages = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    try:
        for role, name in names.items():
            response = await admin.post("/tenants", {"name": name})
            expect_status(response, 201, what=f"creating tenant {name}")
            token = str(expect_object(response, "the new tenant")["token"])
            base = f"{server}/scim/v2/{name}"
            scim[role] = ScimHttp(http.session, base, token, http.transcript, http.timeout)
        group = {
            "name": prefix.rstrip("-"),
            "primary": names["primary"],
            "domain": domain,
            "tenants": [names["member"], names["plain"]],
            "one_team": one_team,
        }
        expect_status(await admin.post("/instance-groups", group), 201, what="the group")
        root = ScimHttp(pages, server, "", http.transcript, http.timeout)
        yield World(names, scim, domain, root)
    finally:
        await pages.close()
        for name in names.values():
            await admin.delete(f"/tenants/{name}")


async def an_admin(space: World) -> str:
    """A person with a password, an administrator of the primary and the member tenant, and a
    plain login in the third: her root login."""
    roles = [{"value": ADMIN_ROLE}]
    await space.provision("primary", "ada", password=PASSWORD, roles=roles)
    await space.provision("member", "ada", roles=roles)
    await space.provision("plain", "ada")
    return space.login("ada", "primary")


async def signed_in(space: World, root: str) -> tuple[Browser, Response]:
    """A browser signed in with ``root``'s password at ``/signin``, and where it landed."""
    browser = Browser(space.pages)
    landed = await browser.fill("/signin", {"email": root, "password": PASSWORD})
    return browser, landed


@asynccontextmanager
async def admin_signed_in(context: Context) -> AsyncIterator[tuple[World, Browser, Response]]:
    """A world with an admin (``an_admin``) signed in at ``/signin``, and her selection."""
    async with world(context) as space:
        browser, page = await signed_in(space, await an_admin(space))
        yield space, browser, page


def offered(page: Response) -> set[str]:
    return set(INSTANCE_BUTTON.findall(page.text))


def state_of(page: Response) -> str:
    found = STATE.search(page.text)
    require(found is not None, f"the selection page carries no state: {page.text[:300]!r}")
    assert found is not None
    return html.unescape(found.group(1))


@check(
    SUITE,
    "cross-instance.admin-selection",
    "An admin signs in once and chooses among the instances she administers",
    SOURCE,
    "After one authentication in the primary tenant, the selection lists exactly the tenants "
    "where the login is active and an administrator; choosing one signs her in there as that "
    "login.",
)
async def admin_selection(context: Context) -> None:
    async with admin_signed_in(context) as (space, browser, page):
        expect_status(page, 200, what="the selection after the password sign-in")
        wanted = {space.names["primary"], space.names["member"]}
        require(
            offered(page) == wanted,
            f"the selection offers {sorted(offered(page))}, expected exactly {sorted(wanted)} "
            f"(not {space.names['plain']}, where the login is no administrator)",
        )
        chosen = await browser.go(
            "POST",
            "/signin/instances",
            {"tenant": space.names["member"], "state": state_of(page)},
        )
        expect_status(chosen, 200, what="the member tenant's page after the choice")
        who = SIGNED_IN_USER.search(chosen.text)
        expected = space.login("ada", "member")
        require(
            who is not None and html.unescape(who.group(1)) == expected,
            f"after choosing {space.names['member']}, the page shows "
            f"{who.group(1) if who else 'nobody'} signed in, expected {expected}",
        )


@check(
    SUITE,
    "cross-instance.refused-choice",
    "A choice without an admin login, or not posted from this browser's selection, is refused",
    SOURCE,
    "Choosing a tenant where the login is no administrator, or posting a choice without the "
    "selection's state, is refused with the generic page (403, HTML) and opens no session.",
)
async def refused_choice(context: Context) -> None:
    async with admin_signed_in(context) as (space, browser, page):
        state = state_of(page)
        attempts = [
            (space.names["plain"], state, "a tenant where the login is no administrator"),
            (space.names["member"], "", "a choice without the selection's state"),
        ]
        for tenant, posted, what in attempts:
            answer = await browser.go(
                "POST", "/signin/instances", {"tenant": tenant, "state": posted}
            )
            require(
                answer.status == 403 and "html" in answer.content_type,
                f"{what} ({tenant}) answered {answer.status} {answer.content_type}, expected "
                f"403 with the generic page: {answer.text[:200]!r}",
            )
            require(
                SIGNED_IN_USER.search(answer.text) is None,
                f"{what} ({tenant}) signed someone in",
            )


@check(
    SUITE,
    "cross-instance.non-admin",
    "A person who administers no instance never sees the selection",
    SOURCE,
    "Someone who is not an administrator anywhere in the group is signed in to the primary "
    "tenant, and the selection offers her nothing.",
)
async def non_admin(context: Context) -> None:
    async with world(context) as space:
        await space.provision("primary", "bo", password=PASSWORD)
        await space.provision("member", "bo")
        root = space.login("bo", "primary")
        browser, page = await signed_in(space, root)
        who = SIGNED_IN_USER.search(page.text)
        require(
            page.status == 200 and not offered(page) and who is not None
            and html.unescape(who.group(1)) == root,
            f"a non-admin landed on {page.status} {page.text[:300]!r}, expected the primary "
            f"tenant's page with {root} signed in and no selection",
        )  # fmt: skip
        again = await browser.go("GET", "/signin/instances")
        require(
            not offered(again),
            f"the selection offers {sorted(offered(again))} to a non-admin",
        )


@check(
    SUITE,
    "cross-instance.one-team",
    "With the one-team policy, a userName active in another tenant of the group is refused",
    SOURCE,
    "Provisioning a userName active in another tenant of the group is 409 (uniqueness) with a "
    "detail naming the policy; a deactivated user does not block.",
)
async def one_team(context: Context) -> None:
    async with world(context, one_team=True) as space:
        name = space.login("cy", "primary")
        first = await space.provision("primary", "cy")
        body = {"schemas": [USER], "userName": name}
        refused = await space.scim["member"].post("/Users", body)
        error = refused.json() if isinstance(refused.json(), dict) else {}
        require(
            refused.status == 409
            and error.get("scimType") == "uniqueness"
            and "one-team" in str(error.get("detail", "")),
            f"creating {name}, active in {space.names['primary']}, in {space.names['member']} "
            f"answered {refused.status}: {refused.text[:300]!r}; expected 409 uniqueness naming "
            "the one-team policy",
        )
        deactivate = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        }
        response = await space.scim["primary"].patch(f"/Users/{first['id']}", deactivate)
        expect_status(response, 200, 204, what="deactivating the first user")
        moved = await space.scim["member"].post("/Users", body)
        expect_status(moved, 201, what=f"creating {name} once deactivated elsewhere")
