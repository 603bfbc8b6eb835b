"""Print the frames of a stream served by a running ``python launcher.py``.

    python examples/consumer.py [--aeron-dir DIR] [--stream-id 10000] [--seconds 30] [--frames N]
                                [--shm-base-dir /dev/shm]

The Aeron directory defaults to ``$AERON_DIR``, else Aeron's default directory: the one a bare
``python launcher.py`` uses. Start it before ``examples/producer.py`` to see every frame.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tensorpool_client import Consumer, DriverClient, LeaseLost, default_aeron_dir


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
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--frames", type=int, default=0, help="stop after N frames (0: no limit)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.seconds
    with (
        DriverClient(args.aeron_dir) as client,
        Consumer(client, args.stream_id, allowed_base_dirs=(args.shm_base_dir,)) as consumer,
    ):
        print(f"lease {consumer.lease.lease_id}, waiting for frames")
        seen = 0
        while time.monotonic() < deadline and (args.frames == 0 or seen < args.frames):
            try:
                frame = consumer.poll(timeout=1.0)
            except LeaseLost as exc:  # the driver revoked the lease or shut down
                print(f"stopped: {exc}")
                return 1
            if frame is None:
                continue
            seen += 1
            data = frame.copy()
            print(
                f"seq {frame.seq} epoch {frame.epoch} {data.dtype}{list(data.shape)} "
                f"sum={data.sum()}"
            )
        print(f"drops: {dict(consumer.drops)}; lost frames: {consumer.frames_lost} "
              f"{[f'{r.first_seq}-{r.last_seq} {r.reason}' for r in consumer.losses]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
