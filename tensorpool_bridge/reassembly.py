"""The receiver's frame path without I/O: announce state, chunk checks, assembly, timeout.

Nothing here trusts the wire. Every rule of bridge.md §6.2-§6.4 and §6.7 is applied in the
spec's order and every refusal increments exactly one counter (§9 names); nothing raises.
Memory per mapping is bounded whatever arrives: one assembly at a time (B-9), its buffer no
larger than the smallest of ``max_payload_bytes``, the largest stride of the applied source
announce and the largest local stride (a longer frame could never be delivered, so it is
refused before anything is allocated), and its slice list no longer than ``chunkCount``
(itself bounded by ``ceil(max_payload_bytes / C)``). The buffer is reused across frames.

Time is an argument (``now_ns``), so tests drive the assembly timeout exactly.

Per frame the hot path allocates little: a frame of one chunk skips the assembly record, and
a slot header whose static bytes (everything but ``seqCommit``, ``timestampNs`` and
``metaVersion``) were validated before is accepted from a small cache after its seq check.
"""

from __future__ import annotations

import bisect
import collections
import enum
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from messages.bridge import MAX_CHUNK_COUNT, SLOT_HEADER_BYTES
from shm.slot_layout import (
    HEADER_BYTES_LENGTH,
    KNOWN_DTYPES,
    KNOWN_MAJOR_ORDERS,
    KNOWN_PROGRESS_UNITS,
    SEQ_COMMIT_BYTES,
    TENSOR_BLOCK_LENGTH,
    TENSOR_TEMPLATE_ID,
    WIRE_SCHEMA_ID,
    WIRE_SCHEMA_VERSION,
    SlotFields,
    unpack_slot_body,
)
from tensorpool_bridge.integrity import crc32c

if TYPE_CHECKING:
    from messages import BridgeFrameChunk, ShmPoolAnnounce
    from tensorpool_bridge.chunk_view import ChunkView

    type Chunk = BridgeFrameChunk | ChunkView

TRACE_NULL: Final = (1 << 64) - 1
_SEQ_COMMIT: Final = 8
_U64: Final = struct.Struct("<Q")
_TS_META: Final = struct.Struct("<QI")
_TS_META_AT: Final = 22
_STATIC_LENGTH: Final = slice(8, 12)
_STATIC_POOL: Final = slice(16, 22)
_STATIC_TAIL: Final = slice(60, 147)
"""The slot bytes a cached header validation covers: valuesLenBytes, poolId, payloadOffset
and the embedded header and tensor fields; not the source's payloadSlot (it changes with
every slot and the receiver never uses it), seqCommit, timestampNs or metaVersion."""
_MAX_HEADERS: Final = 64


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    """The receiver's own limits (its effective chunk size ``C`` and the rest of §3)."""

    chunk_bytes: int
    max_payload_bytes: int
    integrity: bool
    assembly_timeout_ns: int

    @property
    def max_chunk_count(self) -> int:
        """``ceil(max_payload_bytes / C)``, capped at 65535 (§6.3 check 3)."""
        if self.chunk_bytes <= 0:
            return 0
        return min(MAX_CHUNK_COUNT, -(-self.max_payload_bytes // self.chunk_bytes))


@dataclass(frozen=True, slots=True)
class SourceAnnounce:
    """What the receiver keeps of the last applied forwarded announce (§6.2 step 4)."""

    epoch: int
    header_nslots: int
    strides: dict[int, int]

    @property
    def largest_stride(self) -> int:
        return max(self.strides.values())


class AnnounceOutcome(enum.Enum):
    IGNORED = "ignored"
    FIRST = "first"
    SAME_EPOCH = "same_epoch"
    NEW_EPOCH = "new_epoch"


@dataclass(frozen=True, slots=True)
class AssembledFrame:
    """A complete, validated frame; ``payload`` is valid until the next chunk is handled.

    ``fields`` are the static header fields (validated once per distinct header: their
    timestamp and metaVersion are those of the first frame that had it); this frame's own
    are ``timestamp_ns`` and ``meta_version``.
    """

    epoch: int
    seq: int
    trace_id: int
    fields: SlotFields
    payload: memoryview
    timestamp_ns: int
    meta_version: int


@dataclass(slots=True)
class _Assembly:
    epoch: int
    seq: int
    chunk_count: int
    payload_length: int
    trace_id: int
    last_ns: int
    header: bytes | None = None
    fields: SlotFields | None = None
    received: dict[int, tuple[int, int]] = field(default_factory=dict)
    starts: list[int] = field(default_factory=list)  # sorted slice offsets
    ends: dict[int, int] = field(default_factory=dict)  # slice offset -> end
    total: int = 0


def header_problem(header: bytes | memoryview, seq: int, payload_length: int) -> SlotFields | None:
    """§6.5 step 4: the decoded slot when its header is acceptable for this frame, else None."""
    if len(header) != SLOT_HEADER_BYTES:
        return None
    seq_commit = int.from_bytes(header[:_SEQ_COMMIT], "little")
    if not seq_commit & 1 or seq_commit >> 1 != seq:
        return None
    fields = unpack_slot_body(header[SEQ_COMMIT_BYTES:])
    tensor = fields.tensor
    if (
        fields.header_bytes_length != HEADER_BYTES_LENGTH
        or fields.block_length != TENSOR_BLOCK_LENGTH
        or fields.template_id != TENSOR_TEMPLATE_ID
        or fields.schema_id != WIRE_SCHEMA_ID
        or fields.version != WIRE_SCHEMA_VERSION
        or fields.values_len_bytes != payload_length
        or fields.payload_offset != 0
        or tensor is None
        or tensor.dtype not in KNOWN_DTYPES
        or tensor.major_order not in KNOWN_MAJOR_ORDERS
        or tensor.progress_unit not in KNOWN_PROGRESS_UNITS
    ):
        return None
    return fields


class Reassembler:
    """One mapping's receiver frame path: ``apply_announce``, ``on_chunk``, ``on_tick``."""

    def __init__(self, dest_stream_id: int, limits: ChunkLimits) -> None:
        self.dest_stream_id = dest_stream_id
        self.limits = limits
        self.counters: collections.Counter[str] = collections.Counter()
        self.announce: SourceAnnounce | None = None
        self.local_strides: tuple[int, ...] = ()
        """Strides of the local pools (empty while the local stream is not mapped)."""
        self._assembly: _Assembly | None = None
        self._dead: tuple[int, int] | None = None
        self._done: tuple[int, int] | None = None
        self._buffer = bytearray()
        self._headers: dict[bytes, SlotFields] = {}

    # ------------------------------------------------------------------ announces

    def apply_announce(self, ann: ShmPoolAnnounce) -> AnnounceOutcome:
        """§6.2: validate, ignore older epochs, drop the in-flight frame on a newer one."""
        pools = ann.payload_pools
        if (
            ann.layout_version != 1
            or ann.header_slot_bytes != SLOT_HEADER_BYTES
            or not pools
            or any(p.stride_bytes == 0 for p in pools)
        ):
            self.counters["announces_ignored"] += 1
            return AnnounceOutcome.IGNORED
        known = self.announce
        if known is not None and ann.epoch < known.epoch:
            self.counters["announces_ignored"] += 1
            return AnnounceOutcome.IGNORED
        if known is None:
            outcome = AnnounceOutcome.FIRST
        elif ann.epoch > known.epoch:
            outcome = AnnounceOutcome.NEW_EPOCH
            self._abandon()
        else:
            outcome = AnnounceOutcome.SAME_EPOCH
        self.announce = SourceAnnounce(
            ann.epoch, ann.header_nslots, {p.pool_id: p.stride_bytes for p in pools}
        )
        self.counters["announces_applied"] += 1
        return outcome

    # ------------------------------------------------------------------ chunks

    def chunk_problem(self, c: Chunk) -> str | None:  # noqa: C901, PLR0911 - one return per check of §6.3
        """§6.3 checks 1-11 in order: the ``chunks_dropped`` reason, or None."""
        limits = self.limits
        ann = self.announce
        if ann is None:
            return "no_announce"
        if c.epoch != ann.epoch:
            return "epoch"
        count = c.chunk_count
        if not 1 <= count <= limits.max_chunk_count or c.chunk_index >= count:
            return "chunk_fields"
        included = c.header_included
        if included not in (0, 1):
            return "chunk_fields"
        length = c.payload_length
        if not 0 < length <= limits.max_payload_bytes:
            return "payload_length"
        size = c.chunk_length
        if not 0 < size <= length or c.chunk_offset + size > length or size > limits.chunk_bytes:
            return "chunk_length"
        if c.chunk_index == 0 and c.chunk_offset != 0:
            return "chunk_offset"
        if len(c.payload_bytes) != size:
            return "chunk_length"
        if len(c.header_bytes) != (SLOT_HEADER_BYTES if included else 0):
            return "header_length"
        if limits.integrity:
            crc = c.payload_crc32c
            expected = crc32c(c.payload_bytes, crc32c(c.header_bytes)) if included else crc32c(
                c.payload_bytes
            )
            if crc == 0 or crc != expected:
                return "crc"
        if bool(included) != (c.chunk_index == 0):
            return "chunk_fields"
        return None

    def on_chunk(self, c: Chunk, now_ns: int) -> AssembledFrame | None:  # noqa: PLR0911 - one return per rule of §6.4
        """Validate and assemble one chunk of this mapping; the frame once it is complete."""
        reason = self.chunk_problem(c)
        if reason is not None:
            self.counters[f"chunks_dropped.{reason}"] += 1
            return None
        key = (c.epoch, c.seq)
        asm = self._assembly
        if asm is None or (asm.epoch, asm.seq) != key:
            if key == self._dead:
                return None  # a frame already declared dropped stays dropped
            if key == self._done:
                self.counters["chunks_duplicate"] += 1  # a late copy of a delivered frame
                return None
            if asm is not None:
                self._abandon()
            self._dead = None
            if c.chunk_count == 1:
                return self._single(c)
            asm = self._start(c, now_ns)
            if asm is None:
                return None
        elif (
            c.chunk_count != asm.chunk_count
            or c.payload_length != asm.payload_length
            or c.trace_id != asm.trace_id
        ):
            self._drop("inconsistent")
            return None
        return self._add(asm, c, now_ns)

    def on_tick(self, now_ns: int) -> None:
        """§6.7: drop an assembly idle for ``assembly_timeout_ms`` (inactivity, B-10)."""
        asm = self._assembly
        if asm is not None and now_ns - asm.last_ns >= self.limits.assembly_timeout_ns:
            self.counters["assemblies_timed_out"] += 1
            self._assembly = None
            self._dead = (asm.epoch, asm.seq)

    @property
    def in_flight(self) -> tuple[int, int] | None:
        """(epoch, seq) of the frame being assembled, if any."""
        asm = self._assembly
        return None if asm is None else (asm.epoch, asm.seq)

    def abandon(self) -> None:
        """Drop the in-flight frame (local re-attach, revoke, shutdown: §6.9)."""
        self._abandon()

    def buffer_capacity(self) -> int:
        """Bytes held by the reusable assembly buffer (what bounds memory per mapping)."""
        return len(self._buffer)

    # ------------------------------------------------------------------ internals

    def _too_long(self, c: Chunk) -> str | None:
        """A frame no stride on either side can hold is refused before any allocation."""
        ann = self.announce
        assert ann is not None  # chunk_problem checked it
        if c.payload_length > ann.largest_stride:
            return "source_stride"
        if self.local_strides and c.payload_length > self.local_strides[-1]:
            return "no_local_pool"
        return None

    def _start(self, c: Chunk, now_ns: int) -> _Assembly | None:
        reason = self._too_long(c)
        if reason is not None:
            self._refuse(c, reason)
            return None
        length = c.payload_length
        asm = _Assembly(c.epoch, c.seq, c.chunk_count, length, c.trace_id, now_ns)
        self._assembly = asm
        if len(self._buffer) < length:
            self._buffer = bytearray(length)
        return asm

    def _single(self, c: Chunk) -> AssembledFrame | None:
        """A frame of one chunk (index 0, header included: chunk_problem checked): no
        assembly record and no copy, the frame's payload is the chunk's."""
        reason = self._too_long(c)
        if reason is None and c.chunk_length != c.payload_length:
            reason = "inconsistent"
        header = c.header_bytes
        fields = None
        if reason is None:
            fields, reason = self._header_check(header, c.seq, c.payload_length)
        if fields is None:
            self._refuse(c, reason or "bad_header")
            return None
        self._done = (c.epoch, c.seq)
        self.counters["frames_assembled"] += 1
        return self._frame(c.epoch, c.seq, c.trace_id, fields, header,
                           memoryview(c.payload_bytes))

    def _frame(  # noqa: PLR0917 - per frame: positional
        self, epoch: int, seq: int, trace_id: int, fields: SlotFields,
        header: bytes | memoryview, payload: memoryview,
    ) -> AssembledFrame:
        timestamp_ns, meta_version = _TS_META.unpack_from(header, _TS_META_AT)
        return AssembledFrame(epoch, seq, 0 if trace_id == TRACE_NULL else trace_id, fields,
                              payload, timestamp_ns, meta_version)

    def _refuse(self, c: Chunk, reason: str) -> None:
        self.counters[f"frames_dropped.{reason}"] += 1
        self._dead = (c.epoch, c.seq)

    def _abandon(self) -> None:
        asm = self._assembly
        if asm is not None:
            self.counters["assemblies_abandoned"] += 1
            self._assembly = None
            self._dead = (asm.epoch, asm.seq)

    def _drop(self, reason: str) -> None:
        asm = self._assembly
        self.counters[f"frames_dropped.{reason}"] += 1
        if asm is not None:
            self._dead = (asm.epoch, asm.seq)
        self._assembly = None

    def _add(  # noqa: PLR0911 - one return per rule of §6.4
        self, asm: _Assembly, c: Chunk, now_ns: int
    ) -> AssembledFrame | None:
        index, offset, size = c.chunk_index, c.chunk_offset, c.chunk_length
        seen = asm.received.get(index)
        if seen is not None:
            same = seen == (offset, size) and (
                memoryview(self._buffer)[offset : offset + size] == c.payload_bytes
            ) and (index != 0 or c.header_bytes == asm.header)
            if same:
                self.counters["chunks_duplicate"] += 1
                return None
            self._drop("conflict")
            return None
        starts = asm.starts
        pos = bisect.bisect_left(starts, offset)
        end = offset + size
        if (pos < len(starts) and starts[pos] < end) or (
            pos > 0 and asm.ends[starts[pos - 1]] > offset
        ):
            self._drop("overlap")
            return None
        self._buffer[offset:end] = c.payload_bytes
        starts.insert(pos, offset)
        asm.ends[offset] = end
        asm.received[index] = (offset, size)
        asm.total += size
        asm.last_ns = now_ns
        if index == 0:
            asm.header = bytes(c.header_bytes)
            asm.fields, reason = self._header_check(asm.header, asm.seq, asm.payload_length)
            if reason is not None:
                self._drop(reason)
                return None
        if len(asm.received) < asm.chunk_count:
            return None
        if asm.total != asm.payload_length:
            self._drop("inconsistent")
            return None
        fields, header = asm.fields, asm.header
        assert fields is not None  # chunk 0 is among the received ones
        assert header is not None
        self._assembly = None
        self._done = (asm.epoch, asm.seq)
        self.counters["frames_assembled"] += 1
        return self._frame(asm.epoch, asm.seq, asm.trace_id, fields, header,
                           memoryview(self._buffer)[: asm.payload_length])

    def _header_check(  # noqa: PLR0911 - one return per check of §6.5 steps 4-7
        self, header: bytes | memoryview, seq: int,
                      length: int) -> tuple[SlotFields, None] | tuple[None, str]:
        """§6.4 step 6: the header checks of §6.5 steps 4-6 and a fitting local pool."""
        view = memoryview(header)
        if len(view) != SLOT_HEADER_BYTES:
            return None, "bad_header"
        seq_commit = _U64.unpack_from(view)[0]
        if not seq_commit & 1 or seq_commit >> 1 != seq:
            return None, "bad_header"
        key = bytes(view[_STATIC_LENGTH]) + bytes(view[_STATIC_POOL]) + bytes(view[_STATIC_TAIL])
        fields = self._headers.get(key)
        if fields is None:
            fields = header_problem(view, seq, length)
            if fields is None:
                return None, "bad_header"
            if len(self._headers) >= _MAX_HEADERS:
                self._headers.clear()
            self._headers[key] = fields
        elif fields.values_len_bytes != length:
            return None, "bad_header"
        ann = self.announce
        assert ann is not None
        stride = ann.strides.get(fields.pool_id)
        if stride is None:
            return None, "unknown_pool"
        if length > stride:
            return None, "source_stride"
        if self.local_strides and length > self.local_strides[-1]:
            return None, "no_local_pool"
        return fields, None
