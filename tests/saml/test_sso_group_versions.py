"""SSO group sync goes through the same membership layer as SCIM: each group it changes
gets a new version, so a client's cached ETag never hides what a sign-in changed."""

from __future__ import annotations

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
