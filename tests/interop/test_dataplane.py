"""Frames between processes through a real driver: every frame checked, losses exact.

A ``python launcher.py`` driver subprocess grants the leases and provisions the regions; a
consumer process (dataplane_consumer.py) reads while this process produces. Payloads are uint64
arrays stamped with their seq at both ends, so a torn or misplaced payload is caught.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from tensorpool_client import DriverClient, Producer

from .conftest import CHANNEL, KEEPALIVE_MS, REPO, child_env

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .conftest import DriverProc

pytestmark = pytest.mark.slow

STREAM = 10000
NSLOTS = 64


def start_consumer(driver: DriverProc, count: int, wait: str,
                   *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("dataplane_consumer.py")),
         driver.aeron_dir, str(driver.base_dir), str(STREAM), str(count), wait, *extra],
        cwd=REPO, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        proc.wait(30)
        pytest.fail(f"consumer did not start: {line!r}")
    return proc


def finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 0, out
    return dict(json.loads(out.strip().splitlines()[-1]))


@pytest.fixture
def producer_of(driver: DriverProc) -> Iterator[Any]:
    made: list[tuple[DriverClient, Producer]] = []

    def make(**options: Any) -> Producer:
        client = DriverClient(driver.aeron_dir, control_channel=CHANNEL,
                              announce_stream_id=1000,
                              keepalive_interval_ms=KEEPALIVE_MS // 2).start()
        try:
            producer = Producer(client, STREAM, allowed_base_dirs=(driver.base_dir,), **options)
        except BaseException:
            client.close()
            raise
        made.append((client, producer))
        return producer

    try:
        yield make
    finally:
        for client, producer in made:
            producer.close()
            client.close()


@pytest.mark.parametrize("wait", ["spin", "park"])
def test_every_frame_reaches_a_consumer_process_intact_when_the_producer_keeps_unread_slots(
    driver: DriverProc, producer_of: Any, wait: str,
) -> None:
    count = 3000
    consumer = start_consumer(driver, count, wait)
    try:
        producer = producer_of(overwrite_unread=False, claim_timeout=20.0)
        assert producer.wait_for_consumers(timeout=20.0) == 1
        small = np.zeros(16, dtype=np.uint64)        # 128 bytes: pool 1
        for seq in range(count):
            if seq % 3 == 0:                         # 4096 bytes in place: pool 2
                with producer.claim((8, 64), np.uint64) as array:
                    array[...] = seq
            else:
                small[0] = small[-1] = seq
                producer.offer(small)
        assert producer.descriptors_not_sent == 0
    finally:
        result = finish(consumer)
    assert result["seqs"] == list(range(count))
    assert result["bad"] == []
    assert (result["lost"], result["losses"]) == (0, [])


def test_a_consumer_process_overtaken_by_the_ring_reports_exactly_the_frames_it_lost(
    driver: DriverProc, producer_of: Any,
) -> None:
    count = 200
    consumer = start_consumer(driver, count, "park", "--hold")
    try:
        producer = producer_of()
        assert producer.wait_for_consumers(timeout=20.0) == 1
        frame = np.zeros(4, dtype=np.uint64)
        for seq in range(count):
            frame[0] = frame[-1] = seq
            producer.offer(frame)
        assert consumer.stdin is not None
        consumer.stdin.write("go\n")
        consumer.stdin.flush()
        result = finish(consumer)
        epoch = producer.epoch
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(30)
    first_kept = count - NSLOTS
    assert result["seqs"] == list(range(first_kept, count))
    assert result["bad"] == []
    assert result["losses"] == [[epoch, 0, first_kept - 1, "overwritten"]]
    assert result["lost"] == first_kept
