"""A simulated IdP directory: the people and groups an identity provider would provision.

Generated with faker from a seed (same seed, same directory, so a failing run can be replayed), or
loaded from a JSON or CSV file so a QA engineer can provision a known population. Ids follow Okta's
shape (``00u`` / ``00g`` + 17 base62 characters): Okta sends its user id as ``externalId``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import string
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from faker import Faker

_ID_ALPHABET = string.ascii_letters + string.digits


def okta_id(prefix: str, rng: random.Random) -> str:
    """An Okta-style object id: a 3-character type prefix and 17 base62 characters (20 in all)."""
    return prefix + "".join(rng.choice(_ID_ALPHABET) for _ in range(17))


@dataclass
class DirectoryUser:
    """One person in the IdP; field names are the IdP's, profiles map them onto SCIM."""

    id: str
    login: str
    given_name: str
    family_name: str
    email: str
    display_name: str = ""
    title: str = ""
    department: str = ""
    locale: str = "en-US"
    phone: str = ""
    active: bool = True
    manager_id: str = ""
    """The directory id of the user's manager, if any (Entra maps it to the enterprise
    ``manager``)."""

    def __post_init__(self) -> None:
        if not self.display_name:
            self.display_name = f"{self.given_name} {self.family_name}"

    @property
    def nickname(self) -> str:
        """The local part of the login: Entra's ``mailNickname``, its default ``externalId``."""
        return self.login.split("@", 1)[0]


@dataclass
class DirectoryGroup:
    """One IdP group; ``member_ids`` are directory user ids."""

    id: str
    name: str
    member_ids: list[str] = field(default_factory=list)


@dataclass
class Directory:
    """Users, groups and which of them are assigned to the simulated app."""

    users: list[DirectoryUser] = field(default_factory=list)
    groups: list[DirectoryGroup] = field(default_factory=list)
    assigned_user_ids: set[str] = field(default_factory=set)
    assigned_group_ids: set[str] = field(default_factory=set)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def generate(
        cls, seed: int, users: int, groups: int = 0, members_per_group: int | None = None
    ) -> Directory:
        """A reproducible population: the same arguments always give the same directory."""
        fake = Faker("en_US")
        fake.seed_instance(seed)
        rng = random.Random(seed)
        directory = cls()
        seen_logins: set[str] = set()
        for index in range(users):
            given, family = fake.first_name(), fake.last_name()
            login = f"{given}.{family}".lower().replace("'", "").replace(" ", "")
            if login in seen_logins:
                login = f"{login}{index}"
            seen_logins.add(login)
            address = f"{login}@example.com"
            directory.users.append(
                DirectoryUser(
                    id=okta_id("00u", rng),
                    login=address,
                    given_name=given,
                    family_name=family,
                    email=address,
                    title=fake.job()[:60],
                    department=fake.bs().split(" ")[-1].title(),
                    phone=f"+1-555-{rng.randrange(100, 1000)}-{rng.randrange(1000, 10000)}",
                )
            )
        size = members_per_group if members_per_group is not None else min(users, 10)
        for index in range(groups):
            name = f"{fake.color_name()} {fake.word().title()} {index + 1}"
            members = rng.sample([u.id for u in directory.users], min(size, users))
            directory.groups.append(DirectoryGroup(okta_id("00g", rng), name, members))
        return directory

    @classmethod
    def load(cls, path: str | Path) -> Directory:
        """A directory from a ``.json`` (as written by :meth:`dump`) or a ``.csv`` of users.

        CSV columns are :class:`DirectoryUser` field names (``login`` required, ids generated
        when absent); an optional ``groups`` column holds ``;``-separated group names.
        """
        path = Path(path)
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                return cls.from_csv_rows(csv.DictReader(handle))
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Directory:
        rng = random.Random(0)
        users = [_user_from_mapping(u, rng) for u in data.get("users", [])]
        groups = [
            DirectoryGroup(
                g.get("id") or okta_id("00g", rng),
                g["name"],
                list(g.get("member_ids", g.get("members", []))),
            )
            for g in data.get("groups", [])
        ]
        return cls(
            users,
            groups,
            set(data.get("assigned_user_ids", [])),
            set(data.get("assigned_group_ids", [])),
        )

    @classmethod
    def from_csv_rows(cls, rows: Iterable[dict[str, str]]) -> Directory:
        rng = random.Random(0)
        directory = cls()
        by_name: dict[str, DirectoryGroup] = {}
        for row in rows:
            user = _user_from_mapping(row, rng)
            directory.users.append(user)
            for name in filter(None, (n.strip() for n in (row.get("groups") or "").split(";"))):
                if name not in by_name:
                    by_name[name] = DirectoryGroup(okta_id("00g", rng), name)
                    directory.groups.append(by_name[name])
                by_name[name].member_ids.append(user.id)
        return directory

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": [asdict(u) for u in self.users],
            "groups": [asdict(g) for g in self.groups],
            "assigned_user_ids": sorted(self.assigned_user_ids),
            "assigned_group_ids": sorted(self.assigned_group_ids),
        }

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")

    # ---- lookups and assignments ---------------------------------------------------------------
    def user(self, user_id: str) -> DirectoryUser:
        return next(u for u in self.users if u.id == user_id)

    def group(self, group_id: str) -> DirectoryGroup:
        return next(g for g in self.groups if g.id == group_id)

    def assign_user(self, user_id: str) -> None:
        self.assigned_user_ids.add(user_id)

    def unassign_user(self, user_id: str) -> None:
        self.assigned_user_ids.discard(user_id)

    def assign_group(self, group_id: str) -> None:
        """Assigning a group to the app assigns its members too, as in Okta and JumpCloud."""
        self.assigned_group_ids.add(group_id)
        self.assigned_user_ids.update(self.group(group_id).member_ids)

    def assigned_users(self) -> list[DirectoryUser]:
        return [u for u in self.users if u.id in self.assigned_user_ids]


def _user_from_mapping(data: dict[str, Any], rng: random.Random) -> DirectoryUser:
    known = set(DirectoryUser.__dataclass_fields__)
    values = {k: v for k, v in data.items() if k in known and v not in (None, "")}
    if isinstance(values.get("active"), str):
        values["active"] = values["active"].strip().lower() not in ("false", "0", "no")
    values.setdefault("id", okta_id("00u", rng))
    values.setdefault("email", values["login"])
    values.setdefault("given_name", "")
    values.setdefault("family_name", "")
    return DirectoryUser(**values)


def add_directory_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose a directory, the same for ``idp-sim run`` and ``idp-sim idp``:
    the same seed gives the same people, so a user provisioned by one can sign in by the other."""
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the generated directory: the same seed, the same people (default: 0)",
    )
    parser.add_argument(
        "--users", type=int, default=10, help="how many users to generate (default: 10)"
    )
    parser.add_argument(
        "--groups", type=int, default=2, help="how many groups to generate (default: 2)"
    )
    parser.add_argument(
        "--members-per-group",
        type=int,
        help="users in each generated group, chosen by the seed (default: all users, at most 10)",
    )
    parser.add_argument(
        "--directory",
        metavar="FILE",
        help="load users and groups from this JSON or CSV file instead of generating them",
    )


def directory_from_options(args: argparse.Namespace) -> Directory:
    """The directory :func:`add_directory_options` chose."""
    if args.directory:
        return Directory.load(args.directory)
    return Directory.generate(args.seed, args.users, args.groups, args.members_per_group)
