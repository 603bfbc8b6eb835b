"""The relay API (the bridge's data plane): Consumer.poll_descriptors/read_slot_into and
Producer.relay_layout/relay, against the reference layout and the reference descriptor codec,
and the one offer a relay makes per frame (never waiting, but not lost to a term rotation).

Real Aeron (an embedded media driver), real SHM regions, leases granted by the fake driver.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pyaeron
import pytest

import messages
from messages import FrameDescriptor
from shm import ExpectedRegion, RegionType, open_region
from shm.slot_layout import TensorDescriptor, pack_slot_body
from tensorpool_client import DirectPublication
from tests.client.conftest import STREAM, wait_connected

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from shm import MappedRegion, ProvisionedEpoch
    from tensorpool_client import Consumer, DriverClient, Producer

EPOCH = 1000
TENSOR = TensorDescriptor(dtype=6, major_order=1, dims=(3, 4), strides=(16, 4))  # int32 3x4


@pytest.fixture
def header(epoch1: ProvisionedEpoch, base: Path) -> Iterator[MappedRegion]:
    region = open_region(epoch1.header_uri, ExpectedRegion(
        region_type=RegionType.HEADER_RING, stream_id=STREAM, epoch=EPOCH, nslots=8,
        activity_window_ns=None), allowed_base_dirs=(base,), writable=True)
    try:
        yield region
    finally:
        region.close()


def descriptors(make_client: Callable[..., DriverClient]) -> Callable[[int], list[Any]]:
    """A reader of the descriptor stream through the reference codec."""
    sub = make_client().subscription("aeron:ipc?term-length=4m", 1100)

    def read(count: int) -> list[Any]:
        out: list[Any] = []
        deadline = time.monotonic() + 5.0
        while len(out) < count and time.monotonic() < deadline:
            data = sub.poll(timeout=0.05)
            if data is not None:
                out.append(messages.decode(data))
        return out

    return read


def test_relay_keeps_the_source_seq_header_timestamp_and_meta_and_publishes_at_once(
    producer: Producer, consumer: Consumer, header: MappedRegion,
    make_client: Callable[..., DriverClient],
) -> None:
    wait_connected(producer)
    read_descriptors = descriptors(make_client)
    layout = producer.relay_layout(TENSOR, 48)
    assert layout is not None
    payload = np.arange(12, dtype="<i4").tobytes()
    assert producer.relay(layout, 41, payload, timestamp_ns=777, meta_version=3, trace_id=9)
    assert producer.relay(layout, 45, memoryview(bytearray(payload)), timestamp_ns=778,
                          meta_version=4)
    ring = header.header_ring()
    for seq, stamp, meta in ((41, 777, 3), (45, 778, 4)):
        at = 64 + (seq & 7) * 256
        assert ring.load_seq_commit(seq & 7) == (seq << 1) | 1
        assert bytes(ring.raw[at + 8 : at + 256]) == pack_slot_body(
            values_len_bytes=48, payload_slot=seq & 7, pool_id=layout.pool.pool_id,
            timestamp_ns=stamp, meta_version=meta, tensor=TENSOR)
    got = [(type(m), m.seq, m.meta_version, m.trace_id) for m in read_descriptors(2)]
    # the codec reads traceId 0 as "none"
    assert got == [(FrameDescriptor, 41, 3, 9), (FrameDescriptor, 45, 4, None)]
    frames = [consumer.poll(timeout=5.0), consumer.poll(timeout=5.0)]
    assert [(f.seq, f.timestamp_ns, f.meta_version, f.copy().tolist()) for f in frames if f] == [
        (41, 777, 3, np.arange(12).reshape(3, 4).tolist()),
        (45, 778, 4, np.arange(12).reshape(3, 4).tolist())]
    assert producer.next_seq == 46


def test_relay_refuses_a_seq_going_back_and_a_payload_of_another_length_before_writing(
    producer: Producer, header: MappedRegion,
) -> None:
    layout = producer.relay_layout(TENSOR, 48)
    assert layout is not None
    producer.relay(layout, 5, bytes(48), timestamp_ns=1, meta_version=0)
    ring = header.header_ring()
    with pytest.raises(ValueError, match="below the next seq"):
        producer.relay(layout, 5, bytes(48), timestamp_ns=1, meta_version=0)
    with pytest.raises(ValueError, match="47 bytes"):
        producer.relay(layout, 6, bytes(47), timestamp_ns=1, meta_version=0)
    assert ring.load_seq_commit(6) == 0  # the refused frame never touched its slot
    assert ring.load_seq_commit(5) == (5 << 1) | 1


def test_relay_layout_takes_the_smallest_pool_that_fits_and_none_past_the_largest(
    producer: Producer,
) -> None:
    small, large, none = (producer.relay_layout(TENSOR, n) for n in (256, 257, 4097))
    assert small is not None
    assert large is not None
    assert (small.pool.stride_bytes, large.pool.stride_bytes, none) == (256, 4096, None)
    assert producer.relay_layout(TENSOR, 256) is small  # cached per (tensor, length)


def test_poll_descriptors_and_read_slot_into_copy_the_raw_slot_and_payload(
    producer: Producer, consumer: Consumer, header: MappedRegion,
) -> None:
    wait_connected(producer)
    for value in range(3):
        producer.offer(np.full(10, value, dtype=np.uint8), meta_version=value)
    seen: list[tuple[int, int, int]] = []
    deadline = time.monotonic() + 5.0
    while len(seen) < 3:
        assert time.monotonic() < deadline
        consumer.poll_descriptors(lambda *d: seen.append(d), 16)
    assert seen == [(EPOCH, 0, 0), (EPOCH, 1, 0), (EPOCH, 2, 0)]
    assert consumer.max_payload_bytes == 4096
    ring = header.header_ring()
    slot, payload = memoryview(bytearray(256)), memoryview(bytearray(64))
    for seq in range(3):
        assert consumer.read_slot_into(EPOCH, seq, slot, payload) == 10
        at = 64 + seq * 256
        assert bytes(slot) == bytes(ring.raw[at : at + 256])
        assert bytes(payload[:10]) == bytes([seq]) * 10
    assert consumer.read_slot_into(EPOCH, 3, slot, payload) == "not_committed"
    assert consumer.read_slot_into(EPOCH + 1, 0, slot, payload) == "epoch"
    assert consumer.read_slot_into(EPOCH, 0, slot, payload[:9]) == "too_large"


def test_read_slot_into_skips_a_slot_whose_header_fails_validation(
    producer: Producer, consumer: Consumer, header: MappedRegion,
) -> None:
    producer.offer(np.zeros(10, dtype=np.uint8))
    slot, payload = memoryview(bytearray(256)), memoryview(bytearray(64))
    assert consumer.read_slot_into(EPOCH, 0, slot, payload) == 10
    ring = header.header_ring()
    ring.raw[64 + 18 : 64 + 22] = (8).to_bytes(4, "little")  # payloadOffset must be 0
    assert consumer.read_slot_into(EPOCH, 0, slot, payload) == "bad_header"
    ring.raw[64 + 18 : 64 + 22] = bytes(4)
    ring.raw[64 + 8 : 64 + 12] = bytes(4)  # valuesLenBytes 0
    assert consumer.read_slot_into(EPOCH, 0, slot, payload) == "zero_length"


class _Rotating:
    """A publication whose offers answer the given results in turn (then True)."""

    def __init__(self, *results: object) -> None:
        self.results = list(results)
        self.offers = 0

    def offer(self, _data: object) -> object:
        self.offers += 1
        return self.results.pop(0) if self.results else True

    def close(self) -> None:
        pass


def test_an_offer_that_must_not_wait_still_retries_a_term_rotation() -> None:
    rotating = _Rotating(pyaeron.ADMIN_ACTION)
    assert DirectPublication(rotating, "aeron:ipc", 1).offer(b"x", timeout_ns=0)
    assert rotating.offers == 2
    pressed = _Rotating(*[pyaeron.BACK_PRESSURED] * 1000)
    assert not DirectPublication(pressed, "aeron:ipc", 1).offer(b"x", timeout_ns=0)
    assert pressed.offers < 1000  # back pressure is not waited out
    gone = _Rotating(pyaeron.NOT_CONNECTED)
    assert not DirectPublication(gone, "aeron:ipc", 1).offer(b"x", timeout_ns=10**9)
    assert gone.offers == 1
