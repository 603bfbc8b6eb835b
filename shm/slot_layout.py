"""Byte layout of one 256-byte header slot and its embedded TensorHeader (shm-layout.md §2).

Two views of the same bytes: a ``struct.Struct`` for the 248 bytes after ``seqCommit`` (the
writer overwrites them in one copy, the reader snapshots them in one copy), and a numpy
structured dtype for zero-copy inspection of a whole ring.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import numpy as np

from shm.superblock import HEADER_SLOT_BYTES, MAX_DIMS

SEQ_COMMIT_BYTES: Final = 8
HEADER_BYTES_LENGTH: Final = 192
TENSOR_BLOCK_LENGTH: Final = 184
TENSOR_TEMPLATE_ID: Final = 52
WIRE_SCHEMA_ID: Final = 900
WIRE_SCHEMA_VERSION: Final = 1

SLOT_BODY: Final = struct.Struct("<IIHIQI26sIHHHHhhBBBI8i8i109s")
"""Slot bytes 8..255: everything but the seqlock word."""
assert SEQ_COMMIT_BYTES + SLOT_BODY.size == HEADER_SLOT_BYTES

KNOWN_DTYPES: Final = frozenset({*range(12), 13, 14})
KNOWN_MAJOR_ORDERS: Final = frozenset({0, 1, 2})
KNOWN_PROGRESS_UNITS: Final = frozenset({0, 1, 2})

SLOT_DTYPE: Final = np.dtype(
    {
        "names": [
            "seq_commit", "values_len_bytes", "payload_slot", "pool_id", "payload_offset",
            "timestamp_ns", "meta_version", "pad", "header_bytes_length", "block_length",
            "template_id", "schema_id", "version", "dtype", "major_order", "ndims",
            "pad_align", "progress_unit", "progress_stride_bytes", "dims", "strides",
            "tensor_pad",
        ],
        "formats": [
            "<u8", "<u4", "<u4", "<u2", "<u4", "<u8", "<u4", ("u1", 26), "<u4", "<u2", "<u2",
            "<u2", "<u2", "<i2", "<i2", "u1", "u1", "u1", "<u4", ("<i4", 8), ("<i4", 8),
            ("u1", 109),
        ],
        "offsets": [0, 8, 12, 16, 18, 22, 30, 34, 60, 64, 66, 68, 70, 72, 74, 76, 77, 78, 79,
                    83, 115, 147],
        "itemsize": HEADER_SLOT_BYTES,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorDescriptor:
    """The TensorHeader fields a frame carries; ``strides`` empty or zeros = contiguous."""

    dtype: int
    major_order: int
    dims: tuple[int, ...]
    strides: tuple[int, ...] = ()
    progress_unit: int = 0
    progress_stride_bytes: int = 0

    def __post_init__(self) -> None:
        if not 1 <= len(self.dims) <= MAX_DIMS:
            raise ValueError(f"ndims must be 1..{MAX_DIMS}, got {len(self.dims)}")
        if not self.strides:
            object.__setattr__(self, "strides", (0,) * len(self.dims))  # 0 = contiguous
        if len(self.strides) != len(self.dims):
            raise ValueError("strides must be empty or have one entry per dimension")


@dataclass(frozen=True, slots=True, kw_only=True)
class SlotFields:
    """A decoded slot body (everything after ``seqCommit``), before validation."""

    values_len_bytes: int
    payload_slot: int
    pool_id: int
    payload_offset: int
    timestamp_ns: int
    meta_version: int
    header_bytes_length: int
    block_length: int
    template_id: int
    schema_id: int
    version: int
    tensor: TensorDescriptor | None
    """None when ndims is outside 1..8 (the frame is then invalid)."""


def pack_slot_body(
    *, values_len_bytes: int, payload_slot: int, pool_id: int, timestamp_ns: int,
    meta_version: int, tensor: TensorDescriptor,
) -> bytes:
    """The 248 bytes a writer copies after the in-progress store (full overwrite, zero pads)."""
    ndims = len(tensor.dims)
    dims = (*tensor.dims, *([0] * (MAX_DIMS - ndims)))
    strides = (*tensor.strides, *([0] * (MAX_DIMS - ndims)))
    return SLOT_BODY.pack(
        values_len_bytes, payload_slot, pool_id, 0, timestamp_ns, meta_version, b"",
        HEADER_BYTES_LENGTH, TENSOR_BLOCK_LENGTH, TENSOR_TEMPLATE_ID, WIRE_SCHEMA_ID,
        WIRE_SCHEMA_VERSION, tensor.dtype, tensor.major_order, ndims, 0, tensor.progress_unit,
        tensor.progress_stride_bytes, *dims, *strides, b"",
    )


def unpack_slot_body(body: bytes | memoryview) -> SlotFields:
    """Decode the 248 bytes after ``seqCommit`` into plain values (nothing refers to ``body``)."""
    f = SLOT_BODY.unpack(body)
    ndims = f[14]
    tensor = None
    if 1 <= ndims <= MAX_DIMS:
        tensor = TensorDescriptor(
            dtype=f[12], major_order=f[13], progress_unit=f[16], progress_stride_bytes=f[17],
            dims=tuple(f[18:18 + ndims]), strides=tuple(f[26:26 + ndims]),
        )
    return SlotFields(
        values_len_bytes=f[0], payload_slot=f[1], pool_id=f[2], payload_offset=f[3],
        timestamp_ns=f[4], meta_version=f[5], header_bytes_length=f[7], block_length=f[8],
        template_id=f[9], schema_id=f[10], version=f[11], tensor=tensor,
    )


def invalid_reason(fields: SlotFields, index: int, pool_nslots: int, stride: int) -> str | None:
    """Reader step 4: why a copied slot cannot be trusted, or None when it can."""
    checks = (
        (fields.header_bytes_length == HEADER_BYTES_LENGTH, "headerBytes length"),
        (fields.block_length == TENSOR_BLOCK_LENGTH, "embedded blockLength"),
        (fields.template_id == TENSOR_TEMPLATE_ID, "embedded templateId"),
        (fields.schema_id == WIRE_SCHEMA_ID, "embedded schemaId"),
        (fields.version == WIRE_SCHEMA_VERSION, "embedded version"),
        (fields.tensor is not None, "ndims"),
        (fields.payload_offset == 0, "payloadOffset"),
        (fields.payload_slot == index and index < pool_nslots, "payloadSlot"),
        (fields.values_len_bytes <= stride, "valuesLenBytes"),
    )
    for ok, name in checks:
        if not ok:
            return name
    tensor = fields.tensor
    assert tensor is not None
    if tensor.dtype not in KNOWN_DTYPES:
        return "dtype"
    if tensor.major_order not in KNOWN_MAJOR_ORDERS:
        return "majorOrder"
    if tensor.progress_unit not in KNOWN_PROGRESS_UNITS:
        return "progressUnit"
    return None
