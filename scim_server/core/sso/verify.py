"""Verifying a SAMLResponse, step by step (the recipe ``docs/saml.md`` describes).

signxml proves that bytes were signed by a pinned key; everything SAML means by a valid
response is checked here. The order matters:

1. The document is parsed once, by :func:`samlkit.xml.parse_strict` (no DTD, entity, comment or
   processing instruction); signxml re-reads it with the same strict parser, never another.
2. The document's *shape* is checked before any signature: exactly one Assertion, with an ID,
   a direct child of the Response; at most one Signature under each of the two; no ID value
   twice, whatever the namespace of the attribute carrying it (signxml resolves references by
   the attribute's local name). This is what defeats signature wrapping.
3. Each signature is verified at its pinned position, and its one Reference must name the
   element it sits in, so a valid signature over *something else* proves nothing. Whatever
   signxml, lxml or cryptography raise on hostile input is a refusal with its reason.
4. From then on only the trees signxml returned are read: what was signed, and nothing the
   attacker could have added around it. An unsigned Response envelope is only advisory: its
   values may refuse a response, never vouch for one. In particular, when the Response is not
   signed, only the signed ``SubjectConfirmationData/@InResponseTo`` says which request the
   response answers, and only a signed Response is required to name its Destination.

WS-Federation (:func:`consume_wresult`) posts no SAML Response but a WS-Trust
RequestSecurityTokenResponse around one signed assertion; the same steps apply to it, through
the same functions: one parse, a shape that leaves the assertion one place to be, its own
signature verified where it sits, and only the signed assertion read, its audience the realm.

Everything that needs state (the AuthnRequest the response answers, the replay cache, the
user) is left to the caller: this module is pure and takes ``now`` as an argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography import x509
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from samlkit.bindings import decode_post
from samlkit.namespaces import (
    ASSERTION,
    ASSERTION_11,
    BEARER,
    BEARER_11,
    DSIG,
    EMAIL,
    PROTOCOL,
    STATUS_SUCCESS,
    TRUST_13,
    TRUST_2005,
    q,
)
from samlkit.timefmt import parse_instant
from samlkit.xml import XmlRejected, parse_strict, strict_parser

MAX_RESPONSE_BYTES = 256 * 1024
MAX_ATTRIBUTES = 100
MAX_ATTRIBUTE_VALUES = 100
MAX_VALUE_LENGTH = 2048

SIGNATURE_METHODS = frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA512})
DIGEST_ALGORITHMS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA512})

RESPONSE = q(PROTOCOL, "Response")
ASSERTION_TAG = q(ASSERTION, "Assertion")
SIGNATURE = q(DSIG, "Signature")
ID_ATTRIBUTES = frozenset({"ID", "Id", "id", "AssertionID"})
"""Local names of the attributes signxml resolves a Reference URI against, in any namespace
(``AssertionID`` when it verifies a SAML 1.1 assertion)."""
RSTR = "RequestSecurityTokenResponse"
RSTR_COLLECTION = "RequestSecurityTokenResponseCollection"
REQUESTED_TOKEN = "RequestedSecurityToken"


@dataclass(frozen=True)
class Dialect:
    """Where SAML 2.0 and SAML 1.1 name the same things differently; the checks are the same."""

    namespace: str
    id_attribute: str
    audience_restriction: str
    name_id: str

    def tag(self, local: str) -> str:
        return q(self.namespace, local)

    def attribute_name(self, attribute: etree._Element) -> str | None:
        """An attribute's name; SAML 1.1 splits it into a namespace (a claim type's URI
        prefix, as AD FS sends) and a name, joined back here as the claim type."""
        if self.namespace == ASSERTION:
            return attribute.get("Name")
        name, namespace = attribute.get("AttributeName"), attribute.get("AttributeNamespace")
        return f"{namespace.rstrip('/')}/{name}" if name and namespace else name


SAML2 = Dialect(ASSERTION, "ID", "AudienceRestriction", "NameID")
SAML11 = Dialect(ASSERTION_11, "AssertionID", "AudienceRestrictionCondition", "NameIdentifier")


class SamlRejected(Exception):
    """The response is not acceptable; ``reason`` is for the admin's log, never the browser."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VerifierConfig:
    """What a response must match: this SP, and the one IdP the tenant trusts. For
    WS-Federation the SP's entity ID is the realm, and the ACS the ``wreply``."""

    sp_entity_id: str
    acs_url: str
    idp_entity_id: str
    certificates: tuple[x509.Certificate, ...]
    require_signed_assertion: bool = False
    name_id_format: str | None = None
    skew: timedelta = timedelta(seconds=90)


@dataclass(frozen=True)
class SignedTrees:
    """What signxml returned as signed, and whether the Response envelope was among it."""

    response: etree._Element
    """The signed Response, or the parsed one when it is unsigned (advisory only)."""
    assertion: etree._Element
    response_signed: bool


@dataclass(frozen=True)
class VerifiedAssertion:
    """What a verified assertion says, read only from signed XML."""

    issuer: str
    assertion_id: str
    name_id: str
    name_id_format: str | None
    attributes: dict[str, tuple[str, ...]]
    session_index: str | None
    in_response_to: str | None
    expires: datetime
    """When the assertion stops being usable: the replay cache may forget it after this."""


def consume_response(encoded: str, config: VerifierConfig, now: datetime) -> VerifiedAssertion:
    """Verify a posted ``SAMLResponse`` (base64); raise ``SamlRejected`` with the precise reason."""
    try:
        raw = decode_post(encoded, max_bytes=MAX_RESPONSE_BYTES)
    except ValueError as error:
        raise SamlRejected(f"SAMLResponse is not acceptable base64: {error}") from None
    try:
        root = parse_strict(raw, max_bytes=MAX_RESPONSE_BYTES)
    except XmlRejected as error:
        raise SamlRejected(f"unsafe or malformed XML: {error}") from None
    assertion = _check_shape(root)
    return _read_assertion(_verify_signatures(root, assertion, config), config, now)


def consume_wresult(wresult: str, config: VerifierConfig, now: datetime) -> VerifiedAssertion:
    """Verify a posted WS-Federation ``wresult`` (the XML of a WS-Trust
    RequestSecurityTokenResponse, February 2005 or 1.3) around a signed SAML 2.0 or 1.1
    assertion; raise ``SamlRejected`` with the precise reason. The assertion must be signed
    itself: the envelope never is."""
    try:
        root = parse_strict(wresult.encode(), max_bytes=MAX_RESPONSE_BYTES)
    except XmlRejected as error:
        raise SamlRejected(f"unsafe or malformed XML: {error}") from None
    location, assertion, dialect = _check_token_shape(root)
    signed = _verify_one(root, location, assertion, config, dialect)
    if dialect is SAML11:
        return _saml11_claims(signed, config, now)
    issuer = _issuer(signed, config)
    subject = _one(signed, q(ASSERTION, "Subject"), "Subject")
    _bearer_confirmation(subject, config, now, recipient_required=False)
    return _assertion_claims(signed, issuer, subject, config, now, in_response_to=None)


# -- 1. shape -------------------------------------------------------------------------------


def _check_shape(root: etree._Element) -> etree._Element:
    """Structure checks that make wrapping impossible; answers the one Assertion."""
    if root.tag != RESPONSE:
        raise SamlRejected(f"the document is not a SAML Response but {root.tag!r}")
    if root.get("Version") != "2.0":
        raise SamlRejected(f"unsupported SAML version {root.get('Version')!r}")
    _check_unique_ids(root)
    if next(root.iter(q(ASSERTION, "EncryptedAssertion")), None) is not None:
        raise SamlRejected("encrypted assertions are not supported")
    assertions = list(root.iter(ASSERTION_TAG))
    if len(assertions) != 1:
        raise SamlRejected(f"the response holds {len(assertions)} assertions, not exactly one")
    assertion = assertions[0]
    if assertion.getparent() is not root:
        raise SamlRejected("the assertion is not a direct child of the response")
    if not assertion.get("ID"):
        # Replay protection is keyed on the assertion ID: without one there is nothing to key.
        raise SamlRejected("the assertion has no ID")
    for signature in root.iter(SIGNATURE):
        if signature.getparent() not in (root, assertion):
            raise SamlRejected("a signature sits outside the response and the assertion")
    for owner in (root, assertion):
        if len(owner.findall(SIGNATURE)) > 1:
            raise SamlRejected("an element carries more than one signature")
    return assertion


def _check_token_shape(root: etree._Element) -> tuple[str, etree._Element, Dialect]:
    """The RSTR's structure, checked as a Response's is: one assertion, at the one place a
    token is carried, signed once, by a signature inside it; no ID twice. Answers the path
    signxml must find the signature at, and the assertion."""
    _check_unique_ids(root)
    trust = etree.QName(root).namespace
    if trust not in (TRUST_2005, TRUST_13):
        raise SamlRejected(f"the wresult is not a WS-Trust token response but {root.tag!r}")
    path = ""
    response = root
    if etree.QName(root).localname == RSTR_COLLECTION:
        responses = root.findall(q(trust, RSTR))
        if len(responses) != 1 or len(root) != 1:
            raise SamlRejected("the token response collection does not hold exactly one response")
        response, path = responses[0], f"{q(trust, RSTR)}/"
    elif etree.QName(root).localname != RSTR:
        raise SamlRejected(f"the wresult is not a token response but {root.tag!r}")
    if next(root.iter(q(ASSERTION, "EncryptedAssertion")), None) is not None:
        raise SamlRejected("encrypted assertions are not supported")
    tokens = response.findall(q(trust, REQUESTED_TOKEN))
    if len(tokens) != 1:
        raise SamlRejected(f"the token response carries {len(tokens)} tokens, not exactly one")
    assertions = [*root.iter(ASSERTION_TAG), *root.iter(SAML11.tag("Assertion"))]
    if len(assertions) != 1:
        raise SamlRejected(f"the wresult holds {len(assertions)} assertions, not exactly one")
    assertion = assertions[0]
    dialect = SAML2 if assertion.tag == ASSERTION_TAG else SAML11
    if assertion.getparent() is not tokens[0] or len(tokens[0]) != 1:
        raise SamlRejected("the assertion is not the one requested security token")
    if not assertion.get(dialect.id_attribute):
        raise SamlRejected("the assertion has no ID")
    signatures = list(root.iter(SIGNATURE))
    if len(signatures) != 1 or signatures[0].getparent() is not assertion:
        raise SamlRejected("the assertion is not signed, once, by a signature of its own")
    token = f"{q(trust, REQUESTED_TOKEN)}/{dialect.tag('Assertion')}"
    return f"./{path}{token}/", assertion, dialect


def _check_unique_ids(root: etree._Element) -> None:
    """No ID value twice, in any attribute signxml could resolve a reference against."""
    seen: set[str] = set()
    for element in root.iter(etree.Element):
        for name, value in element.attrib.items():
            if etree.QName(name).localname in ID_ATTRIBUTES:
                if value in seen:
                    raise SamlRejected(f"the ID {value!r} occurs more than once")
                seen.add(value)


# -- 2. signatures ----------------------------------------------------------------------------


def _verify_signatures(
    root: etree._Element, assertion: etree._Element, config: VerifierConfig
) -> SignedTrees:
    """The response and assertion as signxml returned them: the signed trees only."""
    response_signed = root.find(SIGNATURE) is not None
    assertion_signed = assertion.find(SIGNATURE) is not None
    if not (response_signed or assertion_signed):
        raise SamlRejected("nothing in the response is signed")
    if config.require_signed_assertion and not assertion_signed:
        raise SamlRejected("the assertion is not signed, and this tenant requires it")
    signed_response = _verify_one(root, "./", root, config) if response_signed else None
    if assertion_signed:
        signed_assertion = _verify_one(root, f"./{ASSERTION_TAG}/", assertion, config)
    else:
        assert signed_response is not None
        found = signed_response.findall(ASSERTION_TAG)
        if len(found) != 1:
            raise SamlRejected("the signed response does not hold exactly one assertion")
        signed_assertion = found[0]
    # An unsigned Response envelope is only advisory: its checks still run, on the parsed copy.
    return SignedTrees(
        response=signed_response if signed_response is not None else root,
        assertion=signed_assertion,
        response_signed=response_signed,
    )


def _verify_one(
    root: etree._Element,
    location: str,
    element: etree._Element,
    config: VerifierConfig,
    dialect: Dialect = SAML2,
) -> etree._Element:
    """Verify the signature at ``location`` against each pinned certificate (key rollover).

    This is the one boundary around signxml: a signature that does not verify against a
    certificate is tried against the next one; anything else signxml, lxml or cryptography
    raise (an empty SignatureValue, a KeyValue with an empty modulus, ...) is hostile or broken
    input, the same whichever certificate is tried, and refuses the response with its reason.
    """
    name = etree.QName(element).localname
    expected_id = element.get(dialect.id_attribute)
    if not expected_id:
        raise SamlRejected(f"the signed {name} has no ID")
    expect = SignatureConfiguration(
        require_x509=True,
        location=location,
        expect_references=1,
        signature_methods=SIGNATURE_METHODS,
        digest_algorithms=DIGEST_ALGORITHMS,
    )
    failures: list[str] = []
    for certificate in config.certificates:
        try:
            result = XMLVerifier().verify(
                root,
                parser=strict_parser(),
                x509_cert=certificate,
                expect_config=expect,
                # SAML 2.0 keeps signxml's own list (ID among them); 1.1 names its own.
                id_attribute=None if dialect is SAML2 else dialect.id_attribute,
            )
        except (InvalidSignature, InvalidCertificate, InvalidInput) as error:
            failures.append(str(error) or type(error).__name__)
            continue
        except Exception as error:  # any other library failure: hostile or broken input
            raise SamlRejected(
                f"the {name} signature is unreadable: {type(error).__name__}: {error}"
            ) from None
        assert not isinstance(result, list)
        references = result.signature_xml.findall(f"{q(DSIG, 'SignedInfo')}/{q(DSIG, 'Reference')}")
        signed = result.signed_xml
        if (
            len(references) != 1
            or references[0].get("URI") != f"#{expected_id}"
            or signed is None
            or signed.tag != element.tag
            or signed.get(dialect.id_attribute) != expected_id
        ):
            raise SamlRejected("the signature does not cover the element being consumed")
        return signed
    if not config.certificates:
        failures.append("no certificate is pinned")
    raise SamlRejected(f"the {name} signature does not verify: {'; '.join(failures)}")


# -- 3. what the signed XML says -------------------------------------------------------------


def _read_assertion(
    signed: SignedTrees, config: VerifierConfig, now: datetime
) -> VerifiedAssertion:
    response, assertion = signed.response, signed.assertion
    issuer = _issuer(assertion, config)
    response_issuer = response.find(q(ASSERTION, "Issuer"))
    if response_issuer is not None and (response_issuer.text or "").strip() != issuer:
        raise SamlRejected("the response and the assertion name different issuers")
    status = response.find(f"{q(PROTOCOL, 'Status')}/{q(PROTOCOL, 'StatusCode')}")
    if status is None or status.get("Value") != STATUS_SUCCESS:
        code = None if status is None else status.get("Value")
        raise SamlRejected(f"the IdP answered with status {code!r}")
    destination = response.get("Destination")
    if destination is not None and destination != config.acs_url:
        raise SamlRejected(f"the response is addressed to {destination!r}, not this ACS")
    # signxml's signed tree no longer holds the enveloped Signature: ask what was verified.
    if destination is None and signed.response_signed:
        raise SamlRejected("a signed response must name its Destination")

    subject = _one(assertion, q(ASSERTION, "Subject"), "Subject")
    confirmation = _bearer_confirmation(subject, config, now, recipient_required=True)
    assert confirmation is not None
    response_irt = response.get("InResponseTo")
    subject_irt = confirmation.get("InResponseTo")
    if response_irt and subject_irt and response_irt != subject_irt:
        raise SamlRejected("the response and its subject answer different requests")
    if response_irt and response_irt != subject_irt and not signed.response_signed:
        # Anyone can write an unsigned envelope: it must not turn an unsolicited assertion
        # into the answer to a request this SP issued.
        raise SamlRejected(
            f"the unsigned response's InResponseTo {response_irt!r} is not vouched for "
            "by the signed assertion"
        )
    verified = _assertion_claims(
        assertion, issuer, subject, config, now, in_response_to=response_irt or subject_irt
    )
    confirmation_end = _instant(confirmation, "NotOnOrAfter") + config.skew
    return replace(verified, expires=min(verified.expires, confirmation_end))


def _issuer(assertion: etree._Element, config: VerifierConfig) -> str:
    """The assertion's issuer (an element in SAML 2.0, an attribute in 1.1), which must be the
    tenant's IdP."""
    if assertion.tag == ASSERTION_TAG:
        issuer = _text(assertion, q(ASSERTION, "Issuer"))
    else:
        issuer = (assertion.get("Issuer") or "").strip()
    if issuer != config.idp_entity_id:
        raise SamlRejected(
            f"the assertion's issuer {issuer!r} is not this tenant's IdP {config.idp_entity_id!r}"
        )
    return issuer


def _assertion_claims(
    assertion: etree._Element,
    issuer: str,
    subject: etree._Element,
    config: VerifierConfig,
    now: datetime,
    in_response_to: str | None,
) -> VerifiedAssertion:
    """What a signed assertion of ``issuer`` says once its conditions (audience, validity
    window), authentication statement and subject are checked; usable until its window ends."""
    conditions_end = _check_conditions(assertion, config, now)
    session_index = _check_authn_statement(assertion, now)
    name_id, name_format = _name_id(subject, config)
    return VerifiedAssertion(
        issuer=issuer,
        assertion_id=str(assertion.get("ID")),
        name_id=name_id,
        name_id_format=name_format,
        attributes=_attributes(assertion),
        session_index=session_index,
        in_response_to=in_response_to,
        expires=conditions_end + config.skew,
    )


def _saml11_claims(
    assertion: etree._Element, config: VerifierConfig, now: datetime
) -> VerifiedAssertion:
    """What a signed SAML 1.1 assertion says, checked as a 2.0 one is: the issuer, the window
    and audience, one authentication statement; every statement's subject (1.1 repeats it in
    each) confirmed as bearer and naming the same person."""
    if (assertion.get("MajorVersion"), assertion.get("MinorVersion")) != ("1", "1"):
        raise SamlRejected("the SAML 1.x assertion is not version 1.1")
    issuer = _issuer(assertion, config)
    conditions_end = _check_conditions(assertion, config, now, SAML11)
    authentications = assertion.findall(SAML11.tag("AuthenticationStatement"))
    if len(authentications) != 1:
        raise SamlRejected(
            f"the assertion has {len(authentications)} AuthenticationStatements, not one"
        )
    statements = [*assertion.findall(SAML11.tag("AttributeStatement")), *authentications]
    subjects = [_one(statement, SAML11.tag("Subject"), "Subject") for statement in statements]
    for subject in subjects:
        methods = [
            (method.text or "").strip()
            for method in subject.iterfind(
                f"{SAML11.tag('SubjectConfirmation')}/{SAML11.tag('ConfirmationMethod')}"
            )
        ]
        if BEARER_11 not in methods:
            raise SamlRejected(f"no bearer subject confirmation: the methods are {methods!r}")
    names = {_name_id(subject, config, SAML11) for subject in subjects}
    if len(names) != 1:
        raise SamlRejected("the assertion's statements are about different subjects")
    [(name_id, name_format)] = names
    return VerifiedAssertion(
        issuer=issuer,
        assertion_id=str(assertion.get(SAML11.id_attribute)),
        name_id=name_id,
        name_id_format=name_format,
        attributes=_attributes(assertion, SAML11),
        session_index=None,
        in_response_to=None,
        expires=conditions_end + config.skew,
    )


def _bearer_confirmation(
    subject: etree._Element, config: VerifierConfig, now: datetime, *, recipient_required: bool
) -> etree._Element | None:
    """The first bearer SubjectConfirmationData meant for this ACS and valid now.

    A WS-Federation token (``recipient_required`` false) may carry a bare bearer confirmation,
    as Entra ID's do: its window is then the conditions'; a data element it does carry must
    still be for this SP (its ``wreply``) and valid now. None: a bare one was accepted."""
    problems: list[str] = []
    for confirmation in subject.findall(q(ASSERTION, "SubjectConfirmation")):
        if confirmation.get("Method") != BEARER:
            problems.append(f"method {confirmation.get('Method')!r} is not bearer")
            continue
        data = confirmation.find(q(ASSERTION, "SubjectConfirmationData"))
        if data is None:
            if not recipient_required:
                return None
            problems.append("no SubjectConfirmationData")
            continue
        if data.get("Recipient") != config.acs_url and (
            recipient_required or data.get("Recipient") is not None
        ):
            problems.append(f"recipient {data.get('Recipient')!r} is not this ACS")
            continue
        if data.get("NotOnOrAfter") is None:
            problems.append("no NotOnOrAfter")
            continue
        if _instant(data, "NotOnOrAfter") <= now - config.skew:
            problems.append("the subject confirmation has expired")
            continue
        if data.get("NotBefore") is not None and _instant(data, "NotBefore") > now + config.skew:
            problems.append("the subject confirmation is not valid yet")
            continue
        return data
    raise SamlRejected(
        "no usable bearer subject confirmation: " + ("; ".join(problems) or "there is none")
    )


def _check_conditions(
    assertion: etree._Element, config: VerifierConfig, now: datetime, dialect: Dialect = SAML2
) -> datetime:
    """The validity window and the audience; answers the end of the window."""
    conditions = _one(assertion, dialect.tag("Conditions"), "Conditions")
    if conditions.get("NotOnOrAfter") is None:
        raise SamlRejected("the conditions have no NotOnOrAfter")
    end = _instant(conditions, "NotOnOrAfter")
    if end <= now - config.skew:
        raise SamlRejected(f"the assertion expired at {end.isoformat()}")
    if (
        conditions.get("NotBefore") is not None
        and _instant(conditions, "NotBefore") > now + config.skew
    ):
        raise SamlRejected("the assertion is not valid yet")
    restrictions = conditions.findall(dialect.tag(dialect.audience_restriction))
    if not restrictions:
        raise SamlRejected("the assertion names no audience")
    for restriction in restrictions:
        audiences = [(a.text or "").strip() for a in restriction.findall(dialect.tag("Audience"))]
        if config.sp_entity_id not in audiences:
            raise SamlRejected(f"the assertion is for {audiences!r}, not {config.sp_entity_id!r}")
    return end


def _check_authn_statement(assertion: etree._Element, now: datetime) -> str | None:
    statements = assertion.findall(q(ASSERTION, "AuthnStatement"))
    if len(statements) != 1:
        raise SamlRejected(f"the assertion has {len(statements)} AuthnStatements, not one")
    statement = statements[0]
    # No skew here: the IdP has said its session is over, which is not a clock question.
    if (
        statement.get("SessionNotOnOrAfter") is not None
        and _instant(statement, "SessionNotOnOrAfter") <= now
    ):
        raise SamlRejected("the IdP session has already ended (SessionNotOnOrAfter)")
    return statement.get("SessionIndex")


def _name_id(
    subject: etree._Element, config: VerifierConfig, dialect: Dialect = SAML2
) -> tuple[str, str | None]:
    name_ids = subject.findall(dialect.tag(dialect.name_id))
    if len(name_ids) != 1:
        raise SamlRejected(f"the subject has {len(name_ids)} NameIDs, not one")
    name_id = name_ids[0]
    if len(name_id):
        raise SamlRejected("the NameID has child elements")
    value = (name_id.text or "").strip()
    if not value:
        raise SamlRejected("the NameID is empty")
    name_format = name_id.get("Format")
    if config.name_id_format and name_format != config.name_id_format:
        raise SamlRejected(f"the NameID format {name_format!r} is not {config.name_id_format!r}")
    if name_format == EMAIL and value.count("@") != 1:
        raise SamlRejected("the NameID is in email format but is not an email address")
    return value, name_format


def _attributes(assertion: etree._Element, dialect: Dialect = SAML2) -> dict[str, tuple[str, ...]]:
    attributes: dict[str, tuple[str, ...]] = {}
    for attribute in _attribute_elements(assertion, dialect):
        name = dialect.attribute_name(attribute)
        if not name:
            raise SamlRejected("an attribute has no Name")
        values = attribute.findall(dialect.tag("AttributeValue"))
        if len(values) > MAX_ATTRIBUTE_VALUES:
            raise SamlRejected(f"attribute {name!r} has too many values")
        texts: list[str] = []
        for value in values:
            if len(value):
                raise SamlRejected(f"a value of attribute {name!r} is not plain text")
            text = (value.text or "").strip()
            if len(text) > MAX_VALUE_LENGTH:
                raise SamlRejected(f"a value of attribute {name!r} is too long")
            texts.append(text)
        attributes[name] = attributes.get(name, ()) + tuple(texts)
        if len(attributes) > MAX_ATTRIBUTES:
            raise SamlRejected("the assertion has too many attributes")
    return attributes


def _attribute_elements(assertion: etree._Element, dialect: Dialect) -> Iterator[etree._Element]:
    for statement in assertion.findall(dialect.tag("AttributeStatement")):
        yield from statement.findall(dialect.tag("Attribute"))


def _one(parent: etree._Element, tag: str, name: str) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise SamlRejected(f"the assertion has {len(found)} {name} elements, not one")
    return found[0]


def _text(parent: etree._Element, tag: str) -> str:
    element = parent.find(tag)
    return "" if element is None else (element.text or "").strip()


def _instant(element: etree._Element, attribute: str) -> datetime:
    raw = element.get(attribute)
    try:
        return parse_instant(raw or "")
    except ValueError:
        raise SamlRejected(f"{attribute} {raw!r} is not a UTC instant") from None
