# Copyright 2026 The tensorpool-driver authors. SPDX-License-Identifier: Apache-2.0
"""The runtime parts of a compiled layout: fixed block, var-data field, repeating group.

Every read is bounds-checked before it happens, so a short or lying buffer raises a
``DecodeError`` subclass naming the field and the byte, never an ``IndexError`` or
``struct.error``; every write is range-checked, so a bad value raises ``EncodeError`` naming
the field.
"""

from __future__ import annotations

import struct
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NoReturn

from messages._markers import (
    GROUP_HEADER,
    MAX_GROUP_ENTRIES,
    MAX_VAR_LENGTH,
    VAR_LENGTH,
    Buffer,
    Primitive,
    VarAscii,
    VarData,
)
from messages.errors import EncodeError, InvalidBlockLength, InvalidValue, TruncatedMessage

if TYPE_CHECKING:
    from collections.abc import Callable
    from enum import IntEnum


class BlockField:
    """One fixed-block field: where it sits and how its raw integer maps to a Python value."""

    __slots__ = (
        "converts",
        "enum",
        "length",
        "lenient",
        "members",
        "name",
        "null_out",
        "nulls",
        "offset",
        "optional",
        "owner",
        "primitive",
    )

    def __init__(
        self,
        owner: str,
        name: str,
        offset: int,
        primitive: Primitive,
        *,
        length: int = 0,
        optional: bool = False,
        enum: type[IntEnum] | None = None,
        lenient: bool = False,
    ) -> None:
        self.owner = owner
        self.name = name
        self.offset = offset
        self.primitive = primitive
        self.length = length
        self.optional = optional
        self.nulls = primitive.null_values
        self.null_out = self.nulls[0]
        self.enum = enum
        self.members: dict[int, IntEnum] = {} if enum is None else {m.value: m for m in enum}
        self.lenient = lenient
        self.converts = optional or enum is not None

    @property
    def size(self) -> int:
        return self.primitive.size * max(self.length, 1)

    @property
    def format(self) -> str:
        return f"{self.length}{self.primitive.code}" if self.length else self.primitive.code

    def from_wire(self, raw: int, base: int) -> Any:
        if self.optional and raw in self.nulls:
            return None
        if self.enum is None:
            return raw
        member = self.members.get(raw)
        if member is not None:
            return member
        if self.lenient:
            return raw
        raise InvalidValue(
            f"{self.owner}.{self.name}: {raw} is not a {self.enum.__name__}", base + self.offset
        )

    def to_wire(self, value: Any) -> Any:
        if value is None:
            if self.optional:
                return self.null_out
            raise EncodeError(f"{self.owner}.{self.name} is required, got None")
        if self.optional and value in self.nulls:
            raise EncodeError(f"{self.owner}.{self.name}={value!r} is the null value; use None")
        if self.enum is not None and not self.lenient and (
            not isinstance(value, int) or value not in self.members
        ):
            raise EncodeError(f"{self.owner}.{self.name}={value!r} is not a {self.enum.__name__}")
        return value

    def problem(self, value: Any) -> str | None:
        """Why ``value`` (already converted) cannot be packed, or None."""
        items: tuple[Any, ...] | list[Any] = (value,)
        if self.length:
            if not isinstance(value, tuple | list) or len(value) != self.length:
                return f"needs a sequence of {self.length} integers, got {value!r}"
            items = value
        low, high = self.primitive.bounds
        for item in items:
            if item is None:
                return "is required, got None"
            if not isinstance(item, int):
                return f"{item!r} is not an integer"
            if not low <= item <= high:
                return f"{item} is outside [{low}, {high}]"
        return None


class Block:
    """The fixed part of a message or group entry, packed by one precompiled ``Struct``."""

    __slots__ = ("converting", "fields", "get", "has_arrays", "names", "owner", "size", "struct")

    def __init__(self, owner: str, fields: list[BlockField], formats: list[str]) -> None:
        self.owner = owner
        self.fields = tuple(fields)
        self.struct = struct.Struct("<" + "".join(formats))
        self.size = self.struct.size
        self.names = tuple(f.name for f in fields)
        self.has_arrays = any(f.length for f in fields)
        self.converting = tuple(f for f in fields if f.converts)
        self.get: Callable[[Any], tuple[Any, ...]] = _tuple_getter(self.names)

    def decode(self, buf: Buffer, pos: int) -> dict[str, Any]:
        values = self.struct.unpack_from(buf, pos)
        if self.has_arrays:
            kw = self._regroup(values)
        else:
            kw = dict(zip(self.names, values, strict=True))
        for field in self.converting:
            kw[field.name] = field.from_wire(kw[field.name], pos)
        return kw

    def _regroup(self, values: tuple[Any, ...]) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        index = 0
        for field in self.fields:
            if field.length:
                kw[field.name] = values[index : index + field.length]
                index += field.length
            else:
                kw[field.name] = values[index]
                index += 1
        return kw

    def values(self, obj: Any) -> tuple[Any, ...] | list[Any]:
        got = self.get(obj)
        if not (self.converting or self.has_arrays):
            return got
        out: list[Any] = []
        for field, value in zip(self.fields, got, strict=True):
            if field.length:
                problem = field.problem(value)
                if problem is not None:
                    raise EncodeError(f"{self.owner}.{field.name}: {problem}")
                out.extend(value)
            elif field.converts:
                out.append(field.to_wire(value))
            else:
                out.append(value)
        return out

    def pack(self, obj: Any) -> bytes:
        try:
            return self.struct.pack(*self.values(obj))
        except struct.error as exc:
            self.diagnose(obj, exc)

    def diagnose(self, obj: Any, exc: struct.error) -> NoReturn:
        """Turn a ``struct.error`` into an ``EncodeError`` naming the guilty field."""
        for field, value in zip(self.fields, self.get(obj), strict=True):
            raw = field.to_wire(value) if field.converts else value
            problem = field.problem(raw)
            if problem is not None:
                raise EncodeError(f"{self.owner}.{field.name}: {problem}") from None
        raise EncodeError(f"{self.owner}: {exc}") from None


class VarField:
    """A var-data field: uint32 length prefix, then the bytes (text or opaque)."""

    __slots__ = ("ascii", "max_length", "name", "owner", "truncate")

    def __init__(self, owner: str, name: str, marker: VarAscii | VarData) -> None:
        self.owner = owner
        self.name = name
        self.ascii = isinstance(marker, VarAscii)
        self.max_length = marker.max_length
        self.truncate = isinstance(marker, VarAscii) and marker.truncate

    def decode(self, buf: Buffer, pos: int, end: int) -> tuple[Any, int]:
        if end - pos < VAR_LENGTH.size:
            raise TruncatedMessage(
                f"{self.owner}.{self.name}: length prefix needs 4 bytes, {end - pos} left", pos
            )
        (length,) = VAR_LENGTH.unpack_from(buf, pos)
        if length > MAX_VAR_LENGTH:
            raise InvalidValue(
                f"{self.owner}.{self.name}: length {length} exceeds the SBE maximum", pos
            )
        start = pos + VAR_LENGTH.size
        if length > end - start:
            raise TruncatedMessage(
                f"{self.owner}.{self.name}: {length} bytes announced, {end - start} left", pos
            )
        if length > self.max_length:
            raise InvalidValue(
                f"{self.owner}.{self.name}: {length} bytes exceed the {self.max_length}-byte limit",
                pos,
            )
        raw = buf[start : start + length]
        if not self.ascii:
            return bytes(raw), start + length
        try:
            return str(raw, "ascii"), start + length
        except UnicodeDecodeError as exc:
            raise InvalidValue(
                f"{self.owner}.{self.name}: non-ASCII byte in text", start + exc.start
            ) from None

    def encode(self, value: Any, parts: list[bytes]) -> None:
        if self.ascii:
            if not isinstance(value, str):
                raise EncodeError(f"{self.owner}.{self.name}: expected str, got {value!r}")
            try:
                data = value.encode("ascii")
            except UnicodeEncodeError as exc:
                raise EncodeError(
                    f"{self.owner}.{self.name}: non-ASCII character at index {exc.start}"
                ) from None
        else:
            if not isinstance(value, bytes | bytearray | memoryview):
                raise EncodeError(f"{self.owner}.{self.name}: expected bytes, got {value!r}")
            data = bytes(value)
        if len(data) > self.max_length:
            if not self.truncate:
                raise EncodeError(
                    f"{self.owner}.{self.name}: {len(data)} bytes exceed the "
                    f"{self.max_length}-byte limit"
                )
            data = data[: self.max_length]
        parts.append(VAR_LENGTH.pack(len(data)))
        parts.append(data)


class GroupCodec:
    """A repeating group: 4-byte header, then entries stepped by the header's block length."""

    __slots__ = ("block", "entry_cls", "name", "owner", "vars")

    def __init__(
        self, owner: str, name: str, entry_cls: type, block: Block, var_fields: tuple[VarField, ...]
    ) -> None:
        self.owner = owner
        self.name = name
        self.entry_cls = entry_cls
        self.block = block
        self.vars = var_fields

    def decode(self, buf: Buffer, pos: int, end: int) -> tuple[tuple[Any, ...], int]:
        if end - pos < GROUP_HEADER.size:
            raise TruncatedMessage(
                f"{self.owner}.{self.name}: group header needs 4 bytes, {end - pos} left", pos
            )
        block_length, count = GROUP_HEADER.unpack_from(buf, pos)
        if block_length < self.block.size:
            raise InvalidBlockLength(
                f"{self.owner}.{self.name}: entry block length {block_length} "
                f"< {self.block.size}",
                pos,
            )
        pos += GROUP_HEADER.size
        entries = []
        for index in range(count):
            if end - pos < block_length:
                raise TruncatedMessage(
                    f"{self.owner}.{self.name}[{index}]: entry needs {block_length} bytes, "
                    f"{end - pos} left",
                    pos,
                )
            kw = self.block.decode(buf, pos)
            pos += block_length
            for var in self.vars:
                kw[var.name], pos = var.decode(buf, pos, end)
            entries.append(self.entry_cls(**kw))
        return tuple(entries), pos

    def encode(self, value: Any, parts: list[bytes]) -> None:
        if not isinstance(value, tuple | list):
            raise EncodeError(f"{self.owner}.{self.name}: expected a tuple, got {value!r}")
        if len(value) > MAX_GROUP_ENTRIES:
            raise EncodeError(f"{self.owner}.{self.name}: {len(value)} entries exceed 65535")
        parts.append(GROUP_HEADER.pack(self.block.size, len(value)))
        for entry in value:
            if not isinstance(entry, self.entry_cls):
                raise EncodeError(
                    f"{self.owner}.{self.name}: expected {self.entry_cls.__name__}, got {entry!r}"
                )
            parts.append(self.block.pack(entry))
            for var in self.vars:
                var.encode(getattr(entry, var.name), parts)


def _tuple_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        single = attrgetter(names[0])
        return lambda obj: (single(obj),)
    return lambda _obj: ()
