"""ManualClock (exact, synchronous) and MonotonicClock (real thread, waits on events)."""

from __future__ import annotations

import threading
from functools import partial
from typing import TYPE_CHECKING

import pytest

from actors.runtime.clock import (
    Clock,
    ClockClosedError,
    HostedClock,
    ManualClock,
    MonotonicClock,
    TimerHandle,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


class TestManualClock:
    def test_starts_at_start_ns_and_advances(self) -> None:
        clock = ManualClock(start_ns=1_000)
        assert clock.now_ns() == 1_000
        clock.advance(500)
        assert clock.now_ns() == 1_500
        clock.advance_to(2_000)
        assert clock.now_ns() == 2_000

    def test_time_never_goes_backwards(self) -> None:
        clock = ManualClock(start_ns=100)
        with pytest.raises(ValueError, match=r"^time can't go backwards$"):
            clock.advance_to(99)
        with pytest.raises(ValueError, match=r"^time can't go backwards$"):
            clock.advance(-1)
        assert clock.now_ns() == 100

    def test_fires_due_callbacks_in_deadline_order_with_clock_at_each_deadline(self) -> None:
        clock = ManualClock()
        fired: list[tuple[str, int]] = []

        def record(name: str) -> None:
            fired.append((name, clock.now_ns()))

        for name, deadline in (("c", 300), ("a", 100), ("b", 200), ("late", 1_001)):
            clock.call_at(deadline, partial(record, name))
        clock.advance(1_000)
        assert fired == [("a", 100), ("b", 200), ("c", 300)]
        assert clock.now_ns() == 1_000
        clock.advance(1)
        assert fired[-1] == ("late", 1_001)

    def test_deadline_equal_to_target_fires(self) -> None:
        clock = ManualClock()
        fired: list[int] = []
        clock.call_at(50, lambda: fired.append(50))
        clock.advance_to(49)
        assert fired == []
        clock.advance_to(50)
        assert fired == [50]

    def test_ties_fire_in_scheduling_order(self) -> None:
        clock = ManualClock()
        fired: list[int] = []
        for i in range(10):
            clock.call_at(7, partial(fired.append, i))
        clock.advance(7)
        assert fired == list(range(10))

    def test_callback_may_schedule_callbacks_that_fire_in_the_same_advance(self) -> None:
        clock = ManualClock()
        fired: list[int] = []

        def tick() -> None:
            fired.append(clock.now_ns())
            clock.call_at(clock.now_ns() + 100, tick)

        clock.call_at(100, tick)
        clock.advance(450)
        assert fired == [100, 200, 300, 400]
        assert clock.next_deadline() == 500

    def test_callback_scheduled_in_the_past_fires_without_moving_time_back(self) -> None:
        clock = ManualClock(start_ns=1_000)
        seen: list[int] = []
        clock.call_at(10, lambda: seen.append(clock.now_ns()))
        clock.advance(0)
        assert seen == [1_000]

    def test_cancel_prevents_firing_and_is_idempotent(self) -> None:
        clock = ManualClock()
        fired: list[str] = []
        keep = clock.call_at(10, lambda: fired.append("keep"))
        drop = clock.call_at(5, lambda: fired.append("drop"))
        drop.cancel()
        drop.cancel()
        assert drop.cancelled
        assert not keep.cancelled
        assert clock.pending() == 1
        clock.advance(20)
        assert fired == ["keep"]
        assert keep.cancelled  # fired handles count as done
        keep.cancel()  # no effect after firing
        assert clock.pending() == 0

    def test_callback_can_cancel_a_later_timer_due_in_the_same_advance(self) -> None:
        clock = ManualClock()
        fired: list[str] = []
        later: list[TimerHandle] = []
        clock.call_at(10, lambda: later[0].cancel())  # noqa: PLW0108 - later[0] set below
        later.append(clock.call_at(20, lambda: fired.append("later")))
        clock.advance(30)
        assert fired == []

    def test_many_cancelled_timers_are_compacted(self) -> None:
        clock = ManualClock()
        handles = [clock.call_at(1_000 + i, lambda: None) for i in range(1_000)]
        for h in handles[:900]:
            h.cancel()
        assert clock.pending() == 100
        assert len(clock._timers._heap) < 1_000
        fired: list[int] = []
        for i, h in enumerate(handles[900:]):
            h.cancel()
            clock.call_at(h.deadline_ns, partial(fired.append, i))
        clock.advance(5_000)
        assert fired == list(range(100))

    def test_exception_propagates_and_remaining_timers_fire_next_time(self) -> None:
        clock = ManualClock()
        fired: list[int] = []

        def boom() -> None:
            raise RuntimeError("bad callback")

        clock.call_at(1, boom)
        clock.call_at(2, lambda: fired.append(2))
        with pytest.raises(RuntimeError, match="bad callback"):
            clock.advance(10)
        assert clock.now_ns() == 1  # stopped at the failing callback's deadline
        clock.advance_to(10)
        assert fired == [2]
        assert clock.now_ns() == 10

    def test_close_drops_timers_and_refuses_new_ones(self) -> None:
        clock = ManualClock()
        fired: list[int] = []
        handle = clock.call_at(1, lambda: fired.append(1))
        clock.close()
        assert handle.cancelled
        clock.advance(10)
        assert fired == []
        with pytest.raises(ClockClosedError):
            clock.call_at(20, lambda: None)

    def test_wait_for_pending_sees_timers_armed_by_another_thread(self) -> None:
        clock = ManualClock()
        thread = threading.Thread(target=lambda: clock.call_at(5, lambda: None))
        thread.start()
        try:
            assert clock.wait_for_pending(1, timeout=5.0)
        finally:
            thread.join()

    def test_is_a_clock(self) -> None:
        clock: Clock = ManualClock()
        assert clock.now_ns() == 0


@pytest.fixture
def mono() -> Iterator[MonotonicClock]:
    clock = MonotonicClock()
    try:
        yield clock
    finally:
        clock.close()


class TestMonotonicClock:
    def test_now_is_monotonic_ns(self, mono: MonotonicClock) -> None:
        a = mono.now_ns()
        b = mono.now_ns()
        assert 0 < a <= b

    def test_fires_callback_after_its_deadline_on_the_clock_thread(
        self, mono: MonotonicClock
    ) -> None:
        done = threading.Event()
        seen: list[tuple[int, str]] = []
        deadline = mono.now_ns() + 2_000_000

        def cb() -> None:
            seen.append((mono.now_ns(), threading.current_thread().name))
            done.set()

        mono.call_at(deadline, cb)
        assert done.wait(5.0)
        assert seen[0][0] >= deadline
        assert seen[0][1] == "monotonic-clock"

    def test_fires_in_deadline_order(self, mono: MonotonicClock) -> None:
        done = threading.Event()
        fired: list[int] = []
        base = mono.now_ns() + 5_000_000
        order = [3, 1, 4, 0, 2]

        def make(i: int) -> None:
            def cb() -> None:
                fired.append(i)
                if len(fired) == len(order):
                    done.set()

            mono.call_at(base + i * 1_000_000, cb)

        for i in order:
            make(i)
        assert done.wait(5.0)
        assert fired == [0, 1, 2, 3, 4]

    def test_earlier_deadline_scheduled_later_wakes_the_thread(self, mono: MonotonicClock) -> None:
        done = threading.Event()
        far = mono.call_at(mono.now_ns() + 3_600 * 10**9, lambda: None)
        mono.call_at(mono.now_ns(), done.set)
        assert done.wait(5.0)
        assert not far.cancelled
        assert mono.pending() == 1

    def test_cancelled_callback_does_not_fire(self, mono: MonotonicClock) -> None:
        done = threading.Event()
        fired: list[str] = []
        soon = mono.now_ns() + 1_000_000
        mono.call_at(soon, lambda: fired.append("cancelled")).cancel()
        mono.call_at(soon + 1, done.set)  # fires after the cancelled one would have
        assert done.wait(5.0)
        assert fired == []

    def test_failing_callback_does_not_stop_the_thread(self, mono: MonotonicClock) -> None:
        done = threading.Event()

        def boom() -> None:
            raise RuntimeError("callback bug")

        now = mono.now_ns()
        mono.call_at(now, boom)
        mono.call_at(now + 1, done.set)
        assert done.wait(5.0)

    def test_close_joins_the_thread_and_drops_pending_timers(self) -> None:
        clock = MonotonicClock()
        handle = clock.call_at(clock.now_ns() + 3_600 * 10**9, lambda: None)
        clock.close()
        assert not clock._thread.is_alive()
        assert handle.cancelled
        with pytest.raises(ClockClosedError):
            clock.call_at(0, lambda: None)
        clock.close()  # idempotent

    def test_close_from_a_callback_does_not_deadlock(self) -> None:
        clock = MonotonicClock()
        try:
            done = threading.Event()

            def close_self() -> None:
                clock.close()
                done.set()

            clock.call_at(clock.now_ns(), close_self)
            assert done.wait(5.0)
            clock._thread.join(5.0)
            assert not clock._thread.is_alive()
        finally:
            clock.close()


class TestHostedClock:
    """Timers fired by a host loop (the gateway's poll thread), then by a thread of their own."""

    def test_run_due_fires_due_callbacks_in_deadline_order_and_only_those(self) -> None:
        clock = HostedClock()
        fired: list[int] = []
        now = clock.now_ns()
        for i in (3, 1, 2):
            clock.call_at(now - 10 + i, partial(fired.append, i))
        later = clock.call_at(now + 3_600 * 10**9, partial(fired.append, 99))
        assert clock.run_due(now) == 3
        assert fired == [1, 2, 3]
        assert clock.run_due(now) == 0
        assert clock.next_deadline() == now + 3_600 * 10**9
        later.cancel()
        assert clock.next_deadline() is None
        clock.close()

    def test_a_sooner_deadline_wakes_the_host_and_a_later_one_does_not(self) -> None:
        clock = HostedClock()
        wakes: list[str] = []
        clock.bind(lambda: wakes.append(threading.current_thread().name))
        now = clock.now_ns()
        clock.call_at(now + 2_000, lambda: None)
        clock.call_at(now + 3_000, lambda: None)  # not sooner: no wake-up
        waker = threading.Thread(target=clock.call_at, args=(now + 1_000, lambda: None), name="w")
        waker.start()
        waker.join()
        assert wakes == [threading.current_thread().name, "w"]
        clock.run_due(now)  # this thread is the host from now on
        clock.call_at(now + 500, lambda: None)  # sooner, but the host looks before it parks
        assert wakes == [threading.current_thread().name, "w"]
        clock.close()

    def test_a_failing_callback_does_not_stop_the_others(self) -> None:
        clock = HostedClock()
        fired: list[str] = []

        def boom() -> None:
            raise RuntimeError("callback bug")

        now = clock.now_ns()
        clock.call_at(now - 2, boom)
        clock.call_at(now - 1, partial(fired.append, "after"))
        assert clock.run_due(now) == 2
        assert fired == ["after"]
        clock.close()

    def test_release_hands_the_timers_to_a_thread_of_its_own(self) -> None:
        clock = HostedClock(name="released-clock")
        done = threading.Event()
        names: list[str] = []

        def cb() -> None:
            names.append(threading.current_thread().name)
            done.set()

        clock.call_at(clock.now_ns() + 2_000_000, cb)
        clock.release()
        clock.release()  # idempotent
        assert done.wait(5.0)
        assert names == ["released-clock"]
        late = threading.Event()
        clock.call_at(clock.now_ns(), late.set)  # scheduled after the release: still fires
        assert late.wait(5.0)
        thread = clock._thread
        if thread is not None:  # it ends once nothing is pending
            thread.join(5.0)
        assert clock._thread is None
        pending = clock.call_at(clock.now_ns() + 3_600 * 10**9, lambda: None)
        thread = clock._thread
        assert thread is not None
        assert thread.is_alive()
        clock.close()
        assert pending.cancelled
        assert not thread.is_alive()

    def test_close_drops_pending_timers_and_refuses_new_ones(self) -> None:
        clock = HostedClock()
        handle = clock.call_at(0, lambda: None)
        clock.close()
        assert handle.cancelled
        assert clock.run_due(clock.now_ns()) == 0
        with pytest.raises(ClockClosedError):
            clock.call_at(0, lambda: None)
        clock.release()  # a closed clock starts no thread
        assert clock._thread is None
        clock.close()

    def test_is_a_clock(self) -> None:
        clock: Clock = HostedClock()
        assert clock.now_ns() > 0
        clock.close()
