"""A tenant's SSO settings as the admin writes them (``scim_server.core.sso.configure.apply``).

The body is a JSON merge-patch (RFC 7396) of the settings: members absent stay as they were,
nested objects merge member by member, ``null`` clears an optional value. Every refusal is an
``invalidValue`` naming the field, and the rules spanning fields hold on the merged result.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from cryptography import x509
from scim2_models import InvalidValueException

from samlkit.certs import SigningKey, certificate_pem
from scim_server.core.sso.configure import MAX_TEXT, apply, settings_view
from scim_server.core.sso.settings import PRESETS, AttributeMap, SsoSettings

ENTITY = "http://www.okta.com/exk4x6wko7PcvdVq80x6"
SSO_URL = "https://acme.okta.com/app/scim_toolkit/exk4x6wko7PcvdVq80x6/sso/saml"


@pytest.fixture(scope="module")
def certs() -> list[x509.Certificate]:
    return [SigningKey.generate(f"idp-{n}", bits=1024).certificate for n in range(3)]


@pytest.fixture(scope="module")
def connected(certs: list[x509.Certificate]) -> SsoSettings:
    """Settings of a working connection, with every field away from its default."""
    return SsoSettings(
        enabled=True,
        preset="jumpcloud",
        idp_entity_id=ENTITY,
        idp_sso_url=SSO_URL,
        certificates=(certs[0],),
        name_id_source="attribute",
        name_id_attribute="employeeId",
        name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        attributes=AttributeMap("mail", "given", "sn", "memberOf"),
        jit=False,
        allowed_groups=("Engineering",),
        require_signed_assertion=True,
        enforced=True,
        allow_idp_initiated=False,
        clock_skew_seconds=30,
        session_ttl_seconds=3600,
    )


def refused(settings: SsoSettings, body: Any, message: str) -> None:
    with pytest.raises(InvalidValueException, match=f"^{re.escape(message)}$"):
        apply(settings, body)


# --- merge-patch ---------------------------------------------------------------------------


def test_an_empty_body_changes_nothing(connected: SsoSettings) -> None:
    assert apply(connected, {}) == connected


def test_a_member_changes_alone(connected: SsoSettings) -> None:
    assert apply(connected, {"jit": True}) == replace(connected, jit=True)
    assert apply(connected, {"clock_skew_seconds": 0}) == replace(connected, clock_skew_seconds=0)


def test_a_nested_member_changes_alone_its_siblings_stay(connected: SsoSettings) -> None:
    other = "https://acme.okta.com/other"
    assert apply(connected, {"idp": {"sso_url": other}}) == replace(connected, idp_sso_url=other)
    assert apply(connected, {"name_id": {"attribute": "upn"}}) == replace(
        connected, name_id_attribute="upn"
    )
    assert apply(connected, {"attributes": {"email": "emailAddress"}}) == replace(
        connected, attributes=replace(connected.attributes, email="emailAddress")
    )


def test_null_clears_an_optional_value(connected: SsoSettings) -> None:
    updated = apply(connected, {"name_id": {"format": None}, "attributes": {"groups": None}})
    assert updated.name_id_format is None
    assert updated.attributes == replace(connected.attributes, groups=None)


def test_a_preset_starts_the_attribute_names_over(connected: SsoSettings) -> None:
    assert apply(connected, {"preset": "okta"}).attributes == PRESETS["okta"]


def test_attribute_names_given_with_a_preset_apply_on_top_of_it(connected: SsoSettings) -> None:
    updated = apply(connected, {"preset": "okta", "attributes": {"groups": "memberOf"}})
    assert updated.attributes == replace(PRESETS["okta"], groups="memberOf")


def test_what_the_view_shows_can_be_written_back_as_it_is(connected: SsoSettings) -> None:
    view = settings_view(connected)
    view["service_provider"] = {"entity_id": "read only, ignored"}
    assert apply(SsoSettings(), view) == connected


def test_certificates_are_read_as_pem_or_as_the_objects_the_view_shows(
    connected: SsoSettings, certs: list[x509.Certificate]
) -> None:
    shown = settings_view(replace(connected, certificates=(certs[1],)))["idp"]["certificates"]
    body = {"idp": {"certificates": [certificate_pem(certs[2]), *shown]}}
    assert apply(connected, body).certificates == (certs[2], certs[1])


def test_allowed_groups_keep_their_first_spelling_once(connected: SsoSettings) -> None:
    updated = apply(connected, {"allowed_groups": ["Eng", "Ops", "Eng", "eng"]})
    assert updated.allowed_groups == ("Eng", "Ops", "eng")


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"clock_skew_seconds": 0}, "clock_skew_seconds", 0),
        ({"clock_skew_seconds": 600}, "clock_skew_seconds", 600),
        ({"session_ttl_seconds": 60}, "session_ttl_seconds", 60),
        ({"session_ttl_seconds": 604800}, "session_ttl_seconds", 604800),
        ({"idp": {"entity_id": "e" * MAX_TEXT}}, "idp_entity_id", "e" * MAX_TEXT),
        (
            {"idp": {"sso_url": "http://127.0.0.1:8080/sso"}},
            "idp_sso_url",
            "http://127.0.0.1:8080/sso",
        ),
        ({"allowed_groups": []}, "allowed_groups", ()),
        ({"allowed_groups": ["*"]}, "allowed_groups", ("*",)),
    ],
)
def test_values_at_the_edge_of_their_range_are_accepted(
    connected: SsoSettings, body: dict[str, Any], field: str, value: Any
) -> None:
    assert getattr(apply(connected, body), field) == value


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"bogus": 1}, "unknown setting bogus"),
        ({"idp": {"bogus": 1}}, "unknown setting idp.bogus"),
        ({"idp": "x"}, "idp must be an object"),
        ({"name_id": []}, "name_id must be an object"),
        ({"enabled": "true"}, "enabled must be true or false"),
        ({"jit": 1}, "jit must be true or false"),
        ({"preset": "azure"}, "preset must be one of 'okta', 'entra', 'jumpcloud', 'custom'"),
        (
            {"name_id": {"source": "email"}},
            "name_id.source must be one of 'nameid', 'attribute'",
        ),
        ({"clock_skew_seconds": True}, "clock_skew_seconds must be an integer from 0 to 600"),
        ({"clock_skew_seconds": -1}, "clock_skew_seconds must be an integer from 0 to 600"),
        ({"clock_skew_seconds": 601}, "clock_skew_seconds must be an integer from 0 to 600"),
        ({"clock_skew_seconds": 1.5}, "clock_skew_seconds must be an integer from 0 to 600"),
        (
            {"session_ttl_seconds": 59},
            "session_ttl_seconds must be an integer from 60 to 604800",
        ),
        (
            {"idp": {"entity_id": ""}},
            f"idp.entity_id must be a non-empty string of at most {MAX_TEXT} characters",
        ),
        (
            {"idp": {"entity_id": "e" * (MAX_TEXT + 1)}},
            f"idp.entity_id must be a non-empty string of at most {MAX_TEXT} characters",
        ),
        (
            {"idp": {"entity_id": f" {ENTITY}"}},
            "idp.entity_id must not start or end with whitespace",
        ),
        (
            {"idp": {"sso_url": "ftp://acme.example/sso"}},
            "idp.sso_url must be an absolute http or https URL",
        ),
        ({"idp": {"sso_url": "/sso/saml"}}, "idp.sso_url must be an absolute http or https URL"),
        (
            {"idp": {"sso_url": "https://a b/sso"}},
            "idp.sso_url must be an absolute http or https URL",
        ),
        ({"idp": {"sso_url": "http://[::1/"}}, "idp.sso_url must be an absolute http or https URL"),
        ({"idp": {"certificates": ["nope"]}}, "idp.certificates[0] is not a PEM X.509 certificate"),
        (
            {"idp": {"certificates": [{"der": "AA=="}]}},
            "idp.certificates[0] is not a PEM X.509 certificate",
        ),
        (
            {"idp": {"certificates": "PEM"}},
            "idp.certificates must be a list of at most 2 PEM certificates",
        ),
        ({"allowed_groups": "Eng"}, "allowed_groups must be a list of at most 1000 group names"),
        (
            {"allowed_groups": ["Eng", ""]},
            f"allowed_groups[1] must be a non-empty string of at most {MAX_TEXT} characters",
        ),
        ({"allowed_groups": ["Eng "]}, "allowed_groups[0] must not start or end with whitespace"),
        (
            {"attributes": {"email": None}},
            f"attributes.email must be a non-empty string of at most {MAX_TEXT} characters",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_its_field(
    connected: SsoSettings, body: dict[str, Any], message: str
) -> None:
    refused(connected, body, message)


def test_more_certificates_than_two_or_one_twice_are_refused(
    connected: SsoSettings, certs: list[x509.Certificate]
) -> None:
    pems = [certificate_pem(cert) for cert in certs]
    refused(
        connected,
        {"idp": {"certificates": pems}},
        "idp.certificates must be a list of at most 2 PEM certificates",
    )
    refused(
        connected,
        {"idp": {"certificates": [pems[0], pems[0]]}},
        "idp.certificates holds the same certificate twice",
    )


# --- rules spanning fields, on the merged result ------------------------------------------


def test_sso_cannot_be_enabled_before_the_idp_is_described() -> None:
    refused(
        SsoSettings(),
        {"enabled": True},
        "SSO cannot be enabled without idp.entity_id, idp.sso_url, idp.certificates",
    )
    refused(
        SsoSettings(),
        {"enabled": True, "idp": {"entity_id": ENTITY, "sso_url": SSO_URL}},
        "SSO cannot be enabled without idp.certificates",
    )


def test_sso_is_enabled_in_the_same_body_that_describes_the_idp(
    certs: list[x509.Certificate],
) -> None:
    body = {
        "enabled": True,
        "idp": {
            "entity_id": ENTITY,
            "sso_url": SSO_URL,
            "certificates": [certificate_pem(certs[0])],
        },
    }
    assert apply(SsoSettings(), body).ready


def test_an_enabled_connection_cannot_lose_its_last_certificate(connected: SsoSettings) -> None:
    refused(
        connected,
        {"idp": {"certificates": []}},
        "SSO cannot be enabled without idp.certificates",
    )
    assert apply(connected, {"enabled": False, "idp": {"certificates": []}}).certificates == ()


def test_a_name_id_attribute_is_required_when_the_name_id_comes_from_one(
    connected: SsoSettings,
) -> None:
    message = "name_id.attribute is required when name_id.source is 'attribute'"
    refused(SsoSettings(), {"name_id": {"source": "attribute"}}, message)
    refused(connected, {"name_id": {"attribute": None}}, message)
    assert apply(
        connected, {"name_id": {"source": "nameid", "attribute": None}}
    ).name_id_source == ("nameid")
