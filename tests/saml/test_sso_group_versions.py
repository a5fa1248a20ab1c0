"""SSO group sync goes through the same membership layer as SCIM: each group it changes
gets a new version, so a client's cached ETag never hides what a sign-in changed."""

from __future__ import annotations

import asyncio

from tests.support.sso import Sso, person


async def test_sso_group_sync_gives_each_group_it_changes_a_new_version(okta_sso: Sso) -> None:
    engineering = await okta_sso.scim.create_group("Engineering")
    path = f"/Groups/{engineering['id']}"
    await okta_sso.configure(allowed_groups=("Engineering",))

    await okta_sso.sign_in(person(groups=("Engineering",)))
    response = await okta_sso.scim.get(
        path, headers={"If-None-Match": engineering["meta"]["version"]}
    )
    assert response.status == 200
    joined = await response.json()
    assert len(joined["members"]) == 1

    await okta_sso.sign_in(person(groups=()))
    response = await okta_sso.scim.get(path, headers={"If-None-Match": joined["meta"]["version"]})
    assert response.status == 200
    assert "members" not in await response.json()


async def test_people_signing_in_at_once_into_a_new_group_share_the_one_group(
    okta_sso: Sso,
) -> None:
    """Group names are unique (409 for a second): a sign-in that loses the race to create a
    group joins the group the winner created, rather than failing."""
    await okta_sso.configure(allowed_groups=("*",))
    for round_number in range(4):
        group = f"Launch {round_number}"
        people = [person(f"p{round_number}-{n}@example.com", groups=(group,)) for n in range(5)]
        answers = await asyncio.gather(*(okta_sso.sign_in(someone) for someone in people))
        assert [answer.status for answer in answers] == [303] * 5
        found = await okta_sso.scim.get("/Groups", params={"filter": f'displayName eq "{group}"'})
        [created] = (await found.json())["Resources"]
        assert len(created["members"]) == 5
