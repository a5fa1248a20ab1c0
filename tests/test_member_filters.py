"""Filtering groups by their members (issue 13): ``members[value eq "u"]`` and ``members.value``.

IPSIE AL2 asks which groups hold a user, and Entra checks one membership with
``id eq "g" and members[value eq "u"]``. Members are not stored on the group: these filters
are answered from the membership relation (its ``(tenant, member)`` index), then as ids on
the groups' own index, whatever the groups' sizes. A members condition the relation cannot
answer is a 400 ``invalidFilter`` that names it.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.scim import Scim, scim_error
from tests.support.urns import SEARCH


async def _names(scim: Scim, text: str, **params: Any) -> list[str]:
    """The displayNames (in id order) of the groups a filter lists, over every page."""
    query = "&".join(f"{key}={value}" for key, value in params.items())
    response = await scim.get(f"/Groups?filter={quote(text)}&{query}")
    assert response.status == 200, await response.text()
    body = await response.json()
    return sorted(group["displayName"] for group in body["Resources"])


@pytest.fixture
async def org(scim: Scim) -> dict[str, str]:
    """Two users and four groups: ada in Eng and Ops, bob in Ops, Eng in Staff, Empty."""
    ada = await scim.create_user("ada")
    bob = await scim.create_user("bob")
    eng = await scim.create_group("Eng", [ada["id"]])
    ops = await scim.create_group("Ops", [ada["id"], bob["id"]])
    await scim.create_group("Staff", [eng["id"]])
    await scim.create_group("Empty")
    return {"ada": ada["id"], "bob": bob["id"], "eng": eng["id"], "ops": ops["id"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('members[value eq "{ada}"]', ["Eng", "Ops"]),
        ('members.value eq "{ada}"', ["Eng", "Ops"]),
        ('members[value eq "{bob}"]', ["Ops"]),
        ('members[value eq "{eng}"]', ["Staff"]),  # a nested group is a direct member
        ('id eq "{ops}" and members[value eq "{bob}"]', ["Ops"]),
        ('id eq "{eng}" and members[value eq "{bob}"]', []),
        ('members[value eq "{ada}"] and members[value eq "{bob}"]', ["Ops"]),
        ('members[value eq "{bob}"] or members[value eq "{eng}"]', ["Ops", "Staff"]),
        ('members[value eq "{bob}" or value eq "{eng}"]', ["Ops", "Staff"]),
        ('displayName sw "e" and members.value eq "{ada}"', ["Eng"]),
        ('displayName eq "Empty" or members[value eq "{bob}"]', ["Empty", "Ops"]),
        ('not (members[value eq "{ada}"])', ["Empty", "Staff"]),
        ('members[value eq "no-such-id"]', []),
    ],
)
async def test_groups_are_filtered_by_their_direct_members(
    scim: Scim, org: dict[str, str], text: str, expected: list[str]
) -> None:
    assert await _names(scim, text.format(**org)) == expected


async def test_a_members_filter_pages_and_counts_like_any_other(
    scim: Scim, org: dict[str, str]
) -> None:
    text = quote(f'members[value eq "{org["ada"]}"]')
    response = await scim.get(f"/Groups?filter={text}&count=1&sortBy=displayName")
    body = await response.json()
    assert body["totalResults"] == 2
    assert [group["displayName"] for group in body["Resources"]] == ["Eng"]
    search = await scim.post(
        "/Groups/.search",
        {"schemas": [SEARCH], "filter": f'members.value eq "{org["bob"]}"', "count": 10},
    )
    assert [group["displayName"] for group in (await search.json())["Resources"]] == ["Ops"]
    cursor = await scim.get(f"/Groups?filter={text}&cursor=&count=1")
    first = await cursor.json()
    assert len(first["Resources"]) == 1 and "nextCursor" in first


async def test_a_members_filter_sees_only_its_tenant(
    scim: Scim, other_scim: Scim, org: dict[str, str]
) -> None:
    theirs = await other_scim.create_user("ada")
    await other_scim.create_group("Theirs", [theirs["id"]])
    assert await _names(scim, f'members[value eq "{theirs["id"]}"]') == []
    assert await _names(other_scim, f'members[value eq "{org["ada"]}"]') == []


async def test_a_member_of_many_groups_is_found_in_every_one(scim: Scim) -> None:
    """The member's groups are read from the relation in one query, whatever their number."""
    user = await scim.create_user("busy")
    names = [f"G{n:03}" for n in range(120)]
    await asyncio.gather(*(scim.create_group(name, [user["id"]]) for name in names))
    await scim.create_group("Elsewhere")
    text = quote(f'members[value eq "{user["id"]}"]')
    response = await scim.get(f"/Groups?filter={text}&count=200&attributes=displayName")
    body = await response.json()
    assert body["totalResults"] == 120
    assert sorted(group["displayName"] for group in body["Resources"]) == names


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('members[display eq "ada"]', "members.display"),
        ('members[type eq "User"]', "members.type"),
        ('members.value ne "x"', "ne"),
        ('members.value co "x"', "co"),
        ("members pr", "members"),
        ('members[value eq "a" and type eq "User"]', "members.type"),
        ('members[value eq "a" and value eq "b"]', "and"),
        ('members[not (value eq "a")]', "not"),
        ('members.value eq "\\ud800"', "Unicode"),  # a lone surrogate no stored id holds
    ],
)
async def test_a_members_condition_the_relation_cannot_answer_is_400_naming_it(
    scim: Scim, text: str, named: str
) -> None:
    response = await scim.get(f"/Groups?filter={quote(text)}")
    body = await scim_error(response, 400, "invalidFilter")
    assert named in body["detail"]
