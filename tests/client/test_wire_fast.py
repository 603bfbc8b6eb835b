"""The per-frame codecs of the client produce and accept exactly what the reference codec does."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import messages
from messages import DecodeError, FrameDescriptor, Mode, QosConsumer
from tensorpool_client.wire_fast import (
    U64_NULL,
    DescriptorEncoder,
    QosConsumerEncoder,
    decode_descriptor,
    decode_descriptor_traced,
    decode_qos_consumer,
)

U32 = st.integers(0, 0xFFFFFFFF)
U64 = st.integers(0, U64_NULL - 1)


@given(stream_id=U32, epoch=U64, frames=st.lists(st.tuples(U64, U64, st.integers(0, 2**32 - 2)),
                                                  min_size=1, max_size=5))
def test_a_patched_descriptor_is_byte_identical_to_the_reference_encoding(
    stream_id: int, epoch: int, frames: list[tuple[int, int, int]]
) -> None:
    encoder = DescriptorEncoder(stream_id, epoch)
    for seq, timestamp_ns, meta_version in frames:
        reference = messages.encode(FrameDescriptor(
            stream_id=stream_id, epoch=epoch, seq=seq, timestamp_ns=timestamp_ns,
            meta_version=meta_version, trace_id=None))
        assert bytes(encoder.patch(seq, timestamp_ns, meta_version)) == reference
        assert decode_descriptor(reference) == (stream_id, epoch, seq)


@given(stream_id=U32, epoch=U64, seq=U64, trace_id=st.integers(1, U64_NULL - 1))
def test_a_descriptor_patched_with_a_trace_is_byte_identical_to_the_reference_encoding(
    stream_id: int, epoch: int, seq: int, trace_id: int
) -> None:
    encoder = DescriptorEncoder(stream_id, epoch)
    reference = messages.encode(FrameDescriptor(
        stream_id=stream_id, epoch=epoch, seq=seq, timestamp_ns=5, meta_version=6,
        trace_id=trace_id))
    assert bytes(encoder.patch_traced(seq, 5, 6, trace_id)) == reference
    assert decode_descriptor_traced(reference) == (stream_id, epoch, seq, trace_id)
    assert bytes(encoder.patch(seq, 5, 6))[40:48] == bytes(8)  # and cleared again


@given(stream_id=U32, consumer_id=U32, reports=st.lists(st.tuples(U64, U64, U64, U64),
                                                        min_size=1, max_size=5))
def test_a_patched_qos_report_is_byte_identical_to_the_reference_encoding(
    stream_id: int, consumer_id: int, reports: list[tuple[int, int, int, int]]
) -> None:
    encoder = QosConsumerEncoder(stream_id, consumer_id)
    for epoch, seen, gap, late in reports:
        reference = messages.encode(QosConsumer(
            stream_id=stream_id, consumer_id=consumer_id, epoch=epoch, last_seq_seen=seen,
            drops_gap=gap, drops_late=late, mode=Mode.STREAM))
        assert bytes(encoder.patch(epoch, seen, gap, late)) == reference
        assert decode_qos_consumer(reference) == (stream_id, consumer_id, epoch, seen)


def _descriptor(**header: int) -> bytes:
    data = bytearray(messages.encode(FrameDescriptor(
        stream_id=7, epoch=9, seq=11, timestamp_ns=None, meta_version=None, trace_id=None)))
    fields = {"block": 40, "template": 4, "schema": 900, "version": 1, **header}
    struct.pack_into("<HHHH", data, 0, fields["block"], fields["template"], fields["schema"],
                     fields["version"])
    return bytes(data)


@pytest.mark.parametrize("data", [
    _descriptor(template=5),
    _descriptor(schema=901),
    _descriptor(version=2),
    _descriptor(block=39),
    _descriptor(block=48),          # claims more root block than the buffer holds
    _descriptor()[:47],             # truncated
    b"",
])
def test_the_fast_decoder_refuses_what_the_reference_decoder_refuses(data: bytes) -> None:
    assert decode_descriptor(data) is None
    try:
        decoded = messages.decode(data)
    except DecodeError:
        return
    assert not isinstance(decoded, FrameDescriptor)


def test_a_longer_block_from_a_newer_producer_is_accepted_by_both() -> None:
    data = _descriptor(block=44) + b"\0" * 4
    assert decode_descriptor(data) == (7, 9, 11)
    assert isinstance(messages.decode(data), FrameDescriptor)
