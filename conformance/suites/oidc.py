"""The ``oidc`` suite: an OpenID Connect relying party signs a person in through a genuine
authorization code flow, and refuses every forgery of ``idp_sim``'s tampering catalogue.

Why it can run against any RP: the suite is the OP (``conformance.oidc_target``), and drives
the browser between the two: it opens the RP's login URL, follows the redirect to the OP's
authorization endpoint, signs the person in there, and follows the OP's redirect to the RP's
callback, whose answer is judged on the HTTP status alone, as in the ``saml`` suite (2xx or 3xx
accepted, 4xx or 5xx refused). Each refusal check first has a genuine sign-in accepted, then
the OP (or the browser) misbehaves in one way for a second sign-in: ``id_token`` variants
answer a forged ID token at the token endpoint, ``mix_up`` names another issuer in the
authorization response, ``replayed_code`` brings back the first sign-in's code and
``missing_pkce`` strips the PKCE challenge from the authorization request.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from conformance.browser import Browser
from conformance.checks import Context, check, fail, require, skip
from conformance.fixtures import FixtureError
from conformance.http import Response
from conformance.oidc_target import OidcTarget, serving
from conformance.options import option
from conformance.refusals import Refusal, register
from conformance.suites.saml import JUDGED, accepted, outcome, regular
from idp_sim.oidc.tampering import BY_NAME
from idp_sim.saml.response import SamlSubject
from idp_sim.saml.webapp import IdpState

SUITE = "oidc"
PROFILES = ("OpenID Connect RP",)
"""The verdict line the suite's checks count towards, as a certification conversation quotes it."""
CORE = "OpenID Connect Core 1.0"
REFUSED_AFTER_GENUINE = (
    " The same check first signs the person in genuinely, which must be accepted."
)
PKCE = ("code_challenge", "code_challenge_method")


def target(context: Context) -> OidcTarget:
    """The RP and its client at the suite's OP; the check skips when the run was given none."""
    found = option(context, "oidc")
    if not isinstance(found, OidcTarget):
        skip(
            "no OpenID Connect RP: run with --oidc-login-url, --oidc-redirect-uri and the client "
            "secret ($SCIM_OIDC_CLIENT_SECRET), the RP trusting the suite's OP (its issuer "
            "http://127.0.0.1:PORT/oauth2/default, --oidc-op-port)"
        )
    return found


def query_of(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def with_query(url: str, query: Mapping[str, str]) -> str:
    return urllib.parse.urlsplit(url)._replace(query=urllib.parse.urlencode(query)).geturl()


@dataclass(frozen=True)
class SignIn:
    """One sign-in as the browser saw it: the RP's authorization request, the callback the OP
    sent the browser to, and the RP's answer there."""

    request: str
    callback: str
    answer: Response


async def authorization_url(browser: Browser, oidc: OidcTarget) -> str:
    """Where the RP's login URL sends the browser: the OP's authorization endpoint."""
    response = await browser.go("GET", oidc.login_url, follow=False)
    location = response.header("Location") or ""
    if not 300 <= response.status < 400 or not location.startswith(oidc.origin):
        raise FixtureError(
            f"the RP's login URL did not send the browser to the suite's OP at {oidc.issuer} "
            f"({outcome(response)}): is the RP configured to trust it?"
        )
    return location


async def sign_in(
    context: Context,
    oidc: OidcTarget,
    person: SamlSubject,
    *,
    without: tuple[str, ...] = (),
    code: str | None = None,
) -> SignIn:
    """Sign ``person`` in from the RP's login URL to its callback, in a browser of its own:
    ``without`` drops parameters from the authorization request, ``code`` replaces the code
    the OP sent back."""
    browser = Browser(context.http)
    sent = await authorization_url(browser, oidc)
    query = {k: v for k, v in query_of(sent).items() if k not in without}
    request = with_query(sent, query)
    response = await browser.go("GET", request, follow=False)
    if response.status == 303:  # the OP's sign-in page
        location = urllib.parse.urljoin(request, response.header("Location") or "")
        form = {"txn": query_of(location).get("txn", ""), "login": person.login}
        response = await browser.go("POST", f"{oidc.origin}/signin", form, follow=False)
    callback = response.header("Location") or ""
    if response.status != 302 or not callback.startswith(oidc.redirect_uri):
        raise FixtureError(
            f"the OP did not send the browser back to the redirect URI {oidc.redirect_uri} "
            f"({outcome(response)}); is the RP's authorization request valid?"
        )
    if code is not None:
        callback = with_query(callback, {**query_of(callback), "code": code})
    return SignIn(sent, callback, await browser.go("GET", callback, follow=False))


async def baseline(context: Context, oidc: OidcTarget) -> SignIn:
    """The RP accepts a genuine sign-in now, or no refusal after it can mean anything."""
    genuine = await sign_in(context, oidc, regular(context))
    if not accepted(genuine.answer):
        raise FixtureError(
            f"the RP refused a genuine sign-in ({outcome(genuine.answer)}), so refusing a "
            f"broken one proves nothing; see oidc.signed-accepted"
        )
    return genuine


@check(
    SUITE,
    "oidc.signed-accepted",
    "A genuine authorization code flow signs the person in",
    f"{CORE} §3.1.2.7, §3.1.3.5, §3.1.3.7",
    "An authorization response from the trusted OP with its code, exchanged at the token "
    "endpoint for an RS256 ID token signed by a key of the OP's JWKS, for this client, this "
    "issuer, this sign-in's nonce and unexpired, signs the person in." + JUDGED,
    profiles=PROFILES,
)
async def signed_accepted(context: Context) -> None:
    oidc = target(context)
    async with serving(oidc, [regular(context)]):
        genuine = await sign_in(context, oidc, regular(context))
    require(
        accepted(genuine.answer),
        f"the RP refused a genuine sign-in at {oidc.issuer}: {outcome(genuine.answer)}",
    )


class OidcRefusal(Refusal):
    """A check that the RP refuses the tampering ``variant`` of ``idp_sim``'s catalogue, in a
    sign-in after a genuine one it accepted."""

    suite = SUITE

    async def run(self, context: Context) -> None:
        oidc = target(context)
        person = regular(context)
        async with serving(oidc, [person]) as op:
            genuine = await baseline(context, oidc)
            broken = await self.stage(context, oidc, op, person, genuine)
        variant = BY_NAME[self.variant]
        require(
            not accepted(broken.answer),
            f"the RP accepted {variant.name} ({variant.description}): {outcome(broken.answer)}",
        )

    async def stage(
        self,
        context: Context,
        oidc: OidcTarget,
        op: IdpState,
        person: SamlSubject,
        genuine: SignIn,
    ) -> SignIn:
        """The second sign-in, broken the variant's way."""
        variant = BY_NAME[self.variant]
        if variant.kind != "flow":
            op.oidc.tampering = variant
            return await sign_in(context, oidc, person)
        if self.variant == "replayed_code":
            return await sign_in(context, oidc, person, code=query_of(genuine.callback)["code"])
        if PKCE[0] not in query_of(genuine.request):
            fail("the RP's authorization request carries no PKCE code_challenge (RFC 7636)")
        return await sign_in(context, oidc, person, without=PKCE)


REFUSALS = (
    OidcRefusal(
        "wrong_audience",
        "An ID token for another client is refused",
        f"{CORE} §3.1.3.7 rule 3",
        "The Client MUST validate that the aud Claim contains its client_id; an ID token for "
        "another client, however well signed, is not for it.",
    ),
    OidcRefusal(
        "wrong_issuer",
        "An ID token of another issuer is refused",
        f"{CORE} §3.1.3.7 rule 2",
        "The Issuer Identifier of the OP MUST exactly match the iss Claim.",
    ),
    OidcRefusal(
        "expired",
        "An expired ID token is refused",
        f"{CORE} §3.1.3.7 rule 9",
        "The current time MUST be before the time in the exp Claim (here an hour past it).",
    ),
    OidcRefusal(
        "alg_none",
        "An unsigned ID token (alg none) is refused",
        f"{CORE} §3.1.3.7 rules 6-8; RFC 8725 §3.1",
        "The ID token is signed with the algorithm the client registered (RS256 by default); "
        "alg none is never accepted from the token endpoint of an OP that signs.",
    ),
    OidcRefusal(
        "wrong_key",
        "An ID token signed by another key under the OP's kid is refused",
        f"{CORE} §3.1.3.7 rule 6, §10.1",
        "The signature is verified with the OP's keys from its jwks_uri; a token signed by "
        "any other key, whatever kid it names, does not verify.",
    ),
    OidcRefusal(
        "hs256_key_confusion",
        "An HS256 token keyed with the OP's public key is refused",
        f"{CORE} §3.1.3.7 rule 7; RFC 8725 §2.1, §3.1",
        "The algorithm is the one expected, never the one the token's header names: an HS256 "
        "MAC whose secret is the OP's RSA public key is a forgery anyone can make.",
    ),
    OidcRefusal(
        "nonce_mismatch",
        "An ID token for another sign-in's nonce is refused",
        f"{CORE} §3.1.3.7 rule 11, §15.5.2",
        "The nonce Claim MUST equal the nonce this sign-in's authentication request sent; "
        "another one is an ID token injected from another sign-in.",
    ),
    OidcRefusal(
        "mix_up",
        "An authorization response from another issuer is refused",
        "RFC 9207 §2.4; RFC 9700 §4.4",
        "An OP that advertises authorization_response_iss_parameter_supported sends iss; the "
        "client MUST compare it with the issuer it sent the request to, and refuse another.",
    ),
    OidcRefusal(
        "replayed_code",
        "An authorization code already exchanged is refused",
        "RFC 6749 §4.1.2, §10.5; RFC 9700 §4.5",
        "A code is used once: the first sign-in's code, brought back in a fresh sign-in (its "
        "own valid state), is refused by the OP's token endpoint, so the sign-in fails.",
    ),
    OidcRefusal(
        "missing_pkce",
        "A code obtained without the PKCE challenge is refused",
        "RFC 7636 §4.4-§4.6; RFC 9700 §2.1.1",
        "The RP sends a code_challenge and the code_verifier that answers it; a code the OP "
        "issued without the challenge (an attacker's authorization request) does not "
        "redeem with the verifier, so the sign-in fails.",
    ),
)

register(REFUSALS, REFUSED_AFTER_GENUINE + JUDGED, PROFILES)
