"""The restart-intensity limit."""

import pytest

from actors.driver.supervision import RestartIntensity


def test_escalates_at_max_failures_inside_the_window() -> None:
    limit = RestartIntensity(max_failures=3, window_ns=100)
    assert not limit.record(0)
    assert not limit.record(10)
    assert limit.record(99)


def test_failures_outside_the_window_are_forgotten() -> None:
    limit = RestartIntensity(max_failures=3, window_ns=100)
    limit.record(0)
    limit.record(10)
    assert not limit.record(110)  # 0 and 10 are out of (10, 110]
    assert len(limit) == 1


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="max_failures"):
        RestartIntensity(max_failures=0)
