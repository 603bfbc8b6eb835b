"""Round-robin id allocation inside configured inclusive ranges.

Used for dynamic stream ids (driver-behaviour.md §3.1, A-2) and for per-consumer descriptor
and control stream ids (§12). The cursor walks the ranges in order and wraps; an allocation
skips ids the caller says are in use, and gives up after one full lap of the occupied ids, so
it never scans a 2^32-wide range.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tensorpool_config.model import IdRange


class RangeAllocator:
    """A cursor over ``ranges``; ``in_use`` answers whether an id is already taken."""

    __slots__ = ("_cursor", "_in_use", "_ranges")

    def __init__(self, ranges: Sequence[IdRange], in_use: Callable[[int], bool]) -> None:
        self._ranges = tuple(ranges)
        self._in_use = in_use
        self._cursor = self._ranges[0].first if self._ranges else 0

    @property
    def configured(self) -> bool:
        return bool(self._ranges)

    def contains(self, value: int) -> bool:
        return any(r.first <= value <= r.last for r in self._ranges)

    def candidate(self, requested: int = 0, used_count: int | None = None) -> int | None:
        """The id an allocation would return now, without taking it.

        ``requested`` (non-zero, inside a range and free) wins; otherwise the next free id from
        the cursor. ``used_count`` bounds the search (the number of ids the caller has in use);
        without it the whole range is scanned in the worst case.
        """
        if not self._ranges:
            return None
        if requested and self.contains(requested) and not self._in_use(requested):
            return requested
        total = sum(r.last - r.first + 1 for r in self._ranges)
        budget = total if used_count is None else min(total, used_count + 1)
        value = self._cursor
        for _ in range(budget):
            if not self._in_use(value):
                return value
            value = self._after(value)
        return None

    def take(self, value: int) -> None:
        """Record that ``value`` was allocated: the cursor moves past it (round robin)."""
        if self.contains(value):
            self._cursor = self._after(value)

    def _after(self, value: int) -> int:
        ranges = self._ranges
        for index, r in enumerate(ranges):
            if r.first <= value <= r.last:
                if value < r.last:
                    return value + 1
                return ranges[(index + 1) % len(ranges)].first
        return ranges[0].first
