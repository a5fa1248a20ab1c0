"""JumpCloud custom SCIM connector (docs/idp-traffic.md) — lower confidence.

Known: ``Authorization: Bearer <Token Key>``; create body with alphabetically sorted keys, the
enterprise URN in ``schemas``, ``externalId`` = 24-hex JumpCloud id, no password; updates are
full ``PUT``; a minimal PUT carries ``"emails": null``; group members PATCHed with value lists.
Unknown, so configurable: ``user_agent`` (no source gives one: default none is sent),
Accept/Content-Type (``application/scim+json`` assumed), the lookup attribute (``userName``),
which events use the minimal PUT (``minimal_status_put``: deactivate/reactivate by default),
group create then member PATCH (``members_in_create=False``) vs members in the POST, and
whether it provisions several users at once (``concurrency``: 1, nothing says it does).
JumpCloud does not import, push passwords or "Push Now"; those raise ``NotSupported``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from idp_sim.directory import Directory, DirectoryGroup, DirectoryUser
from idp_sim.profiles.base import Profile, eq_filter
from idp_sim.transport import HeaderProfile, Transport
from idp_sim.urns import ENTERPRISE, GROUP, USER


def jumpcloud_headers(
    user_agent: str | None = None, media_type: str = "application/scim+json"
) -> HeaderProfile:
    return HeaderProfile(user_agent=user_agent, accept=media_type, content_type=media_type)


def jumpcloud_transport(
    base_url: str, token: str, *, user_agent: str | None = None, **kwargs: Any
) -> Transport:
    """Bodies serialized with sorted keys, as in the sanitized JumpCloud payloads."""
    return Transport(base_url, token, jumpcloud_headers(user_agent), sort_keys=True, **kwargs)


def jumpcloud_id(directory_id: str) -> str:
    """A stable 24-hex (MongoDB ObjectId-shaped) JumpCloud id for a directory object."""
    return hashlib.sha1(directory_id.encode()).hexdigest()[:24]


class JumpCloud(Profile):
    name: str = "jumpcloud"

    def __init__(
        self,
        transport: Transport,
        directory: Directory,
        *,
        seed: int = 0,
        test_user_email: str = "jumpcloud.test.user@example.com",
        groups_enabled: bool = True,
        minimal_status_put: bool = True,
        members_in_create: bool = False,
        concurrency: int = 1,
    ) -> None:
        super().__init__(transport, directory, seed=seed, concurrency=concurrency)
        self.test_user_email = test_user_email
        self.groups_enabled = groups_enabled
        self.minimal_status_put = minimal_status_put
        self.members_in_create = members_in_create

    async def test_connection(self) -> bool:
        """Lookup → POST test user → POST/DELETE test group → DELETE user (else deactivate)."""
        test_user = DirectoryUser(
            id=jumpcloud_id(self.test_user_email),
            login=self.test_user_email,
            given_name="Test",
            family_name="User",
            email=self.test_user_email,
        )
        lookup = await self.call(
            "test connection", "GET", "/Users", [("filter", eq_filter("userName", test_user.login))]
        )
        found = self.first_resource(lookup)
        created = (
            found
            or (
                await self.call(
                    "test connection",
                    "POST",
                    "/Users",
                    body=self.user_body(test_user),
                    expect=(201,),
                )
            ).body
        )
        ok = lookup.ok and isinstance(created, dict) and "id" in created
        if self.groups_enabled:
            group = await self.call(
                "test connection",
                "POST",
                "/Groups",
                body={"displayName": "JumpCloud Test Group", "schemas": [GROUP]},
                expect=(201,),
            )
            if isinstance(group.body, dict) and "id" in group.body:
                await self.call(
                    "test connection", "DELETE", f"/Groups/{group.body['id']}", expect=(204,)
                )
            ok = ok and group.status == 201
        if isinstance(created, dict) and "id" in created:
            path = f"/Users/{created['id']}"
            gone = await self.call("test connection", "DELETE", path, expect=(204, 404, 405, 501))
            if gone.status in (405, 501):
                await self.call("test connection", "PUT", path, body={**created, "active": False})
        return bool(ok)

    def user_body(self, user: DirectoryUser, scim_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "active": user.active,
            "addresses": [],
            "displayName": user.display_name,
            "emails": [{"primary": True, "type": "work", "value": user.email}],
            "externalId": jumpcloud_id(user.id),
            "locale": user.locale,
            "name": {"familyName": user.family_name, "givenName": user.given_name},
            "phoneNumbers": (
                [{"primary": True, "type": "work", "value": f"tel:{user.phone}"}]
                if user.phone
                else []
            ),
            "preferredLanguage": user.locale,
            "schemas": [USER, ENTERPRISE],
            "userName": user.login,
        }
        if user.title:
            body["title"] = user.title
        if user.department:
            body[ENTERPRISE] = {"department": user.department}
        if scim_id is not None:
            body["id"] = scim_id
        return body

    def minimal_body(self, user: DirectoryUser) -> dict[str, Any]:
        """The minimal PUT of the sanitized capture, ``"emails": null`` included."""
        return {
            "active": user.active,
            "emails": None,
            "id": self.scim_user_id(user),
            "name": {"familyName": user.family_name, "givenName": user.given_name},
            "schemas": [USER],
            "userName": user.login,
        }

    async def assign_user(self, user: DirectoryUser) -> str | None:
        """``user_lookup_provision`` then create, or take over the match with a full PUT."""
        self.directory.assign_user(user.id)
        found = self.first_resource(
            await self.call(
                "assign", "GET", "/Users", [("filter", eq_filter("userName", user.login))]
            )
        )
        if found is not None:
            self.user_links[user.id] = found["id"]
            await self.update_user(user)
            return str(found["id"])
        response = await self.call(
            "assign", "POST", "/Users", body=self.user_body(user), expect=(201,)
        )
        if isinstance(response.body, dict) and "id" in response.body:
            self.user_links[user.id] = response.body["id"]
            return str(response.body["id"])
        return None

    async def update_user(self, user: DirectoryUser) -> None:
        sid = self.scim_user_id(user)
        await self.call("update profile", "PUT", f"/Users/{sid}", body=self.user_body(user, sid))

    async def put_status(self, user: DirectoryUser, operation: str) -> None:
        sid = self.scim_user_id(user)
        body = self.minimal_body(user) if self.minimal_status_put else self.user_body(user, sid)
        await self.call(operation, "PUT", f"/Users/{sid}", body=body)

    async def deactivate_user(self, user: DirectoryUser) -> None:
        """Suspend / password expiry: ``active = !suspended && !passwordExpired`` → false."""
        user.active = False
        await self.put_status(user, "deactivate")

    async def reactivate_user(self, user: DirectoryUser) -> None:
        user.active = True
        await self.put_status(user, "reactivate")

    async def unassign_user(self, user: DirectoryUser) -> None:
        """Unbind → ``user_deprovision`` (inactive), not a delete."""
        self.directory.unassign_user(user.id)
        active = user.active
        user.active = False
        await self.put_status(user, "unassign")
        user.active = active

    async def delete_user(self, user: DirectoryUser) -> None:
        await self.call("delete user", "DELETE", f"/Users/{self.scim_user_id(user)}", expect=(204,))
        self.forget_user(user)

    # ---- groups ----------------------------------------------------------------
    async def push_group(self, group: DirectoryGroup) -> str | None:
        """No empty groups; a same-named SP group is taken over; members by value-list PATCH."""
        members = self.member_ids(group)
        if not members:
            return None
        self.directory.assign_group(group.id)
        found = self.first_resource(
            await self.call(
                "group push", "GET", "/Groups", [("filter", eq_filter("displayName", group.name))]
            )
        )
        self.pushed_members[group.id] = []
        if found is not None:
            self.group_links[group.id] = found["id"]
        else:
            body: dict[str, Any] = {"displayName": group.name, "schemas": [GROUP]}
            if self.members_in_create:
                body["members"] = [{"value": self.user_links[m]} for m in members]
            response = await self.call("group push", "POST", "/Groups", body=body, expect=(201,))
            if not (isinstance(response.body, dict) and "id" in response.body):
                return None
            self.group_links[group.id] = response.body["id"]
            if self.members_in_create:
                self.pushed_members[group.id] = members
        await self.resync()
        return self.group_links[group.id]

    async def update_members(self, group: DirectoryGroup) -> None:
        """A membership change re-syncs every associated group (:meth:`resync`)."""
        await self.resync()

    async def resync(self) -> None:
        """J3: every group associated with the app is synced on each membership or group
        change, in one PATCH each: a ``remove`` of who left it since the last sync, then an
        ``add`` of every member, those already there included (JumpCloud repeats adds)."""
        for group in self.directory.groups:
            if group.id in self.group_links:
                await self.sync_group(group)

    async def sync_group(self, group: DirectoryGroup) -> None:
        removed, _ = self.delta(group)
        members = self.member_ids(group)
        operations: list[dict[str, Any]] = []
        if removed:
            operations.append(
                {
                    "op": "remove",
                    "path": "members",
                    "value": [{"value": self.user_links[m]} for m in removed],
                }
            )
        if members:
            operations.append(
                {
                    "op": "add",
                    "path": "members",
                    "value": [{"value": self.user_links[m]} for m in members],
                }
            )
        if operations:
            await self.patch_group(group, "group membership", operations)
        self.pushed_members[group.id] = members

    async def rename_group(self, group: DirectoryGroup) -> None:
        """Inferred: rename as a ``replace`` of ``displayName``."""
        await self.patch_group(
            group,
            "group rename",
            [{"op": "replace", "path": "displayName", "value": group.name}],
        )

    async def disassociate_group(self, group: DirectoryGroup) -> None:
        """J3: the group is no longer synced and is left on the server as it is; each of its
        members that no other associated group holds is deactivated (the unassign PUT)."""
        self.release_group(group)
        held = {m for g in self.directory.groups if g.id in self.group_links for m in g.member_ids}
        for member in [m for m in group.member_ids if m in self.user_links and m not in held]:
            await self.unassign_user(self.directory.user(member))

    async def delete_group(self, group: DirectoryGroup) -> None:
        await self.call(
            "group delete", "DELETE", f"/Groups/{self.scim_group_id(group)}", expect=(204,)
        )
        self.group_links.pop(group.id, None)
        self.directory.assigned_group_ids.discard(group.id)
