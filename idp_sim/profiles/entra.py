"""Microsoft Entra ID provisioning (docs/idp-traffic.md): the capitalised-PATCH client.

Default is the classic ``scim`` job: ops ``Add``/``Replace``/``Remove``, one ``Replace`` per
path, ``active`` as the string ``"False"``/``"True"``, members removed with a ``value`` list.
``optscim062020=True`` emulates the ``aadOptscim062020`` tenant-URL flag: lower-case ops,
booleans, ``active`` and the work e-mail (a value-filter path) each an operation with a
``path``, the other attributes in one path-less replace with dotted keys, members removed by
``members[value eq …]``.

Matching (2026 field reports): the user's objectId (a GUID) is its ``externalId`` and the first
existence check, ``externalId eq "<objectId>"``; ``userName`` comes second in precedence (Entra
tries its matching attributes in order until one finds the user). ``match_attributes`` sets that
order, ``external_id="mailNickname"`` the tutorial's older mapping, and ``quoted_filter=False``
its unquoted ``externalId eq jyoung``.

Unknown from public sources, so configurable: the User-Agent after the documented prefix
(``user_agent``), Accept/Content-Type (``application/scim+json`` assumed), whether ``active`` is a
string (``string_booleans``; Entra's own tutorial shows a boolean). ``ad_group_schema=False``
drops the documented ``…/ADSCIM/2.0/Group`` URN from group creates, for servers that reject
unknown schema URNs (this one accepts them). ``concurrency`` (4) is how many users or groups
the job provisions in parallel (Entra runs parallel jobs; no source gives the number). Entra
does not import from the app, does not push passwords and has no "Push Now": those raise
``NotSupported``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from idp_sim.directory import Directory, DirectoryGroup, DirectoryUser
from idp_sim.profiles.base import Profile, eq_filter
from idp_sim.transport import HeaderProfile, RetryPolicy, Transport
from idp_sim.urns import ENTERPRISE, GROUP, PATCH_OP, USER

ENTRA_USER_AGENT = "Microsoft Azure AD SCIM provisioning"
AD_GROUP_SCHEMA = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
_NAMESPACE = uuid.UUID("6f1d8a1e-4c53-4a4e-9d0a-3c8f1a2b7e55")


def entra_headers(
    user_agent: str = ENTRA_USER_AGENT, media_type: str = "application/scim+json"
) -> HeaderProfile:
    return HeaderProfile(user_agent=user_agent, accept=media_type, content_type=media_type)


def entra_retry(cycle: float = 2400.0, cycles: int = 3) -> RetryPolicy:
    """Entra's throttling: a request refused with 429 is tried again on the next provisioning
    cycle (every 40 minutes), whatever ``Retry-After`` says, on at most ``cycles`` cycles;
    then the job goes into quarantine and sends nothing more."""
    return RetryPolicy(
        default_wait=cycle,
        max_attempts=cycles + 1,
        max_total_wait=cycle * cycles,
        honour_retry_after=False,
        backoff=1.0,
        quarantine=True,
    )


def entra_transport(
    base_url: str,
    token: str,
    *,
    user_agent: str = ENTRA_USER_AGENT,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> Transport:
    return Transport(
        base_url, token, entra_headers(user_agent), retry=retry or entra_retry(), **kwargs
    )


def object_id(directory_id: str) -> str:
    """A stable Entra objectId (GUID) for a directory object."""
    return str(uuid.uuid5(_NAMESPACE, directory_id))


class Entra(Profile):
    name: str = "entra"

    def __init__(
        self,
        transport: Transport,
        directory: Directory,
        *,
        seed: int = 0,
        optscim062020: bool = False,
        string_booleans: bool = True,
        match_attributes: Sequence[str] = ("externalId", "userName"),
        external_id: Literal["objectId", "mailNickname"] = "objectId",
        quoted_filter: bool = True,
        ad_group_schema: bool = True,
        concurrency: int = 4,
    ) -> None:
        super().__init__(transport, directory, seed=seed, concurrency=concurrency)
        self.flag = optscim062020
        self.classic_string_booleans = string_booleans
        self.string_booleans = string_booleans and not optscim062020
        self.match_attributes = tuple(match_attributes)
        self.external_id = external_id
        self.quoted_filter = quoted_filter
        self.ad_group_schema = ad_group_schema
        self.sent: dict[str, dict[str, Any]] = {}  # directory user id → attributes last pushed

    def op(self, name: str) -> str:
        return name.lower() if self.flag else name.capitalize()

    def boolean(self, value: bool) -> bool | str:
        return ("True" if value else "False") if self.string_booleans else value

    async def test_connection(self) -> bool:
        """Shape inferred: a random user and a random group that should not exist; 200 expected."""
        users = await self.call(
            "test connection",
            "GET",
            "/Users",
            [("filter", eq_filter("userName", str(uuid.UUID(int=self.rng.getrandbits(128)))))],
        )
        groups = await self.call(
            "test connection",
            "GET",
            "/Groups",
            [
                ("excludedAttributes", "members"),
                ("filter", eq_filter("displayName", uuid.UUID(int=self.rng.getrandbits(128)).hex)),
            ],
        )
        return users.ok and groups.ok

    def external_id_of(self, user: DirectoryUser) -> str:
        """The user's ``externalId``: its objectId, or (older mapping) its mailNickname."""
        return object_id(user.id) if self.external_id == "objectId" else user.nickname

    def attributes(self, user: DirectoryUser) -> dict[str, Any]:
        """Attribute path → value, Entra's default mapping."""
        return {
            "externalId": self.external_id_of(user),
            "userName": user.login,
            "active": user.active,
            "displayName": user.display_name,
            "title": user.title,
            'emails[type eq "work"].value': user.email,
            "name.givenName": user.given_name,
            "name.familyName": user.family_name,
            f"{ENTERPRISE}:department": user.department,
        }

    def user_body(self, user: DirectoryUser) -> dict[str, Any]:
        return {
            "schemas": [USER, ENTERPRISE],
            "externalId": self.external_id_of(user),
            "userName": user.login,
            "active": user.active,
            "displayName": user.display_name,
            "title": user.title,
            "emails": [{"primary": True, "type": "work", "value": user.email}],
            "meta": {"resourceType": "User"},
            "name": {
                "formatted": user.display_name,
                "familyName": user.family_name,
                "givenName": user.given_name,
            },
            "roles": [],
            ENTERPRISE: {"department": user.department},
        }

    def match_filter(self, user: DirectoryUser, attribute: str) -> str:
        """One existence check: ``userName`` or ``externalId`` ``eq`` the user's value."""
        value = user.login if attribute == "userName" else self.external_id_of(user)
        if self.quoted_filter:
            return eq_filter(attribute, value)
        return f"{attribute} eq {value}"

    async def match_user(
        self, user: DirectoryUser, operation: str
    ) -> tuple[bool, dict[str, Any] | None]:
        """The existence checks in precedence order, up to the first hit: whether every query
        was answered, and the user found. A refused query is no miss: Entra then creates
        nothing and reports the user as failed."""
        for attribute in self.match_attributes:
            lookup = await self.call(
                operation, "GET", "/Users", [("filter", self.match_filter(user, attribute))]
            )
            if lookup.status != 200:
                return False, None
            found = self.first_resource(lookup)
            if found is not None:
                return True, found
        return True, None

    async def assign_user(self, user: DirectoryUser) -> str | None:
        """The existence checks; hit → adopt and update, miss → POST, refused → nothing."""
        self.directory.assign_user(user.id)
        answered, found = await self.match_user(user, "assign")
        if not answered:
            return None
        if found is not None:
            self.user_links[user.id] = found["id"]
            await self.adopt_user(user)
            return str(found["id"])
        return await self.create_user(user, "assign")

    async def create_user(self, user: DirectoryUser, operation: str) -> str | None:
        """``POST /Users`` of the create body; the new user is linked."""
        response = await self.call(
            operation, "POST", "/Users", body=self.user_body(user), expect=(201,)
        )
        if isinstance(response.body, dict) and "id" in response.body:
            self.user_links[user.id] = response.body["id"]
            self.sent[user.id] = self.attributes(user)
            return str(response.body["id"])
        return None

    async def adopt_user(self, user: DirectoryUser) -> None:
        """A matched user takes every mapped attribute, ``active`` included: that is how a user
        back in scope (re-assigned, re-enabled) or met again after a restart becomes active."""
        await self.patch_user(
            user, "assign (match)", {**self.attributes(user), "active": self.boolean(user.active)}
        )
        self.sent[user.id] = self.attributes(user)

    def forget_links(self) -> None:
        super().forget_links()
        self.sent.clear()

    def user_operations(self, changes: dict[str, Any]) -> list[dict[str, Any]]:
        """The PATCH operations for ``changes`` (attribute path → value) in the job's dialect.

        Classic: one ``Replace`` per path. The flag: ``active`` and every path with a value
        filter (``emails[type eq "work"].value``) are operations of their own, with a ``path``;
        the other attributes go together in one path-less ``replace`` under their dotted paths.
        """
        if not self.flag:
            return [{"op": "Replace", "path": path, "value": v} for path, v in changes.items()]
        pathed = {p: v for p, v in changes.items() if p == "active" or "[" in p}
        pathless = {p: v for p, v in changes.items() if p not in pathed}
        operations = [
            {"op": "replace", "path": p, "value": v} for p, v in pathed.items() if p != "active"
        ]
        if pathless:
            operations.append({"op": "replace", "value": pathless})
        if "active" in pathed:
            operations.append({"op": "replace", "path": "active", "value": pathed["active"]})
        return operations

    async def patch_user(
        self, user: DirectoryUser, operation: str, changes: dict[str, Any]
    ) -> None:
        await self.call(
            operation,
            "PATCH",
            f"/Users/{self.scim_user_id(user)}",
            body={"schemas": [PATCH_OP], "Operations": self.user_operations(changes)},
            expect=(200, 204),
        )

    def changes(self, user: DirectoryUser) -> dict[str, Any]:
        """The mapped attributes changed since the last push, ``active`` aside (deactivation
        and reactivation send it)."""
        before = self.sent.get(user.id, {})
        return {
            k: v for k, v in self.attributes(user).items() if before.get(k) != v and k != "active"
        }

    async def update_user(self, user: DirectoryUser) -> None:
        """Only the attributes that changed since the last push, one ``Replace`` each; then the
        manager reference."""
        await self.push_changes(user, "update profile")
        await self.sync_manager(user, "update profile")

    async def push_changes(self, user: DirectoryUser, operation: str) -> None:
        changes = self.changes(user)
        if changes:
            await self.patch_user(user, operation, changes)
        self.sent[user.id] = self.attributes(user)

    async def sync_manager(self, user: DirectoryUser, operation: str) -> None:
        """The manager reference (E1): ``id eq "<user>" and manager eq "<manager>"``; when that
        finds nothing, a PATCH ``replace`` of ``manager`` with the manager's id (the shape is
        inferred from the "Remove Manager" ``Replace`` of ``""`` Entra is known for)."""
        if user.manager_id not in self.user_links:
            return
        scim_id, manager = self.scim_user_id(user), self.user_links[user.manager_id]
        query = f"{eq_filter('id', scim_id)} and {eq_filter('manager', manager)}"
        probe = await self.call(operation, "GET", "/Users", [("filter", query)])
        if probe.status != 200 or self.first_resource(probe) is not None:
            return
        await self.call(
            operation,
            "PATCH",
            f"/Users/{scim_id}",
            body={
                "schemas": [PATCH_OP],
                "Operations": [{"op": self.op("replace"), "path": "manager", "value": manager}],
            },
            expect=(200, 204),
        )

    def classic(self) -> Entra:
        """This job as provision on demand runs it: the same links, journal and transport, the
        classic dialect whatever the flag (E2: provision on demand ignores it)."""
        twin = copy.copy(self)
        twin.flag = False
        twin.string_booleans = self.classic_string_booleans
        return twin

    async def provision_on_demand(self, user: DirectoryUser) -> None:
        """One user now, in the classic dialect: existence checks; a miss is created, a hit is
        read by id (``GET /Users/{id}``) and updated; then its manager reference; then each of
        its groups in scope: lookup by displayName (created on a miss), the membership probe
        ``id eq "<group>" and members[value eq "<user>"]``, and an ``Add`` when it finds
        nothing."""
        await self.classic().on_demand(user)

    async def on_demand(self, user: DirectoryUser) -> None:
        operation = "provision on demand"
        self.directory.assign_user(user.id)
        answered, found = await self.match_user(user, operation)
        if not answered:
            return
        if found is None:
            if await self.create_user(user, operation) is None:
                return
        else:
            self.user_links[user.id] = found["id"]
            await self.call(operation, "GET", f"/Users/{found['id']}")
            if user.id in self.sent:
                await self.push_changes(user, operation)
            else:
                await self.adopt_user(user)
        await self.sync_manager(user, operation)
        for group in self.directory.groups:
            if user.id in group.member_ids and group.id in self.directory.assigned_group_ids:
                await self.join_on_demand(group, user, operation)

    async def join_on_demand(
        self, group: DirectoryGroup, user: DirectoryUser, operation: str
    ) -> None:
        """The group found or created, then the user added unless the probe finds it there."""
        group_id = await self.find_or_create_group(group, operation)
        if group_id is None:
            return
        user_id = self.scim_user_id(user)
        query = f'{eq_filter("id", group_id)} and members[value eq "{user_id}"]'
        probe = await self.call(
            operation, "GET", "/Groups", [("excludedAttributes", "members"), ("filter", query)]
        )
        if probe.status != 200 or self.first_resource(probe) is not None:
            return
        add = {"op": self.op("add"), "path": "members", "value": [self.member_ref(user.id)]}
        await self.patch_group(group, operation, [add])
        self.pushed_members.setdefault(group.id, []).append(user.id)

    async def set_active(self, user: DirectoryUser, operation: str, active: bool) -> None:
        await self.patch_user(user, operation, {"active": self.boolean(active)})
        self.sent.setdefault(user.id, {})["active"] = active

    async def deactivate_user(self, user: DirectoryUser) -> None:
        user.active = False
        await self.set_active(user, "deactivate", False)

    async def reactivate_user(self, user: DirectoryUser) -> None:
        user.active = True
        await self.set_active(user, "reactivate", True)

    async def unassign_user(self, user: DirectoryUser) -> None:
        """Out of scope → soft delete (disable); a hard delete is :meth:`delete_user`."""
        self.directory.unassign_user(user.id)
        await self.set_active(user, "unassign", False)

    async def delete_user(self, user: DirectoryUser) -> None:
        await self.call("delete user", "DELETE", f"/Users/{self.scim_user_id(user)}", expect=(204,))
        self.forget_user(user)

    # ---- groups ----------------------------------------------------------------
    def member_ref(self, user_id: str) -> dict[str, Any]:
        return {"$ref": None, "value": self.user_links[user_id]}

    async def find_or_create_group(self, group: DirectoryGroup, operation: str) -> str | None:
        """Query by displayName without members; a miss is POSTed with no members. Linked."""
        found = self.first_resource(
            await self.call(
                operation,
                "GET",
                "/Groups",
                [
                    ("excludedAttributes", "members"),
                    ("filter", eq_filter("displayName", group.name)),
                ],
            )
        )
        if found is None:
            response = await self.call(
                operation,
                "POST",
                "/Groups",
                body={
                    "schemas": [GROUP, AD_GROUP_SCHEMA] if self.ad_group_schema else [GROUP],
                    "externalId": object_id(group.id),
                    "displayName": group.name,
                },
                expect=(201,),
            )
            if not (isinstance(response.body, dict) and "id" in response.body):
                return None
            found = response.body
        self.group_links[group.id] = str(found["id"])
        return self.group_links[group.id]

    async def push_group(self, group: DirectoryGroup) -> str | None:
        """The group found or created, then its members by PATCH ``Add``."""
        self.directory.assign_group(group.id)
        if await self.find_or_create_group(group, "group push") is None:
            return None
        self.pushed_members[group.id] = []
        await self.update_members(group)
        return self.group_links[group.id]

    async def update_members(self, group: DirectoryGroup) -> None:
        """``Remove`` with a value list (flag: one remove per ``members[value eq …]``), ``Add``."""
        removed, added = self.delta(group)
        operations: list[dict[str, Any]] = []
        if removed and self.flag:
            operations += [
                {"op": "remove", "path": f'members[value eq "{self.user_links[m]}"]'}
                for m in removed
            ]
        elif removed:
            operations.append(
                {
                    "op": "Remove",
                    "path": "members",
                    "value": [{"value": self.user_links[m]} for m in removed],
                }
            )
        if added:
            operations.append(
                {
                    "op": self.op("add"),
                    "path": "members",
                    "value": [self.member_ref(m) for m in added],
                }
            )
        if operations:
            await self.patch_group(group, "group membership", operations)
        self.pushed_members[group.id] = self.member_ids(group)

    async def rename_group(self, group: DirectoryGroup) -> None:
        await self.patch_group(
            group,
            "group rename",
            [{"op": self.op("replace"), "path": "displayName", "value": group.name}],
        )

    async def delete_group(self, group: DirectoryGroup) -> None:
        await self.call(
            "group delete", "DELETE", f"/Groups/{self.scim_group_id(group)}", expect=(204,)
        )
        self.group_links.pop(group.id, None)
        self.directory.assigned_group_ids.discard(group.id)
