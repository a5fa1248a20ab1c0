"""The claims of a signature-checked ID token against what one sign-in expects
(``scim_server.core.sso.oidc.check_claims``): each rule at its edge, each refusal its reason."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scim_server.core.sso.oidc import Expected, OidcRejected, check_claims, token_hash

NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
SKEW = timedelta(seconds=90)
EXPECTED = Expected(
    issuer="https://idp.example/oauth2/default",
    client_id="client",
    nonce="n-0S6_WzA2Mj",
    skew=SKEW,
    code="the-code",
    access_token="the-access-token",
)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(NOW.timestamp())
    base: dict[str, Any] = {
        "iss": EXPECTED.issuer,
        "sub": "00u1",
        "aud": "client",
        "iat": now,
        "exp": now + 3600,
        "nonce": EXPECTED.nonce,
    }
    return {key: value for key, value in {**base, **changes}.items() if value is not None}


def refused(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(OidcRejected, match="^" + re.escape(reason)):
        check_claims(body, EXPECTED, "RS256", NOW)


def seconds(delta: timedelta) -> int:
    return int((NOW + delta).timestamp())


def test_a_genuine_set_of_claims_passes() -> None:
    check_claims(
        claims(
            aud=["client", "api"],
            azp="client",
            at_hash=token_hash("RS256", "the-access-token"),
            c_hash=token_hash("RS256", "the-code"),
        ),
        EXPECTED,
        "RS256",
        NOW,
    )


def test_the_time_claims_hold_within_the_skew_and_not_beyond() -> None:
    check_claims(claims(exp=seconds(-SKEW + timedelta(seconds=1))), EXPECTED, "RS256", NOW)
    refused(claims(exp=seconds(-SKEW)), "the ID token expired at")
    check_claims(claims(iat=seconds(SKEW)), EXPECTED, "RS256", NOW)
    refused(claims(iat=seconds(SKEW + timedelta(seconds=1))), "the ID token was issued in the")
    check_claims(claims(nbf=seconds(SKEW)), EXPECTED, "RS256", NOW)
    refused(claims(nbf=seconds(SKEW + timedelta(seconds=1))), "the ID token is not valid before")
    refused(claims(exp="tomorrow"), "the ID token's exp is not a number of seconds")
    refused(claims(iat=True), "the ID token's iat is not a number of seconds")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"sub": None}, "the ID token lacks the claims sub"),
        ({"iss": None, "exp": None}, "the ID token lacks the claims iss, exp"),
        ({"iss": "https://idp.example/"}, "the ID token's issuer 'https://idp.example/' is not"),
        ({"aud": "other"}, "the ID token's audience 'other' does not include the client id"),
        ({"aud": ["other", "api"]}, "the ID token's audience ['other', 'api'] does not include"),
        ({"aud": ["client", "api"]}, "the ID token's azp None is not the client id 'client'"),
        ({"azp": "api"}, "the ID token's azp 'api' is not the client id 'client'"),
        ({"nonce": None}, "the ID token's nonce is not the one this sign-in sent"),
        ({"nonce": "other"}, "the ID token's nonce is not the one this sign-in sent"),
        ({"at_hash": "AAAA"}, "the ID token's at_hash does not match what came with it"),
        ({"c_hash": "AAAA"}, "the ID token's c_hash does not match what came with it"),
    ],
)
def test_each_claim_that_is_not_what_this_sign_in_expects_is_refused(
    changes: dict[str, Any], reason: str
) -> None:
    refused(claims(**changes), reason)
