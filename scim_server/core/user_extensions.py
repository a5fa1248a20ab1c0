"""A tenant's own User extensions: schemas the app adds to its users beside the enterprise one.

Okta and Entra map an app's custom user attributes to a User extension the app declares (its
URN in the User resource type's ``schemaExtensions``, its attributes in ``/Schemas``). A tenant
defines each of its extensions as an RFC 7643 §7 schema document through the admin API
(``define``); scim2-models builds the ``Extension`` model from it (``Extension.from_schema``)
and the tenant's User model is ``User[Union[EnterpriseUser, *its extensions]]``
(``users_kind``). That model, carried by the tenant's User ``ResourceKind``, validates, stores,
renders, patches, filters and sorts its users as the enterprise extension's own does: the core
takes the tenant's kind (``UserExtensions.kind``) wherever a request names ``USERS``, so SCIM,
Bulk and sign-in all build a stored user with the model of its tenant.

Decisions (docs/entitlements.md argues them): an extension is never required in
``schemaExtensions`` (users written before it, and sign-ins, carry none of it); an attribute
whose stored values would no longer read as they were written (removed, or its type,
plurality, case sensitivity, reference types or sub-attributes changed) cannot change while a
user of the tenant holds a value of it (409), nor can its extension be removed; ``uniqueness``
other than ``none`` is refused, since nothing would enforce it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from functools import lru_cache
from typing import Any, Union

from pydantic import ValidationError
from scim2_models import (
    ConflictException,
    Extension,
    Group,
    InvalidValueException,
    NotFoundException,
    Schema,
    Uniqueness,
)

from scim_server.core.errors import unknown_tenant
from scim_server.models import (
    ENTERPRISE_URN,
    OKTA_ENTITLEMENT,
    OKTA_ROLE,
    USERS,
    EnterpriseUser,
    ResourceKind,
    User,
    is_users,
)
from scim_server.storage.resources import ResourceRepository
from scim_server.storage.tenants import TenantRepository

Definition = dict[str, Any]
"""An extension's RFC 7643 §7 schema document, as the admin API answers and stores it."""

MAX_EXTENSIONS = 5
"""The most User extensions a tenant defines."""
MAX_ATTRIBUTES = 100
"""The most attributes, sub-attributes included, one extension declares."""
MAX_NAME = 64
"""The longest attribute name (RFC 7643 §2.1 sets none; 64 is ample for any IdP's)."""
MAX_URN = 200
MAX_TEXT = 1024
"""The longest ``description``."""

READING_SECONDS = 5.0
"""How long a process reuses a tenant's extensions as read: a change made through another
process reaches this one within that time (as a token's revocation does)."""

URN_SYNTAX = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}(?::[A-Za-z0-9._~-]+)+")
"""An RFC 8141 URN whose parts a filter path (``urn:…:attribute``) and a stored field name can
both hold: letters, digits and ``.``, ``_``, ``~``, ``-`` between the colons."""
NAME_SYNTAX = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
"""RFC 7643 §2.1 ``ATTRNAME`` (``$ref`` aside, which is the server's)."""

SCHEMA_NAME_SYNTAX = re.compile(r"[A-Z][A-Za-z0-9]*")
"""An extension's name, as the enterprise one's (``EnterpriseUser``): scim2-models names the
extension's model, and the User model's field holding it, after it, so it must be a name no
attribute of the User model has (theirs start in lower case) and no other extension of the
tenant has (``UserExtensions.define``)."""

TYPES = frozenset({"string", "boolean", "integer", "decimal", "dateTime", "reference", "complex"})
REFERENCE_TYPES = frozenset({"external", "uri"})
RESERVED_URNS = frozenset(
    urn.lower()
    for urn in (
        str(User.__schema__),
        ENTERPRISE_URN,
        str(Group.__schema__),
        OKTA_ROLE,
        OKTA_ENTITLEMENT,
    )
)
RESERVED_PREFIXES = ("urn:ietf:params:scim:schemas:core:", "urn:ietf:params:scim:api:")
"""The core schemas and the protocol's messages: RFC 7643 reserves them."""

SHAPE_FREE = frozenset({"description", "required", "mutability", "returned", "canonicalValues"})
"""What of an attribute may change while users hold values of it: none of it changes how a
stored value reads. Everything else (the name's spelling, type, plurality, caseExact,
sub-attributes) does."""


class UserExtensions:
    """Each tenant's User extensions, and the User resource type they make for it."""

    def __init__(self, tenants: TenantRepository, users: ResourceRepository) -> None:
        self.tenants = tenants
        self.users = users
        self._readings: dict[str, tuple[float, ResourceKind]] = {}

    async def kind(self, kind: ResourceKind, tenant: str) -> ResourceKind:
        """The resource type a request for ``kind`` is served as in the tenant: its own User
        (``users_kind``) for ``USERS``, ``kind`` itself for any other."""
        if not is_users(kind):
            return kind
        reading = self._readings.get(tenant)
        now = time.monotonic()
        if reading is not None and reading[0] > now:
            return reading[1]
        users = users_kind(definitions_key(await self.tenants.user_extensions(tenant) or ()))
        self._readings[tenant] = (now + READING_SECONDS, users)
        return users

    def created(self, tenant: str) -> None:
        """A tenant this process just created has no extension: its first requests need not
        read what it has."""
        self._readings[tenant] = (time.monotonic() + READING_SECONDS, USERS)

    def forget(self, tenant: str) -> None:
        """Read the tenant's extensions again on its next request (changed, or deleted)."""
        self._readings.pop(tenant, None)

    async def definitions(self, tenant: str) -> list[Definition]:
        """The tenant's extensions, in the order they were first defined."""
        stored = await self.tenants.user_extensions(tenant)
        if stored is None:
            raise unknown_tenant(tenant)
        return list(stored)

    async def definition(self, tenant: str, urn: str) -> Definition:
        """One of the tenant's extensions, by URN (case-insensitive); 404 when it has none."""
        for definition in await self.definitions(tenant):
            if definition["id"].lower() == urn.lower():
                return definition
        raise _not_defined(urn)

    async def define(self, tenant: str, urn: str, body: object) -> Definition:
        """Add the extension ``urn``, or replace the tenant's definition of it (400 for a bad
        definition; 409 when it changes an attribute users hold values of)."""
        definition = parse_definition(urn, body)
        current = await self.definitions(tenant)
        kept = [each for each in current if each["id"].lower() != urn.lower()]
        if len(kept) == len(current) and len(current) >= MAX_EXTENSIONS:
            raise InvalidValueException(
                detail=f"a tenant defines at most {MAX_EXTENSIONS} User extensions"
            )
        taken = {str(EnterpriseUser.__name__).lower()} | {each["name"].lower() for each in kept}
        if definition["name"].lower() in taken:
            raise InvalidValueException(
                detail=f"name {definition['name']!r} is taken by another User extension"
            )
        previous = next((each for each in current if each not in kept), None)
        if previous is not None:
            await self._refuse_if_held(tenant, previous, reshaped(previous, definition))
            # Spelt as first defined: the stored values are kept under that spelling.
            definition["id"] = previous["id"]
        position = current.index(previous) if previous is not None else len(kept)
        await self._store(tenant, [*kept[:position], definition, *kept[position:]])
        return definition

    async def remove(self, tenant: str, urn: str) -> None:
        """Remove the extension ``urn`` (404 if the tenant has none; 409 while a user holds a
        value of it)."""
        removed = await self.definition(tenant, urn)
        await self._refuse_if_held(
            tenant, removed, [attr["name"] for attr in removed["attributes"]]
        )
        kept = [each for each in await self.definitions(tenant) if each["id"] != removed["id"]]
        await self._store(tenant, kept)

    async def _refuse_if_held(self, tenant: str, definition: Definition, names: list[str]) -> None:
        if await self.users.holds_any(tenant, definition["id"], names):
            raise ConflictException(
                detail=f"users hold values of {definition['id']} attributes among {sorted(names)}: "
                "remove those values first (their stored form would no longer read as written)"
            )

    async def _store(self, tenant: str, definitions: list[Definition]) -> None:
        if not await self.tenants.set_user_extensions(tenant, definitions):
            raise unknown_tenant(tenant)
        self.forget(tenant)


def _not_defined(urn: str) -> NotFoundException:
    return NotFoundException(detail=f"the tenant defines no User extension {urn}")


def parse_definition(urn: str, body: object) -> Definition:
    """An extension's definition as stored: ``body`` (an RFC 7643 §7 schema document, its
    ``id`` optional) checked and normalised, so that it builds a model. 400 when it does not."""
    if not isinstance(body, dict):
        raise InvalidValueException(detail="the extension is a JSON object: an RFC 7643 §7 schema")
    _check_urn(urn)
    if str(body.get("id", urn)).lower() != urn.lower():
        raise InvalidValueException(detail=f"the schema's id {body.get('id')!r} is not {urn}")
    name = body.get("name", urn.rsplit(":", 1)[-1])
    if not isinstance(name, str) or len(name) > MAX_NAME or not SCHEMA_NAME_SYNTAX.fullmatch(name):
        raise InvalidValueException(
            detail=f"name {name!r}: a capital letter, then letters and digits, at most "
            f"{MAX_NAME} characters (the last part of the URN when the schema names none)"
        )
    if hasattr(User, name):
        raise InvalidValueException(detail=f"name {name!r} is taken by the User schema")
    description = body.get("description")
    if description is not None and not (
        isinstance(description, str) and 0 < len(description) <= MAX_TEXT
    ):
        raise InvalidValueException(detail=f"description is a string of 1 to {MAX_TEXT} characters")
    attributes = body.get("attributes")
    if not isinstance(attributes, list) or not attributes:
        raise InvalidValueException(
            detail="attributes is a non-empty list of attribute definitions"
        )
    if _count(attributes) > MAX_ATTRIBUTES:
        raise InvalidValueException(
            detail=f"an extension declares at most {MAX_ATTRIBUTES} attributes "
            "(sub-attributes included)"
        )
    document = {
        "id": urn,
        "name": name,
        **({"description": description} if description is not None else {}),
        "attributes": [_attribute(each, nested=False) for each in attributes],
    }
    try:
        schema = Schema.model_validate(document)
        Extension.from_schema(schema)
    except (ValidationError, ValueError) as error:
        raise InvalidValueException(
            detail=f"not a valid extension schema: {_reason(error)}"
        ) from None
    dumped: Definition = schema.model_dump(exclude={"schemas", "meta"}, exclude_none=True)
    return dumped


def _check_urn(urn: str) -> None:
    lowered = urn.lower()
    if len(urn) > MAX_URN or not URN_SYNTAX.fullmatch(urn):
        raise InvalidValueException(
            detail=f"{urn!r} is not an extension URN: urn:<namespace>:<parts>, the parts "
            f"of letters, digits, '.', '_', '~' and '-' between colons, at most {MAX_URN} "
            "characters"
        )
    if lowered in RESERVED_URNS or lowered.startswith(RESERVED_PREFIXES):
        raise InvalidValueException(detail=f"{urn} is a schema of the server's own")


def _count(attributes: list[Any]) -> int:
    return sum(
        1 + (len(each["subAttributes"]) if isinstance(each.get("subAttributes"), list) else 0)
        for each in attributes
        if isinstance(each, dict)
    )


def _attribute(body: object, *, nested: bool) -> Definition:
    """One attribute definition checked against what the server can keep and enforce."""
    if not isinstance(body, dict):
        raise InvalidValueException(detail="each attribute definition is a JSON object")
    name = body.get("name")
    if not isinstance(name, str) or len(name) > MAX_NAME or not NAME_SYNTAX.fullmatch(name):
        raise InvalidValueException(
            detail=f"attribute name {name!r}: a letter, then letters, digits, '_' or '-', "
            f"at most {MAX_NAME} characters"
        )
    if name.lower() == "schemas":
        raise InvalidValueException(detail="attribute name 'schemas' is the extension's own")
    kind = body.get("type")
    if kind not in TYPES or (nested and kind == "complex"):
        allowed = sorted(TYPES - {"complex"} if nested else TYPES)
        raise InvalidValueException(detail=f"attribute {name}: type is one of {allowed}")
    if body.get("uniqueness", Uniqueness.none.value) != Uniqueness.none.value:
        raise InvalidValueException(
            detail=f"attribute {name}: uniqueness is none (the server enforces no other on "
            "an extension attribute)"
        )
    references = body.get("referenceTypes")
    if (
        kind == "reference"
        and references is not None
        and not (isinstance(references, list) and references and set(references) <= REFERENCE_TYPES)
    ):
        raise InvalidValueException(
            detail=f"attribute {name}: referenceTypes is a list among {sorted(REFERENCE_TYPES)}"
        )
    subs = body.get("subAttributes")
    if (kind == "complex") != (isinstance(subs, list) and bool(subs)):
        raise InvalidValueException(
            detail=f"attribute {name}: a complex attribute, and only one, has subAttributes"
        )
    definition = {"multiValued": False, **body}
    if kind == "complex":
        definition["subAttributes"] = [_attribute(sub, nested=True) for sub in subs or ()]
    return definition


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(error)


def reshaped(before: Definition, after: Definition) -> list[str]:
    """The attributes of ``before`` whose stored values ``after`` would read otherwise."""
    kept = {attr["name"].lower(): attr for attr in after["attributes"]}
    return [
        attr["name"]
        for attr in before["attributes"]
        if _shape(attr) != _shape(kept.get(attr["name"].lower()))
    ]


def _shape(attribute: Definition | None) -> Any:
    if attribute is None:
        return None
    # The name as spelt: values are stored, filtered and sorted under that spelling.
    shape = {key: value for key, value in attribute.items() if key not in SHAPE_FREE}
    if "subAttributes" in shape:
        shape["subAttributes"] = [_shape(sub) for sub in shape["subAttributes"]]
    return shape


def definitions_key(definitions: tuple[Definition, ...] | list[Definition]) -> str:
    """The tenant's definitions as one hashable text, the key of the models built from them."""
    return json.dumps(list(definitions), sort_keys=True)


@lru_cache(maxsize=256)
def users_kind(definitions: str) -> ResourceKind:
    """The User resource type of a tenant with these extensions (``definitions_key``): ``USERS``
    itself for none; else one whose model also declares them. Built once per set of
    definitions, so every request of the tenant validates and compiles with the same classes
    (scim2-models and the filter compiler cache their work per class)."""
    schemas = [Schema.model_validate(each) for each in json.loads(definitions)]
    if not schemas:
        return USERS
    models = tuple(Extension.from_schema(schema) for schema in schemas)
    extended = User[Union[(EnterpriseUser, *models)]]  # type: ignore[valid-type]
    urns = tuple(str(model.__schema__) for model in models)
    return replace(USERS, model=extended, extensions=(*USERS.extensions, *urns))
