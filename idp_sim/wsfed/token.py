"""Signed WS-Federation tokens: the ``wresult`` Entra ID and AD FS post to an application.

A ``wresult`` is a WS-Trust RequestSecurityTokenResponse carrying one signed SAML 2.0
assertion. The assertion comes from the SAML simulator's own builder
(:meth:`~idp_sim.saml.response.IdentityProvider.build`), with its audience the realm, so the
WS-Federation and SAML IdPs describe the same people the same way. :meth:`WsFedIdp.build` and
:meth:`WsFedIdp.sign` are separate steps so the tampering catalogue can break a token before
or after its signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from idp_sim.saml.response import IdentityProvider, SamlSubject, ServiceProvider
from idp_sim.saml.shapes import IdpShape
from samlkit.certs import SigningKey
from samlkit.metadata import wsfed_metadata
from samlkit.namespaces import ASSERTION, TRUST_2005, WSA, WSP, XS, XSI, q
from samlkit.timefmt import format_instant

WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
SAML2_TOKEN = "urn:oasis:names:tc:SAML:2.0:assertion"
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

    def __init__(self, shape: IdpShape, key: SigningKey) -> None:
        self.saml = IdentityProvider(shape, key)

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
        root = etree.Element(
            q(TRUST_2005, "RequestSecurityTokenResponse"),
            nsmap={
                "t": TRUST_2005,
                "wsu": WSU,
                "wsp": WSP,
                "wsa": WSA,
                self.shape.assertion_prefix: ASSERTION,
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
        etree.SubElement(root, q(TRUST_2005, "TokenType")).text = SAML2_TOKEN
        etree.SubElement(root, q(TRUST_2005, "RequestType")).text = ISSUE
        etree.SubElement(root, q(TRUST_2005, "KeyType")).text = BEARER_KEY
        return root

    def sign(self, root: etree._Element, key: SigningKey | None = None) -> etree._Element:
        """Sign the token's assertion (with ``key``, default the app's); returns the new root."""
        signer = IdentityProvider(self.shape, key) if key is not None else self.saml
        assertion = root.find(
            f"{q(TRUST_2005, 'RequestedSecurityToken')}/{q(ASSERTION, 'Assertion')}"
        )
        assert assertion is not None
        return signer.sign_element(root, assertion.get("ID", ""))

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


def serialise(root: etree._Element) -> str:
    """A token response as the text of the ``wresult`` field."""
    return etree.tostring(root, encoding="unicode")


def mint_wresult(
    subject: SamlSubject,
    rp: RelyingParty,
    *,
    shape: IdpShape,
    key: SigningKey,
    now: datetime | None = None,
) -> str:
    """One call for tests: the ``wresult`` an Entra-shaped STS posts for ``subject``."""
    return WsFedIdp(shape, key).wresult(subject, rp, now=now)
