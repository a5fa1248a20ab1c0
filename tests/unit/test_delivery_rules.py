"""The delivery engine's pure rules: which addresses a webhook may reach, and the retry
schedule's back-off with jitter."""

from __future__ import annotations

import pytest

from scim_server.core.delivery import RetryPolicy
from scim_server.core.webhooks import refusal


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1%eth0",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
    ],
)
def test_private_loopback_link_local_and_other_non_public_addresses_are_refused(
    address: str,
) -> None:
    assert refusal(address) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_are_targets(address: str) -> None:
    assert refusal(address) is None


def test_the_back_off_doubles_up_to_its_cap_with_a_jitter_of_half_to_whole() -> None:
    policy = RetryPolicy(base_seconds=1.0, cap_seconds=60.0)
    for attempts, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (200, 60.0)]:
        delays = [policy.delay(attempts) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1  # jittered: endpoints failing together spread out
