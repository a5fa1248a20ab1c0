"""The SCIM URNs the simulated IdPs put in their requests, spelt as RFC 7643 §8.7 and RFC 7644
§3 print them.

Written out here rather than taken from scim2-models, although that package is installed with
the server: idp_sim plays Okta, Entra and JumpCloud, whose requests are what those IdPs send on
the wire, not what the server's own library would build. (``tests/test_urns.py`` checks this
module and the conformance runner's against scim2-models.)
"""

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OKTA_ROLE = "urn:okta:scim:schemas:core:1.0:Role"
