"""Publish a few float32 frames on a stream served by a running ``python launcher.py``.

    python examples/producer.py [--aeron-dir DIR] [--stream-id 10000] [--count 10]
                                [--shm-base-dir /dev/shm] [--wait 10]

The Aeron directory defaults to ``$AERON_DIR``, else Aeron's default directory: the one a bare
``python launcher.py`` uses. The producer waits (``--wait`` seconds) until a consumer is there,
so start ``examples/consumer.py`` before or just after it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from tensorpool_client import DriverClient, Producer, default_aeron_dir


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aeron-dir", default=default_aeron_dir())
    parser.add_argument("--stream-id", type=int, default=10000)
    parser.add_argument(
        "--shm-base-dir",
        type=Path,
        default=Path("/dev/shm"),  # noqa: S108 - the spec default
        help="the driver's shm.base_dir: regions are mapped only from under it",
    )
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--wait", type=float, default=10.0,
                        help="seconds to wait for a consumer before publishing")
    args = parser.parse_args(argv)
    with (
        DriverClient(args.aeron_dir) as client,
        Producer(client, args.stream_id, allowed_base_dirs=(args.shm_base_dir,)) as producer,
    ):
        print(f"lease {producer.lease.lease_id} epoch {producer.epoch}")
        # Frames published before any consumer subscribes are lost to it: wait for one.
        if producer.wait_for_consumers(timeout=args.wait) == 0:
            print(f"no consumer after {args.wait} s; publishing anyway")
        for i in range(args.count):
            if i % 2 == 0:
                claim = producer.claim((4, 4), np.float32)  # a writable view of the slot
                claim.array[...] = float(i)                 # filled in place: no copy
                seq = claim.commit(meta_version=1)          # header, seqlock, descriptor
            else:
                seq = producer.offer(np.full((4, 4), float(i), dtype=np.float32),
                                     meta_version=1)  # one copy of an existing array
            print(f"sent seq {seq}")
            time.sleep(0.1)  # a demo pace; real producers offer as frames arrive
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
