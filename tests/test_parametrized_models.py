"""The models scim2-models parametrizes by resource type (``PatchOp[User]``,
``ResponseParameters[User]``) are built once per resource type, not once per request.

pydantic keeps a parametrized model only weakly: one that nothing holds is collected at the
next garbage collection and built again by the next request that names it, which costs
about 2 ms of CPU (it reads its docstrings from the source). Under load that happened on
most PATCHes."""

from __future__ import annotations

import gc

from scim2_models import PatchOp, ResponseParameters

from scim_server.core.patch import apply_operations
from scim_server.core.projection import Selection
from scim_server.models import USERS


def _alive(generic: type) -> list[str]:
    return [model.__name__ for model in generic.__subclasses__() if "[" in model.__name__]


def test_a_patch_model_outlives_a_garbage_collection() -> None:
    user = USERS.model.model_validate({"userName": "ada"})
    operations = [{"op": "replace", "path": "displayName", "value": "Ada"}]

    assert apply_operations(USERS, user, operations)
    gc.collect()

    assert f"PatchOp[{USERS.model.__name__}]" in _alive(PatchOp)


def test_a_projection_model_outlives_a_garbage_collection() -> None:
    selection = Selection(attributes=("userName",))

    selection.apply(USERS, {"schemas": [USERS.schema], "id": "1", "userName": "ada"})
    gc.collect()

    assert f"ResponseParameters[{USERS.model.__name__}]" in _alive(ResponseParameters)
