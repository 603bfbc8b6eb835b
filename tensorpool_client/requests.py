"""Correlation ids and the table of requests waiting for their response (driver-protocol.md §4).

Responses are broadcast on the shared control stream, so a client accepts a response only for
one of its own outstanding correlation ids; once a request is answered its id is retired, and
any later response carrying it (a duplicate, OK or not) is counted and ignored, so a non-OK
duplicate can never override an accepted OK.
"""

from __future__ import annotations

import collections
import secrets
import threading
from concurrent.futures import Future
from typing import Final

MAX_CORRELATION_ID: Final = (1 << 63) - 1
_RETIRED_MEMORY: Final = 1024


class CorrelationIds:
    """Random 63-bit seed per process, then +1, never 0 (the C client's rule)."""

    def __init__(self, seed: int | None = None) -> None:
        self._next = seed if seed is not None else secrets.randbelow(MAX_CORRELATION_ID) + 1
        self._lock = threading.Lock()

    def next(self) -> int:
        """A fresh non-zero correlation id."""
        with self._lock:
            value = self._next or 1  # 0 is never used (only reachable through ``seed=0``)
            self._next = value + 1 if value < MAX_CORRELATION_ID else 1
            return value


class PendingRequests[R]:
    """Outstanding correlation ids and the futures their responses complete."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, Future[R]] = {}
        self._retired: collections.deque[int] = collections.deque(maxlen=_RETIRED_MEMORY)
        self._retired_set: set[int] = set()
        self.unmatched = 0
        """Responses for correlation ids this client never issued (other clients' traffic)."""
        self.duplicates = 0
        """Responses for ids already answered (ignored)."""

    def register(self, correlation_id: int) -> Future[R]:
        """Start waiting for ``correlation_id``."""
        fut: Future[R] = Future()
        with self._lock:
            self._pending[correlation_id] = fut
        return fut

    def resolve(self, correlation_id: int, response: R) -> bool:
        """Complete the waiter of ``correlation_id``; False when it is not outstanding."""
        with self._lock:
            fut = self._pending.pop(correlation_id, None)
            if fut is None:
                if correlation_id in self._retired_set:
                    self.duplicates += 1
                else:
                    self.unmatched += 1
                return False
            self._retire(correlation_id)
        fut.set_result(response)
        return True

    def abandon(self, correlation_id: int) -> None:
        """Stop waiting (timeout); a late response then counts as a duplicate."""
        with self._lock:
            if self._pending.pop(correlation_id, None) is not None:
                self._retire(correlation_id)

    def _retire(self, correlation_id: int) -> None:
        if len(self._retired) == self._retired.maxlen:
            self._retired_set.discard(self._retired[0])
        self._retired.append(correlation_id)
        self._retired_set.add(correlation_id)
