"""Aeron publications and subscriptions used straight from the caller's thread (the data plane).

A concurrent publication is thread-safe to offer on, and a subscription may be polled by one
thread at a time; what must never happen is a close (of the object or of the whole client)
while another thread is inside ``offer`` or ``poll``: Aeron frees the memory under it. Each
handle therefore carries a lock that the caller's calls and the owner's close both take, so a
close waits for the call in flight and every later call raises ``ClientClosed`` instead of
touching freed memory. An uncontended lock costs well under a microsecond, which is what the
hot path pays for this safety.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import pyaeron

from tensorpool_client.errors import ClientClosed

if TYPE_CHECKING:
    from collections.abc import Callable

_CLOSED: Final = (pyaeron.PublicationClosed, pyaeron.ResourceClosed)
OFFER_SPIN_NS: Final = 20_000
"""Back-pressure retries spin this long before they start yielding the CPU."""
ADMIN_RETRIES: Final = 4
"""Immediate retries of an ADMIN_ACTION (the publication rotating its term): not back
pressure, so even an offer that must not wait makes them."""


class _Guarded:
    """An Aeron object behind a lock that its calls and its close both take."""

    def __init__(self, resource: Any, channel: str, stream_id: int) -> None:
        self._resource = resource
        self._guard = threading.Lock()
        self.channel = channel
        self.stream_id = stream_id
        self.closed = False

    def close(self) -> None:
        """Close (idempotent); waits for a call in flight on another thread."""
        with self._guard:
            if self.closed:
                return
            self.closed = True
            with contextlib.suppress(pyaeron.AeronError):  # the client is already gone
                self._resource.close()


class DirectPublication(_Guarded):
    """A concurrent Aeron publication offered on from any thread."""

    def offer(self, data: bytes | bytearray | memoryview, timeout_ns: int = 1_000_000_000,
              ) -> bool:
        """Append ``data``; False when no subscriber is connected or back pressure outlasted
        ``timeout_ns``. Retries back pressure and admin actions without any thread hand-off;
        an admin action (a term rotation) is retried at once even with ``timeout_ns`` 0."""
        result = self._offer_once(data)
        if result is True:
            return True
        start = time.monotonic_ns()
        admin_retries = ADMIN_RETRIES
        while result is not pyaeron.NOT_CONNECTED:
            if result is pyaeron.ADMIN_ACTION and admin_retries:
                admin_retries -= 1
                result = self._offer_once(data)
                if result is True:
                    return True
                continue
            elapsed = time.monotonic_ns() - start
            if elapsed > timeout_ns:
                return False
            if elapsed > OFFER_SPIN_NS:
                time.sleep(0)  # let the subscriber (maybe in this process) drain
            result = self._offer_once(data)
            if result is True:
                return True
        return False

    def _offer_once(self, data: bytes | bytearray | memoryview) -> object:
        with self._guard:
            if self.closed:
                raise ClientClosed("publication closed")
            try:
                return self._resource.offer(data)
            except _CLOSED as exc:
                raise ClientClosed(f"publication closed: {exc}") from exc

    def is_connected(self) -> bool:
        """Whether at least one subscriber is connected."""
        with self._guard:
            return not self.closed and bool(self._resource.is_connected)


class DirectSubscription(_Guarded):
    """An Aeron subscription polled by whichever single thread reads it at the moment."""

    def poll(self, handler: Callable[[Any, Any], None], fragment_limit: int) -> int:
        """Deliver up to ``fragment_limit`` fragments to ``handler(buffer, header)``.

        The buffer is valid only inside the handler; the handler must not raise (the rest of
        the batch would be lost), poll again or close anything.
        """
        with self._guard:
            if self.closed:
                raise ClientClosed("subscription closed")
            try:
                count: int = self._resource.poll(handler, fragment_limit)
            except pyaeron.ResourceClosed as exc:
                raise ClientClosed("subscription closed") from exc
            return count
