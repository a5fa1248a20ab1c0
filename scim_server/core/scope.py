"""Who a protocol operation is for."""

from __future__ import annotations

from dataclasses import dataclass

from scim_server.models import ResourceKind
from scim_server.storage.events import Client


@dataclass(frozen=True)
class Scope:
    """Who is asking: the tenant, the SCIM base URL its resources are located under, and the
    client, which the events of the changes it makes name."""

    tenant: str
    base_url: str
    client: Client

    def location(self, kind: ResourceKind, resource_id: str) -> str:
        return f"{self.base_url}/{kind.endpoint}/{resource_id}"
