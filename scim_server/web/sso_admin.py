"""The admin API for a tenant's single sign-on, behind the admin token like the rest of /admin.

Settings (GET/PUT/PATCH), the pinned IdP certificates (upload, unpin), IdP metadata import
(a document or its URL), the sign-in log with the precise reason for every failure, the
link that starts a test sign-in, and a user's one-time password reset link. Every answer that
changes settings is the full view, so the admin sees at once what the SP now expects and what
to paste into the IdP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from cryptography import x509
from scim2_models import ConflictException, InvalidValueException, NotFoundException

from samlkit.certs import certificate_pem, fingerprint_sha256, load_certificate
from samlkit.metadata import parse_idp_metadata, parse_wsfed_metadata
from scim_server.core.errors import UnsupportedMediaTypeException, unknown_tenant
from scim_server.core.sso import configure
from scim_server.core.sso.service import (
    MAX_RESET_LINK_SECONDS,
    MIN_RESET_LINK_SECONDS,
    RESET_LINK_LIFETIME,
)
from scim_server.core.sso.settings import MAX_CERTIFICATES, SpEndpoints, SsoSettings, sp_endpoints
from scim_server.web.admin import (
    existing_tenant,
    int_parameter,
)
from scim_server.web.idp_metadata import fetch_metadata
from scim_server.web.responses import ACCEPTED_CONTENT_TYPES, json_response, read_object
from scim_server.web.sso import origin
from scim_server.web.state import services

CERTIFICATE_TYPES = frozenset(
    {"text/plain", "application/x-pem-file", "application/pkix-cert", "application/octet-stream"}
)
METADATA_TYPES = frozenset({"application/samlmetadata+xml", "application/xml", "text/xml"})
LOG_MAX_LIMIT = 1000
LOG_DEFAULT_LIMIT = 100


async def tenant_settings(request: web.Request) -> tuple[str, SsoSettings]:
    """The tenant the URL names and its settings, read in the one lookup that proves it exists."""
    name = request.match_info["name"]
    settings = await services(request).sso.stored_settings.get(name)
    if settings is None:
        raise unknown_tenant(name)
    return name, settings


def _pin(request: web.Request) -> str:
    """The SP base URL pinned by the first settings write: the configured public URL, else the
    root this admin request reached (an explicit ``sp_base_url`` in the body wins)."""
    return origin(request).root


def _endpoints(request: web.Request, tenant: str, settings: SsoSettings) -> SpEndpoints:
    """The SP's values: from the pinned base URL, or from the one the next write would pin."""
    return sp_endpoints(settings.sp_base_url or _pin(request), tenant)


def _view(request: web.Request, tenant: str, settings: SsoSettings) -> dict[str, Any]:
    """The settings, and the SP's own values the admin enters in the IdP."""
    sp = _endpoints(request, tenant, settings)
    return {
        **configure.settings_view(settings),
        "service_provider": {
            "tenant": tenant,
            "entity_id": sp.entity_id,
            "acs_url": sp.acs_url,
            "metadata_url": sp.metadata_url,
            "login_url": sp.sign_in_url(settings.protocol),
            "redirect_uri": sp.redirect_uri,
            "jwks_uri": sp.jwks_uri,
            "wsfed_realm": sp.realm(settings),
            "wsfed_reply_url": sp.wsfed_reply_url,
        },
    }


async def _save(
    request: web.Request, tenant: str, change: Callable[[SsoSettings], SsoSettings]
) -> web.Response:
    """Apply ``change`` to the settings as they are when written (not as first read), pinning
    the SP base URL if it is not pinned yet: from then on no Host header can move the SP."""
    root = _pin(request)
    settings = await services(request).sso.stored_settings.change(
        tenant, lambda current: configure.pinned(change(current), root)
    )
    if settings is None:
        raise unknown_tenant(tenant)
    return json_response(_view(request, tenant, settings))


async def show(request: web.Request) -> web.Response:
    tenant, settings = await tenant_settings(request)
    return json_response(_view(request, tenant, settings))


async def replace_settings(request: web.Request) -> web.Response:
    """PUT: the body is the whole configuration; whatever it leaves out takes its default."""
    tenant, _ = await tenant_settings(request)
    replacement = configure.apply(SsoSettings(), await read_object(request))
    return await _save(request, tenant, lambda _: replacement)


async def patch_settings(request: web.Request) -> web.Response:
    """PATCH: a JSON merge-patch of the current configuration."""
    tenant, current = await tenant_settings(request)
    body = await read_object(request)
    configure.apply(current, body)  # an invalid body is refused before anything is written
    return await _save(request, tenant, lambda settings: configure.apply(settings, body))


async def _uploaded_certificate(request: web.Request) -> x509.Certificate:
    if request.content_type in ACCEPTED_CONTENT_TYPES:
        pem = (await read_object(request)).get("pem")
        if not isinstance(pem, str):
            raise InvalidValueException(detail="pem must be the certificate as PEM text")
        data: bytes | str = pem
    elif request.content_type in CERTIFICATE_TYPES:
        data = await request.read()
    else:
        raise UnsupportedMediaTypeException(
            detail=f"{request.content_type} is not accepted; send a PEM (text/plain, "
            'application/x-pem-file), DER (application/pkix-cert) or JSON {"pem": ...}'
        )
    try:
        return load_certificate(data)
    except ValueError:
        raise InvalidValueException(
            detail="the body is not an X.509 certificate in PEM or DER form"
        ) from None


async def add_certificate(request: web.Request) -> web.Response:
    """Pin one more IdP certificate; with two pinned already the older one goes (rollover)."""
    tenant, _ = await tenant_settings(request)
    certificate = await _uploaded_certificate(request)
    return await _save(request, tenant, lambda current: current.with_certificate(certificate))


def _fingerprint_key(fingerprint: str) -> str:
    """Fingerprints compare without colons and case, however the admin copied them."""
    return fingerprint.replace(":", "").upper()


async def remove_certificate(request: web.Request) -> web.Response:
    tenant, _ = await tenant_settings(request)
    fingerprint = request.match_info["fingerprint"]

    def unpinned(settings: SsoSettings) -> SsoSettings:
        kept = tuple(
            c
            for c in settings.certificates
            if _fingerprint_key(fingerprint_sha256(c)) != _fingerprint_key(fingerprint)
        )
        if len(kept) == len(settings.certificates):
            raise NotFoundException(
                detail=f"no pinned certificate has the fingerprint {fingerprint!r}"
            )
        if settings.enabled and not kept:
            raise ConflictException(
                detail="the last pinned certificate cannot be removed while SSO is enabled; "
                "pin its successor first, or disable SSO"
            )
        return replace(settings, certificates=kept)

    return await _save(request, tenant, unpinned)


async def _metadata_document(request: web.Request) -> bytes:
    if request.content_type in METADATA_TYPES:
        return await request.read()
    if request.content_type in ACCEPTED_CONTENT_TYPES:
        body = await read_object(request)
        if set(body) != {"url"}:
            raise InvalidValueException(detail='send {"url": ...} and nothing else')
        return await fetch_metadata(configure.http_url("url", body["url"]))
    raise UnsupportedMediaTypeException(
        detail=f"{request.content_type} is not accepted; send the metadata as "
        'application/samlmetadata+xml, or JSON {"url": ...}'
    )


async def import_metadata(request: web.Request) -> web.Response:
    """Point the tenant at the IdP a metadata document describes: its entity ID, sign-in URL and
    signing certificates (replacing the pinned ones); every other setting is kept. A tenant
    signing in with WS-Federation reads it as WS-Federation metadata (its STS role)."""
    tenant, settings = await tenant_settings(request)
    document = await _metadata_document(request)
    wsfed = settings.protocol == "wsfed"
    try:
        metadata = (parse_wsfed_metadata if wsfed else parse_idp_metadata)(document)
    except ValueError as error:
        raise InvalidValueException(detail=f"the IdP metadata is not usable: {error}") from None
    if metadata.sso_url is None:
        raise InvalidValueException(
            detail="the IdP metadata has no PassiveRequestorEndpoint address"
            if wsfed
            else "the IdP metadata has no SingleSignOnService with the "
            "HTTP-Redirect or HTTP-POST binding"
        )
    # One certificate listed under two KeyDescriptors is one certificate to pin.
    pems = list(dict.fromkeys(certificate_pem(c) for c in metadata.certificates))
    if not 1 <= len(pems) <= MAX_CERTIFICATES:
        raise InvalidValueException(
            detail=f"the IdP metadata lists {len(pems)} signing certificates; "
            f"1 to {MAX_CERTIFICATES} can be pinned"
        )
    idp = {"entity_id": metadata.entity_id, "sso_url": metadata.sso_url, "certificates": pems}
    configure.apply(settings, {"idp": idp})  # refused before anything is written
    return await _save(request, tenant, lambda current: configure.apply(current, {"idp": idp}))


def _entry_view(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in entry.items()
    }


async def log(request: web.Request) -> web.Response:
    """The tenant's sign-in attempts, newest first, with the precise outcome of each."""
    tenant = await existing_tenant(request)
    limit = int_parameter(request, "limit", 1, LOG_MAX_LIMIT) or LOG_DEFAULT_LIMIT
    entries = await services(request).sso.log_entries(tenant, limit)
    return json_response({"entries": [_entry_view(entry) for entry in entries]})


async def start_test(request: web.Request) -> web.Response:
    """A link the admin opens to try the IdP configuration before enabling it for everyone."""
    tenant, settings = await tenant_settings(request)
    missing = settings.missing_idp_fields()
    if missing:
        raise ConflictException(detail="a test sign-in needs " + ", ".join(missing))
    ticket = services(request).sso.codec.test_ticket(tenant)
    login = _endpoints(request, tenant, settings).sign_in_url(settings.protocol)
    return json_response({"url": f"{login}?{urlencode({'test': ticket})}"})


RESET_LIFETIME = configure.integer(MIN_RESET_LINK_SECONDS, MAX_RESET_LINK_SECONDS)


async def issue_reset_link(request: web.Request) -> web.Response:
    """201 with a one-time link for the user to set a password (``{"ttl_seconds": N}``: how
    long it lives, 15 minutes unless asked); 409 while SSO is enforced and the user is not a
    guest, or the user is deactivated. The token is only in the link's fragment."""
    tenant, settings = await tenant_settings(request)
    body = await read_object(request) if request.can_read_body else {}
    unknown = sorted(set(body) - {"ttl_seconds"})
    if unknown:
        raise InvalidValueException(
            detail=f'unknown member {unknown[0]}: send {{"ttl_seconds": N}}'
        )
    lifetime = (
        timedelta(seconds=RESET_LIFETIME("ttl_seconds", body["ttl_seconds"]))
        if "ttl_seconds" in body
        else RESET_LINK_LIFETIME
    )
    link = await services(request).sso.issue_reset_link(
        tenant,
        settings,
        origin(request),
        request.match_info["user_id"],
        lifetime,
        datetime.now(UTC),
    )
    return json_response(
        {
            "url": link.url,
            "expires_at": link.expires.isoformat(),
            "user_id": link.user_id,
            "user_name": link.user_name,
        },
        status=201,
    )
