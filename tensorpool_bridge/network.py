"""The bridge's data plane: one thread that owns its Aeron client and moves every frame.

pyaeron objects stay on one thread and a fragment handler must not re-poll or close
(shared/notes/pyaeron-and-pykka.md), so this thread owns the UDP publications and
subscriptions of bridge.md §2.1 and the local announce and metadata streams, and runs the
sender path (§5.2-§5.5) and the receiver path (§6.2-§6.7) inline. Local frames go through the
client library's caller-thread data plane, polled and written from this thread too: the
sender polls its consumer's descriptor subscription and copies each frame straight into its
``ChunkWriter`` and publishes from there; the receiver decodes each chunk in place
(``ChunkView``) and writes the assembled frame with ``Producer.relay``, which publishes the
local descriptor. A frame crosses no thread inside a bridge process and, on the hot path,
allocates no payload-sized buffer. The mapping actors, which do the blocking work (attach,
detach, re-attach), hand leases in and out through ``call`` (run on this thread between
polls) and hear back through ``notify``. Every loop turn ends with ``idle.idle(work)`` so
the actors get the GIL.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import pyaeron

import messages
from messages import (
    DataSourceAnnounce,
    DataSourceMeta,
    DecodeError,
    ShmPoolAnnounce,
)
from messages.bridge import MAX_CHUNK_COUNT
from tensorpool_bridge.chunk_view import ChunkView, decode_into
from tensorpool_bridge.chunking import ChunkWriter
from tensorpool_bridge.reassembly import (
    TRACE_NULL,
    AnnounceOutcome,
    AssembledFrame,
    ChunkLimits,
    Reassembler,
)
from tensorpool_client.aeron_connect import connect
from tensorpool_client.command_queue import CommandQueue
from tensorpool_client.errors import LeaseLost

if TYPE_CHECKING:
    from collections.abc import Callable

    from shm.slot_layout import SlotFields
    from tensorpool_bridge.client_adapter import DestStream, SourceStream
    from tensorpool_bridge.config import BridgeConfig, Mapping_
    from tensorpool_client.producer import RelayLayout

log = logging.getLogger(__name__)

FRAGMENT_LIMIT: Final = 1024  # fragments, not messages: a 64 KiB chunk is ~48 of them
DESCRIPTOR_LIMIT: Final = 256
"""Descriptors one poll hands the sender: each is one frame sent before the next poll."""
MAX_PARK_NS: Final = 200_000
"""Longest short nap. Each wake-up costs a context switch on a 2-core VM shared by every
process of the path, so a loop that naps longer finds frames waiting in batches:
bench/bridge.py, 4 KiB frames, MTU 8192, one run each: 50 us 18,000 frames/s, 100 us
30,000, 200 us 34,000; the added latency at 1,000 frames/s stayed within its run-to-run
spread (410-470 us p50)."""
SPARSE_PARK_NS: Final = 50_000
"""Longest short nap while frames come sparsely (see ``_Pacer``)."""
RATE_WINDOW_NS: Final = 10_000_000
BATCH_ABOVE: Final = 100
"""Units of work (Aeron fragments and descriptors polled) in a 10 ms window from which the
loop naps like a batching stream: 10,000 descriptors/s at the sender, 10,000 fragments/s at
the receiver (a 4 KiB frame is 4 fragments at Aeron's default MTU, 1 at MTU 8192)."""
MID_FRAME_PARK_NS: Final = 20_000
"""Longest nap while a frame is half sent or half assembled: its next chunk is due within
microseconds, and on a window-bound link every microsecond the receiver leaves a chunk in
the image delays the sender's next status message (640 KiB frames)."""
PARK_SPINS: Final = 1
PARK_YIELDS: Final = 0
"""The loop naps almost at once when a turn found nothing: on a 2-core machine every turn
spent spinning or yielding (a full pass over every stream) is taken from the processes it
waits for (Aeron's default is 10 spins and 20 yields)."""
LONG_IDLE_STEPS: Final = ((20_000_000, 0.001), (1_000_000_000, 0.005))
"""After 20 ms without work the loop parks 1 ms at a time, after 1 s 5 ms: a stream of
frames keeps the short naps (latency), an idle bridge wakes a few hundred times a second."""
OFFER_RETRIES: Final = 3
RESEND_CHECK_NS: Final = 100_000_000
MAX_LAYOUTS: Final = 64


@dataclass(frozen=True, slots=True)
class NewSourceEpoch:
    """Receiver: a higher source epoch was applied after frames were committed (B-11)."""

    dest_stream_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class AnnounceApplied:
    """Receiver: the first forwarded announce (or one of a new epoch) was applied."""

    dest_stream_id: int
    epoch: int


@dataclass(frozen=True, slots=True)
class SourceAnnounced:
    """Sender: an announce of the source stream was forwarded."""

    dest_stream_id: int
    epoch: int


@dataclass(slots=True)
class SenderPath:
    mapping: Mapping_
    source: SourceStream | None = None
    counters: collections.Counter[str] = field(default_factory=collections.Counter)
    announce: ShmPoolAnnounce | None = None
    """The last forwarded announce, rewritten to the destination stream id."""
    writer: ChunkWriter = field(default_factory=ChunkWriter)
    on_descriptor: Callable[[int, int, int], None] | None = None
    """This path's ``poll_descriptors`` handler (set by the loop)."""


@dataclass(slots=True)
class ReceiverPath:
    mapping: Mapping_
    reassembler: Reassembler
    dest: DestStream | None = None
    last_seq: int | None = None
    committed: bool = False
    """Whether a frame was committed in the current local epoch."""
    layouts: dict[int, tuple[SlotFields, RelayLayout | None]] = field(default_factory=dict)
    """Per validated source header (by identity): the local layout, None if no pool fits."""

    @property
    def counters(self) -> collections.Counter[str]:
        return self.reassembler.counters


@dataclass(slots=True)
class _Pending:
    """The frame being sent, resumed on later turns while the publication is full."""

    path: SenderPath
    count: int
    deadline_ns: int
    next_chunk: int = 0


class NetworkLoop:
    """Owns the bridge's Aeron objects; ``start``, ``call``, ``snapshot``, ``close``."""

    def __init__(self, cfg: BridgeConfig, notify: Callable[[object], None]) -> None:
        self.cfg = cfg
        self._notify = notify
        limits = ChunkLimits(cfg.effective_chunk_bytes, cfg.max_payload_bytes,
                             cfg.integrity_crc32c, cfg.assembly_timeout_ms * 1_000_000)
        self.senders: dict[int, SenderPath] = {}
        self.receivers: dict[int, ReceiverPath] = {}
        for m in cfg.mappings:
            if cfg.sends:
                path = self.senders[m.source_stream_id] = SenderPath(m)
                path.on_descriptor = self._descriptor_handler(path)
            if cfg.receives:
                self.receivers[m.dest_stream_id] = ReceiverPath(
                    m, Reassembler(m.dest_stream_id, limits))
        self.counters: collections.Counter[str] = collections.Counter()
        """Per-instance receiver counters (§9) and loop health."""
        self._commands = CommandQueue()
        self._thread = threading.Thread(target=self._run, name="bridge-network", daemon=True)
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._error: BaseException | None = None
        self._aeron: Any = None
        self._subs: list[tuple[Any, Callable[[Any, Any], None], int]] = []
        self._payload_pub: Any = None
        self._control_pub: Any = None
        self._metadata_pub: Any = None
        self._by_metadata_id = {p.mapping.metadata_stream_id: p for p in self.receivers.values()}
        self._pending: _Pending | None = None
        self._backlog: collections.deque[tuple[SenderPath, int, int, int]] = (
            collections.deque())
        self._chunk = ChunkView()
        self._now_ns = 0
        self._control_connected = False
        self._next_resend_check = 0
        self._sending_timeout_ns = cfg.assembly_timeout_ms * 1_000_000 // 2
        self._chunk_bytes = cfg.effective_chunk_bytes  # a computed property: read it once
        self._max_chunked = MAX_CHUNK_COUNT * self._chunk_bytes
        """Longer frames need more than 65535 chunks (B-26)."""

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            self._stop.set()
            raise RuntimeError("bridge network thread did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError(f"bridge network thread failed to start: {self._error}")

    @property
    def running(self) -> bool:
        return self._ready.is_set() and self._thread.is_alive() and not self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def call[T](self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn`` on the network thread between polls and return its result."""
        if threading.current_thread() is self._thread:
            return fn()
        if not self.running:
            raise RuntimeError("bridge network thread is not running")
        future = self._commands.put(fn)
        self._wake.set()
        return future.result(timeout)  # type: ignore[return-value]

    def install_source(self, source_stream_id: int, source: SourceStream | None) -> None:
        """Hand the sender path its CONSUMER lease (None takes it away: not sending)."""

        def install() -> None:
            path = self.senders[source_stream_id]
            path.source = source
            if self._pending is not None and self._pending.path is path:
                self._abandon_pending()
            for queued in [q for q in self._backlog if q[0] is path]:
                self._backlog.remove(queued)  # descriptors of the lease being replaced

        self.call(install)

    def install_dest(self, dest_stream_id: int, dest: DestStream | None) -> None:
        """Hand the receiver path its PRODUCER lease (a new local epoch) or take it away."""

        def install() -> None:
            path = self.receivers[dest_stream_id]
            path.reassembler.abandon()
            path.dest = dest
            path.last_seq = None
            path.committed = False
            path.layouts.clear()
            path.reassembler.local_strides = () if dest is None else (dest.max_payload_bytes,)

        self.call(install)

    def snapshot(self) -> dict[str, Any]:
        """Counters of every path, copied on the network thread (consistent per path)."""

        def take() -> dict[str, Any]:
            return {
                "instance": dict(self.counters),
                "senders": {p.mapping.dest_stream_id: dict(p.counters)
                            for p in self.senders.values()},
                "receivers": {
                    p.mapping.dest_stream_id: {
                        **dict(p.counters),
                        "source_epoch": None if p.reassembler.announce is None
                        else p.reassembler.announce.epoch,
                        "local_epoch": None if p.dest is None else p.dest.epoch,
                        "assembly_buffer_bytes": p.reassembler.buffer_capacity(),
                    }
                    for p in self.receivers.values()
                },
                "source_epochs": {p.mapping.dest_stream_id: None if p.source is None
                                  else p.source.epoch for p in self.senders.values()},
            }

        return self.call(take)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            self._open()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            self._close_aeron()
            return
        self._ready.set()
        pacer = _Pacer(self._wake, time.monotonic_ns())
        try:
            while not self._stop.is_set():
                work = self._run_commands()
                now = self._now_ns = time.monotonic_ns()
                for sub, handler, limit in self._subs:
                    work += sub.poll(handler, limit)
                work += self._send_turn(now)
                busy = self._tick_assemblies(now) or self._pending is not None
                if self.senders and now >= self._next_resend_check:
                    self._next_resend_check = now + RESEND_CHECK_NS
                    self._resend_on_connect()
                if self._aeron.is_closed:
                    log.error("bridge Aeron client closed (media driver stopped or timed out)")
                    return
                pacer.after_turn(work, busy=busy, now_ns=now)
        except BaseException:
            log.exception("bridge network thread failed")
            raise
        finally:
            self._stop.set()
            self._fail_commands()
            self._close_aeron()

    def _tick_assemblies(self, now_ns: int) -> bool:
        """§6.7 timeouts; whether any frame is being assembled now."""
        assembling = False
        for path in self.receivers.values():
            if path.reassembler.in_flight is not None:
                path.reassembler.on_tick(now_ns)
                assembling = True
        return assembling

    def _open(self) -> None:
        cfg = self.cfg
        self._aeron = connect(cfg.aeron_dir, client_name=f"tensorpool-bridge-{cfg.instance_id}")
        aeron = self._aeron
        if cfg.sends:
            self._payload_pub = aeron.add_exclusive_publication(cfg.payload_channel,
                                                                cfg.payload_stream_id)
            self._control_pub = aeron.add_exclusive_publication(cfg.control_channel,
                                                                cfg.control_stream_id)
            d = cfg.driver
            self._subscribe(d.announce_channel, d.announce_stream_id, self._on_local_announce, 16)
            if (d.control_channel, d.control_stream_id) != (d.announce_channel,
                                                              d.announce_stream_id):
                self._subscribe(d.control_channel, d.control_stream_id,
                                self._on_local_announce, 16)
            if cfg.forward_metadata:
                self._metadata_pub = aeron.add_exclusive_publication(cfg.metadata_channel,
                                                                     cfg.metadata_stream_id)
                self._subscribe(cfg.local_channel, cfg.source_metadata_stream_id,
                                self._on_local_metadata, 16)
        if cfg.receives:
            sub = aeron.add_subscription(cfg.payload_channel, cfg.payload_stream_id)
            self._subs.append((sub, self._on_chunk_fragment, FRAGMENT_LIMIT))
            self._subscribe(cfg.control_channel, cfg.control_stream_id, self._on_control, 16)
            if cfg.forward_metadata:
                self._metadata_pub = aeron.add_exclusive_publication(
                    cfg.local_channel, cfg.local_metadata_stream_id)
                self._subscribe(cfg.metadata_channel, cfg.metadata_stream_id,
                                self._on_metadata, 16)

    def _subscribe(self, channel: str, stream_id: int, handler: Callable[[Any], None],
                   limit: int) -> None:
        """A control-rate subscription whose handler gets a private copy of each message."""

        def on_fragment(buf: Any, _header: Any) -> None:
            try:
                handler(bytes(buf))
            except Exception:  # raising would lose the rest of the poll batch
                self.counters["handler_errors"] += 1
                log.exception("bridge fragment handler failed")

        self._subs.append((self._aeron.add_subscription(channel, stream_id), on_fragment, limit))

    def _run_commands(self) -> int:
        return self._commands.run()

    def _fail_commands(self) -> None:
        self._commands.fail_all(lambda: RuntimeError("bridge network thread stopped"))

    def _close_aeron(self) -> None:
        if self._aeron is not None:
            try:
                self._aeron.close()
            except Exception:
                log.exception("closing the bridge Aeron client failed")

    # ------------------------------------------------------------------ sender (§5)

    def _descriptor_handler(self, path: SenderPath) -> Callable[[int, int, int], None]:
        """``poll_descriptors``' handler for ``path``: send at once, or queue behind a frame
        that waits for the publication."""

        def on_descriptor(epoch: int, seq: int, trace_id: int) -> None:
            if self._pending is None and not self._backlog:
                self._send_frame(path, epoch, seq, trace_id)
            else:
                self._backlog.append((path, epoch, seq, trace_id))

        return on_descriptor

    def _send_turn(self, now_ns: int) -> int:
        """The sender's share of a loop turn: the frame in flight, the queued descriptors,
        then new descriptors (only once nothing waits: frames go out in order)."""
        work = 0
        if self._pending is not None:
            work += self._resume(now_ns)
        if self._pending is None:
            work += self._send_backlog()
        if self._pending is None and not self._backlog:
            work += self._poll_sources()
        return work

    def _poll_sources(self) -> int:
        """Poll every mapped source's descriptors; each is sent as it is read."""
        work = 0
        for path in self.senders.values():
            source = path.source
            if source is None:
                continue
            assert path.on_descriptor is not None
            try:
                work += source.poll(path.on_descriptor, DESCRIPTOR_LIMIT)
            except LeaseLost:
                # The mapping actor sees the lease gone on its next tick and re-attaches.
                path.counters["source_polls_failed"] += 1
        return work

    def _send_backlog(self) -> int:
        """Send queued frames until one is left pending."""
        work = 0
        while self._backlog and self._pending is None:
            self._send_frame(*self._backlog.popleft())
            work += 1
        return work

    def _send_frame(self, path: SenderPath, epoch: int, seq: int, trace_id: int) -> None:
        """§5.2 steps 1-8: copy the frame into the path's writer and start sending it."""
        source = path.source
        if source is None:
            path.counters["frames_skipped.epoch"] += 1  # nothing mapped (§5.2 step 1)
            return
        if not self._payload_pub.is_connected:
            path.counters["frames_skipped.not_connected"] += 1
            return
        cfg = self.cfg
        writer = path.writer
        slot, payload = writer.targets(min(cfg.max_payload_bytes, source.max_payload_bytes))
        got = source.read_into(epoch, seq, slot, payload)
        if isinstance(got, str):
            path.counters[f"frames_skipped.{got}"] += 1
            return
        if got > self._max_chunked:
            path.counters["frames_skipped.too_many_chunks"] += 1
            return
        count = writer.start(
            stream_id=path.mapping.dest_stream_id, epoch=epoch, seq=seq,
            trace_id=0 if trace_id == TRACE_NULL else trace_id, length=got,
            chunk_bytes=self._chunk_bytes, integrity=cfg.integrity_crc32c)
        self._pending = _Pending(path, count, self._now_ns + self._sending_timeout_ns)
        self._resume(self._now_ns)

    def _resume(self, now_ns: int) -> int:
        """Offer the pending chunks in order; give up on the frame after its deadline."""
        pending = self._pending
        assert pending is not None
        pub = self._payload_pub
        path = pending.path
        writer = path.writer
        sent = 0
        while pending.next_chunk < pending.count:
            chunk = writer.chunk(pending.next_chunk)
            for _ in range(OFFER_RETRIES):
                result = pub.offer(chunk)
                if result is True:
                    break
            else:
                if now_ns >= pending.deadline_ns or result is pyaeron.NOT_CONNECTED:
                    self._abandon_pending()
                return sent
            pending.next_chunk += 1
            sent += 1
        counters = path.counters
        counters["chunks_sent"] += pending.count
        counters["frames_forwarded"] += 1
        counters["bytes_forwarded"] += writer.length
        self._pending = None
        return sent

    def _abandon_pending(self) -> None:
        pending = self._pending
        if pending is None:
            return
        counters = pending.path.counters
        counters["frames_abandoned"] += 1
        counters["chunks_sent"] += pending.next_chunk
        counters["chunks_send_failed"] += pending.count - pending.next_chunk
        self._pending = None

    def _on_local_announce(self, data: bytes) -> None:
        if len(data) < 8 or int.from_bytes(data[4:6], "little") != ShmPoolAnnounce.SCHEMA_ID:
            return
        try:
            msg = messages.decode(data)
        except DecodeError:
            return
        if not isinstance(msg, ShmPoolAnnounce):
            return
        path = self.senders.get(msg.stream_id)
        if path is None:
            return
        known = path.announce
        if known is not None and msg.epoch < known.epoch:
            path.counters["announces_ignored"] += 1  # §5.8: older epochs are not forwarded
            return
        forwarded = dataclasses.replace(msg, stream_id=path.mapping.dest_stream_id)
        path.announce = forwarded
        if self._control_pub.offer(messages.encode(forwarded)) is True:
            path.counters["announces_forwarded"] += 1
            if known is None or msg.epoch > known.epoch:
                self._notify(SourceAnnounced(path.mapping.dest_stream_id, msg.epoch))
        else:
            path.counters["announces_not_sent"] += 1

    def _on_local_metadata(self, data: bytes) -> None:
        """§5.6: DataSource* of a source stream, relabelled with ``metadata_stream_id``."""
        msg = _metadata(data)
        if msg is None:
            return
        path = self.senders.get(msg.stream_id)
        if path is None:
            return  # another stream's metadata is never forwarded (B-14)
        forwarded = dataclasses.replace(msg, stream_id=path.mapping.metadata_stream_id)
        if self._metadata_pub.offer(messages.encode(forwarded)) is True:
            path.counters["metadata_forwarded"] += 1
        else:
            path.counters["metadata_not_sent"] += 1

    def _resend_on_connect(self) -> None:
        """Forward the last announce once when the control publication becomes connected."""
        connected = bool(self._control_pub.is_connected)
        if connected and not self._control_connected:
            for path in self.senders.values():
                if path.announce is not None and self._control_pub.offer(
                    messages.encode(path.announce)
                ) is True:
                    path.counters["announces_forwarded"] += 1
        self._control_connected = connected

    # ------------------------------------------------------------------ receiver (§6)

    def _on_chunk_fragment(self, buf: Any, _header: Any) -> None:
        """Aeron handler of the payload subscription: the chunk is decoded in place."""
        try:
            self._on_chunk(memoryview(buf))
        except Exception:  # raising would lose the rest of the poll batch
            self.counters["handler_errors"] += 1
            log.exception("bridge chunk handler failed")

    def _on_chunk(self, data: memoryview) -> None:
        counters = self.counters
        counters["chunks_received"] += 1
        chunk = self._chunk
        problem = decode_into(chunk, data, self._chunk_bytes)
        if problem is not None:
            counters[problem] += 1  # §4.3: chunks_foreign / chunks_malformed
            return
        path = self.receivers.get(chunk.stream_id)
        if path is None:
            counters["chunks_unmapped"] += 1
            return
        frame = path.reassembler.on_chunk(chunk, time.monotonic_ns())
        if frame is not None:
            self._rematerialize(path, frame)

    def _rematerialize(self, path: ReceiverPath, frame: AssembledFrame) -> None:
        """§6.5 steps 2-11 and §6.6."""
        counters = path.counters
        ann = path.reassembler.announce
        dest = path.dest
        if ann is None or frame.epoch != ann.epoch or dest is None:
            counters["frames_dropped.local_not_ready"] += 1
            return
        layout = self._layout(path, dest, frame.fields)
        if layout is None:
            counters["frames_dropped.no_local_pool"] += 1
            return
        if path.last_seq is not None and frame.seq <= path.last_seq:
            counters["frames_dropped.seq_regression"] += 1
            return
        try:
            published = dest.relay(layout, frame.seq, frame.payload,
                                   timestamp_ns=frame.timestamp_ns,
                                   meta_version=frame.meta_version, trace_id=frame.trace_id)
        except LeaseLost:
            counters["frames_dropped.local_not_ready"] += 1
            return
        path.last_seq = frame.seq
        path.committed = True
        if not published:
            counters["descriptors_failed"] += 1
        counters["frames_rematerialized"] += 1
        counters["bytes_rematerialized"] += layout.nbytes

    @staticmethod
    def _layout(path: ReceiverPath, dest: DestStream, fields: SlotFields) -> RelayLayout | None:
        """The local layout of a validated source header (§6.5 step 7), cached per header."""
        entry = path.layouts.get(id(fields))
        if entry is None or entry[0] is not fields:
            assert fields.tensor is not None  # the reassembler validated the header
            if len(path.layouts) >= MAX_LAYOUTS:
                path.layouts.clear()
            entry = path.layouts[id(fields)] = (
                fields, dest.layout(fields.tensor, fields.values_len_bytes))
        return entry[1]

    def _on_metadata(self, data: bytes) -> None:
        """§6.8: forwarded DataSource* republished locally unchanged (B-13)."""
        msg = _metadata(data)
        if msg is None:
            self.counters["metadata_ignored"] += 1
            return
        path = self._by_metadata_id.get(msg.stream_id)
        if path is None:
            self.counters["metadata_unmapped"] += 1
            return
        if self._metadata_pub.offer(data) is True:
            path.counters["metadata_forwarded"] += 1
        else:
            path.counters["metadata_not_published"] += 1

    def _on_control(self, data: bytes) -> None:
        if len(data) < 8 or int.from_bytes(data[4:6], "little") != ShmPoolAnnounce.SCHEMA_ID:
            self.counters["control_foreign"] += 1
            return
        try:
            msg = messages.decode(data)
        except DecodeError:
            self.counters["control_malformed"] += 1
            return
        if not isinstance(msg, ShmPoolAnnounce):
            self.counters["control_ignored"] += 1  # QoS / progress: not forwarded (README)
            return
        path = self.receivers.get(msg.stream_id)
        if path is None:
            self.counters["control_unmapped"] += 1
            return
        outcome = path.reassembler.apply_announce(msg)
        if outcome is AnnounceOutcome.FIRST:
            self._notify(AnnounceApplied(path.mapping.dest_stream_id, msg.epoch))
        elif outcome is AnnounceOutcome.NEW_EPOCH:
            if path.committed:
                # §6.9 / B-11: a fresh local epoch; frames completing meanwhile are dropped.
                path.dest = None
                path.reassembler.local_strides = ()
                self._notify(NewSourceEpoch(path.mapping.dest_stream_id, msg.epoch))
            else:
                self._notify(AnnounceApplied(path.mapping.dest_stream_id, msg.epoch))


class _Pacer:
    """How long the loop naps after a turn: the wake-up policy of the network thread.

    A turn with work naps not at all. A turn without: while a frame is half sent or half
    assembled, naps of at most ``MID_FRAME_PARK_NS`` (its next chunk is due); while frames
    come sparsely (fewer than ``BATCH_ABOVE`` units of work in the last ``RATE_WINDOW_NS``),
    at most ``SPARSE_PARK_NS`` (latency: the CPU is there to spare); while they stream, at
    most ``MAX_PARK_NS`` (frames accumulate and are handled in batches: every wake-up costs
    a context switch on a machine the whole path shares); after 20 ms without work, the long
    parks of ``LONG_IDLE_STEPS``, which ``wake`` (set by ``call``) ends at once.
    """

    def __init__(self, wake: threading.Event, now_ns: int) -> None:
        def backoff(max_park_ns: int) -> Any:
            return pyaeron.IdleStrategy.backoff(max_spins=PARK_SPINS, max_yields=PARK_YIELDS,
                                                min_park_ns=1000, max_park_ns=max_park_ns)

        self._wake = wake
        self._sparse = backoff(SPARSE_PARK_NS)
        self._batching = backoff(MAX_PARK_NS)
        self._mid_frame = backoff(MID_FRAME_PARK_NS)
        self._idle = self._sparse
        self._last_work_ns = now_ns
        self._window_end = now_ns + RATE_WINDOW_NS
        self._window_work = 0

    def after_turn(self, work: int, *, busy: bool, now_ns: int) -> None:
        if now_ns >= self._window_end:
            self._idle = self._batching if self._window_work >= BATCH_ABOVE else self._sparse
            self._window_end = now_ns + RATE_WINDOW_NS
            self._window_work = 0
        if work:
            self._window_work += work
            self._last_work_ns = now_ns
            self._idle.idle(work)
            return
        if busy:
            self._mid_frame.idle(0)
            return
        idle_ns = now_ns - self._last_work_ns
        pause = 0.0
        for after_ns, seconds in LONG_IDLE_STEPS:
            if idle_ns >= after_ns:
                pause = seconds
        if pause:
            self._wake.wait(pause)
            self._wake.clear()
        else:
            self._idle.idle(0)


def _metadata(data: bytes) -> DataSourceAnnounce | DataSourceMeta | None:
    """A decoded DataSourceAnnounce or DataSourceMeta, or None for anything else."""
    if len(data) < 8 or int.from_bytes(data[4:6], "little") != DataSourceMeta.SCHEMA_ID:
        return None
    try:
        msg = messages.decode(data)
    except DecodeError:
        return None
    return msg if isinstance(msg, DataSourceAnnounce | DataSourceMeta) else None
