"""The SCIM URNs the conformance checks send and expect, spelt as RFC 7643 §8.7 and RFC 7644 §3
print them.

Written out here rather than taken from scim2-models, although that package is installed with
the server: the runner is the oracle the server is judged by, so it states the RFC itself. Were
both to take a URN from the same library, a mistake in that library would pass unnoticed.
(``tests/test_urns.py`` holds this module and idp_sim's to scim2-models.)
"""

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
OKTA_ENTITLEMENT = "urn:okta:scim:schemas:core:1.0:Entitlement"
OKTA_ROLE = "urn:okta:scim:schemas:core:1.0:Role"
