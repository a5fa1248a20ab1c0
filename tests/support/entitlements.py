"""A tenant made an entitlement app, as the app's admin would: the types it serves, its resources.

For the tests of custom resource types (``test_entitlements.py``) and of the suite that
reads them (``test_conformance_entitlements.py``).
"""

from __future__ import annotations

from typing import Any

from tests.support.scim import ADMIN, Scim

ENTITLEMENT = "urn:okta:scim:schemas:core:1.0:Entitlement"
ROLE = "urn:okta:scim:schemas:core:1.0:Role"


async def serve(scim: Scim, *names: str) -> dict[str, Any]:
    response = await scim.client.put(
        f"/admin/tenants/{scim.tenant}/resource-types",
        json={"resource_types": list(names)},
        headers=ADMIN,
    )
    assert response.status == 200, await response.text()
    return dict(await response.json())


async def load(scim: Scim, endpoint: str, resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = await scim.client.post(
        f"/admin/tenants/{scim.tenant}/resources/{endpoint}",
        json={"Resources": resources},
        headers=ADMIN,
    )
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["loaded"] == len(resources)
    return list(body["Resources"])


def entitlement(name: str, kind: str = "License", **more: Any) -> dict[str, Any]:
    return {"schemas": [ENTITLEMENT], "displayName": name, "type": kind, **more}


def role(name: str, **more: Any) -> dict[str, Any]:
    return {"schemas": [ROLE], "displayName": name, "type": "Role", **more}


async def entitlement_app(scim: Scim) -> None:
    """Serve Roles, Entitlements and Licenses in ``scim``'s tenant, a few of each loaded."""
    await serve(scim, "Role", "Entitlement", "License")
    await load(scim, "Roles", [role(name) for name in ("Admin", "Editor", "Viewer")])
    await load(scim, "Entitlements", [entitlement("Reports", "Feature")])
    await load(scim, "Licenses", [entitlement(name) for name in ("Gold", "Silver")])
