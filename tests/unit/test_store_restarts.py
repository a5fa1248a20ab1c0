"""How many times, and after how long, a dead embedded store is restarted."""

from __future__ import annotations

import pytest

from scim_server.config import Settings
from scim_server.embedded import restart_delays


def test_restarts_back_off_exponentially_from_half_a_second() -> None:
    assert restart_delays(5) == (0.5, 1.0, 2.0, 4.0, 8.0)
    assert restart_delays(1) == (0.5,)


def test_no_restart_means_the_first_death_ends_the_server() -> None:
    assert restart_delays(0) == ()


def test_five_restarts_by_default_and_the_environment_or_a_flag_changes_it() -> None:
    assert Settings().store_restarts == 5
    assert Settings.from_env({"SCIM_STORE_RESTARTS": "2"}).store_restarts == 2
    assert Settings.from_env({"SCIM_STORE_RESTARTS": "2"}, store_restarts=0).store_restarts == 0


def test_a_negative_number_of_restarts_is_refused() -> None:
    with pytest.raises(ValueError, match="store_restarts"):
        Settings(store_restarts=-1)
