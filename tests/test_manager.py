"""Entra's manager dialect, and a manager reference kept whole when its user is deleted (issue 13).

Entra checks a reference before an update with ``id eq "<user>" and manager eq "<manager>"``
(its shorthand for ``manager.value``), sets the manager with ``path: "manager"`` and a
one-element list, and the Microsoft validator's "Remove Manager" is a ``replace`` with an
empty value. A user's ``manager`` never names a deleted user: deleting a user clears it on
every user it managed, also when a manager is assigned while the delete runs.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.scim import Scim
from tests.support.urns import ENTERPRISE, PATCH_OP, SEARCH, USER


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


async def _user(scim: Scim, path: str) -> dict[str, Any]:
    response = await scim.get(path)
    assert response.status == 200, await response.text()
    return dict(await response.json())


def _manager_of(user: dict[str, Any]) -> Any:
    return (user.get(ENTERPRISE) or {}).get("manager")


async def _with_manager(scim: Scim, user_name: str, manager_id: str) -> dict[str, Any]:
    return await scim.create_user(
        user_name, schemas=[USER, ENTERPRISE], **{ENTERPRISE: {"manager": {"value": manager_id}}}
    )


@pytest.fixture
async def boss(scim: Scim) -> dict[str, Any]:
    return await scim.create_user("boss")


# --- filters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'manager eq "{boss}"',
        'id eq "{ada}" and manager eq "{boss}"',
        'manager.value eq "{boss}"',
        f'{ENTERPRISE}:manager eq "{{boss}}"',
        f'{ENTERPRISE}:manager.value eq "{{boss}}"',
    ],
)
async def test_entra_filters_on_the_manager_find_the_users_it_manages(
    scim: Scim, boss: dict[str, Any], text: str
) -> None:
    ada = await _with_manager(scim, "ada", boss["id"])
    await _with_manager(scim, "bob", "someone-else")
    filter_text = quote(text.format(boss=boss["id"], ada=ada["id"]))
    response = await scim.get(f"/Users?filter={filter_text}")
    assert response.status == 200, await response.text()
    assert [user["userName"] for user in (await response.json())["Resources"]] == ["ada"]


# --- PATCH -----------------------------------------------------------------------------

MANAGER_SETTINGS = [
    {"op": "Add", "path": "manager", "value": [{"$ref": None, "value": "{boss}"}]},
    {"op": "replace", "path": "manager", "value": [{"value": "{boss}"}]},
    {"op": "replace", "path": "manager", "value": {"value": "{boss}"}},
    {"op": "replace", "path": "manager", "value": "{boss}"},
    {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": [{"value": "{boss}"}]},
    {"op": "add", "path": f"{ENTERPRISE}:manager", "value": "{boss}"},
    {"op": "replace", "path": "manager.value", "value": "{boss}"},
    # Without a path, beside another attribute: the same readings.
    {"op": "replace", "value": {f"{ENTERPRISE}:manager": "{boss}", "title": "Lead"}},
    {"op": "add", "value": {"manager": [{"value": "{boss}"}], "title": "Lead"}},
]


@pytest.mark.parametrize(
    "operation", MANAGER_SETTINGS, ids=lambda o: f"{o.get('path', '')}={o['value']}"
)
async def test_entra_manager_settings_set_manager_value(
    scim: Scim, boss: dict[str, Any], operation: dict[str, Any]
) -> None:
    ada = await scim.create_user("ada")
    sent = {**operation, "value": _filled(operation["value"], boss["id"])}
    response = await scim.patch(f"/Users/{ada['id']}", _patch(sent))
    assert response.status == 200, await response.text()
    assert _manager_of(await response.json())["value"] == boss["id"]
    assert _manager_of(await _user(scim, f"/Users/{ada['id']}"))["value"] == boss["id"]


def _filled(value: Any, boss_id: str) -> Any:
    """The operation's value with ``{boss}`` replaced by the manager's id."""
    if isinstance(value, str):
        return value.replace("{boss}", boss_id)
    if isinstance(value, list):
        return [_filled(item, boss_id) for item in value]
    if isinstance(value, dict):
        return {key: _filled(item, boss_id) for key, item in value.items()}
    return value


MANAGER_REMOVALS = [
    {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": ""}},
    {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": ""},
    {"op": "Replace", "path": "manager", "value": {"value": ""}},
    {"op": "replace", "path": "manager", "value": [{"value": ""}]},
    {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": ""},
    {"op": "remove", "path": "manager"},
    # The same removals without a path: the manager named by a key of the value.
    {"op": "replace", "value": {f"{ENTERPRISE}:manager": {"value": ""}}},
    {"op": "replace", "value": {f"{ENTERPRISE}:manager": ""}},
    {"op": "replace", "value": {f"{ENTERPRISE}:manager.value": ""}},
    {"op": "Replace", "value": {"manager": {"value": ""}}},
    {"op": "add", "value": {ENTERPRISE: {"manager": {"value": ""}}}},
]


@pytest.mark.parametrize(
    "operation", MANAGER_REMOVALS, ids=lambda o: f"{o['op']} {o.get('path') or list(o['value'])}"
)
async def test_entra_remove_manager_clears_it(
    scim: Scim, boss: dict[str, Any], operation: dict[str, Any]
) -> None:
    ada = await _with_manager(scim, "ada", boss["id"])
    ada = await _with_manager(scim, "ada2", boss["id"]) if ada is None else ada
    response = await scim.patch(f"/Users/{ada['id']}", _patch(operation))
    assert response.status == 200, await response.text()
    assert _manager_of(await response.json()) is None
    assert _manager_of(await _user(scim, f"/Users/{ada['id']}")) is None


# --- deleting a manager ----------------------------------------------------------------


async def test_deleting_a_user_clears_the_manager_of_the_users_it_managed(
    scim: Scim, boss: dict[str, Any]
) -> None:
    reports = [await _with_manager(scim, f"report{n}", boss["id"]) for n in range(3)]
    other = await _with_manager(scim, "other", "not-a-user")
    assert (await scim.delete(f"/Users/{boss['id']}")).status == 204
    for report in reports:
        now = await _user(scim, f"/Users/{report['id']}")
        assert _manager_of(now) is None
        assert now["meta"]["version"] != report["meta"]["version"]  # a change, with a new ETag
        # Its extension held only the manager: it is gone, as a PATCH removing it leaves it.
        assert ENTERPRISE not in now and now["schemas"] == [USER]
    kept = await _user(scim, f"/Users/{other['id']}")
    assert _manager_of(kept) == {"value": "not-a-user"}


async def test_a_manager_deleted_in_another_tenant_leaves_this_tenants_reference(
    scim: Scim, other_scim: Scim
) -> None:
    theirs = await other_scim.create_user("boss")
    mine = await _with_manager(scim, "ada", theirs["id"])
    assert (await other_scim.delete(f"/Users/{theirs['id']}")).status == 204
    assert _manager_of(await _user(scim, f"/Users/{mine['id']}")) == {"value": theirs["id"]}


async def test_a_user_rewritten_while_its_manager_is_deleted_keeps_its_change_not_its_manager(
    scim: Scim,
) -> None:
    """Many rounds of a PATCH of a managed user racing its manager's DELETE: the PATCH keeps
    its change and the manager is cleared, whichever lands first (the clearing gives the user
    a new version, so a rewrite that read the old one writes again)."""
    for round_number in range(12):
        boss = await scim.create_user(f"boss{round_number}")
        ada = await _with_manager(scim, f"ada{round_number}", boss["id"])
        retitle = {"op": "replace", "path": "title", "value": f"Title {round_number}"}
        patched, deleted = await asyncio.gather(
            scim.patch(f"/Users/{ada['id']}", _patch(retitle)),
            scim.delete(f"/Users/{boss['id']}"),
        )
        assert patched.status == 200, await patched.text()
        assert deleted.status == 204
        now = await _user(scim, f"/Users/{ada['id']}")
        assert now["title"] == f"Title {round_number}"
        assert _manager_of(now) is None


async def test_managers_assigned_while_they_are_deleted_succeed_and_name_them_at_most(
    scim: Scim,
) -> None:
    """Many rounds of PATCHes naming a manager racing its DELETE. A reference that landed
    before the user was gone is cleared; one that landed after names an id no user has, as
    any reference to an unknown id may (the Microsoft validator creates such users). So each
    user either has no manager or names the deleted one, and every answer is a success."""
    for round_number in range(6):
        boss = await scim.create_user(f"boss{round_number}")
        reports = [await scim.create_user(f"r{round_number}-{n}") for n in range(4)]
        assign = {"op": "add", "path": "manager", "value": [{"value": boss["id"]}]}
        answers = await asyncio.gather(
            *(scim.patch(f"/Users/{report['id']}", _patch(assign)) for report in reports),
            scim.delete(f"/Users/{boss['id']}"),
        )
        assert [answer.status for answer in answers] == [200] * 4 + [204]
        for report in reports:
            assert _manager_of(await _user(scim, f"/Users/{report['id']}")) in (
                None,
                {"value": boss["id"]},
            )


async def test_the_root_search_finds_users_by_entras_manager_shorthand_too(
    scim: Scim, boss: dict[str, Any]
) -> None:
    ada = await _with_manager(scim, "ada", boss["id"])
    body = {"schemas": [SEARCH], "filter": f'manager eq "{boss["id"]}"'}
    response = await scim.post("/.search", body)
    assert response.status == 200, await response.text()
    assert [found["id"] for found in (await response.json())["Resources"]] == [ada["id"]]


async def test_a_conditional_delete_of_a_manager_being_assigned_is_never_412(scim: Scim) -> None:
    """Naming a user as manager does not change it (its version stays): a DELETE with
    ``If-Match`` of its version succeeds, however the assignments interleave with it."""
    for round_number in range(10):
        boss = await scim.create_user(f"boss{round_number}")
        reports = [await scim.create_user(f"r{round_number}-{n}") for n in range(6)]
        assign = {"op": "add", "path": "manager", "value": boss["id"]}
        if_match = {"If-Match": boss["meta"]["version"]}
        answers = await asyncio.gather(
            *(scim.patch(f"/Users/{report['id']}", _patch(assign)) for report in reports[:3]),
            scim.delete(f"/Users/{boss['id']}", headers=if_match),
            *(scim.patch(f"/Users/{report['id']}", _patch(assign)) for report in reports[3:]),
        )
        assert [answer.status for answer in answers] == [200] * 3 + [204] + [200] * 3
