"""The admin's JSON form of a tenant's SSO settings: read with precise errors, and written back.

PUT and PATCH share one reader: PUT applies the body to the defaults, PATCH to the stored
settings, and the nested objects (``idp``, ``name_id``, ``attributes``, ``oidc``,
``wsfed``) merge member by member as in JSON merge-patch (RFC 7396), so an admin changes one
field without restating the others.
Every refusal names the field, because the admin has only the message to fix the body with.

The view written back has the same shape, with each certificate shown in full and the SP's own
values under ``service_provider``; the reader accepts both (certificates as objects with their
``pem``, ``service_provider`` and ``enforced_since`` ignored as read-only), so what GET answers
can be PUT back as is.
The one exception is the OIDC client secret, which is write-only: the view says only whether
one is set (``oidc.client_secret_set``), so a PUT must restate it, and a PATCH keeps it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, get_args
from urllib.parse import urlsplit

from cryptography import x509
from scim2_models import InvalidValueException

from samlkit.certs import fingerprint_sha256, load_certificate
from scim_server.core.sso.oidc import client_key_id, new_client_key
from scim_server.core.sso.settings import (
    MAX_CERTIFICATES,
    OIDC_PRESETS,
    PRESETS,
    SECRET_ALGORITHMS,
    SIGNATURE_ALGORITHMS,
    Branding,
    ClientAuth,
    NameIdSource,
    Protocol,
    SsoSettings,
    certificate_view,
)

MAX_TEXT = 1024
MAX_DISPLAY_NAME = 100
MAX_LOGO_URL = 2048
LOGO_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9\-._~:/?@!$&()*+=%]*)?")
"""An https URL whose every character is safe as it is in an HTML attribute and in a CSP
source expression: no ``;`` or ``,`` (which end a CSP directive or policy), no quote, space,
fragment, user info or IPv6 literal (which a CSP host cannot name)."""
ACCENT_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")
MAX_ALLOWED_GROUPS = 1000
MAX_CLOCK_SKEW_SECONDS = 600
MIN_SESSION_TTL_SECONDS = 60
MAX_SESSION_TTL_SECONDS = 7 * 24 * 3600
READ_ONLY = frozenset({"service_provider", "enforced_since"})
OIDC_READ_ONLY = frozenset({"client_secret_set", "client_key_id"})
MAX_SCOPES = 20
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
"""A scope token of RFC 6749 §3.3: printable ASCII but space, ``"`` and ``\\``."""

Reader = Callable[[str, Any], Any]
"""Turns the JSON value found at a field's path into the settings value, or refuses it."""


def _refuse(path: str, message: str) -> InvalidValueException:
    return InvalidValueException(detail=f"{path} {message}")


def boolean(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse(path, "must be true or false")
    return value


def integer(low: int, high: int) -> Reader:
    def read(path: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _refuse(path, f"must be an integer from {low} to {high}")
        return value

    return read


def text(path: str, value: Any) -> str:
    """A name or identifier, compared exactly elsewhere, so stray whitespace is refused here."""
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise _refuse(path, f"must be a non-empty string of at most {MAX_TEXT} characters")
    if value != value.strip():
        raise _refuse(path, "must not start or end with whitespace")
    return value


def optional(read: Reader) -> Reader:
    """null is a value of its own here: no attribute, no format, no groups."""

    def read_optional(path: str, value: Any) -> Any:
        return None if value is None else read(path, value)

    return read_optional


def clearable(read: Reader) -> Reader:
    """null clears a text setting back to unset (the empty string it is stored as)."""

    def read_clearable(path: str, value: Any) -> Any:
        return "" if value is None else read(path, value)

    return read_clearable


def choice(options: tuple[str, ...]) -> Reader:
    def read(path: str, value: Any) -> str:
        if value not in options:
            raise _refuse(path, "must be one of " + ", ".join(repr(o) for o in options))
        return str(value)

    return read


def http_url(path: str, value: Any) -> str:
    """An absolute http(s) URL: where a browser is sent, or where metadata is fetched from."""
    url = text(path, value)
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or any(c.isspace() for c in url):
        raise _refuse(path, "must be an absolute http or https URL")
    return url


def base_url(path: str, value: Any) -> str:
    """Where a server is reached: an http(s) URL, maybe with a path, no query or fragment."""
    url = http_url(path, value)
    parts = urlsplit(url)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise _refuse(path, "must not carry a query or a fragment")
    return url.rstrip("/")


def _string(path: str, value: Any, valid: Callable[[str], object], message: str) -> str:
    """``value`` if it is a string ``valid`` accepts; else the refusal ``message`` names."""
    if not isinstance(value, str) or not valid(value):
        raise _refuse(path, message)
    return value


def display_name(path: str, value: Any) -> str:
    """A name shown as a page's heading: one line of printable text, not too long to fit."""
    return _string(
        path,
        value,
        lambda name: (
            0 < len(name) <= MAX_DISPLAY_NAME and name.isprintable() and name.strip() == name
        ),
        f"must be one line of 1 to {MAX_DISPLAY_NAME} printable characters, "
        "not starting or ending with a space",
    )


def logo_url(path: str, value: Any) -> str:
    """The logo's address, loaded by every visitor's browser from the page's ``<img>``: https
    only, so no page carries a mixed-content or script (``javascript:``) URL, and not
    ``data:``, which a CSP could only allow as a whole scheme (and which would make the tenant
    document, read on every sign-in, as large as the image)."""
    return _string(
        path,
        value,
        lambda url: len(url) <= MAX_LOGO_URL and LOGO_URL.fullmatch(url),
        f"must be an https URL of at most {MAX_LOGO_URL} characters, with a host name, "
        "no user info, fragment, space, quote, ';' or ','",
    )


def accent_color(path: str, value: Any) -> str:
    """A colour in ``#rrggbb`` form, kept lowercase."""
    return _string(path, value, ACCENT_COLOR.fullmatch, "must be a colour in #rrggbb form").lower()


def issuer_url(path: str, value: Any) -> str:
    """An OIDC issuer: an http(s) URL without query or fragment (OpenID Connect Discovery §2),
    kept exactly as given, since the ``iss`` of every ID token must equal it."""
    url = http_url(path, value)
    if "?" in url or "#" in url:
        raise _refuse(path, "must not carry a query or a fragment")
    return url


def pinned(settings: SsoSettings, root: str) -> SsoSettings:
    """``settings`` with the SP base URL pinned to ``root`` unless one is pinned already."""
    return settings if settings.sp_base_url else replace(settings, sp_base_url=root.rstrip("/"))


def certificates(path: str, value: Any) -> tuple[x509.Certificate, ...]:
    """PEM strings, or the certificate objects the view shows (only their ``pem`` is read)."""
    if not isinstance(value, list) or len(value) > MAX_CERTIFICATES:
        raise _refuse(path, f"must be a list of at most {MAX_CERTIFICATES} PEM certificates")
    loaded: dict[str, x509.Certificate] = {}
    for index, item in enumerate(value):
        pem = item.get("pem") if isinstance(item, dict) else item
        try:
            certificate = load_certificate(pem) if isinstance(pem, str) else None
        except ValueError:
            certificate = None
        if certificate is None:
            raise _refuse(f"{path}[{index}]", "is not a PEM X.509 certificate")
        loaded.setdefault(fingerprint_sha256(certificate), certificate)
    if len(loaded) != len(value):
        raise _refuse(path, "holds the same certificate twice")
    return tuple(loaded.values())


def scopes(path: str, value: Any) -> tuple[str, ...]:
    """The scopes asked for: scope tokens, ``openid`` among them (else no ID token comes)."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_SCOPES:
        raise _refuse(path, f"must be a list of 1 to {MAX_SCOPES} scopes")
    read = tuple(
        dict.fromkeys(
            _string(f"{path}[{i}]", scope, SCOPE_TOKEN.fullmatch, "is not a scope token")
            for i, scope in enumerate(value)
        )
    )
    if "openid" not in read:
        raise _refuse(path, "must include openid")
    return read


def algorithms(path: str, value: Any) -> tuple[str, ...]:
    """The ID token signature algorithms accepted: never ``none``; a MAC (HS*, keyed with the
    client secret) only when named here."""
    known = (*SIGNATURE_ALGORITHMS, *SECRET_ALGORITHMS)
    if not isinstance(value, list) or not value:
        raise _refuse(path, "must be a non-empty list of algorithms")
    for index, name in enumerate(value):
        if name not in known:
            raise _refuse(f"{path}[{index}]", "must be one of " + ", ".join(known))
    return tuple(dict.fromkeys(value))


def group_names(path: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_ALLOWED_GROUPS:
        raise _refuse(path, f"must be a list of at most {MAX_ALLOWED_GROUPS} group names")
    return tuple(dict.fromkeys(text(f"{path}[{i}]", name) for i, name in enumerate(value)))


@dataclass(frozen=True)
class Field:
    """One JSON member: the dataclass field it sets, and how its value is read."""

    target: str
    read: Reader


def _section(fields: Mapping[str, Field], read_only: frozenset[str] = frozenset()) -> Reader:
    def read(path: str, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            value = {key: member for key, member in value.items() if key not in read_only}
        return _read_object(path, value, fields)

    return read


IDP_FIELDS: Mapping[str, Field] = {
    "entity_id": Field("idp_entity_id", text),
    "sso_url": Field("idp_sso_url", http_url),
    "certificates": Field("certificates", certificates),
}
NAME_ID_FIELDS: Mapping[str, Field] = {
    "source": Field("name_id_source", choice(get_args(NameIdSource))),
    "attribute": Field("name_id_attribute", optional(text)),
    "format": Field("name_id_format", optional(text)),
}
ATTRIBUTE_FIELDS: Mapping[str, Field] = {
    "email": Field("email", text),
    "first_name": Field("first_name", text),
    "last_name": Field("last_name", text),
    "groups": Field("groups", optional(text)),
}
BRANDING_FIELDS: Mapping[str, Field] = {
    "display_name": Field("display_name", optional(display_name)),
    "logo_url": Field("logo_url", optional(logo_url)),
    "accent_color": Field("accent_color", optional(accent_color)),
}
OIDC_FIELDS: Mapping[str, Field] = {
    "issuer": Field("issuer", clearable(issuer_url)),
    "client_id": Field("client_id", clearable(text)),
    "client_secret": Field("client_secret", clearable(text)),
    "scopes": Field("scopes", scopes),
    "claims": Field("claims", _section(ATTRIBUTE_FIELDS)),
    "algorithms": Field("algorithms", algorithms),
    "client_auth": Field("client_auth", choice(get_args(ClientAuth))),
}
WSFED_FIELDS: Mapping[str, Field] = {
    # null: the SP's own realm (``service_provider.wsfed_realm``).
    "realm": Field("realm", optional(text)),
}
FIELDS: Mapping[str, Field] = {
    "enabled": Field("enabled", boolean),
    "protocol": Field("protocol", choice(get_args(Protocol))),
    "preset": Field("preset", choice(tuple(PRESETS))),
    "idp": Field("idp", _section(IDP_FIELDS)),
    "name_id": Field("name_id", _section(NAME_ID_FIELDS)),
    "attributes": Field("attributes", _section(ATTRIBUTE_FIELDS)),
    "jit": Field("jit", boolean),
    "allowed_groups": Field("allowed_groups", group_names),
    "require_signed_assertion": Field("require_signed_assertion", boolean),
    "enforced": Field("enforced", boolean),
    # null: no user keeps a password sign-in while SSO is enforced.
    "guest_user_type": Field("guest_user_type", optional(text)),
    "allow_idp_initiated": Field("allow_idp_initiated", boolean),
    "clock_skew_seconds": Field("clock_skew_seconds", integer(0, MAX_CLOCK_SKEW_SECONDS)),
    "session_ttl_seconds": Field(
        "session_ttl_seconds", integer(MIN_SESSION_TTL_SECONDS, MAX_SESSION_TTL_SECONDS)
    ),
    # null: not pinned yet; the admin write that stores it pins the root it reached.
    "sp_base_url": Field("sp_base_url", optional(base_url)),
    "branding": Field("branding", _section(BRANDING_FIELDS)),
    "oidc": Field("oidc", _section(OIDC_FIELDS, OIDC_READ_ONLY)),
    "wsfed": Field("wsfed", _section(WSFED_FIELDS)),
}


def _read_object(path: str, value: Any, fields: Mapping[str, Field]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse(path or "the body", "must be an object")
    changes: dict[str, Any] = {}
    for key, member in value.items():
        member_path = f"{path}.{key}" if path else key
        field = fields.get(key)
        if field is None:
            raise InvalidValueException(detail=f"unknown setting {member_path}")
        changes[field.target] = field.read(member_path, member)
    return changes


def apply(settings: SsoSettings, body: Mapping[str, Any]) -> SsoSettings:
    """``settings`` with the body's members merged in, checked as a whole.

    Choosing a preset starts the attribute names (SAML) and claim names (OIDC) over from the
    preset's; names given in the same body are then applied on top.
    """
    writable = {key: value for key, value in body.items() if key not in READ_ONLY}
    changes = _read_object("", writable, FIELDS)
    idp: dict[str, Any] = changes.pop("idp", {})
    name_id: dict[str, Any] = changes.pop("name_id", {})
    attribute_changes: dict[str, Any] = changes.pop("attributes", {})
    branding: Branding = replace(settings.branding, **changes.pop("branding", {}))
    oidc: dict[str, Any] = changes.pop("oidc", {})
    wsfed: dict[str, Any] = changes.pop("wsfed", {})
    preset = changes.get("preset")
    base = PRESETS[preset] if preset else settings.attributes
    claims = replace(
        OIDC_PRESETS[preset] if preset else settings.oidc.claims, **oidc.pop("claims", {})
    )
    updated = replace(
        settings,
        **changes,
        **idp,
        **name_id,
        attributes=replace(base, **attribute_changes),
        branding=branding,
        oidc=replace(settings.oidc, **oidc, claims=claims),
        wsfed=replace(settings.wsfed, **wsfed),
    )
    if updated.oidc.client_auth == "private_key_jwt" and not updated.oidc.client_key:
        updated = replace(updated, oidc=replace(updated.oidc, client_key=new_client_key()))
    check(updated)
    return updated


def check(settings: SsoSettings) -> None:
    """The rules that span fields, whichever request brought the settings to this state."""
    if settings.name_id_source == "attribute" and not settings.name_id_attribute:
        raise InvalidValueException(
            detail="name_id.attribute is required when name_id.source is 'attribute'"
        )
    secret = len(settings.oidc.client_secret.encode())
    for algorithm in settings.oidc.algorithms:
        # RFC 7518 §3.2: an HMAC key at least as long as the hash.
        needed = int(algorithm[2:]) // 8 if algorithm in SECRET_ALGORITHMS else 0
        if secret and secret < needed:
            raise InvalidValueException(
                detail=f"oidc.algorithms lists {algorithm}, whose key is the client secret: "
                f"it must be at least {needed} bytes long (RFC 7518 §3.2)"
            )
    missing = settings.missing_idp_fields()
    if settings.enabled and missing:
        raise InvalidValueException(detail="SSO cannot be enabled without " + ", ".join(missing))


def settings_view(settings: SsoSettings) -> dict[str, Any]:
    """The settings as the admin API shows them (the shape :func:`apply` reads)."""
    return {
        "enabled": settings.enabled,
        "preset": settings.preset,
        "idp": {
            "entity_id": settings.idp_entity_id,
            "sso_url": settings.idp_sso_url,
            "certificates": [certificate_view(c) for c in settings.certificates],
        },
        "name_id": {
            "source": settings.name_id_source,
            "attribute": settings.name_id_attribute,
            "format": settings.name_id_format,
        },
        "attributes": asdict(settings.attributes),
        "jit": settings.jit,
        "allowed_groups": list(settings.allowed_groups),
        "require_signed_assertion": settings.require_signed_assertion,
        "enforced": settings.enforced,
        "guest_user_type": settings.guest_user_type,
        "enforced_since": settings.enforced_since.isoformat() if settings.enforced_since else None,
        "allow_idp_initiated": settings.allow_idp_initiated,
        "clock_skew_seconds": settings.clock_skew_seconds,
        "session_ttl_seconds": settings.session_ttl_seconds,
        "sp_base_url": settings.sp_base_url,
        "branding": asdict(settings.branding),
        "protocol": settings.protocol,
        "oidc": {
            "issuer": settings.oidc.issuer or None,
            "client_id": settings.oidc.client_id or None,
            "client_secret_set": bool(settings.oidc.client_secret),
            "scopes": list(settings.oidc.scopes),
            "claims": asdict(settings.oidc.claims),
            "algorithms": list(settings.oidc.algorithms),
            "client_auth": settings.oidc.client_auth,
            "client_key_id": client_key_id(settings.oidc.client_key)
            if settings.oidc.client_key
            else None,
        },
        "wsfed": asdict(settings.wsfed),
    }
