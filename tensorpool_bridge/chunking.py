"""The sender's split of one frame into chunks (bridge.md §3.5, §5.3), byte-identical to Julia.

Both senders MUST emit the same chunk sequence for the same frame and configuration, so the
split is Julia's exactly: ``c = min(C, L)`` bytes per chunk, the header only in chunk 0.

``split_frame`` is the plain statement of that split; the sender's hot path uses
``ChunkWriter``, which emits the same bytes (tested) without allocating per frame or chunk.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from messages.bridge import MAX_CHUNK_COUNT, SCHEMA_ID, SLOT_HEADER_BYTES
from tensorpool_bridge.integrity import crc32c

if TYPE_CHECKING:
    from collections.abc import Buffer, Iterator

# Header and block of §4.2 in one Struct (the engine's encoder gives the same bytes; the
# sender builds chunks on its hot path, so it packs them directly; tests compare the two).
_HEAD: Final = struct.Struct("<HHHHIQQQIIIIIIB")
_LEN: Final = struct.Struct("<I")
_NO_HEADER: Final = _LEN.pack(0)
SLOT_AT: Final = _HEAD.size + _LEN.size
"""Where ``ChunkWriter`` keeps the slot: right after chunk 0's block and header length."""
PAYLOAD_AT: Final = SLOT_AT + SLOT_HEADER_BYTES + _LEN.size
_CHUNK_OVERHEAD: Final = _HEAD.size + 2 * _LEN.size
"""Bytes before the payload slice of a chunk other than chunk 0."""


def effective_chunk_bytes(mtu: int, chunk: int, max_chunk: int) -> int:
    """Julia ``bridge_effective_chunk_bytes`` (§3.5); 0 means no valid size."""
    base = max(mtu - 128, 0) if mtu > 0 else 0
    if chunk > 0:
        base = chunk if base == 0 else min(chunk, base)
    elif base == 0:
        base = max_chunk
    if max_chunk > 0:
        base = min(base, max_chunk)
    return base


def chunk_count(length: int, chunk_bytes: int) -> int:
    """How many chunks a ``length``-byte payload needs (0 for an empty payload)."""
    if length <= 0 or chunk_bytes <= 0:
        return 0
    c = min(chunk_bytes, length)
    return (length + c - 1) // c


def split_frame(
    *, stream_id: int, epoch: int, seq: int, trace_id: int, header: bytes, payload: Buffer,
    chunk_bytes: int, integrity: bool,
) -> Iterator[bytes]:
    """The encoded chunks of one frame, in index order (§5.3 rules hold for every output)."""
    data = memoryview(payload).cast("B")
    length = len(data)
    count = chunk_count(length, chunk_bytes)
    if count == 0 or count > MAX_CHUNK_COUNT or len(header) != SLOT_HEADER_BYTES:
        raise ValueError(f"frame of {length} bytes cannot be split in {chunk_bytes}-byte chunks")
    c = min(chunk_bytes, length)
    for k in range(count):
        off = k * c
        size = min(c, length - off)
        piece = data[off : off + size]
        first = k == 0
        crc = crc32c(piece, crc32c(header) if first else 0) if integrity else 0
        head = _HEAD.pack(53, 1, SCHEMA_ID, 1, stream_id, epoch, seq, trace_id, k, count, off,
                          size, length, crc, 1 if first else 0)
        if first:
            yield b"".join((head, _LEN.pack(SLOT_HEADER_BYTES), header, _LEN.pack(size), piece))
        else:
            yield b"".join((head, _NO_HEADER, _LEN.pack(size), piece))


class ChunkWriter:
    """One reusable buffer that a sender reads a frame into and publishes its chunks from.

    Layout: chunk 0's block and header length, the 256-byte slot, chunk 0's payload length,
    then the payload. Chunk 0 is ``buffer[0 : PAYLOAD_AT + c]``. Chunk ``k > 0`` is built in
    place by writing its 69 bytes of block and lengths just before its payload slice, over
    bytes of chunk ``k - 1`` that were already published: so chunks MUST be taken in index
    order, each published before the next is built (a retry of the same chunk is fine).
    The buffer grows to the largest frame the source can hold and is reused.
    """

    __slots__ = ("_count", "_crc", "_fields", "_piece", "_targets", "_view", "buffer", "length")

    def __init__(self) -> None:
        self.buffer = bytearray(PAYLOAD_AT)
        self._view = memoryview(self.buffer)
        self.length = 0
        self._count = 0
        self._piece = 0
        self._crc = False
        self._fields: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._targets: tuple[int, memoryview, memoryview] | None = None

    def targets(self, capacity: int) -> tuple[memoryview, memoryview]:
        """Where to copy the slot and up to ``capacity`` payload bytes of the next frame."""
        cached = self._targets
        if cached is not None and cached[0] == capacity:
            return cached[1], cached[2]
        if len(self.buffer) < PAYLOAD_AT + capacity:
            self.buffer = bytearray(PAYLOAD_AT + capacity)
            self._view = memoryview(self.buffer)
        view = self._view
        slot = view[SLOT_AT : SLOT_AT + SLOT_HEADER_BYTES]
        payload = view[PAYLOAD_AT : PAYLOAD_AT + capacity]
        self._targets = (capacity, slot, payload)
        return slot, payload

    def start(self, *, stream_id: int, epoch: int, seq: int, trace_id: int, length: int,
              chunk_bytes: int, integrity: bool) -> int:
        """Split the ``length``-byte frame now in the buffer; returns its chunk count."""
        count = chunk_count(length, chunk_bytes)
        if count == 0 or count > MAX_CHUNK_COUNT:
            raise ValueError(f"frame of {length} bytes cannot be split in {chunk_bytes}-byte "
                             "chunks")
        self.length = length
        self._count = count
        self._piece = min(chunk_bytes, length)
        self._crc = integrity
        self._fields = (stream_id, epoch, seq, trace_id)
        return count

    def chunk(self, k: int) -> memoryview:
        """The encoded chunk ``k`` (see the class docstring for the order it needs)."""
        view = self._view
        off = k * self._piece
        size = min(self._piece, self.length - off)
        data_at = PAYLOAD_AT + off
        if k == 0:
            at = 0
            _LEN.pack_into(view, _HEAD.size, SLOT_HEADER_BYTES)
            crc = crc32c(view[data_at : data_at + size],
                         crc32c(view[SLOT_AT : SLOT_AT + SLOT_HEADER_BYTES])) if self._crc else 0
        else:
            at = data_at - _CHUNK_OVERHEAD
            _LEN.pack_into(view, at + _HEAD.size, 0)
            crc = crc32c(view[data_at : data_at + size]) if self._crc else 0
        _LEN.pack_into(view, data_at - _LEN.size, size)
        _HEAD.pack_into(view, at, 53, 1, SCHEMA_ID, 1, *self._fields, k, self._count, off, size,
                        self.length, crc, 1 if k == 0 else 0)
        return view[at : data_at + size]
