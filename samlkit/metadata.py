"""SAML metadata: the SP's own document, the simulated IdP's, and reading a real IdP's.

Admins import IdP metadata from Okta, JumpCloud or a federation file; all we keep is the entity
ID, the sign-in URL, the signing certificates and the NameID formats on offer. WS-Federation
metadata (Entra ID's and AD FS's ``FederationMetadata.xml``) is the same EntityDescriptor with
a ``fed:SecurityTokenServiceType`` role instead: its passive requestor endpoint is the sign-in
URL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from samlkit.certs import certificate_b64, load_certificate
from samlkit.namespaces import (
    DSIG,
    FED,
    HTTP_POST,
    HTTP_REDIRECT,
    METADATA,
    PROTOCOL,
    WSA,
    XSI,
    q,
)
from samlkit.xml import parse_strict, to_bytes

METADATA_MAX_BYTES = 1024 * 1024
_NSMAP = {"md": METADATA, "ds": DSIG}
_WSFED_NSMAP = {**_NSMAP, "fed": FED, "wsa": WSA, "xsi": XSI}
STS_ROLE = "SecurityTokenServiceType"
"""The ``xsi:type`` local name of the RoleDescriptor a WS-Federation IdP describes itself in."""
_PASSIVE_ADDRESS = (
    f"{q(FED, 'PassiveRequestorEndpoint')}/{q(WSA, 'EndpointReference')}/{q(WSA, 'Address')}"
)


@dataclass(frozen=True)
class IdpMetadata:
    """What an SP needs from IdP metadata; ``sso_url`` prefers HTTP-Redirect, then HTTP-POST."""

    entity_id: str
    sso_url: str | None
    certificates: tuple[x509.Certificate, ...]
    name_id_formats: tuple[str, ...]


def sp_metadata(
    entity_id: str, acs_url: str, *, name_id_format: str | None, want_assertions_signed: bool
) -> bytes:
    """The SP's ``md:EntityDescriptor`` that an admin uploads to the IdP."""
    root = etree.Element(q(METADATA, "EntityDescriptor"), {"entityID": entity_id}, nsmap=_NSMAP)
    sp = etree.SubElement(
        root,
        q(METADATA, "SPSSODescriptor"),
        {
            "AuthnRequestsSigned": "false",
            "WantAssertionsSigned": "true" if want_assertions_signed else "false",
            "protocolSupportEnumeration": PROTOCOL,
        },
    )
    if name_id_format is not None:
        etree.SubElement(sp, q(METADATA, "NameIDFormat")).text = name_id_format
    etree.SubElement(
        sp,
        q(METADATA, "AssertionConsumerService"),
        {"Binding": HTTP_POST, "Location": acs_url, "index": "0", "isDefault": "true"},
    )
    return to_bytes(root)


def idp_metadata(
    entity_id: str,
    sso_url: str,
    certificates: Sequence[x509.Certificate],
    name_id_formats: Sequence[str],
    *,
    redirect_binding: bool = True,
) -> bytes:
    """An IdP ``md:EntityDescriptor`` in the shape Okta and JumpCloud export."""
    root = etree.Element(q(METADATA, "EntityDescriptor"), {"entityID": entity_id}, nsmap=_NSMAP)
    idp = etree.SubElement(
        root,
        q(METADATA, "IDPSSODescriptor"),
        {"WantAuthnRequestsSigned": "false", "protocolSupportEnumeration": PROTOCOL},
    )
    _key_descriptors(idp, certificates)
    for name_id_format in name_id_formats:
        etree.SubElement(idp, q(METADATA, "NameIDFormat")).text = name_id_format
    bindings = [HTTP_POST, HTTP_REDIRECT] if redirect_binding else [HTTP_POST]
    for binding in bindings:
        etree.SubElement(
            idp, q(METADATA, "SingleSignOnService"), {"Binding": binding, "Location": sso_url}
        )
    return to_bytes(root)


def wsfed_metadata(
    entity_id: str, passive_url: str, certificates: Sequence[x509.Certificate]
) -> bytes:
    """A WS-Federation IdP's metadata in the shape Entra ID and AD FS publish: an STS role with
    its signing keys and passive requestor endpoint."""
    root = etree.Element(
        q(METADATA, "EntityDescriptor"), {"entityID": entity_id}, nsmap=_WSFED_NSMAP
    )
    role = etree.SubElement(
        root,
        q(METADATA, "RoleDescriptor"),
        {q(XSI, "type"): f"fed:{STS_ROLE}", "protocolSupportEnumeration": FED},
    )
    _key_descriptors(role, certificates)
    endpoint = etree.SubElement(role, q(FED, "PassiveRequestorEndpoint"))
    reference = etree.SubElement(endpoint, q(WSA, "EndpointReference"))
    etree.SubElement(reference, q(WSA, "Address")).text = passive_url
    return to_bytes(root)


def _key_descriptors(role: etree._Element, certificates: Sequence[x509.Certificate]) -> None:
    for cert in certificates:
        descriptor = etree.SubElement(role, q(METADATA, "KeyDescriptor"), {"use": "signing"})
        key_info = etree.SubElement(descriptor, q(DSIG, "KeyInfo"))
        x509_data = etree.SubElement(key_info, q(DSIG, "X509Data"))
        etree.SubElement(x509_data, q(DSIG, "X509Certificate")).text = certificate_b64(cert)


def parse_idp_metadata(xml: bytes, *, max_bytes: int = METADATA_MAX_BYTES) -> IdpMetadata:
    """Read IdP metadata; XmlRejected for unsafe XML, ValueError when it is not usable.

    Comments are tolerated (federation files carry them); DTDs and entities are not.
    """
    root = parse_strict(xml, max_bytes=max_bytes, allow_comments=True)
    idp = _single_role(root, lambda entity: entity.find(q(METADATA, "IDPSSODescriptor")))
    return IdpMetadata(
        entity_id=_entity_id(idp),
        sso_url=_sso_url(idp),
        certificates=_signing_certificates(idp),
        name_id_formats=tuple(
            (element.text or "").strip()
            for element in idp.iterchildren(q(METADATA, "NameIDFormat"))
            if (element.text or "").strip()
        ),
    )


def parse_wsfed_metadata(xml: bytes, *, max_bytes: int = METADATA_MAX_BYTES) -> IdpMetadata:
    """Read WS-Federation metadata, as :func:`parse_idp_metadata` reads SAML metadata; the
    ``sso_url`` is the STS role's passive requestor endpoint (None when it names none)."""
    root = parse_strict(xml, max_bytes=max_bytes, allow_comments=True)
    sts = _single_role(root, _sts_role)
    address = sts.find(_PASSIVE_ADDRESS)
    passive_url = None if address is None else (address.text or "").strip() or None
    return IdpMetadata(
        entity_id=_entity_id(sts),
        sso_url=passive_url,
        certificates=_signing_certificates(sts),
        name_id_formats=(),
    )


def _sts_role(entity: etree._Element) -> etree._Element | None:
    """The entity's WS-Federation security token service role, if it has one."""
    for role in entity.iterchildren(q(METADATA, "RoleDescriptor")):
        if (role.get(q(XSI, "type")) or "").rpartition(":")[2] == STS_ROLE:
            return role
    return None


def _entity_id(role: etree._Element) -> str:
    entity = role.getparent()
    entity_id = ("" if entity is None else entity.get("entityID") or "").strip()
    if not entity_id:
        raise ValueError("EntityDescriptor has no entityID")
    return entity_id


def _signing_certificates(role: etree._Element) -> tuple[x509.Certificate, ...]:
    return tuple(
        load_certificate(text)
        for descriptor in role.iterchildren(q(METADATA, "KeyDescriptor"))
        if descriptor.get("use", "signing") == "signing"
        for text in _certificate_texts(descriptor)
    )


def _single_role(
    root: etree._Element, role_of: Callable[[etree._Element], etree._Element | None]
) -> etree._Element:
    """The one IdP role ``role_of`` finds among the document's entities."""
    if root.tag == q(METADATA, "EntityDescriptor"):
        candidates = [root]
    elif root.tag == q(METADATA, "EntitiesDescriptor"):
        candidates = list(root.iter(q(METADATA, "EntityDescriptor")))
    else:
        raise ValueError("not SAML metadata: expected EntityDescriptor or EntitiesDescriptor")
    found = [role for role in map(role_of, candidates) if role is not None]
    if len(found) != 1:
        raise ValueError(f"expected exactly one IdP entity in the metadata, found {len(found)}")
    return found[0]


def _sso_url(idp: etree._Element) -> str | None:
    locations = {
        service.get("Binding"): service.get("Location")
        for service in reversed(list(idp.iterchildren(q(METADATA, "SingleSignOnService"))))
        if service.get("Location")
    }
    return locations.get(HTTP_REDIRECT) or locations.get(HTTP_POST)


def _certificate_texts(descriptor: etree._Element) -> list[str]:
    path = f"{{{DSIG}}}KeyInfo/{{{DSIG}}}X509Data/{{{DSIG}}}X509Certificate"
    return [element.text or "" for element in descriptor.iterfind(path)]
