"""The runtime parts of a compiled layout: fixed block, var-data field, repeating group.

Every read is bounds-checked before it happens, so a short or lying buffer raises a
``DecodeError`` subclass naming the field and the byte, never an ``IndexError`` or
``struct.error``; every write is range-checked, so a bad value raises ``EncodeError`` naming
the field.
"""

from __future__ import annotations

import struct
from dataclasses import fields as dataclass_fields
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
        "checks_on_encode",
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
        # Lenient enums pack as plain ints; struct range-checks them.
        self.checks_on_encode = optional or (enum is not None and not lenient)

    @property
    def size(self) -> int:
        return self.primitive.size * max(self.length, 1)

    @property
    def format(self) -> str:
        return f"{self.length}{self.primitive.code}" if self.length else self.primitive.code

    def decoder(self) -> Callable[[int, int], Any] | None:
        """A function (raw, block offset) -> value specialised for this field, None if identity.

        Built once per field so the decode loop pays one call and no attribute lookups.
        """
        if not self.converts:
            return None
        null = self.null_out
        nulls = self.nulls
        optional = self.optional
        enum = self.enum
        if enum is None:
            if len(nulls) == 1:
                return lambda raw, _base: None if raw == null else raw
            return lambda raw, _base: None if raw in nulls else raw
        get = self.members.get
        if self.lenient:
            if optional:
                return lambda raw, _base: None if raw == null else get(raw, raw)
            return lambda raw, _base: get(raw, raw)
        where = f"{self.owner}.{self.name}"
        offset = self.offset

        def strict(raw: int, base: int) -> Any:
            if optional and raw == null:
                return None
            member = get(raw)
            if member is None:
                raise InvalidValue(f"{where}: {raw} is not a {enum.__name__}", base + offset)
            return member

        return strict

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

    __slots__ = (
        "decoders",
        "encoders",
        "fields",
        "get",
        "has_arrays",
        "names",
        "owner",
        "size",
        "struct",
    )

    def __init__(self, owner: str, fields: list[BlockField], formats: list[str]) -> None:
        self.owner = owner
        self.fields = tuple(fields)
        self.struct = struct.Struct("<" + "".join(formats))
        self.size = self.struct.size
        self.names = tuple(f.name for f in fields)
        self.has_arrays = any(f.length for f in fields)
        self.decoders = tuple(
            (index, decoder)
            for index, field in enumerate(fields)
            if (decoder := field.decoder()) is not None
        )
        self.encoders = tuple(
            (index, field.to_wire) for index, field in enumerate(fields) if field.checks_on_encode
        )
        self.get: Callable[[Any], tuple[Any, ...]] = _tuple_getter(self.names)

    def decode(self, buf: Buffer, pos: int) -> list[Any]:
        """The field values of the block at ``pos``, in declaration order."""
        raw = self.struct.unpack_from(buf, pos)
        values = self._regroup(raw) if self.has_arrays else list(raw)
        for index, decoder in self.decoders:
            values[index] = decoder(values[index], pos)
        return values

    def _regroup(self, raw: tuple[Any, ...]) -> list[Any]:
        values: list[Any] = []
        index = 0
        for field in self.fields:
            if field.length:
                values.append(raw[index : index + field.length])
                index += field.length
            else:
                values.append(raw[index])
                index += 1
        return values

    def values(self, obj: Any) -> tuple[Any, ...] | list[Any]:
        """The raw values to pack for ``obj``, arrays flattened."""
        got = self.get(obj)
        if self.has_arrays:
            return self._flatten(got)
        if not self.encoders:
            return got
        out = list(got)
        for index, encoder in self.encoders:
            out[index] = encoder(out[index])
        return out

    def _flatten(self, got: tuple[Any, ...]) -> list[Any]:
        out: list[Any] = []
        for field, value in zip(self.fields, got, strict=True):
            if field.length:
                problem = field.problem(value)
                if problem is not None:
                    raise EncodeError(f"{self.owner}.{field.name}: {problem}")
                out.extend(value)
            else:
                out.append(field.to_wire(value) if field.checks_on_encode else value)
        return out

    def pack(self, obj: Any) -> bytes:
        try:
            return self.struct.pack(*self.values(obj))
        except struct.error as exc:
            self.diagnose(obj, exc)

    def diagnose(self, obj: Any, exc: struct.error) -> NoReturn:
        """Turn a ``struct.error`` into an ``EncodeError`` naming the guilty field."""
        for field, value in zip(self.fields, self.get(obj), strict=True):
            raw = field.to_wire(value) if field.checks_on_encode else value
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

    __slots__ = ("block", "entry_cls", "name", "owner", "setters", "vars")

    def __init__(
        self, owner: str, name: str, entry_cls: type, block: Block, var_fields: tuple[VarField, ...]
    ) -> None:
        self.owner = owner
        self.name = name
        self.entry_cls = entry_cls
        self.block = block
        self.vars = var_fields
        self.setters = slot_setters(entry_cls, (*block.names, *(v.name for v in var_fields)))

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
        new = object.__new__
        entry_cls = self.entry_cls
        setters = self.setters
        for index in range(count):
            if end - pos < block_length:
                raise TruncatedMessage(
                    f"{self.owner}.{self.name}[{index}]: entry needs {block_length} bytes, "
                    f"{end - pos} left",
                    pos,
                )
            values = self.block.decode(buf, pos)
            pos += block_length
            for var in self.vars:
                value, pos = var.decode(buf, pos, end)
                values.append(value)
            entry: Any = new(entry_cls)
            for setter, value in zip(setters, values, strict=False):  # same length by build
                setter(entry, value)
            entries.append(entry)
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


def slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """The slot descriptors' setters of a frozen dataclass, in ``names`` order.

    Decoding builds instances with ``object.__new__`` and these setters instead of calling the
    generated ``__init__``: the values are already validated, and it halves the cost of a
    decode. The classes have no ``__post_init__`` (checked here).
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: decoding bypasses __post_init__")
    if set(names) != {f.name for f in dataclass_fields(cls)}:
        raise TypeError(f"{cls.__name__}: declared layout and dataclass fields differ")
    return tuple(getattr(cls, name).__set__ for name in names)
