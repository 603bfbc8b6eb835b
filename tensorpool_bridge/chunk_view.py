"""The receiver's structural decode of a payload-channel message (bridge.md §4.3), in place.

``messages.decode`` builds a frozen ``BridgeFrameChunk`` and copies both var fields: several
microseconds a chunk, most of a 4 KiB frame's budget. Here one reused ``ChunkView`` is filled
with three ``struct`` calls and the two var fields stay memoryviews into the Aeron buffer
(valid only inside the fragment handler; the reassembler copies what it keeps). The checks
and their outcomes are §4.3's, in order, exactly as ``messages.decode`` plus the chunk-size
bound apply them; tests/bridge/test_chunk_view.py holds the two to the same answers.
"""

from __future__ import annotations

import struct
from typing import Final

from messages.bridge import SCHEMA_ID, SLOT_HEADER_BYTES

TEMPLATE_ID: Final = 1
BLOCK_LENGTH: Final = 53
MALFORMED: Final = "chunks_malformed"
FOREIGN: Final = "chunks_foreign"
_HEADER: Final = struct.Struct("<HHHH")
_BLOCK: Final = struct.Struct("<IQQQIIIIIIB")
_LENGTH: Final = struct.Struct("<I")


class ChunkView:
    """One received chunk: ``BridgeFrameChunk``'s fields, its var fields as memoryviews."""

    __slots__ = ("chunk_count", "chunk_index", "chunk_length", "chunk_offset", "epoch",
                 "header_bytes", "header_included", "payload_bytes", "payload_crc32c",
                 "payload_length", "seq", "stream_id", "trace_id")

    def __init__(self) -> None:
        self.stream_id = self.epoch = self.seq = self.trace_id = 0
        self.chunk_index = self.chunk_count = self.chunk_offset = self.chunk_length = 0
        self.payload_length = self.payload_crc32c = self.header_included = 0
        self.header_bytes = self.payload_bytes = memoryview(b"")


def decode_into(view: ChunkView, data: memoryview, max_chunk: int) -> str | None:
    """Fill ``view`` from ``data``; None, or the counter of why the message is dropped."""
    end = len(data)
    if end < _HEADER.size:
        return MALFORMED
    block, template, schema, version = _HEADER.unpack_from(data)
    if schema != SCHEMA_ID or template != TEMPLATE_ID:
        return FOREIGN
    if version > 1 or block < BLOCK_LENGTH or end - _HEADER.size < block:
        return MALFORMED
    (view.stream_id, view.epoch, view.seq, view.trace_id, view.chunk_index, view.chunk_count,
     view.chunk_offset, view.chunk_length, view.payload_length, view.payload_crc32c,
     view.header_included) = _BLOCK.unpack_from(data, _HEADER.size)
    at = _HEADER.size + block
    header_end = _var_end(data, at, SLOT_HEADER_BYTES)
    if header_end < 0:
        return MALFORMED
    view.header_bytes = data[at + _LENGTH.size : header_end]
    payload_end = _var_end(data, header_end, max_chunk)
    if payload_end < 0:
        return MALFORMED
    view.payload_bytes = data[header_end + _LENGTH.size : payload_end]
    return None


def _var_end(data: memoryview, at: int, limit: int) -> int:
    """Where the var field at ``at`` ends (-1: truncated or longer than ``limit``)."""
    if len(data) - at < _LENGTH.size:
        return -1
    size: int = _LENGTH.unpack_from(data, at)[0]
    end = at + _LENGTH.size + size
    return -1 if size > limit or end > len(data) else end
