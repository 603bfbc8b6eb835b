"""Publish a few float32 frames on a stream of a running ``python launcher.py``.

Usage: ``python examples/producer.py AERON_DIR [STREAM_ID] [COUNT]`` (stream 10000 is the
built-in configuration's static stream). Start ``examples/consumer.py`` first to see them.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from client import DriverClient, Producer


def main(argv: list[str]) -> int:
    aeron_dir = argv[1] if len(argv) > 1 else ""
    stream_id = int(argv[2]) if len(argv) > 2 else 10000
    count = int(argv[3]) if len(argv) > 3 else 10
    if not aeron_dir:
        print(__doc__)
        return 2
    with DriverClient(aeron_dir) as client, Producer(client, stream_id) as producer:
        print(f"lease {producer.lease.lease_id} epoch {producer.epoch}")
        for i in range(count):
            frame = np.full((4, 4), float(i), dtype=np.float32)
            seq = producer.offer(frame, meta_version=1)
            print(f"sent seq {seq}")
            time.sleep(0.1)  # a demo pace; real producers offer as frames arrive
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
