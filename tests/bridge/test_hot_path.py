"""The sender's and receiver's allocation-free chunk paths against their plain statements.

``ChunkWriter`` (the sender) must emit exactly ``split_frame``'s bytes (Julia's split, §5.3),
and ``decode_into`` (the receiver, §4.3) must give exactly the outcome of ``messages.decode``
plus the chunk-size bound, for correct and for hostile messages alike.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import messages
from messages import BridgeFrameChunk
from tensorpool_bridge.chunk_view import FOREIGN, MALFORMED, ChunkView, decode_into
from tensorpool_bridge.chunking import ChunkWriter, split_frame
from tests.bridge.frames import EPOCH, STREAM, payload, slot

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = ("stream_id", "epoch", "seq", "trace_id", "chunk_index", "chunk_count",
          "chunk_offset", "chunk_length", "payload_length", "payload_crc32c",
          "header_included", "header_bytes", "payload_bytes")


@FUZZ
@given(length=st.integers(1, 20_000), chunk_bytes=st.integers(1, 5000), integrity=st.booleans(),
       trace=st.sampled_from([0, 5, (1 << 64) - 1]), capacity_extra=st.integers(0, 100))
def test_the_writer_emits_split_frames_bytes(length: int, chunk_bytes: int, integrity: bool,
                                             trace: int, capacity_extra: int) -> None:
    if -(-length // min(chunk_bytes, length)) > 2000:
        chunk_bytes = length // 2000 + 1  # keep an example below a few thousand chunks
    head, data = slot(9, length), os.urandom(length)
    writer = ChunkWriter()
    slot_out, payload_out = writer.targets(length + capacity_extra)
    slot_out[:] = head
    payload_out[:length] = data
    count = writer.start(stream_id=STREAM, epoch=EPOCH, seq=9, trace_id=trace, length=length,
                         chunk_bytes=chunk_bytes, integrity=integrity)
    got = [bytes(writer.chunk(k)) for k in range(count)]
    assert got == list(split_frame(stream_id=STREAM, epoch=EPOCH, seq=9, trace_id=trace,
                                   header=head, payload=data, chunk_bytes=chunk_bytes,
                                   integrity=integrity))


def test_the_writer_reuses_its_buffer_and_grows_only_for_a_larger_frame() -> None:
    writer = ChunkWriter()
    writer.targets(4096)
    first = writer.buffer
    writer.targets(1000)
    writer.targets(4096)
    assert writer.buffer is first
    writer.targets(8192)
    assert writer.buffer is not first
    assert len(writer.buffer) >= 8192


def reference(data: bytes, max_chunk: int) -> str | BridgeFrameChunk:
    try:
        msg = messages.decode(data)
    except messages.UnknownMessage:
        return FOREIGN
    except messages.DecodeError:
        return MALFORMED
    if not isinstance(msg, BridgeFrameChunk):
        return FOREIGN
    if len(msg.payload_bytes) > max_chunk:
        return MALFORMED
    return msg


def check_same(data: bytes, max_chunk: int) -> None:
    expected = reference(data, max_chunk)
    view = ChunkView()
    problem = decode_into(view, memoryview(data), max_chunk)
    if isinstance(expected, str):
        assert problem == expected
        return
    assert problem is None
    got = {f: getattr(view, f) for f in FIELDS}
    got["header_bytes"] = bytes(got["header_bytes"])
    got["payload_bytes"] = bytes(got["payload_bytes"])
    assert got == {f: getattr(expected, f) for f in FIELDS}


def wires() -> list[bytes]:
    return [*split_frame(stream_id=STREAM, epoch=EPOCH, seq=3, trace_id=7, header=slot(3, 3000),
                         payload=payload(3000), chunk_bytes=1024, integrity=True)]


def test_decode_into_reads_correct_chunks_as_the_codec_does() -> None:
    for wire in wires():
        check_same(wire, 1024)
        check_same(wire + b"trailing", 1024)  # a decoder ignores trailing bytes
        check_same(wire, 1000)  # payload longer than this receiver's chunk size


@FUZZ
@given(data=st.data())
def test_decode_into_agrees_with_the_codec_on_hostile_bytes(data: st.DataObject) -> None:
    wire = bytearray(data.draw(st.sampled_from(wires())))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    check_same(bytes(wire[:cut]), data.draw(st.sampled_from([1024, 512, 65535])))
