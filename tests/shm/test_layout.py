"""Byte layouts against the worked examples of shm-layout.md §2.3."""

from __future__ import annotations

import numpy as np
import pytest

from shm import Frame, HeaderRing, PayloadPoolView, TensorDescriptor
from shm.slot_layout import SLOT_DTYPE
from shm.superblock import (
    MAGIC,
    SUPERBLOCK,
    RegionType,
    decode_superblock,
    encode_superblock,
    header_superblock,
    pool_superblock,
)

SPEC_SUPERBLOCK_HEX = """
31 4d 48 53 4c 50 4f 54 01 00 00 00 7b 68 e5 cf
8b 01 00 00 10 27 00 00 01 00 00 00 08 00 00 00
00 01 00 00 00 00 00 00 e1 10 00 00 00 00 00 00
c8 68 e5 cf 8b 01 00 00 c8 68 e5 cf 8b 01 00 00
"""

# slot offset -> 16 bytes; rows not listed are all zero (as in the spec)
SPEC_SLOT_ROWS = {
    0x00: "0b 00 00 00 00 00 00 00 18 00 00 00 05 00 00 00",
    0x10: "01 00 00 00 00 00 e7 6b e5 cf 8b 01 00 00 02 00",
    0x30: "00 00 00 00 00 00 00 00 00 00 00 00 c0 00 00 00",
    0x40: "b8 00 34 00 84 03 01 00 0a 00 01 00 02 00 00 00",
    0x50: "00 00 00 01 00 00 00 03 00 00 00 00 00 00 00 00",
    0x70: "00 00 00 18 00 00 00 08 00 00 00 00 00 00 00 00",
}


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace("\n", " "))


def test_magic_is_stored_little_endian_as_1MHSLPOT() -> None:
    assert MAGIC.to_bytes(8, "little") == b"1MHSLPOT"
    assert SUPERBLOCK.size == 64


def test_header_superblock_matches_the_spec_example_byte_for_byte() -> None:
    sb = header_superblock(
        epoch=1700000000123, stream_id=10000, nslots=8, pid=4321, now_ns=1700000000200
    )
    assert encode_superblock(sb) == _hex(SPEC_SUPERBLOCK_HEX)
    assert decode_superblock(_hex(SPEC_SUPERBLOCK_HEX)) == sb


def test_pool_superblock_writes_stride_as_slot_bytes() -> None:
    sb = pool_superblock(
        epoch=5, stream_id=7, pool_id=3, nslots=4, stride_bytes=4096, pid=9, now_ns=11
    )
    raw = encode_superblock(sb)
    assert int.from_bytes(raw[24:26], "little") == RegionType.PAYLOAD_POOL
    assert int.from_bytes(raw[26:28], "little") == 3
    assert int.from_bytes(raw[32:36], "little") == 4096
    assert int.from_bytes(raw[36:40], "little") == 4096


def test_committed_slot_matches_the_spec_example_byte_for_byte() -> None:
    nslots, stride = 8, 64
    header = bytearray(64 + nslots * 256)
    pool_buf = bytearray(64 + nslots * stride)
    ring = HeaderRing(header, nslots=nslots)
    pool = PayloadPoolView(pool_buf, pool_id=1, nslots=nslots, stride_bytes=stride)
    tensor = TensorDescriptor(dtype=10, major_order=1, dims=(1, 3), strides=(24, 8))
    index = ring.write_frame(
        5,
        pool,
        np.arange(3, dtype="<f8"),
        tensor=tensor,
        timestamp_ns=1700000000999,
        meta_version=2,
    )
    ring.release()
    pool.release()
    assert index == 5
    slot = bytes(header[64 + 5 * 256 : 64 + 6 * 256])
    expected = bytearray(256)
    for offset, row in SPEC_SLOT_ROWS.items():
        expected[offset : offset + 16] = _hex(row)
    assert slot == bytes(expected)
    assert pool_buf[64 + 5 * stride : 64 + 5 * stride + 24] == np.arange(3, dtype="<f8").tobytes()


def test_numpy_slot_view_reads_the_spec_fields() -> None:
    header = bytearray(64 + 8 * 256)
    pool_buf = bytearray(64 + 8 * 64)
    ring = HeaderRing(header, nslots=8)
    pool = PayloadPoolView(pool_buf, pool_id=1, nslots=8, stride_bytes=64)
    ring.write_frame(
        5,
        pool,
        bytes(24),
        timestamp_ns=1700000000999,
        meta_version=2,
        tensor=TensorDescriptor(dtype=10, major_order=1, dims=(1, 3), strides=(24, 8)),
    )
    slot = ring.slots[5]
    assert SLOT_DTYPE.itemsize == 256
    assert (int(slot["seq_commit"]), int(slot["values_len_bytes"]), int(slot["pool_id"])) == (
        11,
        24,
        1,
    )
    assert int(slot["timestamp_ns"]) == 1700000000999
    assert (int(slot["block_length"]), int(slot["template_id"]), int(slot["schema_id"])) == (
        184,
        52,
        900,
    )
    assert list(slot["dims"][:2]) == [1, 3]
    assert list(slot["strides"][:2]) == [24, 8]
    del slot
    ring.release()
    pool.release()


def test_an_oversized_payload_is_refused_before_the_slot_is_touched() -> None:
    header = bytearray(64 + 8 * 256)
    pool_buf = bytearray(64 + 8 * 64)
    ring = HeaderRing(header, nslots=8)
    pool = PayloadPoolView(pool_buf, pool_id=1, nslots=8, stride_bytes=64)
    tensor = TensorDescriptor(dtype=1, major_order=1, dims=(3,))
    ring.write_frame(5, pool, b"abc", tensor=tensor, timestamp_ns=1, meta_version=0)
    with pytest.raises(ValueError, match="exceeds stride"):
        ring.write_frame(13, pool, bytes(65), tensor=tensor, timestamp_ns=2, meta_version=0)
    assert ring.load_seq_commit(5) == 11  # still frame 5, committed
    frame = ring.read_frame(5, {1: pool})
    assert isinstance(frame, Frame)
    assert frame.payload == b"abc"
    del frame
    ring.release()
    pool.release()
