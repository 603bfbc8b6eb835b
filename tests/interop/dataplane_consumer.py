"""A consumer process for test_dataplane.py: reads stamped frames through a real driver.

    python dataplane_consumer.py AERON_DIR BASE_DIR STREAM COUNT WAIT [--hold]

Prints ``ready`` once attached and mapped; with ``--hold`` it then waits for a line on stdin
before reading (a reader the ring will overtake). It reads until it has seen seq COUNT - 1 and
prints one JSON line: the seqs it accepted, the ones whose stamps (first and last uint64 of the
payload, both = seq) or seqlock re-check failed, and the losses it reported.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tensorpool_client import Consumer, DriverClient

CHANNEL = "aeron:ipc?term-length=1m"


def main(argv: list[str]) -> int:
    aeron_dir, base, stream, count, wait = argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5]
    client = DriverClient(aeron_dir, control_channel=CHANNEL, announce_stream_id=1000,
                          keepalive_interval_ms=100)  # the test driver expires leases fast
    with client, Consumer(client, stream, allowed_base_dirs=(Path(base),),
                          wait=wait) as consumer:  # type: ignore[arg-type]
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        if "--hold" in argv:
            sys.stdin.readline()
        seqs: list[int] = []
        bad: list[int] = []
        last = -1
        deadline = time.monotonic() + 60
        while last < count - 1 and time.monotonic() < deadline:
            for frame in consumer.poll_batch(64, timeout=0.5):
                array = frame.array.reshape(-1)
                if not (int(array[0]) == frame.seq == int(array[-1]) and frame.intact()):
                    bad.append(frame.seq)
                seqs.append(frame.seq)
                last = frame.seq
        sys.stdout.write(json.dumps({
            "seqs": seqs, "bad": bad, "lost": consumer.frames_lost,
            "losses": [[r.epoch, r.first_seq, r.last_seq, r.reason] for r in consumer.losses],
        }) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
