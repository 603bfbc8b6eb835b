"""TimerActor on a ManualClock: exact firing times and counts, re-arming, shutdown, stop."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pykka
import pytest

from actors.runtime.clock import ManualClock, MonotonicClock, TimerHandle
from actors.runtime.timer import DeadlineTimer, PeriodicTimer, TimerActor
from messages.events import (
    AnnounceTimerFired,
    ArmShutdownTimer,
    LeaseCheckTimerFired,
    ShutdownTimerFired,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

TIMEOUT = 10.0
MS = 1_000_000


class Target(pykka.ThreadingActor):
    """Records what it is told; tests wait on its condition, never sleep."""

    use_daemon_thread = True

    def __init__(self) -> None:
        super().__init__()
        self.cond = threading.Condition()
        self.received: list[object] = []

    def on_receive(self, message: Any) -> Any:
        with self.cond:
            self.received.append(message)
            self.cond.notify_all()

    def wait_for(self, count: int) -> list[object]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.received) >= count, TIMEOUT), (
                f"got {self.received}, wanted {count} messages"
            )
            return list(self.received)


@pytest.fixture(autouse=True)
def stop_all_actors() -> Iterator[None]:
    try:
        yield
    finally:
        pykka.ActorRegistry.stop_all(timeout=TIMEOUT)


def start_target() -> tuple[pykka.ActorRef[Target], Target]:
    ref = Target.start()
    actor = ref._actor_weakref()
    assert actor is not None
    return ref, actor


def start_timer(
    clock: ManualClock, target: pykka.ActorRef[Target], announce: int
) -> pykka.ActorRef[TimerActor]:
    timer = TimerActor.start(clock, target, announce)
    assert clock.wait_for_pending(1, timeout=TIMEOUT)  # on_start armed the announce timer
    return timer


def barrier(target: pykka.ActorRef[Target]) -> None:
    """Every tell made before this call has been handled once it returns."""
    target.ask("barrier", block=True, timeout=TIMEOUT)


class TestPeriodicTimers:
    def test_exact_fire_times_and_counts_over_one_advance(self) -> None:
        clock = ManualClock(start_ns=5 * MS)
        ref, target = start_target()
        start_timer(clock, ref, announce=100 * MS)
        clock.advance(1_000 * MS)
        received = target.wait_for(10)
        assert received == [AnnounceTimerFired((5 + 100 * i) * MS) for i in range(1, 11)]
        barrier(ref)
        assert target.received[10:] == ["barrier"]

    def test_rearming_keeps_the_grid_across_uneven_advances(self) -> None:
        clock = ManualClock()
        ref, target = start_target()
        start_timer(clock, ref, announce=300)
        for step in (250, 100, 1, 349, 0, 300):  # 250, 350, 351, 700, 700, 1000
            clock.advance(step)
        received = target.wait_for(3)
        assert received == [
            AnnounceTimerFired(300),
            AnnounceTimerFired(600),
            AnnounceTimerFired(900),
        ]
        assert clock.next_deadline() == 1_200
        barrier(ref)
        assert len(target.received) == 4  # nothing else arrived

    def test_unknown_message_is_logged_not_fatal(self, caplog: pytest.LogCaptureFixture) -> None:
        clock = ManualClock()
        ref, _ = start_target()
        timer = start_timer(clock, ref, announce=10)
        timer.tell("nonsense")
        timer.ask(ArmShutdownTimer(deadline_ns=1), block=True, timeout=TIMEOUT)
        assert timer.is_alive()
        assert any("nonsense" in r.getMessage() for r in caplog.records)

    def test_rejects_non_positive_periods(self) -> None:
        clock = ManualClock()
        ref, _ = start_target()
        with pytest.raises(ValueError, match="must be > 0"):
            TimerActor(clock, ref, 0)


class TestShutdownTimer:
    def test_fires_once_at_its_deadline(self) -> None:
        clock = ManualClock()
        ref, target = start_target()
        timer = start_timer(clock, ref, announce=10**12)
        timer.ask(ArmShutdownTimer(deadline_ns=5_000), block=True, timeout=TIMEOUT)
        clock.advance(4_999)
        barrier(ref)
        assert target.received == ["barrier"]
        clock.advance(10_000)
        assert target.wait_for(2) == ["barrier", ShutdownTimerFired(5_000)]
        assert clock.pending() == 1  # only the periodic timer remains

    def test_rearming_replaces_the_earlier_deadline(self) -> None:
        clock = ManualClock()
        ref, target = start_target()
        timer = start_timer(clock, ref, announce=10**12)
        timer.tell(ArmShutdownTimer(deadline_ns=5_000))
        timer.ask(ArmShutdownTimer(deadline_ns=2_000), block=True, timeout=TIMEOUT)
        clock.advance(10_000)
        barrier(ref)
        assert target.received == [ShutdownTimerFired(2_000), "barrier"]

    def test_deadline_in_the_past_fires_on_the_next_advance(self) -> None:
        clock = ManualClock(start_ns=9_000)
        ref, target = start_target()
        timer = start_timer(clock, ref, announce=10**12)
        timer.ask(ArmShutdownTimer(deadline_ns=1_000), block=True, timeout=TIMEOUT)
        clock.advance(0)
        assert target.wait_for(1) == [ShutdownTimerFired(9_000)]


class TestStop:
    def test_stop_cancels_every_timer(self) -> None:
        clock = ManualClock()
        ref, target = start_target()
        timer = start_timer(clock, ref, announce=100)
        timer.ask(ArmShutdownTimer(deadline_ns=80), block=True, timeout=TIMEOUT)
        assert clock.pending() == 2
        clock.advance(30)
        assert timer.stop(timeout=TIMEOUT)
        assert clock.pending() == 0
        clock.advance(1_000)
        barrier(ref)
        assert target.received == ["barrier"]

    def test_dead_target_stops_the_periodic_timer(self) -> None:
        clock = ManualClock()
        ref, _ = start_target()
        start_timer(clock, ref, announce=100)
        assert ref.stop(timeout=TIMEOUT)
        clock.advance(100)  # the timer finds the target gone and does not re-arm
        assert clock.pending() == 0


class StepClock:
    """A clock whose reading and firing are separate, to simulate a late clock thread."""

    def __init__(self) -> None:
        self.now = 0
        self.scheduled: list[tuple[int, Callable[[], None]]] = []
        self.timers = ManualClock()  # only for its TimerHandle bookkeeping

    def now_ns(self) -> int:
        return self.now

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> TimerHandle:
        self.scheduled.append((deadline_ns, callback))
        return self.timers.call_at(deadline_ns, callback)

    def close(self) -> None:
        self.timers.close()

    def fire_late(self, now: int) -> None:
        """Fire the most recently scheduled callback with the clock reading ``now``."""
        self.now = now
        self.scheduled[-1][1]()


class TestDriftFree:
    def test_late_firing_skips_missed_periods_instead_of_bursting(self) -> None:
        clock = StepClock()
        ref, target = start_target()
        timer = PeriodicTimer(clock, 100, 100, ref, AnnounceTimerFired)
        try:
            clock.fire_late(130)  # 30 ns late: next stays on the grid at 200
            assert clock.scheduled[-1][0] == 200
            clock.fire_late(470)  # 270 late: 300 and 400 are skipped, next is 500
            assert clock.scheduled[-1][0] == 500
            clock.fire_late(500)
            assert clock.scheduled[-1][0] == 600
            assert target.wait_for(3) == [
                AnnounceTimerFired(130),
                AnnounceTimerFired(470),
                AnnounceTimerFired(500),
            ]
            assert (timer.fired, timer.skipped) == (3, 2)
        finally:
            timer.cancel()

    def test_cancel_stops_a_callback_already_started(self) -> None:
        clock = StepClock()
        ref, target = start_target()
        timer = PeriodicTimer(clock, 100, 100, ref, AnnounceTimerFired)
        timer.cancel()
        clock.fire_late(100)  # the clock had already picked the callback
        assert len(clock.scheduled) == 1
        barrier(ref)
        assert target.received == ["barrier"]


@pytest.fixture
def mono() -> Iterator[MonotonicClock]:
    clock = MonotonicClock()
    try:
        yield clock
    finally:
        clock.close()


class TestWithMonotonicClock:
    def test_timer_events_arrive_with_times_on_or_after_their_deadlines(
        self, mono: MonotonicClock
    ) -> None:
        ref, target = start_target()
        start = mono.now_ns()
        timer = TimerActor.start(mono, ref, 2 * MS)
        deadline = DeadlineTimer(mono, ref, LeaseCheckTimerFired)
        deadline.arm(start + 3 * MS)
        received = target.wait_for(3)
        assert timer.stop(timeout=TIMEOUT)
        assert mono.pending() == 0
        assert all(isinstance(m, AnnounceTimerFired | LeaseCheckTimerFired) for m in received)
        times = [m.now_ns for m in received if isinstance(m, AnnounceTimerFired)]
        assert times == sorted(times)
        assert all(t > start for t in times)
        (check,) = [m for m in received if isinstance(m, LeaseCheckTimerFired)]
        assert check.now_ns >= start + 3 * MS


class TestDeadlineTimer:
    def test_fires_once_at_exactly_its_deadline(self) -> None:
        clock = ManualClock()
        ref, target = start_target()
        timer = DeadlineTimer(clock, ref, LeaseCheckTimerFired)
        timer.arm(3_000_000_001)
        clock.advance(3_000_000_000)
        barrier(ref)
        assert target.received == ["barrier"]
        clock.advance(10)
        assert target.wait_for(2) == ["barrier", LeaseCheckTimerFired(3_000_000_001)]
        assert clock.pending() == 0

    def test_arming_again_replaces_the_pending_deadline(self) -> None:
        clock = ManualClock()
        ref, target = start_target()
        timer = DeadlineTimer(clock, ref, LeaseCheckTimerFired)
        timer.arm(500)
        timer.arm(200)
        assert clock.pending() == 1
        clock.advance(1_000)
        assert target.wait_for(1) == [LeaseCheckTimerFired(200)]
        barrier(ref)
        assert target.received == [LeaseCheckTimerFired(200), "barrier"]
        assert timer.armed == 2

    def test_a_deadline_already_past_fires_on_the_next_advance(self) -> None:
        clock = ManualClock(start_ns=1_000)
        ref, target = start_target()
        DeadlineTimer(clock, ref, LeaseCheckTimerFired).arm(10)
        clock.advance(0)
        assert target.wait_for(1) == [LeaseCheckTimerFired(1_000)]

    def test_cancel_leaves_nothing_pending(self) -> None:
        clock = ManualClock()
        ref, target = start_target()
        timer = DeadlineTimer(clock, ref, LeaseCheckTimerFired)
        timer.arm(100)
        timer.cancel()
        assert clock.pending() == 0
        clock.advance(1_000)
        barrier(ref)
        assert target.received == ["barrier"]
