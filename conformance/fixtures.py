"""Resources the runner creates on the server under test, and their removal.

Everything the runner makes is named ``scimconf-<run id>-...`` so that a person looking
at the server can tell test data from real data, and so that a sweep by prefix finds
what a crashed run left behind. Created ids are tracked run-wide, and removed at the
end (groups first, so no member reference outlives its group) unless ``--keep``.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from conformance.http import ScimHttp
from conformance.urns import GROUP, USER

PREFIX = "scimconf"


class FixtureError(Exception):
    """A fixture could not be created: the check cannot reach a verdict (an error)."""


@dataclass
class Tracker:
    """Run-wide: the name prefix and every resource id the run created."""

    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)
    """Values a suite's checks hand on to later checks (Okta's suite variables)."""
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def prefix(self) -> str:
        return f"{PREFIX}-{self.run_id}-"

    def name(self, label: str = "u") -> str:
        """A fresh name under the run's prefix; unique within the run."""
        return f"{self.prefix}{label}{next(self._counter)}"

    def remember(self, location: str, resource_id: str) -> None:
        (self.groups if location == "/Groups" else self.users).append(resource_id)


class Fixtures:
    """A check's fixture factory: creations are recorded in that check's transcript."""

    def __init__(self, http: ScimHttp, tracker: Tracker) -> None:
        self.http = http
        self.tracker = tracker

    def name(self, label: str = "u") -> str:
        return self.tracker.name(label)

    def user_body(self, user_name: str | None = None, **attributes: Any) -> dict[str, Any]:
        """A realistic User body (names, a work email), overridable attribute by attribute."""
        user_name = user_name or self.name("user")
        body: dict[str, Any] = {
            "schemas": [USER],
            "userName": user_name,
            "name": {"givenName": "Conformance", "familyName": "Tester"},
            "displayName": "Conformance Tester",
            "emails": [{"value": f"{user_name}@example.com", "type": "work", "primary": True}],
            "active": True,
        }
        body.update(attributes)
        return body

    async def user(self, user_name: str | None = None, **attributes: Any) -> dict[str, Any]:
        """Create a user and return the server's representation of it."""
        return await self.create("/Users", self.user_body(user_name, **attributes))

    async def group(
        self, display_name: str | None = None, members: list[str] | None = None, **attributes: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [GROUP],
            "displayName": display_name or self.name("group"),
            **attributes,
        }
        if members:
            body["members"] = [{"value": member} for member in members]
        return await self.create("/Groups", body)

    async def create(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(endpoint, body)
        created = response.json()
        if isinstance(created, dict) and isinstance(created.get("id"), str):
            self.tracker.remember(endpoint, created["id"])
        if (
            response.status not in (200, 201)
            or not isinstance(created, dict)
            or "id" not in created
        ):
            raise FixtureError(
                f"could not create a fixture at {endpoint}: HTTP {response.status} "
                f"{response.text[:200]!r}"
            )
        return dict(created)

    def track(self, endpoint: str, created: Any) -> None:
        """Remember a resource a check created itself, so the run removes it too."""
        if isinstance(created, dict) and isinstance(created.get("id"), str):
            self.tracker.remember(endpoint, created["id"])


async def cleanup(http: ScimHttp, tracker: Tracker) -> list[str]:
    """Delete what the run created, then sweep the prefix; return what could not be removed."""
    leftovers: list[str] = []
    for endpoint, ids in (("/Groups", tracker.groups), ("/Users", tracker.users)):
        for resource_id in dict.fromkeys(ids):
            response = await http.delete(f"{endpoint}/{resource_id}")
            if response.status not in (200, 204, 404):
                leftovers.append(f"{endpoint}/{resource_id} (HTTP {response.status})")
    for endpoint, attribute in (("/Groups", "displayName"), ("/Users", "userName")):
        response = await http.get(
            endpoint, params={"filter": f'{attribute} sw "{tracker.prefix}"', "count": "200"}
        )
        body = response.json()
        if response.status != 200 or not isinstance(body, dict):
            continue
        for resource in body.get("Resources") or []:
            if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                deleted = await http.delete(f"{endpoint}/{resource['id']}")
                if deleted.status not in (200, 204, 404):
                    leftovers.append(f"{endpoint}/{resource['id']} (HTTP {deleted.status})")
    return leftovers
