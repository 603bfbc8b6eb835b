"""The sender's split of one frame into chunks (bridge.md §3.5, §5.3), byte-identical to Julia.

Both senders MUST emit the same chunk sequence for the same frame and configuration, so the
split is Julia's exactly: ``c = min(C, L)`` bytes per chunk, the header only in chunk 0.
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
    for parts in chunk_parts(stream_id=stream_id, epoch=epoch, seq=seq, trace_id=trace_id,
                             header=header, payload=payload, chunk_bytes=chunk_bytes,
                             integrity=integrity):
        yield b"".join(parts)


def chunk_parts(
    *, stream_id: int, epoch: int, seq: int, trace_id: int, header: bytes, payload: Buffer,
    chunk_bytes: int, integrity: bool,
) -> Iterator[tuple[Buffer, ...]]:
    """Each chunk as the buffers to write back to back (``offerv`` gathers them: no join)."""
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
            yield (head, _LEN.pack(SLOT_HEADER_BYTES), header, _LEN.pack(size), piece)
        else:
            yield (head, _NO_HEADER, _LEN.pack(size), piece)
