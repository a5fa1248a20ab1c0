"""idp_sim.saml: Okta/JumpCloud-shaped signed responses, their acceptance by independent verifiers
(signxml with a pinned cert and location, python3-saml), and the tampering variants."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lxml import etree
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from signxml import XMLVerifier
from signxml.exceptions import InvalidSignature

from idp_sim.directory import DirectoryUser
from idp_sim.saml import (
    IdentityProvider,
    IdpShape,
    SamlSubject,
    ServiceProvider,
    jumpcloud,
    okta,
    signed_response,
)
from idp_sim.saml.tampering import VARIANTS, impersonated, variants
from samlkit.bindings import decode_post
from samlkit.certs import SigningKey, certificate_b64
from samlkit.metadata import parse_idp_metadata
from samlkit.namespaces import (
    ASSERTION,
    BEARER,
    DSIG,
    EMAIL,
    ENTITY,
    PASSWORD_PROTECTED_TRANSPORT,
    PROTOCOL,
    STATUS_SUCCESS,
    XSI,
    q,
)
from samlkit.timefmt import format_instant, parse_instant
from samlkit.xml import XmlRejected, parse_strict

SP = ServiceProvider(
    "https://sp.example.test/sso/acme/saml/metadata", "https://sp.example.test/sso/acme/saml/acs"
)
SUBJECT = SamlSubject(
    login="jdoe@example.com",
    email="jdoe@example.com",
    first_name="Jane",
    last_name="Doe",
    user_id="00u1abcdefghijklmno",
    groups=("Engineering", "Everyone"),
)
NOW = datetime(2026, 11, 23, 13, 53, 49, 123456, tzinfo=UTC)
NS = {"p": PROTOCOL, "a": ASSERTION, "ds": DSIG}
ASSERTION_SIGNATURE = f"./{{{ASSERTION}}}Assertion/"


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("idp-sim-test")


@pytest.fixture(scope="module")
def attacker() -> SigningKey:
    return SigningKey.generate("not-the-idp")


def _doc(b64: str) -> etree._Element:
    return parse_strict(decode_post(b64))


def _response(shape: IdpShape, key: SigningKey, **kwargs: Any) -> etree._Element:
    return _doc(IdentityProvider(shape, key).response_b64(SUBJECT, SP, **kwargs))


def _names(element: etree._Element) -> list[str]:
    return [etree.QName(child).localname for child in element]


# --- shapes -----------------------------------------------------------------------------------


def test_okta_shape_uses_oktas_urls_issuer_and_defaults() -> None:
    shape = okta("my_app", "exk123")
    assert shape.entity_id == "http://www.okta.com/exk123"
    assert shape.sso_path == "/app/my_app/exk123/sso/saml"
    assert shape.metadata_path == "/app/exk123/sso/saml/metadata"
    assert (shape.sign_response, shape.sign_assertion) == (True, True)
    assert dict(shape.attributes) == {
        "email": "email",
        "firstName": "first_name",
        "lastName": "last_name",
    }
    assert shape.groups_attribute == "groups"
    assert shape.validity == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("sign", "response", "assertion"),
    [("assertion", False, True), ("response", True, False), ("both", True, True)],
)
def test_jumpcloud_shape_signs_what_the_admin_chose(
    sign: Any, response: bool, assertion: bool
) -> None:
    shape = jumpcloud("acme", sign=sign)
    assert (shape.entity_id, shape.sso_path, shape.metadata_path) == (
        "JumpCloud",
        "/saml2/acme",
        "/saml2/acme/metadata",
    )
    assert (shape.sign_response, shape.sign_assertion) == (response, assertion)
    assert set(shape.attributes) == {"email", "firstname", "lastname"}
    assert shape.groups_attribute == "memberOf"


def test_subject_from_directory_user_describes_the_same_person() -> None:
    user = DirectoryUser(
        id="00u9",
        login="ann@example.com",
        given_name="Ann",
        family_name="Lee",
        email="ann.lee@example.com",
    )
    assert SamlSubject.from_directory(user, ["Sales"]) == SamlSubject(
        "ann@example.com", "ann.lee@example.com", "Ann", "Lee", "00u9", ("Sales",)
    )


# --- response layout --------------------------------------------------------------------------


def test_okta_response_follows_oktas_layout_element_by_element(key: SigningKey) -> None:
    root = _response(okta(), key, in_response_to="_req1", now=NOW)
    assert root.prefix == "saml2p"
    assert _names(root) == ["Issuer", "Signature", "Status", "Assertion"]
    assert re.fullmatch(r"id\d{25}", root.get("ID"))
    assert root.get("IssueInstant") == "2026-11-23T13:53:49.123Z"
    assert (root.get("Version"), root.get("Destination"), root.get("InResponseTo")) == (
        "2.0",
        SP.acs_url,
        "_req1",
    )
    issuer = root.find(q(ASSERTION, "Issuer"))
    assert (issuer.prefix, issuer.get("Format"), issuer.text) == (
        "saml2",
        ENTITY,
        "http://www.okta.com/exk4x6wko7PcvdVq80x6",
    )
    assert root.find("p:Status/p:StatusCode", NS).get("Value") == STATUS_SUCCESS

    assertion = root.find("a:Assertion", NS)
    assert re.fullmatch(r"id\d{25}", assertion.get("ID")) and assertion.get("ID") != root.get("ID")
    assert _names(assertion) == [
        "Issuer",
        "Signature",
        "Subject",
        "Conditions",
        "AuthnStatement",
        "AttributeStatement",
    ]
    name_id = assertion.find("a:Subject/a:NameID", NS)
    assert (name_id.text, name_id.get("Format")) == ("jdoe@example.com", EMAIL)
    confirmation = assertion.find("a:Subject/a:SubjectConfirmation", NS)
    assert confirmation.get("Method") == BEARER
    data = confirmation.find("a:SubjectConfirmationData", NS)
    assert dict(data.attrib) == {
        "InResponseTo": "_req1",
        "NotOnOrAfter": "2026-11-23T13:58:49.123Z",
        "Recipient": SP.acs_url,
    }
    conditions = assertion.find("a:Conditions", NS)
    assert (conditions.get("NotBefore"), conditions.get("NotOnOrAfter")) == (
        "2026-11-23T13:48:49.123Z",
        "2026-11-23T13:58:49.123Z",
    )
    assert [a.text for a in conditions.iterfind("a:AudienceRestriction/a:Audience", NS)] == [
        SP.entity_id
    ]
    authn = assertion.find("a:AuthnStatement", NS)
    assert authn.get("SessionIndex") == "_req1"
    assert authn.get("AuthnInstant") == "2026-11-23T13:53:49.123Z"
    assert authn.findtext("a:AuthnContext/a:AuthnContextClassRef", namespaces=NS) == (
        PASSWORD_PROTECTED_TRANSPORT
    )
    attributes = {
        a.get("Name"): [v.text for v in a]
        for a in assertion.iterfind("a:AttributeStatement/a:Attribute", NS)
    }
    assert attributes == {
        "email": ["jdoe@example.com"],
        "firstName": ["Jane"],
        "lastName": ["Doe"],
        "groups": ["Engineering", "Everyone"],
    }
    values = assertion.iterfind("a:AttributeStatement/a:Attribute/a:AttributeValue", NS)
    assert {v.get(q(XSI, "type")) for v in values} == {"xs:string"}


def test_jumpcloud_response_uses_its_prefixes_ids_and_one_signature(key: SigningKey) -> None:
    root = _response(jumpcloud(), key)
    assert (root.prefix, root.find("a:Assertion", NS).prefix) == ("samlp", "saml")
    assert re.fullmatch(r"_[0-9a-f]{32}", root.get("ID"))
    assert root.get("InResponseTo") is None
    assert _names(root) == ["Issuer", "Status", "Assertion"]
    assert _names(root.find("a:Assertion", NS))[:3] == ["Issuer", "Signature", "Subject"]
    assert root.findtext("a:Issuer", namespaces=NS) == "JumpCloud"
    assert (
        root.find("a:Assertion/a:AttributeStatement/a:Attribute[@Name='memberOf']", NS) is not None
    )


def test_signatures_are_rsa_sha256_exc_c14n_referencing_their_own_id_with_the_cert(
    key: SigningKey,
) -> None:
    root = _response(okta(), key)
    for signed in (root, root.find("a:Assertion", NS)):
        signature = signed.find("ds:Signature", NS)
        info = signature.find("ds:SignedInfo", NS)
        assert info.find("ds:SignatureMethod", NS).get("Algorithm").endswith("#rsa-sha256")
        assert info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == (
            "http://www.w3.org/2001/10/xml-exc-c14n#"
        )
        references = info.findall("ds:Reference", NS)
        assert [r.get("URI") for r in references] == ["#" + signed.get("ID")]
        assert [
            t.get("Algorithm").rsplit("#", 1)[1]
            for t in references[0].iterfind("ds:Transforms/ds:Transform", NS)
        ] == ["enveloped-signature", ""]
        assert references[0].find("ds:DigestMethod", NS).get("Algorithm").endswith("#sha256")
        assert signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS) == (
            certificate_b64(key.certificate)
        )
    assert b"InclusiveNamespaces" not in etree.tostring(root)


def test_optional_parts_follow_the_subject_and_shape(key: SigningKey) -> None:
    no_groups = replace(SUBJECT, groups=(), last_name="")
    shape = okta(name_id_source="id", groups_attribute=None)
    root = _doc(IdentityProvider(shape, key).response_b64(no_groups, SP, session_index="s-1"))
    assertion = root.find("a:Assertion", NS)
    assert assertion.findtext("a:Subject/a:NameID", namespaces=NS) == SUBJECT.user_id
    assert assertion.find("a:AuthnStatement", NS).get("SessionIndex") == "s-1"
    names = [a.get("Name") for a in assertion.iterfind("a:AttributeStatement/a:Attribute", NS)]
    assert names == ["email", "firstName"]


def test_now_is_injectable_so_documents_never_expire_in_tests(key: SigningKey) -> None:
    past = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    root = _response(jumpcloud(), key, now=past)
    assert parse_instant(root.get("IssueInstant")) == past
    before = datetime.now(UTC)
    fresh = parse_instant(_response(jumpcloud(), key).get("IssueInstant"))
    assert before - timedelta(milliseconds=1) <= fresh <= datetime.now(UTC)


# --- independent verification -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "locations"),
    [
        (okta(), ["./", ASSERTION_SIGNATURE]),
        (jumpcloud(), [ASSERTION_SIGNATURE]),
        (jumpcloud(sign="response"), ["./"]),
        (jumpcloud(sign="both"), ["./", ASSERTION_SIGNATURE]),
    ],
    ids=["okta", "jumpcloud-assertion", "jumpcloud-response", "jumpcloud-both"],
)
def test_signxml_verifies_each_signature_at_its_pinned_place(
    key: SigningKey, attacker: SigningKey, shape: IdpShape, locations: list[str]
) -> None:
    xml = decode_post(signed_response(SUBJECT, SP, shape=shape, key=key, now=NOW))
    root = parse_strict(xml)
    for location in locations:
        result = XMLVerifier().verify(xml, x509_cert=key.certificate, location=location)
        expected = root if location == "./" else root.find("a:Assertion", NS)
        assert result.signed_xml.get("ID") == expected.get("ID")
        with pytest.raises(InvalidSignature):
            XMLVerifier().verify(xml, x509_cert=attacker.certificate, location=location)


def test_metadata_xml_describes_this_idp(key: SigningKey) -> None:
    shape = okta()
    parsed = parse_idp_metadata(IdentityProvider(shape, key).metadata_xml("http://127.0.0.1:8900/"))
    assert parsed.entity_id == shape.entity_id
    assert parsed.sso_url == "http://127.0.0.1:8900" + shape.sso_path
    assert parsed.certificates == (key.certificate,)
    assert parsed.name_id_formats == (EMAIL,)


def _python3_saml(
    shape: IdpShape, key: SigningKey, b64: str, request_id: str | None, *, want_signed: bool = True
) -> OneLogin_Saml2_Response:
    """python3-saml in strict mode, configured as an SP would be for this IdP app.

    ``want_signed=False`` drops its "this part must be signed" policy so that a refusal can only
    come from its own signature, structure and condition checks.
    """
    settings = OneLogin_Saml2_Settings(
        {
            "strict": True,
            "sp": {"entityId": SP.entity_id, "assertionConsumerService": {"url": SP.acs_url}},
            "idp": {
                "entityId": shape.entity_id,
                "singleSignOnService": {"url": "https://idp.example.test" + shape.sso_path},
                "x509cert": certificate_b64(key.certificate),
            },
            "security": {
                "wantAssertionsSigned": want_signed and shape.sign_assertion,
                "wantMessagesSigned": want_signed and shape.sign_response,
            },
        },
        sp_validation_only=True,
    )
    response = OneLogin_Saml2_Response(settings, b64)
    # The ACS request as python3-saml sees it: its Destination/Recipient checks use this URL.
    request = {
        "https": "on",
        "http_host": "sp.example.test",  # the port, when not the scheme's own, goes here
        "script_name": "/sso/acme/saml/acs",
    }
    response.is_valid(request, request_id=request_id)
    return response


@pytest.mark.parametrize(
    "shape",
    [okta(), jumpcloud(), jumpcloud(sign="response"), jumpcloud(entity_id="https://jc.example/x")],
    ids=["okta", "jumpcloud-assertion", "jumpcloud-response", "jumpcloud-url-issuer"],
)
@pytest.mark.parametrize("request_id", ["_sp-initiated-0001", None], ids=["sp", "idp"])
def test_python3_saml_accepts_our_responses(
    key: SigningKey, shape: IdpShape, request_id: str | None
) -> None:
    # python3-saml checks times against the real clock, so this response is built "now".
    b64 = signed_response(SUBJECT, SP, shape=shape, key=key, in_response_to=request_id)
    response = _python3_saml(shape, key, b64, request_id)
    assert response.get_error() is None
    assert response.get_nameid() == "jdoe@example.com"
    email, first, _ = shape.attributes
    assert response.get_attributes()[email] == ["jdoe@example.com"]
    assert response.get_attributes()[first] == ["Jane"]
    assert response.get_attributes()[shape.groups_attribute] == ["Engineering", "Everyone"]


@pytest.mark.parametrize(
    ("variant", "error"),
    [
        ("unsigned", "No Signature found"),
        ("wrong_key", "Signature validation failed"),
        ("wrap_evil_first", "must contain 1 assertion"),
        ("wrap_copied_signature", "must contain 1 assertion"),
        ("wrap_response", "must contain 1 assertion"),
        ("tampered_attribute", "Signature validation failed"),
        ("expired", "expired"),
        ("wrong_audience", "not a valid audience"),
    ],
)
def test_python3_saml_refuses_tampered_responses(key: SigningKey, variant: str, error: str) -> None:
    shape = okta()
    b64 = VARIANTS[variant].build(
        IdentityProvider(shape, key), SUBJECT, SP, datetime.now(UTC), None
    )
    refused = _python3_saml(shape, key, b64, None, want_signed=False)
    assert error in (refused.get_error() or "")


# --- tampering --------------------------------------------------------------------------------


REQUIRED_VARIANTS = {
    "unsigned",
    "assertion_signature_stripped",
    "response_only_signed",
    "wrong_key",
    "key_value_mismatch",
    "tampered_attribute",
    "tampered_name_id",
    "tampered_status",
    "hmac_confusion",
    "rsa_sha1_signature",
    "sha1_digest",
    "reference_uri_empty",
    "reference_to_other_element",
    "two_references",
    "wrong_issuer",
    "response_issuer_mismatch",
    "expired",
    "not_yet_valid",
    "subject_confirmation_expired",
    "conditions_without_not_on_or_after",
    "subject_confirmation_without_not_on_or_after",
    "timestamps_without_timezone",
    "session_not_on_or_after_past",
    "wrong_audience",
    "extra_audience_restriction",
    "wrong_recipient",
    "wrong_destination",
    "in_response_to_mismatch",
    "unknown_in_response_to",
    "non_bearer_confirmation",
    "two_signed_assertions",
    "assertion_not_direct_child",
    "encrypted_assertion",
    "wrong_root",
    "wrong_version",
    "duplicate_ids",
    "oversized",
    "bad_base64",
    "status_responder",
    "wrap_evil_first",
    "wrap_same_id",
    "wrap_in_signature_object",
    "wrap_copied_signature",
    "wrap_response",
    "wrap_okta",
    "signature_moved_into_assertion",
    "comment_in_name_id",
    "comment_in_attribute",
    "comment_in_digest_value",
    "comment_in_signature_value",
    "processing_instruction",
    "xxe_file_entity",
    "external_dtd",
    "parameter_entity",
    "xinclude",
    "billion_laughs",
}


def test_tampering_covers_every_listed_attack_with_a_description() -> None:
    assert set(VARIANTS) >= REQUIRED_VARIANTS
    for name, variant in VARIANTS.items():
        assert variant.name == name
        assert variant.description and "\n" not in variant.description


@pytest.mark.parametrize("shape", [okta(), jumpcloud()], ids=["okta", "jumpcloud"])
def test_every_variant_builds_for_both_shapes(key: SigningKey, shape: IdpShape) -> None:
    idp = IdentityProvider(shape, key)
    for name, variant in VARIANTS.items():
        b64 = variant.build(idp, SUBJECT, SP, NOW, "_req1")
        assert isinstance(b64, str) and b64, name


def _verify_naively(xml: bytes, key: SigningKey) -> etree._Element:
    """What a naive SP does: verify the first signature found anywhere, then read the posted doc."""
    XMLVerifier().verify(xml, x509_cert=key.certificate)
    return etree.fromstring(xml)


@pytest.mark.parametrize(
    "variant",
    [
        "wrap_evil_first",
        "wrap_in_signature_object",
        "wrap_copied_signature",
        "wrap_response",
        "wrap_okta",
    ],
)
def test_wrapping_variants_would_fool_a_naive_verifier(key: SigningKey, variant: str) -> None:
    b64 = VARIANTS[variant].build(IdentityProvider(okta(), key), SUBJECT, SP, NOW, None)
    posted = _verify_naively(decode_post(b64), key)
    assert posted.findtext("a:Assertion/a:Subject/a:NameID", namespaces=NS) == (
        impersonated(SUBJECT).email
    )


@pytest.mark.parametrize("variant", ["comment_in_name_id", "comment_in_attribute"])
def test_comment_injection_keeps_the_signature_valid_but_splits_the_text(
    key: SigningKey, variant: str
) -> None:
    xml = decode_post(
        VARIANTS[variant].build(IdentityProvider(jumpcloud(), key), SUBJECT, SP, NOW, None)
    )
    with pytest.raises(XmlRejected, match="comments"):
        parse_strict(xml)
    signed = XMLVerifier().verify(xml, x509_cert=key.certificate, location=ASSERTION_SIGNATURE)
    path = "a:Subject/a:NameID" if variant == "comment_in_name_id" else ".//a:AttributeValue"
    assert signed.signed_xml.find(path, NS).text == "jdoe@example.com.evil.test"
    assert etree.fromstring(xml).find(f"a:Assertion/{path}", NS).text == "jdoe@example.com"


@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ("xxe_file_entity", "DTD"),
        ("external_dtd", "DTD"),
        ("parameter_entity", "DTD"),
        ("billion_laughs", "amplification|DTD"),
        ("processing_instruction", "processing instructions"),
        ("comment_in_digest_value", "comments"),
        ("comment_in_signature_value", "comments"),
    ],
)
def test_parser_level_variants_are_refused_by_the_strict_parser(
    key: SigningKey, variant: str, reason: str
) -> None:
    xml = decode_post(
        VARIANTS[variant].build(IdentityProvider(okta(), key), SUBJECT, SP, NOW, None)
    )
    with pytest.raises(XmlRejected, match=reason):
        parse_strict(xml)


def test_network_and_file_variants_use_the_given_probe_url_and_path(key: SigningKey) -> None:
    custom = variants(probe_url="http://127.0.0.1:4321/probe", file_path="/tmp/fifo")
    idp = IdentityProvider(okta(), key)
    probing = {name: v for name, v in custom.items() if v.tags & {"network", "file"}}
    assert {"xxe_file_entity", "external_dtd", "parameter_entity", "xinclude"} <= set(probing)
    for name, variant in probing.items():
        xml = decode_post(variant.build(idp, SUBJECT, SP, NOW, None), max_bytes=10**6)
        if "network" in variant.tags:
            assert b"http://127.0.0.1:4321/probe" in xml, name
        if "file" in variant.tags:
            assert b'SYSTEM "file:///tmp/fifo"' in xml, name


def test_time_and_size_variants_break_what_they_claim(key: SigningKey) -> None:
    idp = IdentityProvider(jumpcloud(), key)

    def build(name: str) -> etree._Element:
        return parse_strict(
            decode_post(VARIANTS[name].build(idp, SUBJECT, SP, NOW, None), max_bytes=10**6),
            max_bytes=10**6,
        )

    expired = build("expired").find("a:Assertion/a:Conditions", NS)
    assert parse_instant(expired.get("NotOnOrAfter")) < NOW - timedelta(minutes=50)
    scd = build("subject_confirmation_expired").find(".//a:SubjectConfirmationData", NS)
    assert parse_instant(scd.get("NotOnOrAfter")) == parse_instant(format_instant(NOW)) - timedelta(
        minutes=10
    )
    assert build("timestamps_without_timezone").get("IssueInstant") == "2026-11-23T13:53:49.123"
    oversized = VARIANTS["oversized"].build(idp, SUBJECT, SP, NOW, None)
    with pytest.raises(ValueError, match="larger than"):
        decode_post(oversized)
    with pytest.raises(ValueError, match="not base64"):
        decode_post(VARIANTS["bad_base64"].build(idp, SUBJECT, SP, NOW, None))
