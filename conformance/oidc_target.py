"""The ``oidc`` suite's relying party, and the OpenID provider the suite itself is.

Why the suite is the OP: every attack of OpenID Connect's catalogue (a forged ID token, a
mix-up, a replayed code, a code without PKCE) is staged by the provider or by the browser
between the two, so the runner serves ``idp_sim``'s Okta-shaped provider on a loopback port and
misbehaves on purpose, check by check. The RP is told once (before the run) to trust that OP:
its issuer (``http://127.0.0.1:{port}/oauth2/default``, or under the public URL of a tunnel or
proxy to that port), the client id and secret, and its own redirect URI registered there. The
OP signs with a key made for the run and published at its JWKS, which is where an RP reads an
OP's keys.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from idp_sim.directory import Directory, DirectoryUser
from idp_sim.oidc.provider import OidcShape, okta_oidc
from idp_sim.oidc.webapp import HostedOidcApp
from idp_sim.saml.response import SamlSubject
from idp_sim.saml.webapp import IDP_STATE, IdpServerConfig, IdpState, create_idp_app
from samlkit.certs import SigningKey

DEFAULT_PORT = 9440
DEFAULT_CLIENT_ID = "scim-conformance"
HOST = "127.0.0.1"


@functools.cache
def run_key() -> SigningKey:
    """The OP's signing key, made once per process (one run)."""
    return SigningKey.generate("scim-conformance OpenID provider")


@dataclass(frozen=True)
class OidcTarget:
    """The RP under test (where its sign-in starts, its redirect URI) and the client it is at
    the suite's OP."""

    login_url: str
    redirect_uri: str
    client_id: str
    client_secret: str
    port: int = DEFAULT_PORT
    public_url: str | None = None
    """Where the RP and the runner reach the OP when not at ``http://127.0.0.1:{port}``: a
    tunnel or a reverse proxy to that port."""
    shape: OidcShape = field(default_factory=okta_oidc)

    @property
    def origin(self) -> str:
        return (self.public_url or f"http://{HOST}:{self.port}").rstrip("/")

    @property
    def issuer(self) -> str:
        return self.origin + self.shape.issuer_path

    def client(self) -> HostedOidcApp:
        return HostedOidcApp(
            self.shape,
            self.client_id,
            self.client_secret,
            (self.redirect_uri,),
            name="scim-conformance",
        )


def directory_user(person: SamlSubject) -> DirectoryUser:
    """``person`` as the OP's directory holds them, so they can sign in there."""
    return DirectoryUser(
        id=person.user_id,
        login=person.login,
        given_name=person.first_name,
        family_name=person.last_name,
        email=person.email,
    )


@asynccontextmanager
async def serving(target: OidcTarget, people: list[SamlSubject]) -> AsyncIterator[IdpState]:
    """The OP on its loopback port while the block runs, ``people`` able to sign in; its state
    (``.oidc.tampering`` makes it misbehave)."""
    config = IdpServerConfig(
        key=run_key(),
        directory=Directory(users=[directory_user(person) for person in people]),
        apps=(),
        public_url=target.origin,
        oidc_apps=(target.client(),),
    )
    app = create_idp_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, target.port).start()
        yield app[IDP_STATE]
    finally:
        await runner.cleanup()
