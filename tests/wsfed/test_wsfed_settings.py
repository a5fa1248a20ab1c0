"""The WS-Federation settings through the admin API: the protocol, the realm, and the import of
an STS's federation metadata, with 400s that name the field."""

from __future__ import annotations

from typing import Any

from idp_sim.saml.shapes import entra_wsfed
from idp_sim.wsfed.token import WsFedIdp
from samlkit.certs import SigningKey, certificate_pem
from tests.support.scim import ADMIN, Scim, scim_error

SSO = "/admin/tenants/acme/sso"
STS = "https://login.microsoftonline.com"


async def _admin(scim: Scim, method: str, path: str, status: int, **kwargs: Any) -> Any:
    response = await scim.client.request(method, path, headers=ADMIN, **kwargs)
    assert response.status == status, await response.text()
    return await response.json()


async def test_a_tenant_signs_in_with_wsfed_at_its_realm(scim: Scim, sts_key: SigningKey) -> None:
    shape = entra_wsfed()
    body = {
        "protocol": "wsfed",
        "enabled": True,
        "idp": {
            "entity_id": shape.entity_id,
            "sso_url": f"{STS}{shape.sso_path}",
            "certificates": [certificate_pem(sts_key.certificate)],
        },
        "wsfed": {"realm": "spn:00000000-aaaa-bbbb-cccc-000000000000"},
    }
    view = await _admin(scim, "PUT", SSO, 200, json=body)
    assert view["protocol"] == "wsfed"
    assert view["wsfed"] == {"realm": "spn:00000000-aaaa-bbbb-cccc-000000000000"}
    sp = view["service_provider"]
    assert sp["wsfed_realm"] == "spn:00000000-aaaa-bbbb-cccc-000000000000"
    assert sp["login_url"].endswith("/sso/acme/wsfed/login")
    assert sp["wsfed_reply_url"].endswith("/sso/acme/wsfed/reply")
    view = await _admin(scim, "PATCH", SSO, 200, json={"wsfed": {"realm": None}})
    assert view["service_provider"]["wsfed_realm"].endswith("/sso/acme/wsfed")


async def test_bad_wsfed_settings_are_refused_naming_the_field(scim: Scim) -> None:
    for body, field in (
        ({"protocol": "ws-fed"}, "protocol"),
        ({"wsfed": {"realm": " padded "}}, "wsfed.realm"),
        ({"wsfed": {"realm": ""}}, "wsfed.realm"),
        ({"wsfed": {"reply": "x"}}, "wsfed.reply"),
        ({"wsfed": "realm"}, "wsfed"),
        ({"protocol": "wsfed", "enabled": True}, "idp.entity_id"),
    ):
        response = await scim.client.patch(SSO, json=body, headers=ADMIN)
        error = await scim_error(response, 400)
        assert field in error["detail"], (body, error)


async def test_federation_metadata_points_the_tenant_at_the_sts(
    scim: Scim, sts_key: SigningKey
) -> None:
    await _admin(scim, "PATCH", SSO, 200, json={"protocol": "wsfed"})
    idp = WsFedIdp(entra_wsfed(), sts_key)
    response = await scim.client.post(
        f"{SSO}/metadata",
        data=idp.metadata_xml(STS),
        headers={**ADMIN, "Content-Type": "application/samlmetadata+xml"},
    )
    assert response.status == 200, await response.text()
    view = await response.json()
    assert view["idp"]["entity_id"] == idp.shape.entity_id
    assert view["idp"]["sso_url"] == f"{STS}{idp.shape.sso_path}"
    [pinned] = view["idp"]["certificates"]
    assert pinned["pem"] == certificate_pem(sts_key.certificate)


async def test_metadata_without_a_passive_endpoint_or_sts_role_is_refused(
    scim: Scim, sts_key: SigningKey
) -> None:
    await _admin(scim, "PATCH", SSO, 200, json={"protocol": "wsfed"})
    document = WsFedIdp(entra_wsfed(), sts_key).metadata_xml(STS)
    no_endpoint = document.replace(b"PassiveRequestorEndpoint", b"OtherEndpoint")
    no_role = document.replace(b"SecurityTokenServiceType", b"ApplicationServiceType")
    for xml, detail in (
        (no_endpoint, "PassiveRequestorEndpoint"),
        (no_role, "exactly one IdP entity"),
    ):
        response = await scim.client.post(
            f"{SSO}/metadata",
            data=xml,
            headers={**ADMIN, "Content-Type": "application/samlmetadata+xml"},
        )
        assert detail in (await scim_error(response, 400))["detail"]
