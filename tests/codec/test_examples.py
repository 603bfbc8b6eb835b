"""The worked byte examples of the spec, reproduced exactly in both directions."""

from __future__ import annotations

import messages
from messages import (
    ClockDomain,
    Dtype,
    HugepagesPolicy,
    MajorOrder,
    PayloadPool,
    ProgressUnit,
    PublishMode,
    RegionType,
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmLeaseKeepalive,
    ShmPoolAnnounce,
    ShmRegionSuperblock,
    SlotHeader,
    TensorHeader,
)


def hexdump(text: str) -> bytes:
    """Bytes of a spec hex dump: each line is ``offset: bytes``."""
    return bytes.fromhex(" ".join(line.split(":", 1)[1] for line in text.strip().splitlines()))


ATTACH_REQUEST = hexdump("""
0000: 1b 00 01 00 85 03 01 00 e9 03 00 00 00 00 00 00
0010: 10 27 00 00 07 00 00 00 01 01 00 00 00 02 00 ff
0020: ff ff ff
""")

KEEPALIVE = hexdump("""
0000: 19 00 05 00 85 03 01 00 05 00 00 00 00 00 00 00
0010: 10 27 00 00 07 00 00 00 01 08 1a 99 be 1c 00 00
0020: 00
""")

ATTACH_REJECTED = hexdump("""
0000: 36 00 02 00 85 03 01 00 e9 03 00 00 00 00 00 00
0010: 03 00 00 00 ff ff ff ff ff ff ff ff ff ff ff ff
0020: ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff
0030: ff ff ff ff ff ff ff ff ff ff ff ff ff ff 0a 00
0040: 00 00 00 00 00 00 1a 00 00 00 63 6c 69 65 6e 74
0050: 5f 69 64 20 61 6c 72 65 61 64 79 20 61 74 74 61
0060: 63 68 65 64
""")

SUPERBLOCK = hexdump("""
0000: 31 4d 48 53 4c 50 4f 54 01 00 00 00 7b 68 e5 cf
0010: 8b 01 00 00 10 27 00 00 01 00 00 00 08 00 00 00
0020: 00 01 00 00 00 00 00 00 e1 10 00 00 00 00 00 00
0030: c8 68 e5 cf 8b 01 00 00 c8 68 e5 cf 8b 01 00 00
""")


def slot_example() -> bytes:
    """shm-layout.md §2.3 committed slot; the dump omits all-zero rows (0x20, 0x60, 0x80+)."""
    slot = bytearray(256)
    rows = {
        0x00: "0b 00 00 00 00 00 00 00 18 00 00 00 05 00 00 00",
        0x10: "01 00 00 00 00 00 e7 6b e5 cf 8b 01 00 00 02 00",
        0x30: "00 00 00 00 00 00 00 00 00 00 00 00 c0 00 00 00",
        0x40: "b8 00 34 00 84 03 01 00 0a 00 01 00 02 00 00 00",
        0x50: "00 00 00 01 00 00 00 03 00 00 00 00 00 00 00 00",
        0x70: "00 00 00 18 00 00 00 08 00 00 00 00 00 00 00 00",
    }
    for offset, row in rows.items():
        slot[offset : offset + 16] = bytes.fromhex(row)
    return bytes(slot)


def test_attach_request_matches_sbe_11_1() -> None:
    message = ShmAttachRequest(
        correlation_id=1001,
        stream_id=10000,
        client_id=7,
        role=Role.PRODUCER,
        expected_layout_version=1,
        publish_mode=PublishMode.EXISTING_OR_CREATE,
        require_hugepages=HugepagesPolicy.UNSPECIFIED,
        desired_node_id=None,
    )
    assert messages.encode(message) == ATTACH_REQUEST
    assert len(ATTACH_REQUEST) == 35
    assert messages.decode(ATTACH_REQUEST) == message


def test_keepalive_matches_sbe_11_2() -> None:
    message = ShmLeaseKeepalive(
        lease_id=5,
        stream_id=10000,
        client_id=7,
        role=Role.PRODUCER,
        client_timestamp_ns=123456789000,
    )
    assert messages.encode(message) == KEEPALIVE
    assert messages.decode(KEEPALIVE) == message


def test_attach_rejection_matches_sbe_11_3() -> None:
    message = ShmAttachResponse(
        correlation_id=1001,
        code=ResponseCode.REJECTED,
        error_message="client_id already attached",
    )
    assert messages.encode(message) == ATTACH_REJECTED
    assert len(ATTACH_REJECTED) == 100
    assert messages.decode(ATTACH_REJECTED) == message


def test_attach_success_has_the_sbe_11_4_layout() -> None:
    directory = "/dev/shm/tensorpool-alice/default/10000/1700000000"
    pool_uri = f"shm:file?path={directory}/1.pool"
    header_uri = f"shm:file?path={directory}/header.ring"
    assert (len(pool_uri), len(header_uri)) == (71, 76)
    message = ShmAttachResponse(
        correlation_id=1001,
        code=ResponseCode.OK,
        lease_id=9,
        lease_expiry_timestamp_ns=3_000_000_000,
        stream_id=10000,
        epoch=1700000000,
        layout_version=1,
        header_nslots=8,
        header_slot_bytes=256,
        node_id=1,
        payload_pools=(PayloadPool(1, 8, 1024, pool_uri),),
        header_region_uri=header_uri,
    )
    data = messages.encode(message)
    assert len(data) == 235
    assert data[62:66] == bytes.fromhex("0a 00 01 00")
    assert data[66:76] == bytes.fromhex("0100 08000000 00040000")
    assert data[76:80] == (71).to_bytes(4, "little")
    assert data[80:151] == pool_uri.encode()
    assert data[151:155] == (76).to_bytes(4, "little")
    assert data[155:231] == header_uri.encode()
    assert data[231:] == bytes(4)
    assert messages.decode(data) == message


def test_announce_matches_wire_12_sample() -> None:
    pool_uri = "shm:file?path=/p"  # 16 bytes
    header_uri = "shm:file?path=/hr"  # 17 bytes
    message = ShmPoolAnnounce(
        stream_id=1000,
        producer_id=1,
        epoch=1,
        announce_timestamp_ns=0,
        announce_clock_domain=ClockDomain.MONOTONIC,
        layout_version=1,
        header_nslots=8,
        header_slot_bytes=256,
        payload_pools=(
            PayloadPool(pool_id=1, pool_nslots=8, stride_bytes=1024, region_uri=pool_uri),
        ),
        header_region_uri=header_uri,
    )
    data = messages.encode(message)
    expected = (
        bytes.fromhex("23 00 01 00 84 03 01 00")
        + bytes.fromhex("e8 03 00 00 01 00 00 00")
        + (1).to_bytes(8, "little")
        + bytes(8)
        + bytes.fromhex("01 01 00 00 00 08 00 00 00 00 01")
        + bytes.fromhex("0a 00 01 00 01 00 08 00 00 00 00 04 00 00")
        + (16).to_bytes(4, "little")
        + pool_uri.encode()
        + (17).to_bytes(4, "little")
        + header_uri.encode()
    )
    assert data == expected
    assert len(data) == 98
    assert messages.decode(data) == message


def test_superblock_matches_shm_layout_2_3() -> None:
    superblock = ShmRegionSuperblock(
        magic=0x544F504C53484D31,
        layout_version=1,
        epoch=1700000000123,
        stream_id=10000,
        region_type=RegionType.HEADER_RING,
        pool_id=0,
        nslots=8,
        slot_bytes=256,
        stride_bytes=0,
        pid=4321,
        start_timestamp_ns=1700000000200,
        activity_timestamp_ns=1700000000200,
    )
    assert messages.encode_body(superblock) == SUPERBLOCK
    assert messages.decode_body(ShmRegionSuperblock, SUPERBLOCK) == superblock
    assert SUPERBLOCK[:8] == b"1MHSLPOT"


def test_slot_and_tensor_header_match_shm_layout_2_3() -> None:
    tensor = TensorHeader(
        dtype=Dtype.FLOAT64,
        major_order=MajorOrder.ROW,
        ndims=2,
        progress_unit=ProgressUnit.NONE,
        progress_stride_bytes=0,
        dims=(1, 3, 0, 0, 0, 0, 0, 0),
        strides=(24, 8, 0, 0, 0, 0, 0, 0),
    )
    header_bytes = messages.encode(tensor)
    assert len(header_bytes) == 192
    slot = SlotHeader(
        seq_commit=(5 << 1) | 1,
        values_len_bytes=24,
        payload_slot=5,
        pool_id=1,
        payload_offset=0,
        timestamp_ns=1700000000999,
        meta_version=2,
        header_bytes=header_bytes,
    )
    expected = slot_example()
    assert messages.encode_body(slot) == expected
    decoded = messages.decode_body(SlotHeader, expected)
    assert decoded == slot
    assert messages.decode(decoded.header_bytes) == tensor
    assert TensorHeader.max_dims == 8


def test_slot_decodes_in_place_from_a_ring_file_view() -> None:
    ring = bytearray(64 + 8 * 256)
    ring[64 + 5 * 256 : 64 + 6 * 256] = slot_example()
    view = memoryview(ring)[64 + 5 * 256 : 64 + 6 * 256]
    slot = messages.decode_body(SlotHeader, view)
    assert slot.seq_commit == 11
    assert isinstance(slot.header_bytes, bytes)
    ring[64 + 5 * 256 + 72] = 0  # the decoded header bytes are a copy, not a view
    tensor = messages.decode(slot.header_bytes)
    assert isinstance(tensor, TensorHeader)
    assert tensor.dtype == Dtype.FLOAT64
