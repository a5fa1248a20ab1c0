"""A tenant's own User extension, defined as its app's admin would (``PUT .../user-extensions``).

For the tests of custom User extensions (``test_user_extensions.py``) and of the conformance
checks that exercise one.
"""

from __future__ import annotations

from typing import Any

from tests.support.scim import ADMIN, Scim

ACME = "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
"""The extension's URN: dotted, as Okta's and Entra's custom extensions are."""

ACME_SCHEMA: dict[str, Any] = {
    "name": "AcmeUser",
    "description": "What Acme's app keeps of a person",
    "attributes": [
        {"name": "badge", "type": "string", "multiValued": False, "description": "Badge number"},
        {"name": "level", "type": "integer", "multiValued": False},
        {"name": "contractor", "type": "boolean", "multiValued": False},
        {"name": "hired", "type": "dateTime", "multiValued": False},
        {"name": "skills", "type": "string", "multiValued": True},
        {
            "name": "site",
            "type": "complex",
            "multiValued": False,
            "subAttributes": [
                {"name": "code", "type": "string", "multiValued": False, "required": True},
                {"name": "floor", "type": "integer", "multiValued": False},
            ],
        },
    ],
}


def extensions_path(scim: Scim, urn: str | None = None) -> str:
    path = f"/admin/tenants/{scim.tenant}/user-extensions"
    return path if urn is None else f"{path}/{urn}"


async def define(scim: Scim, urn: str = ACME, schema: dict[str, Any] | None = None) -> Any:
    """Define the extension in ``scim``'s tenant (``ACME_SCHEMA`` by default): the response."""
    return await scim.client.put(
        extensions_path(scim, urn), json=ACME_SCHEMA if schema is None else schema, headers=ADMIN
    )
