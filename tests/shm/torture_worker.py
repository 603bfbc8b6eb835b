"""Writer or reader process for the two-process seqlock torture test (not collected by pytest).

usage: torture_worker.py writer|reader HEADER_URI POOL_URI EPOCH BASE SECONDS

Frames are self-checking: frame ``seq`` carries ``len_for(seq)`` payload bytes starting with
``seq`` as 8 little-endian bytes and filled with ``seq & 0xFF``, and header fields derived from
``seq``. The reader prints one JSON line of counts; ``bad`` must stay 0.
With TORTURE_SKIP_RELOAD_CHECK=1 the reader skips the reload check (negative control).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from shm import ExpectedRegion, Frame, RegionType, TensorDescriptor, open_region, seqlock

NSLOTS = 2
STRIDE = 65536
POOL_ID = 1


def len_for(seq: int) -> int:
    return 8 + (seq * 7919) % (STRIDE - 8)


def expected_regions(epoch: int) -> tuple[ExpectedRegion, ExpectedRegion]:
    ring = ExpectedRegion(
        region_type=RegionType.HEADER_RING,
        stream_id=1,
        epoch=epoch,
        nslots=NSLOTS,
        activity_window_ns=None,
    )
    return ring, replace(
        ring, region_type=RegionType.PAYLOAD_POOL, pool_id=POOL_ID, stride_bytes=STRIDE
    )


def frame_is_intact(frame: Frame) -> bool:
    seq = frame.seq
    length = len_for(seq)
    payload = np.frombuffer(frame.payload, dtype=np.uint8)
    return (
        len(frame.payload) == length
        and int.from_bytes(frame.payload[:8], "little") == seq
        and bool(np.all(payload[8:] == (seq & 0xFF)))
        and frame.timestamp_ns == seq * 3
        and frame.meta_version == seq & 0xFFFFFFFF
        and frame.tensor.dims == (length,)
        and frame.slot_index == seq % NSLOTS
    )


def run(
    role: str, header_uri: str, pool_uri: str, epoch: int, *, base: Path, seconds: float
) -> None:
    ring_expected, pool_expected = expected_regions(epoch)
    writable = role == "writer"
    with (
        open_region(
            header_uri, ring_expected, allowed_base_dirs=(base,), writable=writable
        ) as ring_region,
        open_region(
            pool_uri, pool_expected, allowed_base_dirs=(base,), writable=writable
        ) as pool_region,
    ):
        ring, pool = ring_region.header_ring(), pool_region.payload_pool()
        deadline = time.monotonic() + seconds
        if writer := role == "writer":
            print("ready", flush=True)  # noqa: T201 - the parent waits for this line
        buf = np.empty(STRIDE, dtype=np.uint8)
        counts = {
            "accepted": 0,
            "bad": 0,
            "not_committed": 0,
            "other_seq": 0,
            "torn": 0,
            "invalid": 0,
        }
        seq = 0
        while time.monotonic() < deadline:
            for _ in range(256):
                if writer:
                    seq += 1
                    length = len_for(seq)
                    buf[:length] = seq & 0xFF
                    buf[:8] = np.frombuffer(seq.to_bytes(8, "little"), dtype=np.uint8)
                    ring.write_frame(
                        seq,
                        pool,
                        buf[:length],
                        tensor=TensorDescriptor(dtype=1, major_order=1, dims=(length,)),
                        timestamp_ns=seq * 3,
                        meta_version=seq & 0xFFFFFFFF,
                    )
                    continue
                for index in range(NSLOTS):
                    word = ring.load_seq_commit(index)
                    result = ring.read_frame(word >> 1, {POOL_ID: pool})
                    if isinstance(result, Frame):
                        counts["accepted" if frame_is_intact(result) else "bad"] += 1
                    else:
                        counts[result.value] += 1
        if not writer:
            print(json.dumps(counts), flush=True)  # noqa: T201 - result for the parent


if __name__ == "__main__":
    if os.environ.get("TORTURE_SKIP_RELOAD_CHECK") == "1":
        # Negative control: a reader that trusts its copy without the second load.
        def _always(first: int, second: int, seq: int) -> bool:
            del first, second, seq
            return True

        seqlock.accepts = _always
    run(
        sys.argv[1],
        sys.argv[2],
        sys.argv[3],
        int(sys.argv[4]),
        base=Path(sys.argv[5]),
        seconds=float(sys.argv[6]),
    )
