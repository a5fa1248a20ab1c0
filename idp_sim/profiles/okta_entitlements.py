"""Okta with Identity Governance: an entitlement app (docs/entitlements.md).

The OIN template's traffic, plus what governance adds. When provisioning is enabled Okta
discovers the app's entitlements: ``GET /ResourceTypes`` for the types beside User and Group,
``GET /Schemas`` for their schemas, then each type's endpoint paged 100 at a time. Every user it
then creates or updates carries, in ``entitlements`` and ``roles``, one resource of each type
discovered (a type whose schema is Okta's Role goes in ``roles``), each value as Okta sends it:
``{"value": id, "display": displayName, "type": the resource type's name}``. The choice of the
resource is the profile's seeded random generator's, so a run is reproducible.
"""

from __future__ import annotations

from typing import Any

from idp_sim.directory import DirectoryUser
from idp_sim.profiles.okta_oin import OktaOIN
from idp_sim.urns import OKTA_ROLE

CORE_ENDPOINTS = frozenset({"/Users", "/Groups"})


class OktaEntitlements(OktaOIN):
    name: str = "okta-entitlements"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalogue: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        """Each entitlement type discovered, by name: its schema and its resources."""
        self.grants: dict[str, dict[str, list[dict[str, Any]]]] = {}
        """What each directory user was granted, by directory id: ``entitlements``, ``roles``."""

    async def test_connection(self) -> bool:
        """The OIN probes, then the entitlement discovery that enabling provisioning starts."""
        ok = await super().test_connection()
        return await self.discover() and ok

    async def discover(self) -> bool:
        """``/ResourceTypes`` → ``/Schemas`` → every entitlement endpoint, paged; whether the
        discovery calls were answered."""
        self.catalogue = {}
        self.grants = {}
        types = await self.call("discover entitlements", "GET", "/ResourceTypes")
        schemas = await self.call("discover entitlements", "GET", "/Schemas")
        if not isinstance(types.body, dict) or types.status != 200:
            return False
        for resource_type in types.body.get("Resources") or []:
            endpoint = resource_type.get("endpoint")
            if not isinstance(endpoint, str) or endpoint in CORE_ENDPOINTS:
                continue
            resources = await self.page_all("discover entitlements", endpoint)
            self.catalogue[str(resource_type.get("name"))] = (
                str(resource_type.get("schema")),
                [r for r in resources if isinstance(r, dict) and "id" in r],
            )
        return schemas.ok

    def granted(self, user: DirectoryUser) -> dict[str, list[dict[str, Any]]]:
        """The user's ``entitlements`` and ``roles``: one resource of each type, chosen once."""
        if user.id not in self.grants:
            chosen: dict[str, list[dict[str, Any]]] = {}
            for type_name, (schema, resources) in self.catalogue.items():
                if not resources:
                    continue
                resource = self.rng.choice(resources)
                key = "roles" if schema == OKTA_ROLE else "entitlements"
                chosen.setdefault(key, []).append(
                    {
                        "value": resource["id"],
                        "display": resource.get("displayName"),
                        "type": type_name,
                    }
                )
            self.grants[user.id] = chosen
        return self.grants[user.id]

    def user_body(self, user: DirectoryUser) -> dict[str, Any]:
        return {**super().user_body(user), **self.granted(user)}

    def merge(self, current: dict[str, Any], user: DirectoryUser) -> dict[str, Any]:
        return {**super().merge(current, user), **self.granted(user)}
