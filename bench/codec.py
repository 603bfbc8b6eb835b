"""Encode/decode cost of the messages on the driver's hot paths.

Run: .venv/bin/python bench/codec.py [--runs 7] [--number 20000]
Prints, per message and direction, the median ns/op over the runs and the matching ops/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import messages
from messages import (
    FrameDescriptor,
    PayloadPool,
    PublishMode,
    ResponseCode,
    Role,
    SbeMessage,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmLeaseKeepalive,
)

EPOCH_DIR = "/dev/shm/tensorpool-alice/default/10000/1700000000123456789"

SAMPLES: dict[str, SbeMessage] = {
    "ShmAttachRequest": ShmAttachRequest(
        correlation_id=(7 << 32) | 12345,
        stream_id=10000,
        client_id=7,
        role=Role.PRODUCER,
        expected_layout_version=1,
        publish_mode=PublishMode.EXISTING_OR_CREATE,
    ),
    "ShmAttachResponse(OK, 1 pool)": ShmAttachResponse(
        correlation_id=(7 << 32) | 12345,
        code=ResponseCode.OK,
        lease_id=0x3A5F_0000_0000_0001,
        lease_expiry_timestamp_ns=1_700_003_000_000_000,
        stream_id=10000,
        epoch=1_700_000_000_123_456_789,
        layout_version=1,
        header_nslots=1024,
        header_slot_bytes=256,
        node_id=1,
        payload_pools=(PayloadPool(1, 1024, 65536, f"shm:file?path={EPOCH_DIR}/1.pool"),),
        header_region_uri=f"shm:file?path={EPOCH_DIR}/header.ring",
    ),
    "ShmLeaseKeepalive": ShmLeaseKeepalive(
        lease_id=0x3A5F_0000_0000_0001,
        stream_id=10000,
        client_id=7,
        role=Role.PRODUCER,
        client_timestamp_ns=1_700_001_000_000_000,
    ),
    "FrameDescriptor": FrameDescriptor(
        stream_id=10000,
        epoch=1_700_000_000_123_456_789,
        seq=123456,
        timestamp_ns=1_700_001_000_000_000,
        meta_version=2,
        trace_id=None,
    ),
}


def measure(func: object, number: int, runs: int) -> float:
    """Median ns per call over ``runs`` batches of ``number`` calls."""
    timer = timeit.Timer(func)  # type: ignore[arg-type]
    return statistics.median(t / number * 1e9 for t in timer.repeat(repeat=runs, number=number))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, median of {args.runs} runs x {args.number} ops")
    print(
        f"{'message':32} {'bytes':>5} {'encode ns':>10} {'encode op/s':>12}"
        f" {'decode ns':>10} {'decode op/s':>12} {'decode(view) ns':>16}"
    )
    for name, message in SAMPLES.items():
        data = messages.encode(message)
        view = memoryview(bytearray(data))
        assert messages.decode(data) == message
        encode_ns = measure(lambda m=message: messages.encode(m), args.number, args.runs)
        decode_ns = measure(lambda d=data: messages.decode(d), args.number, args.runs)
        view_ns = measure(lambda v=view: messages.decode(v), args.number, args.runs)
        print(
            f"{name:32} {len(data):5d} {encode_ns:10.0f} {1e9 / encode_ns:12,.0f}"
            f" {decode_ns:10.0f} {1e9 / decode_ns:12,.0f} {view_ns:16.0f}"
        )


if __name__ == "__main__":
    main()
