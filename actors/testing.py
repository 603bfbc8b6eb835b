"""Test doubles for the actor system's boundaries: a recording outbox and event sink.

Both are thread-safe and let a test wait for what it expects on a condition variable, so
actor tests never sleep.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from messages.events import DriverEvent
    from messages.sbe import SbeMessage


class _Recorder[T]:
    def __init__(self) -> None:
        self._items: list[T] = []
        self._cond = threading.Condition()

    def _record(self, item: T) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def _snapshot(self) -> list[T]:
        with self._cond:
            return list(self._items)

    def wait_for(self, predicate: Callable[[list[T]], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate(items so far)`` holds; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(list(self._items)), timeout)

    def clear(self) -> None:
        with self._cond:
            self._items.clear()


class RecordingOutbox(_Recorder["SbeMessage"]):
    """An ``Outbox`` that keeps every message in order."""

    def send(self, message: SbeMessage) -> None:
        self._record(message)

    @property
    def messages(self) -> list[SbeMessage]:
        return self._snapshot()

    def of_type[M](self, cls: type[M]) -> list[M]:
        """The recorded messages of one class, in order."""
        return [m for m in self._snapshot() if isinstance(m, cls)]

    def wait_for_count(self, cls: type[object], count: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` messages of ``cls`` were sent."""
        return self.wait_for(lambda ms: sum(isinstance(m, cls) for m in ms) >= count, timeout)


class RecordingEventSink(_Recorder["DriverEvent"]):
    """An ``EventSink`` that keeps every event in order."""

    def emit(self, event: DriverEvent) -> None:
        self._record(event)

    @property
    def events(self) -> list[DriverEvent]:
        return self._snapshot()

    def kinds(self) -> list[str]:
        return [e.kind for e in self._snapshot()]
