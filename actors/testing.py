"""Test doubles for the actor system's boundaries: a recording outbox and event sink.

Both are thread-safe and let a test wait for what it expects on a condition variable, so
actor tests never sleep.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from tensorpool_config.loader import parse_config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

    from messages.events import DriverEvent
    from messages.sbe import SbeMessage
    from tensorpool_config.model import DriverConfig


class _Recorder[T]:
    def __init__(self) -> None:
        self._items: list[T] = []
        self._cond = threading.Condition()

    def _record(self, item: T) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def _record_all(self, items: Iterable[T]) -> None:
        with self._cond:
            self._items.extend(items)
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

    def send_all(self, messages: Iterable[SbeMessage]) -> None:
        self._record_all(messages)

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


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def small_config(
    base_dir: Path,
    *,
    driver: Mapping[str, object] | None = None,
    policies: Mapping[str, object] | None = None,
    shm: Mapping[str, object] | None = None,
) -> DriverConfig:
    """A tiny configuration rooted at ``base_dir`` for tests and benchmarks.

    Static stream 10000 (profile ``tiny``: 8 header slots, pools 1 x 64 B and 2 x 128 B),
    dynamic streams allowed in 20000-20009, per-consumer ranges 31000-31001 / 32000-32001,
    no prefault; ``driver``/``policies``/``shm`` override single keys. Environment overrides
    are not applied, so the host's variables never change a test.
    """
    tables: dict[str, dict[str, object]] = {
        "driver": {
            "stream_id_range": "20000-20009",
            "descriptor_stream_id_range": "31000-31001",
            "control_stream_id_range": "32000-32001",
            **(driver or {}),
        },
        "shm": {"base_dir": str(base_dir), **(shm or {})},
        "policies": {
            "allow_dynamic_streams": True,
            "default_profile": "tiny",
            "prefault_shm": False,
            **(policies or {}),
        },
    }
    lines: list[str] = []
    for name, values in tables.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    lines += [
        "[profiles.tiny]",
        "header_nslots = 8",
        "payload_pools = [{ pool_id = 1, stride_bytes = 64 }, { pool_id = 2, stride_bytes = 128 }]",
        "[streams.main]",
        "stream_id = 10000",
        'profile = "tiny"',
        "[admin]",
        "enabled = false",
    ]
    return parse_config("\n".join(lines) + "\n", source="<small_config>", env={})
