"""idp_sim meets real 429s: the tenant's own low rate limit (admin API), each profile's lifecycle
through it, and each IdP's documented throttling: Okta (and JumpCloud, unknown, likewise) waits
``Retry-After`` and doubles; Entra retries a throttled request on its next cycle and
quarantines the job when the cycles run out."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiohttp.test_utils import TestClient

from idp_sim import Directory, Journal, build_profile, full_lifecycle
from idp_sim.profiles.entra import entra_retry
from scim_server.config import Settings
from tests.support.idp_runs import FakeSleep, assert_server_holds_the_directory, base_url
from tests.support.scim import ADMIN, Scim

PROFILES = ["okta-oin", "okta-aiw", "jumpcloud", "entra", "entra-optscim062020"]
CYCLE = 1.0
"""Entra's provisioning cycle, shortened from 40 minutes so that a test waits it."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Rate limiting on (the suite turns it off), at the server's default."""
    return replace(settings, rate_limit_per_second=100)


async def set_limit(client: TestClient, tenant: str, per_second: int) -> None:
    response = await client.put(
        f"/admin/tenants/{tenant}/rate-limit",
        json={"requests_per_second": per_second},
        headers=ADMIN,
    )
    assert response.status == 200


async def drain(scim: Scim) -> None:
    """Requests until one is refused: the tenant's bucket is empty as the profile starts."""
    for _ in range(1000):
        if (await scim.get("/Users?count=1")).status == 429:
            return
    raise AssertionError("the tenant's rate limit never answered 429")


class RealSleep(FakeSleep):
    """Records each wait the transport asks for, and waits it."""

    async def __call__(self, seconds: float) -> None:
        await super().__call__(seconds)
        await asyncio.sleep(seconds)


@pytest.mark.parametrize("name", PROFILES)
async def test_every_profile_meets_real_429s_and_backs_off_as_its_idp_does(
    client: TestClient, scim: Scim, name: str
) -> None:
    await set_limit(client, "acme", 10)
    await drain(scim)
    sleep = RealSleep()
    transport: dict[str, object] = {"journal": Journal(), "sleep": sleep}
    if name.startswith("entra"):
        transport["retry"] = entra_retry(cycle=CYCLE)
    directory = Directory.generate(seed=7, users=6, groups=3, members_per_group=3)
    profile = build_profile(
        name, base_url(client), scim.token, directory, seed=7, transport_options=transport
    )
    try:
        summary = await full_lifecycle(profile)
    finally:
        await profile.transport.close()
    assert summary.failures == []
    journal = list(profile.transport.journal)
    refused = [e for e in journal if e.status == 429]
    assert refused and all(e.response_headers["Retry-After"] == "1" for e in refused)
    # Each 429 is followed by the same request sent again (others may come between: a
    # profile's concurrent requests).
    for index, entry in enumerate(journal):
        if entry.status == 429:
            tried = [(e.method, e.path, e.attempt) for e in journal[index + 1 :]]
            assert (entry.method, entry.path, entry.attempt + 1) in tried
    if name.startswith("entra"):
        assert set(sleep.waits) == {CYCLE}  # the next cycle, whatever Retry-After says
    else:
        assert set(sleep.waits) <= {1.0, 2.0, 4.0, 8.0} and 1.0 in sleep.waits
    await set_limit(client, "acme", 1_000_000)  # the read-back does not back off
    await assert_server_holds_the_directory(scim, profile)


async def test_entra_quarantines_the_job_when_a_request_is_throttled_through_its_cycles(
    client: TestClient, scim: Scim
) -> None:
    await set_limit(client, "acme", 1)
    sleep = FakeSleep()  # no time passes: the bucket stays empty
    directory = Directory.generate(seed=7, users=3)
    profile = build_profile(
        "entra",
        base_url(client),
        scim.token,
        directory,
        transport_options={"sleep": sleep, "retry": entra_retry(cycle=CYCLE, cycles=3)},
    )
    try:
        for user in directory.users:
            await profile.assign_user(user)
    finally:
        await profile.transport.close()
    statuses = [e.status for e in profile.transport.journal]
    # The first request spends the one permit; the next is refused on 4 cycles, then the job
    # is quarantined: nothing more reaches the server.
    assert statuses[-4:] == [429] * 4
    assert sleep.waits == [CYCLE] * 3
    assert profile.transport.quarantined
    assert [f.detail for f in profile.failures][-1].startswith("quarantined")
    assert len(profile.failures) == 3  # the throttled lookup, then each user not provisioned
