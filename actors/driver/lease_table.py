"""The driver's authoritative table of active leases and their expiry deadlines.

Every deadline the driver sets is ``now + ttl`` with one ttl and a monotonic clock, so they
arrive in nondecreasing order: they queue in a FIFO (O(1) to add, O(1) to take the earliest),
not a heap (whose pop walked the whole depth: at 10,000 leases at 1 Hz, 14 % of the driver's
busy time). A deadline that would break the order (a clock set back in a test, a deadline
moved earlier) goes to a small heap beside it; the earliest deadline is the earlier of the two
fronts. A keepalive appends the new deadline and leaves the old entry behind, stale; stale
entries are dropped when they reach a front, and each keepalive drops up to two there, so the
cost is paid as keepalives come rather than by the first sweep after a long hold (which
popped 30,000 entries at once at 10,000 leases: a 25-30 ms stall). A sweep costs O(expired).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from messages.control import Role


@dataclass(slots=True, kw_only=True)
class LeaseRecord:
    """One active lease (driver-behaviour.md §1)."""

    lease_id: int
    client_id: int
    role: Role
    stream_id: int
    node_id: int
    epoch: int
    expiry_ns: int


class LeaseTable:
    """Active leases by id, by client id and by stream, plus their deadlines in order."""

    __slots__ = ("_by_client", "_by_stream", "_in_order", "_out_of_order", "_records")

    def __init__(self) -> None:
        self._records: dict[int, LeaseRecord] = {}
        self._by_client: dict[int, int] = {}
        self._by_stream: dict[int, dict[int, LeaseRecord]] = {}
        # (expiry, lease id): nondecreasing in the FIFO; what arrived out of order in the heap.
        self._in_order: deque[tuple[int, int]] = deque()
        self._out_of_order: list[tuple[int, int]] = []

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[LeaseRecord]:
        return iter(self._records.values())

    def __contains__(self, lease_id: object) -> bool:
        return lease_id in self._records

    def get(self, lease_id: int) -> LeaseRecord | None:
        return self._records.get(lease_id)

    def by_client(self, client_id: int) -> LeaseRecord | None:
        lease_id = self._by_client.get(client_id)
        return None if lease_id is None else self._records[lease_id]

    def of_stream(self, stream_id: int) -> tuple[LeaseRecord, ...]:
        return tuple(self._by_stream.get(stream_id, {}).values())

    def epochs_of_stream(self, stream_id: int) -> frozenset[int]:
        """Epochs the stream's active leases were issued for (epoch GC must keep them)."""
        return frozenset(r.epoch for r in self._by_stream.get(stream_id, {}).values())

    def add(self, record: LeaseRecord) -> None:
        if record.lease_id in self._records:
            raise ValueError(f"lease {record.lease_id} already in the table")
        if record.client_id in self._by_client:
            raise ValueError(f"client {record.client_id} already holds a lease")
        self._records[record.lease_id] = record
        self._by_client[record.client_id] = record.lease_id
        self._by_stream.setdefault(record.stream_id, {})[record.lease_id] = record
        self._queue((record.expiry_ns, record.lease_id))

    def _queue(self, entry: tuple[int, int]) -> None:
        in_order = self._in_order
        if not in_order or entry[0] >= in_order[-1][0]:
            in_order.append(entry)
        else:
            heapq.heappush(self._out_of_order, entry)

    def _live(self, entry: tuple[int, int]) -> bool:
        record = self._records.get(entry[1])
        return record is not None and record.expiry_ns == entry[0]

    def touch(self, lease_id: int, expiry_ns: int) -> None:
        """Move the lease's deadline (a keepalive)."""
        record = self._records[lease_id]
        if record.expiry_ns != expiry_ns:
            record.expiry_ns = expiry_ns
            self._queue((expiry_ns, lease_id))
            in_order = self._in_order
            for _ in range(2):  # the stale entry this made, and one more of any backlog
                if not in_order or self._live(in_order[0]):
                    break
                in_order.popleft()

    def remove(self, lease_id: int) -> LeaseRecord | None:
        """Take the lease out of every index (its deadline entries become stale)."""
        record = self._records.pop(lease_id, None)
        if record is None:
            return None
        self._by_client.pop(record.client_id, None)
        stream = self._by_stream.get(record.stream_id)
        if stream is not None:
            stream.pop(lease_id, None)
            if not stream:
                del self._by_stream[record.stream_id]
        return record

    def _fronts(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """Drop stale entries off both fronts; the live entries there (None: none left)."""
        in_order, out_of_order, live = self._in_order, self._out_of_order, self._live
        while in_order and not live(in_order[0]):
            in_order.popleft()
        while out_of_order and not live(out_of_order[0]):
            heapq.heappop(out_of_order)
        return (
            in_order[0] if in_order else None,
            out_of_order[0] if out_of_order else None,
        )

    def next_deadline(self) -> int | None:
        """The earliest expiry of a lease in the table."""
        first, other = self._fronts()
        if first is None or (other is not None and other < first):
            first = other
        return None if first is None else first[0]

    def expired(self, now_ns: int) -> list[LeaseRecord]:
        """Leases with ``now_ns > expiry_ns`` (strictly), soonest first; they stay in the table.

        Their entries go back to the front and become stale once the caller removes the lease
        (dropped by a later sweep): a lease the caller fails to end is found again next time
        instead of being left in the table with no deadline.
        """
        in_order, out_of_order = self._in_order, self._out_of_order
        due: list[tuple[int, int]] = []
        seen: set[int] = set()
        while True:
            first, other = self._fronts()
            if other is not None and (first is None or other < first):
                if other[0] >= now_ns:
                    break
                heapq.heappop(out_of_order)
                entry = other
            elif first is not None and first[0] < now_ns:
                entry = in_order.popleft()
            else:
                break
            # A deadline moved away and back leaves two live entries: one is due.
            if entry[1] not in seen:
                seen.add(entry[1])
                due.append(entry)
        in_order.extendleft(reversed(due))  # all earlier than what is left: order kept
        return [self._records[lease_id] for _, lease_id in due]
