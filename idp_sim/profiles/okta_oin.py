"""Okta, OIN-template personality (SCIM 2.0 test app / published OIN apps): the PATCH client.

Every shape here is Okta's documented or captured one (docs/idp-traffic.md). Inferred details,
configurable: reactivate and password-push bodies (Okta publishes none, we mirror the documented
deactivate shape); ``locale`` (``en-US`` now, ``en_US`` in 2018); whether the group rename PATCH
follows every membership update (Okta docs say it does; ``rename_on_membership``); how many
users or groups one assignment provisions at once (``concurrency``, 5: Okta bursts when many
are assigned, no source gives the number).
"""

from __future__ import annotations

from typing import Any, Literal

from idp_sim.directory import Directory, DirectoryGroup, DirectoryUser
from idp_sim.profiles.base import Profile, eq_filter
from idp_sim.transport import AuthForm, HeaderProfile, Transport
from idp_sim.urns import GROUP, PATCH_OP, USER

OKTA_USER_AGENT = "Okta SCIM Client 1.0.0"


def okta_headers(auth: AuthForm = "bearer") -> HeaderProfile:
    """In Okta's printed order: Accept, Accept-Charset, Content-Type (bodies and DELETE, never
    GET), UA, auth, then Okta's ``Connection: Keep-Alive`` and ``Accept-Encoding: gzip,deflate``."""
    return HeaderProfile(
        user_agent=OKTA_USER_AGENT,
        accept="application/scim+json",
        accept_charset="utf-8",
        content_type="application/scim+json; charset=utf-8",
        auth=auth,
        content_type_on_delete=True,
        extra=(("Connection", "Keep-Alive"), ("Accept-Encoding", "gzip,deflate")),
    )


def okta_transport(
    base_url: str,
    token: str,
    *,
    auth: AuthForm = "bearer",
    space: Literal["%20", "+"] = "%20",
    **kwargs: Any,
) -> Transport:
    return Transport(base_url, token, okta_headers(auth), space=space, **kwargs)


class OktaOIN(Profile):
    name: str = "okta-oin"

    def __init__(
        self,
        transport: Transport,
        directory: Directory,
        *,
        seed: int = 0,
        groups_enabled: bool = True,
        locale: str = "en-US",
        rename_on_membership: bool = True,
        concurrency: int = 5,
    ) -> None:
        super().__init__(transport, directory, seed=seed, concurrency=concurrency)
        self.groups_enabled = groups_enabled
        self.locale = locale
        self.rename_on_membership = rename_on_membership
        self.imported_users: set[str] = set()  # directory ids linked by import, not yet assigned
        self.imported_groups: set[str] = set()  # directory ids linked by import, not yet pushed

    # ---- connection and import ------------------------------------------------------------------
    async def test_connection(self) -> bool:
        """Constant probes: ``/Users?startIndex=1&count=2`` (+ ``/Groups`` page if groups on)."""
        ok = (
            await self.call("test connection", "GET", "/Users", [("startIndex", 1), ("count", 2)])
        ).ok
        if self.groups_enabled:
            ok = (
                await self.call(
                    "test connection", "GET", "/Groups", [("startIndex", 1), ("count", 100)]
                )
            ).ok and ok
        return ok

    async def import_users(self) -> list[dict[str, Any]]:
        """Full import, 100 a page; users with ``active: false`` are not pulled in. An imported
        user whose ``userName`` is a directory login is linked to it (Okta's import match on the
        username), so its assignment updates it without looking it up."""
        users = [
            u for u in await self.page_all("import users", "/Users") if u.get("active") is not False
        ]
        by_login = {u.login.lower(): u for u in self.directory.users}
        for found in users:
            user = by_login.get(str(found.get("userName", "")).lower())
            if user is not None and "id" in found:
                self.user_links[user.id] = str(found["id"])
                self.imported_users.add(user.id)
        return users

    async def import_groups(self) -> list[dict[str, Any]]:
        """Full import of groups; one whose ``displayName`` is a directory group's is linked to
        it, with the members it holds as the last pushed ones."""
        groups = await self.page_all("import groups", "/Groups")
        by_name = {g.name: g for g in self.directory.groups}
        by_scim_id = {scim_id: user_id for user_id, scim_id in self.user_links.items()}
        for found in groups:
            group = by_name.get(str(found.get("displayName", "")))
            if group is None or "id" not in found:
                continue
            self.group_links[group.id] = str(found["id"])
            self.imported_groups.add(group.id)
            values = [m.get("value") for m in found.get("members") or [] if isinstance(m, dict)]
            self.pushed_members[group.id] = [by_scim_id[v] for v in values if v in by_scim_id]
        return groups

    def forget_links(self) -> None:
        super().forget_links()
        self.imported_users.clear()
        self.imported_groups.clear()

    # ---- users ----------------------------------------------------------------------------------
    def user_body(self, user: DirectoryUser) -> dict[str, Any]:
        """The create body, key order as in Okta's docs."""
        return {
            "schemas": [USER],
            "userName": user.login,
            "name": {"givenName": user.given_name, "familyName": user.family_name},
            "emails": [{"primary": True, "value": user.email, "type": "work"}],
            "displayName": user.display_name,
            "locale": self.locale,
            "externalId": user.id,
            "groups": [],
            "password": self.random_password(),
            "active": user.active,
        }

    def merge(self, current: dict[str, Any], user: DirectoryUser) -> dict[str, Any]:
        """The SP's own representation with Okta's mapped attributes overwritten."""
        body = dict(current)
        body["userName"] = user.login
        body["name"] = {
            **(current.get("name") or {}),
            "givenName": user.given_name,
            "familyName": user.family_name,
        }
        body["emails"] = [{"primary": True, "value": user.email, "type": "work"}]
        body["displayName"] = user.display_name
        body["externalId"] = user.id
        body["active"] = user.active
        if user.title:  # mapped in a captured title change
            body["title"] = user.title
        return body

    async def lookup_user(self, user: DirectoryUser, operation: str) -> dict[str, Any] | None:
        response = await self.call(
            operation,
            "GET",
            "/Users",
            [("filter", eq_filter("userName", user.login)), ("startIndex", 1), ("count", 100)],
            expect=(200, 404),
        )
        return self.first_resource(response)

    async def assign_user(self, user: DirectoryUser) -> str | None:
        """A user linked by import: GET by id, PUT. Otherwise (a re-assignment too) lookup by
        userName; miss → POST (expect 201 + id); hit → link: GET by id, PUT."""
        self.directory.assign_user(user.id)
        if user.id in self.imported_users:
            self.imported_users.discard(user.id)
            await self.get_put_user(user, "assign (imported)")
            return self.user_links[user.id]
        found = await self.lookup_user(user, "assign")
        if found is not None:
            self.user_links[user.id] = found["id"]
            await self.get_put_user(user, "assign (link)")
            return str(found["id"])
        response = await self.call(
            "assign", "POST", "/Users", body=self.user_body(user), expect=(201,)
        )
        if response.status == 201 and isinstance(response.body, dict) and "id" in response.body:
            self.user_links[user.id] = response.body["id"]
            return str(response.body["id"])
        return None

    async def get_put_user(
        self, user: DirectoryUser, operation: str, extra: dict[str, Any] | None = None
    ) -> None:
        path = f"/Users/{self.scim_user_id(user)}"
        current = await self.call(operation, "GET", path)
        if not isinstance(current.body, dict) or current.status != 200:
            return
        await self.call(
            operation, "PUT", path, body={**self.merge(current.body, user), **(extra or {})}
        )

    async def update_user(self, user: DirectoryUser) -> None:
        await self.get_put_user(user, "update profile")

    async def patch_user(self, user: DirectoryUser, operation: str, value: dict[str, Any]) -> None:
        """One path-less replace whose ``value`` is an object; 200 or 204 accepted."""
        await self.call(
            operation,
            "PATCH",
            f"/Users/{self.scim_user_id(user)}",
            body={"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": value}]},
            expect=(200, 204),
        )

    async def deactivate_user(self, user: DirectoryUser) -> None:
        user.active = False
        await self.patch_user(user, "deactivate", {"active": False})

    async def reactivate_user(self, user: DirectoryUser) -> None:
        """Inferred: the deactivate shape with ``true``."""
        user.active = True
        await self.patch_user(user, "reactivate", {"active": True})

    async def push_password(self, user: DirectoryUser, password: str) -> None:
        """Inferred: ``replace`` with ``{"password": …}``."""
        await self.patch_user(user, "password push", {"password": password})

    async def unassign_user(self, user: DirectoryUser) -> None:
        """Unassign = deactivate on the wire; Okta never sends DELETE /Users."""
        self.directory.unassign_user(user.id)
        user_active = user.active
        await self.patch_user(user, "unassign", {"active": False})
        user.active = user_active

    # ---- group push -----------------------------------------------------------------------------
    def member_value(self, user_id: str) -> dict[str, Any]:
        """Member ``value`` is the SP id, ``display`` the userName, no ``type``."""
        return {"value": self.user_links[user_id], "display": self.directory.user(user_id).login}

    async def lookup_group(self, group: DirectoryGroup) -> dict[str, Any] | None:
        """§2.8 "Link Group": the SP group of this name, if there is one."""
        response = await self.call(
            "group push",
            "GET",
            "/Groups",
            [("filter", eq_filter("displayName", group.name)), ("startIndex", 1), ("count", 100)],
            expect=(200, 404),
        )
        return self.first_resource(response)

    async def find_group(self, group: DirectoryGroup) -> str | None:
        """The SP id of the group to link: the one import linked, else the lookup's hit."""
        if group.id in self.imported_groups:
            self.imported_groups.discard(group.id)
            return self.group_links[group.id]
        found = await self.lookup_group(group)
        return None if found is None else str(found["id"])

    async def push_group(self, group: DirectoryGroup) -> str | None:
        """A group linked by import or found by displayName is linked (C9315: existence GET,
        then Push Now's full overwrite of the members); a miss is POSTed with ``members: []``,
        then the members go in one membership PATCH."""
        self.directory.assign_group(group.id)
        found = await self.find_group(group)
        if found is not None:
            self.group_links[group.id] = found
            await self.call("group push", "GET", f"/Groups/{found}")
            await self.push_now(group)
            return found
        response = await self.call(
            "group push",
            "POST",
            "/Groups",
            body={"schemas": [GROUP], "displayName": group.name, "members": []},
            expect=(201,),
        )
        if not (isinstance(response.body, dict) and "id" in response.body):
            return None
        self.group_links[group.id] = response.body["id"]
        self.pushed_members[group.id] = []
        await self.update_members(group)
        return str(response.body["id"])

    def rename_op(self, group: DirectoryGroup) -> dict[str, Any]:
        """Legacy shape with ``id`` inside ``value``."""
        return {
            "op": "replace",
            "value": {"id": self.scim_group_id(group), "displayName": group.name},
        }

    async def update_members(self, group: DirectoryGroup) -> None:
        """One PATCH: a ``remove`` per leaver by value filter, then one ``add`` of joiners."""
        removed, added = self.delta(group)
        operations: list[dict[str, Any]] = [
            {"op": "remove", "path": f'members[value eq "{self.user_links[m]}"]'} for m in removed
        ]
        if added:
            operations.append(
                {"op": "add", "path": "members", "value": [self.member_value(m) for m in added]}
            )
        if operations:
            await self.patch_group(group, "group membership", operations)
            if self.rename_on_membership:
                await self.patch_group(group, "group membership", [self.rename_op(group)])
        self.pushed_members[group.id] = self.member_ids(group)

    async def rename_group(self, group: DirectoryGroup) -> None:
        await self.patch_group(group, "group rename", [self.rename_op(group)])

    async def push_now(self, group: DirectoryGroup) -> None:
        """Push Now overwrites: ``replace`` path ``members`` with the full list."""
        members = self.member_ids(group)
        await self.patch_group(
            group,
            "push now",
            [
                {
                    "op": "replace",
                    "path": "members",
                    "value": [self.member_value(m) for m in members],
                }
            ],
        )
        self.pushed_members[group.id] = members

    async def delete_group(self, group: DirectoryGroup) -> None:
        """Unlink pushed group + "Delete the group in the target app" → DELETE, 204."""
        await self.call(
            "group delete", "DELETE", f"/Groups/{self.scim_group_id(group)}", expect=(204,)
        )
        self.group_links.pop(group.id, None)
        self.directory.assigned_group_ids.discard(group.id)
