"""SAML 2.0 and XML-DSig namespace URIs and the identifiers both sides compare against."""

from __future__ import annotations

PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion"
ASSERTION_11 = "urn:oasis:names:tc:SAML:1.0:assertion"
"""SAML 1.1 assertions (which kept the 1.0 namespace): AD FS's WS-Federation tokens."""
METADATA = "urn:oasis:names:tc:SAML:2.0:metadata"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"
XML = "http://www.w3.org/XML/1998/namespace"

# WS-Federation and what its passive requestor profile wraps a token in.
FED = "http://docs.oasis-open.org/wsfed/federation/200706"
WSA = "http://www.w3.org/2005/08/addressing"
WSP = "http://schemas.xmlsoap.org/ws/2004/09/policy"
TRUST_2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust"
"""WS-Trust February 2005: the RequestSecurityTokenResponse Entra ID and AD FS post."""
TRUST_13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512"
"""WS-Trust 1.3: AD FS's RequestSecurityTokenResponseCollection (``wsfed`` 1.3 endpoints)."""

EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
UNSPECIFIED_11 = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
UNSPECIFIED_20 = "urn:oasis:names:tc:SAML:2.0:nameid-format:unspecified"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
ENTITY = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"

ATTRNAME_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"

HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
HTTP_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
BEARER_11 = "urn:oasis:names:tc:SAML:1.0:cm:bearer"
HOLDER_OF_KEY = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"

STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"

PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


def q(ns: str, local: str) -> str:
    """The Clark-notation name lxml uses for ``local`` in namespace ``ns``."""
    return f"{{{ns}}}{local}"
