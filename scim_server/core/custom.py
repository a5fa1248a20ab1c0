"""Custom resource types: the Roles, Entitlements and Licenses a tenant adds to its users.

Okta Identity Governance reads an app's entitlements over SCIM (docs/entitlements.md): it
finds their resource types in ``/ResourceTypes``, pages through each endpoint, and then
pushes users whose ``entitlements`` and ``roles`` name them. The entitlements themselves are
the app's: each tenant's registry says which of ``CUSTOM_KINDS`` it serves, and the app
loads their resources through the admin API (``load``). SCIM reads them (list, ``.search``,
by id) exactly as it reads users and groups; it never writes them (405).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from scim2_models import Context, InvalidValueException, NotFoundException, SCIMException

from scim_server.core.errors import resource_not_found, unknown_tenant
from scim_server.core.provisioning import Provisioning
from scim_server.core.queries import ALL_ATTRIBUTES, Answer
from scim_server.core.scope import Scope
from scim_server.core.writes import validate
from scim_server.models import CUSTOM_KINDS, CUSTOM_KINDS_BY_ENDPOINT, ResourceKind
from scim_server.storage.documents import stored_form
from scim_server.storage.tenants import TenantRepository

MAX_LOAD = 10_000
"""The most resources one load carries: a catalogue of entitlements, not a data dump."""


def unknown_endpoint(endpoint: str) -> NotFoundException:
    """What a path of no resource type the tenant serves answers, as for any unknown path."""
    return NotFoundException(detail=f"no resource type is served at /{endpoint}")


class CustomResources:
    """Each tenant's registry of custom resource types, and the resources the app loads."""

    def __init__(self, tenants: TenantRepository, provisioning: Provisioning) -> None:
        self.tenants = tenants
        self.provisioning = provisioning

    async def kinds(self, tenant: str) -> tuple[ResourceKind, ...]:
        """The custom resource types the tenant serves, in ``CUSTOM_KINDS`` order."""
        names = await self.tenants.resource_types(tenant)
        if names is None:
            raise unknown_tenant(tenant)
        return tuple(kind for kind in CUSTOM_KINDS if kind.name in names)

    async def served(self, tenant: str, endpoint: str) -> ResourceKind:
        """The custom resource type the tenant serves at ``/{endpoint}``, else 404."""
        kind = CUSTOM_KINDS_BY_ENDPOINT.get(endpoint)
        if kind is None or kind not in await self.kinds(tenant):
            raise unknown_endpoint(endpoint)
        return kind

    async def serve(self, tenant: str, names: object) -> tuple[ResourceKind, ...]:
        """Serve exactly these custom resource types (by name); the resources of a type no
        longer served are kept, unreachable, until it is served again or the tenant goes."""
        known = {kind.name for kind in CUSTOM_KINDS}
        if not isinstance(names, list) or not all(
            isinstance(name, str) and name in known for name in names
        ):
            raise InvalidValueException(
                detail=f"resource_types is a list of names among {sorted(known)}"
            )
        if not await self.tenants.set_resource_types(tenant, sorted(set(names))):
            raise unknown_tenant(tenant)
        return await self.kinds(tenant)

    async def load(self, scope: Scope, endpoint: str, resources: object) -> list[Answer]:
        """Store the app's resources of one type: each replaces the one of its ``externalId``,
        or is added. Every resource is validated before any is written, so a load with one
        bad resource (400, naming it) writes nothing."""
        kind = await self.served(scope.tenant, endpoint)
        if not isinstance(resources, list) or not 0 < len(resources) <= MAX_LOAD:
            raise InvalidValueException(
                detail=f"Resources is a list of 1 to {MAX_LOAD} {kind.name} resources"
            )
        forms = []
        for position, body in enumerate(resources):
            try:
                resource = validate(kind, _without_id(body), Context.RESOURCE_CREATION_REQUEST)
            except SCIMException as error:
                raise type(error)(detail=f"Resources[{position}]: {error.detail}") from None
            forms.append(stored_form(kind, resource.model_dump(scim_ctx=Context.DEFAULT)))
        repository = self.provisioning.repository(kind)
        now = datetime.now(UTC)
        stored = [
            await repository.put(scope.tenant, form, now, str(uuid.uuid4())) for form in forms
        ]
        payloads = await self.provisioning.renderer.render(kind, scope, stored, ALL_ATTRIBUTES)
        return [
            Answer(payload, record.version)
            for payload, record in zip(payloads, stored, strict=True)
        ]

    async def remove(self, tenant: str, endpoint: str, resource_id: str) -> None:
        """Delete one of the app's resources (404 when the tenant has none of that id)."""
        kind = await self.served(tenant, endpoint)
        if not await self.provisioning.repository(kind).remove(tenant, resource_id):
            raise resource_not_found(kind.endpoint, resource_id)


def _without_id(body: Any) -> Any:
    """A loaded resource as a creation request: ``id`` is the server's to give (RFC 7644
    §3.3 has a client's ignored), ``externalId`` is the app's key."""
    if isinstance(body, dict):
        return {key: value for key, value in body.items() if key != "id"}
    return body
