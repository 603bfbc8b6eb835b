"""Clocks: the only place the actor system reads time or waits for it.

Timers are deadlines on CLOCK_MONOTONIC nanoseconds (the spec's lease and announce clock).
Production uses ``MonotonicClock``: one daemon thread that sleeps until the earliest deadline
and runs the callbacks there, in deadline order; the driver process uses ``HostedClock``, whose
callbacks the control gateway's poll thread runs (where the DriverActor runs too). Tests use
``ManualClock``, which moves only when told to and fires due callbacks synchronously inside
``advance``, so every firing time a test asserts is exact.

Callbacks run on the clock's thread (the host's, or the thread calling ``advance``) and must
not block:
the TimerActor's callbacks only ``tell``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Clock",
    "ClockClosedError",
    "HostedClock",
    "ManualClock",
    "MonotonicClock",
    "TimerHandle",
]

logger = logging.getLogger(__name__)

# Rebuild the heap once this many cancelled timers are waiting in it (and they are the
# majority), so a lease timer re-armed on every keepalive cannot grow the heap without bound.
_COMPACT_AT = 64


class ClockClosedError(RuntimeError):
    """``call_at`` was called on a clock that has been closed."""


class TimerHandle:
    """A scheduled callback; ``cancel()`` stops it from firing (safe from any thread)."""

    __slots__ = ("_callback", "_owner", "deadline_ns")

    def __init__(self, owner: _TimerQueue, deadline_ns: int, callback: Callable[[], None]) -> None:
        self._owner = owner
        self.deadline_ns = deadline_ns
        self._callback: Callable[[], None] | None = callback

    def __repr__(self) -> str:
        state = "cancelled" if self._callback is None else "pending"
        return f"TimerHandle(deadline_ns={self.deadline_ns}, {state})"

    @property
    def cancelled(self) -> bool:
        """True once cancelled, fired, or dropped by ``close``."""
        return self._callback is None

    def cancel(self) -> None:
        """Stop the callback from firing; does nothing if it already fired or was cancelled."""
        self._owner.cancel(self)


class Clock(Protocol):
    """What actors need from time: read it, and be called back at a deadline."""

    def now_ns(self) -> int:
        """Current CLOCK_MONOTONIC-style time in nanoseconds."""
        ...

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once ``now_ns() >= deadline_ns``; it must not block."""
        ...

    def close(self) -> None:
        """Drop every pending timer and stop the clock's thread, if any."""
        ...


class _TimerQueue:
    """A heap of timers ordered by (deadline, scheduling order), guarded by ``lock``."""

    def __init__(self, lock: threading.Condition) -> None:
        self.lock = lock
        self._heap: list[tuple[int, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled = 0
        self.closed = False

    def push(self, deadline_ns: int, callback: Callable[[], None]) -> TimerHandle:
        """Add a timer; the caller holds ``lock``."""
        if self.closed:
            raise ClockClosedError("call_at on a closed clock")
        handle = TimerHandle(self, deadline_ns, callback)
        heapq.heappush(self._heap, (deadline_ns, next(self._seq), handle))
        return handle

    def push_first(
        self, deadline_ns: int, callback: Callable[[], None]
    ) -> tuple[TimerHandle, bool]:
        """``push``, and whether the new timer is now the earliest (a sleeper must wake)."""
        earliest = self.next_deadline()
        return self.push(deadline_ns, callback), earliest is None or deadline_ns < earliest

    def cancel(self, handle: TimerHandle) -> None:
        with self.lock:
            if handle._callback is None:  # noqa: SLF001 - same module
                return
            handle._callback = None  # noqa: SLF001
            self._cancelled += 1
            if self._cancelled >= _COMPACT_AT and self._cancelled * 2 > len(self._heap):
                self._heap = [e for e in self._heap if e[2]._callback is not None]  # noqa: SLF001
                heapq.heapify(self._heap)
                self._cancelled = 0

    def _skip_cancelled(self) -> None:
        heap = self._heap
        while heap and heap[0][2]._callback is None:  # noqa: SLF001
            heapq.heappop(heap)
            self._cancelled = max(0, self._cancelled - 1)

    def next_deadline(self) -> int | None:
        """Earliest live deadline; the caller holds ``lock``."""
        self._skip_cancelled()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now_ns: int) -> tuple[int, Callable[[], None]] | None:
        """Remove and return the earliest live timer due at ``now_ns``; caller holds ``lock``."""
        self._skip_cancelled()
        if not self._heap or self._heap[0][0] > now_ns:
            return None
        deadline, _, handle = heapq.heappop(self._heap)
        callback = handle._callback  # noqa: SLF001
        handle._callback = None  # noqa: SLF001 - fired: cancel() is now a no-op
        assert callback is not None  # _skip_cancelled left a live timer on top
        return deadline, callback

    def close(self) -> None:
        """Drop every timer; the caller holds ``lock``."""
        self.closed = True
        for _, _, handle in self._heap:
            handle._callback = None  # noqa: SLF001
        self._heap.clear()
        self._cancelled = 0

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled


class _QueueClock:
    """What the clocks built on a ``_TimerQueue`` share: its lock and the queries on it."""

    _cond: threading.Condition
    _timers: _TimerQueue

    def pending(self) -> int:
        """Timers scheduled and not yet fired or cancelled."""
        with self._cond:
            return len(self._timers)

    def next_deadline(self) -> int | None:
        """The earliest pending deadline, or None."""
        with self._cond:
            return self._timers.next_deadline()


class MonotonicClock(_QueueClock):
    """``time.monotonic_ns`` with one daemon thread that fires callbacks in deadline order.

    A callback that raises is logged and the thread carries on with the next one. ``close``
    drops pending timers and joins the thread (unless called from a callback on that thread).
    """

    def __init__(self, name: str = "monotonic-clock") -> None:
        self._cond = threading.Condition(threading.Lock())
        self._timers = _TimerQueue(self._cond)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> TimerHandle:
        with self._cond:
            handle, sooner = self._timers.push_first(deadline_ns, callback)
            if sooner:
                self._cond.notify()
        return handle

    def close(self) -> None:
        with self._cond:
            self._timers.close()
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        _serve(self._cond, self._timers)


def _serve(
    cond: threading.Condition, timers: _TimerQueue, retire: Callable[[], bool] | None = None
) -> None:
    """A clock thread's loop: sleep until the earliest deadline, fire, until closed (or, with
    ``retire``, until no timer is pending and ``retire``, called under the lock, agrees)."""
    while True:
        with cond:
            while True:
                if timers.closed or (retire is not None and not len(timers) and retire()):
                    return
                now = time.monotonic_ns()
                due = timers.pop_due(now)
                if due is not None:
                    break
                deadline = timers.next_deadline()
                cond.wait(None if deadline is None else (deadline - now) / 1e9)
        try:
            due[1]()
        except Exception:
            logger.exception("timer callback at %d ns failed", due[0])


class HostedClock(_QueueClock):
    """``time.monotonic_ns`` whose callbacks fire on a host loop's thread: no thread of its own.

    The host (the control gateway's poll thread, which also runs the DriverActor) calls
    ``run_due`` on every loop turn and parks no longer than ``next_deadline``; ``call_at`` from
    another thread wakes it when the earliest deadline moves closer. So a lease check fires,
    decides and has its revokes offered on one thread: no clock thread waking up and no wait for
    the interpreter's switch interval between them. When the host's loop ends (``release``), a
    thread fires what is left and what comes, like ``MonotonicClock``'s; it runs only while
    timers are pending, so a released clock nobody closes holds no thread.
    """

    def __init__(self, name: str = "hosted-clock") -> None:
        self._cond = threading.Condition(threading.Lock())
        self._timers = _TimerQueue(self._cond)
        self._name = name
        self._wake: Callable[[], None] = _no_wake
        self._released = False
        self._thread: threading.Thread | None = None
        self._host = 0  # the host thread's ident, once it ran run_due

    def bind(self, wake: Callable[[], None]) -> None:
        """The host's wake-up; ``call_at`` calls it (from any thread) for a sooner deadline."""
        self._wake = wake

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> TimerHandle:
        with self._cond:
            handle, sooner = self._timers.push_first(deadline_ns, callback)
            hosted = not self._released
            if not hosted:
                self._serve_released()
        if sooner and hosted and threading.get_ident() != self._host:
            self._wake()  # (the host itself looks at next_deadline before it parks)
        return handle

    def run_due(self, now_ns: int) -> int:
        """Host thread: fire every callback due at ``now_ns`` in deadline order; how many."""
        cond, timers = self._cond, self._timers
        self._host = threading.get_ident()
        fired = 0
        while True:
            with cond:
                due = timers.pop_due(now_ns)
            if due is None:
                return fired
            fired += 1
            try:
                due[1]()
            except Exception:
                logger.exception("timer callback at %d ns failed", due[0])

    def release(self) -> None:
        """The host's loop ends: a thread of its own fires the timers from now on."""
        with self._cond:
            if self._released or self._timers.closed:
                return
            self._released = True
            self._serve_released()

    def _serve_released(self) -> None:
        """Wake the released clock's thread, or start one; the caller holds the lock."""
        if self._thread is not None:
            self._cond.notify()
        elif len(self._timers):
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        _serve(self._cond, self._timers, self._retire)

    def _retire(self) -> bool:
        """Nothing pending: the thread ends; the next ``call_at`` starts another."""
        self._thread = None
        return True

    def close(self) -> None:
        with self._cond:
            self._timers.close()
            self._cond.notify()
            thread = self._thread
        if thread is not None and threading.current_thread() is not thread:
            thread.join()


def _no_wake() -> None:
    """Until a host binds: its loop runs ``run_due`` on every turn anyway."""


class ManualClock(_QueueClock):
    """A clock that moves only through ``advance``/``advance_to``, for deterministic tests.

    ``advance_to(t)`` fires every callback due at or before ``t`` in deadline order (ties in
    scheduling order). Before each callback the clock reads that callback's deadline, so a
    callback that reads ``now_ns()`` sees exactly the time it was scheduled for; a callback
    may schedule more callbacks, and those due by ``t`` fire in the same call. A callback
    scheduled for a time already past fires on the next advance (``advance(0)`` will do),
    without moving the clock backwards. An exception from a callback propagates out of
    ``advance``; the callbacks still due fire on the next advance. Thread-safe: actors may
    schedule and cancel from their own threads while a test advances.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._timers = _TimerQueue(self._cond)
        self._now = start_ns
        self._advancing = threading.RLock()

    def now_ns(self) -> int:
        with self._cond:
            return self._now

    def call_at(self, deadline_ns: int, callback: Callable[[], None]) -> TimerHandle:
        with self._cond:
            handle = self._timers.push(deadline_ns, callback)
            self._cond.notify_all()
        return handle

    def wait_for_pending(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` timers are pending (an actor armed them) or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._timers) >= count, timeout)

    def advance(self, ns: int) -> None:
        """Move time forward by ``ns`` nanoseconds, firing due callbacks."""
        if ns < 0:
            raise ValueError("time can't go backwards")
        with self._cond:
            target = self._now + ns
        self.advance_to(target)

    def advance_to(self, ns: int) -> None:
        """Move time forward to ``ns``, firing due callbacks; ValueError if ``ns`` is past."""
        with self._advancing:
            with self._cond:
                if ns < self._now:
                    raise ValueError("time can't go backwards")
            while True:
                with self._cond:
                    due = self._timers.pop_due(ns)
                    if due is None:
                        self._now = ns
                        return
                    self._now = max(self._now, due[0])
                due[1]()

    def close(self) -> None:
        with self._cond:
            self._timers.close()
