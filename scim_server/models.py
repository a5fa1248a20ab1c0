"""The SCIM resource types this server serves, and how their names map onto storage.

scim2-models owns the schemas; this module only decides which of them the server
exposes, under which endpoint, and how an attribute path becomes a MongoDB field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field
from scim2_models import EnterpriseUser as StandardEnterpriseUser
from scim2_models import Group, InvalidValueException, Reference, Required, Resource, User
from scim2_models.resources.enterprise_user import Manager as StandardManager


class Manager(StandardManager):
    """The enterprise ``manager``, whose ``$ref`` is optional here.

    RFC 7643 contradicts itself: §4.3 calls ``$ref`` RECOMMENDED, the schema in
    §8.7.1 marks it required. Entra ID and Okta send ``{"value": id}`` alone, so
    this server takes the reading that accepts what identity providers send.
    """

    ref: Annotated[Reference["User"] | None, Required.false] = Field(  # noqa: UP037
        None,
        serialization_alias="$ref",
        validation_alias="$ref",
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


@dataclass(frozen=True)
class Member:
    """One entry of a group's ``members``, as a client wrote it."""

    value: str
    type: str | None = None
    """``User`` or ``Group``; None until the server has looked the id up."""
    display: str | None = None
    """Kept as sent (``members.display`` is readWrite); else the member's ``name`` shows."""
    name: str | None = None
    """The member's own displayName (else userName), as the server knows it."""


def parse_members(entries: Any) -> tuple[Member, ...]:
    """Read a ``members`` value (a list of objects, or one object) from a request."""
    items = entries if isinstance(entries, list) else [entries]
    members = []
    for entry in items:
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
            raise InvalidValueException(detail="each member is an object with a string value")
        member_type, display = entry.get("type"), entry.get("display")
        members.append(
            Member(
                entry["value"],
                member_type if isinstance(member_type, str) else None,
                display if isinstance(display, str) else None,
            )
        )
    return tuple(members)


EXTENSION_KEYS = {storage_key(urn): urn for kind in KINDS for urn in kind.extensions}
