"""The SCIM resource types this server serves, and how their names map onto storage.

scim2-models owns the schemas; this module only decides which of them the server
exposes, under which endpoint, and how an attribute path becomes a MongoDB field.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import idna
from pydantic import Field, GetCoreSchemaHandler
from pydantic_core import core_schema
from scim2_models import (
    URN,
    AnyExtension,
    ComplexAttribute,
    Group,
    InvalidValueException,
    Reference,
    Required,
    Resource,
)
from scim2_models import EnterpriseUser as StandardEnterpriseUser
from scim2_models import User as StandardUser
from scim2_models.resources.enterprise_user import Manager as StandardManager
from scim2_models.resources.user import Email as StandardEmail

# RFC 5322 dot-atom: runs of atext (RFC 6531 adds every non-ASCII character) joined by dots.
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
LOCAL_PART = re.compile(ATEXT + r"(?:\." + ATEXT + ")*")
MAX_LOCAL_PART_BYTES = 64
MAX_ADDRESS_BYTES = 254
DOMAINS_REMEMBERED = 1024
"""How many email domains' verdicts ``email_syntax`` keeps: a directory's users share a few."""


def email_syntax(address: str) -> str:
    """``address`` if it is an email address by its syntax; deliverability is not judged.

    scim2-models types ``emails.value`` as pydantic's ``EmailStr``, whose email-validator
    refuses IANA special-use names (``corp.local``, ``example.test``, ``localhost``) and
    dotless domains. Directories synced from Active Directory use exactly those, and an
    identity provider provisions them as they are, so the address is checked here instead:
    a dot-atom local part (RFC 5322, non-ASCII allowed as in RFC 6531), one ``@``, and a
    domain of valid IDNA labels (the ``idna`` package, UTS 46), within RFC 5321's lengths.
    email-validator's module-wide settings stay as they are: they would change every
    other use of it in the process. The address is kept as the client sent it.
    """
    local, at, domain = address.rpartition("@")
    if not at or not LOCAL_PART.fullmatch(local):
        raise ValueError("an email address is local-part@domain, with no space or quote")
    if len(local.encode()) > MAX_LOCAL_PART_BYTES or len(address.encode()) > MAX_ADDRESS_BYTES:
        raise ValueError("the email address is too long")
    problem = _domain_problem(domain)
    if problem is not None:
        raise ValueError(f"the part after the @-sign is not a domain name: {problem}")
    return address


@functools.lru_cache(maxsize=DOMAINS_REMEMBERED)
def _domain_problem(domain: str) -> str | None:
    """Why ``domain`` is no IDNA domain name, or None when it is one (its UTS 46 check is
    most of an address's; a Bulk of a thousand users of one domain checks it once)."""
    try:
        idna.encode(domain, uts46=True)
    except idna.IDNAError as error:
        return str(error)
    return None


if TYPE_CHECKING:
    EmailAddress = str
else:

    class EmailAddress:
        """A string checked by ``email_syntax``: ``EmailStr``'s shape, so that scim2-models
        still validates a filter's ``emails.value eq "..."`` operand (a plain ``str``
        annotation would let anything through)."""

        @classmethod
        def __get_pydantic_core_schema__(
            cls, source: type[Any], handler: GetCoreSchemaHandler
        ) -> core_schema.CoreSchema:
            return core_schema.no_info_after_validator_function(
                email_syntax, core_schema.str_schema()
            )


class Email(StandardEmail):
    """An ``emails`` entry whose ``value`` is checked for syntax only (see ``email_syntax``)."""

    value: EmailAddress | None = None
    """Email addresses for the user."""


class User(StandardUser[AnyExtension]):
    """The core User, with ``emails`` of syntax-checked addresses."""

    # Narrowed on purpose: the entries are this module's Email, a subclass of the standard one.
    emails: list[Email] | None = None  # type: ignore[assignment]
    """Email addresses for the user."""

    Emails: ClassVar[type[ComplexAttribute]] = Email


class Manager(StandardManager):
    """The enterprise ``manager``, whose ``$ref`` is optional here.

    RFC 7643 contradicts itself: §4.3 calls ``$ref`` RECOMMENDED, the schema in
    §8.7.1 marks it required. Entra ID and Okta send ``{"value": id}`` alone, so
    this server takes the reading that accepts what identity providers send.
    """

    # "User" is read by scim2-models as the SCIM resource type referred to (referenceTypes),
    # not as this module's User class, which is what a type checker takes it for.
    ref: Annotated[Reference["User"] | None, Required.false] = Field(  # type: ignore[type-arg,assignment]  # noqa: UP037
        None,
        serialization_alias="$ref",
        validation_alias="$ref",
        description="The URI of the SCIM resource representing the User's manager.",
    )


class EnterpriseUser(StandardEnterpriseUser):
    manager: Manager | None = None


UserModel = User[EnterpriseUser]
GroupModel = Group


OKTA_ENTITLEMENT = "urn:okta:scim:schemas:core:1.0:Entitlement"
OKTA_ROLE = "urn:okta:scim:schemas:core:1.0:Role"


class AppResource(Resource[Any]):
    """What Okta's Entitlement and Role schemas share: a resource of the app that a user may be
    granted. Okta Identity Governance reads them from the app (docs/entitlements.md): ``id`` is
    the value a user's ``entitlements`` or ``roles`` carries, ``displayName`` and ``type`` are
    what Okta shows."""

    display_name: Annotated[str | None, Required.true] = None
    """The name Okta shows for it."""

    type: Annotated[str | None, Required.true] = None
    """Its category, such as ``License``."""

    description: str | None = None
    """What it grants."""


class Entitlement(AppResource):
    """Okta's entitlement: something the app grants a user (a license, a permission set)."""

    __schema__ = URN(OKTA_ENTITLEMENT)


class Role(AppResource):
    """Okta's role: a role of the app that a user holds (a user's ``roles``)."""

    __schema__ = URN(OKTA_ROLE)


@dataclass(frozen=True)
class ResourceKind:
    """One resource type: its model, its endpoint and the collection holding it."""

    name: str
    endpoint: str
    model: type[Resource[Any]]
    collection: str
    schema: str
    extensions: tuple[str, ...] = ()
    custom: bool = False
    """A resource type a tenant adds (``CUSTOM_KINDS``): several share one collection, each
    document carrying its type's name, and SCIM only reads them (the app owns them)."""


PARAMETRIZED_MODELS_KEPT = 256
"""How many models parametrized by a resource type ``parametrized`` holds: two messages for
each resource type, and a tenant's own User type per set of extensions in use."""


@lru_cache(maxsize=PARAMETRIZED_MODELS_KEPT)
def parametrized(generic: Any, model: type[Resource[Any]]) -> Any:
    """``generic[model]`` (``PatchOp[User]``, ``ResponseParameters[User]``), built once.

    pydantic keeps a parametrized model only weakly: one that nothing holds is collected at
    the next garbage collection, and the next request that names it builds it again, which
    costs about 2 ms of CPU (it reads its docstrings from the source). Under load that was
    most PATCHes.
    """
    return generic[model]


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

CUSTOM_COLLECTION = "custom_resources"
"""The one collection of every tenant's resources of every custom type."""


def custom_kind(name: str, endpoint: str, model: type[AppResource]) -> ResourceKind:
    """A custom resource type, stored in ``CUSTOM_COLLECTION`` under its name."""
    schema = str(model.__schema__)
    return ResourceKind(name, endpoint, model, CUSTOM_COLLECTION, schema, custom=True)


ROLES = custom_kind("Role", "Roles", Role)
ENTITLEMENTS = custom_kind("Entitlement", "Entitlements", Entitlement)
LICENSES = custom_kind("License", "Licenses", Entitlement)
CUSTOM_KINDS: tuple[ResourceKind, ...] = (ROLES, ENTITLEMENTS, LICENSES)
"""The resource types a tenant may add to Users and Groups (Okta's entitlement apps): each
tenant's registry names those it serves (``TenantRepository.resource_types``)."""
CUSTOM_KINDS_BY_ENDPOINT = {kind.endpoint: kind for kind in CUSTOM_KINDS}


ENTERPRISE_URN = str(EnterpriseUser.__schema__)

STORED_DOT = "\uff0e"
"""What stands for a dot in the stored name of a tenant's own extension (``storage_key``):
FULLWIDTH FULL STOP, the substitute MongoDB's documentation suggests. A URN is ASCII, so
the substitution can be undone (``scim_key``), whatever the tenant named its extension."""


def storage_key(schema_urn: str) -> str:
    """The field name an extension's attributes are stored under.

    Extension URNs contain dots (``...:enterprise:2.0:User``), which MongoDB reads
    as path separators, so they are replaced to keep every stored field queryable. The
    enterprise extension keeps the underscores it has always been stored with; a tenant's
    own extension (``core/user_extensions.py``) is stored under ``STORED_DOT``s, which
    ``scim_key`` turns back into dots without knowing the tenant's extensions.
    """
    if schema_urn == ENTERPRISE_URN:
        return schema_urn.replace(".", "_")
    return schema_urn.replace(".", STORED_DOT)


def scim_key(stored_key: str) -> str:
    """The SCIM name of a stored top-level attribute: the URN an extension's key stands for."""
    return EXTENSION_KEYS.get(stored_key) or stored_key.replace(STORED_DOT, ".")


def is_extension_key(name: str) -> bool:
    """Whether a resource's top-level attribute is an extension, keyed by its URN: no core
    attribute's name starts as a URN does."""
    return name[:4].lower() == "urn:"


@lru_cache(maxsize=1024)
def declared_attributes(model: type[Resource[Any]], urn: str) -> frozenset[str]:
    """The names, lower-cased, of the attributes the extension ``urn`` of ``model`` declares
    (none when ``model`` has no such extension)."""
    extension = model.get_extension_models().get(urn)
    if extension is None:
        return frozenset()
    fields = extension.model_fields.items()
    return frozenset((field.serialization_alias or name).lower() for name, field in fields)


def declared_only(kind: ResourceKind, urn: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """An extension's stored values, but those of attributes its definition no longer
    declares (``core/user_extensions.py``): never shown, and in the way of no write."""
    declared = declared_attributes(kind.model, urn)
    return {name: value for name, value in values.items() if name.lower() in declared}


def is_users(kind: ResourceKind) -> bool:
    """Whether ``kind`` is the User resource type: ``USERS`` or a tenant's own User model
    (``core/user_extensions.py``), which differs from ``USERS`` by its model alone."""
    return kind.name == USERS.name


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
