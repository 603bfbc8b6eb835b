"""Print the frames of a stream of a running ``python launcher.py``.

Usage: ``python examples/consumer.py AERON_DIR [STREAM_ID] [SECONDS]``.
"""

from __future__ import annotations

import sys
import time

from client import Consumer, DriverClient


def main(argv: list[str]) -> int:
    aeron_dir = argv[1] if len(argv) > 1 else ""
    stream_id = int(argv[2]) if len(argv) > 2 else 10000
    seconds = float(argv[3]) if len(argv) > 3 else 30.0
    if not aeron_dir:
        print(__doc__)
        return 2
    deadline = time.monotonic() + seconds
    with DriverClient(aeron_dir) as client, Consumer(client, stream_id) as consumer:
        print(f"lease {consumer.lease.lease_id}, waiting for frames")
        while time.monotonic() < deadline:
            frame = consumer.poll(timeout=1.0)
            if frame is None:
                continue
            data = frame.copy()
            print(f"seq {frame.seq} epoch {frame.epoch} {data.dtype}{list(data.shape)} "
                  f"sum={data.sum()}")
        print(f"drops: {dict(consumer.drops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
