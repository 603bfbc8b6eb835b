"""bridge.md §6.2-§6.4, §6.7 and §13.2 item 3 on the pure reassembler, with crafted chunks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import messages
from messages import BridgeFrameChunk
from tensorpool_bridge.chunking import chunk_count, effective_chunk_bytes, split_frame
from tensorpool_bridge.reassembly import (
    AnnounceOutcome,
    AssembledFrame,
    ChunkLimits,
    Reassembler,
)
from tests.bridge.frames import EPOCH, STREAM, announce, chunks, payload, replace, slot

MS = 1_000_000
LIMITS = ChunkLimits(chunk_bytes=1024, max_payload_bytes=1 << 24, integrity=False,
                     assembly_timeout_ns=100 * MS)
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ready(limits: ChunkLimits = LIMITS) -> Reassembler:
    r = Reassembler(STREAM, limits)
    assert r.apply_announce(announce()) is AnnounceOutcome.FIRST
    r.local_strides = (8192, 1 << 20)
    return r


def feed(r: Reassembler, items: list[BridgeFrameChunk], now: int = 0) -> list[AssembledFrame]:
    out = []
    for c in items:
        frame = r.on_chunk(c, now)
        if frame is not None:
            out.append(frame)
    return out


def delivered(r: Reassembler, items: list[BridgeFrameChunk]) -> list[tuple[int, bytes]]:
    return [(f.seq, bytes(f.payload)) for f in feed(r, items)]


def counters(r: Reassembler) -> dict[str, int]:
    return {k: v for k, v in r.counters.items() if v and k not in {
        "announces_applied", "frames_assembled"}}


THREE = payload(3 * 1024 + 5)  # 4 chunks of 1024: 0, 1, 2, 3 (5 bytes)


@pytest.mark.parametrize("size", [1, 24, 1023, 1024, 1025, 3 * 1024 + 5, 100_000])
@pytest.mark.parametrize("integrity", [False, True])
def test_frames_assemble_identically(size: int, integrity: bool) -> None:
    limits = ChunkLimits(1024, 1 << 24, integrity, 100 * MS)
    r = ready(limits)
    data = payload(size, salt=size)
    frames = feed(r, chunks(9, data, integrity=integrity, trace_id=77))
    assert len(frames) == 1
    frame = frames[0]
    assert (frame.seq, frame.epoch, frame.trace_id, bytes(frame.payload)) == (9, EPOCH, 77, data)
    assert frame.fields.values_len_bytes == size
    assert frame.fields.meta_version == 2
    assert counters(r) == {}


def test_split_matches_the_engine_encoder_and_spec_rules() -> None:
    data = payload(3000)
    wires = list(split_frame(stream_id=STREAM, epoch=EPOCH, seq=6, trace_id=5,
                             header=slot(6, 3000), payload=data, chunk_bytes=1280,
                             integrity=True))
    assert [len(w) for w in wires] == [1605, 1349, 509]
    decoded = [messages.decode(w) for w in wires]
    assert [messages.encode(d) for d in decoded] == wires
    assert b"".join(d.payload_bytes for d in decoded) == data  # type: ignore[attr-defined]


@pytest.mark.parametrize(("mtu", "chunk", "max_chunk", "expected"), [
    (0, 0, 65535, 65535), (1408, 0, 65535, 1280), (1408, 1200, 65535, 1200),
    (1408, 1000, 1200, 1000), (1408, 1024, 1024, 1024), (1408, 512, 1024, 512),
])
def test_effective_chunk_bytes_table(mtu: int, chunk: int, max_chunk: int, expected: int) -> None:
    assert effective_chunk_bytes(mtu, chunk, max_chunk) == expected


def test_chunk_count() -> None:
    assert chunk_count(0, 1024) == 0
    assert chunk_count(1, 1024) == 1
    assert chunk_count(3000, 1280) == 3


def test_no_announce_no_frames() -> None:
    r = Reassembler(STREAM, LIMITS)
    assert delivered(r, chunks(1, payload(10))) == []
    assert r.counters["chunks_dropped.no_announce"] == 1
    r.apply_announce(announce())
    assert delivered(r, chunks(2, payload(10))) == [(2, payload(10))]


@pytest.mark.parametrize("missing", [0, 1, 3])
def test_missing_chunk_times_out_and_next_frame_is_delivered(missing: int) -> None:
    r = ready()
    items = chunks(1, THREE)
    del items[missing]
    assert feed(r, items, now=0) == []
    r.on_tick(99 * MS)
    assert r.in_flight == (EPOCH, 1)
    r.on_tick(100 * MS)
    assert r.in_flight is None
    assert counters(r) == {"assemblies_timed_out": 1}
    assert delivered(r, chunks(2, THREE)) == [(2, THREE)]


def test_late_chunk_of_a_timed_out_frame_stays_dropped() -> None:
    r = ready()
    items = chunks(1, THREE)
    feed(r, items[:2])
    r.on_tick(100 * MS)
    assert feed(r, items[2:]) == []
    assert r.in_flight is None


def test_missing_chunk_abandoned_by_the_next_frame() -> None:
    r = ready()
    feed(r, chunks(1, THREE)[:-1])
    assert delivered(r, chunks(2, THREE)) == [(2, THREE)]
    assert counters(r) == {"assemblies_abandoned": 1}


def test_timeout_measures_inactivity() -> None:
    r = ready()
    items = chunks(1, THREE)
    r.on_chunk(items[0], 0)
    r.on_chunk(items[1], 90 * MS)
    r.on_tick(150 * MS)
    assert r.in_flight == (EPOCH, 1)
    assert [f.seq for f in feed(r, items[2:], now=160 * MS)] == [1]


def test_corrupt_crc_drops_the_chunk_and_the_frame_times_out() -> None:
    limits = ChunkLimits(1024, 1 << 24, True, 100 * MS)
    r = ready(limits)
    items = chunks(1, THREE, integrity=True)
    items[1] = replace(items[1], payload_bytes=b"\xff" + items[1].payload_bytes[1:])
    assert feed(r, items) == []
    assert r.counters["chunks_dropped.crc"] == 1
    zero = chunks(2, THREE, integrity=True)
    zero[2] = replace(zero[2], payload_crc32c=0)
    assert feed(r, zero) == []
    assert r.counters["chunks_dropped.crc"] == 2
    r.on_tick(10**12)
    assert delivered(r, chunks(3, THREE, integrity=True)) == [(3, THREE)]


def test_identical_duplicate_is_ignored() -> None:
    r = ready()
    items = chunks(1, THREE)
    assert delivered(r, [items[0], items[1], items[1], items[0], items[2], items[3]]) == [
        (1, THREE)]
    assert counters(r) == {"chunks_duplicate": 2}
    assert feed(r, [items[3]]) == []  # late copy of a delivered frame
    assert r.counters["chunks_duplicate"] == 3


def test_conflicting_duplicate_drops_the_frame() -> None:
    r = ready()
    items = chunks(1, THREE)
    bad = replace(items[1], payload_bytes=bytes(1024))
    assert feed(r, [items[0], items[1], bad, items[2], items[3]]) == []
    assert counters(r) == {"frames_dropped.conflict": 1}
    assert delivered(r, chunks(2, THREE)) == [(2, THREE)]


def test_overlapping_chunk_drops_the_frame() -> None:
    r = ready()
    items = chunks(1, THREE)
    overlap = replace(items[2], chunk_index=3, chunk_offset=1500, chunk_length=1024)
    assert feed(r, [items[0], items[1], overlap]) == []
    assert counters(r) == {"frames_dropped.overlap": 1}
    assert feed(r, items[2:]) == []  # the dropped frame stays dropped
    assert delivered(r, chunks(2, THREE)) == [(2, THREE)]


@pytest.mark.parametrize(("field", "value"), [
    ("trace_id", 99), ("chunk_count", 5), ("payload_length", 3 * 1024 + 6)])
def test_inconsistent_fields_drop_the_frame(field: str, value: int) -> None:
    r = ready()
    items = chunks(1, THREE)
    items[2] = replace(items[2], **{field: value})
    assert feed(r, items) == []
    assert r.counters["frames_dropped.inconsistent"] == 1
    assert delivered(r, chunks(2, THREE)) == [(2, THREE)]


def test_reverse_order_assembles() -> None:
    r = ready()
    assert delivered(r, list(reversed(chunks(1, THREE)))) == [(1, THREE)]


def test_lengths_that_do_not_cover_the_payload_are_inconsistent() -> None:
    r = ready()
    items = chunks(1, THREE)
    short = replace(items[3], chunk_length=4, payload_bytes=items[3].payload_bytes[:4])
    assert feed(r, [*items[:3], short]) == []
    assert counters(r) == {"frames_dropped.inconsistent": 1}


@pytest.mark.parametrize(("changes", "reason"), [
    ({"chunk_count": 0}, "chunk_fields"),
    ({"chunk_index": 4}, "chunk_fields"),
    ({"header_included": 2}, "chunk_fields"),
    ({"payload_length": 0}, "payload_length"),
    ({"payload_length": (1 << 24) + 1}, "payload_length"),
    ({"chunk_length": 0}, "chunk_length"),
    ({"chunk_offset": 0xFFFFFFFF}, "chunk_length"),
    ({"chunk_length": 1000}, "chunk_length"),
    ({"header_included": 0, "header_bytes": b""}, "chunk_fields"),
    ({"header_bytes": bytes(255)}, "header_length"),
    ({"chunk_offset": 1}, "chunk_offset"),
    ({"epoch": EPOCH + 1}, "epoch"),
])
def test_chunk_checks(changes: dict[str, object], reason: str) -> None:
    r = ready()
    first = chunks(1, THREE)[0]
    assert r.on_chunk(replace(first, **changes), 0) is None
    assert counters(r) == {f"chunks_dropped.{reason}": 1}


def test_chunk_longer_than_c_is_dropped() -> None:
    r = ready()
    assert feed(r, chunks(1, payload(2000), chunk_bytes=2000)) == []
    assert counters(r) == {"chunks_dropped.chunk_length": 1}


@pytest.mark.parametrize(("header", "reason"), [
    (slot(2, len(THREE)), "bad_header"),               # seq 2 in a frame of seq 1
    (slot(1, 10), "bad_header"),                        # valuesLenBytes differs
    (bytes(8) + slot(1, len(THREE))[8:], "bad_header"),  # not committed
    (slot(1, len(THREE), pool_id=9), "unknown_pool"),
])
def test_header_checks_drop_the_frame(header: bytes, reason: str) -> None:
    r = ready()
    assert feed(r, chunks(1, THREE, header=header)) == []
    assert r.counters[f"frames_dropped.{reason}"] == 1


def test_frame_larger_than_its_source_pool() -> None:
    r = ready()
    data = payload(5000)
    assert feed(r, chunks(1, data, header=slot(1, 5000, pool_id=1))) == []
    assert r.counters["frames_dropped.source_stride"] == 1


def test_frames_no_pool_can_hold_are_refused_before_allocating() -> None:
    r = ready(ChunkLimits(1024, 1 << 30, False, 100 * MS))
    first = replace(chunks(1, THREE)[1], payload_length=1 << 30, chunk_count=1 << 16 - 1)
    assert r.on_chunk(first, 0) is None
    assert r.counters["frames_dropped.source_stride"] == 1
    assert r.buffer_capacity() == 0
    r.local_strides = (4096,)
    mid = replace(chunks(2, payload(8000))[1], payload_length=8000)
    assert r.on_chunk(mid, 0) is None
    assert r.counters["frames_dropped.no_local_pool"] == 1
    assert r.buffer_capacity() == 0


def test_epoch_change_drops_the_in_flight_frame() -> None:
    r = ready()
    assert delivered(r, chunks(1, THREE)) == [(1, THREE)]
    frame_s = chunks(2, THREE)
    feed(r, frame_s[:2])
    assert r.apply_announce(announce(EPOCH + 5)) is AnnounceOutcome.NEW_EPOCH
    assert feed(r, frame_s[2:]) == []
    assert r.counters["chunks_dropped.epoch"] == 2
    assert r.counters["assemblies_abandoned"] == 1
    assert delivered(r, chunks(0, THREE, epoch=EPOCH + 5)) == [(0, THREE)]
    assert r.apply_announce(announce(EPOCH)) is AnnounceOutcome.IGNORED
    assert r.apply_announce(announce(EPOCH + 5)) is AnnounceOutcome.SAME_EPOCH
    assert r.counters["announces_ignored"] == 1


@pytest.mark.parametrize("bad", [
    {"layout_version": 2}, {"header_slot_bytes": 128}, {"payload_pools": ()}])
def test_invalid_announces_are_ignored(bad: dict[str, object]) -> None:
    r = Reassembler(STREAM, LIMITS)
    assert r.apply_announce(replace(announce(), **bad)) is AnnounceOutcome.IGNORED  # type: ignore[arg-type]
    assert r.announce is None


@st.composite
def hostile_chunk(draw: st.DrawFn) -> BridgeFrameChunk:
    base = draw(st.sampled_from(chunks(draw(st.integers(0, 3)), THREE, trace_id=1)))
    changes: dict[str, object] = {}
    for name in draw(st.lists(st.sampled_from([
        "seq", "chunk_index", "chunk_count", "chunk_offset", "chunk_length", "payload_length",
        "trace_id", "header_included", "epoch"]), max_size=3)):
        changes[name] = draw(st.one_of(st.integers(0, 5), st.integers(0, 0xFFFFFFFF)))
    if draw(st.booleans()):
        changes["payload_bytes"] = draw(st.binary(max_size=1100))
    return replace(base, **changes)


@FUZZ
@given(st.lists(st.tuples(hostile_chunk(), st.integers(0, 300 * MS)), max_size=30))
def test_any_chunk_stream_is_survived_and_memory_stays_bounded(
    stream: list[tuple[BridgeFrameChunk, int]],
) -> None:
    r = ready()
    now = 0
    for chunk, step in stream:
        now += step
        frame = r.on_chunk(chunk, now)
        r.on_tick(now)
        if frame is not None:
            assert len(frame.payload) == frame.fields.values_len_bytes
            assert frame.fields.values_len_bytes <= 4096
        assert r.buffer_capacity() <= 1 << 20
    assert delivered(r, chunks(50, THREE)) == [(50, THREE)]
