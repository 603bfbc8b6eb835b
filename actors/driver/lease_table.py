"""The driver's authoritative table of active leases and their expiry deadlines.

Deadlines sit in a heap holding one live entry per lease, whose key is never later than the
lease's expiry. A keepalive only moves the record's expiry (no heap push: 10,000 leases at
1 Hz would push 10,000 entries a second); an entry found at the top with a key earlier than
its lease's expiry is pushed back with the current one. So a lease costs a heap push once per
deadline the sweep actually reaches (about once per lease lifetime, 3 s by default), a sweep
costs O(expired · log n), and ``next_deadline`` (what the driver arms its lease-check timer
for) costs O(moved · log n). Entries of removed leases, and the entry a deadline moved
earlier leaves behind, are dead (not their lease's current entry) and dropped at the top.
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

    __slots__ = ("_by_client", "_by_stream", "_deadlines", "_entry", "_records", "_serial")

    def __init__(self) -> None:
        self._records: dict[int, LeaseRecord] = {}
        self._by_client: dict[int, int] = {}
        self._by_stream: dict[int, dict[int, LeaseRecord]] = {}
        # (key, serial, lease id); a lease's live entry is the one whose serial is _entry[id].
        self._deadlines: list[tuple[int, int, int]] = []
        self._entry: dict[int, int] = {}
        self._serial = 0

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
        self._queue(record.expiry_ns, record.lease_id)

    def _queue(self, key: int, lease_id: int) -> None:
        """Make (key, lease) the lease's one live heap entry."""
        self._serial += 1
        self._entry[lease_id] = self._serial
        heapq.heappush(self._deadlines, (key, self._serial, lease_id))

    def touch(self, lease_id: int, expiry_ns: int) -> None:
        """Move the lease's deadline (a keepalive): later costs no heap push."""
        record = self._records[lease_id]
        if expiry_ns < record.expiry_ns:  # earlier (never from a keepalive): a new entry
            self._queue(expiry_ns, lease_id)
        record.expiry_ns = expiry_ns

    def remove(self, lease_id: int) -> LeaseRecord | None:
        """Take the lease out of every index (its heap entries become stale)."""
        record = self._records.pop(lease_id, None)
        if record is None:
            return None
        del self._entry[lease_id]
        self._by_client.pop(record.client_id, None)
        stream = self._by_stream.get(record.stream_id)
        if stream is not None:
            stream.pop(lease_id, None)
            if not stream:
                del self._by_stream[record.stream_id]
        return record

    def _settle_top(self) -> int | None:
        """Drop dead entries and push moved ones back until the top is a lease's current
        deadline; returns it (None: no lease)."""
        deadlines, records, entry = self._deadlines, self._records, self._entry
        while deadlines:
            key, serial, lease_id = deadlines[0]
            if entry.get(lease_id) != serial:
                heapq.heappop(deadlines)  # removed, or moved earlier (a newer entry is live)
                continue
            expiry_ns = records[lease_id].expiry_ns
            if key == expiry_ns:
                return key
            self._serial += 1  # kept alive since it was queued
            entry[lease_id] = self._serial
            heapq.heapreplace(deadlines, (expiry_ns, self._serial, lease_id))
        return None

    def next_deadline(self) -> int | None:
        """The earliest expiry of a lease in the table."""
        return self._settle_top()

    def expired(self, now_ns: int) -> list[LeaseRecord]:
        """Leases with ``now_ns > expiry_ns`` (strictly), soonest first; they stay in the table.

        Their entries stay in the heap too, and are dropped by a later sweep once the caller
        removes the lease: a lease the caller fails to end is found again next time instead of
        being left in the table with no deadline.
        """
        deadlines = self._deadlines
        due: list[tuple[int, int, int]] = []
        while (key := self._settle_top()) is not None and key < now_ns:
            due.append(heapq.heappop(deadlines))
        for item in due:
            heapq.heappush(deadlines, item)
        return [self._records[lease_id] for _, _, lease_id in due]
