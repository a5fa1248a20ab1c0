"""The webhook receiver: verify, deduplicate, apply the event to the tables, invite.

Which users the application has: every user the identity provider provisions, as an Okta app
assignment does (assigning a user to the app is what pushes it; unassigning it deactivates it).
Groups pushed to the app are kept with their members. A user who is active and has never been
invited gets one invitation email, once: it is sent after the event that made it so is stored,
and marked as sent only then, so a failed send is tried again at the next delivery.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from examples.directory_sync_app.store import Store, User

log = logging.getLogger("directory_sync_app")


@dataclass(frozen=True)
class Settings:
    """What the application needs to know: the webhook's secret and where mail goes."""

    secret: str
    """The ``whsec_…`` secret the server answered when the webhook was registered."""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    sender: str = "Directory Sync App <no-reply@example.com>"
    database: str = ":memory:"
    app_name: str = "Directory Sync App"


STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", Settings)
LOCK = web.AppKey("lock", asyncio.Lock)


def primary_email(emails: Any) -> str | None:
    """The primary address of a SCIM ``emails`` value, else the first one."""
    entries = [e for e in emails or [] if isinstance(e, dict) and e.get("value")]
    primary = [e for e in entries if e.get("primary") is True]
    return str((primary or entries)[0]["value"]) if entries else None


def applied_user(current: User | None, event: dict[str, Any]) -> User:
    """The user as the event leaves it: its ``values`` over what the table has."""
    values = event.get("values") or {}
    user_id = event["resource"]["id"]
    base = current or User(user_id, "", None, None, True, False)
    named = set(event.get("attributes") or ())
    return User(
        user_id,
        str(values.get("userName") or base.user_name),
        values.get("displayName") if "displayName" in named else base.display_name,
        primary_email(values.get("emails")) if "emails" in named else base.email,
        values.get("active") is not False if "active" in named else base.active,
        base.invited,
    )


def apply_user(store: Store, event: dict[str, Any]) -> None:
    user_id, version = event["resource"]["id"], int(event["resource"]["version"])
    if event["type"] == "user.deleted":
        store.delete_user(user_id)
        return
    store.put_user(applied_user(store.user(user_id), event), version)


def apply_group(store: Store, event: dict[str, Any]) -> None:
    group_id, version = event["resource"]["id"], int(event["resource"]["version"])
    kind, values = event["type"], event.get("values") or {}
    members = [str(m) for m in event.get("members") or []]
    if kind == "group.deleted":
        store.delete_group(group_id)
        return
    if kind in ("group.created", "group.updated") and "displayName" in values:
        store.put_group(group_id, str(values["displayName"]), version)
    else:
        store.touch_group(group_id, version)
    if kind in ("group.created", "group.members_added"):
        store.add_members(group_id, members)
    elif kind == "group.members_removed":
        store.remove_members(group_id, members)


APPLY: dict[str, tuple[str, Callable[[Store, dict[str, Any]], None]]] = {
    "User": ("users", apply_user),
    "Group": ("groups", apply_group),
}
"""Resource type → the table that keeps it, and how an event of it is applied."""


def apply(store: Store, event: dict[str, Any]) -> None:
    """Apply one event, unless its resource already holds a newer version (a late retry)."""
    resource = event["resource"]
    table, applier = APPLY[resource["type"]]
    stored = store.version(table, resource["id"])
    if stored is not None and stored >= int(resource["version"]):
        log.info("event %s is older than what the table holds: ignored", event["id"])
        return
    applier(store, event)


def invitation(settings: Settings, user: User) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = str(user.email)
    message["Subject"] = f"You have been invited to {settings.app_name}"
    message.set_content(
        f"Hello {user.display_name or user.user_name},\n\n"
        f"Your administrator gave you access to {settings.app_name}. Sign in with your "
        f"company account ({user.user_name}) to get started.\n"
    )
    return message


def send(settings: Settings, message: EmailMessage) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)


async def invite_pending(store: Store, settings: Settings) -> None:
    """Send every invitation still owed, each marked sent once the mail server took it."""
    for user in store.uninvited():
        if not user.email:
            continue
        try:
            await asyncio.to_thread(send, settings, invitation(settings, user))
        except OSError:
            log.exception("invitation to %s not sent; tried again at the next delivery", user.id)
            return
        store.mark_invited(user.id)


def is_event(event: Any) -> bool:
    """Whether a verified body has what :func:`apply` reads (docs/events.md's shape)."""
    if not isinstance(event, dict) or not isinstance(event.get("resource"), dict):
        return False
    resource = event["resource"]
    return (
        isinstance(event.get("id"), str)
        and isinstance(event.get("type"), str)
        and resource.get("type") in APPLY
        and isinstance(resource.get("id"), str)
        and isinstance(resource.get("version"), int)
        and isinstance(event.get("values", {}), dict)
        and isinstance(event.get("members", []), list)
    )


def refusal(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)


async def receive(request: web.Request) -> web.Response:
    """One delivery: 401 unless its Standard Webhooks signature is valid and fresh; 204 once
    applied (or when it was applied before)."""
    settings, store = request.app[SETTINGS], request.app[STORE]
    body = await request.read()
    try:
        event = Webhook(settings.secret).verify(body, dict(request.headers))
    except WebhookVerificationError as error:
        return refusal(401, f"signature refused: {error}")
    except ValueError:  # signed, but not JSON
        return refusal(400, "the body is not JSON")
    if not is_event(event):
        return refusal(400, "not a provisioning event of a user or group")
    async with request.app[LOCK]:
        with store.transaction():
            if not store.seen(request.headers["webhook-id"]):
                apply(store, event)
        await invite_pending(store, settings)
    return web.Response(status=204)


async def users(request: web.Request) -> web.Response:
    return web.json_response([u.to_json() for u in request.app[STORE].users()])


async def groups(request: web.Request) -> web.Response:
    return web.json_response(request.app[STORE].groups())


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[STORE] = Store(settings.database)
    app[LOCK] = asyncio.Lock()
    app.router.add_post("/webhooks/scim", receive)
    app.router.add_get("/users", users)
    app.router.add_get("/groups", groups)

    async def close(app: web.Application) -> None:
        app[STORE].close()

    app.on_cleanup.append(close)
    return app
