"""The data plane: claim/commit, the fast paths against the reference layout, losses, back pressure.

Real Aeron (an embedded media driver), real SHM regions provisioned by shm/, leases granted by
the fake driver peer. The reference writer and reader are shm.ring's (struct-packed, checked
against the spec's worked example in tests/shm), so a fast path that drifted from the layout
the C and Julia clients use fails here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import messages
from messages import FrameDescriptor, MajorOrder
from shm import ExpectedRegion, RegionType, open_region
from shm.ring import Frame as ReferenceFrame
from shm.slot_layout import TensorDescriptor, pack_slot_body
from tensorpool_client import (
    BackPressured,
    ClientClosed,
    Consumer,
    DriverClient,
    LeaseLost,
    LostFrames,
    Producer,
)
from tensorpool_client.tensor import contiguous_strides
from tests.client.conftest import STREAM, wait_connected

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from shm import MappedRegion, ProvisionedEpoch
    from tests.client.fakes import FakeDriver

EPOCH = 1000


def regions(epoch: ProvisionedEpoch, base: Path, *,
            writable: bool = False) -> tuple[MappedRegion, dict[int, MappedRegion]]:
    """The epoch's regions mapped independently of Producer/Consumer."""
    header = open_region(epoch.header_uri, ExpectedRegion(
        region_type=RegionType.HEADER_RING, stream_id=STREAM, epoch=EPOCH, nslots=8,
        activity_window_ns=None), allowed_base_dirs=(base,), writable=writable)
    pools = {p.pool_id: open_region(p.uri, ExpectedRegion(
        region_type=RegionType.PAYLOAD_POOL, stream_id=STREAM, epoch=EPOCH, nslots=8,
        pool_id=p.pool_id, stride_bytes=p.stride_bytes, activity_window_ns=None),
        allowed_base_dirs=(base,), writable=writable) for p in epoch.pools}
    return header, pools


def poll_all(consumer: Consumer, count: int, timeout: float = 5.0) -> list[int]:
    """Seqs of the next ``count`` frames, each checked to hold its own seq as payload."""
    seqs: list[int] = []
    deadline = time.monotonic() + timeout
    while len(seqs) < count:
        assert time.monotonic() < deadline, f"got only {seqs}"
        for frame in consumer.poll_batch(64, timeout=0.1):
            assert int(frame.array[0]) == frame.seq
            assert frame.intact()
            seqs.append(frame.seq)
    return seqs


def test_a_claimed_slot_is_filled_in_place_and_committed_on_leaving_the_block(
    producer: Producer, consumer: Consumer
) -> None:
    wait_connected(producer)
    with producer.claim((2, 3), np.float32) as array:
        assert array.flags.writeable
        array[...] = [[1, 2, 3], [4, 5, 6]]
    claim = producer.claim(5, "<i8", order="F")
    claim.array[:] = 7
    assert claim.commit(meta_version=9) == 1
    first = consumer.poll(timeout=5.0)
    second = consumer.poll(timeout=5.0)
    assert first is not None
    assert second is not None
    assert first.copy().tolist() == [[1, 2, 3], [4, 5, 6]]
    assert (first.seq, first.meta_version) == (0, 0)
    assert (second.seq, second.meta_version, second.copy().tolist()) == (1, 9, [7] * 5)


def test_a_claim_left_by_an_exception_publishes_nothing_and_its_seq_is_reused(
    producer: Producer, consumer: Consumer
) -> None:
    wait_connected(producer)
    def fill_and_fail() -> None:
        with producer.claim(4, np.int32) as array:
            array[:] = 1
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fill_and_fail()
    assert producer.next_seq == 0
    assert producer.offer(np.arange(4, dtype=np.int32)) == 0
    frame = consumer.poll(timeout=5.0)
    assert frame is not None
    assert (frame.seq, frame.copy().tolist()) == (0, [0, 1, 2, 3])
    assert consumer.poll(timeout=0.2) is None


def test_one_claim_at_a_time_and_only_the_open_claim_commits(producer: Producer) -> None:
    claim = producer.claim(4, np.uint8)
    with pytest.raises(RuntimeError, match="claimed and not committed"):
        producer.claim(4, np.uint8)
    claim.commit()
    with pytest.raises(RuntimeError, match="not the open claim"):
        claim.commit()
    with pytest.raises(RuntimeError, match="no frame is claimed"):
        producer.commit()
    with pytest.raises(ValueError, match="exceeds the largest pool stride"):
        producer.claim((2, 4096), np.uint8)
    with pytest.raises(ValueError, match="no tensorpool Dtype"):
        producer.claim(4, np.complex64)
    with pytest.raises(ValueError, match=r"1\.\.8 dimensions"):
        producer.claim((1,) * 9, np.uint8)


ARRAYS: list[Any] = [
    np.arange(6, dtype=np.float64).reshape(2, 3),
    np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
    np.arange(10, dtype=">u4"),                                 # big-endian: converted
    np.arange(40, dtype=np.float32).reshape(5, 8)[:, ::2],      # not contiguous: compacted
    np.zeros((0, 3), dtype=np.uint8),
]


def test_slots_the_producer_writes_are_the_reference_layout_byte_for_byte(
    producer: Producer, epoch1: ProvisionedEpoch, base: Path
) -> None:
    header, pools = regions(epoch1, base)
    try:
        ring = header.header_ring()
        views = {pool_id: region.payload_pool() for pool_id, region in pools.items()}
        for array in ARRAYS:
            seq = producer.offer(array, meta_version=5, timestamp_ns=1234 + 7 * producer.next_seq)
            read = ring.read_frame(seq, views)
            assert isinstance(read, ReferenceFrame)
            written = np.ascontiguousarray(array) if not (
                array.flags.c_contiguous or array.flags.f_contiguous) else array
            order = (MajorOrder.COLUMN if written.ndim > 1 and written.flags.f_contiguous
                     and not written.flags.c_contiguous else MajorOrder.ROW)
            little = written.astype(written.dtype.newbyteorder("<"))
            expected = pack_slot_body(
                values_len_bytes=written.nbytes, payload_slot=seq & 7, pool_id=read.pool_id,
                timestamp_ns=1234 + 7 * seq, meta_version=5,
                tensor=TensorDescriptor(
                    dtype=read.tensor.dtype, major_order=int(order), dims=written.shape,
                    strides=contiguous_strides(written.shape, written.itemsize, order)))
            slot = bytes(ring.raw[64 + (seq & 7) * 256 + 8: 64 + (seq & 7) * 256 + 256])
            assert slot == expected
            assert read.payload == little.tobytes(order="A")
            assert ring.load_seq_commit(seq & 7) == (seq << 1) | 1
    finally:
        header.close()
        for region in pools.values():
            region.close()


def test_frames_of_a_reference_writer_are_read_and_a_new_layout_in_a_slot_is_revalidated(
    consumer: Consumer, make_client: Callable[..., DriverClient], epoch1: ProvisionedEpoch,
    base: Path,
) -> None:
    """What a C producer does: the seqlock protocol by the spec, descriptors by the codec."""
    header, pools = regions(epoch1, base, writable=True)
    client = make_client()
    publication = client.publication("aeron:ipc?term-length=4m", 1100)
    try:
        ring = header.header_ring()
        pool = pools[2].payload_pool()
        frames = [np.full((2, 2), 1.5), np.arange(6, dtype=np.int32).reshape(3, 2),
                  np.arange(6, dtype=np.int32).reshape(2, 3)]
        got = []
        for seq, array in enumerate([frames[0], frames[1], *([frames[0]] * 6), frames[2]]):
            ring.write_frame(seq, pool, array.tobytes(), tensor=TensorDescriptor(
                dtype=10 if array.dtype == np.float64 else 6, major_order=1,
                dims=array.shape), timestamp_ns=seq, meta_version=2)
            assert publication.offer(messages.encode(FrameDescriptor(
                stream_id=STREAM, epoch=EPOCH, seq=seq, timestamp_ns=seq, meta_version=2)))
            frame = consumer.poll(timeout=5.0)
            assert frame is not None, f"frame {seq} did not arrive"
            got.append((frame.seq, frame.array.shape, frame.copy().tolist()))
        assert got[0] == (0, (2, 2), [[1.5, 1.5], [1.5, 1.5]])
        assert got[1] == (1, (3, 2), [[0, 1], [2, 3], [4, 5]])
        assert got[8] == (8, (2, 3), [[0, 1, 2], [3, 4, 5]])  # slot 0 again, new shape
        assert consumer.frames_lost == 0
    finally:
        publication.close()
        header.close()
        for region in pools.values():
            region.close()


def test_a_gap_in_descriptors_is_reported_as_exactly_the_frames_never_announced(
    producer: Producer, consumer: Consumer
) -> None:
    reported: list[LostFrames] = []
    consumer.on_loss = reported.append
    wait_connected(producer)
    producer.offer(np.array([0], dtype=np.int64))
    producer.next_seq = 5  # seqs 1..4 are never published
    producer.offer(np.array([5], dtype=np.int64))
    assert poll_all(consumer, 2) == [0, 5]
    assert reported == [LostFrames(EPOCH, 1, 4, "gap")]
    assert consumer.frames_lost == 4


def test_a_reader_overtaken_by_the_ring_is_told_which_frames_it_lost(
    producer: Producer, consumer: Consumer
) -> None:
    wait_connected(producer)
    for i in range(20):
        producer.offer(np.array([i], dtype=np.int64))
    assert poll_all(consumer, 8) == list(range(12, 20))
    assert list(consumer.losses) == [LostFrames(EPOCH, 0, 11, "overwritten")]
    assert consumer.losses[0].count == consumer.frames_lost == 12


def test_wait_for_consumers_counts_a_consumer_of_this_stream(
    producer: Producer, granting: FakeDriver, make_client: Callable[..., DriverClient],
    base: Path,
) -> None:
    assert producer.wait_for_consumers(timeout=0.2) == 0
    with Consumer(make_client(), STREAM, allowed_base_dirs=(base,)):
        assert producer.wait_for_consumers(timeout=10.0) == 1


@pytest.fixture
def careful(granting: FakeDriver, make_client: Callable[..., DriverClient],
            base: Path) -> Iterator[Producer]:
    with Producer(make_client(), STREAM, allowed_base_dirs=(base,), overwrite_unread=False,
                  claim_timeout=0.3) as prod:
        yield prod


def test_a_producer_that_keeps_unread_frames_waits_for_its_slowest_consumer(
    careful: Producer, make_client: Callable[..., DriverClient], base: Path
) -> None:
    consumer = Consumer(make_client(), STREAM, allowed_base_dirs=(base,))
    try:
        assert careful.wait_for_consumers(timeout=10.0) == 1
        for i in range(8):
            careful.offer(np.array([i], dtype=np.int64))  # one ring: nothing unread is hit
        with pytest.raises(BackPressured) as info:
            careful.offer(np.array([8], dtype=np.int64))
        assert info.value.slowest == consumer.lease.client_id
        held = consumer.poll_batch(64, timeout=5.0)
        assert [frame.seq for frame in held] == list(range(8))
        with pytest.raises(BackPressured):  # the caller may still read the whole batch
            careful.offer(np.array([8], dtype=np.int64))
        assert all(frame.intact() for frame in held)
        assert consumer.poll() is None  # the next poll releases the batch and says so
        for i in range(8, 15):
            careful.offer(np.array([i], dtype=np.int64))  # up to seq 7 + 8 - 1 is free
        assert poll_all(consumer, 7) == list(range(8, 15))
        assert consumer.frames_lost == 0
        assert careful.waits_for_consumers >= 1
    finally:
        consumer.close()  # says it left: the producer stops waiting for it at once
    for i in range(15, 40):
        careful.offer(np.array([i], dtype=np.int64))


def test_frame_calls_after_the_client_closed_raise_instead_of_touching_freed_memory(
    producer: Producer, consumer: Consumer
) -> None:
    producer._client.close()
    consumer._client.close()
    with pytest.raises(LeaseLost):
        producer.offer(np.zeros(3))
    with pytest.raises(LeaseLost):
        consumer.poll(timeout=0.1)
    with pytest.raises(ClientClosed):
        producer.poll_qos()
