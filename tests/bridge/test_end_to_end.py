"""bridge.md §13.2 end to end: two drivers, two bridge processes, aeron:udp on 127.0.0.1."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import numpy as np
import pytest

from tensorpool_client import Consumer, DriverClient, Frame, Producer
from tests.bridge.conftest import POOLS_A, POOLS_B, BridgeProc, Host, World

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

SIZES = [1, 24, 1023, 1024, 1025, 3 * 1024 + 5, 100_000, 1 << 20]


def hosts(world: World) -> tuple[Host, Host]:
    a = world.host("bra", stream=10000, pools=POOLS_A, nslots=64)
    b = world.host("brb", stream=20000, pools=POOLS_B, nslots=32)
    return a, b


class Ends:
    """The producer on host A and the consumer on host B (in the test process)."""

    def __init__(self, a: Host, b: Host) -> None:
        self.ca = DriverClient(a.aeron_dir).start()
        self.cb = DriverClient(b.aeron_dir).start()
        self.a, self.b = a, b
        self.producer = self.make_producer()
        self.consumer = Consumer(self.cb, 20000, allowed_base_dirs=(b.root / "shm",))

    def make_producer(self) -> Producer:
        return Producer(self.ca, 10000, allowed_base_dirs=(self.a.root / "shm",))

    def receive(self, seq: int, timeout: float = 10.0) -> Frame:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = self.consumer.poll(0.2)
            if frame is not None and frame.seq == seq:
                return frame
            assert frame is None or frame.seq < seq, f"seq {frame.seq} before {seq}"
        raise AssertionError(f"frame {seq} never arrived")

    def close(self) -> None:
        for closer in (self.consumer.close, self.producer.close, self.ca.close, self.cb.close):
            with contextlib.suppress(Exception):  # best effort: the drivers die next
                closer()


def rig(world: World, *, integrity: bool) -> Iterator[tuple[Ends, BridgeProc, BridgeProc]]:
    a, b = hosts(world)
    sender = world.bridge(a, "sender", integrity=integrity)
    receiver = world.bridge(b, "receiver", integrity=integrity)
    e = Ends(a, b)
    try:
        receiver.wait_state("receiver", "streaming")
        sender.wait_state("sender", "streaming")
        yield e, sender, receiver
    finally:
        e.close()


@pytest.fixture
def ends(world: World) -> Iterator[tuple[Ends, BridgeProc, BridgeProc]]:
    yield from rig(world, integrity=False)


@pytest.fixture
def ends_crc(world: World) -> Iterator[tuple[Ends, BridgeProc, BridgeProc]]:
    yield from rig(world, integrity=True)


def arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out: list[np.ndarray] = [rng.integers(0, 255, size, dtype=np.uint8) for size in SIZES]
    out.append(rng.standard_normal((3, 5)).astype(np.float32))
    out.append(np.asfortranarray(rng.standard_normal((4, 6))))
    out.append(rng.integers(-9, 9, (2, 3, 4), dtype=np.int16))
    return out


def test_frames_arrive_identical(ends: tuple[Ends, BridgeProc, BridgeProc]) -> None:
    check_identical(*ends)


def test_frames_arrive_identical_with_crc32c(
    ends_crc: tuple[Ends, BridgeProc, BridgeProc],
) -> None:
    check_identical(*ends_crc)


def check_identical(e: Ends, sender: BridgeProc, receiver: BridgeProc) -> None:
    epochs = set()
    for array in arrays():
        seq = e.producer.offer(array, meta_version=3)
        frame = e.receive(seq)
        assert frame.seq == seq
        assert frame.array.dtype == array.dtype
        assert frame.array.shape == array.shape
        assert frame.array.tobytes(order="A") == array.tobytes(order="A")
        np.testing.assert_array_equal(frame.array, array)
        assert frame.meta_version == 3
        assert frame.stream_id == 20000
        epochs.add(frame.epoch)
    assert len(epochs) == 1
    assert epochs != {e.producer.epoch}
    status = receiver.mapping("receiver")
    counters = status["counters"]
    assert counters["frames_rematerialized"] == len(arrays())
    assert not any(v for k, v in counters.items() if k.startswith(("frames_dropped",
                                                                   "chunks_dropped")))
    assert status["source_epoch"] == e.producer.epoch
    assert status["local_epoch"] == next(iter(epochs))
    assert sender.mapping("sender")["counters"]["frames_forwarded"] == len(arrays())


def test_source_epoch_change_resumes_under_a_new_local_epoch(
    ends: tuple[Ends, BridgeProc, BridgeProc],
) -> None:
    e, _sender, receiver = ends
    data = np.arange(5000, dtype=np.uint8)
    for _ in range(5):
        seq = e.producer.offer(data)
    first = e.receive(seq)
    old_local = first.epoch
    old_source = e.producer.epoch
    e.producer.close()  # detach: the driver bumps A's epoch
    e.producer = e.make_producer()
    assert e.producer.epoch > old_source
    assert e.producer.next_seq == 0
    # Frames produced before the new epoch's announce has crossed and the receiver has
    # re-attached are dropped (counted); keep producing until the far side has one.
    sent: dict[int, bytes] = {}
    frame = None
    deadline = time.monotonic() + 15
    while frame is None:
        assert time.monotonic() < deadline, f"no frame of the new epoch: {receiver.status()}"
        payload = np.full(5000, e.producer.next_seq % 251, dtype=np.uint8)
        sent[e.producer.offer(payload)] = payload.tobytes()
        frame = e.consumer.poll(0.1)
        while frame is not None and frame.epoch == old_local:
            frame = e.consumer.poll(0.1)  # old-epoch frames still queued before the change
    assert frame.epoch > old_local
    assert frame.seq in sent
    assert frame.seq < 5 + len(sent)  # seqs restarted low: not refused as regressions
    assert frame.array.tobytes() == sent[frame.seq]
    status = receiver.mapping("receiver")
    assert status["source_epoch"] == e.producer.epoch
    assert status["local_epoch"] == frame.epoch
    assert status["counters"]["local_reattach"] >= 2
    assert status["counters"].get("frames_dropped.seq_regression", 0) == 0


def test_restarted_receiver_starts_a_new_local_epoch(
    ends: tuple[Ends, BridgeProc, BridgeProc],
) -> None:
    e, _sender, receiver = ends
    data = np.arange(300, dtype=np.uint16)
    before = e.receive(e.producer.offer(data)).epoch
    assert receiver.stop() == 0
    receiver.start()
    receiver.wait_state("receiver", "streaming")
    deadline = time.monotonic() + 15
    while True:
        seq = e.producer.offer(data)
        frame = e.consumer.poll(0.3)
        while frame is not None and frame.seq != seq:
            frame = e.consumer.poll(0.3)
        if frame is not None:
            break
        assert time.monotonic() < deadline, "no frame after the receiver restart"
    assert frame.epoch > before
    np.testing.assert_array_equal(frame.array, data)


def test_far_driver_shutdown_stops_the_receiver_and_a_restart_resumes(
    world: World, ends: tuple[Ends, BridgeProc, BridgeProc],
) -> None:
    """The far driver's embedded media driver carries the receiver's Aeron client, so a
    driver shutdown ends the receiver (exit 1, for its supervisor to restart); the sender
    keeps running (frames skipped while nobody listens) and a restarted pair resumes."""
    e, sender, receiver = ends
    data = np.arange(64, dtype=np.uint8)
    e.receive(e.producer.offer(data))
    e.consumer.close()
    e.cb.close()
    assert e.b.driver.stop() == 0
    assert receiver.proc is not None
    assert receiver.proc.wait(20) == 1
    for _ in range(20):
        e.producer.offer(data)
    e.b.driver.start(ready="running:")
    receiver.start()
    receiver.wait_state("receiver", "streaming")
    e.cb = DriverClient(e.b.aeron_dir).start()
    e.consumer = Consumer(e.cb, 20000, allowed_base_dirs=(e.b.root / "shm",))
    deadline = time.monotonic() + 15
    frame = None
    while frame is None:
        assert time.monotonic() < deadline, receiver.status()
        seq = e.producer.offer(data)
        frame = e.consumer.poll(0.2)
        while frame is not None and frame.seq != seq:
            frame = e.consumer.poll(0.2)
    np.testing.assert_array_equal(frame.array, data)
    assert sender.mapping("sender")["state"] == "streaming"
