"""Property tests over every declared message: round trips, truncations, hostile input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import messages
from messages import DecodeError, FrameDescriptor, SbeMessage, TruncatedMessage
from messages.sbe import GROUP_HEADER, HEADER, codec_of
from tests.codec.strategies import (
    FRAMED_CLASSES,
    HEADERLESS_CLASSES,
    MESSAGE_CLASSES,
    any_framed_message,
    message_strategy,
)

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MANY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def names(classes: tuple[type[SbeMessage], ...]) -> list[str]:
    return [cls.__name__ for cls in classes]


def has_ignored_bytes(cls: type[SbeMessage]) -> bool:
    """Pads are ignored on read, so their bytes do not survive a decode/encode cycle."""
    codec = codec_of(cls)
    return codec.block.struct.format.count("x") > 0


@pytest.mark.parametrize("cls", FRAMED_CLASSES, ids=names(FRAMED_CLASSES))
@FAST
@given(data=st.data())
def test_every_framed_message_round_trips(cls: type[SbeMessage], data: st.DataObject) -> None:
    message = data.draw(message_strategy(cls))
    encoded = messages.encode(message)
    assert HEADER.unpack_from(encoded) == (cls.BLOCK_LENGTH, cls.TEMPLATE_ID, cls.SCHEMA_ID, 1)
    decoded = messages.decode(encoded)
    assert decoded == message
    assert type(decoded) is cls
    assert messages.decode(memoryview(bytearray(encoded))) == message
    assert messages.encode(decoded) == encoded


@pytest.mark.parametrize("cls", HEADERLESS_CLASSES, ids=names(HEADERLESS_CLASSES))
@FAST
@given(data=st.data())
def test_every_headerless_structure_round_trips(cls: type[SbeMessage], data: st.DataObject) -> None:
    message = data.draw(message_strategy(cls))
    body = messages.encode_body(message)
    assert messages.decode_body(cls, body) == message
    assert messages.decode_body(cls, memoryview(body)) == message
    assert messages.encode_body(messages.decode_body(cls, body)) == body


@pytest.mark.parametrize("cls", FRAMED_CLASSES, ids=names(FRAMED_CLASSES))
@FEW
@given(data=st.data())
def test_every_truncation_of_a_framed_message_raises(
    cls: type[SbeMessage], data: st.DataObject
) -> None:
    encoded = messages.encode(data.draw(message_strategy(cls)))
    for length in range(len(encoded)):
        with pytest.raises(TruncatedMessage):
            messages.decode(encoded[:length])
        with pytest.raises(TruncatedMessage):
            messages.decode(memoryview(encoded)[:length])


@pytest.mark.parametrize("cls", HEADERLESS_CLASSES, ids=names(HEADERLESS_CLASSES))
@FEW
@given(data=st.data())
def test_every_truncation_of_a_headerless_structure_raises(
    cls: type[SbeMessage], data: st.DataObject
) -> None:
    body = messages.encode_body(data.draw(message_strategy(cls)))
    for length in range(len(body)):
        with pytest.raises(TruncatedMessage):
            messages.decode_body(cls, body[:length])


def decode_or_error(buffer: bytes) -> SbeMessage | DecodeError:
    try:
        return messages.decode(buffer)
    except DecodeError as exc:
        return exc


def first_group_is_canonical(cls: type[SbeMessage], buffer: bytes) -> bool:
    """Whether the first group header carries the schema's entry block length.

    A longer entry block is legal (sbe.md 4: a newer encoder's entries are stepped over
    by the header's length), so its extra bytes and the length itself are not re-encoded.
    Every message here has at most one group, right after the root block.
    """
    groups = codec_of(cls).groups
    if not groups:
        return True
    block_length = HEADER.unpack_from(buffer)[0]
    entry_length: int = GROUP_HEADER.unpack_from(buffer, HEADER.size + block_length)[0]
    return entry_length == groups[0].block.size


def check_consistent(buffer: bytes) -> None:
    """Decoding raises only DecodeError, or yields a message whose encoding decodes back to it.

    Where no ignored byte is involved (no pads, version 1, schema block lengths of the root
    and of the group entries, canonical null of trace_id) the re-encoding is the input
    itself, up to ignored trailing bytes.
    """
    message = decode_or_error(buffer)
    if isinstance(message, DecodeError):
        assert message.reason
        assert message.offset is None or 0 <= message.offset <= len(buffer)
        return
    encoded = messages.encode(message)
    assert messages.decode(encoded) == message
    cls = type(message)
    block_length, _, _, version = HEADER.unpack_from(buffer)
    trace_raw = struct.unpack_from("<Q", buffer, 8 + 32)[0] if cls is FrameDescriptor else 0
    if (
        not has_ignored_bytes(cls)
        and version == 1
        and block_length == cls.BLOCK_LENGTH
        and trace_raw != 0xFFFF_FFFF_FFFF_FFFF
        and first_group_is_canonical(cls, buffer)
    ):
        assert buffer[: len(encoded)] == encoded


@MANY
@given(buffer=st.binary(max_size=120))
def test_random_buffers_raise_only_decode_errors(buffer: bytes) -> None:
    check_consistent(buffer)


@MANY
@given(
    header=st.sampled_from(MESSAGE_CLASSES).map(lambda c: (c.SCHEMA_ID, c.TEMPLATE_ID)),
    block_length=st.integers(0, 70),
    version=st.integers(0, 3),
    body=st.binary(max_size=200),
)
def test_random_bodies_behind_known_headers_raise_only_decode_errors(
    header: tuple[int, int], block_length: int, version: int, body: bytes
) -> None:
    schema_id, template_id = header
    check_consistent(HEADER.pack(block_length, template_id, schema_id, version) + body)


@MANY
@given(
    message=any_framed_message(),
    mutations=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4
    ),
    cut=st.integers(0, 8),
    extra=st.binary(max_size=8),
)
def test_mutated_messages_raise_only_decode_errors(
    message: SbeMessage, mutations: list[tuple[int, int]], cut: int, extra: bytes
) -> None:
    buffer = bytearray(messages.encode(message))
    for position, value in mutations:
        buffer[position % len(buffer)] = value
    mutated = bytes(buffer[: len(buffer) - cut]) + extra
    check_consistent(mutated)
