"""The discovery documents, checked the way a client reads them: through scim2-models."""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models import (
    CaseExact,
    Context,
    Extension,
    Group,
    ListResponse,
    Resource,
    ResourceType,
    Schema,
    ServiceProviderConfig,
)

from scim_server.core.discovery import (
    Capabilities,
    list_response,
    resource_type,
    resource_types,
    schema,
    schemas,
    service_provider_config,
)
from scim_server.models import UserModel
from tests.support.urns import ENTERPRISE as ENTERPRISE_URN
from tests.support.urns import GROUP as GROUP_URN
from tests.support.urns import USER as USER_URN

BASE = "http://host/scim/v2/acme"
CAPS = Capabilities(max_results=200)
RESPONSE = Context.RESOURCE_QUERY_RESPONSE


def attribute(document: dict[str, Any], path: str) -> dict[str, Any]:
    """The attribute definition at ``path`` (``name`` or ``parent.sub``) in a schema."""
    attributes = document["attributes"]
    found: dict[str, Any] = {}
    for part in path.split("."):
        found = next(a for a in attributes if a["name"] == part)
        attributes = found.get("subAttributes", [])
    return found


def test_service_provider_config_round_trips() -> None:
    document = service_provider_config(BASE, CAPS)
    parsed = ServiceProviderConfig.model_validate(document, scim_ctx=RESPONSE)
    assert parsed.model_dump(scim_ctx=RESPONSE) == document


def test_service_provider_config_flags() -> None:
    document = service_provider_config(BASE, CAPS)
    assert document["schemas"] == [str(ServiceProviderConfig.__schema__)]
    assert document["patch"] == {"supported": True}
    assert document["bulk"] == {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}
    assert document["filter"] == {"supported": True, "maxResults": 200}
    assert document["changePassword"] == {"supported": True}
    assert document["sort"] == {"supported": True}
    assert document["etag"] == {"supported": True}
    assert "id" not in document  # RFC 7643 §5: the configuration has no id
    [scheme] = document["authenticationSchemes"]
    assert scheme["type"] == "oauthbearertoken"
    assert scheme["name"] == "OAuth Bearer Token"
    assert scheme["specUri"] == "https://www.rfc-editor.org/info/rfc6750"
    assert scheme["primary"] is True
    assert "admin API" in scheme["description"]


def test_service_provider_config_follows_capabilities() -> None:
    assert service_provider_config(BASE, Capabilities(max_results=7))["filter"]["maxResults"] == 7
    bulk = service_provider_config(
        BASE,
        Capabilities(
            max_results=10,
            bulk_supported=True,
            bulk_max_operations=50,
            bulk_max_payload_size=10_000_000,
            max_body_bytes=2_000_000,
        ),
    )["bulk"]
    # A bulk payload cannot exceed what the server reads of any request body.
    assert bulk == {"supported": True, "maxOperations": 50, "maxPayloadSize": 2_000_000}


def test_service_provider_config_documentation_uri_is_optional() -> None:
    assert "documentationUri" not in service_provider_config(BASE, CAPS)
    readme = "https://example.org/scim-toolkit#readme"
    document = service_provider_config(BASE, CAPS, documentation_uri=readme)
    assert document["documentationUri"] == readme


@pytest.mark.parametrize("document", resource_types(BASE), ids=lambda d: d["name"])
def test_resource_types_round_trip(document: dict[str, Any]) -> None:
    parsed = ResourceType.model_validate(document, scim_ctx=RESPONSE)
    assert parsed.model_dump(scim_ctx=RESPONSE) == document


def test_user_resource_type() -> None:
    document = resource_type("User", BASE)
    assert document is not None
    assert document["schemas"] == [str(ResourceType.__schema__)]
    assert document["id"] == document["name"] == "User"
    assert document["endpoint"] == "/Users"
    assert document["schema"] == USER_URN
    assert document["schemaExtensions"] == [{"schema": ENTERPRISE_URN, "required": False}]
    assert document["meta"] == {
        "resourceType": "ResourceType",
        "location": f"{BASE}/ResourceTypes/User",
    }


def test_group_resource_type() -> None:
    document = resource_type("Group", BASE)
    assert document is not None
    assert document["id"] == document["name"] == "Group"
    assert document["endpoint"] == "/Groups"
    assert document["schema"] == GROUP_URN
    assert not document.get("schemaExtensions")
    assert document["meta"]["location"] == f"{BASE}/ResourceTypes/Group"


def test_resource_types_list_every_kind_and_unknown_is_none() -> None:
    assert [d["name"] for d in resource_types(BASE)] == ["User", "Group"]
    assert resource_type("Device", BASE) is None


@pytest.mark.parametrize("document", schemas(BASE), ids=lambda d: d["name"])
def test_schemas_round_trip(document: dict[str, Any]) -> None:
    parsed = Schema.model_validate(document, scim_ctx=RESPONSE)
    assert parsed.model_dump(scim_ctx=RESPONSE) == document
    assert document["meta"] == {
        "resourceType": "Schema",
        "location": f"{BASE}/Schemas/{document['id']}",
    }


def test_schemas_cover_user_enterprise_and_group() -> None:
    assert [d["id"] for d in schemas(BASE)] == [USER_URN, ENTERPRISE_URN, GROUP_URN]


@pytest.mark.parametrize("document", schemas(BASE), ids=lambda d: d["name"])
def test_schemas_rebuild_into_models(document: dict[str, Any]) -> None:
    """A client building its models from the published schemas gets every attribute back."""
    parsed = Schema.model_validate(document, scim_ctx=RESPONSE)
    base = Extension if document["id"] == ENTERPRISE_URN else Resource
    rebuilt = base.from_schema(parsed).to_schema()
    assert [a.name for a in rebuilt.attributes or []] == [a["name"] for a in document["attributes"]]


@pytest.mark.parametrize(
    "spelling",
    [USER_URN, USER_URN.upper(), "urn:ietf:params:scim:schemas:core:2.0:user"],
)
def test_schema_lookup_is_case_insensitive(spelling: str) -> None:
    document = schema(spelling, BASE)
    assert document is not None
    assert document["id"] == USER_URN
    assert document["meta"]["location"] == f"{BASE}/Schemas/{USER_URN}"


def test_unknown_schema_is_none() -> None:
    assert schema("urn:ietf:params:scim:schemas:core:2.0:Device", BASE) is None
    assert schema("", BASE) is None


def test_password_is_write_only_and_never_returned() -> None:
    password = attribute(schema(USER_URN, BASE) or {}, "password")
    assert password["mutability"] == "writeOnly"
    assert password["returned"] == "never"


def test_user_name_is_unique_and_case_insensitive() -> None:
    user_name = attribute(schema(USER_URN, BASE) or {}, "userName")
    assert user_name["uniqueness"] == "server"
    assert user_name["caseExact"] is False
    assert user_name["required"] is True


def test_external_id_is_case_exact() -> None:
    """externalId is a common attribute (RFC 7643 §3.1): caseExact, and in no schema."""
    assert UserModel.get_field_annotation("external_id", CaseExact) == CaseExact.true
    for document in schemas(BASE):
        assert "externalId" not in {a["name"] for a in document["attributes"]}


def test_server_maintained_attributes_are_read_only() -> None:
    user = schema(USER_URN, BASE) or {}
    assert attribute(user, "groups")["mutability"] == "readOnly"
    assert attribute(user, "groups.display")["mutability"] == "readOnly"
    enterprise = schema(ENTERPRISE_URN, BASE) or {}
    assert attribute(enterprise, "manager.displayName")["mutability"] == "readOnly"
    group = schema(GROUP_URN, BASE) or {}
    assert attribute(group, "members.value")["mutability"] == "immutable"
    assert attribute(group, "displayName")["required"] is True


def test_schema_descriptions_follow_rfc() -> None:
    descriptions = {d["id"]: d["description"] for d in schemas(BASE)}
    assert descriptions == {
        USER_URN: "User Account",
        ENTERPRISE_URN: "Enterprise User",
        GROUP_URN: "Group",
    }


def test_locations_follow_the_tenant_base_url() -> None:
    other = "https://idp.example/scim/v2/globex/"  # a trailing slash is tolerated
    assert service_provider_config(other, CAPS)["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": "https://idp.example/scim/v2/globex/ServiceProviderConfig",
    }
    assert (resource_type("Group", other) or {})["meta"]["location"] == (
        "https://idp.example/scim/v2/globex/ResourceTypes/Group"
    )
    assert (schema(GROUP_URN, other) or {})["meta"]["location"] == (
        f"https://idp.example/scim/v2/globex/Schemas/{GROUP_URN}"
    )
    # The cached document behind both answers keeps each tenant's location apart.
    assert service_provider_config(BASE, CAPS)["meta"]["location"] == (
        f"{BASE}/ServiceProviderConfig"
    )


def test_answers_are_private_copies() -> None:
    first = schema(USER_URN, BASE) or {}
    first["attributes"].clear()
    first["meta"]["location"] = "tampered"
    second = schema(USER_URN, BASE) or {}
    assert second["attributes"]
    assert second["meta"]["location"] == f"{BASE}/Schemas/{USER_URN}"


def test_list_response() -> None:
    documents = schemas(BASE)
    response = list_response(documents)
    assert response["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert response["totalResults"] == response["itemsPerPage"] == 3
    assert response["startIndex"] == 1
    assert response["Resources"] == documents
    parsed = ListResponse[Schema].model_validate(response, scim_ctx=RESPONSE)
    assert parsed.total_results == 3
    assert [r.id for r in parsed.resources or []] == [USER_URN, ENTERPRISE_URN, GROUP_URN]


def test_empty_list_response() -> None:
    assert list_response([]) == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 0,
        "itemsPerPage": 0,
        "startIndex": 1,
        "Resources": [],
    }


def test_group_schema_matches_model() -> None:
    assert {a["name"] for a in (schema(GROUP_URN, BASE) or {})["attributes"]} == {
        "displayName",
        "members",
    }
    assert Group.__schema__ == GROUP_URN
