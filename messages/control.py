"""Driver control schema 901 (driver-protocol.md): its enums and its eight messages.

Field order is the wire order; the engine computes offsets from it and checks each block
against the spec's block length at import.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated

from messages.sbe import (
    I64,
    INT32,
    U16,
    U32,
    U64,
    UINT8,
    Ascii,
    ErrorText,
    Group,
    GroupEntry,
    OptU16,
    OptU32,
    OptU64,
    SbeMessage,
    Uri,
    group_entry,
    message,
)

SCHEMA_ID = 901


class Role(IntEnum):
    PRODUCER = 1
    CONSUMER = 2


class PublishMode(IntEnum):
    REQUIRE_EXISTING = 1
    EXISTING_OR_CREATE = 2


class HugepagesPolicy(IntEnum):
    UNSPECIFIED = 0
    STANDARD = 1
    HUGEPAGES = 2


class ResponseCode(IntEnum):
    """Shared by schema 901 and schema 900 (same values, int32)."""

    OK = 0
    UNSUPPORTED = 1
    INVALID_PARAMS = 2
    REJECTED = 3
    INTERNAL_ERROR = 4


class LeaseRevokeReason(IntEnum):
    DETACHED = 1
    EXPIRED = 2
    REVOKED = 3


class ShutdownReason(IntEnum):
    NORMAL = 0
    ADMIN = 1
    ERROR = 2


@group_entry(block_length=10)
@dataclass(frozen=True, slots=True)
class PayloadPool(GroupEntry):
    """One payload pool of a stream (``payloadPools`` of ShmAttachResponse and ShmPoolAnnounce)."""

    pool_id: U16
    pool_nslots: U32
    stride_bytes: U32
    region_uri: Uri


@message(schema_id=SCHEMA_ID, template_id=1, block_length=27, probe_correlation=True)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmAttachRequest(SbeMessage):
    """Role, publish mode and hugepages policy are lenient: the driver rejects bad values."""

    correlation_id: I64
    stream_id: U32
    client_id: U32
    role: Annotated[Role | int, UINT8]
    expected_layout_version: U32
    publish_mode: Annotated[PublishMode | int | None, UINT8] = None
    require_hugepages: Annotated[HugepagesPolicy | int, UINT8] = HugepagesPolicy.UNSPECIFIED
    desired_node_id: OptU32 = None


@message(schema_id=SCHEMA_ID, template_id=2, block_length=54)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmAttachResponse(SbeMessage):
    correlation_id: I64
    code: Annotated[ResponseCode, INT32]
    lease_id: OptU64 = None
    lease_expiry_timestamp_ns: OptU64 = None
    stream_id: OptU32 = None
    epoch: OptU64 = None
    layout_version: OptU32 = None
    header_nslots: OptU32 = None
    header_slot_bytes: OptU16 = None
    node_id: OptU32 = None
    payload_pools: Annotated[tuple[PayloadPool, ...], Group()] = ()
    header_region_uri: Uri = ""
    error_message: ErrorText = ""


@message(schema_id=SCHEMA_ID, template_id=3, block_length=25)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmDetachRequest(SbeMessage):
    correlation_id: I64
    lease_id: U64
    stream_id: U32
    client_id: U32
    role: Annotated[Role | int, UINT8]


@message(schema_id=SCHEMA_ID, template_id=4, block_length=12)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmDetachResponse(SbeMessage):
    correlation_id: I64
    code: Annotated[ResponseCode, INT32]
    error_message: ErrorText = ""


@message(schema_id=SCHEMA_ID, template_id=5, block_length=25)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmLeaseKeepalive(SbeMessage):
    lease_id: U64
    stream_id: U32
    client_id: U32
    role: Annotated[Role | int, UINT8]
    client_timestamp_ns: U64


@message(schema_id=SCHEMA_ID, template_id=6, block_length=9)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmDriverShutdown(SbeMessage):
    timestamp_ns: U64
    reason: Annotated[ShutdownReason, UINT8]
    error_message: ErrorText = ""


@message(schema_id=SCHEMA_ID, template_id=7, block_length=26)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmLeaseRevoked(SbeMessage):
    timestamp_ns: U64
    lease_id: U64
    stream_id: U32
    client_id: U32
    role: Annotated[Role, UINT8]
    reason: Annotated[LeaseRevokeReason, UINT8]
    error_message: ErrorText = ""


@message(schema_id=SCHEMA_ID, template_id=8, block_length=9)
@dataclass(frozen=True, slots=True, kw_only=True)
class ShmDriverShutdownRequest(SbeMessage):
    correlation_id: I64
    reason: Annotated[ShutdownReason, UINT8]
    token: Ascii = ""
    error_message: ErrorText = ""
