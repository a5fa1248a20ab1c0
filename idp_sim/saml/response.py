"""Signed SAML Responses in Okta's and JumpCloud's layout (docs/saml.md).

:meth:`IdentityProvider.build` and :meth:`IdentityProvider.sign` are separate steps so the
tampering module can break a document at any stage (before, between or after the signatures)
with the very same builder real responses come from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from idp_sim.directory import DirectoryUser
from idp_sim.saml.shapes import IdpShape
from samlkit.bindings import encode_post
from samlkit.certs import SigningKey
from samlkit.metadata import idp_metadata
from samlkit.namespaces import (
    ASSERTION,
    ATTRNAME_UNSPECIFIED,
    BEARER,
    ENTITY,
    PASSWORD_PROTECTED_TRANSPORT,
    PROTOCOL,
    STATUS_SUCCESS,
    XS,
    XSI,
    q,
)
from samlkit.signing import find_by_id, sign_enveloped
from samlkit.timefmt import format_instant
from samlkit.xml import to_bytes

_NAME_ID_FIELDS = {"email": "email", "login": "login", "id": "user_id"}


@dataclass(frozen=True)
class SamlSubject:
    """The person an assertion is about, in the IdP's terms."""

    login: str
    email: str
    first_name: str
    last_name: str
    user_id: str
    groups: tuple[str, ...] = ()

    @classmethod
    def from_directory(cls, user: DirectoryUser, groups: Iterable[str] = ()) -> SamlSubject:
        """The subject for a simulated directory user, so SCIM and SAML describe one person."""
        return cls(
            login=user.login,
            email=user.email,
            first_name=user.given_name,
            last_name=user.family_name,
            user_id=user.id,
            groups=tuple(groups),
        )


@dataclass(frozen=True)
class ServiceProvider:
    """The SP as registered in the IdP app: responses go only to this ACS, for this audience."""

    entity_id: str
    acs_url: str


def _child(
    parent: etree._Element,
    ns: str,
    local: str,
    attrs: Mapping[str, str] | None = None,
    text: str | None = None,
) -> etree._Element:
    element = etree.SubElement(parent, q(ns, local), dict(attrs or {}))
    element.text = text
    return element


class IdentityProvider:
    """One simulated IdP app: a shape and the signing key it was issued."""

    def __init__(self, shape: IdpShape, key: SigningKey) -> None:
        self.shape = shape
        self.key = key

    def build(
        self,
        subject: SamlSubject,
        sp: ServiceProvider,
        *,
        in_response_to: str | None = None,
        now: datetime | None = None,
        session_index: str | None = None,
    ) -> etree._Element:
        """The unsigned ``Response`` tree, every element in schema order."""
        shape = self.shape
        instant = now or datetime.now(UTC)
        issued = format_instant(instant)
        not_before = format_instant(instant - shape.validity)
        not_on_or_after = format_instant(instant + shape.validity)
        irt = {"InResponseTo": in_response_to} if in_response_to else {}
        root = etree.Element(
            q(PROTOCOL, "Response"),
            {"Destination": sp.acs_url, "ID": shape.new_id()},
            nsmap={
                shape.protocol_prefix: PROTOCOL,
                shape.assertion_prefix: ASSERTION,
                "xs": XS,
                "xsi": XSI,
            },
        )
        if in_response_to:
            root.set("InResponseTo", in_response_to)
        root.set("IssueInstant", issued)
        root.set("Version", "2.0")
        _child(root, ASSERTION, "Issuer", {"Format": ENTITY}, shape.entity_id)
        status = _child(root, PROTOCOL, "Status")
        _child(status, PROTOCOL, "StatusCode", {"Value": STATUS_SUCCESS})

        assertion = _child(
            root, ASSERTION, "Assertion", {"ID": shape.new_id(), "IssueInstant": issued}
        )
        assertion.set("Version", "2.0")
        _child(assertion, ASSERTION, "Issuer", {"Format": ENTITY}, shape.entity_id)
        subject_el = _child(assertion, ASSERTION, "Subject")
        name_id = getattr(subject, _NAME_ID_FIELDS[shape.name_id_source])
        _child(subject_el, ASSERTION, "NameID", {"Format": shape.name_id_format}, name_id)
        confirmation = _child(subject_el, ASSERTION, "SubjectConfirmation", {"Method": BEARER})
        _child(
            confirmation,
            ASSERTION,
            "SubjectConfirmationData",
            {**irt, "NotOnOrAfter": not_on_or_after, "Recipient": sp.acs_url},
        )
        conditions = _child(
            assertion,
            ASSERTION,
            "Conditions",
            {"NotBefore": not_before, "NotOnOrAfter": not_on_or_after},
        )
        restriction = _child(conditions, ASSERTION, "AudienceRestriction")
        _child(restriction, ASSERTION, "Audience", text=sp.entity_id)
        authn = _child(
            assertion,
            ASSERTION,
            "AuthnStatement",
            {
                "AuthnInstant": issued,
                "SessionIndex": session_index or in_response_to or shape.new_id(),
            },
        )
        context = _child(authn, ASSERTION, "AuthnContext")
        _child(context, ASSERTION, "AuthnContextClassRef", text=PASSWORD_PROTECTED_TRANSPORT)
        self._attribute_statement(assertion, subject)
        return root

    def _attribute_statement(self, assertion: etree._Element, subject: SamlSubject) -> None:
        """Mapped attributes, then groups; empty values are omitted, as Okta omits null fields."""
        values = {name: [getattr(subject, f)] for name, f in self.shape.attributes.items()}
        if self.shape.groups_attribute:
            values[self.shape.groups_attribute] = list(subject.groups)
        present = {name: [v for v in vs if v] for name, vs in values.items() if any(vs)}
        if not present:
            return
        statement = _child(assertion, ASSERTION, "AttributeStatement")
        for name, attribute_values in present.items():
            attrs = {"Name": name, "NameFormat": ATTRNAME_UNSPECIFIED}
            attribute = _child(statement, ASSERTION, "Attribute", attrs)
            for value in attribute_values:
                _child(attribute, ASSERTION, "AttributeValue", {q(XSI, "type"): "xs:string"}, value)

    def sign(
        self,
        root: etree._Element,
        *,
        response: bool | None = None,
        assertion: bool | None = None,
    ) -> etree._Element:
        """Sign the document as the shape says, or as told; returns the new root."""
        return sign_document(
            root,
            response=self.shape.sign_response if response is None else response,
            assertion=self.shape.sign_assertion if assertion is None else assertion,
            sign_element=self.sign_element,
        )

    def sign_element(self, root: etree._Element, element_id: str) -> etree._Element:
        """Add an enveloped signature to the element with ``element_id``; returns the new root."""
        return sign_enveloped(
            root,
            find_by_id(root, element_id),
            key=self.key.private_key,
            certificate=self.key.certificate,
        )

    def response_xml(
        self,
        subject: SamlSubject,
        sp: ServiceProvider,
        *,
        in_response_to: str | None = None,
        now: datetime | None = None,
        session_index: str | None = None,
    ) -> bytes:
        """The signed Response document."""
        tree = self.build(
            subject, sp, in_response_to=in_response_to, now=now, session_index=session_index
        )
        return to_bytes(self.sign(tree))

    def response_b64(
        self,
        subject: SamlSubject,
        sp: ServiceProvider,
        *,
        in_response_to: str | None = None,
        now: datetime | None = None,
        session_index: str | None = None,
    ) -> str:
        """The signed Response as the ``SAMLResponse`` form value."""
        return encode_post(
            self.response_xml(
                subject, sp, in_response_to=in_response_to, now=now, session_index=session_index
            )
        )

    def metadata_xml(self, base_url: str) -> bytes:
        """This IdP's metadata with its SSO URL under ``base_url``."""
        return idp_metadata(
            self.shape.entity_id,
            base_url.rstrip("/") + self.shape.sso_path,
            [self.key.certificate],
            [self.shape.name_id_format],
        )


def sign_document(
    root: etree._Element,
    *,
    response: bool,
    assertion: bool,
    sign_element: Callable[[etree._Element, str], etree._Element],
) -> etree._Element:
    """Sign every Assertion, then the Response, with ``sign_element(root, id) -> new root``.

    Assertions go first because the response signature must cover the signed assertions. The
    signing function is a parameter so the tampering module can sign with another key or algorithm.
    """
    if assertion:
        for assertion_id in [a.get("ID", "") for a in root.iter(q(ASSERTION, "Assertion"))]:
            root = sign_element(root, assertion_id)
    if response:
        root = sign_element(root, root.get("ID", ""))
    return root


def signed_response(
    subject: SamlSubject,
    sp: ServiceProvider,
    *,
    shape: IdpShape,
    key: SigningKey,
    in_response_to: str | None = None,
    now: datetime | None = None,
) -> str:
    """One call for tests and the conformance runner: a base64 SAMLResponse for ``subject``."""
    return IdentityProvider(shape, key).response_b64(
        subject, sp, in_response_to=in_response_to, now=now
    )
