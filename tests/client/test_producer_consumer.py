"""Producer and Consumer over regions provisioned by shm/, granted by the fake driver peer."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from messages import (
    ShmDetachRequest,
)
from shm import ExpectedRegion, RegionType, open_region, seqlock
from tensorpool_client import Consumer, DriverClient, FrameOverwritten, LostFrames, Producer
from tests.client.conftest import STREAM, wait_connected
from tests.client.fakes import FakeDriver, announce_of, provision

if TYPE_CHECKING:
    from collections.abc import Callable

    from shm import ProvisionedEpoch

REPO = Path(__file__).resolve().parents[2]


ARRAYS: list[Any] = [
    np.arange(6, dtype=np.float64).reshape(2, 3),
    np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
    np.arange(10, dtype=np.uint8),
    np.array([[True, False], [False, True]]),
    np.arange(40, dtype=np.float32).reshape(5, 8)[:, ::2],  # not contiguous: compacted
    np.arange(24, dtype=np.int64).reshape(2, 3, 4),
    np.arange(300, dtype=np.uint32),                         # 1200 bytes: the 4096 pool
]


def expected_layout(array: Any) -> tuple[str, list[int], list[int], Any]:
    written = array if (array.flags.c_contiguous or array.flags.f_contiguous) else (
        np.ascontiguousarray(array))
    return written.dtype.str, list(written.shape), list(written.strides), written.tolist()


@pytest.mark.slow
def test_frames_written_here_are_read_intact_by_a_consumer_process(
    granting: FakeDriver, producer: Producer, aeron_dir: str, base: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("consumer_proc.py")), aeron_dir,
         str(base), str(STREAM), str(len(ARRAYS))],
        stdout=subprocess.PIPE, text=True, cwd=REPO, env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        wait_connected(producer)
        seqs = [producer.offer(a, meta_version=3) for a in ARRAYS]
        lines = [json.loads(proc.stdout.readline()) for _ in ARRAYS]
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert [line["seq"] for line in lines] == seqs == list(range(len(ARRAYS)))
    for line, array in zip(lines, ARRAYS, strict=True):
        dtype, shape, strides, values = expected_layout(array)
        assert (line["dtype"], line["shape"], line["strides"]) == (dtype, shape, strides)
        assert line["values"] == values
        assert (line["epoch"], line["meta_version"]) == (1000, 3)
    assert producer.descriptors_not_sent == 0


def test_a_zero_copy_frame_reports_being_overwritten(
    producer: Producer, consumer: Consumer
) -> None:
    wait_connected(producer)
    producer.offer(np.arange(4, dtype=np.int32))
    frame = consumer.poll(timeout=5.0)
    assert frame is not None
    assert frame.intact()
    assert not frame.array.flags.writeable
    assert frame.copy().tolist() == [0, 1, 2, 3]
    for i in range(8):  # 8 slots: seq 8 reuses slot 0
        producer.offer(np.full(4, i, dtype=np.int32))
    assert not frame.intact()
    with pytest.raises(FrameOverwritten):
        frame.copy()


def test_a_slow_consumer_drops_overwritten_frames_and_reads_the_rest(
    producer: Producer, consumer: Consumer
) -> None:
    wait_connected(producer)
    for i in range(20):
        producer.offer(np.array([i], dtype=np.int64))
    accepted: list[int] = []
    while not accepted or accepted[-1] != 19:
        frame = consumer.poll(timeout=5.0)
        assert frame is not None
        accepted.append(frame.seq)
        assert frame.copy().tolist() == [frame.seq]
    assert accepted == list(range(12, 20))
    assert consumer.drops["other_seq"] == 12


def test_a_higher_epoch_announce_makes_the_consumer_remap(
    granting: FakeDriver, producer: Producer, consumer: Consumer, base: Path,
) -> None:
    assert consumer.epoch == 1000
    epoch2 = provision(base, STREAM, 2000)
    granting.send(announce_of(epoch2), announce=True)
    consumer._client.wait_for_announce(STREAM, min_epoch=2000)
    wait_connected(producer)
    producer.offer(np.zeros(3))  # a descriptor of the old epoch: dropped after the remap
    deadline = time.monotonic() + 10.0
    while consumer.drops["epoch"] == 0:  # until the descriptor arrived, however slowly
        assert time.monotonic() < deadline, "the old-epoch descriptor never arrived"
        assert consumer.poll(timeout=0.1) is None
    assert consumer.epoch == 2000
    assert consumer.drops["epoch"] == 1


def _rewrite_superblock_field(path: Path, offset: int, value: int) -> None:
    """Overwrite one uint64 of a mapped region's superblock in place, as a re-provisioning
    driver writing the same file would."""
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(struct.pack("<Q", value))


def _announce_again(granting: FakeDriver, consumer: Consumer, epoch: ProvisionedEpoch) -> None:
    """Send a fresh announce of ``epoch`` and wait until the consumer's client holds it."""
    before = consumer._client.latest_announce(STREAM)
    granting.send(announce_of(epoch), announce=True)
    deadline = time.monotonic() + 10.0
    while consumer._client.latest_announce(STREAM) is before:
        assert time.monotonic() < deadline, "the announce never arrived"
        time.sleep(0.01)


SUPERBLOCK_EPOCH, SUPERBLOCK_PID = 12, 40


def test_a_pid_changed_in_place_makes_the_consumer_remap(
    granting: FakeDriver, consumer: Consumer, epoch1: ProvisionedEpoch,
) -> None:
    assert consumer._mapping is not None
    first = consumer._mapping
    _announce_again(granting, consumer, epoch1)  # nothing changed: the mapping stays
    assert consumer.poll(timeout=0.05) is None
    assert consumer._mapping is first
    assert consumer.identity_remaps == 0
    _rewrite_superblock_field(epoch1.directory / "header.ring", SUPERBLOCK_PID, os.getpid() + 1)
    _announce_again(granting, consumer, epoch1)
    assert consumer.poll(timeout=0.05) is None
    assert consumer.identity_remaps == 1
    assert consumer._mapping is not None
    assert consumer._mapping is not first
    assert consumer._mapping.regions[0].pid == os.getpid() + 1
    assert consumer.epoch == 1000


def test_an_epoch_changed_in_place_unmaps_and_drops_its_descriptors(
    granting: FakeDriver, producer: Producer, consumer: Consumer, epoch1: ProvisionedEpoch,
) -> None:
    _rewrite_superblock_field(epoch1.directory / "header.ring", SUPERBLOCK_EPOCH, 999)
    _announce_again(granting, consumer, epoch1)
    assert consumer.poll(timeout=0.05) is None
    assert consumer.identity_remaps == 1
    assert consumer.epoch is None  # the file no longer says epoch 1000: not mapped
    assert consumer.remap_failures == 1
    wait_connected(producer)
    producer.offer(np.zeros(3))
    deadline = time.monotonic() + 10.0
    while consumer.drops["epoch"] == 0:
        assert time.monotonic() < deadline, "the descriptor never arrived"
        assert consumer.poll(timeout=0.1) is None


def test_producer_picks_the_smallest_pool_that_fits_and_refuses_oversize(
    producer: Producer, consumer: Consumer
) -> None:
    wait_connected(producer)
    producer.offer(np.zeros(32, dtype=np.uint8))
    producer.offer(np.zeros(257, dtype=np.uint8))
    pools = []
    for _ in range(2):
        frame = consumer.poll(timeout=5.0)
        assert frame is not None
        pools.append(frame.pool_id)
    assert pools == [1, 2]
    with pytest.raises(ValueError, match="exceeds the largest pool stride 4096"):
        producer.offer(np.zeros(4097, dtype=np.uint8))


def test_producer_refreshes_activity_and_detaches_on_close(
    granting: FakeDriver, make_client: Callable[..., DriverClient], base: Path,
    epoch1: ProvisionedEpoch,
) -> None:
    client = make_client()
    provisioned_at = time.monotonic_ns()
    producer = Producer(client, STREAM, allowed_base_dirs=(base,))
    client.aeron.call(lambda _a: None)  # a full loop turn: the first refresh has run
    expected = ExpectedRegion(region_type=RegionType.HEADER_RING, stream_id=STREAM,
                              epoch=1000, nslots=8, activity_window_ns=None)
    with open_region(epoch1.header_uri, expected, allowed_base_dirs=(base,)) as region:
        assert region.superblock.activity_timestamp_ns > provisioned_at
    producer.close()
    granting.wait_for(lambda r: any(isinstance(m, ShmDetachRequest) for m in r))
    (detach,) = granting.of_type(ShmDetachRequest)
    assert detach.lease_id == producer.lease.lease_id


def test_a_slot_being_rewritten_is_dropped_and_the_next_frame_read(
    producer: Producer, consumer: Consumer
) -> None:
    wait_connected(producer)
    producer.offer(np.arange(4, dtype=np.int32))      # seq 0
    producer._ring.begin_write(0)                      # ...and its slot is in progress again
    producer.offer(np.arange(4, 8, dtype=np.int32))   # seq 1
    frame = consumer.poll(timeout=5.0)
    assert frame is not None
    assert (frame.seq, frame.copy().tolist()) == (1, [4, 5, 6, 7])
    assert consumer.drops["not_committed"] == 1


class _RacingWords:
    """The seqCommit words of a ring whose second load of the first frame sees the producer
    starting seq + nslots in that slot, as if it raced the header copy."""

    def __init__(self, words: memoryview, nslots: int) -> None:
        self.words = words
        self.nslots = nslots
        self.loads = 0

    def __getitem__(self, index: int) -> int:
        self.loads += 1
        word = int(self.words[index])
        return seqlock.in_progress_word(self.nslots) if self.loads == 2 else word


def test_a_frame_rewritten_while_its_header_is_copied_is_dropped_as_torn(
    producer: Producer, consumer: Consumer
) -> None:
    mapping = consumer._mapping
    assert mapping is not None
    mapping.words = _RacingWords(mapping.words, mapping.nslots)  # type: ignore[assignment]
    wait_connected(producer)
    producer.offer(np.arange(4, dtype=np.int32))      # seq 0: torn
    producer.offer(np.arange(4, 8, dtype=np.int32))   # seq 1: intact
    frame = consumer.poll(timeout=5.0)
    assert frame is not None
    assert (frame.seq, frame.copy().tolist()) == (1, [4, 5, 6, 7])
    assert consumer.drops["torn"] == 1
    assert list(consumer.losses) == [LostFrames(1000, 0, 0, "torn")]
