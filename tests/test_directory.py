"""The directory sign-in reads users and groups through: typed records, never stored documents.

Users and groups are written over SCIM (real HTTP) and read back through the server's own
``Directory`` on the same real database, as single sign-on reads them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import Application, Request

from scim_server.core.directory import Directory
from scim_server.core.passwords import verify_password_sync
from scim_server.web.state import SERVICES
from tests.support.scim import Scim
from tests.support.urns import ENTERPRISE

STORED_FIELDS = frozenset({"_id", "r", "c", "pw", "gm"})
"""The top-level fields of a stored user or group that no other layer has a name for."""
PROVISIONING_INTERNALS = frozenset({"repository", "repositories", "memberships"})
SSO_MODULES = (
    *sorted(Path("scim_server/core/sso").glob("*.py")),
    Path("scim_server/web/sso.py"),
    Path("scim_server/web/sso_pages.py"),
    Path("scim_server/web/sso_admin.py"),
)


def directory(client: TestClient[Request, Application]) -> Directory:
    """The directory of the server ``client`` talks to."""
    return client.app[SERVICES].provisioning.directory


async def test_a_user_record_is_what_scim_wrote_without_the_stored_layout(scim: Scim) -> None:
    created = await scim.create_user(
        "Ada@Example.com",
        password="correct horse battery",
        name={"givenName": "Ada"},
        schemas=["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        **{ENTERPRISE: {"employeeNumber": "42"}},
    )
    user = await directory(scim.client).user("acme", created["id"])
    assert user is not None
    assert (user.id, user.user_name, user.active) == (created["id"], "Ada@Example.com", True)
    assert f'W/"{user.version}"' == created["meta"]["version"]
    assert user.password_hash is not None and "correct horse" not in user.password_hash
    assert verify_password_sync("correct horse battery", user.password_hash)
    assert user.attributes["name"] == {"givenName": "Ada"}
    assert user.attributes[ENTERPRISE] == {"employeeNumber": "42"}
    assert not (STORED_FIELDS | {"tenant", "meta", "id"}) & set(user.attributes)
    with pytest.raises(TypeError):
        user.attributes["userName"] = "mallory"  # type: ignore[index]


async def test_a_user_without_a_password_or_active_flag_is_active_and_has_no_hash(
    scim: Scim,
) -> None:
    created = await scim.create_user("grace@example.com")
    user = await directory(scim.client).user("acme", created["id"])
    assert user is not None and user.active and user.password_hash is None


async def test_a_user_scim_deactivated_is_a_record_marked_inactive(scim: Scim) -> None:
    created = await scim.create_user("bob@example.com", active=False)
    user = await directory(scim.client).user_named("acme", "bob@example.com")
    assert user is not None and user.id == created["id"] and not user.active


async def test_users_are_found_by_user_name_case_insensitively_within_their_tenant(
    scim: Scim, other_scim: Scim
) -> None:
    created = await scim.create_user("ada@example.com")
    found = directory(scim.client)
    user = await found.user_named("acme", "ADA@Example.COM")
    assert user is not None and user.id == created["id"]
    assert user.user_name == "ada@example.com"
    assert await found.user_named("globex", "ada@example.com") is None
    assert await found.user("globex", created["id"]) is None
    assert await found.user_named("acme", "nobody@example.com") is None


async def test_a_deleted_user_is_no_record(scim: Scim) -> None:
    created = await scim.create_user("ada@example.com")
    assert (await scim.delete(f"/Users/{created['id']}")).status == 204
    assert await directory(scim.client).user("acme", created["id"]) is None


async def test_groups_of_a_user_are_its_direct_groups_by_display_name(scim: Scim) -> None:
    ada = await scim.create_user("ada@example.com")
    engineering = await scim.create_group("Engineering", [ada["id"]])
    design = await scim.create_group("Design", [ada["id"]])
    await scim.create_group("Everyone", [engineering["id"]])  # indirect: not a direct group
    await scim.create_group("Admins")
    groups = await directory(scim.client).groups_of("acme", ada["id"])
    assert groups == {engineering["id"]: "Engineering", design["id"]: "Design"}
    assert await directory(scim.client).groups_of("acme", "no-such-user") == {}


async def test_a_group_is_found_by_display_name_case_insensitively_within_its_tenant(
    scim: Scim, other_scim: Scim
) -> None:
    group = await scim.create_group("Engineering")
    found = directory(scim.client)
    assert await found.group_named("acme", "ENGINEERING") == group["id"]
    assert await found.group_named("globex", "Engineering") is None
    assert await found.group_named("acme", "Design") is None


def _stored_field_reads(tree: ast.AST) -> list[str]:
    """Subscripts and ``.get`` calls naming a stored field, and reaches into provisioning."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            if node.slice.value in STORED_FIELDS:
                found.append(f"line {node.lineno}: [{node.slice.value!r}]")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            first = node.args[0] if node.args else None
            if (
                node.func.attr == "get"
                and isinstance(first, ast.Constant)
                and first.value in STORED_FIELDS
            ):
                found.append(f"line {node.lineno}: .get({first.value!r})")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in PROVISIONING_INTERNALS
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "provisioning"
        ):
            found.append(f"line {node.lineno}: provisioning.{node.attr}")
    return found


@pytest.mark.parametrize("module", SSO_MODULES, ids=str)
def test_sso_code_reads_no_stored_field_and_no_provisioning_internals(module: Path) -> None:
    assert _stored_field_reads(ast.parse(module.read_text())) == []
