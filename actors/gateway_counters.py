"""Thread-safe counters and a rate-limited logger for the control gateway.

The gateway's poll thread increments counters; the admin plane snapshots them from its own
thread, so a lock guards the dict. A hostile peer can send thousands of bad fragments per
second: the logger keeps the first line of each kind per interval and reports how many it
suppressed, so the log stays readable and the poll loop never stalls on I/O.
"""

from __future__ import annotations

import threading
import time
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Mapping


class Counters:
    """Monotonic named counters; ``snapshot`` is a consistent, read-only copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def inc(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to ``name`` (created at zero)."""
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def get(self, name: str) -> int:
        """The current value of ``name`` (0 if never incremented)."""
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> Mapping[str, int]:
        """A frozen copy of every counter, safe to hand to another thread."""
        with self._lock:
            return MappingProxyType(dict(self._values))


class RateLimitedLog:
    """Log at most one line per key and interval; later lines say how many were suppressed."""

    def __init__(
        self,
        logger: logging.Logger,
        interval_ns: int = 1_000_000_000,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self._logger = logger
        self._interval_ns = interval_ns
        self._clock = clock
        self._last: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: object) -> bool:
        """Log ``message % args`` unless ``key`` was logged within the interval.

        Returns True when the line was written. Only the poll thread calls this, so it
        needs no lock.
        """
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_ns:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            self._logger.log(level, "%s (%d similar suppressed)", message % args, suppressed)
        else:
            self._logger.log(level, message, *args)
        return True
