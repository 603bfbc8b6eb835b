"""The bridge's data plane: one thread that owns its Aeron client and moves every frame.

pyaeron objects stay on one thread and a fragment handler must not re-poll or close
(shared/notes/pyaeron-and-pykka.md), so this thread owns the UDP publications and
subscriptions of bridge.md §2.1 and the local descriptor and announce streams, and runs the
sender path (§5.2-§5.5) and the receiver path (§6.2-§6.7) inline: no per-frame hop between
threads, which is what the throughput and latency targets need. The mapping actors, which do
the blocking work (attach, detach, re-attach), hand leases in and out through ``call`` (run
on this thread between polls) and hear back through ``notify``. Every loop turn ends with
``idle.idle(work)`` so the actors get the GIL.
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
    BridgeFrameChunk,
    DataSourceAnnounce,
    DataSourceMeta,
    DecodeError,
    FrameDescriptor,
    ShmPoolAnnounce,
)
from messages.bridge import SCHEMA_ID as BRIDGE_SCHEMA
from tensorpool_bridge.chunking import chunk_parts
from tensorpool_bridge.reassembly import (
    AnnounceOutcome,
    AssembledFrame,
    ChunkLimits,
    Reassembler,
    select_local_pool,
)
from tensorpool_client.aeron_connect import connect
from tensorpool_client.command_queue import CommandQueue

if TYPE_CHECKING:
    from collections.abc import Buffer, Callable

    from tensorpool_bridge.client_adapter import DestStream, SourceStream
    from tensorpool_bridge.config import BridgeConfig, Mapping_

log = logging.getLogger(__name__)

FRAGMENT_LIMIT: Final = 1024  # fragments, not messages: a 64 KiB chunk is ~48 of them
MAX_PARK_NS: Final = 50_000
OFFER_RETRIES: Final = 3
RESEND_CHECK_NS: Final = 100_000_000
_HEADER_SCHEMA_OFFSET: Final = 4


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


@dataclass(slots=True)
class ReceiverPath:
    mapping: Mapping_
    reassembler: Reassembler
    dest: DestStream | None = None
    last_seq: int | None = None
    committed: bool = False
    """Whether a frame was committed in the current local epoch."""

    @property
    def counters(self) -> collections.Counter[str]:
        return self.reassembler.counters


@dataclass(slots=True)
class _Pending:
    """Chunks of the frame being sent, resumed on later turns while the publication is full."""

    path: SenderPath
    chunks: collections.deque[tuple[Buffer, ...]]
    deadline_ns: int
    length: int


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
                self.senders[m.source_stream_id] = SenderPath(m)
            if cfg.receives:
                self.receivers[m.dest_stream_id] = ReceiverPath(
                    m, Reassembler(m.dest_stream_id, limits))
        self.counters: collections.Counter[str] = collections.Counter()
        """Per-instance receiver counters (§9) and loop health."""
        self._commands = CommandQueue()
        self._thread = threading.Thread(target=self._run, name="bridge-network", daemon=True)
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._aeron: Any = None
        self._subs: list[tuple[Any, Callable[[Any, Any], None], int]] = []
        self._payload_pub: Any = None
        self._control_pub: Any = None
        self._descriptor_pub: Any = None
        self._metadata_pub: Any = None
        self._by_metadata_id = {p.mapping.metadata_stream_id: p for p in self.receivers.values()}
        self._pending: _Pending | None = None
        self._descriptor_sub: tuple[Any, Callable[[Any, Any], None]] | None = None
        self._backlog: collections.deque[FrameDescriptor] = collections.deque()
        self._control_connected = False
        self._next_resend_check = 0
        self._sending_timeout_ns = cfg.assembly_timeout_ms * 1_000_000 // 2

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
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def call[T](self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """Run ``fn`` on the network thread between polls and return its result."""
        if threading.current_thread() is self._thread:
            return fn()
        if not self.running:
            raise RuntimeError("bridge network thread is not running")
        return self._commands.put(fn).result(timeout)  # type: ignore[return-value]

    def install_source(self, source_stream_id: int, source: SourceStream | None) -> None:
        """Hand the sender path its CONSUMER lease (None takes it away: not sending)."""

        def install() -> None:
            path = self.senders[source_stream_id]
            path.source = source
            if self._pending is not None and self._pending.path is path and source is None:
                self._abandon_pending()

        self.call(install)

    def install_dest(self, dest_stream_id: int, dest: DestStream | None) -> None:
        """Hand the receiver path its PRODUCER lease (a new local epoch) or take it away."""

        def install() -> None:
            path = self.receivers[dest_stream_id]
            path.reassembler.abandon()
            path.dest = dest
            path.last_seq = None
            path.committed = False
            path.reassembler.local_strides = () if dest is None else dest.sorted_strides

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
        idle = pyaeron.IdleStrategy.backoff(max_park_ns=MAX_PARK_NS)
        try:
            while not self._stop.is_set():
                work = self._run_commands()
                for sub, handler, limit in self._subs:
                    work += sub.poll(handler, limit)
                now = time.monotonic_ns()
                if self._pending is not None:
                    work += self._resume(now)
                work += self._send_backlog()
                for path in self.receivers.values():
                    if path.reassembler.in_flight is not None:
                        path.reassembler.on_tick(now)
                if self.senders and now >= self._next_resend_check:
                    self._next_resend_check = now + RESEND_CHECK_NS
                    self._resend_on_connect()
                if self._aeron.is_closed:
                    log.error("bridge Aeron client closed (media driver stopped or timed out)")
                    return
                idle.idle(work)
        except BaseException:
            log.exception("bridge network thread failed")
            raise
        finally:
            self._stop.set()
            self._fail_commands()
            self._close_aeron()

    def _open(self) -> None:
        cfg = self.cfg
        self._aeron = connect(cfg.aeron_dir, client_name=f"tensorpool-bridge-{cfg.instance_id}")
        aeron = self._aeron
        if cfg.sends:
            self._payload_pub = aeron.add_exclusive_publication(cfg.payload_channel,
                                                                cfg.payload_stream_id)
            self._control_pub = aeron.add_exclusive_publication(cfg.control_channel,
                                                                cfg.control_stream_id)
            self._subscribe(cfg.local_channel, cfg.local_descriptor_stream_id,
                            self._on_descriptor, FRAGMENT_LIMIT)
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
            self._descriptor_pub = aeron.add_exclusive_publication(
                cfg.local_channel, cfg.local_descriptor_stream_id)
            self._subscribe(cfg.payload_channel, cfg.payload_stream_id, self._on_chunk,
                            FRAGMENT_LIMIT)
            self._subscribe(cfg.control_channel, cfg.control_stream_id, self._on_control, 16)
            if cfg.forward_metadata:
                self._metadata_pub = aeron.add_exclusive_publication(
                    cfg.local_channel, cfg.local_metadata_stream_id)
                self._subscribe(cfg.metadata_channel, cfg.metadata_stream_id,
                                self._on_metadata, 16)

    def _subscribe(self, channel: str, stream_id: int, handler: Callable[[Any], None],
                   limit: int) -> None:
        # Chunks are decoded in place (the codec copies only the var data); the rest is
        # copied first because handlers keep parts of it.
        copy: Callable[[Any], Any] = memoryview if handler == self._on_chunk else bytes

        def on_fragment(buf: Any, _header: Any) -> None:
            try:
                handler(copy(buf))
            except Exception:  # raising would lose the rest of the poll batch
                self.counters["handler_errors"] += 1
                log.exception("bridge fragment handler failed")

        sub = self._aeron.add_subscription(channel, stream_id)
        if handler == self._on_descriptor:
            self._descriptor_sub = (sub, on_fragment)
        else:
            self._subs.append((sub, on_fragment, limit))

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

    def _on_descriptor(self, data: bytes) -> None:
        """Queue the descriptors of one poll; they are sent one frame at a time."""
        try:
            msg = messages.decode(data)
        except DecodeError:
            self.counters["descriptors_undecodable"] += 1
            return
        if isinstance(msg, FrameDescriptor) and msg.stream_id in self.senders:
            self._backlog.append(msg)

    def _send_backlog(self) -> int:
        """Send queued frames until one is left pending; poll descriptors when none are left."""
        work = 0
        if not self._backlog and self._pending is None and self._descriptor_sub is not None:
            sub, on_fragment = self._descriptor_sub
            work += sub.poll(on_fragment, FRAGMENT_LIMIT)
        while self._backlog and self._pending is None:
            self._send_frame(self._backlog.popleft())
            work += 1
        return work

    def _send_frame(self, msg: FrameDescriptor) -> None:
        path = self.senders[msg.stream_id]
        source = path.source
        if source is None:
            path.counters["frames_skipped.epoch"] += 1  # nothing mapped (§5.2 step 1)
            return
        if not self._payload_pub.is_connected:
            path.counters["frames_skipped.not_connected"] += 1
            return
        got = source.read(msg.seq, msg.epoch)
        if isinstance(got, str):
            path.counters[f"frames_skipped.{got}"] += 1
            return
        slot, payload = got
        chunks = collections.deque(chunk_parts(
            stream_id=path.mapping.dest_stream_id, epoch=msg.epoch, seq=msg.seq,
            trace_id=msg.trace_id or 0, header=slot, payload=payload,
            chunk_bytes=self.cfg.effective_chunk_bytes, integrity=self.cfg.integrity_crc32c,
        ))
        self._pending = _Pending(path, chunks, time.monotonic_ns() + self._sending_timeout_ns,
                                 len(payload))
        self._resume(time.monotonic_ns())

    def _resume(self, now_ns: int) -> int:
        """Offer the pending chunks in order; give up on the frame after its deadline."""
        pending = self._pending
        assert pending is not None
        pub = self._payload_pub
        sent = 0
        chunks = pending.chunks
        while chunks:
            for _ in range(OFFER_RETRIES):
                result = pub.offerv(chunks[0])
                if result is True:
                    break
            else:
                if now_ns >= pending.deadline_ns or result is pyaeron.NOT_CONNECTED:
                    self._abandon_pending()
                return sent
            chunks.popleft()
            pending.path.counters["chunks_sent"] += 1
            sent += 1
        pending.path.counters["frames_forwarded"] += 1
        pending.path.counters["bytes_forwarded"] += pending.length
        self._pending = None
        return sent

    def _abandon_pending(self) -> None:
        pending = self._pending
        if pending is None:
            return
        pending.path.counters["frames_abandoned"] += 1
        pending.path.counters["chunks_send_failed"] += len(pending.chunks)
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
        if path.source is not None and (known is None or msg.epoch > known.epoch):
            path.source.follow(msg.epoch)
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

    def _on_chunk(self, data: memoryview) -> None:
        counters = self.counters
        counters["chunks_received"] += 1
        if len(data) < 8 or int.from_bytes(data[4:6], "little") != BRIDGE_SCHEMA:
            counters["chunks_foreign" if len(data) >= 8 else "chunks_malformed"] += 1
            return
        try:
            chunk = messages.decode(data)
        except messages.UnknownMessage:
            counters["chunks_foreign"] += 1
            return
        except DecodeError:
            counters["chunks_malformed"] += 1
            return
        if not isinstance(chunk, BridgeFrameChunk):
            counters["chunks_foreign"] += 1
            return
        if len(chunk.payload_bytes) > self.cfg.effective_chunk_bytes:
            counters["chunks_malformed"] += 1  # §4.3 step 6
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
        length = len(frame.payload)
        pool_id = select_local_pool(dest.strides, length)
        if pool_id is None:
            counters["frames_dropped.no_local_pool"] += 1
            return
        if path.last_seq is not None and frame.seq <= path.last_seq:
            counters["frames_dropped.seq_regression"] += 1
            return
        dest.write(frame, pool_id)
        path.last_seq = frame.seq
        path.committed = True
        descriptor = FrameDescriptor(
            stream_id=path.mapping.dest_stream_id, epoch=dest.epoch, seq=frame.seq,
            timestamp_ns=time.monotonic_ns(), meta_version=frame.fields.meta_version,
            trace_id=frame.trace_id or None,
        )
        if self._descriptor_pub.offer(messages.encode(descriptor)) is not True:
            counters["descriptors_failed"] += 1
        counters["frames_rematerialized"] += 1
        counters["bytes_rematerialized"] += length

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


def _metadata(data: bytes) -> DataSourceAnnounce | DataSourceMeta | None:
    """A decoded DataSourceAnnounce or DataSourceMeta, or None for anything else."""
    if len(data) < 8 or int.from_bytes(data[4:6], "little") != DataSourceMeta.SCHEMA_ID:
        return None
    try:
        msg = messages.decode(data)
    except DecodeError:
        return None
    return msg if isinstance(msg, DataSourceAnnounce | DataSourceMeta) else None
