"""Server-side SSO sessions: the cookie carries only a signed session id, and every use of it
checks the session store and its user's current state, so sign-out, deactivation, deletion and
an admin's revocation end a session at once, on every worker; a reactivated user does not get
old sessions back."""

from __future__ import annotations

import asyncio
import html
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestClient

from idp_sim.saml import shapes
from idp_sim.saml.response import IdentityProvider, ServiceProvider
from samlkit.certs import SigningKey, certificate_pem
from scim_server.config import Settings
from scim_server.core.sso.sessions import FORM_COOKIE, SessionCodec
from scim_server.web import sso as sso_web
from scim_server.web.state import SERVICES
from tests.support.admin_cli import admin_cli
from tests.support.commands import Commands
from tests.support.scim import ADMIN, ADMIN_TOKEN, scim_error
from tests.support.served import serving
from tests.support.ssf import SESSION_REVOKED, Receiver, event_uri, in_order
from tests.support.sso import FORM_TOKEN, Sso, person, sign_out_form, two_workers
from tests.support.urns import BULK_REQUEST, PATCH_OP, USER

COOKIE = "scim_sso_acme"
SESSIONS = "/admin/tenants/acme/sessions"
DEACTIVATE = {
    "schemas": [PATCH_OP],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}
REACTIVATE = {
    "schemas": [PATCH_OP],
    "Operations": [{"op": "replace", "value": {"active": True}}],
}


@pytest.fixture
def commands() -> Commands:
    return Commands({"sso_sessions", "users"})


@pytest.fixture
async def client(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, commands: Commands
) -> TestClient[Any, Any]:
    """The suite's client, on an application that hands each request's tally to ``commands``."""
    return await commands.client(aiohttp_client, settings)


async def _signed_in(sso: Sso, login: str = "ada@example.com") -> tuple[str, str]:
    """Sign ``login`` in over the ACS; answers the session cookie and the user's id."""
    response = await sso.sign_in(person(login))
    assert response.status == 303, await response.text()
    [user] = await sso.users(login)
    return response.cookies[COOKIE].value, str(user["id"])


async def _home_user(sso: Sso, cookie: str) -> str | None:
    """Whom the tenant's home page shows signed in with ``cookie`` alone (the browser's own
    cookies set aside), or None when it shows the sign-in page."""
    sso.client.session.cookie_jar.clear()
    page = await sso.client.get("/sso/acme/", cookies={COOKIE: cookie})
    assert page.status == 200, await page.text()
    return _shown_user(await page.text())


def _shown_user(home_page: str) -> str | None:
    """Whom a home page shows signed in, or None when it is the sign-in page."""
    if 'id="sign-in-sso"' in home_page:
        return None
    return home_page.split('id="signed-in-user">', 1)[1].split("<", 1)[0]


# --- the cookie ---------------------------------------------------------------------------------


async def test_the_session_cookie_carries_only_a_signed_session_id(okta_sso: Sso) -> None:
    response = await okta_sso.sign_in(person())
    morsel = response.cookies[COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/sso/acme/"
    claims = jwt.decode(morsel.value, options={"verify_signature": False})
    assert set(claims) == {"aud", "tenant", "sid", "iat", "exp"}
    assert len(claims["sid"]) >= 43  # 256 random bits
    assert await _home_user(okta_sso, morsel.value) == "ada@example.com"


async def test_a_forged_or_unknown_session_id_gets_the_sign_in_page_never_a_500(
    okta_sso: Sso,
) -> None:
    cookie, _ = await _signed_in(okta_sso)
    codec = okta_sso.client.app[SERVICES].sso.codec
    now = datetime.now(UTC)
    unknown = codec.encode_session("acme", "x" * 43, 3600, now)
    forged = SessionCodec("another-secret-of-at-least-32-bytes!").encode_session(
        "acme", jwt.decode(cookie, options={"verify_signature": False})["sid"], 3600, now
    )
    for value in (unknown, forged, "garbage", cookie + "x", "é" * 50, "a." * 2000):
        assert await _home_user(okta_sso, value) is None, value
        page = await okta_sso.client.get("/sso/acme/signed-out", cookies={COOKIE: value})
        assert page.status == 200 and 'id="signed-out"' in await page.text()
        out = await okta_sso.client.post(
            "/sso/acme/logout", data=await sign_out_form(okta_sso.client), cookies={COOKIE: value}
        )
        assert out.status == 200 and 'id="signed-out"' in await out.text()
    assert await _home_user(okta_sso, cookie) == "ada@example.com"


# --- what ends a session ------------------------------------------------------------------------


async def test_sign_out_revokes_the_session_so_a_copied_cookie_stops_working(
    okta_sso: Sso,
) -> None:
    cookie, _ = await _signed_in(okta_sso)
    other_tab, _ = await _signed_in(okta_sso)
    response = await okta_sso.client.post(
        "/sso/acme/logout", data=await sign_out_form(okta_sso.client), cookies={COOKIE: cookie}
    )
    assert 'id="signed-out"' in await response.text()
    assert await _home_user(okta_sso, cookie) is None
    assert await _home_user(okta_sso, other_tab) == "ada@example.com"  # only that session


async def test_deactivation_by_scim_patch_ends_the_session_at_once(okta_sso: Sso) -> None:
    cookie, user = await _signed_in(okta_sso)
    assert (await okta_sso.scim.patch(f"/Users/{user}", DEACTIVATE)).status == 200
    assert await _home_user(okta_sso, cookie) is None


async def test_deactivation_and_deletion_end_the_session_and_say_so_on_the_ssf_stream(
    okta_sso: Sso,
) -> None:
    receiver = await Receiver.of(okta_sso.client, "acme")
    stream = await receiver.create_stream(SESSION_REVOKED)
    ada_cookie, ada = await _signed_in(okta_sso)
    bob_cookie, bob = await _signed_in(okta_sso, "bob@example.com")
    assert (await okta_sso.scim.patch(f"/Users/{ada}", DEACTIVATE)).status == 200
    assert (await okta_sso.scim.delete(f"/Users/{bob}")).status == 204
    assert [await _home_user(okta_sso, c) for c in (ada_cookie, bob_cookie)] == [None, None]
    revoked = in_order(await receiver.awaited(stream, 2))
    # One each, in either order (events of different users may come in either).
    assert sorted((event_uri(s), s["sub_id"]["sub"]) for s in revoked) == sorted(
        [(SESSION_REVOKED, ada), (SESSION_REVOKED, bob)]
    )


async def test_deactivation_by_scim_put_ends_the_session_at_once(okta_sso: Sso) -> None:
    cookie, user = await _signed_in(okta_sso)
    body = {"schemas": [USER], "userName": "ada@example.com", "active": False}
    assert (await okta_sso.scim.put(f"/Users/{user}", body)).status == 200
    assert await _home_user(okta_sso, cookie) is None


async def test_deletion_by_scim_ends_the_session_at_once(okta_sso: Sso) -> None:
    cookie, user = await _signed_in(okta_sso)
    assert (await okta_sso.scim.delete(f"/Users/{user}")).status == 204
    assert await _home_user(okta_sso, cookie) is None


async def test_deactivation_and_deletion_by_bulk_end_the_sessions_at_once(okta_sso: Sso) -> None:
    ada, ada_id = await _signed_in(okta_sso, "ada@example.com")
    bob, bob_id = await _signed_in(okta_sso, "bob@example.com")
    bulk = {
        "schemas": [BULK_REQUEST],
        "Operations": [
            {"method": "PATCH", "path": f"/Users/{ada_id}", "data": DEACTIVATE},
            {"method": "DELETE", "path": f"/Users/{bob_id}"},
        ],
    }
    response = await okta_sso.scim.post("/Bulk", bulk)
    statuses = [op["status"] for op in (await response.json())["Operations"]]
    assert statuses == ["200", "204"]
    assert await _home_user(okta_sso, ada) is None
    assert await _home_user(okta_sso, bob) is None


@pytest.mark.parametrize("reactivate", ["patch", "put"])
async def test_a_reactivated_user_does_not_get_the_old_session_back(
    okta_sso: Sso, reactivate: str
) -> None:
    cookie, user = await _signed_in(okta_sso)
    assert (await okta_sso.scim.patch(f"/Users/{user}", DEACTIVATE)).status == 200
    if reactivate == "patch":
        assert (await okta_sso.scim.patch(f"/Users/{user}", REACTIVATE)).status == 200
    else:  # a PUT that leaves ``active`` out makes the user active again
        body = {"schemas": [USER], "userName": "ada@example.com"}
        assert (await okta_sso.scim.put(f"/Users/{user}", body)).status == 200
    assert await _home_user(okta_sso, cookie) is None
    fresh, _ = await _signed_in(okta_sso)
    assert await _home_user(okta_sso, fresh) == "ada@example.com"


async def test_other_changes_to_the_user_keep_the_session(okta_sso: Sso) -> None:
    cookie, user = await _signed_in(okta_sso)
    rename = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "userName", "value": "ada.l@example.com"}],
    }
    assert (await okta_sso.scim.patch(f"/Users/{user}", rename)).status == 200
    assert (await okta_sso.scim.patch(f"/Users/{user}", REACTIVATE)).status == 200
    assert await _home_user(okta_sso, cookie) == "ada.l@example.com"


async def test_an_expired_session_is_refused_before_the_ttl_monitor_removes_it(
    okta_sso: Sso, monkeypatch: pytest.MonkeyPatch
) -> None:
    await okta_sso.configure(session_ttl_seconds=600)
    cookie, _ = await _signed_in(okta_sso)
    later = datetime.now(UTC) + timedelta(seconds=601)
    monkeypatch.setattr(sso_web, "_now", lambda: later)
    assert await _home_user(okta_sso, cookie) is None
    [stored] = (
        await okta_sso.client.app[SERVICES]
        .sso.repository.sessions.collection.find({})
        .to_list(None)
    )
    assert stored["expires"] <= later  # still stored: the TTL monitor has not run


async def test_a_page_that_trusts_the_cookie_costs_one_command(
    okta_sso: Sso, commands: Commands
) -> None:
    """The session and its user's state are read together, in one round trip."""
    cookie, _ = await _signed_in(okta_sso)
    okta_sso.client.session.cookie_jar.clear()
    home = okta_sso.client.get("/sso/acme/", cookies={COOKIE: cookie})
    assert await commands.of(home) == {"aggregate": 1}


# --- two workers --------------------------------------------------------------------------------


@pytest.fixture
async def workers(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, idp_key: SigningKey
) -> tuple[Sso, Sso]:
    """Two applications on one database: two workers (or servers) behind one public URL."""
    return await two_workers(aiohttp_client, settings, idp_key, one_browser=False)


async def test_a_session_ended_on_one_worker_is_refused_on_the_other_at_once(
    workers: tuple[Sso, Sso],
) -> None:
    one, two = workers
    for _ in range(3):
        signed_out, _ = await _signed_in(one)
        deactivated, user = await _signed_in(one, "bob@example.com")
        revoked, _ = await _signed_in(one, "cy@example.com")
        assert await _home_user(two, signed_out) == "ada@example.com"  # warm on the other
        assert await _home_user(two, deactivated) == "bob@example.com"
        assert await _home_user(two, revoked) == "cy@example.com"

        await one.client.post(
            "/sso/acme/logout",
            data=await sign_out_form(one.client),
            cookies={COOKIE: signed_out},
        )
        assert (await one.scim.patch(f"/Users/{user}", DEACTIVATE)).status == 200
        listed = await one.client.get(SESSIONS, headers=ADMIN)
        [cy] = [s for s in (await listed.json())["sessions"] if s["user_name"] == "cy@example.com"]
        revoke = await one.client.delete(f"{SESSIONS}/{cy['session_id']}", headers=ADMIN)
        assert revoke.status == 204

        results = await asyncio.gather(
            *(_home_user(two, cookie) for cookie in (signed_out, deactivated, revoked))
        )
        assert results == [None, None, None]
        assert (await one.scim.patch(f"/Users/{user}", REACTIVATE)).status == 200
        await one.scim.delete(f"/Users/{user}")


ROUNDS = 16
"""Requests at once, each on a new connection, so that every worker of a server answers some."""


async def test_on_a_real_server_of_two_workers_an_ended_session_is_refused_by_every_worker(
    tmp_path: Path, idp_key: SigningKey
) -> None:
    async with (
        serving(tmp_path / "data", workers=2) as server,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), cookie_jar=aiohttp.DummyCookieJar()
        ) as browser,
    ):
        idp = IdentityProvider(shapes.okta(), idp_key)
        sp = ServiceProvider(
            entity_id=f"{server.url}/sso/acme/saml/metadata",
            acs_url=f"{server.url}/sso/acme/saml/acs",
        )
        settings = {
            "enabled": True,
            "preset": "okta",
            "allow_idp_initiated": True,
            "sp_base_url": server.url,
            "idp": {
                "entity_id": idp.shape.entity_id,
                "sso_url": "https://idp.example.test/sso",
                "certificates": [certificate_pem(idp_key.certificate)],
            },
        }
        status, _, body = await server.request(
            "PATCH", "/admin/tenants/acme/sso", settings, token=ADMIN_TOKEN
        )
        assert status == 200, body

        async def sign_in(login: str) -> str:
            form = {"SAMLResponse": idp.response_b64(person(login), sp, now=datetime.now(UTC))}
            async with browser.post(sp.acs_url, data=form, allow_redirects=False) as response:
                assert response.status == 303, await response.text()
                return response.cookies[COOKIE].value

        async def shown(cookie: str) -> set[str | None]:
            async def home() -> str | None:
                url = f"{server.url}/sso/acme/"
                async with browser.get(url, cookies={COOKIE: cookie}) as page:
                    assert page.status == 200
                    return _shown_user(await page.text())

            return set(await asyncio.gather(*(home() for _ in range(ROUNDS))))

        signed_out, deactivated = await sign_in("ada@example.com"), await sign_in("bob@example.com")
        assert await shown(signed_out) == {"ada@example.com"}
        assert await shown(deactivated) == {"bob@example.com"}
        home = f"{server.url}/sso/acme/"
        async with browser.get(home, cookies={COOKIE: signed_out}) as page:
            [token] = FORM_TOKEN.findall(await page.text())
            form_key = page.cookies[FORM_COOKIE].value
        async with browser.post(
            f"{home}logout",
            data={"form_token": html.unescape(token)},
            cookies={COOKIE: signed_out, FORM_COOKIE: form_key},
        ) as response:
            assert response.status == 200
        status, _, found = await server.request(
            "GET", "/scim/v2/acme/Users?filter=userName%20eq%20%22bob@example.com%22"
        )
        [bob] = found["Resources"]
        status, _, _ = await server.request("PATCH", f"/scim/v2/acme/Users/{bob['id']}", DEACTIVATE)
        assert status == 200
        assert await shown(signed_out) == {None}
        assert await shown(deactivated) == {None}


# --- the admin API and the CLI ------------------------------------------------------------------


async def test_the_admin_lists_a_tenants_live_sessions_without_their_secrets(
    okta_sso: Sso,
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    ada, ada_id = await _signed_in(okta_sso)
    await _signed_in(okta_sso, "bob@example.com")
    _, gone_id = await _signed_in(okta_sso, "cy@example.com")
    assert (await okta_sso.scim.patch(f"/Users/{gone_id}", DEACTIVATE)).status == 200

    response = await okta_sso.client.get(SESSIONS, headers=ADMIN)
    assert response.status == 200
    sessions = (await response.json())["sessions"]
    assert [s["user_name"] for s in sessions] == ["bob@example.com", "ada@example.com"]
    [first] = [s for s in sessions if s["user_id"] == ada_id]
    assert set(first) == {"session_id", "user_id", "user_name", "issuer", "created", "expires"}
    assert first["issuer"] == okta_sso.idp.shape.entity_id
    assert datetime.fromisoformat(first["created"]) >= before
    sid = jwt.decode(ada, options={"verify_signature": False})["sid"]
    assert sid not in str(sessions) and ada not in str(sessions)

    mine = await okta_sso.client.get(SESSIONS, params={"user_id": ada_id}, headers=ADMIN)
    assert [s["user_id"] for s in (await mine.json())["sessions"]] == [ada_id]
    one = await okta_sso.client.get(SESSIONS, params={"limit": "1"}, headers=ADMIN)
    assert len((await one.json())["sessions"]) == 1


async def test_the_admin_revokes_one_session_or_all_of_a_users(okta_sso: Sso) -> None:
    first, ada = await _signed_in(okta_sso)
    second, _ = await _signed_in(okta_sso)
    third, _ = await _signed_in(okta_sso)
    bob, _ = await _signed_in(okta_sso, "bob@example.com")
    listed = await okta_sso.client.get(SESSIONS, params={"user_id": ada}, headers=ADMIN)
    ids = [s["session_id"] for s in (await listed.json())["sessions"]]
    assert len(ids) == 3

    revoke = await okta_sso.client.delete(f"{SESSIONS}/{ids[0]}", headers=ADMIN)
    assert revoke.status == 204
    signed_in = [await _home_user(okta_sso, c) for c in (first, second, third)]
    assert signed_in.count(None) == 1
    again = await okta_sso.client.delete(f"{SESSIONS}/{ids[0]}", headers=ADMIN)
    assert again.status == 404
    assert "no session" in (await scim_error(again, 404))["detail"]

    everything = await okta_sso.client.delete(SESSIONS, params={"user_id": ada}, headers=ADMIN)
    assert everything.status == 200
    assert await everything.json() == {"revoked": 2}
    assert [await _home_user(okta_sso, c) for c in (first, second, third)] == [None] * 3
    assert await _home_user(okta_sso, bob) == "bob@example.com"


async def test_session_admin_refuses_bad_requests_with_scim_errors(okta_sso: Sso) -> None:
    client = okta_sso.client
    assert (await client.get(SESSIONS)).status == 401
    await scim_error(await client.get("/admin/tenants/nobody/sessions", headers=ADMIN), 404)
    await scim_error(await client.delete(SESSIONS, headers=ADMIN), 400)  # user_id is required
    for limit in ("0", "x", "100000"):
        response = await client.get(SESSIONS, params={"limit": limit}, headers=ADMIN)
        await scim_error(response, 400)
    await scim_error(await client.delete(f"{SESSIONS}/{'x' * 64}", headers=ADMIN), 404)


async def test_deleting_the_tenant_deletes_its_sessions(okta_sso: Sso) -> None:
    await _signed_in(okta_sso)
    sessions = okta_sso.client.app[SERVICES].sso.repository.sessions.collection
    assert await sessions.count_documents({"tenant": "acme"}) == 1
    assert (await okta_sso.client.delete("/admin/tenants/acme", headers=ADMIN)).status == 204
    assert await sessions.count_documents({"tenant": "acme"}) == 0


async def test_cli_lists_and_revokes_sessions(
    okta_sso: Sso, capsys: pytest.CaptureFixture[str]
) -> None:
    client = okta_sso.client
    ada, ada_id = await _signed_in(okta_sso)
    again, _ = await _signed_in(okta_sso)
    bob, _ = await _signed_in(okta_sso, "bob@example.com")
    listed = json.loads(await admin_cli(client, capsys, "sessions", "list", "acme"))
    assert len(listed["sessions"]) == 3
    mine = json.loads(
        await admin_cli(client, capsys, "sessions", "list", "acme", "--user-id", ada_id)
    )
    [one, _] = [s["session_id"] for s in mine["sessions"]]
    printed = await admin_cli(client, capsys, "sessions", "revoke", "acme", one)
    assert printed == f"revoked session {one} of tenant acme\n"
    printed = await admin_cli(client, capsys, "sessions", "revoke", "acme", "--user-id", ada_id)
    assert printed == f"revoked 1 session of user {ada_id} in tenant acme\n"
    assert [await _home_user(okta_sso, c) for c in (ada, again)] == [None, None]
    assert await _home_user(okta_sso, bob) == "bob@example.com"
