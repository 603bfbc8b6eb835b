"""Targeted validation rules of sbe.md §7-§10 and the contract's lenient request enums."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest

import messages
from messages import (
    Attribute,
    ClockDomain,
    DataSourceMeta,
    DecodeError,
    EncodeError,
    FrameDescriptor,
    HugepagesPolicy,
    InvalidBlockLength,
    InvalidValue,
    LeaseRevokeReason,
    PayloadPool,
    PublishMode,
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
    ShmPoolAnnounce,
    ShmRegionSuperblock,
    TruncatedMessage,
    UnknownMessage,
    UnsupportedVersion,
)
from messages.sbe import HEADER, REGISTRY

ATTACH = ShmAttachRequest(
    correlation_id=1001,
    stream_id=10000,
    client_id=7,
    role=Role.PRODUCER,
    expected_layout_version=1,
    publish_mode=PublishMode.EXISTING_OR_CREATE,
)
URI = "shm:file?path=/dev/shm/x/1.pool"
ANNOUNCE = ShmPoolAnnounce(
    stream_id=1000,
    producer_id=1,
    epoch=1,
    announce_timestamp_ns=5,
    announce_clock_domain=ClockDomain.MONOTONIC,
    layout_version=1,
    header_nslots=8,
    header_slot_bytes=256,
    payload_pools=(PayloadPool(1, 8, 1024, URI), PayloadPool(2, 8, 4096, URI + "2")),
    header_region_uri="shm:file?path=/dev/shm/x/header.ring",
)
REVOKED = ShmLeaseRevoked(
    timestamp_ns=1,
    lease_id=2,
    stream_id=3,
    client_id=4,
    role=Role.CONSUMER,
    reason=LeaseRevokeReason.EXPIRED,
    error_message="lease expired",
)


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    buffer = bytearray(data)
    struct.pack_into(fmt, buffer, offset, value)
    return bytes(buffer)


def with_block_length(data: bytes, extra: int) -> bytes:
    """The same message as a newer encoder would send it, with ``extra`` unknown block bytes."""
    block_length = HEADER.unpack_from(data)[0]
    end = 8 + block_length
    head = patched(data[:end], 0, "<H", block_length + extra)
    return head + b"\xee" * extra + data[end:]


class TestLenientRequestEnums:
    def test_unknown_attach_enums_decode_to_raw_ints(self) -> None:
        data = patched(
            patched(patched(messages.encode(ATTACH), 24, "<B", 9), 29, "<B", 7), 30, "<B", 200
        )
        decoded = messages.decode(data)
        assert isinstance(decoded, ShmAttachRequest)
        assert (decoded.role, decoded.publish_mode, decoded.require_hugepages) == (9, 7, 200)
        assert type(decoded.role) is int
        assert messages.encode(decoded) == data

    def test_null_publish_mode_decodes_to_none_and_known_values_to_members(self) -> None:
        decoded = messages.decode(patched(messages.encode(ATTACH), 29, "<B", 255))
        assert isinstance(decoded, ShmAttachRequest)
        assert decoded.publish_mode is None
        assert decoded.role is Role.PRODUCER
        assert decoded.require_hugepages is HugepagesPolicy.UNSPECIFIED

    def test_role_255_is_a_raw_int_not_a_null(self) -> None:
        decoded = messages.decode(patched(messages.encode(ATTACH), 24, "<B", 255))
        assert isinstance(decoded, ShmAttachRequest)
        assert decoded.role == 255

    @pytest.mark.parametrize(
        ("message", "offset"),
        [
            (
                ShmDetachRequest(
                    correlation_id=1, lease_id=2, stream_id=3, client_id=4, role=Role.CONSUMER
                ),
                8 + 24,
            ),
            (
                ShmLeaseKeepalive(
                    lease_id=2, stream_id=3, client_id=4, role=Role.CONSUMER, client_timestamp_ns=0
                ),
                8 + 16,
            ),
        ],
    )
    def test_detach_and_keepalive_roles_are_lenient(
        self, message: messages.SbeMessage, offset: int
    ) -> None:
        decoded = messages.decode(patched(messages.encode(message), offset, "<B", 0))
        assert decoded.role == 0  # type: ignore[attr-defined]

    def test_strict_enums_reject_unknown_values_where_they_are(self) -> None:
        data = patched(messages.encode(REVOKED), 8 + 24, "<B", 9)
        with pytest.raises(InvalidValue) as info:
            messages.decode(data)
        assert info.value.offset == 8 + 24
        assert "role" in info.value.reason
        with pytest.raises(InvalidValue):
            messages.decode(patched(messages.encode(REVOKED), 8 + 25, "<B", 0))
        response = ShmDetachResponse(correlation_id=1, code=ResponseCode.OK)
        with pytest.raises(InvalidValue):
            messages.decode(patched(messages.encode(response), 8 + 8, "<i", 5))

    def test_encoding_rejects_unknown_strict_enum_values(self) -> None:
        with pytest.raises(EncodeError, match="code"):
            messages.encode(ShmDetachResponse(correlation_id=1, code=7))  # type: ignore[arg-type]
        with pytest.raises(EncodeError, match="role"):
            messages.encode(
                ShmAttachRequest(
                    correlation_id=1, stream_id=1, client_id=1, role=256, expected_layout_version=1
                )
            )


class TestBlockLength:
    @pytest.mark.parametrize("message", [ATTACH, ANNOUNCE, REVOKED])
    def test_a_longer_root_block_is_skipped(self, message: messages.SbeMessage) -> None:
        assert messages.decode(with_block_length(messages.encode(message), 5)) == message

    @pytest.mark.parametrize("message", [ATTACH, ANNOUNCE, REVOKED])
    def test_a_shorter_root_block_is_rejected(self, message: messages.SbeMessage) -> None:
        data = messages.encode(message)
        with pytest.raises(InvalidBlockLength):
            messages.decode(patched(data, 0, "<H", type(message).BLOCK_LENGTH - 1))

    def test_longer_group_entries_are_stepped_by_the_group_header(self) -> None:
        data = messages.encode(ANNOUNCE)
        group = 8 + 35
        entries = bytearray(patched(data[group : group + 4], 0, "<H", 12))
        rest = data[group + 4 :]
        first_end = 10 + 4 + len(URI)
        rebuilt = bytearray(entries)
        rebuilt += rest[:10] + b"\xaa\xbb" + rest[10:first_end]
        rebuilt += rest[first_end : first_end + 10] + b"\xcc\xdd" + rest[first_end + 10 :]
        assert messages.decode(data[:group] + bytes(rebuilt)) == ANNOUNCE

    def test_a_shorter_group_entry_block_is_rejected(self) -> None:
        data = patched(messages.encode(ANNOUNCE), 8 + 35, "<H", 9)
        with pytest.raises(InvalidBlockLength) as info:
            messages.decode(data)
        assert info.value.offset == 8 + 35

    def test_encoders_write_the_exact_schema_block_lengths(self) -> None:
        driver = {1: 27, 2: 54, 3: 25, 4: 12, 5: 25, 6: 9, 7: 26, 8: 9}
        wire = {1: 35, 2: 39, 3: 18, 4: 40, 5: 41, 6: 28, 7: 20, 8: 16, 9: 12, 10: 28, 11: 29}
        wire |= {12: 16, 13: 16, 50: 64, 51: 60, 52: 184}
        expected = {(901, t): n for t, n in driver.items()} | {(900, t): n for t, n in wire.items()}
        expected[902, 1] = 53
        assert {key: codec.cls.BLOCK_LENGTH for key, codec in REGISTRY.items()} == expected
        assert {key: codec.block.size for key, codec in REGISTRY.items()} == expected


class TestVersion:
    def test_newer_attach_request_carries_its_correlation_id(self) -> None:
        with pytest.raises(UnsupportedVersion) as info:
            messages.decode(patched(messages.encode(ATTACH), 6, "<H", 2))
        error = info.value
        assert (error.schema_id, error.template_id, error.version) == (901, 1, 2)
        assert error.correlation_id == 1001

    def test_newer_attach_request_without_the_bytes_has_no_correlation_id(self) -> None:
        with pytest.raises(UnsupportedVersion) as info:
            messages.decode(patched(messages.encode(ATTACH), 6, "<H", 7)[:15])
        assert info.value.correlation_id is None

    def test_other_newer_messages_are_unsupported_without_correlation(self) -> None:
        with pytest.raises(UnsupportedVersion) as info:
            messages.decode(patched(messages.encode(REVOKED), 6, "<H", 2))
        assert info.value.correlation_id is None
        assert (info.value.schema_id, info.value.template_id) == (901, 7)

    def test_version_zero_is_read_as_version_one(self) -> None:
        assert messages.decode(patched(messages.encode(ANNOUNCE), 6, "<H", 0)) == ANNOUNCE


class TestDispatch:
    @pytest.mark.parametrize(
        ("schema_id", "template_id"),
        [(902, 2), (910, 1), (901, 9), (901, 0), (900, 14), (900, 50), (900, 51)],
    )
    def test_unknown_or_headerless_pairs_are_unknown_messages(
        self, schema_id: int, template_id: int
    ) -> None:
        with pytest.raises(UnknownMessage) as info:
            messages.decode(HEADER.pack(27, template_id, schema_id, 1) + bytes(64))
        assert (info.value.schema_id, info.value.template_id) == (schema_id, template_id)

    def test_template_one_means_different_messages_in_each_schema(self) -> None:
        assert type(messages.decode(messages.encode(ATTACH))) is ShmAttachRequest
        assert type(messages.decode(messages.encode(ANNOUNCE))) is ShmPoolAnnounce

    def test_short_buffers_are_truncated(self) -> None:
        for length in range(8):
            with pytest.raises(TruncatedMessage):
                messages.decode(bytes(length))

    def test_unknown_wins_over_version_and_length(self) -> None:
        with pytest.raises(UnknownMessage):
            messages.decode(HEADER.pack(0, 99, 901, 9))

    def test_wide_memoryviews_are_read_as_bytes(self) -> None:
        data = messages.encode(
            ShmLeaseKeepalive(
                lease_id=5, stream_id=1, client_id=7, role=Role.PRODUCER, client_timestamp_ns=8
            )
        )
        padded = bytearray(data + bytes(-len(data) % 8))
        decoded = messages.decode(memoryview(padded).cast("Q"))
        assert isinstance(decoded, ShmLeaseKeepalive)
        assert decoded.client_timestamp_ns == 8

    def test_non_buffers_raise_decode_error(self) -> None:
        with pytest.raises(DecodeError):
            messages.decode("not bytes")  # type: ignore[arg-type]


class TestVarData:
    def response(self, error: str = "", uri: str = "") -> bytes:
        return messages.encode(
            ShmAttachResponse(
                correlation_id=1,
                code=ResponseCode.REJECTED,
                header_region_uri=uri,
                error_message=error,
            )
        )

    def test_a_length_past_the_end_is_truncation(self) -> None:
        data = self.response("abc")
        with pytest.raises(TruncatedMessage) as info:
            messages.decode(patched(data, len(data) - 7, "<I", 4))
        assert info.value.offset == len(data) - 7

    def test_a_length_beyond_the_sbe_maximum_is_invalid(self) -> None:
        data = self.response("abc")
        with pytest.raises(InvalidValue, match="maximum"):
            messages.decode(patched(data, len(data) - 7, "<I", 1073741825))

    def test_a_group_count_past_the_end_is_truncation(self) -> None:
        empty = messages.encode(replace(ANNOUNCE, payload_pools=(), header_region_uri=""))
        with pytest.raises(TruncatedMessage) as info:
            messages.decode(patched(empty, 8 + 35 + 2, "<H", 2))
        assert info.value.offset == 8 + 35 + 4

    def test_non_ascii_text_is_invalid_where_it_sits(self) -> None:
        data = bytearray(self.response("abc"))
        data[-2] = 0xE9
        with pytest.raises(InvalidValue) as info:
            messages.decode(bytes(data))
        assert info.value.offset == len(data) - 2

    def test_uris_over_4096_bytes_are_refused_both_ways(self) -> None:
        messages.decode(self.response(uri="u" * 4096))
        with pytest.raises(EncodeError, match="4096"):
            self.response(uri="u" * 4097)
        ok = self.response(uri="u" * 4096)
        grown = patched(ok, 8 + 54 + 4, "<I", 4097)[: 8 + 54 + 8] + b"u" * 4097 + ok[-4:]
        with pytest.raises(InvalidValue, match="4096"):
            messages.decode(grown)

    def test_error_messages_are_truncated_on_encode_and_bounded_on_decode(self) -> None:
        decoded = messages.decode(self.response("e" * 5000))
        assert isinstance(decoded, ShmAttachResponse)
        assert decoded.error_message == "e" * 1024
        ok = self.response("e" * 1024)
        grown = patched(ok, len(ok) - 1028, "<I", 1025) + b"e"
        with pytest.raises(InvalidValue, match="1024"):
            messages.decode(grown)

    def test_encoding_non_ascii_text_fails(self) -> None:
        with pytest.raises(EncodeError, match="ASCII"):
            self.response("café")

    def test_attributes_carry_raw_bytes(self) -> None:
        meta = DataSourceMeta(
            stream_id=1,
            meta_version=2,
            timestamp_ns=3,
            attributes=(
                Attribute("k", "application/octet-stream", b"\x00\xff\x80"),
                Attribute(key="", format="", value=b""),
            ),
        )
        data = messages.encode(meta)
        assert data[8 + 16 : 8 + 16 + 4] == bytes.fromhex("0000 0200")
        assert messages.decode(data) == meta


class TestEncodeValues:
    def test_out_of_range_integers_name_the_field(self) -> None:
        with pytest.raises(EncodeError, match=r"ShmAttachRequest\.stream_id"):
            messages.encode(
                ShmAttachRequest(
                    correlation_id=1,
                    stream_id=2**32,
                    client_id=1,
                    role=Role.PRODUCER,
                    expected_layout_version=1,
                )
            )
        with pytest.raises(EncodeError, match="client_id"):
            messages.encode(
                ShmAttachRequest(
                    correlation_id=1,
                    stream_id=1,
                    client_id=-1,
                    role=Role.PRODUCER,
                    expected_layout_version=1,
                )
            )
        with pytest.raises(EncodeError, match="pool_nslots"):
            messages.encode(
                ShmAttachResponse(
                    correlation_id=1,
                    code=ResponseCode.OK,
                    payload_pools=(PayloadPool(1, 2**40, 64, URI),),
                )
            )

    def test_required_fields_refuse_none_and_optionals_refuse_their_null(self) -> None:
        with pytest.raises(EncodeError, match="required"):
            messages.encode(
                ShmLeaseKeepalive(
                    lease_id=None,  # type: ignore[arg-type]
                    stream_id=1,
                    client_id=1,
                    role=Role.PRODUCER,
                    client_timestamp_ns=0,
                )
            )
        with pytest.raises(EncodeError, match="null"):
            messages.encode(
                ShmAttachResponse(correlation_id=1, code=ResponseCode.OK, lease_id=2**64 - 1)
            )

    def test_wrong_types_are_encode_errors(self) -> None:
        with pytest.raises(EncodeError):
            messages.encode(
                ShmAttachResponse(correlation_id=1, code=ResponseCode.OK, header_region_uri=b"x")  # type: ignore[arg-type]
            )
        with pytest.raises(EncodeError):
            messages.encode(
                ShmAttachResponse(correlation_id=1, code=ResponseCode.OK, payload_pools=("x",))  # type: ignore[arg-type]
            )
        with pytest.raises(EncodeError):
            messages.encode(object())  # type: ignore[arg-type]

    def test_headerless_structures_need_encode_body(self) -> None:
        superblock = ShmRegionSuperblock(
            magic=1,
            layout_version=1,
            epoch=1,
            stream_id=1,
            region_type=messages.RegionType.PAYLOAD_POOL,
            pool_id=1,
            nslots=8,
            slot_bytes=64,
            stride_bytes=64,
            pid=1,
            start_timestamp_ns=1,
            activity_timestamp_ns=1,
        )
        with pytest.raises(EncodeError, match="encode_body"):
            messages.encode(superblock)
        assert len(messages.encode_body(superblock)) == 64


class TestTraceId:
    def frame(self, trace_id: int | None) -> FrameDescriptor:
        return FrameDescriptor(
            stream_id=1, epoch=2, seq=3, timestamp_ns=4, meta_version=5, trace_id=trace_id
        )

    def test_none_is_written_as_zero(self) -> None:
        assert messages.encode(self.frame(None))[-8:] == bytes(8)

    @pytest.mark.parametrize("raw", [0, 2**64 - 1])
    def test_both_nulls_read_as_none(self, raw: int) -> None:
        data = patched(messages.encode(self.frame(None)), 8 + 32, "<Q", raw)
        decoded = messages.decode(data)
        assert isinstance(decoded, FrameDescriptor)
        assert decoded.trace_id is None

    def test_other_optionals_use_the_type_null(self) -> None:
        data = messages.encode(FrameDescriptor(stream_id=1, epoch=2, seq=3, trace_id=9))
        assert data[8 + 20 : 8 + 32] == b"\xff" * 12
        assert messages.decode(data) == FrameDescriptor(stream_id=1, epoch=2, seq=3, trace_id=9)
