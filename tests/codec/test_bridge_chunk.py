"""bridge.md §4: the worked bytes of BridgeFrameChunk, both directions, and hostile chunks."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import messages
from messages import BridgeFrameChunk, DecodeError, InvalidBlockLength, UnsupportedVersion
from tensorpool_bridge.integrity import crc32c

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def slot_of_spec() -> bytes:
    """The 256-byte slot of shm-layout.md §2.3 built as bridge.md §4.7 says."""
    tensor = struct.pack("<HHBBBI8i8i", 10, 1, 2, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0,
                         24, 8, 0, 0, 0, 0, 0, 0)
    tensor += bytes(184 - len(tensor))
    slot = (struct.pack("<QIIHIQI", (5 << 1) | 1, 24, 5, 1, 0, 1700000000999, 2) + bytes(26)
            + struct.pack("<I", 192) + struct.pack("<HHHH", 184, 52, 900, 1) + tensor)
    assert len(slot) == 256
    return slot


SLOT = slot_of_spec()
DOUBLES = struct.pack("<3d", 1.0, 2.0, 3.0)

EXAMPLE_1_HEAD = bytes.fromhex(
    "35 00 01 00 86 03 01 00 20 4e 00 00 7b 68 e5 cf"
    "8b 01 00 00 05 00 00 00 00 00 00 00 00 00 00 00"
    "00 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00"
    "18 00 00 00 18 00 00 00 00 00 00 00 01 00 01 00"
    "00 0b 00 00 00 00 00 00 00 18 00 00 00 05 00 00"
)
EXAMPLE_1_TAIL = bytes.fromhex(
    "00 18 00 00 00 00 00 00 00 00 00 f0 3f 00 00 00"
    "00 00 00 00 40 00 00 00 00 00 00 08 40"
)

EXAMPLE_2_PAYLOAD = bytes(i & 0xFF for i in range(3000))
EXAMPLE_2_HEAD = bytes.fromhex(
    "35 00 01 00 86 03 01 00 20 4e 00 00 7b 68 e5 cf"
    "8b 01 00 00 06 00 00 00 00 00 00 00 ef cd ab 89"
    "67 45 23 01 02 00 00 00 03 00 00 00 00 0a 00 00"
    "b8 01 00 00 b8 0b 00 00 65 15 04 e7 00 00 00 00"
    "00 b8 01 00 00 00 01 02 03 04 05 06 07 08 09 0a"
)
EXAMPLE_2_TAIL = bytes.fromhex("ab ac ad ae af b0 b1 b2 b3 b4 b5 b6 b7")


def example_1(crc: int = 0) -> BridgeFrameChunk:
    return BridgeFrameChunk(
        stream_id=20000, epoch=1700000000123, seq=5, trace_id=0, chunk_index=0, chunk_count=1,
        chunk_offset=0, chunk_length=24, payload_length=24, payload_crc32c=crc,
        header_included=messages.Bool.TRUE, header_bytes=SLOT, payload_bytes=DOUBLES,
    )


def example_2() -> BridgeFrameChunk:
    data = EXAMPLE_2_PAYLOAD[2560:3000]
    return BridgeFrameChunk(
        stream_id=20000, epoch=1700000000123, seq=6, trace_id=0x0123456789ABCDEF,
        chunk_index=2, chunk_count=3, chunk_offset=2560, chunk_length=440,
        payload_length=3000, payload_crc32c=crc32c(data),
        header_included=messages.Bool.FALSE, header_bytes=b"", payload_bytes=data,
    )


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283


def test_example_1_bytes() -> None:
    wire = messages.encode(example_1())
    assert len(wire) == 349 == 325 + 24
    assert wire[: len(EXAMPLE_1_HEAD)] == EXAMPLE_1_HEAD
    assert wire[0x140:] == EXAMPLE_1_TAIL
    assert wire[0x41:0x141] == SLOT
    assert messages.decode(wire) == example_1()


def test_example_1_with_integrity() -> None:
    crc = crc32c(SLOT + DOUBLES)
    assert crc == 0x4424F346
    wire = messages.encode(example_1(crc))
    assert wire[0x38:0x3C] == bytes.fromhex("46 f3 24 44")


def test_example_2_bytes() -> None:
    chunk = example_2()
    assert chunk.payload_crc32c == 0xE7041565
    wire = messages.encode(chunk)
    assert len(wire) == 509 == 69 + 440
    assert wire[: len(EXAMPLE_2_HEAD)] == EXAMPLE_2_HEAD
    assert wire[0x1F0:] == EXAMPLE_2_TAIL
    assert messages.decode(wire) == chunk


@pytest.mark.parametrize("block_length", [41, 49])
def test_draft_block_lengths_are_rejected(block_length: int) -> None:
    wire = bytearray(messages.encode(example_2()))
    struct.pack_into("<H", wire, 0, block_length)
    with pytest.raises(InvalidBlockLength):
        messages.decode(bytes(wire))


def test_newer_version_is_rejected_and_version_zero_is_one() -> None:
    wire = bytearray(messages.encode(example_2()))
    struct.pack_into("<H", wire, 6, 2)
    with pytest.raises(UnsupportedVersion):
        messages.decode(bytes(wire))
    struct.pack_into("<H", wire, 6, 0)
    assert messages.decode(bytes(wire)) == example_2()


def test_larger_block_is_skipped() -> None:
    base = messages.encode(example_2())
    wire = bytearray(base[:8] + base[8:61] + bytes(7) + base[61:])
    struct.pack_into("<H", wire, 0, 60)
    assert messages.decode(bytes(wire)) == example_2()


def test_header_bytes_over_256_rejected() -> None:
    wire = bytearray(messages.encode(example_1()))
    struct.pack_into("<I", wire, 61, 257)
    with pytest.raises(DecodeError):
        messages.decode(bytes(wire))


def test_header_included_other_values_decode_raw() -> None:
    """B-27: a headerIncluded of 2 reaches the receiver, which drops it (chunk_fields)."""
    wire = bytearray(messages.encode(example_2()))
    wire[60] = 2
    chunk = messages.decode(bytes(wire))
    assert isinstance(chunk, BridgeFrameChunk)
    assert chunk.header_included == 2


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        messages.decode(struct.pack("<HHHH", 53, 1, 902, 1) + data)


@FUZZ
@given(st.data())
def test_mutated_chunks_raise_only_decode_error(data: st.DataObject) -> None:
    wire = bytearray(messages.encode(data.draw(st.sampled_from([example_1(), example_2()]))))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    try:
        decoded = messages.decode(bytes(wire[:cut]))
    except DecodeError:
        return
    assert isinstance(decoded, messages.SbeMessage)
