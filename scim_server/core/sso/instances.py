"""Cross-instance sign-in: authenticate once in a group's primary tenant, then choose among the
tenants where one's login is an administrator (docs/cross-instance.md).

Nothing here is a second session mechanism: the person authenticates through the primary
tenant's own password sign-in or single sign-on, which end in an ordinary session of that
tenant; the selection reads that session, and a choice opens an ordinary session of the chosen
tenant for the chosen login. Every decision goes to the SSO log of the tenant it concerns.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, replace
from datetime import datetime

from scim_server.core.instances import InstanceGroupRecord, InstanceGroups, Login, root_parts
from scim_server.core.sso.service import Origin, SignedIn, SignInFailed, SingleSignOn
from scim_server.core.sso.sessions import Session
from scim_server.core.sso.settings import home_path

INSTANCE_FLOW = "instance"
LOGGED = {"flow": INSTANCE_FLOW, "protocol": INSTANCE_FLOW}
"""What every log entry of a cross-instance decision says of its flow."""
HANDOFF = "instances"
"""The page under the primary tenant's home that hands its session to the selection."""
SELECTION_PATH = "/signin/instances"


def handoff_path(primary: str) -> str:
    """Where the primary tenant's sign-in returns to, under its home (its cookie's path)."""
    return f"{home_path(primary)}{HANDOFF}"


def issuer_of(primary: str) -> str:
    """The ``issuer`` of a session opened by choosing an instance: who vouched for it."""
    return f"{INSTANCE_FLOW}:{primary}"


@dataclass(frozen=True)
class Selection:
    """What the selection page shows: the root login and its administrator logins."""

    root: str
    logins: tuple[Login, ...]


class CrossInstanceSignIn:
    def __init__(self, sso: SingleSignOn, groups: InstanceGroups) -> None:
        self.sso = sso
        self.groups = groups

    async def start(
        self, email: str, password: str | None, origin: Origin, now: datetime
    ) -> tuple[str, SignedIn | str]:
        """The root email's group's primary tenant, and its authentication there: with a
        password, the password sign-in (its session, leading to the hand-off); without, the
        URL of the primary tenant's single sign-on, which returns to the hand-off."""
        group = await self.groups.of_root(email)
        if group is None:
            # No tenant to log it in: the domain names no group, or this is no root login.
            raise SignInFailed(f"{email!r} is no root login of any instance group")
        primary = group.primary
        if password:
            signed_in = await self.sso.password_sign_in(primary, origin, email, password, now)
            return primary, replace(signed_in, redirect=handoff_path(primary))
        settings = await self.sso.settings(primary)
        if not settings.ready:
            raise await self._refused(
                primary, origin, now, "cross-instance sign-in: single sign-on is not set up"
            )
        query = urllib.parse.urlencode({"RelayState": handoff_path(primary)})
        return primary, f"{home_path(primary)}{settings.protocol}/login?{query}"

    async def selection(
        self, primary: str, token: str | None, origin: Origin, now: datetime
    ) -> Selection:
        """The person signed in to ``primary`` (by ``token``, that tenant's session cookie) and
        her administrator logins in its group: none for someone who is not an administrator
        anywhere (she stays signed in to the primary tenant). Logged in the primary's log."""
        session, group = await self._signed_in(primary, token, origin, now)
        logins = tuple(await self.groups.admin_logins(group, session.user_name))
        details = {**LOGGED, "user": session.user_id}
        if logins:
            offered = [login.tenant for login in logins]
            await self.sso.record(
                primary, origin, now, "instances_offered", **details, tenants=offered
            )
        else:
            await self.sso.record(primary, origin, now, "not_an_admin", **details)
        return Selection(session.user_name, logins)

    async def choose(
        self,
        primary: str,
        token: str | None,
        tenant: str,
        origin: Origin,
        now: datetime,
        *,
        bound: bool,
    ) -> SignedIn:
        """Open a session in ``tenant`` as the person's login there, if it is (still) an
        active administrator login and the choice was ``bound`` to this browser (posted from
        the selection it was shown); otherwise refuse, logged in the primary's log."""
        session, group = await self._signed_in(primary, token, origin, now)
        if not bound:
            raise await self._refused(
                primary,
                origin,
                now,
                f"instance {tenant!r} chosen by a form this browser was not shown (its state "
                "is missing or another's): possible cross-site request forgery",
                root=session.user_name,
            )
        logins = {
            login.tenant: login
            for login in await self.groups.admin_logins(group, session.user_name)
        }
        details = {**LOGGED, "root": session.user_name}
        login = logins.get(tenant)
        if login is None:
            raise await self._refused(
                primary,
                origin,
                now,
                f"instance {tenant!r} chosen, where {session.user_name!r} has no active "
                "administrator login",
                root=session.user_name,
            )
        settings = await self.sso.settings(tenant)
        user = login.user
        # It stands on the primary's session: a sign-out, a deactivation or a new password
        # there ends it too.
        cookie = await self.sso.sessions.open(
            tenant,
            user.id,
            issuer_of(primary),
            settings.session_ttl_seconds,
            now,
            parent=session.id,
        )
        await self.sso.record(
            tenant, origin, now, "signed_in", **details, user=user.id, user_name=user.user_name
        )
        await self.sso.record(primary, origin, now, "instance_chosen", **details, instance=tenant)
        return SignedIn(
            token=cookie,
            ttl_seconds=settings.session_ttl_seconds,
            user_name=user.user_name,
            redirect=home_path(tenant),
        )

    async def _signed_in(
        self, primary: str, token: str | None, origin: Origin, now: datetime
    ) -> tuple[Session, InstanceGroupRecord]:
        """The primary tenant's session ``token`` proves, and the group it is primary of."""
        group = await self.groups.of_tenant(primary)
        if group is None or group.primary != primary:
            raise SignInFailed(f"{primary!r} is the primary tenant of no instance group")
        settings = await self.sso.settings(primary)
        session = await self.sso.sessions.current(primary, token, now, settings)
        if session is None:
            raise await self._refused(
                primary, origin, now, "cross-instance selection without a session of the primary"
            )
        if root_parts(session.user_name) is None:
            raise await self._refused(
                primary, origin, now, f"{session.user_name!r} is no root login"
            )
        return session, group

    async def _refused(
        self, tenant: str, origin: Origin, now: datetime, reason: str, **details: object
    ) -> SignInFailed:
        await self.sso.record(tenant, origin, now, "refused", reason=reason, **LOGGED, **details)
        return SignInFailed(reason)
