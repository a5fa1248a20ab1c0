"""Every attack of docs/saml.md against the ACS over HTTP, and the valid edge cases too.

Each broken response comes from ``idp_sim.saml.tampering`` and is posted as a browser would.
A refusal must be the generic page (nothing about why), must create nobody, and must be
refused for the *right* reason: the tenant's SSO log names it, and the test pins it, so an
attack cannot pass by tripping over an unrelated check.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from idp_sim.saml import shapes
from idp_sim.saml.response import IdentityProvider
from idp_sim.saml.tampering import VARIANTS, impersonated, variants
from samlkit.certs import SigningKey
from tests.support.sso import Sso, person

# The reason each attack must be refused for (a fragment of the SSO log's reason).
EXPECTED_REASONS: dict[str, str] = {
    "unsigned": "nothing in the response is signed",
    "assertion_signature_stripped": "Response signature does not verify",
    "response_only_signed": "the assertion is not signed",
    "wrong_key": "signature does not verify",
    "key_value_mismatch": "signature does not verify",
    "tampered_attribute": "signature does not verify",
    "tampered_name_id": "signature does not verify",
    "tampered_status": "Response signature does not verify",
    "hmac_confusion": "signature does not verify",
    "rsa_sha1_signature": "signature does not verify",
    "sha1_digest": "signature does not verify",
    "empty_signature_value": "Response signature is unreadable",
    "key_value_empty_modulus": "Response signature is unreadable",
    "reference_uri_empty": "does not cover the element being consumed",
    "reference_to_other_element": "does not cover the element being consumed",
    "two_references": "Response signature does not verify",
    "wrong_issuer": "is not this tenant's IdP",
    "response_issuer_mismatch": "name different issuers",
    "expired": "no usable bearer subject confirmation",
    "not_yet_valid": "not valid yet",
    "subject_confirmation_expired": "the subject confirmation has expired",
    "conditions_without_not_on_or_after": "the conditions have no NotOnOrAfter",
    "subject_confirmation_without_not_on_or_after": "no NotOnOrAfter",
    "timestamps_without_timezone": "is not a UTC instant",
    "session_not_on_or_after_past": "SessionNotOnOrAfter",
    "wrong_audience": "the assertion is for",
    "extra_audience_restriction": "the assertion is for",
    "wrong_recipient": "is not this ACS",
    "wrong_destination": "is addressed to",
    "in_response_to_mismatch": "answer different requests",
    "unknown_in_response_to": "answers no outstanding request",
    "signed_response_without_destination": "a signed response must name its Destination",
    "laundered_unsolicited": "not vouched for by the signed assertion",
    "non_bearer_confirmation": "is not bearer",
    "two_signed_assertions": "assertions, not exactly one",
    "assertion_not_direct_child": "not a direct child",
    "encrypted_assertion": "encrypted assertions are not supported",
    "wrong_root": "is not a SAML Response",
    "wrong_version": "unsupported SAML version",
    "duplicate_ids": "occurs more than once",
    "namespaced_duplicate_id": "occurs more than once",
    "assertion_without_id": "the assertion has no ID",
    "oversized": "larger than",
    "bad_base64": "not acceptable base64",
    "status_responder": "status",
    "wrap_evil_first": "assertions, not exactly one",
    "wrap_same_id": "occurs more than once",
    "wrap_in_signature_object": "assertions, not exactly one",
    "wrap_copied_signature": "assertions, not exactly one",
    "wrap_response": "assertions, not exactly one",
    "wrap_okta": "assertions, not exactly one",
    "signature_moved_into_assertion": "does not cover the element being consumed",
    "comment_in_name_id": "unsafe or malformed XML",
    "comment_in_attribute": "unsafe or malformed XML",
    "comment_in_digest_value": "unsafe or malformed XML",
    "comment_in_signature_value": "unsafe or malformed XML",
    "processing_instruction": "unsafe or malformed XML",
    "xxe_file_entity": "unsafe or malformed XML",
    "external_dtd": "unsafe or malformed XML",
    "parameter_entity": "unsafe or malformed XML",
    "xinclude": "the NameID has child elements",
    "billion_laughs": "unsafe or malformed XML",
}


def test_every_tampering_variant_has_an_expected_reason() -> None:
    assert set(EXPECTED_REASONS) == set(VARIANTS)


class Probe:
    """A loopback listener that counts connections: an XXE or XInclude that is obeyed calls it."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            writer.close()

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/probe.dtd"


@pytest.fixture
async def probe() -> AsyncIterator[Probe]:
    listener = Probe()
    await listener.start()
    yield listener
    assert listener.server is not None
    listener.server.close()


@pytest.fixture
def fifo() -> Iterator[str]:
    """A FIFO: an SP that opens it to resolve an entity hangs, and the test times out."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "secret")
        os.mkfifo(path)
        yield path


@pytest.mark.parametrize("name", sorted(VARIANTS))
async def test_the_acs_refuses_the_attack_for_the_right_reason(
    name: str, okta_sso: Sso, probe: Probe, fifo: str
) -> None:
    assert probe.server is not None
    port = probe.server.sockets[0].getsockname()[1]
    variant = variants(probe_url=f"http://127.0.0.1:{port}/probe.dtd", file_path=fifo)[name]
    if "policy:require_signed_assertion" in variant.tags:
        await okta_sso.configure(require_signed_assertion=True)
    if "policy:no_idp_initiated" in variant.tags:
        await okta_sso.configure(allow_idp_initiated=False)
    request_id = await okta_sso.start()
    victim = person("victim@example.com")
    encoded = variant.build(okta_sso.idp, victim, okta_sso.sp, datetime.now(UTC), request_id)

    response = await asyncio.wait_for(okta_sso.post(encoded), timeout=20)

    assert response.status == 403, variant.description
    text = await response.text()
    assert 'id="sso-error"' in text
    reason = await okta_sso.last_reason()
    assert reason not in text
    assert EXPECTED_REASONS[name] in reason, (variant.description, reason)
    assert "Set-Cookie" not in response.headers
    for login in (victim.login, impersonated(victim).login, victim.login + ".evil.test"):
        assert await okta_sso.users(login) == []
    assert probe.connections == 0


async def test_a_response_only_signature_is_accepted_unless_the_tenant_requires_more(
    jumpcloud_sso: Sso,
) -> None:
    response_signed = IdentityProvider(shapes.jumpcloud(sign="response"), jumpcloud_sso.idp.key)
    assert (await jumpcloud_sso.sign_in(person(), idp=response_signed)).status == 303
    await jumpcloud_sso.configure(require_signed_assertion=True)
    assert (await jumpcloud_sso.sign_in(person(), idp=response_signed)).status == 403
    assert (await jumpcloud_sso.sign_in(person())).status == 303  # assertion-signed


@pytest.mark.parametrize(
    ("age", "accepted"), [(timedelta(seconds=85), True), (timedelta(seconds=95), False)]
)
async def test_expiry_is_judged_with_the_configured_clock_skew(
    okta_sso: Sso, age: timedelta, accepted: bool
) -> None:
    """The response's NotOnOrAfter lies ``age`` in the past; the skew is 90 s."""
    issued = datetime.now(UTC) - okta_sso.idp.shape.validity - age
    response = await okta_sso.post(okta_sso.response(person(), now=issued))
    assert (response.status == 303) is accepted, await okta_sso.last_reason()


@pytest.mark.parametrize(
    ("ahead", "accepted"), [(timedelta(seconds=85), True), (timedelta(seconds=95), False)]
)
async def test_an_idp_clock_ahead_is_tolerated_within_the_skew(
    okta_sso: Sso, ahead: timedelta, accepted: bool
) -> None:
    """NotBefore lies ``ahead`` in the future (the IdP's clock runs fast)."""
    issued = datetime.now(UTC) + okta_sso.idp.shape.validity + ahead
    response = await okta_sso.post(okta_sso.response(person(), now=issued))
    assert (response.status == 303) is accepted, await okta_sso.last_reason()


async def test_multi_valued_groups_all_arrive(okta_sso: Sso) -> None:
    await okta_sso.configure(allowed_groups=("*",))
    groups = ("Engineering", "Design", "On-call")
    assert (await okta_sso.sign_in(person(groups=groups))).status == 303
    [user] = await okta_sso.users("ada@example.com")
    assert sorted(g["display"] for g in user["groups"]) == sorted(groups)


async def test_an_expired_pinned_certificate_is_refused(okta_sso: Sso) -> None:
    """signxml checks the pinned certificate's validity period; we keep that (docs/saml.md,
    policy choices): an expired IdP certificate is a visible failure in the log, not a silent
    risk."""
    now = datetime.now(UTC)
    expired = SigningKey.generate("expired IdP", valid_days=1, now=now - timedelta(days=2))
    idp = IdentityProvider(replace(okta_sso.idp.shape), expired)
    await okta_sso.configure(idp=idp)
    assert (await okta_sso.sign_in(person(), idp=idp)).status == 403
    assert "expired" in await okta_sso.last_reason()
