"""What a producer knows about the consumers of its stream: who is there, how far each has read.

Two sources, both from the wire schema: ``ConsumerHello`` on the control stream (every consumer
sends one at start and then every second; recorded by the DriverClient) says a consumer is
there, and ``QosConsumer`` on the QoS stream says how far it has read (``lastSeqSeen``). A
consumer is *known* while either arrived within the freshness window (3 s, the spec's 3 x
announce period), and its QoS report counts only for the producer's epoch.

A consumer known only by its hello has read nothing yet; its position is taken as "just before
the frame the producer was about to write when it first saw the consumer", since frames
published before the consumer subscribed never reach it. A QosConsumer whose ``lastSeqSeen``
is 2^64-1 means the consumer is leaving (our consumers send it from ``close``); it is dropped
at once instead of holding the producer back for the freshness window.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Final

from tensorpool_client.wire_fast import U64_NULL, decode_qos_consumer

if TYPE_CHECKING:
    from tensorpool_client.notices import NoticeBoard

DEFAULT_WINDOW_NS: Final = 3_000_000_000


class ConsumerProgress:
    """QoS reports and hellos for one stream and epoch, and the slowest reader among them."""

    def __init__(self, notices: NoticeBoard, stream_id: int, epoch: int, *,
                 window_ns: int = DEFAULT_WINDOW_NS) -> None:
        self._notices = notices
        self.stream_id = stream_id
        self.epoch = epoch
        self.window_ns = window_ns
        self._reports: dict[int, tuple[int, int]] = {}
        """consumer id -> (local receipt time, lastSeqSeen) for this stream and epoch."""
        self._left: dict[int, int] = {}
        """consumer id -> receipt time of its leaving report (its older hellos are void)."""
        self._first_sight: dict[int, int] = {}
        """consumer id known only by hello -> the seq the producer was at when it saw it."""
        self.reports = 0
        self._lock = threading.Lock()
        """The producer's thread and the client's thread (draining QoS while the producer
        writes nothing) may both read reports."""

    def on_fragment(self, buf: Any, _header: Any) -> None:
        """Aeron handler for the QoS stream: keep this stream's QosConsumer reports."""
        fields = decode_qos_consumer(buf)
        if fields is None:
            return
        stream_id, consumer_id, epoch, last_seen = fields
        if stream_id != self.stream_id or epoch != self.epoch:
            return
        now = time.monotonic_ns()
        with self._lock:
            self.reports += 1
            if last_seen == U64_NULL:
                self._reports.pop(consumer_id, None)
                self._first_sight.pop(consumer_id, None)
                self._left[consumer_id] = now
            else:
                self._reports[consumer_id] = (now, last_seen)
                self._left.pop(consumer_id, None)

    def known(self, now_ns: int | None = None) -> set[int]:
        """Consumer ids heard from (hello or QoS) within the window and not since left."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            return self._known(now)

    def _known(self, now: int) -> set[int]:
        since = now - self.window_ns
        self._reports = {cid: r for cid, r in self._reports.items() if r[0] >= since}
        self._left = {cid: at for cid, at in self._left.items() if at >= since}
        ids = set(self._reports)
        for cid in self._notices.hello_consumers(self.stream_id, since_ns=since):
            if cid not in self._left:
                ids.add(cid)
        self._first_sight = {cid: seq for cid, seq in self._first_sight.items() if cid in ids}
        return ids

    def slowest(self, next_seq: int, now_ns: int | None = None) -> tuple[int, int] | None:
        """``(consumer id, oldest seq it may still hold)`` of the slowest known consumer.

        A consumer reporting ``lastSeqSeen = L`` may still hold frame L (our consumers report
        the first frame of the batch they returned last, whose zero-copy views the caller
        reads until its next poll), so frames up to L - 1 are free: the producer may write
        any ``seq < L + nslots``. None when no consumer is known.
        """
        now = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            return self._slowest(next_seq, now)

    def _slowest(self, next_seq: int, now: int) -> tuple[int, int] | None:
        slowest: tuple[int, int] | None = None
        for cid in self._known(now):
            report = self._reports.get(cid)
            if report is not None and report[0] >= now - self.window_ns:
                position = report[1]
            else:
                position = self._first_sight.setdefault(cid, next_seq)
            if slowest is None or position < slowest[1]:
                slowest = (cid, position)
        return slowest
