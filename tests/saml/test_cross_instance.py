"""Cross-instance sign-in over real HTTP (issue 12): the root email at ``/signin``, one
authentication in the primary tenant (password or SAML through idp_sim's IdP), then the
selection of the tenants where the login is an active administrator, and a session there.
Every decision is in the SSO log of the tenant it concerns; the browser sees generic pages."""

from __future__ import annotations

import html
import re
import urllib.parse
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from idp_sim.saml import shapes
from samlkit.certs import SigningKey
from tests.support.scim import ADMIN, Scim, make_tenant
from tests.support.sso import connect_sso, person, sign_out_form, with_form_token
from tests.support.urns import PATCH_OP

PASSWORD = "correct horse battery staple"
ADMIN_ROLE = [{"value": "Admin"}]
CONTINUE = re.compile(r'id="continue-sso" href="([^"]+)"')
STATE = re.compile(r'name="state" value="([^"]+)"')


async def _tenant(client: TestClient[Any, Any], name: str) -> Scim:
    return Scim(client, name, (await make_tenant(client, name))["token"])


async def _instances(scim: Scim) -> dict[str, Scim]:
    """acme (primary), staging and prod, linked in the group ``acme`` of domain acme.com."""
    tenants = {"acme": scim}
    for name in ("staging", "prod"):
        tenants[name] = await _tenant(scim.client, name)
    body = {"name": "acme", "primary": "acme", "domain": "acme.com",
            "tenants": ["staging", "prod"]}  # fmt: skip
    response = await scim.client.post("/admin/instance-groups", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()
    return tenants


async def _jane(tenants: dict[str, Scim]) -> dict[str, dict[str, Any]]:
    """Jane: admin in acme (root) and staging; a plain login in prod."""
    return {
        "acme": await tenants["acme"].create_user(
            "jane@acme.com", password=PASSWORD, roles=ADMIN_ROLE
        ),
        "staging": await tenants["staging"].create_user("jane+staging@acme.com", roles=ADMIN_ROLE),
        "prod": await tenants["prod"].create_user("jane+prod@acme.com"),
    }


async def _log(client: TestClient[Any, Any], tenant: str) -> list[dict[str, Any]]:
    response = await client.get(f"/admin/tenants/{tenant}/sso/log", headers=ADMIN)
    return list((await response.json())["entries"])


async def _signin_form(
    client: TestClient[Any, Any], email: str, password: str | None = None
) -> dict[str, str]:
    """The ``/signin`` form as this browser posts it: the email, the password if any, and the
    form token it was given with the page."""
    form = {"email": email} if password is None else {"email": email, "password": password}
    return await with_form_token(client, "/signin", form)


async def _password_sign_in(client: TestClient[Any, Any], email: str) -> Any:
    return await client.post("/signin", data=await _signin_form(client, email, PASSWORD))


async def _jane_signed_in(scim: Scim) -> tuple[dict[str, Scim], Any]:
    """The three instances, Jane in them, and the page her password sign-in lands on."""
    tenants = await _instances(scim)
    await _jane(tenants)
    return tenants, await _password_sign_in(scim.client, "jane@acme.com")


async def test_an_admin_signs_in_once_and_chooses_among_her_admin_instances_only(
    scim: Scim,
) -> None:
    client = scim.client
    assert 'id="root-form"' in await (await client.get("/signin")).text()
    _, page = await _jane_signed_in(scim)
    assert page.status == 200 and page.url.path == "/signin/instances"
    text = await page.text()
    assert 'id="instance-acme"' in text and 'id="instance-staging"' in text
    assert "prod" not in text  # not an administrator there: not even named

    state = STATE.search(text)
    assert state is not None
    chosen = await client.post(
        "/signin/instances", data={"tenant": "staging", "state": state.group(1)}
    )
    assert chosen.url.path == "/sso/staging/"
    signed_in = await chosen.text()
    assert 'id="signed-in-user">jane+staging@acme.com<' in signed_in
    assert "instance:acme" in signed_in

    [entry, *_] = await _log(client, "staging")
    assert (entry["outcome"], entry["flow"], entry["root"]) == (
        "signed_in",
        "instance",
        "jane@acme.com",
    )
    outcomes = [e["outcome"] for e in await _log(client, "acme")]
    assert outcomes[:3] == ["instance_chosen", "instances_offered", "signed_in"]


async def test_a_choice_without_an_admin_login_or_from_another_browser_is_refused_and_logged(
    scim: Scim,
) -> None:
    client = scim.client
    tenants, page = await _jane_signed_in(scim)
    state = STATE.search(await page.text())
    assert state is not None
    for tenant, posted in (("prod", state.group(1)), ("nowhere", state.group(1)),
                           ("staging", "0" * 64), ("staging", "")):  # fmt: skip
        refused = await client.post("/signin/instances", data={"tenant": tenant, "state": posted})
        assert refused.status == 403
        assert 'id="sso-error"' in await refused.text()
        [entry, *_] = await _log(client, "acme")
        assert entry["outcome"] == "refused" and entry["flow"] == "instance"
    reasons = [entry.get("reason", "") for entry in await _log(client, "acme")]
    assert sum("no active administrator login" in reason for reason in reasons) == 2
    assert sum("cross-site request forgery" in reason for reason in reasons) == 2
    assert [e for e in await _log(client, "prod") if e["outcome"] == "signed_in"] == []
    # Losing the role takes the instance away at once, even from a page already shown.
    demote = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "roles",
                                                      "value": []}]}  # fmt: skip
    staging = await tenants["staging"].get("/Users", params={"filter": 'userName sw "jane"'})
    [jane] = (await staging.json())["Resources"]
    assert (await tenants["staging"].patch(f"/Users/{jane['id']}", demote)).status == 200
    late = await client.post(
        "/signin/instances", data={"tenant": "staging", "state": state.group(1)}
    )
    assert late.status == 403


async def test_a_non_admin_never_sees_the_selection_and_is_signed_in_to_the_primary(
    scim: Scim,
) -> None:
    client = scim.client
    tenants = await _instances(scim)
    await tenants["acme"].create_user("bob@acme.com", password=PASSWORD)
    await tenants["staging"].create_user("bob+staging@acme.com")
    page = await _password_sign_in(client, "bob@acme.com")
    assert page.url.path == "/sso/acme/"
    assert 'id="signed-in-user">bob@acme.com<' in await page.text()
    [entry, *_] = await _log(client, "acme")
    assert entry["outcome"] == "not_an_admin"
    # Posting a choice anyway is refused.
    refused = await client.post("/signin/instances", data={"tenant": "staging", "state": "x"})
    assert refused.status == 403


async def test_an_admin_signs_in_through_the_primary_tenant_s_saml_sso(
    scim: Scim, idp_key: SigningKey
) -> None:
    client = scim.client
    tenants = await _instances(scim)
    await _jane(tenants)
    sso = await connect_sso(scim, shapes.okta(), idp_key)
    started = await client.post("/signin", data=await _signin_form(client, "jane@acme.com"))
    assert started.status == 200
    link = CONTINUE.search(await started.text())
    assert link is not None
    location = urllib.parse.urlsplit(html.unescape(link.group(1)))
    assert location.path == "/sso/acme/saml/login"
    assert urllib.parse.parse_qs(location.query) == {"RelayState": ["/sso/acme/instances"]}
    request_id = await sso.start(relay_state="/sso/acme/instances")
    answer = await sso.post(sso.response(person("jane@acme.com"), in_response_to=request_id))
    assert answer.status == 303 and answer.headers["Location"] == "/sso/acme/instances"
    selection = await client.get(answer.headers["Location"])
    assert selection.url.path == "/signin/instances"
    text = await selection.text()
    assert 'id="instance-staging"' in text and 'id="root-login">jane@acme.com<' in text


async def _jane_in_staging(scim: Scim) -> dict[str, Scim]:
    """Jane signed in to acme with her password, then to staging through the selection."""
    tenants, page = await _jane_signed_in(scim)
    state = STATE.search(await page.text())
    assert state is not None
    chosen = await scim.client.post(
        "/signin/instances", data={"tenant": "staging", "state": state.group(1)}
    )
    assert 'id="signed-in-user">jane+staging@acme.com<' in await chosen.text()
    return tenants


async def _jane_in_acme(tenants: dict[str, Scim]) -> str:
    found = await tenants["acme"].get("/Users", params={"filter": 'userName eq "jane@acme.com"'})
    [jane] = (await found.json())["Resources"]
    return str(jane["id"])


@pytest.mark.parametrize("ended_by", ["password changed", "deactivated", "signed out"])
async def test_a_session_chosen_in_the_selection_ends_with_the_primary_session(
    scim: Scim, ended_by: str
) -> None:
    """The session of the chosen tenant stands on the primary sign-in: a password set there
    since (a reset, say, after a leak), the person deactivated there, or signed out there,
    ends it as it ends the primary's own session."""
    client = scim.client
    tenants = await _jane_in_staging(scim)
    jane = await _jane_in_acme(tenants)
    if ended_by == "signed out":
        await client.post("/sso/acme/logout", data=await sign_out_form(client))
    else:
        change = (
            {"op": "replace", "path": "password", "value": "a whole new passphrase 42"}
            if ended_by == "password changed"
            else {"op": "replace", "path": "active", "value": False}
        )
        patch = {"schemas": [PATCH_OP], "Operations": [change]}
        assert (await tenants["acme"].patch(f"/Users/{jane}", patch)).status == 200
    home = await client.get("/sso/staging/")
    assert 'id="signed-in-user"' not in await home.text()


async def test_a_session_chosen_in_the_selection_stands_while_the_primary_session_does(
    scim: Scim,
) -> None:
    """Changes to the primary login that end no session leave the chosen one standing."""
    client = scim.client
    tenants = await _jane_in_staging(scim)
    jane = await _jane_in_acme(tenants)
    rename = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName",
                                                      "value": "Jane"}]}  # fmt: skip
    assert (await tenants["acme"].patch(f"/Users/{jane}", rename)).status == 200
    home = await client.get("/sso/staging/")
    assert 'id="signed-in-user">jane+staging@acme.com<' in await home.text()


async def test_signing_out_of_the_primary_ends_the_selection(scim: Scim) -> None:
    client = scim.client
    _, page = await _jane_signed_in(scim)
    assert page.url.path == "/signin/instances"
    await client.post("/sso/acme/logout", data=await sign_out_form(client))
    again = await client.get("/signin/instances")
    assert again.status == 403 and 'id="sso-error"' in await again.text()


async def test_bad_input_gets_the_generic_page_never_json_or_a_500(scim: Scim) -> None:
    client = scim.client
    await _instances(scim)
    for email in ("jane@unknown.org", "jane+staging@acme.com", "not-an-email", ""):
        response = await client.post("/signin", data=await _signin_form(client, email, "x"))
        assert response.status in (400, 403)
        assert response.content_type == "text/html"
    # SSO not set up for the primary: refused, and logged there.
    response = await client.post("/signin", data=await _signin_form(client, "jane@acme.com"))
    assert response.status == 403
    assert "single sign-on is not set up" in (await _log(client, "acme"))[0]["reason"]
    for path in ("/signin/instances", "/signin/nothing"):
        response = await client.get(path)
        assert response.status in (403, 404) and response.content_type == "text/html"
    wrong = await client.put("/signin")
    assert wrong.status == 405 and wrong.content_type == "text/html"
    broken = await client.post(
        "/signin",
        data=b"email=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    assert broken.status == 400 and broken.content_type == "text/html"
