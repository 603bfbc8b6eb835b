"""Calls queued for the one thread that may touch some resources (an Aeron client).

Aeron objects are not thread-safe, so the client's Aeron thread and the bridge's network
thread each run, between polls, the calls other threads queue here, in order; each caller
waits on its call's ``Future``. When the owning thread ends, every queued call fails instead
of leaving its caller waiting.
"""

from __future__ import annotations

import queue
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CommandQueue"]


class CommandQueue:
    """FIFO of ``(fn, future)``; ``run`` on the owning thread, ``put`` from any thread."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[tuple[Callable[..., object], Future[object]]] = (
            queue.SimpleQueue()
        )

    def put(self, fn: Callable[..., object]) -> Future[object]:
        fut: Future[object] = Future()
        self._items.put((fn, fut))
        return fut

    def run(self, *args: Any) -> int:
        """Owning thread: call every queued ``fn(*args)`` in order; returns how many ran."""
        ran = 0
        items = self._items
        while not items.empty():  # cheaper than the exception on the usual empty turn
            try:
                fn, fut = items.get_nowait()
            except queue.Empty:
                break
            ran += 1
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # the caller gets it, whatever it is
                fut.set_exception(exc)
        return ran

    def fail_all(self, make_error: Callable[[], BaseException]) -> None:
        """The owning thread is gone: every queued call fails with a fresh error."""
        while True:
            try:
                _fn, fut = self._items.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                fut.set_exception(make_error())
