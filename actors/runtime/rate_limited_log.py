"""A logger that writes at most one line per kind and interval.

A hostile peer can send thousands of bad requests per second, each of which deserves a log
line: the first line of each kind per interval is written, and the next one says how many
were suppressed, so the log stays readable and no loop stalls on I/O.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable


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

        Returns True when the line was written. Each instance belongs to one thread (the
        gateway's poll thread, the DriverActor), so it needs no lock.
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
