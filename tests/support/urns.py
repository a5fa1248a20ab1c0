"""The SCIM URNs the tests speak, as scim2-models declares them (RFC 7643 §8.7, RFC 7644 §3).

Taken from the models rather than spelt again, so a test and the server can never disagree on
one. Literal IdP request bodies in the tests keep their URNs verbatim: those are quotations.
"""

from scim2_models import (
    BulkRequest,
    BulkResponse,
    EnterpriseUser,
    Error,
    Group,
    ListResponse,
    PatchOp,
    SearchRequest,
    User,
)

USER = str(User.__schema__)
GROUP = str(Group.__schema__)
ENTERPRISE = str(EnterpriseUser.__schema__)
PATCH_OP = str(PatchOp.__schema__)
LIST_RESPONSE = str(ListResponse.__schema__)
ERROR = str(Error.__schema__)
SEARCH = str(SearchRequest.__schema__)
BULK_REQUEST = str(BulkRequest.__schema__)
BULK_RESPONSE = str(BulkResponse.__schema__)
