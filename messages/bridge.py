"""Bridge schema 902 (bridge.md §4): the one message that carries frames between hosts.

``BridgeFrameChunk`` is declared with the same engine as schemas 900/901, so the structural
checks of bridge.md §4.3 come from the engine: header length, schema/template dispatch,
version (> 1 refused, 0 read as 1), block length >= 53 (the 41- and 49-byte drafts are
rejected, B-21), var-data bounds, and ``headerBytes`` at most 256 bytes. What depends on the
receiver's configuration (payload length <= its chunk size) and the semantic pipeline of
§6.3 live in ``tensorpool_bridge.reassembly``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from messages.sbe import U32, U64, UINT8, Blob, SbeMessage, VarData, message
from messages.wire import Bool  # noqa: TC001 - the engine reads the annotations at import

SCHEMA_ID: Final = 902
SLOT_HEADER_BYTES: Final = 256
MAX_CHUNK_COUNT: Final = 65535
MAX_CHUNK_LENGTH: Final = 65535
MAX_PAYLOAD_LENGTH: Final = 1 << 30
FIXED_OVERHEAD: Final = 8 + 53 + 4 + 4
"""Bytes of a chunk besides its header and payload bytes: 69 + h + L in all (§0)."""


@message(schema_id=SCHEMA_ID, template_id=1, block_length=53)
@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeFrameChunk(SbeMessage):
    """One slice of one frame; ``header_included`` is lenient so that B-27 can count it.

    ``trace_id`` is a plain uint64: 0 means "no trace" on the wire (B-18), and receivers map
    2^64 - 1 to 0 themselves.
    """

    stream_id: U32
    epoch: U64
    seq: U64
    trace_id: U64
    chunk_index: U32
    chunk_count: U32
    chunk_offset: U32
    chunk_length: U32
    payload_length: U32
    payload_crc32c: U32
    header_included: Annotated[Bool | int, UINT8]
    header_bytes: Annotated[bytes, VarData(max_length=SLOT_HEADER_BYTES)] = b""
    payload_bytes: Blob = b""


__all__ = [
    "FIXED_OVERHEAD",
    "MAX_CHUNK_COUNT",
    "MAX_CHUNK_LENGTH",
    "MAX_PAYLOAD_LENGTH",
    "SCHEMA_ID",
    "SLOT_HEADER_BYTES",
    "BridgeFrameChunk",
]
