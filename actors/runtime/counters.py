"""Named monotonic counters: the one implementation the gateway, the driver and the admin
plane count with.

Each is incremented on its owner's thread and snapshotted from others (the admin plane reads
the gateway's from its own thread), so a lock guards the dict; uncontended, it costs less
than the dict update beside it.
"""

from __future__ import annotations

import threading
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


class Counters:
    """Monotonic named counters; ``snapshot`` is a consistent, read-only copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = {}

    def inc(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to ``name`` (created at zero)."""
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def __getitem__(self, name: str) -> int:
        return self.get(name)

    def get(self, name: str) -> int:
        """The current value of ``name`` (0 if never incremented)."""
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> Mapping[str, int]:
        """A frozen copy of every counter, safe to hand to another thread."""
        with self._lock:
            return MappingProxyType(dict(self._values))
