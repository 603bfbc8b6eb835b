"""A consumer in its own process: prints ``ready``, then one JSON line per frame it reads.

Run by test_producer_consumer.py: ``python consumer_proc.py AERON_DIR BASE_DIR STREAM COUNT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tensorpool_client import Consumer, DriverClient


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    aeron_dir, base_dir, stream_id, count = argv[1], argv[2], int(argv[3]), int(argv[4])
    with DriverClient(aeron_dir) as client, Consumer(
        client, stream_id, allowed_base_dirs=(Path(base_dir),)
    ) as consumer:
        emit("ready")
        seen = 0
        while seen < count:
            frame = consumer.poll(timeout=10.0)
            if frame is None:
                emit(json.dumps({"error": "timeout", "drops": dict(consumer.drops)}))
                return 1
            data = frame.copy()
            emit(json.dumps({
                "seq": frame.seq, "epoch": frame.epoch, "meta_version": frame.meta_version,
                "dtype": frame.array.dtype.str, "shape": list(frame.array.shape),
                "strides": list(frame.array.strides), "values": data.tolist(),
            }))
            seen += 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
