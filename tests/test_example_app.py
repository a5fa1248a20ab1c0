"""Okta's whole lifecycle through a real server, its webhooks and the example application.

A real ``scim-server serve`` process (allowed to deliver to loopback addresses:
``SCIM_WEBHOOK_ALLOW_PRIVATE=1``), the example application (examples/directory_sync_app) and a
real SMTP server in the test, a webhook registered through the admin API pointing at the
application; idp_sim's okta-oin profile then runs its full lifecycle against the server. The
application's tables and the mailbox must end up exactly as the IdP's directory says: every
user it provisioned with its name, email and status (the unassigned one inactive), every group
it still pushes with its last name and its members, and one invitation per user, however often
a delivery came.

Webhook delivery is built on its own branch; this test is written against its contract
(``POST /admin/tenants/{name}/webhooks`` answering ``201 {"id", "url", "events", "secret"}``,
deliveries signed as Standard Webhooks) and runs once both are merged.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from examples.directory_sync_app.app import Settings, create_app
from idp_sim import Directory, Profile, build_profile, full_lifecycle
from scim_server.embedded import free_port
from tests.support.mailbox import Mailbox, smtp_server
from tests.support.scim import ADMIN_TOKEN
from tests.support.served import Server, serving

ROUNDS, PAUSE = 300, 0.05
"""How long the deliveries are waited for: fifteen seconds at most."""


def expected_users(profile: Profile) -> list[dict[str, Any]]:
    """Every user the IdP provisioned, as the application's table must show it."""
    rows = []
    for directory_id, scim_id in profile.user_links.items():
        user = profile.directory.user(directory_id)
        rows.append(
            {
                "id": scim_id,
                "user_name": user.login,
                "display_name": user.display_name,
                "email": user.email,
                "active": user.active and directory_id in profile.directory.assigned_user_ids,
                "invited": True,
            }
        )
    return sorted(rows, key=lambda row: row["user_name"])


def expected_groups(profile: Profile) -> dict[str, dict[str, Any]]:
    """Every group the IdP still pushes, with its last name and its members' SCIM ids."""
    groups = {}
    for directory_id, scim_id in profile.group_links.items():
        group = profile.directory.group(directory_id)
        members = sorted(profile.user_links[m] for m in group.member_ids if m in profile.user_links)
        groups[scim_id] = {"display_name": group.name, "members": members}
    return groups


async def register_webhook(server: Server, url: str) -> str:
    """The webhook of tenant ``acme`` to ``url``, through the admin API; its secret."""
    status, _, body = await server.request(
        "POST", "/admin/tenants/acme/webhooks", {"url": url}, token=ADMIN_TOKEN
    )
    assert status == 201, body
    assert body["url"] == url
    assert str(body["secret"]).startswith("whsec_")
    return str(body["secret"])


async def settled(server: Server, app_url: str, wanted: Any, mailbox: Mailbox, mails: int) -> Any:
    """The application's tables once they equal ``wanted`` and ``mails`` invitations came (or
    the wait is over): as they then are."""
    tables: Any = None
    for _ in range(ROUNDS):
        async with (
            server.http.get(f"{app_url}/users") as users,
            server.http.get(f"{app_url}/groups") as groups,
        ):
            tables = (await users.json(), await groups.json())
        if tables == wanted and len(mailbox.messages) >= mails:
            break
        await asyncio.sleep(PAUSE)
    return tables


async def test_oktas_lifecycle_reaches_the_apps_table_and_mailbox_exactly_once(
    tmp_path: Path, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_WEBHOOK_ALLOW_PRIVATE", "1")
    with smtp_server() as (mailbox, smtp_port):
        async with serving(tmp_path / "data") as server:
            app_port = free_port()
            app_url = f"http://127.0.0.1:{app_port}"
            secret = await register_webhook(server, f"{app_url}/webhooks/scim")
            await aiohttp_server(create_app(Settings(secret, smtp_port=smtp_port)), port=app_port)
            profile = build_profile(
                "okta-oin",
                f"{server.url}/scim/v2/acme",
                server.token,
                Directory.generate(7, 5, 2, 3),
                seed=7,
            )
            try:
                summary = await full_lifecycle(profile)
            finally:
                await profile.transport.close()
            assert summary.ok, summary.render()
            users, groups = expected_users(profile), expected_groups(profile)
            tables = await settled(server, app_url, (users, groups), mailbox, len(users))
    assert tables == (users, groups)
    assert mailbox.recipients() == sorted(row["email"] for row in users)
    assert all(m["Subject"].startswith("You have been invited") for m in mailbox.messages)
