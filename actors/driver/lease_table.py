"""The driver's authoritative table of active leases and their expiry deadlines.

Deadlines sit in a heap with lazy deletion: a keepalive pushes a new (expiry, lease id) entry
and leaves the old one behind; a sweep pops entries that are due and keeps only those that
still match their lease's current expiry. The stale entries are paid for as they are made: each
keepalive also pops up to two stale entries off the top (while leases are kept alive, every
stale entry lies below every live one). Left to the next sweep instead, the first check after
a long hold popped all of them at once: 30,000 entries at 10,000 leases, a 25-30 ms stall in
which every revoke due was late. A sweep therefore costs O(expired · log n) and
``next_deadline`` (what the driver arms its lease-check timer for) O(log n) amortised.
"""

from __future__ import annotations

import heapq
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
    """Active leases by id, by client id and by stream, plus the deadline heap."""

    __slots__ = ("_by_client", "_by_stream", "_deadlines", "_records")

    def __init__(self) -> None:
        self._records: dict[int, LeaseRecord] = {}
        self._by_client: dict[int, int] = {}
        self._by_stream: dict[int, dict[int, LeaseRecord]] = {}
        self._deadlines: list[tuple[int, int]] = []

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
        heapq.heappush(self._deadlines, (record.expiry_ns, record.lease_id))

    def touch(self, lease_id: int, expiry_ns: int) -> None:
        """Move the lease's deadline (a keepalive)."""
        record = self._records[lease_id]
        if record.expiry_ns != expiry_ns:
            record.expiry_ns = expiry_ns
            deadlines, records = self._deadlines, self._records
            heapq.heappush(deadlines, (expiry_ns, lease_id))
            for _ in range(2):  # the stale entry this made, and one more of the backlog
                top_expiry, top_id = deadlines[0]
                top = records.get(top_id)
                if top is not None and top.expiry_ns == top_expiry:
                    break
                heapq.heappop(deadlines)

    def remove(self, lease_id: int) -> LeaseRecord | None:
        """Take the lease out of every index (its heap entries become stale)."""
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

    def next_deadline(self) -> int | None:
        """The earliest expiry of a lease in the table (stale heap entries are dropped)."""
        deadlines, records = self._deadlines, self._records
        while deadlines:
            expiry_ns, lease_id = deadlines[0]
            record = records.get(lease_id)
            if record is not None and record.expiry_ns == expiry_ns:
                return expiry_ns
            heapq.heappop(deadlines)
        return None

    def expired(self, now_ns: int) -> list[LeaseRecord]:
        """Leases with ``now_ns > expiry_ns`` (strictly), soonest first; they stay in the table.

        Their deadlines stay in the heap too, and become stale (dropped by a later sweep) once
        the caller removes the lease: a lease the caller fails to end is found again next time
        instead of being left in the table with no deadline.
        """
        deadlines, records = self._deadlines, self._records
        due: list[tuple[int, int]] = []
        while deadlines and deadlines[0][0] < now_ns:
            entry = heapq.heappop(deadlines)
            record = records.get(entry[1])
            # A deadline moved away and back leaves two matching entries: one is due.
            if (
                record is not None
                and record.expiry_ns == entry[0]
                and (not due or due[-1] != entry)
            ):
                due.append(entry)
        for entry in due:
            heapq.heappush(deadlines, entry)
        return [records[lease_id] for _, lease_id in due]
