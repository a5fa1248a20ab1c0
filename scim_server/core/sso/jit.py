"""Just-in-time provisioning: a verified identity becomes (or updates) a user in the SCIM store.

A verified identity is what an identity provider vouched for, whatever the protocol: a SAML
assertion or an OpenID Connect ID token, each verified by its own adapter
(``verify.py``, ``oidc.py``), becomes the same :class:`VerifiedIdentity`, and from there on
every sign-in takes the same steps.

JIT writes through ``Provisioning``, the same code the SCIM API runs, so a JIT user is an
ordinary SCIM user (``meta.created`` is its first sign-in), seats are enforced the same
way, and a later SCIM GET shows exactly what the sign-in wrote.

Who an identity signs in as is decided by a link (IdP issuer, subject) -> user id, kept
apart from the SCIM document:

- a linked subject is that user, whatever its email has become;
- an unlinked subject adopts the user whose userName is the profile's user name (SAML: the
  subject itself; OIDC: the email claim, since ``sub`` is an opaque id), unless that user is
  already linked to another IdP: the same email from a second IdP never takes an account over;
- otherwise, with JIT on, a user is created with that user name.

JIT is create-and-update only, as Okta's is: it never deactivates
anyone, and a user SCIM deactivated cannot sign in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from scim2_models import Group, PatchOp, UniquenessException, User

from scim_server.core.directory import UserRecord
from scim_server.core.errors import TooManyConcurrentChanges, resource_not_found
from scim_server.core.one_team import OneTeamRefusal
from scim_server.core.provisioning import Provisioning
from scim_server.core.scope import Scope
from scim_server.core.sso.settings import Protocol, SsoSettings
from scim_server.models import GROUPS, USERS
from scim_server.storage.sso import SsoRepository

Action = Literal["created", "updated", "unchanged"]
GROUP_WAITS = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
"""Seconds between looks for a group another sign-in is creating: about 3 s in all."""


class SignInRefused(Exception):
    """The assertion is genuine but may not sign anyone in; ``reason`` is for the admin log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AccountDeactivated(SignInRefused):
    """The user exists and SCIM (or an admin) deactivated it."""


@dataclass(frozen=True)
class VerifiedIdentity:
    """What an identity provider vouched for, read from a verified SAML assertion or ID token.

    ``subject_id`` is the protocol's own name for the person (the NameID, the ``sub`` claim);
    ``attributes`` are the SAML attributes or the ID token's claims, as text values.
    ``details`` name the message for the SSO log (its issuer, subject, assertion or token id).
    """

    protocol: Protocol
    issuer: str
    subject_id: str
    attributes: Mapping[str, tuple[str, ...]]
    details: Mapping[str, Any] = field(default_factory=dict)

    def attribute(self, name: str | None) -> tuple[str, ...]:
        """An attribute's values, its name matched case-insensitively (IdPs vary in case)."""
        if not name:
            return ()
        wanted = name.lower()
        return next(
            (values for key, values in self.attributes.items() if key.lower() == wanted), ()
        )


@dataclass(frozen=True)
class Profile:
    """What an identity says about a person, mapped through the tenant's attribute names.

    ``subject`` keys the account link; ``user_name`` is the userName it adopts or creates."""

    subject: str
    user_name: str
    email: str | None
    first_name: str | None
    last_name: str | None
    groups: tuple[str, ...]

    @property
    def display_name(self) -> str | None:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or None


@dataclass(frozen=True)
class Account:
    user_id: str
    user_name: str
    action: Action


def profile_of(identity: VerifiedIdentity, settings: SsoSettings) -> Profile:
    """Map an identity onto a profile through the tenant's names for its protocol.

    SAML: the subject is the NameID or the configured attribute, and is the user name too.
    OIDC: the subject is ``sub``, and the user name the email claim (``sub`` is an opaque id).
    """
    oidc = identity.protocol == "oidc"
    names = settings.oidc.claims if oidc else settings.attributes
    subject = identity.subject_id
    if not oidc and settings.name_id_source == "attribute":
        values = identity.attribute(settings.name_id_attribute)
        if not values or not values[0]:
            raise SignInRefused(
                f"the assertion lacks the subject attribute {settings.name_id_attribute!r}"
            )
        subject = values[0]

    def first(name: str | None) -> str | None:
        values = identity.attribute(name)
        return values[0] if values and values[0] else None

    email = first(names.email) or (identity.subject_id if "@" in identity.subject_id else None)
    user_name = email if oidc else subject
    if not user_name:
        raise SignInRefused(f"the ID token carries no {names.email!r} claim to name the user by")
    return Profile(
        subject=subject,
        user_name=user_name,
        email=email,
        first_name=first(names.first_name),
        last_name=first(names.last_name),
        groups=tuple(value for value in identity.attribute(names.groups) if value),
    )


class JustInTime:
    """Reads users and groups through the ``Directory``; writes them through ``Provisioning``."""

    def __init__(self, provisioning: Provisioning, repository: SsoRepository) -> None:
        self.provisioning = provisioning
        self.directory = provisioning.directory
        self.repository = repository

    async def find(self, scope: Scope, issuer: str, profile: Profile) -> UserRecord | None:
        """The user this (issuer, subject) signs in as, if there is one; writes nothing."""
        user_id = await self.repository.linked_user(scope.tenant, issuer, profile.subject)
        if user_id is not None:
            user = await self.directory.user(scope.tenant, user_id)
            if user is not None:
                return user
        return await self.directory.user_named(scope.tenant, profile.user_name)

    async def sign_in(
        self, scope: Scope, issuer: str, profile: Profile, settings: SsoSettings, now: datetime
    ) -> Account:
        user, action = await self._account(scope, issuer, profile, settings, now)
        if not user.active:
            raise AccountDeactivated(f"user {user.user_name!r} is deactivated")
        if action != "created" and settings.jit and await self._update(scope, user, profile):
            action = "updated"
        if settings.jit and await self._sync_groups(scope, user.id, profile, settings, now):
            action = "updated" if action == "unchanged" else action
        return Account(user_id=user.id, user_name=user.user_name, action=action)

    # -- who ---------------------------------------------------------------------------------

    async def _account(
        self, scope: Scope, issuer: str, profile: Profile, settings: SsoSettings, now: datetime
    ) -> tuple[UserRecord, Action]:
        tenant = scope.tenant
        linked = await self.repository.linked_user(tenant, issuer, profile.subject)
        if linked is not None:
            user = await self.directory.user(tenant, linked)
            if user is not None:
                return user, "unchanged"
            await self.repository.unlink(tenant, issuer, profile.subject)  # SCIM deleted it
        action: Action = "unchanged"
        user = await self.directory.user_named(tenant, profile.user_name)
        if user is None:
            if not settings.jit:
                raise SignInRefused(f"no user {profile.user_name!r}, and JIT provisioning is off")
            user, action = await self._create(scope, profile)
        # A user created just now has no links; any other may belong to another IdP.
        others = (
            set()
            if action == "created"
            else (set(await self.repository.issuers_of(tenant, user.id)) - {issuer})
        )
        if others:
            raise SignInRefused(
                f"user {profile.user_name!r} is linked to another identity "
                f"provider ({', '.join(sorted(others))})"
            )
        if not await self.repository.link(tenant, issuer, profile.subject, user.id, now):
            # A concurrent first sign-in of the same person linked it first: use theirs.
            return await self._account(scope, issuer, profile, settings, now)
        return user, action

    async def _create(self, scope: Scope, profile: Profile) -> tuple[UserRecord, Action]:
        body: dict[str, Any] = {
            "schemas": [User.__schema__],
            "userName": profile.user_name,
            "active": True,
            **_profile_attributes(profile),
        }
        try:
            answer = await self.provisioning.create(USERS, scope, body)
        except OneTeamRefusal as refused:
            raise SignInRefused(str(refused.detail)) from None
        except UniquenessException:
            # Created by a concurrent sign-in (or SCIM) since we looked: adopt it.
            existing = await self.directory.user_named(scope.tenant, profile.user_name)
            if existing is None:
                raise
            return existing, "unchanged"
        created = await self.directory.user(scope.tenant, str(answer.payload["id"]))
        if created is None:  # deleted by a SCIM DELETE meanwhile: the sign-in fails (404)
            raise resource_not_found(USERS.endpoint, str(answer.payload["id"]))
        return created, "created"

    # -- what --------------------------------------------------------------------------------

    async def _update(self, scope: Scope, user: UserRecord, profile: Profile) -> bool:
        """Replace the mapped attributes that changed; answers whether anything did.

        Each attribute is replaced on its own path, so what SCIM set beside them (a
        formatted name, other emails) is kept.
        """
        operations = _changes(user.attributes, profile)
        if not operations:
            return False
        await self.provisioning.patch(
            USERS,
            scope,
            user.id,
            {"schemas": [PatchOp.__schema__], "Operations": operations},
            selection=None,
        )
        return True

    async def _sync_groups(
        self, scope: Scope, user_id: str, profile: Profile, settings: SsoSettings, now: datetime
    ) -> bool:
        """Make the user's membership of the allowed groups what the assertion says.

        Only groups the allowlist names are ever touched: membership of any other group is
        the SCIM feed's business. An allowed group that does not exist yet is created.
        """
        if not settings.allowed_groups:
            return False
        asserted = {name.lower(): name for name in profile.groups if settings.group_allowed(name)}
        current = await self._allowed_memberships(scope, user_id, settings)
        changed = False
        for name, group_id in current.items():
            if name not in asserted:
                await self._member_change(scope, group_id, "remove", user_id)
                changed = True
        for key, name in asserted.items():
            if key not in current:
                group_id = await self._group_id(scope, name, now)
                await self._member_change(scope, group_id, "add", user_id)
                changed = True
        return changed

    async def _allowed_memberships(
        self, scope: Scope, user_id: str, settings: SsoSettings
    ) -> dict[str, str]:
        """The allowed groups the user is in now: lowercased displayName -> group id."""
        groups = await self.directory.groups_of(scope.tenant, user_id)
        return {
            name.lower(): group_id
            for group_id, name in groups.items()
            if settings.group_allowed(name)
        }

    async def _group_id(self, scope: Scope, display_name: str, now: datetime) -> str:
        """The group of that displayName, created if there is none yet.

        Concurrent first sign-ins into a new group (in any worker process) would each try to
        create it, and on a tenant that allows duplicate group names each would succeed: the
        sign-in that claims the name looks once more (the group may have been made just before
        its claim) and creates it, and the others wait for it to appear.
        """
        tenant, key = scope.tenant, display_name.lower()
        for delay in GROUP_WAITS:
            group_id = await self.directory.group_named(tenant, display_name)
            if group_id is not None:
                return group_id
            token = await self.repository.claim_group_name(tenant, key, now)
            if token is not None:
                try:
                    return await self.directory.group_named(
                        tenant, display_name
                    ) or await self._create_group(scope, display_name)
                finally:
                    await self.repository.release_group_name(tenant, key, token)
            await asyncio.sleep(delay)
        raise TooManyConcurrentChanges(
            detail=f"the group {display_name!r} is being created by another sign-in; retry"
        )

    async def _create_group(self, scope: Scope, display_name: str) -> str:
        try:
            answer = await self.provisioning.create(
                GROUPS, scope, {"schemas": [Group.__schema__], "displayName": display_name}
            )
        except UniquenessException:
            # Created meanwhile by SCIM, which claims no name (group names are unique).
            group_id = await self.directory.group_named(scope.tenant, display_name)
            if group_id is None:
                raise
            return group_id
        return str(answer.payload["id"])

    async def _member_change(self, scope: Scope, group_id: str, op: str, user_id: str) -> None:
        operation: dict[str, Any] = (
            {"op": "add", "path": "members", "value": [{"value": user_id}]}
            if op == "add"
            else {"op": "remove", "path": f'members[value eq "{user_id}"]'}
        )
        await self.provisioning.patch(
            GROUPS,
            scope,
            group_id,
            {"schemas": [PatchOp.__schema__], "Operations": [operation]},
            selection=None,
        )


def _profile_attributes(profile: Profile) -> dict[str, Any]:
    """A new user's SCIM attributes, from its first sign-in."""
    attributes: dict[str, Any] = {}
    name = {
        key: value
        for key, value in (("givenName", profile.first_name), ("familyName", profile.last_name))
        if value
    }
    if name:
        attributes["name"] = name
    if profile.display_name:
        attributes["displayName"] = profile.display_name
    if profile.email:
        attributes["emails"] = [{"value": profile.email, "type": "work", "primary": True}]
    return attributes


def _changes(current: Mapping[str, Any], profile: Profile) -> list[dict[str, Any]]:
    """PATCH operations that bring an existing user's mapped attributes up to this sign-in."""
    name = current.get("name") or {}
    wanted = (
        ("name.givenName", name.get("givenName"), profile.first_name),
        ("name.familyName", name.get("familyName"), profile.last_name),
        ("displayName", current.get("displayName"), profile.display_name),
    )
    operations: list[dict[str, Any]] = [
        {"op": "replace", "path": path, "value": value}
        for path, now, value in wanted
        if value and now != value
    ]
    emails = current.get("emails") or []
    known = {str(email.get("value", "")).lower() for email in emails}
    if profile.email and profile.email.lower() not in known:
        others = [{**email, "primary": False} for email in emails]
        operations.append(
            {
                "op": "replace",
                "path": "emails",
                "value": [{"value": profile.email, "type": "work", "primary": True}, *others],
            }
        )
    return operations
