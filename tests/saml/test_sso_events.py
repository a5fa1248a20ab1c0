"""Just-in-time provisioning emits the same events as SCIM, naming the sign-in as the client;
a sign-in the seat limit refuses emits nothing."""

from __future__ import annotations

from tests.support.events import awaited_events, types_of
from tests.support.sso import Sso, person, set_seats


async def test_a_jit_sign_in_emits_the_users_creation_update_and_group_changes_by_sso(
    okta_sso: Sso,
) -> None:
    engineering = await okta_sso.scim.create_group("Engineering")
    await okta_sso.configure(allowed_groups=("Engineering",))
    assert (await okta_sso.sign_in(person(groups=("Engineering",)))).status == 303
    assert (await okta_sso.sign_in(person(last_name="King", groups=()))).status == 303

    events = (await awaited_events(okta_sso.client, okta_sso.tenant, 6))[1:]
    (user,) = await okta_sso.users("ada@example.com")
    assert types_of(events, user["id"]) == ["user.created", "user.updated"]
    # The new display name shows in the group's members, before the group is left.
    assert types_of(events, engineering["id"]) == [
        "group.members_added",
        "group.updated",
        "group.members_removed",
    ]
    created, added, updated, shown, _ = (
        next(e for e in events if e["type"] == kind)
        for kind in (
            "user.created",
            "group.members_added",
            "user.updated",
            "group.updated",
            "group.members_removed",
        )
    )
    assert shown["attributes"] == ["members"]
    assert {tuple(e["client"].items()) for e in events} == {(("via", "sso"),)}
    assert created["client"] == {"via": "sso"}
    assert added["members"] == [user["id"]]
    assert updated["values"] == {"displayName": "Ada King", "name": user["name"]}
    assert user["name"]["familyName"] == "King"


async def test_a_jit_sign_in_refused_for_want_of_a_seat_emits_nothing(okta_sso: Sso) -> None:
    await set_seats(okta_sso.client, okta_sso.tenant, 1)
    await okta_sso.scim.create_user("grace")
    assert (await okta_sso.sign_in(person())).status == 403
    await okta_sso.scim.create_user("hopper", active=False)
    events = await awaited_events(okta_sso.client, okta_sso.tenant, 2)
    assert [e["values"]["userName"] for e in events] == ["grace", "hopper"]
