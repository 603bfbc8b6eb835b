"""The TimerActor: turns clock deadlines into timer events told to the DriverActor.

Decisions never read a clock: each timer event carries ``now_ns``, the clock reading at which
it fired (on a ManualClock exactly the deadline), so the driver's HSMs and the tests that
drive them with a ManualClock are exact.

Periodic timers are drift-free: the next deadline is the previous deadline plus the period,
never "now plus the period". If the clock thread was late by more than a period, the missed
periods are skipped (one event, then the next deadline on the original grid) rather than
delivered as a burst. The clock callbacks only ``tell``; they never block.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import pykka

from messages.events import (
    AnnounceTimerFired,
    ArmShutdownTimer,
    ShutdownTimerFired,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.runtime.clock import Clock, TimerHandle

__all__ = ["DeadlineTimer", "PeriodicTimer", "TimerActor"]

logger = logging.getLogger(__name__)


class PeriodicTimer:
    """A drift-free repeating clock callback that tells ``target`` one event per firing.

    Runs on the clock's thread; ``cancel`` may be called from any thread and, once it
    returns, no further event is told and nothing stays scheduled.
    """

    def __init__(
        self,
        clock: Clock,
        period_ns: int,
        first_deadline_ns: int,
        target: pykka.ActorRef[Any],
        make_event: Callable[[int], object],
    ) -> None:
        if period_ns <= 0:
            raise ValueError(f"timer period must be > 0 ns, got {period_ns}")
        self._clock = clock
        self.period_ns = period_ns
        self._target = target
        self._make_event = make_event
        self._lock = threading.Lock()
        self._cancelled = False
        self.fired = 0
        self.skipped = 0
        self.deadline_ns = first_deadline_ns
        with self._lock:  # a MonotonicClock may fire at once, on its own thread
            self._handle: TimerHandle = clock.call_at(first_deadline_ns, self._fire)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            self._handle.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            now = self._clock.now_ns()
            missed = max(0, (now - self.deadline_ns) // self.period_ns)
            self.skipped += missed
            self.deadline_ns += (missed + 1) * self.period_ns
            self.fired += 1
            try:
                self._target.tell(self._make_event(now))
            except pykka.ActorDeadError:
                logger.debug("timer target %s is gone; timer stops", self._target)
                self._cancelled = True
                return
            self._handle = self._clock.call_at(self.deadline_ns, self._fire)


class DeadlineTimer:
    """A one-shot clock callback that tells ``target`` one event at a deadline.

    ``arm(deadline_ns)`` replaces whatever is pending, from any thread; the event carries the
    clock reading at firing (on a ManualClock exactly the deadline). The DriverActor arms its
    lease check this way for the earliest lease deadline, so expiry happens at the deadline
    instead of on the next tick of a period.
    """

    def __init__(
        self,
        clock: Clock,
        target: pykka.ActorRef[Any],
        make_event: Callable[[int], object],
    ) -> None:
        self._clock = clock
        self._target = target
        self._make_event = make_event
        self._lock = threading.Lock()
        self._handle: TimerHandle | None = None
        self.armed = 0  # how many times it was armed (for tests and benches)

    def arm(self, deadline_ns: int) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.cancel()
            self.armed += 1
            handle: list[TimerHandle] = []

            def fire() -> None:
                with self._lock:
                    if self._handle is not handle[0]:
                        return  # replaced while this callback was starting
                    self._handle = None
                try:
                    self._target.tell(self._make_event(self._clock.now_ns()))
                except pykka.ActorDeadError:
                    logger.debug("deadline timer target %s is gone", self._target)

            handle.append(self._clock.call_at(deadline_ns, fire))
            self._handle = handle[0]

    def cancel(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None


class TimerActor(pykka.ThreadingActor):
    """Owns the driver's periodic announce timer and the one-shot shutdown timer.

    Start with ``TimerActor.start(clock, target, announce_period_ns)``. The announce timer is
    armed in ``on_start`` (first firing one period after start); the lease check is not periodic:
    the DriverActor arms it for the earliest lease deadline (``DeadlineTimer``);
    ``ArmShutdownTimer(deadline_ns)`` arms the shutdown timer (a later one replaces an earlier
    one that has not fired); ``on_stop`` cancels every timer.
    """

    def __init__(
        self,
        clock: Clock,
        target: pykka.ActorRef[Any],
        announce_period_ns: int,
    ) -> None:
        super().__init__()
        if announce_period_ns <= 0:
            raise ValueError(f"the announce period must be > 0 ns, got {announce_period_ns}")
        self._clock = clock
        self._target = target
        self._announce_period_ns = announce_period_ns
        self._periodic: list[PeriodicTimer] = []
        self._shutdown: TimerHandle | None = None
        self._shutdown_lock = threading.Lock()

    def on_start(self) -> None:
        now = self._clock.now_ns()
        self._periodic = [
            PeriodicTimer(
                self._clock,
                self._announce_period_ns,
                now + self._announce_period_ns,
                self._target,
                AnnounceTimerFired,
            ),
        ]

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ArmShutdownTimer):
            self._arm_shutdown(message.deadline_ns)
            return None
        return super().on_receive(message)

    def on_stop(self) -> None:
        self._cancel_all()

    def on_failure(self, *_exc_info: object) -> None:
        self._cancel_all()

    def _cancel_all(self) -> None:
        for timer in self._periodic:
            timer.cancel()
        with self._shutdown_lock:
            if self._shutdown is not None:
                self._shutdown.cancel()
                self._shutdown = None

    def _arm_shutdown(self, deadline_ns: int) -> None:
        with self._shutdown_lock:
            if self._shutdown is not None:
                self._shutdown.cancel()
            handle: list[TimerHandle] = []

            def fire() -> None:
                with self._shutdown_lock:
                    if self._shutdown is not handle[0]:
                        return  # replaced or cancelled while this callback was starting
                    self._shutdown = None
                    try:
                        self._target.tell(ShutdownTimerFired(self._clock.now_ns()))
                    except pykka.ActorDeadError:
                        logger.debug("shutdown timer target %s is gone", self._target)

            handle.append(self._clock.call_at(deadline_ns, fire))
            self._shutdown = handle[0]
