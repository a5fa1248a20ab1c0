"""The ``saml`` suite: a SAML service provider's ACS accepts a genuine response, refuses forgeries.

Why it can run against any SP: it needs only the ACS URL, the SP's entity ID and an IdP identity
the SP trusts (``conformance.saml_target``); every response is IdP-initiated and POSTed as a
browser would. A foreign SP's pages are unknown, so acceptance is judged on the HTTP status
alone: 2xx or 3xx is accepted, 4xx or 5xx refused. Each refusal check first posts a genuine
response (it must be accepted), so an SP that refuses everything cannot pass them by accident.

The people signing in are named under the run's prefix (``scimconf-<run>-...@example.com``):
runs never collide, and when the SP is also the SCIM server under test (``--base-url``), the
runner's sweep removes them, and whether someone was provisioned can be read back through SCIM.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from conformance.browser import BROWSER_ACCEPT, FORM
from conformance.checks import Context, check, expect_status, require, resources_of, skip
from conformance.fixtures import FixtureError
from conformance.http import Response
from conformance.options import option
from conformance.saml_target import SamlTarget
from idp_sim.saml.response import SamlSubject
from idp_sim.saml.tampering import VARIANTS

SUITE = "saml"
JUDGED = (
    " Judged on the HTTP status alone, since a foreign SP's pages are unknown: 2xx or 3xx "
    "is accepted, 4xx or 5xx refused."
)
REFUSED_AFTER_GENUINE = (
    " The same run first posts a genuine response, which must be accepted." + JUDGED
)


def target(context: Context) -> SamlTarget:
    """The SP and the IdP it trusts; the check skips when the run was given none."""
    found = option(context, "saml")
    if not isinstance(found, SamlTarget):
        skip(
            "no SAML SP: run with --saml-acs-url, --saml-sp-entity-id, --saml-idp-key and "
            "--saml-idp-cert (--write-saml-idp DIR creates an IdP key and its metadata)"
        )
    return found


def person(login: str) -> SamlSubject:
    return SamlSubject(
        login=login, email=login, first_name="Conformance", last_name="Tester", user_id=login
    )


def fresh_person(context: Context, label: str) -> SamlSubject:
    return person(f"{context.fixtures.name(label)}@example.com")


def regular(context: Context) -> SamlSubject:
    """The run's one returning person: every genuine baseline signs in as them."""
    shared = context.fixtures.tracker.shared
    if "saml-person" not in shared:
        shared["saml-person"] = fresh_person(context, "saml")
    subject: SamlSubject = shared["saml-person"]
    return subject


def genuine(saml: SamlTarget, subject: SamlSubject) -> str:
    return saml.idp.response_b64(subject, saml.sp, now=datetime.now(UTC))


def broken(saml: SamlTarget, variant: str, subject: SamlSubject) -> str:
    return VARIANTS[variant].build(saml.idp, subject, saml.sp, datetime.now(UTC), None)


async def post(context: Context, saml: SamlTarget, saml_response: str) -> Response:
    """POST to the ACS as the IdP's auto-submitting form would; never with the SCIM token."""
    return await context.http.request(
        "POST",
        saml.acs_url,
        raw_body=urlencode({"SAMLResponse": saml_response}),
        auth=False,
        headers={"Content-Type": FORM, "Accept": BROWSER_ACCEPT},
    )


def accepted(response: Response) -> bool:
    return 200 <= response.status < 400


def outcome(response: Response) -> str:
    location = response.header("Location")
    return f"HTTP {response.status}" + (f" to {location}" if location else "")


async def baseline(context: Context, saml: SamlTarget, saml_response: str) -> None:
    """The SP accepts this genuine response now, or no refusal after it can mean anything."""
    response = await post(context, saml, saml_response)
    if not accepted(response):
        raise FixtureError(
            f"the SP refused a genuine signed response ({outcome(response)}), so "
            f"refusing a broken one proves nothing; see saml.signed-accepted"
        )


def scim_available(context: Context) -> bool:
    return bool(context.http.base_url)


async def users_named(context: Context, user_name: str) -> list[dict[str, Any]]:
    response = await context.http.get("/Users", params={"filter": f'userName eq "{user_name}"'})
    expect_status(response, 200, what=f"SCIM filter userName eq {user_name!r}")
    return resources_of(response)


@check(
    SUITE,
    "saml.signed-accepted",
    "A genuine signed response is accepted",
    "SAML 2.0 Profiles §4.1.3.5, §4.1.4.3 (HTTP-POST, IdP-initiated)",
    "A Response from the trusted IdP, signed as that IdP signs, addressed to this ACS and "
    "audience and within its validity window, signs the person in." + JUDGED,
)
async def signed_accepted(context: Context) -> None:
    saml = target(context)
    response = await post(context, saml, genuine(saml, regular(context)))
    require(
        accepted(response),
        f"the SP refused a genuine signed response from "
        f"{saml.idp.shape.entity_id}: {outcome(response)}",
    )


@check(
    SUITE,
    "saml.user-provisioned",
    "A new person exists after signing in, as SCIM shows",
    "SAML 2.0 Profiles §4.1.4.3; RFC 7644 §3.4.2.2",
    "After a new person's first sign-in the SP holds a user whose userName is the asserted "
    "NameID (just-in-time provisioning), found by a SCIM filter. Skips without SCIM access "
    "(--base-url and --token of the same service).",
)
async def user_provisioned(context: Context) -> None:
    saml = target(context)
    if not scim_available(context):
        skip("no SCIM access to look the user up: run with --base-url and --token")
    newcomer = fresh_person(context, "saml-new")
    require(
        await users_named(context, newcomer.email) == [],
        f"a user {newcomer.email} exists before its first sign-in",
    )
    response = await post(context, saml, genuine(saml, newcomer))
    require(
        accepted(response),
        f"the SP refused a new person's genuine signed response: {outcome(response)}",
    )
    found = await users_named(context, newcomer.email)
    for user in found:
        context.fixtures.track("/Users", user)
    require(
        len(found) == 1,
        f"after {newcomer.email} signed in, SCIM finds {len(found)} users "
        f"with that userName, expected 1",
    )
    require(found[0].get("active") is not False, f"{newcomer.email} was provisioned inactive")


@check(
    SUITE,
    "saml.replay-refused",
    "The same response posted twice is refused the second time",
    "SAML 2.0 Profiles §4.1.4.5",
    "The SP MUST ensure that bearer assertions are not replayed, by keeping the used IDs for "
    "as long as the assertion would be valid: the first post is accepted, the second "
    "refused." + JUDGED,
)
async def replay_refused(context: Context) -> None:
    saml = target(context)
    captured = genuine(saml, regular(context))
    await baseline(context, saml, captured)
    again = await post(context, saml, captured)
    require(
        not accepted(again), f"the SP accepted the same response a second time: {outcome(again)}"
    )


@dataclass(frozen=True)
class Refusal:
    """A check that the SP refuses one forgery of ``idp_sim``'s tampering ``variant``, after it
    accepted a genuine response; ``what`` names the forgery in the failure."""

    id: str
    title: str
    source: str
    rule: str
    variant: str
    what: str

    async def run(self, context: Context) -> None:
        saml = target(context)
        await baseline(context, saml, genuine(saml, regular(context)))
        response = await post(context, saml, broken(saml, self.variant, regular(context)))
        require(
            not accepted(response),
            f"the SP accepted {self.what} ({VARIANTS[self.variant].description}): "
            f"{outcome(response)}",
        )


REFUSALS = (
    Refusal(
        "saml.wrong-audience-refused",
        "An assertion for another SP is refused",
        "SAML 2.0 Core §2.5.1.4; Profiles §4.1.4.2",
        "An assertion whose AudienceRestriction does not name this SP's entity ID is not "
        "addressed to it, however well signed.",
        "wrong_audience",
        "an assertion for another audience",
    ),
    Refusal(
        "saml.unsigned-refused",
        "An unsigned response is refused",
        "SAML 2.0 Profiles §4.1.3.5",
        "With the HTTP-POST binding each assertion MUST be protected by a digital signature, "
        "on the Assertion or on the Response.",
        "unsigned",
        "an unsigned response",
    ),
    Refusal(
        "saml.wrong-key-refused",
        "A response signed by another key is refused",
        "SAML 2.0 Profiles §4.1.4.3; Metadata §2.4.1.1",
        "Signatures are verified with the trusted IdP's signing certificate, never with one "
        "the message carries in KeyInfo.",
        "wrong_key",
        "a response signed by a key the IdP does not hold",
    ),
    Refusal(
        "saml.expired-refused",
        "An expired assertion is refused",
        "SAML 2.0 Core §2.5.1.2; Profiles §4.1.4.3",
        "An assertion past its NotOnOrAfter (here by 55 minutes, beyond any clock skew "
        "allowance) is not valid.",
        "expired",
        "an expired assertion",
    ),
    Refusal(
        "saml.wrong-recipient-refused",
        "A response for another ACS is refused",
        "SAML 2.0 Profiles §4.1.4.3",
        "The Recipient of the bearer SubjectConfirmationData must be the ACS URL the response "
        "was delivered to.",
        "wrong_recipient",
        "a response whose Recipient is another ACS",
    ),
    Refusal(
        "saml.wrapped-refused",
        "A signature-wrapped forgery is refused",
        "SAML 2.0 Core §5.4.2; docs/saml.md, wrap_evil_first (XML signature wrapping)",
        "Only what the signature covers may be consumed: a forged unsigned assertion in the "
        "assertion's place, the genuine signed one moved into samlp:Extensions, is refused.",
        "wrap_evil_first",
        "a signature-wrapped forged assertion",
    ),
)

for refusal in REFUSALS:
    check(SUITE, refusal.id, refusal.title, refusal.source, refusal.rule + REFUSED_AFTER_GENUINE)(
        refusal.run
    )


@check(
    SUITE,
    "saml.comment-injection",
    "A comment in the NameID does not sign in someone else",
    "SAML 2.0 Core §5.4.3 (exclusive c14n without comments); CERT VU#475445 (CVE-2017-11427)",
    "The IdP signed the NameID X@example.com.evil.test, then a comment was inserted before "
    ".evil.test, which leaves the signature valid. The SP refuses the response, or signs in "
    "the signed identity; never X@example.com. A refusal is judged on the HTTP status (after "
    "a genuine response was accepted); an acceptance through SCIM (no user X@example.com "
    "exists), and it skips without SCIM access.",
)
async def comment_injection(context: Context) -> None:
    saml = target(context)
    await baseline(context, saml, genuine(saml, regular(context)))
    victim = fresh_person(context, "saml-victim")
    response = await post(context, saml, broken(saml, "comment_in_name_id", victim))
    if not accepted(response):
        return
    if not scim_available(context):
        skip(
            f"the SP accepted the response ({outcome(response)}); without SCIM access (--base-url"
            f", --token) the runner cannot tell whether it signed in {victim.email} or the "
            f"NameID the IdP signed"
        )
    taken = await users_named(context, victim.email)
    for user in taken:
        context.fixtures.track("/Users", user)
    require(
        not taken,
        f"the SP read the NameID up to the comment and signed in {victim.email} "
        f"({outcome(response)}), not the NameID the IdP signed",
    )
