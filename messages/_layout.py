"""Compiling a declared class into a codec, and the message codec itself.

``compile_layout`` turns a dataclass's ``Annotated`` fields into a ``Block`` (one
``struct.Struct`` for the fixed fields, pads as ``x``), ``GroupCodec``s and ``VarField``s;
``MessageCodec`` strings them together in SBE order (block, groups, var data).
"""

from __future__ import annotations

import struct
import types
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from enum import IntEnum
from typing import Annotated, Any, ClassVar, Final, Union, get_args, get_origin, get_type_hints

from messages._fields import Block, BlockField, GroupCodec, VarField, slot_setters
from messages._markers import (
    HEADER,
    VERSION,
    Array,
    Buffer,
    Const,
    Group,
    Pad,
    Primitive,
    VarAscii,
    VarData,
)

_MARKERS: Final = (Primitive, Array, Pad, Const, VarAscii, VarData, Group)


@dataclass(frozen=True, slots=True)
class Layout:
    """Everything the engine knows about one declared class, in SBE order."""

    block: Block
    groups: tuple[GroupCodec, ...]
    vars: tuple[VarField, ...]


class MessageCodec:
    """Encoder and decoder of one message, derived from its declaration."""

    __slots__ = (
        "_head",
        "_setters",
        "block",
        "block_length",
        "cls",
        "groups",
        "headerless",
        "probe_correlation",
        "schema_id",
        "template_id",
        "vars",
    )

    def __init__(
        self,
        cls: type[Any],
        layout: Layout,
        *,
        schema_id: int,
        template_id: int,
        headerless: bool,
        probe_correlation: bool,
    ) -> None:
        self.cls = cls
        self.schema_id = schema_id
        self.template_id = template_id
        self.headerless = headerless
        self.probe_correlation = probe_correlation
        self.block = layout.block
        self.block_length = layout.block.size
        self.groups = layout.groups
        self.vars = layout.vars
        # Header and block packed by one Struct: a fixed-only message is a single pack call.
        self._head = struct.Struct(HEADER.format + self.block.struct.format[1:])
        names = (*self.block.names, *(g.name for g in self.groups), *(v.name for v in self.vars))
        self._setters = slot_setters(cls, names)

    def encode(self, msg: Any, *, header: bool = True) -> bytes:
        values = self.block.values(msg)
        try:
            if header:
                head = self._head.pack(
                    self.block_length, self.template_id, self.schema_id, VERSION, *values
                )
            else:
                head = self.block.struct.pack(*values)
        except struct.error as exc:
            self.block.diagnose(msg, exc)
        if not (self.groups or self.vars):
            return head
        parts = [head]
        for group in self.groups:
            group.encode(getattr(msg, group.name), parts)
        for var in self.vars:
            var.encode(getattr(msg, var.name), parts)
        return b"".join(parts)

    def decode(self, buf: Buffer, pos: int, block_length: int, end: int) -> Any:
        """Decode the body at ``pos`` whose root block (already bounds-checked) is this long."""
        values = self.block.decode(buf, pos)
        pos += block_length
        for group in self.groups:
            entries, pos = group.decode(buf, pos, end)
            values.append(entries)
        for var in self.vars:
            value, pos = var.decode(buf, pos, end)
            values.append(value)
        message = object.__new__(self.cls)
        for setter, value in zip(self._setters, values, strict=False):  # same length by build
            setter(message, value)
        return message

    def correlation_id(self, buf: Buffer, end: int) -> int | None:
        """The int64 at block offset 0 of a probed message, if the buffer holds it."""
        if not self.probe_correlation or end < HEADER.size + 8:
            return None
        value: int = struct.unpack_from("<q", buf, HEADER.size)[0]
        return value


_LAYOUTS: Final[dict[type, Layout]] = {}


def compile_layout(cls: type) -> Layout:
    """Read the ``Annotated`` declaration of ``cls`` once and build its codec parts."""
    cached = _LAYOUTS.get(cls)
    if cached is None:
        cached = _LAYOUTS[cls] = _Compiler(cls).run()
    return cached


class _Compiler:
    """Walks a class's annotations in declaration order, which is the SBE wire order."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.owner = cls.__name__
        self.formats: list[str] = []
        self.block: list[BlockField] = []
        self.groups: list[GroupCodec] = []
        self.vars: list[VarField] = []
        self.offset = 0

    def run(self) -> Layout:
        data_fields = {f.name for f in dataclass_fields(self.cls)}
        for name, hint in get_type_hints(self.cls, include_extras=True).items():
            is_classvar = get_origin(hint) is ClassVar
            marker, base = _marker(get_args(hint)[0] if is_classvar and get_args(hint) else hint)
            if marker is None:
                if name in data_fields:
                    raise TypeError(f"{self.owner}.{name}: no wire encoding declared")
                continue
            if is_classvar != isinstance(marker, Pad | Const):
                raise TypeError(f"{self.owner}.{name}: pads and constants (only) are ClassVars")
            self.add(name, marker, base)
        block = Block(self.owner, self.block, self.formats)
        return Layout(block, tuple(self.groups), tuple(self.vars))

    def add(self, name: str, marker: Any, base: Any) -> None:
        if isinstance(marker, Const):
            setattr(self.cls, name, marker.value)
        elif isinstance(marker, Pad | Primitive | Array):
            if self.groups or self.vars:
                raise TypeError(f"{self.owner}.{name}: block fields come before groups and vars")
            if isinstance(marker, Pad):
                self.formats.append(f"{marker.length}x")
                self.offset += marker.length
                return
            field = _block_field(self.owner, name, self.offset, marker, base)
            self.block.append(field)
            self.formats.append(field.format)
            self.offset += field.size
        elif isinstance(marker, Group):
            if self.vars:
                raise TypeError(f"{self.owner}.{name}: groups come before var data")
            self.groups.append(_group(self.owner, name, base))
        else:
            expected = str if isinstance(marker, VarAscii) else bytes
            if base is not expected:
                raise TypeError(f"{self.owner}.{name}: must be declared as {expected.__name__}")
            self.vars.append(VarField(self.owner, name, marker))


def _marker(hint: Any) -> tuple[Any, Any]:
    if get_origin(hint) is not Annotated:
        return None, hint
    base, *metadata = get_args(hint)
    return next((m for m in metadata if isinstance(m, _MARKERS)), None), base


def _block_field(
    owner: str, name: str, offset: int, marker: Primitive | Array, base: Any
) -> BlockField:
    if isinstance(marker, Array):
        return BlockField(owner, name, offset, marker.element, length=marker.length)
    members = get_args(base) if get_origin(base) in (Union, types.UnionType) else (base,)
    enums = [m for m in members if isinstance(m, type) and issubclass(m, IntEnum)]
    if len(enums) > 1 or (not enums and int not in members):
        raise TypeError(f"{owner}.{name}: declare an int or one IntEnum (| int, | None)")
    enum = enums[0] if enums else None
    if enum is not None:
        low, high = marker.bounds
        if any(not low <= m.value <= high for m in enum) or any(
            m.value in marker.null_values for m in enum
        ):
            raise TypeError(f"{owner}.{name}: {enum.__name__} does not fit {marker.code!r}")
    return BlockField(
        owner,
        name,
        offset,
        marker,
        optional=types.NoneType in members,
        enum=enum,
        lenient=enum is not None and int in members,
    )


def _group(owner: str, name: str, base: Any) -> GroupCodec:
    args = get_args(base)
    if get_origin(base) is not tuple or len(args) != 2 or args[1] is not Ellipsis:
        raise TypeError(f"{owner}.{name}: a group is declared as tuple[Entry, ...]")
    entry = compile_layout(args[0])
    return GroupCodec(owner, name, args[0], entry.block, entry.vars)
