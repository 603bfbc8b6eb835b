"""Lease id and node id allocators (driver-behaviour.md §3.3, §3.4; A-11, A-12).

Both are plain objects owned by the DriverActor; they take the time as an argument so that
cooldowns are exact under a ManualClock.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Final

_INT63_MASK: Final = (1 << 63) - 1
_U64_MASK: Final = (1 << 64) - 1
NODE_ID_NULL: Final = 0xFFFFFFFF
NODE_ID_MAX: Final = 0xFFFFFFFE  # the last assignable id; the cursor wraps back to 1 after it


class LeaseIdAllocator:
    """Strictly increasing, never reused lease ids starting at a random 63-bit seed + 1.

    A random start (the C scheme) makes a keepalive or detach left over from an earlier driver
    run unlikely to match a lease of this run, which sequential-from-1 ids would do.
    """

    __slots__ = ("_last",)

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little") & _INT63_MASK
        self._last = seed & _U64_MASK

    def next(self) -> int:
        """The next id (0 is skipped if the counter ever wraps)."""
        self._last = (self._last + 1) & _U64_MASK
        if self._last == 0:
            self._last = 1
        return self._last


class NodeIdAllocator:
    """Small node ids, unique among active leases, with a reuse cooldown.

    TraceLink packs the node id into a few bits of a 64-bit trace id, so ids come from a
    round-robin cursor starting at 1 rather than at random (A-12). A released id cools down for
    ``cooldown_ns`` before the cursor may hand it out again, so a late trace from an ended lease
    is not attributed to its successor.
    """

    __slots__ = ("_active", "_cooldown", "_cooldown_ns", "_cooling", "_cursor")

    def __init__(self, cooldown_ns: int) -> None:
        self._cooldown_ns = cooldown_ns
        self._active: set[int] = set()
        self._cooling: dict[int, int] = {}  # node id -> end of cooldown (ns)
        self._cooldown: deque[tuple[int, int]] = deque()  # (until, id) in release order
        self._cursor = 1

    @property
    def active(self) -> frozenset[int]:
        return frozenset(self._active)

    def is_available(self, node_id: int, now_ns: int) -> bool:
        """Whether ``node_id`` could be granted as a desired node id right now."""
        if node_id in (0, NODE_ID_NULL) or not 0 < node_id <= NODE_ID_MAX:
            return False
        self._purge(now_ns)
        return node_id not in self._active and node_id not in self._cooling

    def reserve(self, node_id: int, now_ns: int) -> bool:
        """Take a desired id; False (and nothing changes) if it is not available."""
        if not self.is_available(node_id, now_ns):
            return False
        self._active.add(node_id)
        return True

    def allocate(self, now_ns: int) -> int | None:
        """The next free id from the cursor, or None when every id is taken."""
        self._purge(now_ns)
        budget = len(self._active) + len(self._cooling) + 1
        cursor = self._cursor
        for _ in range(budget):
            candidate = cursor
            cursor = 1 if cursor >= NODE_ID_MAX else cursor + 1
            if candidate not in self._active and candidate not in self._cooling:
                self._cursor = cursor
                self._active.add(candidate)
                return candidate
        return None

    def release(self, node_id: int, now_ns: int) -> None:
        """The lease holding ``node_id`` ended: the id cools down before it is reused."""
        if node_id not in self._active:
            return
        self._active.discard(node_id)
        if self._cooldown_ns > 0:
            until = now_ns + self._cooldown_ns
            self._cooling[node_id] = until
            self._cooldown.append((until, node_id))

    def unreserve(self, node_id: int) -> None:
        """Give back an id that was never handed to a client (failed attach): no cooldown."""
        self._active.discard(node_id)

    def _purge(self, now_ns: int) -> None:
        cooldown, cooling = self._cooldown, self._cooling
        while cooldown and cooldown[0][0] <= now_ns:
            until, node_id = cooldown.popleft()
            if cooling.get(node_id) == until:
                del cooling[node_id]
