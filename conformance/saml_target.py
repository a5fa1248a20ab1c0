"""What the ``saml`` suite signs in to, and the IdP identity it signs as.

Why files: the SP under test must be told once which IdP to trust (entity ID and signing
certificate), usually by importing the IdP's metadata; every later run then signs with that same
key. :func:`write` creates the identity and its metadata (keeping a key that already exists, so
re-running it never breaks an SP that was configured with it); :func:`load` reads it for a run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from idp_sim.saml.response import IdentityProvider, ServiceProvider
from idp_sim.saml.shapes import IdpShape, jumpcloud, okta
from samlkit.certs import SigningKey, certificate_pem

SHAPES: Mapping[str, Callable[[], IdpShape]] = {"okta": okta, "jumpcloud": jumpcloud}
SSO_ORIGIN = "https://idp.scim-conformance.invalid"
"""The IdP sign-in origin the metadata names. Nothing answers there (``.invalid``): the runner
only ever sends IdP-initiated responses, and the URL exists for SPs that insist on one."""
KEY_FILE = "saml-idp-key.pem"
CERT_FILE = "saml-idp-cert.pem"
METADATA_FILE = "saml-idp-metadata.xml"


@dataclass(frozen=True)
class SamlTarget:
    """The SP under test (its ACS URL and entity ID) and the IdP it trusts."""

    acs_url: str
    sp_entity_id: str
    idp: IdentityProvider

    @property
    def sp(self) -> ServiceProvider:
        return ServiceProvider(entity_id=self.sp_entity_id, acs_url=self.acs_url)


@dataclass(frozen=True)
class IdpFiles:
    key: Path
    cert: Path
    metadata: Path


def shape(vendor: str, entity_id: str | None = None) -> IdpShape:
    """The vendor's response layout, under another entity ID when the SP expects one."""
    default = SHAPES[vendor]()
    return replace(default, entity_id=entity_id) if entity_id else default


def sso_url(idp: IdentityProvider) -> str:
    return SSO_ORIGIN + idp.shape.sso_path


def load(key_path: Path, cert_path: Path, idp_shape: IdpShape) -> IdentityProvider:
    """The IdP signing with the PEM key and certificate; OSError or ValueError if unusable."""
    key = SigningKey.from_pem(key_path.read_bytes(), cert_path.read_bytes())
    return IdentityProvider(idp_shape, key)


def write(directory: Path, idp_shape: IdpShape) -> tuple[IdentityProvider, IdpFiles]:
    """Create (or reuse) the key in ``directory`` and write the metadata the SP must import."""
    directory.mkdir(parents=True, exist_ok=True)
    files = IdpFiles(directory / KEY_FILE, directory / CERT_FILE, directory / METADATA_FILE)
    if files.key.exists() and files.cert.exists():
        idp = load(files.key, files.cert, idp_shape)
    else:
        key = SigningKey.generate(f"scim-conformance IdP {idp_shape.entity_id}")
        descriptor = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key.private_key_pem())
        files.cert.write_text(certificate_pem(key.certificate), encoding="ascii")
        idp = IdentityProvider(idp_shape, key)
    files.metadata.write_bytes(idp.metadata_xml(SSO_ORIGIN))
    return idp, files
