"""If-Match and If-None-Match decided in the core, on versions, with weak comparison."""

from __future__ import annotations

import pytest
from scim2_models import PreconditionFailedException

from scim_server.core.preconditions import UNCONDITIONAL, Preconditions, etag


def test_the_etag_of_a_version_is_its_weak_tag() -> None:
    assert etag(7) == 'W/"7"'


@pytest.mark.parametrize("tag", ['W/"7"', '"7"', "*"])
def test_if_none_match_naming_the_current_version_answers_not_modified(tag: str) -> None:
    assert Preconditions(if_none_match=('W/"3"', tag)).not_modified(7)


def test_if_none_match_with_only_stale_versions_or_absent_reads_the_resource() -> None:
    assert not Preconditions(if_none_match=('W/"6"',)).not_modified(7)
    assert not UNCONDITIONAL.not_modified(7)


@pytest.mark.parametrize("tag", ['W/"7"', '"7"', "*"])
def test_if_match_naming_the_current_version_expects_it(tag: str) -> None:
    assert Preconditions(if_match=(tag,)).expected_version(7) == 7


def test_if_match_with_a_stale_version_is_412_and_absent_expects_nothing() -> None:
    with pytest.raises(PreconditionFailedException):
        Preconditions(if_match=('W/"6"',)).expected_version(7)
    assert UNCONDITIONAL.expected_version(7) is None
