"""Load generator of bench/leases.py (one process; the bench starts one or more).

    python bench/lease_load.py --aeron-dir DIR --leases N --client-base B --start-ns T ...

Attaches N consumer leases over raw Aeron (pipelined, a bounded number outstanding), keeps
each alive once per interval with keepalives spread evenly over it, then sends each lease's
last keepalive and lets them all expire, and prints one JSON object: how long the attaches
took, every revoke's timing against its deadline (decided = revoke timestamp - deadline,
transit = arrival - revoke timestamp), revokes that came early (false), and this process's
own CPU. It must not be the bottleneck: keepalives are one pre-encoded buffer with the ids
patched in, its own traffic is skipped by session id before anything is decoded, and only
attach responses and revokes are read at all.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import struct
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


import messages
from bench.harness import CHANNEL, CONTROL_STREAM, own_cpu_seconds
from messages.control import (
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
)
from tensorpool_client.aeron_connect import connect

_HEADER = struct.Struct("<HHHH")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
ATTACH_RESPONSE = ShmAttachResponse.TEMPLATE_ID
REVOKED = ShmLeaseRevoked.TEMPLATE_ID
STREAM = 10000


def _offset(template: bytes, packed: bytes) -> int:
    at = template.find(packed)
    if at < 0 or template.find(packed, at + 1) >= 0:
        raise RuntimeError("cannot locate a field in the template")
    return at


class Load:
    def __init__(self, aeron_dir: str, n: int, client_base: int) -> None:
        self.aeron = connect(aeron_dir, client_name="lease-load")
        self.sub = self.aeron.add_subscription(CHANNEL, CONTROL_STREAM)
        self.pub = self.aeron.add_exclusive_publication(CHANNEL, CONTROL_STREAM)
        self.own = self.pub.session_id
        self.n = n
        self.client_base = client_base
        self.lease_of = [0] * n  # index -> lease id
        self.index_of: dict[int, int] = {}  # lease id -> index
        self.answered = 0
        self.rejected = 0
        self.outstanding = 0
        self.corr_base = int.from_bytes(os.urandom(3), "little") << 32
        # revokes: index -> (arrival ns, revoke timestamp ns)
        self.revoked: dict[int, tuple[int, int]] = {}
        self.foreign_revokes = 0
        lease, client = 0x1122334455667788, 0x0A0B0C0D
        template = messages.encode(
            ShmLeaseKeepalive(
                lease_id=lease,
                stream_id=STREAM,
                client_id=client,
                role=Role.CONSUMER,
                client_timestamp_ns=0,
            )
        )
        self.keepalive = bytearray(template)
        self.at_lease = _offset(template, _U64.pack(lease))
        self.at_client = _offset(template, _U32.pack(client))
        self.last_sent = [0] * n
        # Until the even schedule starts: (due ns, index) of attached leases, oldest first.
        self.interim: deque[tuple[int, int]] = deque()
        self.interval_ns = 1_000_000_000

    # ---------------------------------------------------------------- inbound

    def on_fragment(self, buf: Any, header: Any) -> None:
        if header.session_id == self.own:
            return
        data = buf.tobytes()
        if len(data) < _HEADER.size:
            return
        _, template_id, _, _ = _HEADER.unpack_from(data)
        if template_id == REVOKED:
            now = time.monotonic_ns()
            revoke = messages.decode(data)
            assert isinstance(revoke, ShmLeaseRevoked)
            index = self.index_of.get(revoke.lease_id)
            if index is None:
                self.foreign_revokes += 1
            elif index not in self.revoked:
                self.revoked[index] = (now, revoke.timestamp_ns)
        elif template_id == ATTACH_RESPONSE:
            response = messages.decode(data)
            assert isinstance(response, ShmAttachResponse)
            index = response.correlation_id - self.corr_base
            if not 0 <= index < self.n:
                return
            self.outstanding -= 1
            self.answered += 1
            if response.code == ResponseCode.OK and response.lease_id is not None:
                self.lease_of[index] = response.lease_id
                self.index_of[response.lease_id] = index
                self.interim.append((time.monotonic_ns() + self.interval_ns, index))
            else:
                self.rejected += 1

    def poll(self) -> int:
        return int(self.sub.poll(self.on_fragment, 1000))

    def service(self) -> int:
        """Poll, and keep the leases attached so far alive until the even schedule starts."""
        work = self.poll()
        interim, now = self.interim, time.monotonic_ns()
        while interim and interim[0][0] <= now:
            _, index = interim.popleft()
            self.send_keepalive(index)
            interim.append((now + self.interval_ns, index))
            work += 1
        return work

    def offer(self, data: bytes | bytearray) -> None:
        while self.pub.offer(data) is not True:
            self.poll()

    # ---------------------------------------------------------------- phases

    def attach_all(self, outstanding: int) -> float:
        t0 = time.monotonic()
        for i in range(self.n):
            while self.outstanding >= outstanding:
                if not self.service():
                    time.sleep(0.0001)
            self.outstanding += 1
            self.offer(
                messages.encode(
                    ShmAttachRequest(
                        correlation_id=self.corr_base + i,
                        stream_id=STREAM,
                        client_id=self.client_base + i,
                        role=Role.CONSUMER,
                        expected_layout_version=0,
                    )
                )
            )
        deadline = time.monotonic() + 60
        while self.answered < self.n and time.monotonic() < deadline:
            if not self.service():
                time.sleep(0.0001)
        return time.monotonic() - t0

    def await_start(self) -> int:
        """Keep leases alive until the parent says when the even schedule starts."""
        while True:
            ready, _, _ = select.select([sys.stdin], [], [], 0.0002)
            if ready:
                return int(sys.stdin.readline())
            self.service()

    def send_keepalive(self, index: int) -> None:
        buf = self.keepalive
        _U64.pack_into(buf, self.at_lease, self.lease_of[index])
        _U32.pack_into(buf, self.at_client, self.client_base + index)
        self.offer(buf)
        self.last_sent[index] = time.monotonic_ns()

    def keep_alive(self, start_ns: int, interval_ns: int, rounds: int) -> None:
        """``rounds`` keepalives per lease, lease i at offset i/n of each interval."""
        self.interim.clear()
        live = [i for i in range(self.n) if self.lease_of[i]]
        total = rounds * len(live)
        k = 0
        while k < total:
            # Every keepalive due by now goes out in one burst, then this process sleeps until
            # the next is due: spread evenly at 1 ms grain without spinning a core.
            now = time.monotonic_ns()
            while k < total:
                rnd, j = divmod(k, len(live))
                due = start_ns + rnd * interval_ns + (j * interval_ns) // len(live)
                if due > now:
                    break
                self.send_keepalive(live[j])
                k += 1
            if not self.poll() and k < total:
                time.sleep(min(0.001, max(0.0, (due - time.monotonic_ns()) / 1e9)))
        self.poll()

    def await_revokes(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        live = sum(1 for lease in self.lease_of if lease)
        while len(self.revoked) < live and time.monotonic() < deadline:
            if not self.poll():
                time.sleep(0.0001)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--aeron-dir", required=True)
    parser.add_argument("--leases", type=int, required=True)
    parser.add_argument("--client-base", type=int, required=True)
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ttl-ns", type=int, required=True)
    parser.add_argument("--outstanding", type=int, default=256)
    args = parser.parse_args()

    load = Load(args.aeron_dir, args.leases, args.client_base)
    interval_ns = args.interval_ms * 1_000_000
    load.interval_ns = interval_ns
    cpu0 = own_cpu_seconds()
    attach_s = load.attach_all(args.outstanding)
    print(json.dumps({"attached": attach_s}), flush=True)  # the parent waits for every process
    start_ns = load.await_start()
    cpu1 = own_cpu_seconds()
    t_keep = time.monotonic()
    load.keep_alive(start_ns, interval_ns, args.rounds)
    keep_s = time.monotonic() - t_keep
    cpu2 = own_cpu_seconds()
    early = dict(load.revoked)  # every revoke before the last keepalives went out is false
    t_expiry = time.monotonic()
    load.await_revokes(args.ttl_ns / 1e9 + 15)
    expiry_s = time.monotonic() - t_expiry
    cpu3 = own_cpu_seconds()
    decided: list[int] = []
    transit: list[int] = []
    lateness: list[int] = []
    false_revokes = len(early)
    for index, (arrival, stamp) in load.revoked.items():
        deadline = load.last_sent[index] + args.ttl_ns
        if index in early or arrival < deadline:
            false_revokes += index not in early
            continue
        decided.append(stamp - deadline)
        transit.append(arrival - stamp)
        lateness.append(arrival - deadline)
    result = {
        "leases": args.leases,
        "attached": sum(1 for lease in load.lease_of if lease),
        "rejected": load.rejected,
        "attach_s": attach_s,
        "revoked": len(load.revoked),
        "false_revokes": false_revokes,
        "foreign_revokes": load.foreign_revokes,
        "decided": decided,
        "transit": transit,
        "lateness": lateness,
        "cpu_attach_s": cpu1 - cpu0,
        "cpu_keepalive_s": cpu2 - cpu1,
        "keepalive_s": keep_s,
        "cpu_expiry_s": cpu3 - cpu2,
        "expiry_s": expiry_s,
        "cpu_total_s": cpu3 - cpu0,
    }
    print(json.dumps(result), flush=True)
    load.aeron.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
