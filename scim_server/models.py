"""The SCIM resource types this server serves, and how their names map onto storage.

scim2-models owns the schemas; this module only decides which of them the server
exposes, under which endpoint, and how an attribute path becomes a MongoDB field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field
from scim2_models import EnterpriseUser as StandardEnterpriseUser
from scim2_models import Group, Reference, Required, Resource, User
from scim2_models.resources.enterprise_user import Manager as StandardManager


class Manager(StandardManager):
    """The enterprise ``manager``, whose ``$ref`` is optional here.

    RFC 7643 contradicts itself: §4.3 calls ``$ref`` RECOMMENDED, the schema in
    §8.7.1 marks it required. Entra ID and Okta send ``{"value": id}`` alone, so
    this server takes the reading that accepts what identity providers send.
    """

    ref: Annotated[Reference["User"] | None, Required.false] = Field(  # type: ignore[type-arg]
        None, serialization_alias="$ref", validation_alias="$ref",
        description="The URI of the SCIM resource representing the User's manager.",
    )


class EnterpriseUser(StandardEnterpriseUser):
    manager: Manager | None = None


UserModel = User[EnterpriseUser]
GroupModel = Group


@dataclass(frozen=True)
class ResourceKind:
    """One resource type: its model, its endpoint and the collection holding it."""

    name: str
    endpoint: str
    model: type[Resource[Any]]
    collection: str
    schema: str
    extensions: tuple[str, ...] = ()

    @property
    def all_schemas(self) -> tuple[str, ...]:
        return (self.schema, *self.extensions)


USERS = ResourceKind(
    name="User",
    endpoint="Users",
    model=UserModel,
    collection="users",
    schema=str(User.__schema__),
    extensions=(str(EnterpriseUser.__schema__),),
)
GROUPS = ResourceKind(
    name="Group",
    endpoint="Groups",
    model=GroupModel,
    collection="groups",
    schema=str(Group.__schema__),
)
KINDS: tuple[ResourceKind, ...] = (USERS, GROUPS)
KINDS_BY_ENDPOINT = {kind.endpoint: kind for kind in KINDS}


def storage_key(schema_urn: str) -> str:
    """The field name an extension's attributes are stored under.

    Extension URNs contain dots (``...:enterprise:2.0:User``), which MongoDB reads
    as path separators, so they are replaced to keep every stored field queryable.
    """
    return schema_urn.replace(".", "_")


EXTENSION_KEYS = {storage_key(urn): urn for kind in KINDS for urn in kind.extensions}
