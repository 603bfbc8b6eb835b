"""What a client has heard from the driver: revokes, shutdowns, announces, consumer configs,
and the ConsumerHellos of other clients (which tell a producer who reads its stream).

Written by the Aeron thread, read and waited on by user threads through one condition
variable. Announces follow the consumer rules of wire-protocol.md §1: keep the highest epoch
per stream, ignore announces older than a freshness window measured against local receipt
time, and for MONOTONIC announces ignore those stamped before this client joined the stream
(protection against a replayed Aeron log).

The data plane asks "is my lease still valid?" and "is there a newer announce?" on every poll,
so the board keeps two generation counters (``lease_generation``, ``announce_generation``)
that change whenever the answer might; a reader compares one int and takes the lock only when
it moved.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from messages import ClockDomain
from tensorpool_client.errors import RequestTimeout

if TYPE_CHECKING:
    from collections.abc import Callable

    from messages import (
        ConsumerConfig,
        ConsumerHello,
        ShmDriverShutdown,
        ShmLeaseRevoked,
        ShmPoolAnnounce,
    )
    from tensorpool_client.lease import Lease

DEFAULT_FRESHNESS_NS: Final = 3_000_000_000
"""3 x the default announce period of 1 s."""
HELLO_MEMORY: Final = 1024
HELLO_FORGET_NS: Final = 60_000_000_000
"""Past ``HELLO_MEMORY`` remembered consumers, hellos older than a minute are forgotten."""


@dataclass(frozen=True, slots=True)
class LeaseKey:
    """The four identifiers that name a lease on the wire (driver-protocol.md §4)."""

    lease_id: int
    stream_id: int
    client_id: int
    role: int


def key_of(lease: Lease) -> LeaseKey:
    """The wire identity of ``lease``."""
    return LeaseKey(lease.lease_id, lease.stream_id, lease.client_id, int(lease.role))


class NoticeBoard:
    """Thread-safe record of driver notices, with blocking waits."""

    def __init__(self, *, join_monotonic_ns: int, freshness_ns: int = DEFAULT_FRESHNESS_NS) -> None:
        self._cond = threading.Condition()
        self._join_ns = join_monotonic_ns
        self._freshness_ns = freshness_ns
        self._revokes: dict[LeaseKey, ShmLeaseRevoked] = {}
        self._shutdown: ShmDriverShutdown | None = None
        self._granted: set[int] = set()
        """Lease ids granted since the last ShmDriverShutdown (recorded in wire order)."""
        self._announces: dict[int, ShmPoolAnnounce] = {}
        self._configs: list[ConsumerConfig] = []
        self.revokes_seen = 0
        self.announces_seen = 0
        self.announces_ignored = 0
        """Announces dropped as stale, pre-join, or of a lower epoch than already known."""
        self.lease_generation = 0
        """Bumped on every revoke and shutdown: lease validity may have changed."""
        self.announce_generation = 0
        """Bumped whenever a stream's latest announce changes."""
        self._hellos: dict[tuple[int, int], int] = {}
        """(stream id, consumer id) -> local receipt time of its latest ConsumerHello."""

    # ------------------------------------------------------------ recording (Aeron thread)

    def record_revoke(self, msg: ShmLeaseRevoked) -> None:
        """Remember the first revoke of each lease (duplicates are tolerated and ignored)."""
        key = LeaseKey(msg.lease_id, msg.stream_id, msg.client_id, int(msg.role))
        with self._cond:
            self.revokes_seen += 1
            self._revokes.setdefault(key, msg)
            self.lease_generation += 1
            self._cond.notify_all()

    def record_grant(self, lease_id: int) -> bool:
        """An OK attach response: ``lease_id`` is valid until revoked or until a driver
        shutdown that arrives after it. True when the id was not already recorded."""
        with self._cond:
            new = lease_id not in self._granted
            self._granted.add(lease_id)
            return new

    def forget_grant(self, lease_id: int) -> None:
        """Undo ``record_grant`` for a response that answered another client's request."""
        with self._cond:
            self._granted.discard(lease_id)

    def record_shutdown(self, msg: ShmDriverShutdown) -> None:
        """Remember the first ShmDriverShutdown; every lease granted before it is now invalid.

        Leases granted afterwards (by a restarted driver) are valid: a client re-attaches with
        the same DriverClient after a restart (driver-behaviour.md §11).
        """
        with self._cond:
            if self._shutdown is None:
                self._shutdown = msg
            self._granted.clear()
            self.lease_generation += 1
            self._cond.notify_all()

    def record_config(self, msg: ConsumerConfig) -> None:
        """Remember a ConsumerConfig (for any consumer: callers filter by consumer id)."""
        with self._cond:
            self._configs.append(msg)
            self._cond.notify_all()

    def record_hello(self, msg: ConsumerHello, *, now_ns: int | None = None) -> None:
        """Remember when a consumer last said hello for a stream (hellos repeat every 1 s)."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        with self._cond:
            self._hellos[msg.stream_id, msg.consumer_id] = now
            if len(self._hellos) > HELLO_MEMORY:  # consumers come and go with fresh ids
                self._hellos = {key: at for key, at in self._hellos.items()
                                if now - at < HELLO_FORGET_NS}
            self._cond.notify_all()

    def hello_consumers(self, stream_id: int, *, since_ns: int) -> set[int]:
        """Consumer ids that said hello for ``stream_id`` at or after ``since_ns``."""
        with self._cond:
            return {cid for (sid, cid), at in self._hellos.items()
                    if sid == stream_id and at >= since_ns}

    def record_announce(self, msg: ShmPoolAnnounce, *, now_ns: int | None = None) -> bool:
        """Apply the consumer announce rules; True when ``msg`` became the stream's latest."""
        if not self._acceptable(msg, time.monotonic_ns() if now_ns is None else now_ns):
            with self._cond:
                self.announces_ignored += 1
            return False
        with self._cond:
            self.announces_seen += 1
            current = self._announces.get(msg.stream_id)
            if current is not None and (
                msg.epoch < current.epoch
                or (msg.epoch == current.epoch
                    and msg.announce_timestamp_ns < current.announce_timestamp_ns)
            ):
                self.announces_ignored += 1
                return False
            self._announces[msg.stream_id] = msg
            self.announce_generation += 1
            self._cond.notify_all()
            return True

    def _acceptable(self, msg: ShmPoolAnnounce, now_ns: int) -> bool:
        if msg.announce_clock_domain == ClockDomain.MONOTONIC:
            if msg.announce_timestamp_ns < self._join_ns:
                return False
            return now_ns - msg.announce_timestamp_ns <= self._freshness_ns
        return time.time_ns() - msg.announce_timestamp_ns <= self._freshness_ns

    # ------------------------------------------------------------ queries (any thread)

    @property
    def shutdown(self) -> ShmDriverShutdown | None:
        """The driver's shutdown notice, once seen."""
        with self._cond:
            return self._shutdown

    def revoke_of(self, lease: Lease) -> ShmLeaseRevoked | None:
        """The revoke matching ``lease`` on all four identifiers, if seen."""
        with self._cond:
            return self._revokes.get(key_of(lease))

    def lease_valid(self, lease: Lease) -> bool:
        """False after a matching revoke or a driver shutdown that followed the grant."""
        with self._cond:
            return lease.lease_id in self._granted and key_of(lease) not in self._revokes

    def latest_announce(self, stream_id: int) -> ShmPoolAnnounce | None:
        """The accepted announce with the highest epoch for ``stream_id``."""
        with self._cond:
            return self._announces.get(stream_id)

    def configs(self) -> list[ConsumerConfig]:
        """Every ConsumerConfig seen, oldest first."""
        with self._cond:
            return list(self._configs)

    def wait_for[T](self, probe: Callable[[], T | None], timeout: float, what: str) -> T:
        """Block until ``probe()`` (called under the lock) returns a value, or time out."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = probe()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout(f"no {what} within {timeout} s")
                self._cond.wait(remaining)

    def wait_for_revoke(self, lease: Lease, timeout: float) -> ShmLeaseRevoked:
        """The revoke of ``lease``, waiting up to ``timeout`` seconds."""
        key = key_of(lease)
        return self.wait_for(lambda: self._revokes.get(key), timeout, "revoke")

    def wait_for_shutdown(self, timeout: float) -> ShmDriverShutdown:
        """The driver shutdown notice, waiting up to ``timeout`` seconds."""
        return self.wait_for(lambda: self._shutdown, timeout, "driver shutdown")

    def wait_for_announce(
        self, stream_id: int, *, min_epoch: int = 0, timeout: float
    ) -> ShmPoolAnnounce:
        """The latest announce of ``stream_id`` with ``epoch >= min_epoch``."""

        def probe() -> ShmPoolAnnounce | None:
            msg = self._announces.get(stream_id)
            return msg if msg is not None and msg.epoch >= min_epoch else None

        return self.wait_for(probe, timeout, f"announce of stream {stream_id}")

    def wait_for_config(self, consumer_id: int, stream_id: int, timeout: float,
                        after: int = 0) -> ConsumerConfig:
        """The first ConsumerConfig for ``(consumer_id, stream_id)`` past index ``after``."""

        def probe() -> ConsumerConfig | None:
            for msg in self._configs[after:]:
                if msg.consumer_id == consumer_id and msg.stream_id == stream_id:
                    return msg
            return None

        return self.wait_for(probe, timeout, "consumer config")
