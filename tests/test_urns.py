"""The URNs spelt out by the independent clients agree with scim2-models, the server's source.

The conformance runner and idp_sim write the RFC's URNs themselves (their module docstrings say
why); this is where the three spellings are held to one another.
"""

from __future__ import annotations

import pytest
from scim2_models import (
    BulkRequest,
    EnterpriseUser,
    Error,
    Group,
    ListResponse,
    PatchOp,
    SearchRequest,
    ServiceProviderConfig,
    User,
)

from conformance import urns as conformance_urns
from idp_sim import urns as idp_sim_urns
from scim_server.models import Entitlement, Role

MODELS = {
    "USER": User,
    "GROUP": Group,
    "ENTERPRISE": EnterpriseUser,
    "SERVICE_PROVIDER_CONFIG": ServiceProviderConfig,
    "PATCH_OP": PatchOp,
    "LIST_RESPONSE": ListResponse,
    "SEARCH_REQUEST": SearchRequest,
    "BULK_REQUEST": BulkRequest,
    "ERROR": Error,
    "OKTA_ENTITLEMENT": Entitlement,
    "OKTA_ROLE": Role,
}


@pytest.mark.parametrize("module", [conformance_urns, idp_sim_urns])
def test_every_urn_a_client_spells_is_the_one_scim2_models_declares(module: object) -> None:
    spelt = {name: value for name, value in vars(module).items() if name.isupper()}
    assert spelt
    assert {name: str(MODELS[name].__schema__) for name in spelt} == spelt
