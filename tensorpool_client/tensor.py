"""numpy arrays <-> the TensorHeader of a slot (dtype, major order, dims, byte strides).

Payloads are little-endian, as every integer of the SHM layout. The producer writes an array
in its own memory order when it is C- or Fortran-contiguous (ROW or COLUMN with its real
strides); any other layout is compacted to C order first. Strides are always written, so a
reader never has to infer them; a reader given zero strides infers them from the major order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import numpy as np

from messages import Dtype, MajorOrder
from shm.slot_layout import TensorDescriptor

if TYPE_CHECKING:
    import numpy.typing as npt

MAX_DIMS: Final = 8
_INT32_MAX: Final = 0x7FFFFFFF

_TO_WIRE: Final[dict[str, Dtype]] = {
    "u1": Dtype.UINT8, "i1": Dtype.INT8, "u2": Dtype.UINT16, "i2": Dtype.INT16,
    "u4": Dtype.UINT32, "i4": Dtype.INT32, "u8": Dtype.UINT64, "i8": Dtype.INT64,
    "f4": Dtype.FLOAT32, "f8": Dtype.FLOAT64, "b1": Dtype.BOOLEAN,
}
_FROM_WIRE: Final[dict[int, np.dtype[np.generic]]] = {
    int(wire): np.dtype(f"<{code}") if code != "b1" else np.dtype(np.bool_)
    for code, wire in _TO_WIRE.items()
}


def wire_dtype(dtype: np.dtype[np.generic]) -> Dtype:
    """The schema's Dtype for a numpy dtype; ValueError for types the schema cannot carry."""
    code = f"{dtype.kind}{dtype.itemsize}"
    if code not in _TO_WIRE:
        raise ValueError(f"dtype {dtype} has no tensorpool Dtype")
    return _TO_WIRE[code]


def numpy_dtype(dtype: int) -> np.dtype[np.generic]:
    """The numpy dtype of a wire Dtype; UNKNOWN, BYTES and BIT are read as raw uint8."""
    return _FROM_WIRE.get(dtype, np.dtype(np.uint8))


def prepare(array: npt.NDArray[np.generic]) -> tuple[npt.NDArray[np.uint8], TensorDescriptor]:
    """The payload bytes (a view when possible) and the header describing them."""
    if not 1 <= array.ndim <= MAX_DIMS:
        raise ValueError(f"arrays must have 1..{MAX_DIMS} dimensions, got {array.ndim}")
    wire = wire_dtype(array.dtype)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    if array.flags.c_contiguous:
        order = MajorOrder.ROW
    elif array.flags.f_contiguous:
        order = MajorOrder.COLUMN
    else:
        array = np.ascontiguousarray(array)
        order = MajorOrder.ROW
    if any(d > _INT32_MAX for d in array.shape) or any(abs(s) > _INT32_MAX for s in array.strides):
        raise ValueError("dims and strides must fit int32")
    payload = array.reshape(-1, order="A").view(np.uint8)
    tensor = TensorDescriptor(dtype=int(wire), major_order=int(order), dims=tuple(array.shape),
                              strides=tuple(array.strides))
    return payload, tensor


def contiguous_strides(dims: tuple[int, ...], itemsize: int, order: int) -> tuple[int, ...]:
    """Byte strides of a compact array in ROW (default) or COLUMN order."""
    strides = [0] * len(dims)
    step = itemsize
    axes = range(len(dims)) if order == MajorOrder.COLUMN else reversed(range(len(dims)))
    for axis in axes:
        strides[axis] = step
        step *= max(dims[axis], 1)
    return tuple(strides)


def view_of(tensor: TensorDescriptor, slot: npt.NDArray[np.uint8],
            values_len_bytes: int) -> npt.NDArray[np.generic] | None:
    """A zero-copy array over ``slot``, or None if the header does not fit the payload."""
    dtype = numpy_dtype(tensor.dtype)
    dims = tensor.dims
    if any(d < 0 for d in dims):
        return None
    strides = tensor.strides
    if not strides or not any(strides):
        strides = contiguous_strides(dims, dtype.itemsize, tensor.major_order)
    if any(s < 0 for s in strides):
        return None
    if 0 in dims:
        return np.ndarray(dims, dtype=dtype, buffer=slot[:0], strides=strides)
    extent = sum((d - 1) * s for d, s in zip(dims, strides, strict=True)) + dtype.itemsize
    if extent > values_len_bytes or extent > slot.size:
        return None
    return np.ndarray(dims, dtype=dtype, buffer=slot[:values_len_bytes], strides=strides)
