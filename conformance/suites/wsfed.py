"""The ``wsfed`` suite: a WS-Federation relying party accepts a genuine token, refuses forgeries.

Why it can run against any RP: it needs only the RP's reply URL, its realm and an STS identity
the RP trusts (``conformance.wsfed_target``). Every token is posted to the reply URL as the
STS's auto-submitting form has the browser post it, with ``wa=wsignin1.0`` and the ``wresult``;
when the run names the RP's login URL (``--wsfed-login-url``), each sign-in is solicited as a
browser's is: the login URL is fetched first (its cookies kept) and the ``wctx`` the RP sent
to the STS is posted back with the token. Without it every token is unsolicited (no ``wctx``).

As in the ``saml`` suite, acceptance is judged on the HTTP status alone (2xx or 3xx accepted,
4xx or 5xx refused), and each refusal check first has a genuine token accepted. Each check
runs with both kinds of assertion a passive token carries: SAML 2.0 (Entra ID) and SAML 1.1
(AD FS). The forgeries are ``idp_sim.wsfed.tampering``'s catalogue, one check per variant.
"""

from __future__ import annotations

import urllib.parse
from datetime import UTC, datetime

from conformance.browser import Browser
from conformance.checks import Context, check, require, skip
from conformance.fixtures import FixtureError
from conformance.http import Response
from conformance.options import option
from conformance.refusals import Refusal, register
from conformance.suites.saml import JUDGED, accepted, outcome, regular
from conformance.wsfed_target import TOKEN_VERSIONS, WsFedTarget
from idp_sim.saml.response import SamlSubject
from idp_sim.wsfed.tampering import VARIANTS
from idp_sim.wsfed.token import TokenVersion
from idp_sim.wsfed.webapp import WSIGNIN

SUITE = "wsfed"
PROFILES = ("WS-Federation passive RP",)
"""The verdict line the suite's checks count towards, as a certification conversation quotes it."""
RECIPE = "WS-Federation 1.2 §13 (passive requestor); SAML 2.0 Core"
BY_NAME = {variant.name: variant for variant in VARIANTS}
REFUSED_AFTER_GENUINE = (
    " For each of a SAML 2.0 and a SAML 1.1 token, a genuine one is first accepted." + JUDGED
)


def target(context: Context) -> WsFedTarget:
    """The RP and the STS it trusts; the check skips when the run was given none."""
    found = option(context, "wsfed")
    if not isinstance(found, WsFedTarget):
        skip(
            "no WS-Federation RP: run with --wsfed-reply-url (and --wsfed-realm, "
            "--wsfed-login-url) and the STS key the RP trusts (--wsfed-idp-key and "
            "--wsfed-idp-cert, else --saml-idp-key and --saml-idp-cert)"
        )
    return found


def genuine(wsfed: WsFedTarget, token: TokenVersion, subject: SamlSubject) -> str:
    return wsfed.sts(token).wresult(subject, wsfed.rp, now=datetime.now(UTC))


def broken(wsfed: WsFedTarget, token: TokenVersion, variant: str, subject: SamlSubject) -> str:
    return BY_NAME[variant].build(wsfed.sts(token), subject, wsfed.rp, datetime.now(UTC))


async def solicited(browser: Browser, wsfed: WsFedTarget) -> str | None:
    """The ``wctx`` the RP sends to the STS when this browser starts signing in (None without
    a login URL: the token is then unsolicited)."""
    if wsfed.login_url is None:
        return None
    response = await browser.go("GET", wsfed.login_url, follow=False)
    location = response.header("Location") or ""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    if not 300 <= response.status < 400 or query.get("wa") != [WSIGNIN]:
        raise FixtureError(
            f"the RP's login URL did not send the browser to the STS with wa={WSIGNIN} "
            f"({outcome(response)})"
        )
    return query["wctx"][0] if "wctx" in query else None


async def post(context: Context, wsfed: WsFedTarget, wresult: str) -> Response:
    """One sign-in as a browser makes it: started at the login URL when there is one, then the
    token posted to the reply URL; never with the SCIM token."""
    browser = Browser(context.http)
    fields = {"wa": WSIGNIN, "wresult": wresult}
    wctx = await solicited(browser, wsfed)
    if wctx is not None:
        fields["wctx"] = wctx
    return await browser.go("POST", wsfed.reply_url, fields, follow=False)


async def baseline(context: Context, wsfed: WsFedTarget, token: TokenVersion) -> None:
    """The RP accepts a genuine token now, or no refusal after it can mean anything."""
    response = await post(context, wsfed, genuine(wsfed, token, regular(context)))
    if not accepted(response):
        raise FixtureError(
            f"the RP refused a genuine SAML {token} token ({outcome(response)}), so refusing "
            f"a broken one proves nothing; see wsfed.signed-accepted"
        )


@check(
    SUITE,
    "wsfed.signed-accepted",
    "A genuine signed token is accepted, SAML 2.0 and SAML 1.1",
    f"{RECIPE} §2.5, §2.4.1; SAML 1.1 Core §2.3, §2.4",
    "A RequestSecurityTokenResponse from the trusted STS, its assertion signed as the STS "
    "signs, for this realm and within its validity window, signs the person in, whether the "
    "assertion is SAML 2.0 (Entra ID) or SAML 1.1 (AD FS)." + JUDGED,
    profiles=PROFILES,
)
async def signed_accepted(context: Context) -> None:
    wsfed = target(context)
    for token in TOKEN_VERSIONS:
        response = await post(context, wsfed, genuine(wsfed, token, regular(context)))
        require(
            accepted(response),
            f"the RP refused a genuine SAML {token} token from {wsfed.shape.entity_id}: "
            f"{outcome(response)}",
        )


@check(
    SUITE,
    "wsfed.replay-refused",
    "The same token posted twice is refused the second time",
    "WS-Federation 1.2 §13.6.3 (replay); SAML 2.0 Profiles §4.1.4.5",
    "A bearer token is used once: the RP keeps the IDs of the assertions it accepted for as "
    "long as they are valid, so the first post is accepted and the second refused, each in a "
    "sign-in of its own." + JUDGED,
    profiles=PROFILES,
)
async def replay_refused(context: Context) -> None:
    wsfed = target(context)
    for token in TOKEN_VERSIONS:
        captured = genuine(wsfed, token, regular(context))
        first = await post(context, wsfed, captured)
        if not accepted(first):
            raise FixtureError(f"the RP refused a genuine SAML {token} token ({outcome(first)})")
        again = await post(context, wsfed, captured)
        require(
            not accepted(again),
            f"the RP accepted the same SAML {token} token a second time: {outcome(again)}",
        )


class WsFedRefusal(Refusal):
    """A check that the RP refuses ``idp_sim``'s tampering ``variant``, for each kind of
    assertion, each time after it accepted a genuine token."""

    suite = SUITE

    async def run(self, context: Context) -> None:
        wsfed = target(context)
        for token in TOKEN_VERSIONS:
            await baseline(context, wsfed, token)
            response = await post(
                context, wsfed, broken(wsfed, token, self.variant, regular(context))
            )
            require(
                not accepted(response),
                f"the RP accepted a SAML {token} token {BY_NAME[self.variant].description}: "
                f"{outcome(response)}",
            )


REFUSALS = (
    WsFedRefusal(
        "wrong_audience",
        "A token for another realm is refused",
        f"{RECIPE} §2.5.1.4 (AudienceRestriction); WS-Federation 1.2 §13.2.2 (wtrealm)",
        "A token whose audience is not this RP's realm was issued for another application, "
        "however well signed.",
    ),
    WsFedRefusal(
        "expired",
        "An expired token is refused",
        f"{RECIPE} §2.5.1.2 (NotOnOrAfter)",
        "A token issued an hour ago and valid five minutes is past its window, beyond any "
        "clock skew allowance.",
    ),
    WsFedRefusal(
        "unsigned",
        "An unsigned token is refused",
        "WS-Federation 1.2 §13.6.2; SAML 2.0 Profiles §4.1.3.5",
        "The STS signs every assertion; a token without a signature proves nothing.",
    ),
    WsFedRefusal(
        "wrong_key",
        "A token signed by another key is refused",
        "WS-Federation 1.2 §3.1 (token-signing keys in the STS's metadata)",
        "Signatures are verified with the trusted STS's signing certificates, never with one "
        "the token carries in KeyInfo.",
    ),
    WsFedRefusal(
        "altered",
        "A token altered after signing is refused",
        "XML Signature 1.1 §3.2 (reference validation)",
        "A NameID changed after the STS signed the assertion breaks the signature's digest.",
    ),
    WsFedRefusal(
        "wrapped",
        "A signature-wrapped forgery is refused",
        "SAML 2.0 Core §5.4.2; docs/wsfed.md (XML signature wrapping)",
        "Only what the signature covers may be read: a forged unsigned assertion where the "
        "token is read, the genuine signed one moved aside, is refused.",
    ),
    WsFedRefusal(
        "signature_moved",
        "A signature lifted out of the assertion is refused",
        "SAML 2.0 Core §5.4.1 (enveloped signature of the assertion)",
        "The signature must sit in the assertion it covers: one moved onto the envelope, the "
        "assertion then rewritten, is refused.",
    ),
    WsFedRefusal(
        "comment",
        "A comment spliced into the NameID is refused",
        "SAML 2.0 Core §5.4.3 (exclusive c14n without comments); CERT VU#475445",
        "A comment and more text spliced into the signed NameID make the name canonicalisation "
        "reads another than the one signed: the token does not verify, and an RP that reads the "
        "NameID's first text node past the signature is the CVE-2017-11427 mistake.",
    ),
    WsFedRefusal(
        "wrong_issuer",
        "A token of another STS is refused",
        f"{RECIPE} §2.2.5 (Issuer)",
        "A token whose issuer is not the trusted STS is refused, even signed with its key.",
    ),
)

register(REFUSALS, REFUSED_AFTER_GENUINE, PROFILES)
