"""``Consumer``: attach as CONSUMER, map read-only, turn descriptors into zero-copy frames.

The caller's thread polls the descriptor subscription itself (no hand-off through the client's
thread) and checks each FrameDescriptor with the reader side of the seqlock (shm-layout.md §4):
load ``seqCommit``, copy the 248 header bytes out in one slice, load again, and accept only an
unchanged committed word for the wanted seq. The payload is handed out as a read-only numpy view
into the pool; ``Frame.intact()`` re-checks the slot word later, and ``Frame.copy()`` copies and
then re-checks, so a frame overwritten during the copy is reported instead of returned torn.

Validating a header (step 4) and building its ndarray view cost microseconds, so each slot
remembers the static bytes of the last header it validated (everything but timestamp and
metaVersion) with the view it built; a frame whose header repeats them is accepted with one
bytes comparison. A different header goes through full validation again.

Relays (the bridge's sender) need the raw slot rather than a view: ``poll_descriptors`` hands
them each descriptor's ``(epoch, seq, trace_id)`` on the caller's thread, and
``read_slot_into`` copies the 256 slot bytes and the payload into the caller's buffers under
the same seqlock check and the same cached header validation.

Losses are reported exactly: descriptors are sequence-numbered and Aeron delivers them in order,
so a jump is a gap, and a slot already holding a later frame means the ring overtook this
reader. Every lost seq lands in ``losses`` (merged ranges) and ``on_loss``.

The consumer tells producers about itself with the spec's messages: a ConsumerHello at start
and every second, and QosConsumer reports every quarter ring of progress, when it catches
up, and every second (``lastSeqSeen`` = the oldest frame the caller may still be reading: the
first of the batch last returned, or the last seen once a poll came back empty); a last
report with ``lastSeqSeen = 2^64-1`` on close says it left (readers.py). Announces with a
higher epoch make it remap, and so does a superblock whose pid or epoch changed under the
mapping (shm-layout.md 8 step 8).
"""

from __future__ import annotations

import collections
import logging
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import pyaeron

from messages import Bool, ConsumerHello, Mode, Role
from shm import RegionValidationError, announced_regions, open_region
from shm.slot_layout import invalid_reason, unpack_slot_body
from shm.superblock import HEADER_SLOT_BYTES, LAYOUT_VERSION, SUPERBLOCK_SIZE
from tensorpool_client.control import DEFAULT_CHANNEL
from tensorpool_client.errors import ClientClosed, FrameOverwritten, LeaseLost
from tensorpool_client.producer import (
    DEFAULT_ALLOWED_BASE_DIRS,
    DEFAULT_DESCRIPTOR_STREAM_ID,
    DEFAULT_QOS_STREAM_ID,
)
from tensorpool_client.tensor import view_of
from tensorpool_client.wire_fast import (
    U64_NULL,
    QosConsumerEncoder,
    decode_descriptor,
    decode_descriptor_traced,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType

    import numpy as np
    import numpy.typing as npt

    from messages import PayloadPool, ShmPoolAnnounce
    from shm import MappedRegion, PayloadPoolView
    from tensorpool_client.control import DriverClient
    from tensorpool_client.lease import Lease

log = logging.getLogger(__name__)

REMAP_RETRY_NS: Final = 250_000_000
HEARTBEAT_NS: Final = 1_000_000_000
DEFAULT_PARK_NS: Final = 100_000
PARK_SPINS: Final = 1
PARK_YIELDS: Final = 0
"""A parking consumer naps almost at once: on a 2-core machine a poller that spins or yields
between frames takes memory bandwidth and CPU time from the producer's copies."""
LONG_IDLE_STEPS: Final = ((20_000_000, 0.001), (200_000_000, 0.005), (1_000_000_000, 0.02))
"""Parking consumers that have seen no descriptor for 20 ms park 1 ms at a time, after 200 ms
5 ms, after 1 s 20 ms: a steady stream keeps the short backoff (latency), a silent one costs
about 1 % of a core (a timer wake-up is dear on a VM). Spinning consumers always spin."""
MAX_LOSS_RANGES: Final = 4096
DROPPED_BEFORE_WAITING: Final = 4096
"""Descriptors ``poll`` may skip (other streams, drops) before it honours its timeout."""
_BODY_START: Final = 8
_WORDS_PER_SLOT: Final = HEADER_SLOT_BYTES // 8
_FIRST_WORD: Final = SUPERBLOCK_SIZE // 8
_LENGTH: Final = struct.Struct("<I")
_TS_META: Final = struct.Struct("<QI")
_TS_META_AT: Final = 14
"""timestampNs and metaVersion: slot bytes 22..33, i.e. 14..25 of the copied body."""
_STATIC_HEAD: Final = 14
_STATIC_TAIL: Final = slice(52, 139)
"""The header bytes a cached validation covers: slot 8..21 (length, payloadSlot, poolId,
payloadOffset) and 60..146 (headerBytes length, embedded header, TensorHeader up to strides)."""

Wait = Literal["spin", "park"]


class Frame:
    """One accepted frame; ``array`` is a read-only zero-copy view into the payload slot.

    The view stays mapped but is not protected once returned: the producer reuses the slot a
    ring later. ``intact()`` says whether it still holds this frame; ``copy()`` returns a
    private copy or raises ``FrameOverwritten``.
    """

    __slots__ = ("_word", "_word_at", "_words", "array", "epoch", "meta_version", "pool_id",
                 "seq", "stream_id", "timestamp_ns")

    def __init__(  # noqa: PLR0917 - positional: built once per frame on the hot path
        self, seq: int, epoch: int, stream_id: int, pool_id: int, timestamp_ns: int,
        meta_version: int, array: npt.NDArray[np.generic], words: memoryview, word_at: int,
        word: int,
    ) -> None:
        self.seq = seq
        self.epoch = epoch
        self.stream_id = stream_id
        self.pool_id = pool_id
        self.timestamp_ns = timestamp_ns
        self.meta_version = meta_version
        self.array = array
        self._words = words
        self._word_at = word_at
        self._word = word

    def intact(self) -> bool:
        """True while the producer has not started rewriting this frame's slot."""
        try:
            return bool(self._words[self._word_at] == self._word)
        except ValueError:  # the ring was released by a remap or close
            return False

    def copy(self) -> npt.NDArray[np.generic]:
        """A private copy of the payload; FrameOverwritten if the slot changed meanwhile."""
        data = self.array.copy()
        if not self.intact():
            raise FrameOverwritten(f"frame {self.seq} was overwritten while copying")
        return data

    def __repr__(self) -> str:
        return (f"Frame(seq={self.seq}, epoch={self.epoch}, pool_id={self.pool_id}, "
                f"{self.array.dtype}{list(self.array.shape)})")


@dataclass(frozen=True, slots=True)
class LostFrames:
    """Frames ``first_seq..last_seq`` of ``epoch`` that this consumer never got.

    ``reason``: ``gap`` (their descriptors never arrived), ``overwritten`` (the ring overtook
    the reader), ``torn`` (rewritten while being read), ``not_committed`` (slot still being
    written), ``invalid`` (the header failed validation).
    """

    epoch: int
    first_seq: int
    last_seq: int
    reason: str

    @property
    def count(self) -> int:
        """Number of frames in the range."""
        return self.last_seq - self.first_seq + 1


class LossLog:
    """Every frame a consumer never got: merged ranges, totals per QoS kind, a callback."""

    def __init__(self, on_loss: Callable[[LostFrames], None] | None) -> None:
        self.ranges: collections.deque[LostFrames] = collections.deque(maxlen=MAX_LOSS_RANGES)
        self.frames = 0
        self.gap = 0
        """Frames whose descriptors never arrived (QosConsumer ``dropsGap``)."""
        self.late = 0
        """Frames gone or unreadable when their descriptor was read (``dropsLate``)."""
        self.on_loss = on_loss

    def record(self, epoch: int, first: int, last: int, reason: str) -> None:
        """Count frames ``first..last``, merge them into the last range, tell ``on_loss``."""
        lost = LostFrames(epoch, first, last, reason)
        self.frames += lost.count
        if reason == "gap":
            self.gap += lost.count
        else:
            self.late += lost.count
        prev = self.ranges[-1] if self.ranges else None
        if (prev is not None and (prev.epoch, prev.reason) == (epoch, reason)
                and prev.last_seq + 1 == first):
            self.ranges[-1] = LostFrames(epoch, prev.first_seq, last, reason)
        else:
            self.ranges.append(lost)
        if self.on_loss is not None:
            self.on_loss(lost)


@dataclass(slots=True)
class _Mapping:
    epoch: int
    nslots: int
    raw: memoryview
    words: memoryview
    pools: dict[int, PayloadPoolView]
    regions: list[MappedRegion]
    cache: list[tuple[bytes, Any, int] | None] = field(default_factory=list)
    """Per slot: (static header bytes, validated array view, pool id)."""
    max_stride: int = 0
    """The largest stride of the mapped pools."""


class Consumer:
    """A reader of one stream under a CONSUMER lease; its frame methods are for one thread."""

    def __init__(
        self, client: DriverClient, stream_id: int, *,
        descriptor_channel: str = DEFAULT_CHANNEL,
        descriptor_stream_id: int = DEFAULT_DESCRIPTOR_STREAM_ID,
        qos_channel: str = DEFAULT_CHANNEL,
        qos_stream_id: int = DEFAULT_QOS_STREAM_ID,
        allowed_base_dirs: tuple[Path, ...] = DEFAULT_ALLOWED_BASE_DIRS,
        activity_window_ns: int | None = 3_000_000_000,
        attach_timeout: float = 5.0,
        wait: Wait = "park",
        park_ns: int = DEFAULT_PARK_NS,
        on_loss: Callable[[LostFrames], None] | None = None,
    ) -> None:
        if wait not in {"spin", "park"}:
            raise ValueError(f"wait must be 'spin' or 'park', got {wait!r}")
        self._client = client
        self._allowed = allowed_base_dirs
        self._window = activity_window_ns
        self.wait = wait
        """How ``poll`` waits: ``spin`` (lowest latency, a full core) or ``park`` (backoff)."""
        self._spin = pyaeron.IdleStrategy.busy_spin()
        self._park = pyaeron.IdleStrategy.backoff(
            max_spins=PARK_SPINS, max_yields=PARK_YIELDS, min_park_ns=1000, max_park_ns=park_ns)
        self.drops: collections.Counter[str] = collections.Counter()
        """Dropped descriptors by reason: epoch, not_committed, other_seq, torn, invalid."""
        self.loss = LossLog(on_loss)
        self.handler_errors = 0
        self.qos_not_sent = 0
        self.remap_failures = 0
        self.identity_remaps = 0
        """Mappings dropped because their superblock pid or epoch changed under them."""
        self._mapping: _Mapping | None = None
        self._retired: list[MappedRegion] = []
        self._last_attempt: tuple[int, int] | None = None
        self._identity_checked_for: ShmPoolAnnounce | None = None
        self._batch: list[Frame] = []
        self._relay_handler: Callable[[int, int, int], None] = _no_relay
        self._expected: int | None = None
        self._last_seen: int | None = None
        self._position: int | None = None
        """What QoS reports as ``lastSeqSeen``: the oldest frame the caller may still hold."""
        self._last_reported: int | None = None
        self._next_heartbeat_ns = 0
        self._last_descriptor_ns = time.monotonic_ns()
        self._closed = False
        self.lease: Lease = client.attach(stream_id, Role.CONSUMER, timeout=attach_timeout)
        self.stream_id = self.lease.stream_id
        self._lease_generation = client.notices.lease_generation
        self._announce_generation = -1
        # Two encoders: the caller's thread and the client's thread each patch their own.
        self._qos_encoder = QosConsumerEncoder(self.stream_id, self.lease.client_id)
        self._heartbeat_encoder = QosConsumerEncoder(self.stream_id, self.lease.client_id)
        try:
            self._descriptors = client.direct_subscription(descriptor_channel,
                                                           descriptor_stream_id)
            self._qos = client.direct_publication(qos_channel, qos_stream_id)
            client.aeron.add_duty(self._duty)
        except BaseException:
            for name in ("_descriptors", "_qos"):
                handle = getattr(self, name, None)
                if handle is not None:
                    handle.close()
            self._client.detach(self.lease)
            raise
        self._try_map(self.lease.epoch, self.lease.header_nslots, self.lease.layout_version,
                      self.lease.header_region_uri, self.lease.payload_pools)

    @property
    def losses(self) -> collections.deque[LostFrames]:
        """Lost frames as merged ranges, oldest first (the oldest fall off past 4096)."""
        return self.loss.ranges

    @property
    def frames_lost(self) -> int:
        """How many frames this consumer never got, in total."""
        return self.loss.frames

    @property
    def on_loss(self) -> Callable[[LostFrames], None] | None:
        """Called with each loss as it is detected, on the polling thread from inside the
        descriptor poll: it must neither poll nor close the consumer or its client."""
        return self.loss.on_loss

    @on_loss.setter
    def on_loss(self, callback: Callable[[LostFrames], None] | None) -> None:
        self.loss.on_loss = callback

    @property
    def epoch(self) -> int | None:
        """The epoch currently mapped (None until a mapping succeeded)."""
        return None if self._mapping is None else self._mapping.epoch

    # ------------------------------------------------------------------ polling

    def poll(self, timeout: float = 0.0) -> Frame | None:
        """The next valid frame, waiting up to ``timeout`` seconds; None if none arrived."""
        frames = self._poll(1, timeout)
        return frames[0] if frames else None

    def poll_batch(self, max_frames: int = 64, timeout: float = 0.0) -> list[Frame]:
        """Up to ``max_frames`` valid frames already waiting, or the first ones to arrive
        within ``timeout`` seconds; an empty list if none came."""
        return self._poll(max_frames, timeout)

    def _poll(self, limit: int, timeout: float) -> list[Frame]:
        if self._closed:
            raise LeaseLost("consumer is closed")
        batch: list[Frame] = []
        self._batch = batch
        deadline = 0
        idle = None
        skip_budget = DROPPED_BEFORE_WAITING
        while True:
            fragments = self._poll_once(limit - len(batch))
            if batch:
                self._position = batch[0].seq  # the caller holds the batch until its next poll
                self._report_progress(idle=False)
                return batch
            skip_budget -= fragments
            if fragments and skip_budget > 0:
                continue  # every descriptor was dropped: look at the next ones at once
            self._position = self._last_seen  # earlier batches are released by this poll
            self._report_progress(idle=True)
            now = time.monotonic_ns()
            if idle is None:
                if timeout <= 0:
                    return batch
                deadline = now + int(timeout * 1e9)
                idle = self._spin if self.wait == "spin" else self._park
                idle.idle(1)  # reset the backoff
            elif now >= deadline:
                return batch
            if idle is self._park and (pause := self._long_park(now)):
                time.sleep(min(pause, (deadline - now) / 1e9))
            else:
                idle.idle(0)  # releases the GIL

    def _poll_once(self, limit: int, on_fragment: Callable[[Any, Any], None] | None = None,
                   ) -> int:
        """One look at the lease, the announces and up to ``limit`` descriptors."""
        notices = self._client.notices
        if self._lease_generation != notices.lease_generation:
            self._check_lease()
        if self._announce_generation != notices.announce_generation:
            self._remap_if_announced()
        try:
            return self._descriptors.poll(on_fragment or self._on_descriptor, limit)
        except ClientClosed as exc:
            raise LeaseLost("the client closed") from exc

    # ------------------------------------------------------------------ relaying

    def poll_descriptors(self, handler: Callable[[int, int, int], None], limit: int) -> int:
        """Call ``handler(epoch, seq, trace_id)`` for up to ``limit`` FrameDescriptors of this
        stream, on this thread, without touching their slots; returns the fragments read.

        For relays that copy frames out with ``read_slot_into`` (the bridge's sender). Gaps
        are recorded as losses and QoS reports go out as for ``poll``; ``trace_id`` is as
        on the wire (0 or 2^64-1 when the descriptor carries none). ``handler`` must not
        raise (the rest of the batch would be lost), poll or close. Never waits.
        """
        if self._closed:
            raise LeaseLost("consumer is closed")
        self._relay_handler = handler
        fragments = self._poll_once(limit, self._on_relay_descriptor)
        self._position = self._last_seen
        self._report_progress(idle=fragments == 0)
        return fragments

    def _on_relay_descriptor(self, buf: Any, _header: Any) -> None:
        try:
            fields = decode_descriptor_traced(buf)
            if fields is None:
                self.drops["undecodable"] += 1
                return
            stream_id, epoch, seq, trace_id = fields
            if stream_id != self.stream_id:
                return
            expected = self._expected
            mapping = self._mapping
            if (expected is not None and seq > expected and mapping is not None
                    and epoch == mapping.epoch):
                self.loss.record(epoch, expected, seq - 1, "gap")
            self._expected = seq + 1
            self._last_seen = seq
            self._relay_handler(epoch, seq, trace_id)
        except Exception:  # raising would lose the rest of Aeron's batch
            self.handler_errors += 1
            log.exception("descriptor handling failed")

    @property
    def max_payload_bytes(self) -> int:
        """The largest pool stride of the mapped epoch (0 while nothing is mapped)."""
        mapping = self._mapping
        return 0 if mapping is None else mapping.max_stride

    def read_slot_into(  # noqa: PLR0911 - one return per skip reason
        self, epoch: int, seq: int, slot_out: memoryview, payload_out: memoryview,
    ) -> int | str:
        """Copy frame ``seq`` of ``epoch``: its 256 raw slot bytes into ``slot_out`` and its
        payload into the start of ``payload_out``; the payload length, or why it was skipped.

        Reasons: ``epoch`` (that epoch is not mapped, even after a remap), ``not_committed``
        (the slot holds no committed ``seq``), ``zero_length``, ``bad_header`` (reader step 4
        failed, or the pool is not mapped), ``too_large`` (longer than ``payload_out``),
        ``torn`` (rewritten while copying: nothing copied may be used). Never waits.
        """
        mapping = self._mapping
        if mapping is None or mapping.epoch != epoch:
            self._remap_if_announced()
            mapping = self._mapping
            if mapping is None or mapping.epoch != epoch:
                return "epoch"
        index = seq & (mapping.nslots - 1)
        word_at = _FIRST_WORD + index * _WORDS_PER_SLOT
        words = mapping.words
        first = words[word_at]
        if first != (seq << 1) | 1:
            return "not_committed"
        start = SUPERBLOCK_SIZE + index * HEADER_SLOT_BYTES
        slot_out[:HEADER_SLOT_BYTES] = mapping.raw[start : start + HEADER_SLOT_BYTES]
        body = slot_out[_BODY_START:HEADER_SLOT_BYTES].tobytes()
        length: int = _LENGTH.unpack_from(body)[0]
        if length == 0:
            return "torn" if words[word_at] != first else "zero_length"
        key = body[:_STATIC_HEAD] + body[_STATIC_TAIL]
        cached = mapping.cache[index]
        if cached is None or cached[0] != key:
            cached = self._validate(mapping, index, body, key)
            if cached is None:
                return "torn" if words[word_at] != first else "bad_header"
        if length > len(payload_out):
            return "too_large"
        pool = mapping.pools[cached[2]]
        at = pool.offset(index)
        payload_out[:length] = pool.raw[at : at + length]
        if words[word_at] != first:
            return "torn"
        return length

    def _long_park(self, now: int) -> float:
        """Seconds to park for a parking consumer that has been idle long (0: back off)."""
        silent = now - self._last_descriptor_ns
        pause = 0.0
        for after_ns, seconds in LONG_IDLE_STEPS:
            if silent >= after_ns:
                pause = seconds
        return pause

    def _on_descriptor(self, buf: Any, _header: Any) -> None:
        """Aeron handler (the caller's thread): one descriptor -> maybe one frame."""
        self._last_descriptor_ns = time.monotonic_ns()
        try:
            fields = decode_descriptor(buf)
            if fields is None:
                self.drops["undecodable"] += 1
                return
            stream_id, epoch, seq = fields
            if stream_id != self.stream_id:
                return  # another stream sharing the descriptor stream
            mapping = self._mapping
            if mapping is None or epoch != mapping.epoch:
                self._remap_if_announced()
                mapping = self._mapping
                if mapping is None or epoch != mapping.epoch:
                    self.drops["epoch"] += 1
                    return
            expected = self._expected
            if expected is not None and seq > expected:
                self.loss.record(epoch, expected, seq - 1, "gap")
            self._expected = seq + 1
            self._last_seen = seq
            frame = self._read(mapping, seq)
            if frame is not None:
                self._batch.append(frame)
        except Exception:  # raising would lose the rest of Aeron's batch
            self.handler_errors += 1
            log.exception("descriptor handling failed")

    def _read(self, mapping: _Mapping, seq: int) -> Frame | None:
        index = seq & (mapping.nslots - 1)
        word_at = _FIRST_WORD + index * _WORDS_PER_SLOT
        words = mapping.words
        first = words[word_at]
        if first != (seq << 1) | 1:
            reason = "overwritten" if first >> 1 > seq else "not_committed"
            self.drops["other_seq" if first & 1 else "not_committed"] += 1
            self.loss.record(mapping.epoch, seq, seq, reason)
            return None
        start = SUPERBLOCK_SIZE + index * HEADER_SLOT_BYTES
        body = mapping.raw[start + _BODY_START : start + HEADER_SLOT_BYTES].tobytes()
        if words[word_at] != first:
            self.drops["torn"] += 1
            self.loss.record(mapping.epoch, seq, seq, "torn")
            return None
        key = body[:_STATIC_HEAD] + body[_STATIC_TAIL]
        cached = mapping.cache[index]
        if cached is None or cached[0] != key:
            cached = self._validate(mapping, index, body, key)
            if cached is None:
                self.drops["invalid"] += 1
                self.loss.record(mapping.epoch, seq, seq, "invalid")
                return None
        timestamp_ns, meta_version = _TS_META.unpack_from(body, _TS_META_AT)
        return Frame(seq, mapping.epoch, self.stream_id, cached[2], timestamp_ns, meta_version,
                     cached[1], words, word_at, first)

    @staticmethod
    def _validate(mapping: _Mapping, index: int, body: bytes,
                  key: bytes) -> tuple[bytes, Any, int] | None:
        """Reader step 4 on a copied header; caches and returns (key, view, pool id)."""
        fields = unpack_slot_body(body)
        pool = mapping.pools.get(fields.pool_id)
        if pool is None or invalid_reason(fields, index, pool.nslots, pool.stride_bytes):
            return None
        assert fields.tensor is not None
        array = view_of(fields.tensor, pool.slot(index), fields.values_len_bytes)
        if array is None:
            return None
        entry = (key, array, fields.pool_id)
        mapping.cache[index] = entry
        return entry

    # ------------------------------------------------------------------ telling producers

    def _report_progress(self, *, idle: bool) -> None:
        """QosConsumer from the caller's thread: every quarter ring, and when caught up.

        ``lastSeqSeen`` is the first seq of the batch just returned: the caller may read any
        frame of it until its next poll, so a producer that keeps unread slots must not
        reuse them yet (readers.py). Once a poll finds nothing, everything is released and
        the last seq seen is reported.
        """
        position = self._position
        mapping = self._mapping
        if position is None or mapping is None or position == self._last_reported:
            return
        if not idle and self._last_reported is not None and (
                position - self._last_reported < max(1, mapping.nslots // 4)):
            return
        self._last_reported = position
        self._send_qos(self._qos_encoder, mapping.epoch, position)

    def _send_qos(self, encoder: QosConsumerEncoder, epoch: int, seen: int) -> None:
        try:
            sent = self._qos.offer(encoder.patch(epoch, seen, self.loss.gap, self.loss.late),
                                   timeout_ns=0)
        except ClientClosed:
            sent = False
        if not sent:
            self.qos_not_sent += 1

    def _duty(self, now_ns: int) -> int:
        """On the client's thread: hello and QoS heartbeats every second."""
        if now_ns < self._next_heartbeat_ns or self._closed:
            return 0
        self._next_heartbeat_ns = now_ns + HEARTBEAT_NS
        self._client.queue_hello(ConsumerHello(
            stream_id=self.stream_id, consumer_id=self.lease.client_id, supports_shm=Bool.TRUE,
            supports_progress=Bool.FALSE, mode=Mode.STREAM, max_rate_hz=0,
            expected_layout_version=LAYOUT_VERSION))
        position, mapping = self._position, self._mapping
        if position is not None and mapping is not None:
            self._send_qos(self._heartbeat_encoder, mapping.epoch, position)
        return 1

    # ------------------------------------------------------------------ mapping

    def _check_lease(self) -> None:
        self._lease_generation = self._client.notices.lease_generation
        if not self._client.lease_valid(self.lease):
            raise LeaseLost(f"lease {self.lease.lease_id} was revoked or the driver shut down")

    def _remap_if_announced(self) -> None:
        self._announce_generation = self._client.notices.announce_generation
        ann = self._client.latest_announce(self.stream_id)
        if ann is None:
            return
        mapping = self._mapping
        if mapping is not None and ann.epoch <= mapping.epoch:
            if ann.epoch == mapping.epoch and ann is not self._identity_checked_for:
                self._identity_checked_for = ann
                self._remap_if_reprovisioned(mapping, ann)
            return
        self._try_map(ann.epoch, ann.header_nslots, ann.layout_version, ann.header_region_uri,
                      ann.payload_pools)

    def _remap_if_reprovisioned(self, mapping: _Mapping, ann: ShmPoolAnnounce) -> None:
        """Remap (or, failing that, unmap) regions whose superblock pid or epoch changed.

        Checked once per new announce of the mapped epoch rather than per descriptor: the
        check reads every superblock, and the announce period is what the spec's freshness
        rules already run on.
        """
        if not any(region.identity_changed() for region in mapping.regions):
            return
        self.identity_remaps += 1
        log.info("stream %d epoch %d was re-provisioned in place: remapping",
                 self.stream_id, mapping.epoch)
        self._mapping = None
        self._retire(mapping)
        self._last_attempt = None
        self._try_map(ann.epoch, ann.header_nslots, ann.layout_version, ann.header_region_uri,
                      ann.payload_pools)

    def _try_map(self, epoch: int, nslots: int, layout: int, header_uri: str,
                 pools: tuple[PayloadPool, ...]) -> None:
        now = time.monotonic_ns()
        last = self._last_attempt
        if last is not None and last[0] == epoch and now - last[1] < REMAP_RETRY_NS:
            return
        self._last_attempt = (epoch, now)
        regions: list[MappedRegion] = []
        try:
            (uri, expected), *pool_regions = announced_regions(
                stream_id=self.stream_id, epoch=epoch, header_nslots=nslots,
                header_uri=header_uri, pools=pools, layout_version=layout,
                activity_window_ns=self._window,
            )
            header = open_region(uri, expected, allowed_base_dirs=self._allowed)
            regions.append(header)
            views: dict[int, PayloadPoolView] = {}
            for uri, expected in pool_regions:
                region = open_region(uri, expected, allowed_base_dirs=self._allowed)
                regions.append(region)
                views[expected.pool_id] = region.payload_pool()
            ring = header.header_ring()
            new = _Mapping(epoch, ring.nslots, ring.raw, ring.words, views, regions,
                           [None] * ring.nslots,
                           max((v.stride_bytes for v in views.values()), default=0))
        except (RegionValidationError, OSError, ValueError) as exc:
            self.remap_failures += 1
            log.info("cannot map epoch %d of stream %d: %s", epoch, self.stream_id, exc)
            for region in regions:
                region.close()
            return
        old, self._mapping = self._mapping, new
        self._expected = None
        self._last_seen = None
        self._position = None
        self._last_reported = None
        if old is not None:
            self._retire(old)
        self._close_retired()

    def _retire(self, mapping: _Mapping) -> None:
        mapping.cache.clear()  # the cached views pin the mapping
        self._retired.extend(mapping.regions)

    def _close_retired(self) -> None:
        """Unmap old epochs; a mapping a caller still holds a frame view of waits for later."""
        still: list[MappedRegion] = []
        for region in self._retired:
            try:
                region.close()
            except BufferError:
                still.append(region)
        self._retired = still

    # ------------------------------------------------------------------ lifecycle

    def close(self, detach_timeout: float = 5.0) -> None:
        """Say goodbye on QoS, unsubscribe, detach the lease, unmap (idempotent)."""
        if self._closed:
            return
        self._closed = True
        running = self._client.aeron.running
        if running:
            self._client.aeron.remove_duty(self._duty)
        mapping = self._mapping
        if mapping is not None:
            self._send_qos(self._qos_encoder, mapping.epoch, U64_NULL)  # "I left"
        self._descriptors.close()
        self._qos.close()
        if running and self._client.lease_valid(self.lease):
            try:
                self._client.detach(self.lease, detach_timeout)
            except Exception as exc:
                log.warning("detach of lease %d failed: %s", self.lease.lease_id, exc)
        if self._mapping is not None:
            self._retire(self._mapping)
            self._mapping = None
        self._close_retired()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _no_relay(_epoch: int, _seq: int, _trace_id: int) -> None:
    """``poll_descriptors``' handler until the first call sets one."""
