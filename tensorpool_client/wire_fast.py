"""Per-frame wire messages without per-frame objects: FrameDescriptor and QosConsumer.

``messages`` is the reference codec (dataclasses, full validation) and costs microseconds per
message; a stream of 150,000 frames a second cannot afford that on each side. Here a producer
keeps one pre-encoded FrameDescriptor and patches ``seq``/``timestampNs``/``metaVersion`` in
place, and a consumer reads the few fields it needs with one ``struct`` call, applying the same
acceptance rules as ``messages.decode`` (schema, template, version <= 1, block length >= the
schema's, enough bytes). tests/client/test_wire_fast.py checks byte equality with the
reference codec.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from messages import FrameDescriptor, Mode, QosConsumer, encode
from shm.slot_layout import WIRE_SCHEMA_ID, WIRE_SCHEMA_VERSION

HEADER: Final = struct.Struct("<HHHH")
DESCRIPTOR_TEMPLATE: Final = 4
DESCRIPTOR_BLOCK: Final = 40
QOS_CONSUMER_TEMPLATE: Final = 5
QOS_CONSUMER_BLOCK: Final = 41
U64_NULL: Final = 0xFFFFFFFFFFFFFFFF

_DESCRIPTOR: Final = struct.Struct("<HHHHIQQQIQ")
"""Message header + FrameDescriptor block: what a consumer unpacks in one call."""
_DESCRIPTOR_PATCH_TRACE: Final = struct.Struct("<QQIQ")
"""seq, timestampNs, metaVersion and traceId: the block's last 28 bytes."""
_DESCRIPTOR_PATCH_AT: Final = HEADER.size + 12
_QOS_CONSUMER: Final = struct.Struct("<HHHHIIQQQQB")
_QOS_PATCH: Final = struct.Struct("<QQQQ")
_QOS_PATCH_AT: Final = HEADER.size + 8


class DescriptorEncoder:
    """One FrameDescriptor buffer of a producer, patched in place for each frame."""

    def __init__(self, stream_id: int, epoch: int) -> None:
        self.buffer = bytearray(encode(FrameDescriptor(
            stream_id=stream_id, epoch=epoch, seq=0, timestamp_ns=None, meta_version=None,
            trace_id=None)))

    def patch(self, seq: int, timestamp_ns: int, meta_version: int) -> bytearray:
        """The buffer, now carrying this frame's fields (valid until the next patch)."""
        return self.patch_traced(seq, timestamp_ns, meta_version, 0)

    def patch_traced(self, seq: int, timestamp_ns: int, meta_version: int,
                     trace_id: int) -> bytearray:
        """Like ``patch``, with ``traceId`` (0: none, as the codec encodes a null one; a relay
        passes its source's on)."""
        _DESCRIPTOR_PATCH_TRACE.pack_into(self.buffer, _DESCRIPTOR_PATCH_AT, seq, timestamp_ns,
                                          meta_version, trace_id)
        return self.buffer


def decode_descriptor(buf: Any) -> tuple[int, int, int] | None:
    """``(stream_id, epoch, seq)`` of a FrameDescriptor, or None for anything else.

    ``buf`` is any sized buffer (bytes, or an Aeron BufferView inside its handler).
    """
    fields = decode_descriptor_traced(buf)
    return None if fields is None else fields[:3]


def decode_descriptor_traced(buf: Any) -> tuple[int, int, int, int] | None:
    """``(stream_id, epoch, seq, trace_id)`` of a FrameDescriptor (trace as on the wire: 0
    and 2^64-1 both mean none)."""
    if len(buf) < _DESCRIPTOR.size:
        return None
    block, template, schema, version, stream_id, epoch, seq, _ts, _meta, trace = (
        _DESCRIPTOR.unpack_from(buf))
    if (template != DESCRIPTOR_TEMPLATE or schema != WIRE_SCHEMA_ID or version > WIRE_SCHEMA_VERSION
            or block < DESCRIPTOR_BLOCK or len(buf) < HEADER.size + block):
        return None
    return stream_id, epoch, seq, trace


class QosConsumerEncoder:
    """One QosConsumer buffer of a consumer, patched in place for each report."""

    def __init__(self, stream_id: int, consumer_id: int) -> None:
        self.buffer = bytearray(encode(QosConsumer(
            stream_id=stream_id, consumer_id=consumer_id, epoch=0, last_seq_seen=0,
            drops_gap=0, drops_late=0, mode=Mode.STREAM)))

    def patch(self, epoch: int, last_seq_seen: int, drops_gap: int, drops_late: int,
              ) -> bytearray:
        """The buffer, now carrying this report (valid until the next patch)."""
        _QOS_PATCH.pack_into(self.buffer, _QOS_PATCH_AT, epoch, last_seq_seen, drops_gap,
                             drops_late)
        return self.buffer


def decode_qos_consumer(buf: Any) -> tuple[int, int, int, int] | None:
    """``(stream_id, consumer_id, epoch, last_seq_seen)`` of a QosConsumer, else None."""
    size = len(buf)
    if size < _QOS_CONSUMER.size:
        return None
    block, template, schema, version, stream_id, consumer_id, epoch, last_seen, *_rest = (
        _QOS_CONSUMER.unpack_from(buf))
    if (template != QOS_CONSUMER_TEMPLATE or schema != WIRE_SCHEMA_ID
            or version > WIRE_SCHEMA_VERSION or block < QOS_CONSUMER_BLOCK
            or size < HEADER.size + block):
        return None
    return stream_id, consumer_id, epoch, last_seen
