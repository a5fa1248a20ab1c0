"""A tenant's single sign-on configuration: what the admin sets, and what the SP shows back.

A tenant signs in through one protocol at a time, SAML 2.0, OpenID Connect or WS-Federation
(``protocol``); everything after the protocol (JIT, groups, seats, sessions) is configured once
for all of them. WS-Federation shares the SAML description of the IdP (its entity ID, its
passive endpoint as ``idp_sso_url``, its signing certificates) and the SAML attribute names.

The settings live in the tenant's document, so a sign-in reads them with the same one
lookup that proves the tenant exists. Certificates are stored as PEM text and parsed
once per read; at most two are pinned at a time, which is what an IdP's key rollover
needs (the old and the new certificate both verify until the old one is removed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography import x509

from samlkit.certs import certificate_pem, fingerprint_sha256, load_certificate
from scim_server.core.errors import TooManyConcurrentChanges
from scim_server.storage.documents import stored_instant
from scim_server.storage.sso import SsoRepository

MAX_CERTIFICATES = 2
MAX_SETTINGS_ATTEMPTS = 20
NameIdSource = Literal["nameid", "attribute"]
Preset = Literal["okta", "entra", "jumpcloud", "custom"]
Protocol = Literal["saml", "oidc", "wsfed"]
DEFAULT_SCOPES = ("openid", "email", "profile")
DEFAULT_GUEST_USER_TYPE = "Guest"
"""The ``userType`` Entra ID gives the guests it invites (B2B), and provisions over SCIM."""
SIGNATURE_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
"""What an ID token may be signed with: public-key algorithms, checked against the IdP's JWKS."""
ClientAuth = Literal["client_secret_basic", "private_key_jwt"]
SECRET_ALGORITHMS = ("HS256", "HS384", "HS512")
"""MACs keyed with the client secret: only when the admin lists them (``oidc.algorithms``)."""


@dataclass(frozen=True)
class AttributeMap:
    """Which SAML attribute carries each profile field; names are matched case-insensitively."""

    email: str = "email"
    first_name: str = "firstName"
    last_name: str = "lastName"
    groups: str | None = "groups"


PRESETS: Mapping[str, AttributeMap] = {
    # Okta: the names an admin types in the app's Attribute Statements, camelCase by habit
    # (docs/saml.md), and a "groups" Group Attribute Statement.
    "okta": AttributeMap("email", "firstName", "lastName", "groups"),
    # Entra ID: the claim URIs of its default SAML claims, and its groups claim.
    "entra": AttributeMap(
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
        "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
    ),
    # JumpCloud: the lowercase names its attribute mapping suggests, and the group attribute
    # older JumpCloud apps call memberOf (docs/saml.md).
    "jumpcloud": AttributeMap("email", "firstname", "lastname", "memberOf"),
    "custom": AttributeMap(),
}
OIDC_PRESETS: Mapping[str, AttributeMap] = {
    # Okta: the standard claims, and the "groups" claim of a Groups claim filter (docs/oidc.md).
    "okta": AttributeMap("email", "given_name", "family_name", "groups"),
    # Entra ID: the sign-in name (UPN), which every v2.0 ID token carries, unlike ``email``.
    "entra": AttributeMap("preferred_username", "given_name", "family_name", "groups"),
    # JumpCloud: the standard claims, and "groups" with the groups scope.
    "jumpcloud": AttributeMap("email", "given_name", "family_name", "groups"),
    "custom": AttributeMap("email", "given_name", "family_name", "groups"),
}


@dataclass(frozen=True)
class OidcSettings:
    """The tenant's OpenID Connect provider and its client registered there."""

    issuer: str = ""
    """The IdP's issuer URL: its discovery document is at
    ``{issuer}/.well-known/openid-configuration``."""
    client_id: str = ""
    client_secret: str = ""
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    claims: AttributeMap = field(default_factory=lambda: OIDC_PRESETS["custom"])
    algorithms: tuple[str, ...] = ("RS256",)
    """The ID token algorithms accepted; ``none`` never, HS* only when listed here."""
    client_auth: ClientAuth = "client_secret_basic"
    """How the SP authenticates at the token endpoint: the secret, or a JWT signed with
    ``client_key``, whose public half the SP publishes (``oidc/jwks``)."""
    client_key: str | None = None
    """The tenant's own RSA private key (PKCS#8 PEM), made when private_key_jwt is chosen."""


@dataclass(frozen=True)
class WsFedSettings:
    """What only WS-Federation adds to the SAML description of the IdP."""

    realm: str | None = None
    """The ``wtrealm`` the SP sends, which the token's audience must name (the application's
    identifier at the IdP); None: the SP's own realm, ``SpEndpoints.wsfed_realm``."""


@dataclass(frozen=True)
class Branding:
    """How the tenant's sign-in pages present it; None: the pages' default (the tenant's name,
    no logo, the house colour). Checked when set (``configure``): the logo is an https URL
    and the accent a ``#rrggbb`` colour, so both can go into a page and its CSP as they are."""

    display_name: str | None = None
    logo_url: str | None = None
    accent_color: str | None = None


@dataclass(frozen=True)
class SsoSettings:
    """One tenant's SSO settings; the defaults are a disabled, unconfigured connection."""

    enabled: bool = False
    protocol: Protocol = "saml"
    preset: Preset = "custom"
    idp_entity_id: str = ""
    idp_sso_url: str = ""
    certificates: tuple[x509.Certificate, ...] = ()
    # Which value identifies the person at this IdP: the NameID, or an attribute (so the
    # same person's logins from two IdP orgs can be told apart even when the email is shared).
    name_id_source: NameIdSource = "nameid"
    name_id_attribute: str | None = None
    # The NameID format asked for in AuthnRequests and required in responses; None takes
    # whatever the IdP sends (Okta's default is "unspecified").
    name_id_format: str | None = None
    attributes: AttributeMap = field(default_factory=AttributeMap)
    jit: bool = True
    # The group displayNames an assertion may put a user in; "*" allows any, empty allows none.
    allowed_groups: tuple[str, ...] = ()
    require_signed_assertion: bool = False
    enforced: bool = False
    # The ``userType`` (compared without case, as SCIM compares it) of the users who keep their
    # password while SSO is enforced: guests, who have no account at the tenant's IdP. An IdP
    # provisions it over SCIM (Entra sends "Guest"); None: nobody does.
    guest_user_type: str | None = DEFAULT_GUEST_USER_TYPE
    # When ``enforced`` was last turned on (None while it is off): password sessions opened
    # before then stand until they expire; only a guest's may have been opened since.
    enforced_since: datetime | None = None
    allow_idp_initiated: bool = True
    clock_skew_seconds: int = 90
    session_ttl_seconds: int = 8 * 3600
    # Where the SP is reached (the root its entity ID, ACS URL, expected Audience and
    # Destination derive from), pinned when SSO is configured so no Host header can change it.
    sp_base_url: str | None = None
    branding: Branding = field(default_factory=Branding)
    oidc: OidcSettings = field(default_factory=OidcSettings)
    wsfed: WsFedSettings = field(default_factory=WsFedSettings)

    @property
    def ready(self) -> bool:
        """Whether a sign-in can be attempted at all: on, and the IdP fully described."""
        return self.enabled and not self.missing_idp_fields()

    def missing_idp_fields(self) -> list[str]:
        """What the description of the protocol's IdP still lacks for a sign-in to be tried."""
        present: Mapping[str, object] = (
            {
                "oidc.issuer": self.oidc.issuer,
                "oidc.client_id": self.oidc.client_id,
                "oidc.client_secret": self.oidc.client_secret
                or self.oidc.client_auth == "private_key_jwt",
            }
            if self.protocol == "oidc"
            else {
                "idp.entity_id": self.idp_entity_id,
                "idp.sso_url": self.idp_sso_url,
                "idp.certificates": self.certificates,
            }
        )
        return [name for name, value in present.items() if not value]

    @property
    def password_sign_in_open(self) -> bool:
        """Whether anyone may sign in with a password: everyone, unless SSO is enforced; then
        only guests, if the tenant names them."""
        return not self.enforced or self.guest_user_type is not None

    def is_guest(self, user_type: object) -> bool:
        """Whether a user of this ``userType`` is one of the tenant's guests."""
        return (
            self.guest_user_type is not None
            and isinstance(user_type, str)
            and user_type.casefold() == self.guest_user_type.casefold()
        )

    def group_allowed(self, display_name: str) -> bool:
        allowed = {name.lower() for name in self.allowed_groups}
        return "*" in allowed or display_name.lower() in allowed

    def with_certificate(self, certificate: x509.Certificate) -> SsoSettings:
        """Pin one more certificate; the oldest goes when two are already pinned."""
        kept = tuple(
            c for c in self.certificates if fingerprint_sha256(c) != fingerprint_sha256(certificate)
        )
        return replace(self, certificates=(*kept, certificate)[-MAX_CERTIFICATES:])


@dataclass(frozen=True)
class SpEndpoints:
    """The service provider's own values, for the admin to paste into the IdP."""

    tenant: str
    entity_id: str
    acs_url: str
    metadata_url: str
    login_url: str
    home_url: str
    home_path: str
    """Where a browser lands after signing in when nothing else was asked for."""
    oidc_login_url: str
    redirect_uri: str
    """The OIDC callback, registered at the IdP as the client's sign-in redirect URI."""
    jwks_uri: str
    """The public key of the tenant's private_key_jwt client authentication."""
    wsfed_login_url: str
    wsfed_reply_url: str
    """The WS-Federation ``wreply``: where the IdP posts the token, and sends sign-out."""
    wsfed_realm: str
    """The realm the SP names itself by unless the tenant sets another (``wsfed.realm``)."""
    password_reset_url: str
    """The page a reset link opens (its token follows in the fragment)."""

    def sign_in_url(self, protocol: Protocol) -> str:
        """Where a sign-in starts, for the tenant's protocol."""
        return {
            "saml": self.login_url,
            "oidc": self.oidc_login_url,
            "wsfed": self.wsfed_login_url,
        }[protocol]

    def realm(self, settings: SsoSettings) -> str:
        """The ``wtrealm`` this tenant's WS-Federation sign-ins name, and their audience."""
        return settings.wsfed.realm or self.wsfed_realm


SIGNED_OUT = "signed-out"
"""The page sign-out lands on, under the tenant's home."""


def home_path(tenant: str) -> str:
    """The tenant's sign-in home, as a path on this server."""
    return f"/sso/{tenant}/"


def sp_endpoints(root: str, tenant: str) -> SpEndpoints:
    """The SP's URLs under ``root`` (the tenant's pinned SP base URL); the entity ID is the
    metadata URL, the convention that lets an IdP fetch the metadata from the ID it is given."""
    home = home_path(tenant)
    base = f"{root.rstrip('/')}{home}"
    metadata = f"{base}saml/metadata"
    return SpEndpoints(
        tenant=tenant,
        entity_id=metadata,
        acs_url=f"{base}saml/acs",
        metadata_url=metadata,
        login_url=f"{base}saml/login",
        home_url=base,
        home_path=home,
        oidc_login_url=f"{base}oidc/login",
        redirect_uri=f"{base}oidc/callback",
        jwks_uri=f"{base}oidc/jwks",
        wsfed_login_url=f"{base}wsfed/login",
        wsfed_reply_url=f"{base}wsfed/reply",
        wsfed_realm=f"{base}wsfed",
        password_reset_url=f"{base}password-reset",
    )


def to_document(settings: SsoSettings) -> dict[str, Any]:
    """The stored form: plain BSON types, certificates as PEM."""
    return {
        "enabled": settings.enabled,
        "preset": settings.preset,
        "idp_entity_id": settings.idp_entity_id,
        "idp_sso_url": settings.idp_sso_url,
        "certificates": [certificate_pem(c) for c in settings.certificates],
        "name_id_source": settings.name_id_source,
        "name_id_attribute": settings.name_id_attribute,
        "name_id_format": settings.name_id_format,
        "attributes": {
            "email": settings.attributes.email,
            "first_name": settings.attributes.first_name,
            "last_name": settings.attributes.last_name,
            "groups": settings.attributes.groups,
        },
        "jit": settings.jit,
        "allowed_groups": list(settings.allowed_groups),
        "require_signed_assertion": settings.require_signed_assertion,
        "enforced": settings.enforced,
        "guest_user_type": settings.guest_user_type,
        "enforced_since": settings.enforced_since,
        "allow_idp_initiated": settings.allow_idp_initiated,
        "clock_skew_seconds": settings.clock_skew_seconds,
        "session_ttl_seconds": settings.session_ttl_seconds,
        "sp_base_url": settings.sp_base_url,
        "branding": asdict(settings.branding),
        "protocol": settings.protocol,
        "oidc": {
            **asdict(settings.oidc),
            "scopes": list(settings.oidc.scopes),
            "algorithms": list(settings.oidc.algorithms),
        },
        "wsfed": asdict(settings.wsfed),
    }


def from_document(document: Mapping[str, Any] | None) -> SsoSettings:
    """The settings a stored document holds; absent fields take their defaults."""
    if not document:
        return SsoSettings()
    values = dict(document)
    values["certificates"] = tuple(load_certificate(pem) for pem in values.get("certificates", ()))
    values["attributes"] = AttributeMap(**values.get("attributes", {}))
    values["allowed_groups"] = tuple(values.get("allowed_groups", ()))
    values["branding"] = Branding(**values.get("branding", {}))
    oidc = dict(values.get("oidc", {}))
    oidc["claims"] = AttributeMap(**oidc.get("claims", asdict(OIDC_PRESETS["custom"])))
    for key in ("scopes", "algorithms"):
        if key in oidc:
            oidc[key] = tuple(oidc[key])
    values["oidc"] = OidcSettings(**oidc)
    values["wsfed"] = WsFedSettings(**values.get("wsfed", {}))
    known = SsoSettings.__dataclass_fields__
    return SsoSettings(**{key: value for key, value in values.items() if key in known})


def enforcement_dated(before: SsoSettings, after: SsoSettings, now: datetime) -> SsoSettings:
    """``after`` with the moment enforcement began: ``now`` when this change turns it on, the
    moment already recorded while it stays on, None when it is off."""
    if not after.enforced:
        since = None
    elif before.enforced and before.enforced_since is not None:
        since = before.enforced_since
    else:
        since = stored_instant(now)
    return replace(after, enforced_since=since)


class SettingsStore:
    """A tenant's settings, read and changed through the tenant's document."""

    def __init__(self, repository: SsoRepository) -> None:
        self.repository = repository

    async def get(self, tenant: str) -> SsoSettings | None:
        """The tenant's settings, or None when there is no such tenant."""
        stored = await self.repository.settings_document(tenant)
        return None if stored is None else from_document(stored[0])

    async def change(
        self, tenant: str, change: Callable[[SsoSettings], SsoSettings]
    ) -> SsoSettings | None:
        """Apply ``change`` to the current settings and store the result; None: no tenant.

        The write is conditioned on the revision that was read, and re-applied on a newer
        one, so two admins changing different settings at once both keep their change.
        Whatever the change, ``enforced_since`` follows ``enforced`` (:func:`enforcement_dated`).
        """
        for _ in range(MAX_SETTINGS_ATTEMPTS):
            stored = await self.repository.settings_document(tenant)
            if stored is None:
                return None
            document, revision = stored
            current = from_document(document)
            changed = enforcement_dated(current, change(current), datetime.now(UTC))
            if await self.repository.replace_settings(tenant, revision, to_document(changed)):
                return changed
        raise TooManyConcurrentChanges(
            detail=f"the SSO settings of tenant {tenant!r} are changing too fast; retry"
        )


def certificate_view(certificate: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": certificate.subject.rfc4514_string(),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
        "fingerprint_sha256": fingerprint_sha256(certificate),
        "pem": certificate_pem(certificate),
    }
