"""bridge.md §13.2 items 2-4 and 6 against a real receiver process: a raw injector publishes
hand-built chunks and announces on the UDP channels, a consumer reads the far driver."""

from __future__ import annotations

import contextlib
import dataclasses
import struct
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import messages
from messages import BridgeFrameChunk
from tensorpool_bridge.integrity import crc32c
from tensorpool_client import Consumer, DriverClient, Frame
from tensorpool_client.aeron_connect import connect
from tests.bridge.conftest import POOLS_A, POOLS_B, BridgeProc, World
from tests.bridge.frames import EPOCH, announce, chunks, payload

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

DATA = payload(3 * 1024 + 5)  # four chunks of at most 1024 bytes


class Injector:
    """Publishes through host A's media driver, as a hostile or faulty sender would."""

    def __init__(self, aeron_dir: str, world: World) -> None:
        self.aeron = connect(aeron_dir, client_name="bridge-injector")
        self.payload = self.aeron.add_exclusive_publication(world.payload, 3000)
        self.control = self.aeron.add_exclusive_publication(world.control, 3001)
        deadline = time.monotonic() + 10
        while not (self.payload.is_connected and self.control.is_connected):
            assert time.monotonic() < deadline, "receiver never subscribed"
            time.sleep(0.02)

    def _offer(self, pub: Any, data: bytes) -> None:
        deadline = time.monotonic() + 5
        while pub.offer(data) is not True:
            assert time.monotonic() < deadline
            time.sleep(0.001)

    def send(self, items: list[BridgeFrameChunk]) -> None:
        for item in items:
            self._offer(self.payload, messages.encode(item))

    def raw(self, data: bytes, *, control: bool = False) -> None:
        self._offer(self.control if control else self.payload, data)

    def announce(self, epoch: int) -> None:
        self._offer(self.control, messages.encode(announce(epoch)))

    def close(self) -> None:
        self.aeron.close()


@pytest.fixture
def rig(world: World) -> Iterator[tuple[Injector, Consumer, BridgeProc]]:
    a = world.host("ina", stream=10000, pools=POOLS_A, nslots=64)
    b = world.host("inb", stream=20000, pools=POOLS_B, nslots=32)
    receiver = world.bridge(b, "receiver", integrity=True)
    client = DriverClient(b.aeron_dir).start()
    consumer = Consumer(client, 20000, allowed_base_dirs=(b.root / "shm",))
    receiver.wait_state("receiver", "waiting_announce")
    injector = Injector(a.aeron_dir, world)
    try:
        yield injector, consumer, receiver
    finally:
        injector.close()
        with contextlib.suppress(Exception):
            consumer.close()
        client.close()


def frames_of(consumer: Consumer, wait: float = 1.0) -> list[Frame]:
    out = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        frame = consumer.poll(0.05)
        if frame is not None:
            frame.array = frame.array.copy()  # a private copy: the ring moves on
            out.append(frame)
    return out


def good(seq: int, epoch: int = EPOCH) -> list[BridgeFrameChunk]:
    return chunks(seq, DATA, epoch=epoch, integrity=True)


def wait_counter(receiver: BridgeProc, name: str, value: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        status = receiver.mapping("receiver")
        if status["counters"].get(name, 0) >= value:
            return status
        assert time.monotonic() < deadline, f"{name} never reached {value}: {status}"
        time.sleep(0.05)


def wait_source_epoch(receiver: BridgeProc, epoch: int) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        status = receiver.mapping("receiver")
        if status["source_epoch"] == epoch and status["state"] == "streaming":
            return status
        assert time.monotonic() < deadline, f"epoch {epoch} not applied: {status}"
        time.sleep(0.05)


def test_faults_drop_whole_frames_and_nothing_else(
    rig: tuple[Injector, Consumer, BridgeProc],
) -> None:
    injector, consumer, receiver = rig
    injector.send(good(1))  # before any announce: dropped
    wait_counter(receiver, "chunks_dropped.no_announce", 4)
    injector.announce(EPOCH)
    wait_source_epoch(receiver, EPOCH)

    injector.send(good(2))                                  # delivered
    middle = good(3)
    injector.send([middle[0], middle[1], middle[3]])        # middle chunk lost
    injector.send(good(4))                                  # abandons 3, delivered
    crc = good(5)
    crc[2] = dataclasses.replace(crc[2], payload_crc32c=crc[2].payload_crc32c ^ 1)
    injector.send(crc)                                      # corrupt CRC
    conflict = good(6)
    bad = dataclasses.replace(conflict[1], payload_bytes=bytes(1024),
                              payload_crc32c=crc32c(bytes(1024)))  # valid, but conflicting
    injector.send([*conflict[:2], bad, *conflict[2:]])
    inconsistent = good(7)
    inconsistent[3] = dataclasses.replace(inconsistent[3], trace_id=5)
    injector.send(inconsistent)
    injector.send(list(reversed(good(8))))                  # any order: delivered
    injector.send(good(8)[:1])                              # identical duplicate: ignored
    injector.raw(b"\x00" * 3)                               # hostile input on both channels
    hostile = bytearray(messages.encode(good(9)[1]))
    struct.pack_into("<H", hostile, 0, 41)
    injector.raw(bytes(hostile))
    injector.raw(struct.pack("<HHHH", 53, 1, 902, 1) + b"\xff" * 70)
    injector.raw(b"\x01" * 40, control=True)
    injector.send(good(10)[:3])                             # last chunk lost: times out
    time.sleep(0.3)
    injector.send(good(11))                                 # delivered

    got = frames_of(consumer, wait=2.0)
    assert [f.seq for f in got] == [2, 4, 8, 11]
    for frame in got:
        assert frame.array.tobytes() == DATA
    status = wait_counter(receiver, "frames_rematerialized", 4)
    c = status["counters"]
    assert c["frames_rematerialized"] == 4
    assert c["chunks_dropped.no_announce"] == 4
    # Abandoned by the new announce, or timed out first on a slow machine: never published.
    assert c.get("assemblies_abandoned", 0) + c.get("assemblies_timed_out", 0) >= 1
    assert c["chunks_dropped.crc"] == 1
    assert c["frames_dropped.conflict"] == 1
    assert c["frames_dropped.inconsistent"] == 1
    assert c["chunks_duplicate"] >= 1
    assert c["assemblies_timed_out"] == 1
    instance = receiver.status()["instance_counters"]
    assert instance["chunks_malformed"] >= 3
    assert instance["control_foreign"] + instance.get("control_malformed", 0) >= 1


def test_epoch_change_drops_in_flight_frames(
    rig: tuple[Injector, Consumer, BridgeProc],
) -> None:
    injector, consumer, receiver = rig
    injector.announce(EPOCH)
    wait_source_epoch(receiver, EPOCH)
    injector.send(good(1))
    first = frames_of(consumer, wait=1.0)
    assert [f.seq for f in first] == [1]
    local_before = first[0].epoch
    in_flight = good(2)
    injector.send(in_flight[:2])
    time.sleep(0.02)
    injector.announce(EPOCH + 10)
    status = wait_source_epoch(receiver, EPOCH + 10)
    deadline = time.monotonic() + 10
    while status["local_epoch"] in (None, local_before):
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
        status = receiver.mapping("receiver")
    injector.send(in_flight[2:])                            # old epoch: dropped
    injector.announce(EPOCH)                                # older announce: ignored
    time.sleep(0.1)
    injector.send(good(0, epoch=EPOCH + 10))                # seq restarts low: delivered
    got = frames_of(consumer, wait=2.0)
    assert [f.seq for f in got] == [0]
    assert got[0].epoch > local_before
    assert got[0].array.tobytes() == DATA
    c = receiver.mapping("receiver")["counters"]
    assert c["chunks_dropped.epoch"] == 2
    assert c["announces_ignored"] >= 1
    assert c["local_reattach"] >= 2
    # Abandoned by the new announce, or timed out first on a slow machine: never published.
    assert c.get("assemblies_abandoned", 0) + c.get("assemblies_timed_out", 0) >= 1
    assert np.all(got[0].array == np.frombuffer(DATA, dtype=np.uint8))
