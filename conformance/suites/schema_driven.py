"""Schema-driven checks of the ``rfc`` suite: every writable attribute the server declares.

The other ``rfc`` checks send fixed bodies (a user's names and email, a group's name). These
read ``/ResourceTypes`` and ``/Schemas`` instead, as scim2-tester's checkers do, and for every
resource type fill every attribute a client may write (core schema and extensions, complex
attributes with all their writable sub-attributes) with values generated from its definition:
its type, its ``canonicalValues``, its reference types. Each check then reads the resource
back and requires every value it sent, so an attribute the server declares but drops, renames
or mangles is found, whichever it is.

Left out, each for a reason: ``readOnly`` attributes (a client cannot write them), references
to other resources (a group's ``members``, a user's ``manager``: their values must name
existing resources, and ``rfc.crud.group-members`` and the ``entra.user.manager*`` checks
cover them), and from the comparison the attributes ``returned: never`` (``password``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conformance.checks import Context, check, expect_object, expect_status, require, resources_of
from conformance.suites.rfc import S, patch, read, require_patch

Attribute = dict[str, Any]
"""An attribute definition of ``/Schemas`` (RFC 7643 §7)."""
WRITABLE = ("readWrite", "writeOnly", "immutable")
RESOURCE_FREE = {"external", "uri"}
"""Reference types that name no resource of the server: any URL will do."""
SOURCE = "RFC 7643 §7, RFC 7644 §3.3, §3.5; scim2-tester"
REALISTIC = {
    "locale": ("en-US", "fr-FR", "de-DE"),
    "preferredLanguage": ("en-US", "fr-FR", "de-DE"),
    "timezone": ("America/Los_Angeles", "Europe/Paris", "Asia/Tokyo"),
}
"""Strings RFC 7643 §4.1.1 gives a format (a language tag, an IANA time zone): valid ones, so
that a server checking the format is not failed for it."""


@dataclass(frozen=True)
class Target:
    """One attribute the checks write: its definition and where it sits in a resource."""

    urn: str
    """The schema declaring it; the resource's core schema puts it at the top level."""
    attribute: Attribute
    extension: bool

    @property
    def name(self) -> str:
        return str(self.attribute["name"])

    @property
    def path(self) -> str:
        """The PATCH path: the bare name for the core schema, URN-qualified for an extension."""
        return f"{self.urn}:{self.name}" if self.extension else self.name

    def get(self, resource: dict[str, Any]) -> Any:
        holder = resource.get(self.urn) or {} if self.extension else resource
        return holder.get(self.name) if isinstance(holder, dict) else None

    def put(self, resource: dict[str, Any], value: Any) -> None:
        holder = resource.setdefault(self.urn, {}) if self.extension else resource
        holder[self.name] = value


@dataclass(frozen=True)
class ResourceType:
    """A resource type as discovery describes it, with the attributes the checks write."""

    name: str
    endpoint: str
    urns: list[str]
    targets: list[Target]

    def required(self) -> list[Target]:
        return [t for t in self.targets if t.attribute.get("required") is True]


def refers_to_resources(attribute: Attribute) -> bool:
    """A reference to a resource of the server, or a complex attribute holding one."""
    if attribute.get("type") == "reference":
        return not set(attribute.get("referenceTypes") or ["external"]) <= RESOURCE_FREE
    return any(refers_to_resources(sub) for sub in attribute.get("subAttributes") or [])


def writable(attribute: Attribute) -> bool:
    return attribute.get("mutability", "readWrite") in WRITABLE and not refers_to_resources(
        attribute
    )


def sample(attribute: Attribute, tag: str, round_: int, parent: str = "") -> Any:
    """A value ``attribute`` accepts, different for each ``round_``; None when there is none
    to write. Strings carry ``tag``, which is unique to the run and the check."""
    kind = attribute.get("type", "string")
    name = str(attribute.get("name"))
    value: Any
    if kind == "complex":
        value = {
            str(sub["name"]): sub_value
            for sub in attribute.get("subAttributes") or []
            if writable(sub) and (sub_value := sample(sub, tag, round_, name)) is not None
        }
        value = value or None
    elif attribute.get("canonicalValues"):
        choices = list(attribute["canonicalValues"])
        value = choices[round_ % len(choices)]
    elif name in REALISTIC and not parent:
        value = REALISTIC[name][round_ % len(REALISTIC[name])]
    elif kind == "boolean":
        value = round_ % 2 == 0
    elif kind == "integer":
        value = 1000 + round_
    elif kind == "decimal":
        value = round_ + 0.5
    elif kind == "dateTime":
        value = f"2024-0{round_ + 1}-15T10:20:30Z"
    elif kind == "binary":
        value = base64.b64encode(f"{tag}-{round_}".encode()).decode()
    elif kind == "reference":
        value = f"https://example.com/{tag}/{name}/{round_}"
    elif parent == "emails" and name == "value":
        value = f"{tag}-{round_}@example.com"
    elif parent == "phoneNumbers" and name == "value":
        value = f"tel:+1-201-555-{round_:04d}"
    else:
        value = f"{tag}-{parent}{name}-{round_}"
    if value is not None and attribute.get("multiValued") and not parent:
        return [value]
    return value


def same(sent: Any, stored: Any, attribute: Attribute) -> bool:
    """Whether the server holds what was sent: every element of a multi-valued attribute in
    some stored element, every sub-attribute sent (but those never returned) as sent, a
    dateTime as the same instant."""
    if attribute.get("returned") == "never":
        return True
    if isinstance(sent, list):
        return isinstance(stored, list) and all(
            any(same(item, held, {**attribute, "multiValued": False}) for held in stored)
            for item in sent
        )
    if isinstance(sent, dict):
        subs = {str(s["name"]): s for s in attribute.get("subAttributes") or []}
        return isinstance(stored, dict) and all(
            same(value, stored.get(key), subs.get(key, {})) for key, value in sent.items()
        )
    if attribute.get("type") == "dateTime" and isinstance(stored, str):
        return datetime.fromisoformat(str(sent)) == datetime.fromisoformat(stored)
    return bool(sent == stored)


async def resource_types(ctx: Context) -> list[ResourceType]:
    """Every resource type of ``/ResourceTypes``, with its schemas read from ``/Schemas``."""
    listed = await ctx.http.get("/ResourceTypes")
    expect_status(listed, 200, what="GET /ResourceTypes")
    described = await ctx.http.get("/Schemas")
    expect_status(described, 200, what="GET /Schemas")
    schemas = {str(s.get("id")): s for s in resources_of(described)}
    found = []
    for resource_type in resources_of(listed):
        core = str(resource_type.get("schema"))
        extensions = [str(e.get("schema")) for e in resource_type.get("schemaExtensions") or []]
        targets = [
            Target(urn, attribute, urn != core)
            for urn in (core, *extensions)
            for attribute in (schemas.get(urn) or {}).get("attributes") or []
            if writable(attribute)
        ]
        require(
            core in schemas, f"/Schemas does not describe {core}, the schema of {resource_type}"
        )
        found.append(
            ResourceType(
                str(resource_type.get("name")),
                str(resource_type.get("endpoint")),
                [core, *extensions],
                targets,
            )
        )
    return found


def body(kind: ResourceType, targets: list[Target], tag: str, round_: int) -> dict[str, Any]:
    """A representation of ``kind`` holding a generated value for each of ``targets``."""
    made: dict[str, Any] = {"schemas": list(kind.urns)}
    for target in targets:
        value = sample(target.attribute, tag, round_)
        if value is not None:
            target.put(made, value)
    return made


def differences(kind: ResourceType, sent: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """The paths whose stored value is not the one sent, each with both values."""
    return [
        f"{t.path}: sent {t.get(sent)!r}, stored {t.get(stored)!r}"
        for t in kind.targets
        if t.get(sent) is not None and not same(t.get(sent), t.get(stored), t.attribute)
    ]


def require_held(
    kind: ResourceType, step: str, sent: dict[str, Any], stored: dict[str, Any]
) -> None:
    wrong = differences(kind, sent, stored)
    require(not wrong, f"{kind.name}, after {step}: " + "; ".join(wrong))


async def create(ctx: Context, kind: ResourceType, made: dict[str, Any]) -> dict[str, Any] | None:
    """The resource created from ``made``; None when the endpoint takes no POST at all (a 405
    whose ``Allow`` leaves POST out, RFC 9110 §15.5.6: a read-only resource type, such as the
    entitlements an app exposes for an IdP to read), which the checks then pass over."""
    response = await ctx.http.post(kind.endpoint, made)
    if response.status == 405 and "POST" not in (response.header("Allow") or "").upper():
        return None
    ctx.fixtures.track(kind.endpoint, response.json())
    expect_status(response, 201, what=f"POST {kind.endpoint} with every writable attribute")
    return expect_object(response)


async def delete(ctx: Context, path: str) -> None:
    """Delete a resource the check is done with, so that it is not the first of a list a later
    check of the run reads, with values of no use to that check."""
    response = await ctx.http.delete(path)
    expect_status(response, 204, what=f"DELETE {path}")


@check(
    S,
    "rfc.schema.create-every-attribute",
    "Every resource type is created with every writable attribute",
    f"{SOURCE} (object_creation)",
    "A POST carrying a value for every attribute a schema of the resource type declares "
    "writable (extensions and sub-attributes too) answers 201, and the resource then holds "
    "each value sent.",
)
async def create_every_attribute(ctx: Context) -> None:
    for kind in await resource_types(ctx):
        tag = ctx.fixtures.name(f"schema-{kind.name}")
        made = body(kind, kind.targets, tag, 0)
        created = await create(ctx, kind, made)
        if created is None:
            continue
        require_held(kind, "POST (its answer)", made, created)
        path = f"{kind.endpoint}/{created['id']}"
        require_held(kind, "POST", made, await read(ctx, path))
        await delete(ctx, path)


@check(
    S,
    "rfc.schema.replace-every-attribute",
    "Every resource type is replaced with every writable attribute",
    f"{SOURCE} (object_replacement)",
    "A PUT carrying a new value for every writable attribute (an immutable one unchanged) "
    "answers 200, and the resource then holds each new value.",
)
async def replace_every_attribute(ctx: Context) -> None:
    for kind in await resource_types(ctx):
        tag = ctx.fixtures.name(f"schema-{kind.name}")
        first = body(kind, kind.targets, tag, 0)
        created = await create(ctx, kind, first)
        if created is None:
            continue
        path = f"{kind.endpoint}/{created['id']}"
        second = body(kind, kind.targets, tag, 1)
        for target in kind.targets:
            if target.attribute.get("mutability") == "immutable" and target.get(first) is not None:
                target.put(second, target.get(first))
        response = await ctx.http.put(path, second)
        expect_status(response, 200, what=f"PUT {path} with every writable attribute")
        require_held(kind, "PUT", second, await read(ctx, path))
        await delete(ctx, path)


@check(
    S,
    "rfc.schema.patch-every-attribute",
    "PATCH adds, replaces and removes every writable attribute",
    f"{SOURCE} (check_add_attribute, check_replace_attribute, check_remove_attribute); "
    "RFC 7644 §3.5.2.1 to §3.5.2.3",
    "On a resource created with its required attributes only, one PATCH adding every other "
    "writable attribute (by its path, URN-qualified in an extension) sets them; one replacing "
    "them (a singular complex attribute sub-attribute by sub-attribute) changes them; one "
    "removing them leaves none.",
)
async def patch_every_attribute(ctx: Context) -> None:
    require_patch(ctx)
    for kind in await resource_types(ctx):
        tag = ctx.fixtures.name(f"schema-{kind.name}")
        created = await create(ctx, kind, body(kind, kind.required(), tag, 0))
        if created is None:
            continue
        path = f"{kind.endpoint}/{created['id']}"
        optional = [
            t
            for t in kind.targets
            if t not in kind.required() and t.attribute.get("mutability") != "immutable"
        ]
        if not optional:
            await delete(ctx, path)
            continue
        added = body(kind, optional, tag, 1)
        await patch(
            ctx,
            path,
            *(
                {"op": "add", "path": t.path, "value": t.get(added)}
                for t in optional
                if t.get(added) is not None
            ),
        )
        require_held(kind, "PATCH add", added, await read(ctx, path))
        replaced = body(kind, optional, tag, 2)
        await patch(ctx, path, *replacements(optional, replaced))
        require_held(kind, "PATCH replace", replaced, await read(ctx, path))
        await patch(ctx, path, *({"op": "remove", "path": t.path} for t in optional))
        stored = await read(ctx, path)
        left = [t.path for t in optional if t.get(stored) not in (None, [], {})]
        require(not left, f"{kind.name}, after PATCH remove: {left} still hold values")
        await delete(ctx, path)


def replacements(targets: list[Target], values: dict[str, Any]) -> list[dict[str, Any]]:
    """``replace`` operations setting ``values``: a singular complex attribute by the paths of
    its sub-attributes (``name.givenName``), any other attribute whole."""
    operations = []
    for target in targets:
        value = target.get(values)
        if value is None:
            continue
        if isinstance(value, dict):
            operations += [
                {"op": "replace", "path": f"{target.path}.{key}", "value": sub}
                for key, sub in value.items()
            ]
        else:
            operations.append({"op": "replace", "path": target.path, "value": value})
    return operations
