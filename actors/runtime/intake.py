"""How far the gateway has read the control stream: shared by the gateway and the driver.

A keepalive can be late to the driver without being late on the wire: while a flood holds
the gateway back it waits unread in the Aeron log, and while the gateway parks it waits
there for up to one park. A lease must therefore expire only up to a time by which every
request published earlier has been *handled*, not just published.

The gateway writes ``read_ns`` (the start of its latest poll that drained the log) after
telling the driver everything that poll read. The driver reads it when it checks leases:
if its own mailbox is empty at that moment, everything told before the write has been
handled, so ``read_ns`` is a safe horizon at once, with no message and no lag. Otherwise,
or when the horizon is still short of a due deadline, the driver calls ``want(ns)``: the
gateway is woken and, after its next draining poll that started at or after ``ns``, tells
the driver ``IntakeCaughtUp``, which the mailbox delivers behind everything read before it.

Plain attribute reads and writes of ints are atomic under the GIL; ``want`` and ``take``
race benignly (a lost ``want`` is retried by the driver's next check, a duplicate
``IntakeCaughtUp`` only sweeps twice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["IntakeHorizon"]

_NOT_WANTED = -1


class IntakeHorizon:
    """The gateway's read horizon (CLOCK_MONOTONIC ns) and the driver's wish to move it."""

    __slots__ = ("_wake", "_wanted_ns", "read_ns")

    def __init__(self, wake: Callable[[], None] | None = None) -> None:
        self.read_ns = 0
        self._wanted_ns = _NOT_WANTED
        self._wake = wake

    def bind_wake(self, wake: Callable[[], None]) -> None:
        """Set how ``want`` wakes the reader (the gateway's idle park)."""
        self._wake = wake

    # ------------------------------------------------------------ the driver's side

    def want(self, ns: int) -> None:
        """Ask for ``IntakeCaughtUp`` once a draining poll started at or after ``ns``."""
        wanted = self._wanted_ns
        if wanted == _NOT_WANTED or ns < wanted:
            self._wanted_ns = ns
        if self._wake is not None:
            self._wake()

    # ------------------------------------------------------------ the gateway's side

    def caught_up(self, started_ns: int) -> bool:
        """Record a draining poll that started at ``started_ns`` (after telling what it read).

        True when the driver asked for a horizon this poll reaches: the caller then tells it
        ``IntakeCaughtUp(started_ns)``.
        """
        self.read_ns = started_ns
        wanted = self._wanted_ns
        if wanted == _NOT_WANTED or started_ns < wanted:
            return False
        self._wanted_ns = _NOT_WANTED
        return True

    @property
    def wanted(self) -> bool:
        return self._wanted_ns != _NOT_WANTED
