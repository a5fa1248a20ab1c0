"""The one-team policy (issue 12): a userName active in one tenant of an instance group (or of
the server, server-wide) is refused in every other with 409 ``uniqueness`` naming the policy;
deactivated users do not block. Real requests on a real store, races included."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from idp_sim.saml import shapes
from samlkit.certs import SigningKey
from scim_server.config import Settings
from scim_server.web.app import create_app
from tests.support.commands import Commands, readings_serve_the_whole_test
from tests.support.scim import ADMIN, Scim, make_tenant, scim_error
from tests.support.sso import connect_sso, person, set_seats
from tests.support.urns import BULK_REQUEST, PATCH_OP, USER

ROUNDS = 25


def _user(name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name, **attributes}


def _active(value: bool) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": value}}]}


async def _team(scim: Scim, *others: Scim, one_team: bool = True) -> None:
    body = {
        "name": "acme",
        "primary": scim.tenant,
        "domain": "acme.com",
        "tenants": [other.tenant for other in others],
        "one_team": one_team,
    }
    response = await scim.client.post("/admin/instance-groups", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()


async def _refused(response: Any, policy: str = "instance group 'acme'") -> None:
    body = await scim_error(response, 409, "uniqueness")
    assert "one-team policy" in body["detail"] and policy in body["detail"]


async def test_a_user_name_active_in_another_tenant_of_the_group_is_refused(
    scim: Scim, other_scim: Scim
) -> None:
    await _team(scim, other_scim)
    await scim.create_user("Jane@Acme.com")
    await _refused(await other_scim.post("/Users", _user("jane@ACME.com")))
    # Not by PUT or PATCH of another user either, nor in a Bulk request.
    bob = await other_scim.create_user("bob@acme.com")
    renamed = _user("jane@acme.com")
    await _refused(await other_scim.put(f"/Users/{bob['id']}", renamed))
    rename = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "userName",
                                                      "value": "JANE@acme.com"}]}  # fmt: skip
    await _refused(await other_scim.patch(f"/Users/{bob['id']}", rename))
    bulk = {
        "schemas": [BULK_REQUEST],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": _user("jane@acme.com")},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": _user("kim@acme.com")},
        ],
    }
    answer = await (await other_scim.post("/Bulk", bulk)).json()
    assert [op["status"] for op in answer["Operations"]] == ["409", "201"]
    assert "one-team policy" in answer["Operations"][0]["response"]["detail"]


async def test_without_the_policy_or_outside_the_group_the_name_is_free(
    scim: Scim, other_scim: Scim, client: TestClient[Any, Any]
) -> None:
    await _team(scim, other_scim, one_team=False)
    outsider = Scim(client, "initech", (await make_tenant(client, "initech"))["token"])
    await scim.create_user("jane@acme.com")
    await other_scim.create_user("jane@acme.com")
    await outsider.create_user("jane@acme.com")


async def test_a_user_active_before_the_policy_was_on_blocks_as_well(
    scim: Scim, other_scim: Scim
) -> None:
    await scim.create_user("jane@acme.com")
    await _team(scim, other_scim)
    await _refused(await other_scim.post("/Users", _user("jane@acme.com")))


async def test_deactivated_users_do_not_block_and_reactivating_one_taken_elsewhere_is_refused(
    scim: Scim, other_scim: Scim
) -> None:
    await _team(scim, other_scim)
    jane = await scim.create_user("jane@acme.com")
    assert (await scim.patch(f"/Users/{jane['id']}", _active(False))).status == 200
    moved = await other_scim.create_user("jane@acme.com")
    # Now taken in the other tenant: reactivating the first is refused, by PATCH and by PUT.
    await _refused(await scim.patch(f"/Users/{jane['id']}", _active(True)))
    await _refused(await scim.put(f"/Users/{jane['id']}", _user("jane@acme.com", active=True)))
    # An inactive user may be created alongside.
    await scim.create_user("kim@acme.com", active=False)
    await other_scim.create_user("kim@acme.com")
    # Deleting (or deactivating) the holder frees the name.
    assert (await other_scim.delete(f"/Users/{moved['id']}")).status == 204
    assert (await scim.patch(f"/Users/{jane['id']}", _active(True))).status == 200


async def test_renaming_away_frees_the_old_name_and_takes_the_new_one(
    scim: Scim, other_scim: Scim
) -> None:
    await _team(scim, other_scim)
    jane = await scim.create_user("jane@acme.com")
    rename = _user("jane.doe@acme.com")
    assert (await scim.put(f"/Users/{jane['id']}", rename)).status == 200
    await other_scim.create_user("jane@acme.com")
    await _refused(await other_scim.post("/Users", _user("jane.doe@acme.com")))
    # A change of case only is the same name: the user keeps holding it.
    assert (await scim.put(f"/Users/{jane['id']}", _user("JANE.DOE@acme.com"))).status == 200
    await _refused(await other_scim.post("/Users", _user("jane.doe@acme.com")))


async def test_a_write_that_does_not_land_gives_its_claim_back(
    scim: Scim, other_scim: Scim
) -> None:
    await _team(scim, other_scim)
    await set_seats(scim.client, scim.tenant, 0)
    response = await scim.post("/Users", _user("jane@acme.com"))
    assert response.status == 403, await response.text()
    await other_scim.create_user("jane@acme.com")


async def test_two_tenants_creating_the_same_name_at_once_admit_exactly_one(
    scim: Scim, other_scim: Scim
) -> None:
    """Many rounds of two real POSTs, one per tenant, sent together: never both."""
    await _team(scim, other_scim)
    winners = {scim.tenant: 0, other_scim.tenant: 0}
    for round_ in range(ROUNDS):
        name = f"person{round_}@acme.com"
        answers = await asyncio.gather(
            scim.post("/Users", _user(name)), other_scim.post("/Users", _user(name))
        )
        statuses = sorted(answer.status for answer in answers)
        assert statuses == [201, 409], statuses
        for tenant, answer in zip((scim.tenant, other_scim.tenant), answers, strict=True):
            if answer.status == 201:
                winners[tenant] += 1
            else:
                await _refused(answer)
    assert sum(winners.values()) == ROUNDS


async def test_reactivations_racing_a_creation_elsewhere_admit_exactly_one(
    scim: Scim, other_scim: Scim
) -> None:
    """A deactivated user reactivated while another tenant creates its name: one wins."""
    await _team(scim, other_scim)
    for round_ in range(ROUNDS):
        name = f"back{round_}@acme.com"
        user = await scim.create_user(name, active=False)
        answers = await asyncio.gather(
            scim.patch(f"/Users/{user['id']}", _active(True)),
            other_scim.post("/Users", _user(name)),
        )
        assert sorted(a.status for a in answers) == [200, 409] or sorted(
            a.status for a in answers
        ) == [201, 409], [a.status for a in answers]


@pytest.fixture
async def server_wide(
    aiohttp_client: Any, settings: Settings, mongo_db: Any
) -> TestClient[Any, Any]:
    app = create_app(replace(settings, one_team_server_wide=True))
    client: TestClient[Any, Any] = await aiohttp_client(app)
    return client


async def test_server_wide_the_name_is_one_tenant_s_across_the_server(
    server_wide: TestClient[Any, Any],
) -> None:
    tenants = [Scim(server_wide, n, (await make_tenant(server_wide, n))["token"]) for n in "abc"]
    await tenants[0].create_user("jane@acme.com")
    await _refused(await tenants[2].post("/Users", _user("jane@acme.com")), "server-wide")
    answers = await asyncio.gather(*(t.post("/Users", _user("kim@x.com")) for t in tenants))
    assert sorted(a.status for a in answers) == [201, 409, 409]


async def test_jit_is_refused_too_and_the_sso_log_names_the_policy(
    scim: Scim, other_scim: Scim
) -> None:
    await _team(scim, other_scim)
    await scim.create_user("ada@acme.com")
    sso = await connect_sso(other_scim, shapes.okta(), SigningKey.generate("one-team IdP"))
    response = await sso.sign_in(person("ada@acme.com"))
    assert response.status == 403
    assert "one-team policy" in await sso.last_reason()
    assert await sso.users("ada@acme.com") == []


async def test_a_tenant_taken_out_of_the_group_no_longer_blocks_its_names(
    scim: Scim, other_scim: Scim, client: TestClient[Any, Any]
) -> None:
    """Its claims go with it: a name it holds is free in the group again."""
    third = Scim(client, "initech", (await make_tenant(client, "initech"))["token"])
    await _team(scim, other_scim, third)
    await third.create_user("jane@acme.com")
    await _refused(await other_scim.post("/Users", _user("jane@acme.com")))
    response = await client.patch(
        "/admin/instance-groups/acme", json={"tenants": [other_scim.tenant]}, headers=ADMIN
    )
    assert response.status == 200, await response.text()
    await other_scim.create_user("jane@acme.com")


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> Commands:
    """Readings of a tenant's seats and teams serve the whole test, so that no count depends
    on how long the requests before it took (as in test_command_counts.py)."""
    readings_serve_the_whole_test(monkeypatch)
    return Commands({"users", "instance_members", "instance_groups", "team_claims", "tenants"})


async def test_what_the_policy_costs_a_user_creation_in_database_commands(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, commands: Commands
) -> None:
    """Outside a team, nothing once the tenant's teams were read; in a one-team group, the
    claim and the look in the other tenants (and, once, reading the group just changed)."""
    client = await commands.client(aiohttp_client, settings)
    acme = Scim(client, "acme", (await make_tenant(client, "acme"))["token"])
    globex = Scim(client, "globex", (await make_tenant(client, "globex"))["token"])
    await acme.create_user("first@acme.com")  # the tenant's seats and teams are read: none
    alone = await commands.of(acme.post("/Users", _user("second@acme.com")))
    assert alone == {"insert": 1}  # the user, as before
    await _team(acme, globex)
    first = await commands.of(acme.post("/Users", _user("third@acme.com")))
    # The changed group read once (membership, group, its members), the look in globex; the
    # claim and the user.
    assert first == {"find": 3 + 1, "insert": 2}
    again = await commands.of(acme.post("/Users", _user("fourth@acme.com")))
    assert again == {"find": 1, "insert": 2}


async def test_two_processes_creating_the_same_name_at_once_admit_exactly_one(
    aiohttp_client: Any, settings: Settings, mongo_db: Any
) -> None:
    """Two applications on one database, as two worker processes, each serving one tenant:
    the claim is the database's unique index, not anything one process holds."""
    first: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    second: TestClient[Any, Any] = await aiohttp_client(create_app(settings))
    acme = Scim(first, "acme", (await make_tenant(first, "acme"))["token"])
    globex = Scim(second, "globex", (await make_tenant(first, "globex"))["token"])
    await _team(acme, globex)
    for round_ in range(ROUNDS):
        name = f"both{round_}@acme.com"
        answers = await asyncio.gather(
            acme.post("/Users", _user(name)), globex.post("/Users", _user(name))
        )
        assert sorted(answer.status for answer in answers) == [201, 409]
