"""Who a protocol operation is for."""

from __future__ import annotations

from dataclasses import dataclass

from scim_server.models import ResourceKind


@dataclass(frozen=True)
class Scope:
    """Who is asking: the tenant, and the SCIM base URL its resources are located under."""

    tenant: str
    base_url: str

    def location(self, kind: ResourceKind, resource_id: str) -> str:
        return f"{self.base_url}/{kind.endpoint}/{resource_id}"
