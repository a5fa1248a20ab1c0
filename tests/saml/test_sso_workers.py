"""One-use guarantees hold across worker processes: the state behind them lives in MongoDB.

Two applications on one database stand for two workers (or one worker before and after a
restart): each has its own memory, so only what MongoDB holds can tie them together.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from samlkit.certs import SigningKey
from scim_server.config import Settings
from tests.support.sso import Sso, person, two_workers


@pytest.fixture
async def workers(
    aiohttp_client: Any, settings: Settings, mongo_db: Any, idp_key: SigningKey
) -> tuple[Sso, Sso]:
    """Two workers behind one public URL, for tenant acme with SSO on."""
    return await two_workers(aiohttp_client, settings, idp_key, one_browser=True)


async def test_a_request_issued_by_one_worker_is_answered_at_another_and_only_once(
    workers: tuple[Sso, Sso],
) -> None:
    one, two = workers
    request_id = await one.start()
    saml_response = one.response(person(), in_response_to=request_id)
    assert (await two.post(saml_response)).status == 303
    assert (await one.post(saml_response)).status == 403
    assert "answers no outstanding request" in await one.last_reason()


async def test_an_unsolicited_response_replayed_at_another_worker_is_refused(
    workers: tuple[Sso, Sso],
) -> None:
    one, two = workers
    saml_response = one.response(person())
    assert (await one.post(saml_response)).status == 303
    assert (await two.post(saml_response)).status == 403
    assert "replay" in await two.last_reason()


async def test_concurrent_posts_of_one_response_to_two_workers_sign_in_once(
    workers: tuple[Sso, Sso],
) -> None:
    one, two = workers
    saml_response = one.response(person())
    responses = await asyncio.gather(
        *(worker.post(saml_response) for worker in (one, two, one, two, one, two))
    )
    assert Counter(response.status for response in responses) == {303: 1, 403: 5}
    assert len(await one.users("ada@example.com")) == 1


async def test_concurrent_first_sign_ins_of_one_person_create_one_user(
    workers: tuple[Sso, Sso],
) -> None:
    """Two tabs, two workers, one new person: JIT must not create the account twice."""
    one, two = workers
    posts = [worker.post(worker.response(person())) for worker in (one, two, one, two)]
    assert {response.status for response in await asyncio.gather(*posts)} == {303}
    [user] = await one.users("ada@example.com")
    assert user["active"] is True
