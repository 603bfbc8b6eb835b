"""Wire-encoding markers: what a field's ``Annotated`` metadata says about its bytes."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

VERSION: Final = 1
MAX_VAR_LENGTH: Final = 1_073_741_824  # varAsciiEncoding / varDataEncoding maxValue
MAX_GROUP_ENTRIES: Final = 0xFFFF
HEADER: Final = struct.Struct("<HHHH")  # blockLength, templateId, schemaId, version
GROUP_HEADER: Final = struct.Struct("<HH")  # blockLength, numInGroup
VAR_LENGTH: Final = struct.Struct("<I")

Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class Primitive:
    """A fixed-size integer on the wire; ``nulls`` overrides the type's null (first is written)."""

    code: str
    nulls: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return struct.calcsize("<" + self.code)

    @property
    def bounds(self) -> tuple[int, int]:
        bits = 8 * self.size
        if self.code.islower():
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1

    @property
    def null_values(self) -> tuple[int, ...]:
        low, high = self.bounds
        return self.nulls or ((low if self.code.islower() else high),)


@dataclass(frozen=True, slots=True)
class Array:
    """A fixed-length array of primitives (``int32[8]``), element 0 first."""

    element: Primitive
    length: int


@dataclass(frozen=True, slots=True)
class Pad:
    """Reserved bytes: written as zeros, ignored on read (declare as a ``ClassVar``)."""

    length: int


@dataclass(frozen=True, slots=True)
class Const:
    """A constant field: zero bytes on the wire, a class attribute in Python."""

    value: int


@dataclass(frozen=True, slots=True)
class VarAscii:
    """varAsciiEncoding text; ``truncate`` makes the encoder cut instead of refusing."""

    max_length: int = MAX_VAR_LENGTH
    truncate: bool = False


@dataclass(frozen=True, slots=True)
class VarData:
    """varDataEncoding opaque bytes."""

    max_length: int = MAX_VAR_LENGTH


@dataclass(frozen=True, slots=True)
class Group:
    """A repeating group; the entry class is the element type of the ``tuple[...]`` field."""

