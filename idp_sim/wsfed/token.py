"""Signed WS-Federation tokens: the ``wresult`` Entra ID and AD FS post to an application.

A ``wresult`` is a WS-Trust RequestSecurityTokenResponse carrying one signed assertion. A SAML
2.0 assertion comes from the SAML simulator's own builder
(:meth:`~idp_sim.saml.response.IdentityProvider.build`), with its audience the realm, so the
WS-Federation and SAML IdPs describe the same people the same way; a SAML 1.1 one (AD FS's
default for WS-Federation) carries the same claims in 1.1's layout. :meth:`WsFedIdp.build` and
:meth:`WsFedIdp.sign` are separate steps so the tampering catalogue can break a token before
or after its signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureConstructionMethod, SignatureMethod
from signxml.signer import XMLSigner

from idp_sim.saml.response import IdentityProvider, SamlSubject, ServiceProvider
from idp_sim.saml.shapes import IdpShape
from samlkit.certs import SigningKey
from samlkit.metadata import wsfed_metadata
from samlkit.namespaces import (
    ASSERTION,
    ASSERTION_11,
    BEARER_11,
    PASSWORD_PROTECTED_TRANSPORT,
    TRUST_2005,
    WSA,
    WSP,
    XS,
    XSI,
    q,
)
from samlkit.signing import EXC_C14N, sign_enveloped
from samlkit.timefmt import format_instant

WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
SAML2_TOKEN = "urn:oasis:names:tc:SAML:2.0:assertion"
SAML11_TOKEN = "urn:oasis:names:tc:SAML:1.0:assertion"
TokenVersion = Literal["2.0", "1.1"]
ISSUE = f"{TRUST_2005}/Issue"
BEARER_KEY = "http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer"


@dataclass(frozen=True)
class RelyingParty:
    """The application as registered at the IdP: its realm (the token's audience) and the
    reply URL the token is posted to."""

    realm: str
    reply_url: str


class WsFedIdp:
    """One simulated WS-Federation application at an Entra-shaped STS, signing with ``key``."""

    def __init__(self, shape: IdpShape, key: SigningKey, token: TokenVersion = "2.0") -> None:
        self.saml = IdentityProvider(shape, key)
        self.token = token

    @property
    def shape(self) -> IdpShape:
        return self.saml.shape

    @property
    def key(self) -> SigningKey:
        return self.saml.key

    def build(
        self, subject: SamlSubject, rp: RelyingParty, *, now: datetime | None = None
    ) -> etree._Element:
        """The unsigned RequestSecurityTokenResponse, as Entra ID lays it out."""
        instant = now or datetime.now(UTC)
        assertion = (
            self._saml2_assertion(subject, rp, instant)
            if self.token == "2.0"
            else self._saml11_assertion(subject, rp, instant)
        )
        root = etree.Element(
            q(TRUST_2005, "RequestSecurityTokenResponse"),
            nsmap={
                "t": TRUST_2005,
                "wsu": WSU,
                "wsp": WSP,
                "wsa": WSA,
                self.shape.assertion_prefix: ASSERTION if self.token == "2.0" else ASSERTION_11,
                "xs": XS,
                "xsi": XSI,
            },
        )
        lifetime = etree.SubElement(root, q(TRUST_2005, "Lifetime"))
        etree.SubElement(lifetime, q(WSU, "Created")).text = format_instant(instant)
        etree.SubElement(lifetime, q(WSU, "Expires")).text = format_instant(
            instant + self.shape.validity
        )
        applies_to = etree.SubElement(root, q(WSP, "AppliesTo"))
        reference = etree.SubElement(applies_to, q(WSA, "EndpointReference"))
        etree.SubElement(reference, q(WSA, "Address")).text = rp.realm
        etree.SubElement(root, q(TRUST_2005, "RequestedSecurityToken")).append(assertion)
        etree.SubElement(root, q(TRUST_2005, "TokenType")).text = (
            SAML2_TOKEN if self.token == "2.0" else SAML11_TOKEN
        )
        etree.SubElement(root, q(TRUST_2005, "RequestType")).text = ISSUE
        etree.SubElement(root, q(TRUST_2005, "KeyType")).text = BEARER_KEY
        return root

    def _saml2_assertion(
        self, subject: SamlSubject, rp: RelyingParty, instant: datetime
    ) -> etree._Element:
        response = self.saml.build(
            subject, ServiceProvider(entity_id=rp.realm, acs_url=rp.reply_url), now=instant
        )
        assertion = response.find(q(ASSERTION, "Assertion"))
        assert assertion is not None
        # Entra's tokens confirm the bearer with no SubjectConfirmationData: the window is the
        # conditions'.
        for data in assertion.iter(q(ASSERTION, "SubjectConfirmationData")):
            parent = data.getparent()
            assert parent is not None
            parent.remove(data)
        return assertion

    def _saml11_assertion(
        self, subject: SamlSubject, rp: RelyingParty, instant: datetime
    ) -> etree._Element:
        """AD FS's SAML 1.1 token: the issuer an attribute, the audience in an
        AudienceRestrictionCondition, the subject repeated in each statement, each claim type
        split into an AttributeNamespace and an AttributeName."""
        shape = self.shape
        issued = format_instant(instant)
        assertion = etree.Element(
            q(ASSERTION_11, "Assertion"),
            {
                "MajorVersion": "1",
                "MinorVersion": "1",
                "AssertionID": shape.new_id(),
                "Issuer": shape.entity_id,
                "IssueInstant": issued,
            },
        )
        conditions = etree.SubElement(
            assertion,
            q(ASSERTION_11, "Conditions"),
            {
                "NotBefore": format_instant(instant - shape.validity),
                "NotOnOrAfter": format_instant(instant + shape.validity),
            },
        )
        restriction = etree.SubElement(conditions, q(ASSERTION_11, "AudienceRestrictionCondition"))
        etree.SubElement(restriction, q(ASSERTION_11, "Audience")).text = rp.realm
        claims = {name: [getattr(subject, field)] for name, field in shape.attributes.items()}
        if shape.groups_attribute:
            claims[shape.groups_attribute] = list(subject.groups)
        statement = etree.SubElement(assertion, q(ASSERTION_11, "AttributeStatement"))
        self._saml11_subject(statement, subject)
        for claim, values in claims.items():
            namespace, _, name = claim.rpartition("/")
            attribute = etree.SubElement(
                statement,
                q(ASSERTION_11, "Attribute"),
                {"AttributeName": name, "AttributeNamespace": namespace},
            )
            for value in values:
                if value:
                    etree.SubElement(attribute, q(ASSERTION_11, "AttributeValue")).text = value
        authentication = etree.SubElement(
            assertion,
            q(ASSERTION_11, "AuthenticationStatement"),
            {"AuthenticationMethod": PASSWORD_PROTECTED_TRANSPORT, "AuthenticationInstant": issued},
        )
        self._saml11_subject(authentication, subject)
        return assertion

    def _saml11_subject(self, statement: etree._Element, subject: SamlSubject) -> None:
        element = etree.SubElement(statement, q(ASSERTION_11, "Subject"))
        name = etree.SubElement(
            element, q(ASSERTION_11, "NameIdentifier"), {"Format": self.shape.name_id_format}
        )
        name.text = subject.email
        confirmation = etree.SubElement(element, q(ASSERTION_11, "SubjectConfirmation"))
        etree.SubElement(confirmation, q(ASSERTION_11, "ConfirmationMethod")).text = BEARER_11

    def sign(self, root: etree._Element, key: SigningKey | None = None) -> etree._Element:
        """Sign the token's assertion (with ``key``, default the app's); returns the new root."""
        signing = key or self.key
        token = root.find(q(TRUST_2005, "RequestedSecurityToken"))
        assert token is not None and len(token) == 1
        assertion = token[0]
        if self.token == "2.0":
            return sign_enveloped(
                root, assertion, key=signing.private_key, certificate=signing.certificate
            )
        # SAML 1.1 names its ID AssertionID, which signxml resolves only when told so.
        signer = saml11_signer()
        return sign_enveloped(
            root,
            assertion,
            key=signing.private_key,
            certificate=signing.certificate,
            references=["#" + assertion.get("AssertionID", "")],
            signer=signer,
        )

    def wresult(
        self, subject: SamlSubject, rp: RelyingParty, *, now: datetime | None = None
    ) -> str:
        """The signed token as the ``wresult`` form value."""
        return serialise(self.sign(self.build(subject, rp, now=now)))

    def metadata_xml(self, base_url: str) -> bytes:
        """This STS's federation metadata, its passive endpoint under ``base_url``."""
        return wsfed_metadata(
            self.shape.entity_id, base_url.rstrip("/") + self.shape.sso_path, [self.key.certificate]
        )


def saml11_signer() -> XMLSigner:
    """The house signer (RSA-SHA256, exc-c14n), resolving references by ``AssertionID``."""
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=EXC_C14N,
    )
    signer.id_attributes = ("AssertionID",)
    return signer


def serialise(root: etree._Element) -> str:
    """A token response as the text of the ``wresult`` field."""
    return etree.tostring(root, encoding="unicode")


def mint_wresult(
    subject: SamlSubject,
    rp: RelyingParty,
    *,
    shape: IdpShape,
    key: SigningKey,
    token: TokenVersion = "2.0",
    now: datetime | None = None,
) -> str:
    """One call for tests: the ``wresult`` an Entra-shaped STS posts for ``subject``, its
    assertion SAML 2.0 or 1.1."""
    return WsFedIdp(shape, key, token).wresult(subject, rp, now=now)
