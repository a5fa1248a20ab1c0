"""A sign-in that fails inside the server (the database away, a resource gone meanwhile) is one
of the browser pages with the status the SCIM API would answer, never SCIM JSON or a stack
trace."""

from __future__ import annotations

from typing import Any

from scim_server.core.provisioning import Provisioning
from scim_server.core.seats import Seats
from scim_server.storage.database import Database
from scim_server.storage.seats import SeatCounter
from scim_server.web.state import SERVICES
from tests.support.sso import Sso, person
from tests.support.stores import unreachable_database


async def _generic_page(response: Any, status: int) -> None:
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"
    assert 'id="sso-error"' in await response.text()


async def test_the_database_unavailable_during_jit_is_the_generic_page_503(okta_sso: Sso) -> None:
    jit = okta_sso.client.app[SERVICES].sso.jit
    async with unreachable_database() as unreachable:
        jit.provisioning = Provisioning(
            unreachable, max_results=10, cursors=jit.provisioning.cursors
        )
        response = await okta_sso.sign_in(person("ada@example.com"))
    await _generic_page(response, 503)
    assert response.headers["Retry-After"] == "5"
    assert [entry["outcome"] for entry in await okta_sso.log()] == []


async def test_a_not_found_during_jit_is_the_generic_page_404_and_a_log_entry(
    okta_sso: Sso, mongo_db: Any
) -> None:
    """The seats are counted in a database where the tenant does not exist, as when it is
    deleted during the sign-in: JIT's create raises NotFound, which reaches the browser as
    the generic page with its status, not as a 500 nor as SCIM JSON."""
    provisioning = okta_sso.client.app[SERVICES].sso.jit.provisioning
    elsewhere = Database(client=mongo_db.client, db=mongo_db.client[f"{mongo_db.name}_elsewhere"])
    provisioning.writes.seats = Seats(SeatCounter(elsewhere))

    response = await okta_sso.sign_in(person("ada@example.com"))

    await _generic_page(response, 404)
    [entry, *_] = await okta_sso.log()
    assert entry["outcome"] == "error"
    assert entry["reason"] == "unexpected NotFoundException: no tenant 'acme'"


async def test_a_refused_sign_in_is_logged_with_the_request_id_its_page_carries(
    okta_sso: Sso,
) -> None:
    response = await okta_sso.client.post(
        f"{okta_sso.base}/saml/acs",
        data={"SAMLResponse": "bm90IFNBTUw="},
        headers={"X-Request-Id": "support-ticket-7"},
        allow_redirects=False,
    )
    assert response.headers["X-Request-Id"] == "support-ticket-7"
    [entry] = [e for e in await okta_sso.log() if e["outcome"] == "refused"]
    assert entry["request_id"] == "support-ticket-7"
