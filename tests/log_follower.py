"""A subprocess's stderr followed line by line, for tests that wait for what it logs.

A daemon thread moves each line into a queue; ``wait_line`` takes from it (keeping every line
in ``lines`` for failure messages) until a line matches, the process ends, or the deadline.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO


class LogFollower:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines  # the owner's list: every line read so far
        self._queue: queue.Queue[str | None] = queue.Queue()

    def follow(self, stream: IO[str] | None) -> None:
        """Read ``stream`` (a Popen's stderr) on a daemon thread until it ends."""
        assert stream is not None
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(
        self, predicate: Callable[[str], bool], timeout: float, *, exited: Callable[[], str]
    ) -> str:
        """The first line (seen before or arriving within ``timeout``) that matches."""
        for seen in self.lines:
            if predicate(seen):
                return seen
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise AssertionError(f"log line not seen; log: {self.lines[-40:]}") from None
            if line is None:
                raise AssertionError(f"{exited()}; log: {self.lines[-40:]}")
            self.lines.append(line)
            if predicate(line):
                return line

    def drain(self, timeout: float) -> None:
        """Take every line left until the stream ends (after the process exited)."""
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
