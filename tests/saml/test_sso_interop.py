"""Interop: the SP accepts a response signed by libxmlsec1 in Okta's exact layout.

Okta signs with ``InclusiveNamespaces PrefixList="xs"`` inside the exc-c14n transform, which
signxml cannot produce (signxml issue #163; docs/saml.md). Signing with python-xmlsec (the
libxmlsec1 that pysaml2 and python3-saml use) proves the SP verifies what Okta really sends,
not only what our own simulator makes.
"""

from __future__ import annotations

import base64

import xmlsec
from lxml import etree

from samlkit.certs import SigningKey, certificate_pem
from samlkit.namespaces import ASSERTION, q
from tests.support.sso import Sso, person


def _sign_like_okta(root: etree._Element, element: etree._Element, key: SigningKey) -> None:
    """An enveloped RSA-SHA256 signature right after ``element``'s Issuer, as Okta places it."""
    signature = xmlsec.template.create(
        element, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256, ns="ds"
    )
    element.find(q(ASSERTION, "Issuer")).addnext(signature)
    reference = xmlsec.template.add_reference(
        signature, xmlsec.Transform.SHA256, uri=f"#{element.get('ID')}"
    )
    xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
    c14n = xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
    xmlsec.template.transform_add_c14n_inclusive_namespaces(c14n, "xs")
    xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    xmlsec.tree.add_ids(root, ["ID"])
    signing_key = xmlsec.Key.from_memory(key.private_key_pem(), xmlsec.KeyFormat.PEM)
    signing_key.load_cert_from_memory(
        certificate_pem(key.certificate).encode(), xmlsec.KeyFormat.PEM
    )
    context = xmlsec.SignatureContext()
    context.key = signing_key
    context.sign(signature)


async def test_a_response_signed_by_libxmlsec1_in_oktas_layout_is_accepted(okta_sso: Sso) -> None:
    request_id = await okta_sso.start()
    root = okta_sso.idp.build(person(), okta_sso.sp, in_response_to=request_id)
    _sign_like_okta(root, root.find(q(ASSERTION, "Assertion")), okta_sso.idp.key)
    _sign_like_okta(root, root, okta_sso.idp.key)
    document = etree.tostring(root)
    assert b'PrefixList="xs"' in document
    assert document.count(b"<ds:Signature ") + document.count(b"<ds:Signature>") == 2

    response = await okta_sso.post(base64.b64encode(document).decode())
    assert response.status == 303, await okta_sso.last_reason()
    assert [user["userName"] for user in await okta_sso.users("ada@example.com")] == [
        "ada@example.com"
    ]


async def test_the_same_layout_tampered_after_signing_is_refused(okta_sso: Sso) -> None:
    root = okta_sso.idp.build(person(), okta_sso.sp)
    _sign_like_okta(root, root.find(q(ASSERTION, "Assertion")), okta_sso.idp.key)
    _sign_like_okta(root, root, okta_sso.idp.key)
    document = etree.tostring(root).replace(b"Lovelace", b"Byron")
    response = await okta_sso.post(base64.b64encode(document).decode())
    assert response.status == 403
    assert "does not verify" in await okta_sso.last_reason()
