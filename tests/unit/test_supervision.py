"""The restart-intensity limit."""

import pykka
import pytest

from actors.driver.supervision import RestartIntensity, SupervisorLink


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


class _Recorder(pykka.ThreadingActor):
    def on_receive(self, message: object) -> object:
        return message


def test_a_closed_link_drops_what_a_child_says_and_counts_it() -> None:
    link = SupervisorLink()
    ref = _Recorder.start()
    try:
        link.bind(ref)
        assert link.tell("first")
        link.close()
        assert link.closed.is_set()
        assert not link.tell("after the close")
        assert link.dropped == 1
    finally:
        ref.stop()


def test_a_supervisor_stopped_without_closing_the_link_is_no_error() -> None:
    link = SupervisorLink()
    ref = _Recorder.start()
    link.bind(ref)
    ref.stop()
    assert not link.tell("late reply")  # no ActorDeadError: dropped and counted
    assert link.closed.is_set()
    assert link.dropped == 1
