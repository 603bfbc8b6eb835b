"""The public codec: ``decode`` dispatches on (schemaId, templateId), ``encode`` writes bytes.

Checks run in the order of sbe.md §7 and §10 (length, dispatch, version, block length, then
the body), and every failure is a ``DecodeError`` subclass: a receive loop needs one
``except DecodeError`` and nothing else.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

# The schema modules register their messages in REGISTRY when imported.
from messages import bridge, control, wire
from messages.errors import (
    DecodeError,
    EncodeError,
    InvalidBlockLength,
    TruncatedMessage,
    UnknownMessage,
    UnsupportedVersion,
)
from messages.sbe import HEADER, REGISTRY, VERSION, SbeMessage, codec_of

if TYPE_CHECKING:
    from messages._layout import MessageCodec
    from messages._markers import Buffer

__all__ = ["decode", "decode_body", "encode", "encode_body"]

SCHEMAS = (control.SCHEMA_ID, wire.SCHEMA_ID, bridge.SCHEMA_ID)
_HEADER_SIZE = HEADER.size
_unpack_header = HEADER.unpack_from
_lookup = REGISTRY.get


def decode(buffer: Buffer) -> SbeMessage:
    """Decode one framed message; a memoryview is read in place, only var fields are copied."""
    try:
        buf = _bytes_view(buffer) if type(buffer) is memoryview else buffer
        end = len(buf)
        if end < _HEADER_SIZE:
            raise TruncatedMessage(f"message header needs 8 bytes, got {end}", 0)
        block_length, template_id, schema_id, version = _unpack_header(buf, 0)
        codec = _lookup((schema_id, template_id))
        if codec is None or codec.headerless:
            raise UnknownMessage(schema_id, template_id)
        if version > VERSION:
            raise UnsupportedVersion(
                schema_id, template_id, version, codec.correlation_id(buf, end)
            )
        if block_length < codec.block_length or end - _HEADER_SIZE < block_length:
            _check_block(codec, block_length, end - _HEADER_SIZE, _HEADER_SIZE)
        message: SbeMessage = codec.decode(buf, _HEADER_SIZE, block_length, end)
    except DecodeError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, OverflowError) as exc:
        # Unreachable when the checks above are right; kept so nothing else ever escapes.
        raise DecodeError(f"malformed buffer: {exc}") from exc
    return message


def encode(message: SbeMessage) -> bytes:
    """Header + body with the schema's exact block length and version 1."""
    codec = _codec(message)
    if codec.headerless:
        raise EncodeError(f"{type(message).__name__} has no message header: use encode_body")
    return codec.encode(message)


def encode_body(message: SbeMessage) -> bytes:
    """The body alone, for the SHM structures that live without a message header."""
    return _codec(message).encode(message, header=False)


def decode_body[M: SbeMessage](cls: type[M], buffer: Buffer) -> M:
    """Decode a headerless body (``ShmRegionSuperblock``, ``SlotHeader``) at offset 0."""
    try:
        codec = codec_of(cls)
    except KeyError:
        raise TypeError(f"{cls.__name__} is not a declared SBE message") from None
    try:
        buf = _bytes_view(buffer)
        end = len(buf)
        _check_block(codec, codec.block_length, end, 0)
        message: M = codec.decode(buf, 0, codec.block_length, end)
    except DecodeError:
        raise
    except (struct.error, IndexError, ValueError, TypeError, OverflowError) as exc:
        raise DecodeError(f"malformed buffer: {exc}") from exc
    return message


def _check_block(codec: MessageCodec, block_length: int, available: int, pos: int) -> None:
    name = codec.cls.__name__
    if block_length < codec.block_length:
        raise InvalidBlockLength(
            f"{name}: block length {block_length} < schema block length {codec.block_length}", 0
        )
    if available < block_length:
        raise TruncatedMessage(
            f"{name}: root block needs {block_length} bytes, {available} left", pos
        )


def _bytes_view(buffer: Buffer) -> Buffer:
    """A multi-byte or multi-dimensional view re-read as plain bytes (no copy)."""
    if isinstance(buffer, memoryview) and (buffer.itemsize != 1 or buffer.ndim != 1):
        return buffer.cast("B")
    return buffer


def _codec(message: SbeMessage) -> MessageCodec:
    try:
        return codec_of(type(message))
    except KeyError:
        raise EncodeError(f"{type(message).__name__} is not a declared SBE message") from None
