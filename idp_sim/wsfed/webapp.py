"""The WS-Federation STS of ``idp-sim idp serve``: Entra ID's passive endpoint for one
registered application (its realm and reply URL), and its federation metadata.

``GET {sso_path}?wa=wsignin1.0&wtrealm=…[&wreply=…][&wctx=…]`` signs the person in (the shared
sign-in page of the SAML web app) and has the browser post the token to the registered reply
URL, as Entra does: a realm that is not the registered one, or a ``wreply`` elsewhere, gets the
IdP's error page, never a token. ``wa=wsignout1.0`` ends the IdP session and returns to a
``wreply`` on the reply URL's site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from idp_sim.saml.response import SamlSubject
from idp_sim.saml.shapes import IdpShape, entra_wsfed
from idp_sim.wsfed.token import RelyingParty, TokenVersion, WsFedIdp
from samlkit.bindings import post_form
from samlkit.certs import SigningKey

WSIGNIN = "wsignin1.0"
WSIGNOUT = "wsignout1.0"


@dataclass(frozen=True)
class HostedWsFedApp:
    """One WS-Federation application at the STS: the relying party it is registered for."""

    rp: RelyingParty
    shape: IdpShape = field(default_factory=entra_wsfed)
    token: TokenVersion = "2.0"
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or f"{self.shape.vendor}-wsfed"


@dataclass(frozen=True)
class WsFedPending:
    """A WS-Federation sign-in waiting for a person: the context to echo back."""

    app: HostedWsFedApp
    context: str | None
    force_authn: bool = False


@dataclass(frozen=True)
class ServedWsFedApp:
    """A hosted application with the STS that signs its tokens."""

    app: HostedWsFedApp
    idp: WsFedIdp

    @classmethod
    def of(cls, app: HostedWsFedApp, key: SigningKey) -> ServedWsFedApp:
        return cls(app, WsFedIdp(app.shape, key, app.token))

    def refusal(self, realm: str | None, reply: str | None) -> str | None:
        """Why the STS will not issue a token for this request, or None."""
        if realm != self.app.rp.realm:
            return f"The realm {realm!r} is not the identifier registered for {self.app.label!r}."
        if reply is not None and reply != self.app.rp.reply_url:
            return f"The reply URL {reply!r} is not the one registered for {self.app.label!r}."
        return None

    def sign_out_return(self, reply: str | None) -> str | None:
        """Where sign-out returns: a ``wreply`` on the registered reply URL's site, else None."""
        if reply is None:
            return None
        registered, asked = urlsplit(self.app.rp.reply_url), urlsplit(reply)
        same_site = (asked.scheme, asked.netloc) == (registered.scheme, registered.netloc)
        return reply if same_site else None

    def answer(self, pending: WsFedPending, subject: SamlSubject) -> str:
        """The auto-posting form carrying the signed token to the registered reply URL."""
        fields = {"wa": WSIGNIN, "wresult": self.idp.wresult(subject, self.app.rp)}
        if pending.context is not None:
            fields["wctx"] = pending.context
        return post_form(self.app.rp.reply_url, fields, title=f"Signing in to {self.app.label}")
