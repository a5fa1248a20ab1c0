"""What differs between an Okta-shaped and a JumpCloud-shaped IdP (docs/saml.md).

Everything vendor-specific lives in one frozen :class:`IdpShape`, so the response builder has no
``if vendor == ...`` branches and a test can tweak one knob with ``dataclasses.replace``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Literal

from samlkit.namespaces import EMAIL

Vendor = Literal["okta", "jumpcloud", "entra"]
NameIdSource = Literal["email", "login", "id"]
JumpCloudSigning = Literal["assertion", "response", "both"]

_OKTA_ID_DIGITS = 25


@dataclass(frozen=True)
class IdpShape:
    """One simulated IdP app's settings.

    ``attributes`` maps a SAML attribute name to the :class:`~idp_sim.saml.response.SamlSubject`
    field it carries (``email``, ``first_name``, ``last_name``, ``login``, ``user_id``).
    """

    vendor: Vendor
    entity_id: str
    sso_path: str
    metadata_path: str
    sign_response: bool
    sign_assertion: bool
    name_id_format: str
    name_id_source: NameIdSource
    attributes: Mapping[str, str] = field(hash=False)
    groups_attribute: str | None
    validity: timedelta = timedelta(minutes=5)
    protocol_prefix: str = "saml2p"
    assertion_prefix: str = "saml2"
    id_style: Literal["decimal", "hex"] = "decimal"

    def __post_init__(self) -> None:
        # A read-only copy: a shape is shared by every response and must not change under them.
        object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))

    def new_id(self) -> str:
        """A fresh message ID in the vendor's style: Okta ``id`` + digits, JumpCloud ``_`` + hex."""
        if self.id_style == "decimal":
            return "id" + str(secrets.randbelow(10**_OKTA_ID_DIGITS)).zfill(_OKTA_ID_DIGITS)
        return "_" + secrets.token_hex(16)


def okta(
    app_name: str = "scim_toolkit",
    key: str = "exk4x6wko7PcvdVq80x6",
    *,
    sign_response: bool = True,
    sign_assertion: bool = True,
    groups_attribute: str | None = "groups",
    name_id_format: str = EMAIL,
    name_id_source: NameIdSource = "email",
) -> IdpShape:
    """Okta's AIW SAML app: issuer ``http://www.okta.com/{key}``, both signatures by default."""
    return IdpShape(
        vendor="okta",
        entity_id=f"http://www.okta.com/{key}",
        sso_path=f"/app/{app_name}/{key}/sso/saml",
        metadata_path=f"/app/{key}/sso/saml/metadata",
        sign_response=sign_response,
        sign_assertion=sign_assertion,
        name_id_format=name_id_format,
        name_id_source=name_id_source,
        attributes={"email": "email", "firstName": "first_name", "lastName": "last_name"},
        groups_attribute=groups_attribute,
    )


def jumpcloud(
    custom_value: str = "scim-toolkit",
    *,
    entity_id: str = "JumpCloud",
    sign: JumpCloudSigning = "assertion",
    groups_attribute: str | None = "memberOf",
    name_id_format: str = EMAIL,
    name_id_source: NameIdSource = "email",
) -> IdpShape:
    """JumpCloud's custom SAML app: a free entity ID and one signature (assertion or response)."""
    return IdpShape(
        vendor="jumpcloud",
        entity_id=entity_id,
        sso_path=f"/saml2/{custom_value}",
        metadata_path=f"/saml2/{custom_value}/metadata",
        sign_response=sign in ("response", "both"),
        sign_assertion=sign in ("assertion", "both"),
        name_id_format=name_id_format,
        name_id_source=name_id_source,
        attributes={"email": "email", "firstname": "first_name", "lastname": "last_name"},
        groups_attribute=groups_attribute,
        protocol_prefix="samlp",
        assertion_prefix="saml",
        id_style="hex",
    )


ENTRA_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
ENTRA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def entra_wsfed(tenant_id: str = ENTRA_TENANT) -> IdpShape:
    """An Entra ID (or AD FS) WS-Federation application: the STS ``https://sts.windows.net/
    {tenant}/`` issues SAML 2.0 tokens whose claims are named by their claim type URIs, the
    assertion signed and nothing else (there is no Response to sign)."""
    return IdpShape(
        vendor="entra",
        entity_id=f"https://sts.windows.net/{tenant_id}/",
        sso_path=f"/{tenant_id}/wsfed",
        metadata_path=f"/{tenant_id}/federationmetadata/2007-06/federationmetadata.xml",
        sign_response=False,
        sign_assertion=True,
        name_id_format=EMAIL,
        name_id_source="email",
        attributes={
            f"{ENTRA_CLAIMS}/emailaddress": "email",
            f"{ENTRA_CLAIMS}/givenname": "first_name",
            f"{ENTRA_CLAIMS}/surname": "last_name",
            f"{ENTRA_CLAIMS}/name": "login",
        },
        groups_attribute="http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        assertion_prefix="saml",
        id_style="hex",
    )
