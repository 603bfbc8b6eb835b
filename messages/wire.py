"""Wire schema 900 (wire-protocol.md, shm-layout.md): enums, messages and SHM structures.

``ResponseCode`` and ``PayloadPool`` are the schema-901 classes: the same values and the same
entry layout, so one class serves both schemas.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated, ClassVar

from messages.control import PayloadPool, ResponseCode
from messages.sbe import (
    I64,
    INT16,
    INT32,
    U8,
    U16,
    U32,
    U64,
    UINT8,
    Array,
    Ascii,
    Blob,
    Const,
    ErrorText,
    Group,
    GroupEntry,
    OptU32,
    OptU64,
    Pad,
    Primitive,
    SbeMessage,
    Uri,
    group_entry,
    message,
)

SCHEMA_ID = 900
MAX_DIMS = 8
# FrameDescriptor.traceId: the producers write 0 for "no trace", the generated codecs write
# 2^64-1; both read as None and None is written as 0 (ambiguity A-14).
TRACE_ID = Primitive("Q", nulls=(0, 0xFFFF_FFFF_FFFF_FFFF))
DIMS = Array(INT32, MAX_DIMS)


class Bool(IntEnum):
    FALSE = 0
    TRUE = 1


class Mode(IntEnum):
    STREAM = 1
    RATE_LIMITED = 2


class FrameProgressState(IntEnum):
    UNKNOWN = 0
    STARTED = 1
    PROGRESS = 2
    COMPLETE = 3


class ProgressUnit(IntEnum):
    NONE = 0
    ROWS = 1
    COLUMNS = 2


class ClockDomain(IntEnum):
    MONOTONIC = 1
    REALTIME_SYNCED = 2


class RegionType(IntEnum):
    HEADER_RING = 1
    PAYLOAD_POOL = 2


class Dtype(IntEnum):
    UNKNOWN = 0
    UINT8 = 1
    INT8 = 2
    UINT16 = 3
    INT16 = 4
    UINT32 = 5
    INT32 = 6
    UINT64 = 7
    INT64 = 8
    FLOAT32 = 9
    FLOAT64 = 10
    BOOLEAN = 11
    BYTES = 13
    BIT = 14


class MajorOrder(IntEnum):
    UNKNOWN = 0
    ROW = 1
    COLUMN = 2


@message(schema_id=SCHEMA_ID, template_id=1, block_length=35)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmPoolAnnounce(SbeMessage):
    stream_id: U32
    producer_id: U32
    epoch: U64
    announce_timestamp_ns: U64
    announce_clock_domain: Annotated[ClockDomain, UINT8]
    layout_version: U32
    header_nslots: U32
    header_slot_bytes: U16
    payload_pools: Annotated[tuple[PayloadPool, ...], Group()] = ()
    header_region_uri: Uri = ""


@message(schema_id=SCHEMA_ID, template_id=2, block_length=39)
@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerHello(SbeMessage):
    stream_id: U32
    consumer_id: U32
    supports_shm: Annotated[Bool, UINT8]
    supports_progress: Annotated[Bool, UINT8]
    mode: Annotated[Mode, UINT8]
    max_rate_hz: U32
    expected_layout_version: U32
    progress_interval_us: OptU32 = None
    progress_bytes_delta: OptU32 = None
    progress_major_delta_units: OptU32 = None
    descriptor_stream_id: U32 = 0
    control_stream_id: U32 = 0
    descriptor_channel: Uri = ""
    control_channel: Uri = ""


@message(schema_id=SCHEMA_ID, template_id=3, block_length=18)
@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerConfig(SbeMessage):
    stream_id: U32
    consumer_id: U32
    use_shm: Annotated[Bool, UINT8]
    mode: Annotated[Mode, UINT8]
    descriptor_stream_id: U32 = 0
    control_stream_id: U32 = 0
    payload_fallback_uri: Uri = ""
    descriptor_channel: Uri = ""
    control_channel: Uri = ""


@message(schema_id=SCHEMA_ID, template_id=4, block_length=40)
@dataclass(frozen=True, slots=True, kw_only=True)
class FrameDescriptor(SbeMessage):
    stream_id: U32
    epoch: U64
    seq: U64
    timestamp_ns: OptU64 = None
    meta_version: OptU32 = None
    trace_id: Annotated[int | None, TRACE_ID] = None


@message(schema_id=SCHEMA_ID, template_id=5, block_length=41)
@dataclass(frozen=True, slots=True, kw_only=True)
class QosConsumer(SbeMessage):
    stream_id: U32
    consumer_id: U32
    epoch: U64
    last_seq_seen: U64
    drops_gap: U64
    drops_late: U64
    mode: Annotated[Mode, UINT8]


@message(schema_id=SCHEMA_ID, template_id=6, block_length=28)
@dataclass(frozen=True, slots=True, kw_only=True)
class QosProducer(SbeMessage):
    stream_id: U32
    producer_id: U32
    epoch: U64
    current_seq: U64
    watermark: OptU32 = None


@message(schema_id=SCHEMA_ID, template_id=7, block_length=20)
@dataclass(frozen=True, slots=True, kw_only=True)
class DataSourceAnnounce(SbeMessage):
    stream_id: U32
    producer_id: U32
    epoch: U64
    meta_version: U32
    name: Ascii = ""
    summary: Ascii = ""


@group_entry(block_length=0)
@dataclass(frozen=True, slots=True)
class Attribute(GroupEntry):
    """One metadata attribute; ``format`` is e.g. ``text/plain`` or ``sbe:900.4``."""

    key: Ascii
    format: Ascii
    value: Blob


@message(schema_id=SCHEMA_ID, template_id=8, block_length=16)
@dataclass(frozen=True, slots=True, kw_only=True)
class DataSourceMeta(SbeMessage):
    stream_id: U32
    meta_version: U32
    timestamp_ns: U64
    attributes: Annotated[tuple[Attribute, ...], Group()] = ()


@message(schema_id=SCHEMA_ID, template_id=9, block_length=12)
@dataclass(frozen=True, slots=True, kw_only=True)
class ControlResponse(SbeMessage):
    correlation_id: I64
    code: Annotated[ResponseCode, INT32]
    error_message: ErrorText = ""


@message(schema_id=SCHEMA_ID, template_id=10, block_length=28)
@dataclass(frozen=True, slots=True, kw_only=True)
class MetaBlobAnnounce(SbeMessage):
    stream_id: U32
    meta_version: U32
    blob_type: U32
    total_len: U64
    checksum: U64


@message(schema_id=SCHEMA_ID, template_id=11, block_length=29)
@dataclass(frozen=True, slots=True, kw_only=True)
class FrameProgress(SbeMessage):
    stream_id: U32
    epoch: U64
    seq: U64
    payload_bytes_filled: U64
    state: Annotated[FrameProgressState, UINT8]


@message(schema_id=SCHEMA_ID, template_id=12, block_length=16)
@dataclass(frozen=True, slots=True, kw_only=True)
class MetaBlobChunk(SbeMessage):
    stream_id: U32
    meta_version: U32
    chunk_offset: U64
    bytes: Blob = b""


@message(schema_id=SCHEMA_ID, template_id=13, block_length=16)
@dataclass(frozen=True, slots=True, kw_only=True)
class MetaBlobComplete(SbeMessage):
    stream_id: U32
    meta_version: U32
    checksum: U64


# SHM-resident structures (shm-layout.md). The superblock and the slot header live without a
# message header (``encode_body`` / ``decode_body``); the tensor header carries one because it
# is embedded in the slot's ``header_bytes``.


@message(schema_id=SCHEMA_ID, template_id=50, block_length=64, headerless=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmRegionSuperblock(SbeMessage):
    magic: U64
    layout_version: U32
    epoch: U64
    stream_id: U32
    region_type: Annotated[RegionType, INT16]
    pool_id: U16
    nslots: U32
    slot_bytes: U32
    stride_bytes: U32
    pid: U64
    start_timestamp_ns: U64
    activity_timestamp_ns: U64


@message(schema_id=SCHEMA_ID, template_id=51, block_length=60, headerless=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class SlotHeader(SbeMessage):
    """``header_bytes`` holds an encoded ``TensorHeader`` (192 bytes in a valid slot)."""

    seq_commit: U64
    values_len_bytes: U32
    payload_slot: U32
    pool_id: U16
    payload_offset: U32
    timestamp_ns: U64
    meta_version: U32
    pad: ClassVar[Annotated[None, Pad(26)]]
    header_bytes: Blob = b""


@message(schema_id=SCHEMA_ID, template_id=52, block_length=184)
@dataclass(frozen=True, slots=True, kw_only=True)
class TensorHeader(SbeMessage):
    """``dims``/``strides`` always hold 8 entries; those at index >= ``ndims`` are 0."""

    dtype: Annotated[Dtype, INT16]
    major_order: Annotated[MajorOrder, INT16]
    ndims: U8
    max_dims: ClassVar[Annotated[int, Const(MAX_DIMS)]]
    pad_align: ClassVar[Annotated[None, Pad(1)]]
    progress_unit: Annotated[ProgressUnit, UINT8]
    progress_stride_bytes: U32
    dims: Annotated[tuple[int, ...], DIMS]
    strides: Annotated[tuple[int, ...], DIMS]
    pad: ClassVar[Annotated[None, Pad(109)]]


__all__ = [
    "MAX_DIMS",
    "SCHEMA_ID",
    "Attribute",
    "Bool",
    "ClockDomain",
    "ConsumerConfig",
    "ConsumerHello",
    "ControlResponse",
    "DataSourceAnnounce",
    "DataSourceMeta",
    "Dtype",
    "FrameDescriptor",
    "FrameProgress",
    "FrameProgressState",
    "MajorOrder",
    "MetaBlobAnnounce",
    "MetaBlobChunk",
    "MetaBlobComplete",
    "Mode",
    "PayloadPool",
    "ProgressUnit",
    "QosConsumer",
    "QosProducer",
    "RegionType",
    "ResponseCode",
    "ShmPoolAnnounce",
    "ShmRegionSuperblock",
    "SlotHeader",
    "TensorHeader",
]
