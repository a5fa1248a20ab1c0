"""The discovery documents of one tenant: RFC 7643 §5-§7, served per RFC 7644 §4.

Clients decide what to send from these documents, so they must describe what this
server actually does. The schemas are therefore generated from the very scim2-models
classes the server validates requests with (``scim_server.models.KINDS``), not written
by hand, and the service provider configuration is derived from ``Capabilities``.

Identity providers poll these endpoints often and the documents only differ between
tenants by ``meta.location``, so each document is built once and cached; a call only
copies it and fills in the location. Everything here is pure: no aiohttp, no database.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Meta,
    Pagination,
    Patch,
    Reference,
    Required,
    ResourceType,
    Schema,
    SchemaExtension,
    ServiceProviderConfig,
    Sort,
    User,
)

from scim_server.core import listing
from scim_server.models import KINDS, LICENSES, OKTA_ENTITLEMENT, OKTA_ROLE, ResourceKind

__all__ = [
    "Capabilities",
    "list_response",
    "resource_type",
    "resource_types",
    "schema",
    "schemas",
    "service_provider_config",
]

_DUMP_CONTEXT = Context.RESOURCE_QUERY_RESPONSE
"""What a client validates a discovery response against, so what the documents are dumped in."""

_DESCRIPTIONS: dict[str, str] = {
    User.__schema__: "User Account",
    EnterpriseUser.__schema__: "Enterprise User",
    Group.__schema__: "Group",
    OKTA_ENTITLEMENT: "Entitlement",
    OKTA_ROLE: "Role",
}
"""RFC 7643 §8.6-§8.7 descriptions; scim2-models would otherwise repeat the class name."""

_KIND_DESCRIPTIONS: dict[str, str] = {LICENSES.name: "License"}
"""Resource types that share a schema but not its description."""

Custom = tuple[ResourceKind, ...]
"""What a tenant serves beyond ``KINDS``: its own User (``core/user_extensions.py``), which
takes the place of ``USERS``, and the custom resource types it serves after Users and Groups
(``core/custom.py``)."""

TENANT_SETS = 256
"""The ``Custom`` sets whose documents are kept built: tenants' definitions can be many."""

_BEARER_SCHEME = AuthenticationScheme(
    type=AuthenticationScheme.Type.oauthbearertoken,
    name="OAuth Bearer Token",
    description=(
        "Authentication with a signed bearer token (RFC 6750) in the Authorization header. "
        "The server issues one token per tenant through its admin API; a token only "
        "grants access to the tenant it was issued for."
    ),
    spec_uri=Reference("https://www.rfc-editor.org/info/rfc6750"),
    primary=True,
)


@dataclass(frozen=True)
class Capabilities:
    """The runtime limits the service provider configuration advertises.

    Frozen, hence hashable: the configuration document is cached per instance.
    """

    max_results: int
    """``filter.maxResults``: the largest page a list or search answers."""
    bulk_supported: bool = False
    bulk_max_operations: int = 0
    bulk_max_payload_size: int = 0
    max_body_bytes: int = 1048576
    """The largest request body the server reads; a bulk payload can never exceed it."""
    cursor_timeout_seconds: int = 600
    """RFC 9865 ``cursorTimeout``: how long a cursor stays valid."""


def service_provider_config(
    base_url: str, caps: Capabilities, *, documentation_uri: str | None = None
) -> dict[str, Any]:
    """The tenant's ``/ServiceProviderConfig`` (RFC 7643 §5), ready to serialise as JSON."""
    document = _service_provider_config(caps, documentation_uri)
    return _located(document, f"{_base(base_url)}/ServiceProviderConfig")


def resource_types(base_url: str, custom: Custom = ()) -> list[dict[str, Any]]:
    """Every ``/ResourceTypes`` entry (RFC 7643 §6), in ``KINDS`` order, then ``custom``'s."""
    base = _base(base_url)
    return [
        _located(document, f"{base}/ResourceTypes/{name}")
        for name, document in _resource_types(custom).items()
    ]


def resource_type(name: str, base_url: str, custom: Custom = ()) -> dict[str, Any] | None:
    """The resource type called ``name`` (``User``, ``Group``, one of ``custom``); None when
    there is none.

    The name is matched exactly: RFC 7643 §6 declares it caseExact.
    """
    document = _resource_types(custom).get(name)
    if document is None:
        return None
    return _located(document, f"{_base(base_url)}/ResourceTypes/{name}")


def schemas(base_url: str, custom: Custom = ()) -> list[dict[str, Any]]:
    """Every ``/Schemas`` entry (RFC 7643 §7): each resource schema, then its extensions."""
    base = _base(base_url)
    return [
        _located(document, f"{base}/Schemas/{document['id']}")
        for document in _schemas(custom).values()
    ]


def schema(urn: str, base_url: str, custom: Custom = ()) -> dict[str, Any] | None:
    """The schema whose id is ``urn``, matched case-insensitively; None when unknown.

    URNs are case-insensitive (RFC 8141 §3.1, and RFC 7643 §2.1 for attribute names),
    so ``/Schemas/urn:ietf:params:scim:schemas:core:2.0:user`` finds the User schema.
    The location always carries the canonical spelling.
    """
    document = _schemas(custom).get(urn.lower())
    if document is None:
        return None
    return _located(document, f"{_base(base_url)}/Schemas/{document['id']}")


def list_response(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Wrap discovery documents in a ListResponse (RFC 7644 §3.4.2).

    Discovery lists are small and never paged, so every resource is on the one page.
    """
    return listing.list_response(resources, len(resources), 1)


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def _located(document: dict[str, Any], location: str) -> dict[str, Any]:
    """A private copy of a cached ``document`` with its ``meta.location`` set.

    Deep, so a caller editing its answer (say, to apply ``attributes=``) cannot
    alter what every other tenant is served. A copy costs well under a millisecond,
    a rebuild through pydantic several.
    """
    located = copy.deepcopy(document)
    located["meta"]["location"] = location
    return located


def _dump(model: ServiceProviderConfig | ResourceType | Schema) -> dict[str, Any]:
    return model.model_dump(scim_ctx=_DUMP_CONTEXT)


@cache
def _service_provider_config(caps: Capabilities, documentation_uri: str | None) -> dict[str, Any]:
    """The configuration without its location.

    Bulk limits are only meaningful when bulk is supported; otherwise they are 0, as
    RFC 7643 §5 still requires them. A bulk payload is capped by the body limit,
    since the server refuses any larger request before reading it.

    The PATCH operation cap (``patch_max_operations``) is not in the document: RFC 7643
    §5 gives ``patch`` only ``supported``, and strict clients (scim2-models among them)
    refuse any other attribute or extension there. The cap is named in the README and
    in the detail of the 400 a PATCH over it gets.
    """
    if caps.bulk_supported:
        max_payload = caps.bulk_max_payload_size or caps.max_body_bytes
        bulk = Bulk(
            supported=True,
            max_operations=caps.bulk_max_operations,
            max_payload_size=min(max_payload, caps.max_body_bytes),
        )
    else:
        bulk = Bulk(supported=False, max_operations=0, max_payload_size=0)
    config = ServiceProviderConfig(
        documentation_uri=Reference(documentation_uri) if documentation_uri else None,
        patch=Patch(supported=True),
        bulk=bulk,
        filter=Filter(supported=True, max_results=caps.max_results),
        # A password is written with PUT or PATCH, kept as a hash and never returned.
        change_password=ChangePassword(supported=True),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        # RFC 9865: both methods; index stays the default, the page size is filter.maxResults.
        pagination=Pagination(
            cursor=True,
            index=True,
            default_pagination_method=Pagination.DefaultPaginationMethod.index,
            default_page_size=caps.max_results,
            max_page_size=caps.max_results,
            cursor_timeout=caps.cursor_timeout_seconds,
        ),
        authentication_schemes=[_BEARER_SCHEME],
        meta=Meta(resource_type="ServiceProviderConfig"),
    )
    return _dump(config)


@lru_cache(maxsize=TENANT_SETS)
def _resource_types(custom: Custom) -> dict[str, dict[str, Any]]:
    """The resource types by name, without their locations (one entry per set of custom
    types and User extensions a tenant serves)."""
    return {kind.name: _dump(_build_resource_type(kind)) for kind in _served(custom)}


def _served(custom: Custom) -> tuple[ResourceKind, ...]:
    """``KINDS``, each replaced by the tenant's own of its name, then the custom types."""
    return tuple({kind.name: kind for kind in (*KINDS, *custom)}.values())


def _build_resource_type(kind: ResourceKind) -> ResourceType:
    """A kind's resource type; whether each extension is required is read off the model."""
    extension_models = getattr(kind.model, "__scim_extension_metadata__", [])
    required = {
        str(model.__schema__): bool(kind.model.get_field_annotation(model.__name__, Required))
        for model in extension_models
    }
    return ResourceType(
        id=kind.name,
        name=kind.name,
        description=_KIND_DESCRIPTIONS.get(kind.name) or _DESCRIPTIONS.get(kind.schema, kind.name),
        endpoint=Reference(f"/{kind.endpoint}"),
        schema_=Reference(kind.schema),
        schema_extensions=[
            SchemaExtension(schema_=Reference(urn), required=required.get(urn, False))
            for urn in kind.extensions
        ],
        meta=Meta(resource_type="ResourceType"),
    )


@lru_cache(maxsize=TENANT_SETS)
def _schemas(custom: Custom) -> dict[str, dict[str, Any]]:
    """The schemas by lower-cased URN, without their locations.

    Generated with ``to_schema()`` from the models requests are validated with, so
    mutability, returned, uniqueness and caseExact are what the server enforces:
    ``password`` writeOnly and never returned, ``userName`` unique server-wide and
    case-insensitive, ``User.groups`` readOnly. The common attributes (``id``,
    ``externalId``, ``meta``) are not repeated, as RFC 7643 §3.1 puts them outside
    every schema.
    """
    models = []
    for kind in _served(custom):
        models.append(kind.model)
        models.extend(getattr(kind.model, "__scim_extension_metadata__", []))
    documents: dict[str, dict[str, Any]] = {}
    for model in models:
        urn = str(model.__schema__)
        built = model.to_schema().model_copy(
            update={
                # A tenant's extension carries the description its definition gives.
                "description": _DESCRIPTIONS.get(urn) or model.__doc__ or model.__name__,
                "meta": Meta(resource_type="Schema"),
            }
        )
        documents[urn.lower()] = _dump(built)
    return documents
