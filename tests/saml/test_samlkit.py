"""samlkit: the hardened parser, timestamps, both bindings, AuthnRequests, metadata and certs."""

from __future__ import annotations

import base64
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization

from samlkit.authn_request import (
    AuthnRequest,
    build_authn_request,
    new_request_id,
    parse_authn_request,
)
from samlkit.bindings import decode_post, decode_redirect, encode_post, encode_redirect, post_form
from samlkit.certs import (
    SigningKey,
    certificate_b64,
    certificate_pem,
    fingerprint_sha256,
    load_certificate,
)
from samlkit.metadata import idp_metadata, parse_idp_metadata, sp_metadata
from samlkit.namespaces import EMAIL, HTTP_POST, METADATA, PERSISTENT, UNSPECIFIED_11, q
from samlkit.timefmt import format_instant, parse_instant
from samlkit.xml import XmlRejected, parse_strict, to_bytes


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("samlkit-test-idp")


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.generate("samlkit-rollover")


# --- parse_strict ---------------------------------------------------------------------------------


def test_parse_strict_reads_plain_namespaced_xml() -> None:
    root = parse_strict(b'<?xml version="1.0" encoding="UTF-8"?>\n<a:r xmlns:a="u:x"><a:c/></a:r>')
    assert root.tag == "{u:x}r"
    assert len(root) == 1


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', "DTD"),
        (b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', "DTD"),
        (b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r/>', "DTD"),
        (b'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p"> %p;]><r/>', "DTD"),
        (b"<r>a<!---->b</r>", "comments"),
        (b"<!-- before --><r/>", "comments"),
        (b"<r/><!-- after -->", "comments"),
        (b"<r><?pi data?></r>", "processing instructions"),
        (b'<?xml version="1.0"?><?xml-stylesheet href="x"?><r/>', "processing instructions"),
        (b"<r><unclosed></r>", "malformed"),
        ("<r>caf\u00e9</r>".encode("latin-1"), "UTF-8"),
        (b"", "malformed"),
    ],
)
def test_parse_strict_refuses_dtds_entities_comments_pis_and_garbage(
    document: bytes, reason: str
) -> None:
    with pytest.raises(XmlRejected, match=reason):
        parse_strict(document)


def test_parse_strict_refuses_billion_laughs_without_expanding() -> None:
    levels = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    ]
    bomb = f"<!DOCTYPE r [{''.join(levels)}]><r>&l9;</r>".encode()
    # libxml2 counts what the entities would amplify to even though none is resolved, and
    # refuses at its cap: the 3 GB the bomb stands for are never materialised.
    with pytest.raises(XmlRejected, match=r"amplification|DTDs are not allowed"):
        parse_strict(bomb)


def test_parse_strict_refuses_documents_over_the_size_limit() -> None:
    document = b"<r>" + b"a" * 2000 + b"</r>"
    assert parse_strict(document, max_bytes=len(document)).text == "a" * 2000
    with pytest.raises(XmlRejected, match="larger than"):
        parse_strict(document, max_bytes=len(document) - 1)


def test_parse_strict_never_processes_xinclude(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    document = (
        f'<r xmlns:xi="http://www.w3.org/2001/XInclude">'
        f'<xi:include href="{secret}" parse="text"/></r>'
    ).encode()
    root = parse_strict(document)
    assert b"TOP-SECRET" not in to_bytes(root)
    assert root[0].tag == "{http://www.w3.org/2001/XInclude}include"


def test_parse_strict_can_drop_comments_for_metadata_only() -> None:
    root = parse_strict(b"<r><!-- exported by a federation tool --><c/></r>", allow_comments=True)
    assert [child.tag for child in root] == ["c"]


def test_to_bytes_writes_a_utf8_declaration() -> None:
    assert to_bytes(parse_strict("<r>é</r>".encode())) == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<r>\xc3\xa9</r>'
    )


# --- timefmt ----------------------------------------------------------------------------------


def test_format_instant_is_utc_with_milliseconds() -> None:
    paris = timezone(timedelta(hours=1))
    assert (
        format_instant(datetime(2026, 11, 23, 14, 53, 49, 123456, tzinfo=paris))
        == "2026-11-23T13:53:49.123Z"
    )


def test_format_instant_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone"):
        format_instant(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T13:53:49Z", datetime(2026, 11, 23, 13, 53, 49, tzinfo=UTC)),
        ("2026-11-23T13:53:49.123Z", datetime(2026, 11, 23, 13, 53, 49, 123000, tzinfo=UTC)),
        ("2026-11-23T13:53:49.1234567Z", datetime(2026, 11, 23, 13, 53, 49, 123456, tzinfo=UTC)),
        ("2026-11-23T15:53:49+02:00", datetime(2026, 11, 23, 13, 53, 49, tzinfo=UTC)),
    ],
)
def test_parse_instant_reads_xs_datetime_with_a_timezone(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    ["2026-11-23T13:53:49", "2026-11-23T13:53:49.123", "2026-11-23", "2026-13-01T00:00:00Z", ""],
)
def test_parse_instant_refuses_missing_timezone_and_bad_text(text: str) -> None:
    with pytest.raises(ValueError):
        parse_instant(text)


# --- bindings ---------------------------------------------------------------------------------


def test_redirect_binding_round_trips_raw_deflate() -> None:
    xml = b"<samlp:AuthnRequest/>" * 20
    encoded = encode_redirect(xml)
    assert zlib.decompress(base64.b64decode(encoded), -15) == xml
    assert decode_redirect(encoded) == xml


def test_redirect_decoding_stops_a_deflate_bomb_at_the_limit() -> None:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = base64.b64encode(compressor.compress(b"\0" * 50_000_000) + compressor.flush()).decode()
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="inflates beyond"):
            decode_redirect(bomb, max_bytes=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"{peak} bytes held while refusing a 50 MB bomb"


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        base64.b64encode(b"plain text, not deflate").decode(),
        encode_redirect(b"<r/>")[:-6],
    ],
)
def test_redirect_decoding_refuses_bad_base64_and_bad_deflate(value: str) -> None:
    with pytest.raises(ValueError):
        decode_redirect(value)


def test_post_binding_round_trips_and_tolerates_line_breaks() -> None:
    xml = b"<samlp:Response>" + b"x" * 200 + b"</samlp:Response>"
    encoded = encode_post(xml)
    wrapped = "\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    assert decode_post(encoded) == xml
    assert decode_post(wrapped) == xml


@pytest.mark.parametrize("value", ["abc$def", "YWJj=ZGVm", "éé=="])
def test_post_decoding_refuses_anything_but_base64(value: str) -> None:
    with pytest.raises(ValueError, match="not base64"):
        decode_post(value)


def test_post_decoding_refuses_oversized_values_before_decoding() -> None:
    with pytest.raises(ValueError, match="larger than"):
        decode_post(encode_post(b"a" * 1025), max_bytes=1024)
    assert decode_post(encode_post(b"a" * 1024), max_bytes=1024) == b"a" * 1024


def test_post_form_auto_submits_escaped_fields_with_a_no_js_button() -> None:
    page = post_form(
        "https://sp.example.test/acs?a=1&b=2",
        {"SAMLResponse": "PHI+", "RelayState": '"><script>alert(1)</script>'},
        title="Signing in <you>",
    )
    assert 'action="https://sp.example.test/acs?a=1&amp;b=2"' in page
    assert 'name="SAMLResponse" value="PHI+"' in page
    assert "<script>alert(1)</script>" not in page
    assert "&quot;&gt;&lt;script&gt;" in page
    assert "<title>Signing in &lt;you&gt;</title>" in page
    assert "document.forms[0].submit()" in page
    assert "<noscript><p>JavaScript is disabled." in page
    assert '<button type="submit" id="continue" data-testid="continue">Continue</button>' in page


# --- AuthnRequest -----------------------------------------------------------------------------


def test_authn_request_round_trips_through_the_redirect_binding() -> None:
    request = AuthnRequest(
        id=new_request_id(),
        issuer="https://sp.example.test/sso/acme/saml/metadata",
        destination="https://idp.example.test/app/x/exk1/sso/saml",
        acs_url="https://sp.example.test/sso/acme/saml/acs",
        issue_instant=datetime(2026, 11, 23, 13, 53, 49, 123000, tzinfo=UTC),
        name_id_format=EMAIL,
        force_authn=True,
    )
    xml = build_authn_request(request)
    assert b'ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"' in xml
    assert b'AllowCreate="true"' in xml
    assert parse_authn_request(decode_redirect(encode_redirect(xml))) == request


def test_authn_request_without_optional_parts_parses_to_nones() -> None:
    request = AuthnRequest(
        id="_abc",
        issuer="sp",
        destination=None,
        acs_url=None,
        issue_instant=datetime(2026, 1, 1, tzinfo=UTC),
        name_id_format=None,
    )
    xml = build_authn_request(request)
    assert b"NameIDPolicy" not in xml
    assert parse_authn_request(xml) == request


def test_new_request_ids_are_ncnames_with_128_random_bits() -> None:
    ids = {new_request_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 33 and i[0] == "_" and int(i[1:], 16) >= 0 for i in ids)


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda x: x.replace(b"samlp:AuthnRequest", b"samlp:LogoutRequest"), ValueError),
        (lambda x: x.replace(b'ID="_abc"', b'ID="1abc"'), ValueError),
        (lambda x: x.replace(b'Version="2.0"', b'Version="1.1"'), ValueError),
        (lambda x: x.replace(b".000Z", b".000"), ValueError),
        (lambda x: x.replace(b">sp<", b"><"), ValueError),
        (lambda x: x.replace(b"<saml:Issuer>", b"<!-- x --><saml:Issuer>"), XmlRejected),
        (lambda x: x.replace(b"\n<samlp", b'\n<!DOCTYPE r SYSTEM "http://x/"><samlp'), XmlRejected),
    ],
)
def test_parse_authn_request_refuses_malformed_requests(mutate, error: type[Exception]) -> None:
    xml = build_authn_request(
        AuthnRequest("_abc", "sp", None, None, datetime(2026, 1, 1, tzinfo=UTC), None)
    )
    with pytest.raises(error):
        parse_authn_request(mutate(xml))


# --- metadata ---------------------------------------------------------------------------------


def test_idp_metadata_round_trips_with_two_certificates_for_rollover(
    key: SigningKey, other_key: SigningKey
) -> None:
    xml = idp_metadata(
        "http://www.okta.com/exk1",
        "https://idp.example.test/app/x/exk1/sso/saml",
        [key.certificate, other_key.certificate],
        [EMAIL, UNSPECIFIED_11],
    )
    parsed = parse_idp_metadata(xml)
    assert parsed.entity_id == "http://www.okta.com/exk1"
    assert parsed.sso_url == "https://idp.example.test/app/x/exk1/sso/saml"
    assert parsed.certificates == (key.certificate, other_key.certificate)
    assert parsed.name_id_formats == (EMAIL, UNSPECIFIED_11)


def _okta_like(cert_b64: str) -> bytes:
    """Shaped like Okta's exported metadata: md: prefix, no KeyDescriptor use, both bindings."""
    return f"""<?xml version="1.0" encoding="UTF-8"?><md:EntityDescriptor
 xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="http://www.okta.com/exk4x6wko7PcvdVq80x6">
<md:IDPSSODescriptor WantAuthnRequestsSigned="false"
 protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
<ds:X509Data><ds:X509Certificate>{cert_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
</md:KeyDescriptor>
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
 Location="https://org.okta.com/app/app_name/exk4x6wko7PcvdVq80x6/sso/saml"/>
<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
 Location="https://org.okta.com/app/app_name/exk4x6wko7PcvdVq80x6/sso/saml?redirect"/>
</md:IDPSSODescriptor></md:EntityDescriptor>""".encode()


def _jumpcloud_like(cert_b64: str, encryption_b64: str) -> bytes:
    """Shaped like JumpCloud's export: free entity ID, HTTP-POST only, wrapped certificate text."""
    wrapped = "\n".join(cert_b64[i : i + 64] for i in range(0, len(cert_b64), 64))
    return f"""<md:EntityDescriptor xmlns:md="{METADATA}" entityID="JumpCloud">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false"
   protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>
      <ds:X509Certificate>
{wrapped}
      </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:KeyDescriptor use="encryption"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>
      <ds:X509Certificate>{encryption_b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sso.jumpcloud.com/saml2/scim-toolkit"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>""".encode()


def test_parse_idp_metadata_reads_an_okta_shaped_document(key: SigningKey) -> None:
    parsed = parse_idp_metadata(_okta_like(certificate_b64(key.certificate)))
    assert parsed.entity_id == "http://www.okta.com/exk4x6wko7PcvdVq80x6"
    assert (
        parsed.sso_url == "https://org.okta.com/app/app_name/exk4x6wko7PcvdVq80x6/sso/saml?redirect"
    )
    assert parsed.certificates == (key.certificate,)
    assert parsed.name_id_formats == (UNSPECIFIED_11, EMAIL)


def test_parse_idp_metadata_reads_a_jumpcloud_shaped_document_skipping_encryption_keys(
    key: SigningKey, other_key: SigningKey
) -> None:
    xml = _jumpcloud_like(certificate_b64(key.certificate), certificate_b64(other_key.certificate))
    parsed = parse_idp_metadata(xml)
    assert parsed.entity_id == "JumpCloud"
    assert parsed.sso_url == "https://sso.jumpcloud.com/saml2/scim-toolkit"
    assert parsed.certificates == (key.certificate,)
    assert parsed.name_id_formats == (EMAIL,)


def test_parse_idp_metadata_picks_the_one_idp_out_of_an_entities_descriptor(
    key: SigningKey,
) -> None:
    sp = sp_metadata(
        "https://sp.example.test/m",
        "https://sp.example.test/acs",
        name_id_format=None,
        want_assertions_signed=True,
    )
    idp = idp_metadata("JumpCloud", "https://sso.example.test/saml2/x", [key.certificate], [EMAIL])
    strip = len(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    document = (
        f'<md:EntitiesDescriptor xmlns:md="{METADATA}"><!-- federation -->'.encode()
        + sp[strip:]
        + idp[strip:]
        + b"</md:EntitiesDescriptor>"
    )
    assert parse_idp_metadata(document).entity_id == "JumpCloud"
    two_idps = document.replace(sp[strip:], idp[strip:].replace(b"JumpCloud", b"Other"))
    with pytest.raises(ValueError, match="exactly one IdP"):
        parse_idp_metadata(two_idps)


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (b"<r/>", ValueError),
        (
            b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>',
            ValueError,
        ),
        (b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', XmlRejected),
    ],
)
def test_parse_idp_metadata_refuses_unusable_documents(
    document: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        parse_idp_metadata(document)


def test_parse_idp_metadata_refuses_a_broken_certificate(key: SigningKey) -> None:
    with pytest.raises(ValueError, match=r"X\.509"):
        parse_idp_metadata(_okta_like("AAAA" + certificate_b64(key.certificate)[8:]))


def test_sp_metadata_names_the_acs_and_the_signing_policy() -> None:
    root = parse_strict(
        sp_metadata(
            "https://sp.example.test/sso/acme/saml/metadata",
            "https://sp.example.test/sso/acme/saml/acs",
            name_id_format=PERSISTENT,
            want_assertions_signed=True,
        )
    )
    assert root.get("entityID") == "https://sp.example.test/sso/acme/saml/metadata"
    descriptor = root.find(q(METADATA, "SPSSODescriptor"))
    assert descriptor.get("WantAssertionsSigned") == "true"
    assert descriptor.findtext(q(METADATA, "NameIDFormat")) == PERSISTENT
    acs = descriptor.find(q(METADATA, "AssertionConsumerService"))
    assert (acs.get("Binding"), acs.get("Location")) == (
        HTTP_POST,
        "https://sp.example.test/sso/acme/saml/acs",
    )


# --- certs ------------------------------------------------------------------------------------


def test_load_certificate_accepts_pem_der_and_bare_base64(key: SigningKey) -> None:
    cert = key.certificate
    b64 = certificate_b64(cert)
    assert "\n" not in b64
    forms: list[bytes | str] = [
        certificate_pem(cert),
        certificate_pem(cert).encode(),
        cert.public_bytes(serialization.Encoding.DER),
        b64,
        "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64)),
    ]
    assert all(load_certificate(form) == cert for form in forms)


@pytest.mark.parametrize("data", [b"", "hello", b"\x30\x03\x02\x01\x01", "QUJDRA==", "é"])
def test_load_certificate_refuses_anything_else(data: bytes | str) -> None:
    with pytest.raises(ValueError, match=r"X\.509"):
        load_certificate(data)


def test_fingerprint_is_colon_separated_upper_hex(key: SigningKey) -> None:
    fingerprint = fingerprint_sha256(key.certificate)
    assert len(fingerprint) == 32 * 3 - 1
    assert fingerprint == fingerprint.upper()
    assert fingerprint.count(":") == 31


def test_signing_key_round_trips_through_pem_and_refuses_a_foreign_cert(
    key: SigningKey, other_key: SigningKey
) -> None:
    cert_pem = certificate_pem(key.certificate).encode()
    loaded = SigningKey.from_pem(key.private_key_pem(), cert_pem)
    assert loaded.certificate == key.certificate
    assert loaded.private_key.private_numbers() == key.private_key.private_numbers()
    with pytest.raises(ValueError, match="does not belong"):
        SigningKey.from_pem(other_key.private_key_pem(), cert_pem)


def test_generated_certificates_are_valid_now_for_the_requested_days() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cert = SigningKey.generate("x", bits=2048, valid_days=30, now=now).certificate
    assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    assert cert.not_valid_after_utc == now + timedelta(days=30)
