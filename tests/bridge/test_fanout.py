"""Fan-out to two receivers through Aeron multi-destination-cast on 127.0.0.1 (bridge.md §13.1).

The sender's payload and control publications use dynamic MDC (``control=`` plus
``control-mode=dynamic``); each receiver subscribes with its own 127.0.0.1 endpoint and the
sender's control address. No multicast group is used: multicast is configuration only.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest

from tensorpool_client import Consumer, DriverClient, Producer
from tests.bridge.conftest import POOLS_A, POOLS_B, World, free_udp_ports

pytestmark = pytest.mark.slow


def test_two_receivers_get_every_frame(world: World) -> None:
    a = world.host("fa", stream=10000, pools=POOLS_A, nslots=64)
    b = world.host("fb", stream=20000, pools=POOLS_B, nslots=32)
    c = world.host("fc", stream=20000, pools=POOLS_A, nslots=64)
    pc, cc, pb, cb, pc2, cc2 = free_udp_ports(6)
    mdc = "aeron:udp?control=127.0.0.1:{}|control-mode=dynamic"
    sub = "aeron:udp?endpoint=127.0.0.1:{}|control=127.0.0.1:{}|control-mode=dynamic"
    sender = world.bridge(a, "sender", payload=mdc.format(pc), control=mdc.format(cc))
    receivers = [
        world.bridge(b, "receiver", payload=sub.format(pb, pc), control=sub.format(cb, cc)),
        world.bridge(c, "receiver", payload=sub.format(pc2, pc), control=sub.format(cc2, cc)),
    ]
    clients = [DriverClient(h.aeron_dir).start() for h in (a, b, c)]
    producer = Producer(clients[0], 10000, allowed_base_dirs=(a.root / "shm",))
    consumers = [Consumer(clients[i], 20000, allowed_base_dirs=(h.root / "shm",))
                 for i, h in ((1, b), (2, c))]
    try:
        for r in receivers:
            r.wait_state("receiver", "streaming")
        sender.wait_state("sender", "streaming")
        # Warm up until both far consumers have mapped their receiver's epoch and both MDC
        # destinations have joined (a late joiner starts at the live position).
        warm = [False, False]
        deadline = time.monotonic() + 15
        while not all(warm):
            assert time.monotonic() < deadline, "a receiver never delivered"
            producer.offer(np.zeros(10, dtype=np.uint8))
            for i, consumer in enumerate(consumers):
                while consumer.poll(0.05) is not None:
                    warm[i] = True
        first = producer.next_seq
        sent: dict[int, bytes] = {}
        for i in range(20):
            data = np.full(3000 + i, i, dtype=np.uint8)
            sent[producer.offer(data)] = data.tobytes()
            time.sleep(0.01)
        for consumer in consumers:
            got: dict[int, bytes] = {}
            deadline = time.monotonic() + 10
            while len(got) < len(sent) and time.monotonic() < deadline:
                frame = consumer.poll(0.1)
                if frame is not None and frame.seq >= first:
                    got[frame.seq] = frame.array.tobytes()
            assert got == sent, (sorted(got), [r.mapping("receiver") for r in receivers],
                                 sender.mapping("sender"), consumer.drops)
        epochs = {r.mapping("receiver")["local_epoch"] for r in receivers}
        assert None not in epochs
    finally:
        for closer in (*[x.close for x in consumers], producer.close,
                       *[x.close for x in clients]):
            with contextlib.suppress(Exception):
                closer()
