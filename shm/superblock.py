"""The 64-byte region superblock (shm-layout.md §1): constants, codec and in-place updates.

A fixed ``struct.Struct`` rather than the SBE codec of ``ShmRegionSuperblock``: the size is
fixed by the spec and must never be derived from schema metadata, and a mapper must be able to
read a superblock whose region type is unknown in order to report it (the SBE codec would
refuse to decode it). The ``RegionType`` enum itself is the schema's, from messages/.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from messages.wire import RegionType

MAGIC: Final = 0x544F504C53484D31
LAYOUT_VERSION: Final = 1
SUPERBLOCK_SIZE: Final = 64
HEADER_SLOT_BYTES: Final = 256
MAX_DIMS: Final = 8
POOL_SLOT_BYTES_C_DRIVER: Final = 0xFFFFFFFF
"""The pool ``slotBytes`` a C driver writes; accepted when mapping (A-18)."""

SUPERBLOCK: Final = struct.Struct("<QIQIhHIIIQQQ")
ACTIVITY_OFFSET: Final = 56
_U64: Final = struct.Struct("<Q")

__all__ = [
    "ACTIVITY_OFFSET",
    "HEADER_SLOT_BYTES",
    "LAYOUT_VERSION",
    "MAGIC",
    "MAX_DIMS",
    "POOL_SLOT_BYTES_C_DRIVER",
    "SUPERBLOCK",
    "SUPERBLOCK_SIZE",
    "RegionType",
    "Superblock",
    "decode_superblock",
    "encode_superblock",
    "header_region_size",
    "header_superblock",
    "is_power_of_two",
    "pool_region_size",
    "pool_superblock",
    "write_activity",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Superblock:
    """Decoded superblock; ``region_type`` stays an int so unknown values can be reported."""

    magic: int = MAGIC
    layout_version: int = LAYOUT_VERSION
    epoch: int
    stream_id: int
    region_type: int
    pool_id: int
    nslots: int
    slot_bytes: int
    stride_bytes: int
    pid: int
    start_timestamp_ns: int
    activity_timestamp_ns: int


def encode_superblock(sb: Superblock) -> bytes:
    """Return the 64 little-endian bytes of ``sb`` (struct.error on out-of-range fields)."""
    return SUPERBLOCK.pack(
        sb.magic,
        sb.layout_version,
        sb.epoch,
        sb.stream_id,
        sb.region_type,
        sb.pool_id,
        sb.nslots,
        sb.slot_bytes,
        sb.stride_bytes,
        sb.pid,
        sb.start_timestamp_ns,
        sb.activity_timestamp_ns,
    )


def decode_superblock(buf: bytes | bytearray | memoryview) -> Superblock:
    """Decode the first 64 bytes of ``buf``; raises ValueError when it is shorter."""
    if len(buf) < SUPERBLOCK_SIZE:
        raise ValueError(f"superblock needs {SUPERBLOCK_SIZE} bytes, got {len(buf)}")
    (magic, layout, epoch, stream_id, region_type, pool_id, nslots, slot_bytes, stride, pid,
     start, activity) = SUPERBLOCK.unpack_from(buf, 0)
    return Superblock(
        magic=magic,
        layout_version=layout,
        epoch=epoch,
        stream_id=stream_id,
        region_type=region_type,
        pool_id=pool_id,
        nslots=nslots,
        slot_bytes=slot_bytes,
        stride_bytes=stride,
        pid=pid,
        start_timestamp_ns=start,
        activity_timestamp_ns=activity,
    )


def header_superblock(
    *, epoch: int, stream_id: int, nslots: int, pid: int, now_ns: int
) -> Superblock:
    """The superblock the driver writes into a header ring."""
    return Superblock(
        epoch=epoch,
        stream_id=stream_id,
        region_type=RegionType.HEADER_RING,
        pool_id=0,
        nslots=nslots,
        slot_bytes=HEADER_SLOT_BYTES,
        stride_bytes=0,
        pid=pid,
        start_timestamp_ns=now_ns,
        activity_timestamp_ns=now_ns,
    )


def pool_superblock(
    *, epoch: int, stream_id: int, pool_id: int, nslots: int, stride_bytes: int, pid: int,
    now_ns: int,
) -> Superblock:
    """The superblock the driver writes into a payload pool (slotBytes = stride, A-18)."""
    return Superblock(
        epoch=epoch,
        stream_id=stream_id,
        region_type=RegionType.PAYLOAD_POOL,
        pool_id=pool_id,
        nslots=nslots,
        slot_bytes=stride_bytes,
        stride_bytes=stride_bytes,
        pid=pid,
        start_timestamp_ns=now_ns,
        activity_timestamp_ns=now_ns,
    )


def write_activity(buf: memoryview | bytearray, now_ns: int) -> None:
    """Refresh ``activityTimestampNs`` in place (what a producer does every announce period)."""
    _U64.pack_into(buf, ACTIVITY_OFFSET, now_ns)


def header_region_size(nslots: int) -> int:
    """Bytes of a header ring with ``nslots`` slots (before any hugepage rounding)."""
    return SUPERBLOCK_SIZE + nslots * HEADER_SLOT_BYTES


def pool_region_size(nslots: int, stride_bytes: int) -> int:
    """Bytes of a payload pool (before any hugepage rounding)."""
    return SUPERBLOCK_SIZE + nslots * stride_bytes


def is_power_of_two(value: int) -> bool:
    """True for 1, 2, 4, ...; False for 0 and negatives."""
    return value > 0 and value & (value - 1) == 0
