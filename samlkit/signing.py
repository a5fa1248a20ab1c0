"""Enveloped XML-DSig signatures placed where the SAML schema wants them.

The SAML schema puts ``ds:Signature`` right after ``Issuer``; signxml would append it last, so a
``<ds:Signature Id="placeholder"/>`` is inserted there first and signxml fills it in. The reference
is always ``#<ID>`` of the signed element and exc-c14n is used without an InclusiveNamespaces
PrefixList, which signxml 5.2 cannot write correctly (signxml issue #163; docs/saml.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.signer import XMLSigner

from samlkit.namespaces import ASSERTION, DSIG, q

EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0


# Okta's and JumpCloud's defaults; the only algorithms a real response is ever signed with here.
_DEFAULT_SIGNER = XMLSigner(
    method=SignatureConstructionMethod.enveloped,
    signature_algorithm=SignatureMethod.RSA_SHA256,
    digest_algorithm=DigestAlgorithm.SHA256,
    c14n_algorithm=EXC_C14N,
)


def find_by_id(root: etree._Element, element_id: str) -> etree._Element:
    """The first element whose ``ID`` attribute is ``element_id``; KeyError if there is none."""
    for element in root.iter(etree.Element):
        if element.get("ID") == element_id:
            return element
    raise KeyError(element_id)


def _insert_placeholder(host: etree._Element) -> None:
    placeholder = etree.Element(q(DSIG, "Signature"), {"Id": "placeholder"}, nsmap={"ds": DSIG})
    first = host[0] if len(host) else None
    host.insert(1 if first is not None and first.tag == q(ASSERTION, "Issuer") else 0, placeholder)


def sign_enveloped(
    root: etree._Element,
    host: etree._Element,
    *,
    key: rsa.RSAPrivateKey | bytes,
    certificate: x509.Certificate | None,
    references: Sequence[str] | None = None,
    signer: XMLSigner | None = None,
    key_value: bool = False,
) -> etree._Element:
    """Sign ``host`` (an element of ``root``'s tree) and return the new root.

    signxml signs a copy, so callers must look elements up again in the returned tree (by ID).
    ``references`` defaults to ``["#" + host ID]``; ``key`` is an RSA key, or bytes for HMAC.
    """
    _insert_placeholder(host)
    signed = (signer or _DEFAULT_SIGNER).sign(
        root,
        key=key,
        cert=[certificate] if certificate is not None else None,
        reference_uri=list(references or ["#" + host.get("ID", "")]),
        always_add_key_value=key_value,
    )
    # signxml writes the PEM body with line breaks; IdPs write one line. KeyInfo is not signed.
    for element in signed.iter(q(DSIG, "X509Certificate")):
        element.text = "".join((element.text or "").split())
    return signed
