"""Okta, AIW / custom-app personality: the GET-then-PUT client (docs/idp-traffic.md).

Same transport, probes, import, lookup and create as the OIN template; everything that changes a
resource afterwards is ``GET`` then a full ``PUT`` (observed: no PATCH at all). Reactivate and
password bodies are inferred: the GET'd resource with ``active: true`` / ``password`` overwritten.
"""

from __future__ import annotations

from typing import Any

from idp_sim.directory import DirectoryGroup, DirectoryUser
from idp_sim.profiles.okta_oin import OktaOIN
from idp_sim.urns import GROUP


class OktaAIW(OktaOIN):
    name: str = "okta-aiw"

    async def deactivate_user(self, user: DirectoryUser) -> None:
        user.active = False
        await self.get_put_user(user, "deactivate")

    async def reactivate_user(self, user: DirectoryUser) -> None:
        user.active = True
        await self.get_put_user(user, "reactivate")

    async def push_password(self, user: DirectoryUser, password: str) -> None:
        await self.get_put_user(user, "password push", {"password": password})

    async def unassign_user(self, user: DirectoryUser) -> None:
        self.directory.unassign_user(user.id)
        await self.get_put_user(user, "unassign", {"active": False})

    async def push_group(self, group: DirectoryGroup) -> str | None:
        """Linked by import, or filter by displayName → POST (``members: []``) → GET → PUT
        full members."""
        self.directory.assign_group(group.id)
        found = await self.find_group(group)
        if found is not None:
            self.group_links[group.id] = found
        else:
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
        await self.get_put_group(group, "group push")
        return self.group_links[group.id]

    async def get_put_group(self, group: DirectoryGroup, operation: str) -> None:
        """GET (Okta needs ``members`` in it) then PUT the documented full-group shape."""
        path = f"/Groups/{self.scim_group_id(group)}"
        current = await self.call(operation, "GET", path)
        if current.status != 200:
            return
        members = self.member_ids(group)
        body: dict[str, Any] = {
            "schemas": [GROUP],
            "displayName": group.name,
            "members": [self.member_value(m) for m in members],
        }
        await self.call(operation, "PUT", path, body=body)
        self.pushed_members[group.id] = members

    async def update_members(self, group: DirectoryGroup) -> None:
        await self.get_put_group(group, "group membership")

    async def rename_group(self, group: DirectoryGroup) -> None:
        await self.get_put_group(group, "group rename")

    async def push_now(self, group: DirectoryGroup) -> None:
        await self.get_put_group(group, "push now")
