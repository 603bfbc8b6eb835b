"""Attach benchmark: a driver subprocess measured from a raw Aeron client in this process.

    .venv/bin/python bench/attach.py [--consumer-n 300] [--producer-n 150]

Prints start-up time (spawn -> first announce), attach round trips (consumer on a provisioned
stream; producer with a fresh epoch each time; each attach waits for the previous detach's
answer), in three client styles: busy-polling back to back, parking while it waits (an Aeron
backoff up to 1 ms, as a typical client), and after the driver idled 50 ms between requests;
the keepalive rate the driver absorbs; and the driver's idle CPU from /proc/<pid>/stat (its
media driver runs in another process, so that is the driver's own). Every directory it makes
(SHM base, run dir, Aeron dir) is removed at the end, and every process stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import pyaeron

import messages
from messages import (
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmLeaseKeepalive,
    ShmPoolAnnounce,
)
from tensorpool_client.aeron_connect import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import CHANNEL, cpu_seconds, pct, running_driver, status_counters

SPIN = pyaeron.IdleStrategy.busy_spin()
PARK = pyaeron.IdleStrategy.backoff(max_park_ns=1_000_000)


class Client:
    def __init__(self, aeron_dir: str) -> None:
        self.aeron = connect(aeron_dir, client_name="bench")
        self.control = self.aeron.add_subscription(CHANNEL, 1000)
        self.announce = self.aeron.add_subscription(CHANNEL, 1001)
        self.pub = self.aeron.add_exclusive_publication(CHANNEL, 1000)
        self.idle = SPIN
        self.inbox: list[Any] = []
        self._cid = int.from_bytes(os.urandom(4), "little") << 20

    def _on(self, buf: Any, header: Any) -> None:
        if header.session_id == self.pub.session_id:
            return
        with contextlib.suppress(messages.DecodeError):
            self.inbox.append(messages.decode(bytes(buf)))

    def poll(self) -> int:
        return int(self.control.poll(self._on, 100)) + int(self.announce.poll(self._on, 100))

    def offer(self, data: bytes) -> None:
        while self.pub.offer(data) is not True:
            self.idle.idle(self.poll())

    def wait(self, pred: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            for i, m in enumerate(self.inbox):
                if pred(m):
                    del self.inbox[: i + 1]
                    return m
            self.inbox.clear()
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from the driver")
            self.idle.idle(self.poll())

    def attach(
        self, client_id: int, role: Role, timeout: float = 10.0
    ) -> tuple[int, ShmAttachResponse]:
        self._cid += 1
        cid = self._cid
        data = messages.encode(
            ShmAttachRequest(
                correlation_id=cid,
                stream_id=10000,
                client_id=client_id,
                role=role,
                expected_layout_version=1,
            )
        )
        t0 = time.perf_counter_ns()
        self.offer(data)
        resp = self.wait(
            lambda m: isinstance(m, ShmAttachResponse) and m.correlation_id == cid, timeout
        )
        return time.perf_counter_ns() - t0, resp

    def detach(self, resp: ShmAttachResponse, client_id: int, role: Role) -> None:
        if resp.lease_id is None:
            raise RuntimeError(f"attach response without a lease: {resp}")
        self._cid += 1
        cid = self._cid
        self.offer(
            messages.encode(
                ShmDetachRequest(
                    correlation_id=cid,
                    lease_id=resp.lease_id,
                    stream_id=10000,
                    client_id=client_id,
                    role=role,
                )
            )
        )
        self.wait(lambda m: isinstance(m, ShmDetachResponse) and m.correlation_id == cid)


def measure_startup(client: Client, t_spawn: int) -> tuple[ShmAttachResponse, str]:
    """Retry the first attach until the driver serves it, then wait for its announce."""
    first: ShmAttachResponse | None = None
    client_id = 1
    while first is None or first.code != ResponseCode.OK:
        with contextlib.suppress(TimeoutError):
            # A request written before the driver subscribed is never read: retry soon, as
            # another client (an unanswered attempt may still be granted later).
            client_id += 1
            _, first = client.attach(client_id, Role.CONSUMER, timeout=0.05)
    client.inbox.append(first)
    client.wait(lambda m: isinstance(m, ShmPoolAnnounce))
    return first, f"{(time.perf_counter_ns() - t_spawn) / 1e6:.0f} ms"


def measure_attach(
    client: Client, role: Role, n: int, first_id: int, *, gap_s: float = 0.0
) -> str:
    """Attach, wait for the answer, detach, wait for the answer; ``gap_s`` of quiet before
    each attach lets the driver fall idle between requests."""
    rtts: list[float] = []
    for i in range(n):
        if gap_s:
            time.sleep(gap_s)
        rtt, resp = client.attach(first_id + i, role)
        assert resp.code == ResponseCode.OK, resp
        rtts.append(rtt / 1000)
        client.detach(resp, first_id + i, role)
    return " / ".join(f"{pct(rtts, q):.0f}" for q in (0.5, 0.99, 0.999)) + " us"


def measure_keepalives(client: Client, config: Path, seconds: float) -> str:
    _, lease = client.attach(2, Role.CONSUMER)
    before = status_counters(config).get("keepalive.accepted", 0)
    data = messages.encode(
        ShmLeaseKeepalive(
            lease_id=lease.lease_id or 0,
            stream_id=10000,
            client_id=2,
            role=Role.CONSUMER,
            client_timestamp_ns=0,
        )
    )
    sent = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            client.offer(data)
        sent += 100
        client.poll()
        client.inbox.clear()
    t_sent = time.perf_counter()
    while (accepted := status_counters(config).get("keepalive.accepted", 0) - before) < sent:
        if time.perf_counter() - t_sent > 30:
            break
    elapsed = time.perf_counter() - t0
    client.detach(lease, 2, Role.CONSUMER)
    return f"{accepted / elapsed:,.0f} /s ({accepted} of {sent} in {elapsed:.1f} s)"


def measure_idle_cpu(pid: int, seconds: float, settle: float) -> str:
    """CPU of the driver process over ``seconds``, after ``settle`` seconds of quiet.

    The settle time lets the media driver reap the departed client's publications and images
    and the DriverActor finish the load's tail, so the figure is the steady idle cost.
    """
    time.sleep(settle)
    t1, c1 = time.perf_counter(), cpu_seconds(pid)
    time.sleep(seconds)
    t2, c2 = time.perf_counter(), cpu_seconds(pid)
    return f"{100 * (c2 - c1) / (t2 - t1):.1f} % of a core"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumer-n", type=int, default=300)
    parser.add_argument("--producer-n", type=int, default=150)
    parser.add_argument("--keepalive-s", type=float, default=2.0)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--settle-s", type=float, default=5.0)
    args = parser.parse_args()

    rows: list[tuple[str, str]] = []
    t_spawn = time.perf_counter_ns()
    with running_driver() as driver:
        client: Client | None = None
        try:
            while not Path(driver.aeron_dir, "cnc.dat").exists():
                time.sleep(0.001)
            client = Client(driver.aeron_dir)
            _, startup = measure_startup(client, t_spawn)
            rows.append(("start-up: spawn -> first announce", startup))
            n = args.consumer_n
            client.idle = SPIN
            rows.append(
                (
                    "consumer attach RTT p50/p99/p99.9, busy-polling client",
                    measure_attach(client, Role.CONSUMER, n, 1000),
                )
            )
            client.idle = PARK
            rows.append(
                (
                    "consumer attach RTT, client parking up to 1 ms",
                    measure_attach(client, Role.CONSUMER, n, 2000),
                )
            )
            client.idle = SPIN
            rows.append(
                (
                    "consumer attach RTT, driver idle 50 ms before each",
                    measure_attach(client, Role.CONSUMER, min(n, 100), 3000, gap_s=0.05),
                )
            )
            rows.append(
                (
                    "producer attach RTT (new epoch), busy-polling client",
                    measure_attach(client, Role.PRODUCER, args.producer_n, 5000),
                )
            )
            rows.append(
                (
                    "keepalives absorbed (offered as fast as possible)",
                    measure_keepalives(client, driver.config, args.keepalive_s),
                )
            )
            client.aeron.close()
            client = None
            rows.append(
                (
                    "driver idle CPU (no clients, 1 s announces; media driver apart)",
                    measure_idle_cpu(driver.pid, args.idle_s, args.settle_s),
                )
            )
        finally:
            if client is not None:
                client.aeron.close()
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
