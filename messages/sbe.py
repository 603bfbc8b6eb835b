"""A small SBE engine: each message declares its layout once and the engine derives both codecs.

A message is a frozen dataclass whose fields are ``Annotated`` with their wire encoding
(``stream_id: U32``, ``role: Annotated[Role | int, UINT8]``, ``header_region_uri: Uri``).
``@message`` reads those annotations once, at import, and compiles them (``messages._layout``)
into one precompiled little-endian ``struct.Struct`` per fixed block plus group and var-data
readers; field offsets follow from the declaration order exactly as SBE packs them, so no
message carries hand-written pack/unpack code. The Python type of a field says the rest:
``None`` in it makes the field optional (None <=> the null value), an ``IntEnum`` makes it an
enum, and ``int`` next to the enum makes the enum lenient (unknown values decode to the raw
int). Pads and constants are ``ClassVar``s: they are not message values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar, Final

from messages._layout import MessageCodec, compile_layout
from messages._markers import (
    GROUP_HEADER,
    HEADER,
    MAX_VAR_LENGTH,
    VERSION,
    Array,
    Const,
    Group,
    Pad,
    Primitive,
    VarAscii,
    VarData,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "GROUP_HEADER",
    "HEADER",
    "I64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "MAX_VAR_LENGTH",
    "REGISTRY",
    "U8",
    "U16",
    "U32",
    "U64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "VERSION",
    "Array",
    "Ascii",
    "Blob",
    "Const",
    "ErrorText",
    "Group",
    "GroupEntry",
    "MessageCodec",
    "OptU16",
    "OptU32",
    "OptU64",
    "Pad",
    "Primitive",
    "SbeMessage",
    "Uri",
    "VarAscii",
    "VarData",
    "codec_of",
    "group_entry",
    "message",
]

# Wire primitives (sbe.md §1); their default null values come from the type.
INT8: Final = Primitive("b")
INT16: Final = Primitive("h")
INT32: Final = Primitive("i")
INT64: Final = Primitive("q")
UINT8: Final = Primitive("B")
UINT16: Final = Primitive("H")
UINT32: Final = Primitive("I")
UINT64: Final = Primitive("Q")

# Field types used by the schema modules.
I64 = Annotated[int, INT64]
U8 = Annotated[int, UINT8]
U16 = Annotated[int, UINT16]
U32 = Annotated[int, UINT32]
U64 = Annotated[int, UINT64]
OptU16 = Annotated[int | None, UINT16]
OptU32 = Annotated[int | None, UINT32]
OptU64 = Annotated[int | None, UINT64]
Ascii = Annotated[str, VarAscii()]
Uri = Annotated[str, VarAscii(max_length=4096)]  # region URIs and Aeron channels (sbe.md §5)
ErrorText = Annotated[str, VarAscii(max_length=1024, truncate=True)]
Blob = Annotated[bytes, VarData()]

# (schemaId, templateId) -> codec of every declared message, filled by ``@message``.
REGISTRY: Final[dict[tuple[int, int], MessageCodec]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class SbeMessage:
    """Base of every SBE message class; the class constants are set by ``@message``."""

    SCHEMA_ID: ClassVar[int]
    TEMPLATE_ID: ClassVar[int]
    BLOCK_LENGTH: ClassVar[int]
    HEADERLESS: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """Base of repeating-group entry classes (``PayloadPool``, ``Attribute``)."""

    BLOCK_LENGTH: ClassVar[int]


_CODECS: Final[dict[type, MessageCodec]] = {}


def message[M: SbeMessage](
    *,
    schema_id: int,
    template_id: int,
    block_length: int,
    headerless: bool = False,
    probe_correlation: bool = False,
) -> Callable[[type[M]], type[M]]:
    """Compile a message class and register it for dispatch.

    ``block_length`` is the spec's number: a declaration that packs to anything else fails at
    import instead of putting wrong bytes on the wire. ``headerless`` marks the SHM structures
    that live without a message header. ``probe_correlation`` makes a newer-version buffer
    report the int64 at block offset 0 (the attach request's correlation id).
    """

    def compile_message(cls: type[M]) -> type[M]:
        layout = compile_layout(cls)
        if layout.block.size != block_length:
            raise TypeError(
                f"{cls.__name__} packs to {layout.block.size} bytes, spec says {block_length}"
            )
        key = (schema_id, template_id)
        if key in REGISTRY:
            raise TypeError(f"{cls.__name__}: schema/template {key} declared twice")
        codec = MessageCodec(
            cls,
            layout,
            schema_id=schema_id,
            template_id=template_id,
            headerless=headerless,
            probe_correlation=probe_correlation,
        )
        cls.SCHEMA_ID = schema_id
        cls.TEMPLATE_ID = template_id
        cls.BLOCK_LENGTH = block_length
        cls.HEADERLESS = headerless
        REGISTRY[key] = codec
        _CODECS[cls] = codec
        return cls

    return compile_message


def group_entry[E: GroupEntry](*, block_length: int) -> Callable[[type[E]], type[E]]:
    """Compile a group entry class; ``block_length`` is the spec's entry block size."""

    def compile_entry(cls: type[E]) -> type[E]:
        layout = compile_layout(cls)
        if layout.groups:
            raise TypeError(f"{cls.__name__}: nested groups are not used by these schemas")
        if layout.block.size != block_length:
            raise TypeError(
                f"{cls.__name__} packs to {layout.block.size} bytes, spec says {block_length}"
            )
        cls.BLOCK_LENGTH = block_length
        return cls

    return compile_entry


def codec_of(cls: type[SbeMessage]) -> MessageCodec:
    """The compiled codec of a message class (``KeyError`` if it is not declared)."""
    return _CODECS[cls]

