"""SAML metadata: the SP's own document, the simulated IdP's, and reading a real IdP's.

Admins import IdP metadata from Okta, JumpCloud or a federation file; all we keep is the entity
ID, the sign-in URL, the signing certificates and the NameID formats on offer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from samlkit.certs import certificate_b64, load_certificate
from samlkit.namespaces import DSIG, HTTP_POST, HTTP_REDIRECT, METADATA, PROTOCOL, q
from samlkit.xml import parse_strict, to_bytes

METADATA_MAX_BYTES = 1024 * 1024
_NSMAP = {"md": METADATA, "ds": DSIG}


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
    for cert in certificates:
        descriptor = etree.SubElement(idp, q(METADATA, "KeyDescriptor"), {"use": "signing"})
        key_info = etree.SubElement(descriptor, q(DSIG, "KeyInfo"))
        x509_data = etree.SubElement(key_info, q(DSIG, "X509Data"))
        etree.SubElement(x509_data, q(DSIG, "X509Certificate")).text = certificate_b64(cert)
    for name_id_format in name_id_formats:
        etree.SubElement(idp, q(METADATA, "NameIDFormat")).text = name_id_format
    bindings = [HTTP_POST, HTTP_REDIRECT] if redirect_binding else [HTTP_POST]
    for binding in bindings:
        etree.SubElement(
            idp, q(METADATA, "SingleSignOnService"), {"Binding": binding, "Location": sso_url}
        )
    return to_bytes(root)


def parse_idp_metadata(xml: bytes, *, max_bytes: int = METADATA_MAX_BYTES) -> IdpMetadata:
    """Read IdP metadata; XmlRejected for unsafe XML, ValueError when it is not usable.

    Comments are tolerated (federation files carry them); DTDs and entities are not.
    """
    root = parse_strict(xml, max_bytes=max_bytes, allow_comments=True)
    idp = _single_idp_descriptor(root)
    entity = idp.getparent()
    entity_id = ("" if entity is None else entity.get("entityID") or "").strip()
    if not entity_id:
        raise ValueError("EntityDescriptor has no entityID")
    return IdpMetadata(
        entity_id=entity_id,
        sso_url=_sso_url(idp),
        certificates=tuple(
            load_certificate(text)
            for descriptor in idp.iterchildren(q(METADATA, "KeyDescriptor"))
            if descriptor.get("use", "signing") == "signing"
            for text in _certificate_texts(descriptor)
        ),
        name_id_formats=tuple(
            (element.text or "").strip()
            for element in idp.iterchildren(q(METADATA, "NameIDFormat"))
            if (element.text or "").strip()
        ),
    )


def _single_idp_descriptor(root: etree._Element) -> etree._Element:
    if root.tag == q(METADATA, "EntityDescriptor"):
        candidates = [root]
    elif root.tag == q(METADATA, "EntitiesDescriptor"):
        candidates = list(root.iter(q(METADATA, "EntityDescriptor")))
    else:
        raise ValueError("not SAML metadata: expected EntityDescriptor or EntitiesDescriptor")
    idps = [e.find(q(METADATA, "IDPSSODescriptor")) for e in candidates]
    found = [idp for idp in idps if idp is not None]
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
