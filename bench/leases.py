"""Hold N leases with 1 Hz keepalives told to the DriverActor; report false expiries,
revoke latency after the deadline, CPU and RSS.

    .venv/bin/python bench/leases.py [--leases 100 1000 10000] [--seconds 10]

Each N runs in its own process (so RSS is per N): consumers spread over 4 streams with a
tiny profile in a temporary base dir, a MonotonicClock, a counting outbox, no Aeron. After
2 s a sample of leases stops sending keepalives; their revokes must come within one lease
check period (100 ms) of the deadline, and no other lease may expire.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from actors import DriverSystem, start_driver_system
from actors.testing import small_config
from messages.control import (
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
)

STREAMS = (20000, 20001, 20002, 20003)
SAMPLE = 20


class CountingOutbox:
    """Counts messages; keeps attach responses and revokes (with their arrival time)."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.count = 0
        self.attached: list[ShmAttachResponse] = []
        self.revokes: list[tuple[int, ShmLeaseRevoked]] = []

    def send(self, message: object) -> None:
        now = time.monotonic_ns()
        with self.lock:
            self.count += 1
            if isinstance(message, ShmAttachResponse):
                self.attached.append(message)
                self.lock.notify_all()
            elif isinstance(message, ShmLeaseRevoked):
                self.revokes.append((now, message))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_one(n: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-leases-") as tmp:
        config = small_config(Path(tmp))
        outbox = CountingOutbox()
        system = start_driver_system(config, outbox=outbox)
        try:
            return _measure(system, outbox, n, seconds)
        finally:
            system.stop()


def _measure(
    system: DriverSystem, outbox: CountingOutbox, n: int, seconds: float
) -> dict[str, float]:
    driver = system.driver
    rss_start = rss_mb()
    t0 = time.monotonic()
    for i in range(n):
        driver.tell(
            ShmAttachRequest(
                correlation_id=i + 1,
                stream_id=STREAMS[i % len(STREAMS)],
                client_id=i + 1,
                role=Role.CONSUMER,
                expected_layout_version=0,
                publish_mode=2,
            )
        )
    with outbox.lock:
        outbox.lock.wait_for(lambda: len(outbox.attached) >= n, timeout=120)
    attach_s = time.monotonic() - t0
    leases = [r for r in outbox.attached if r.code == ResponseCode.OK]
    sample = {r.lease_id for r in leases[:: max(1, len(leases) // SAMPLE)][:SAMPLE]}
    stop_sample_at = time.monotonic() + 2.0
    expiry: dict[int, int] = {}
    end = time.monotonic() + seconds
    cpu0, wall0 = cpu_s(), time.monotonic()
    rounds = 0
    while time.monotonic() < end:
        round_start = time.monotonic()
        stopped = round_start >= stop_sample_at
        if stopped and not expiry:
            status = system.status()
            expiry = {s.lease_id: s.expiry_ns for s in status.leases if s.lease_id in sample}
        for index, r in enumerate(leases):
            if stopped and r.lease_id in sample:
                continue
            if r.lease_id is None or r.stream_id is None:
                raise RuntimeError(f"OK attach response without a lease: {r}")
            driver.tell(
                ShmLeaseKeepalive(
                    lease_id=r.lease_id,
                    stream_id=r.stream_id,
                    client_id=r.correlation_id,
                    role=Role.CONSUMER,
                    client_timestamp_ns=0,
                )
            )
            if index % 500 == 499:  # spread the round over the second like real clients
                time.sleep(0.001)
        rounds += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - round_start)))
    cpu = (cpu_s() - cpu0) / (time.monotonic() - wall0)
    revoked = {rv.lease_id: at for at, rv in outbox.revokes}
    false_expiries = sum(1 for lease_id in revoked if lease_id not in sample)
    latencies = [(revoked[i] - expiry[i]) / 1e6 for i in expiry if i in revoked]
    return {
        "leases": len(leases),
        "attach_s": attach_s,
        "rounds": rounds,
        "false_expiries": false_expiries,
        "sample": len(expiry),
        "revoked_sample": len(latencies),
        "p50_ms": pct(latencies, 0.5),
        "p99_ms": pct(latencies, 0.99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "cpu_s_per_s": cpu,
        "rss_start_mb": rss_start,
        "rss_mb": rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leases", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.seconds)))
        return
    header = (
        f"{'leases':>7} {'attach s':>8} {'false exp':>9} {'revoked':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'CPU s/s':>7} {'RSS MB':>7}"
    )
    print(header)
    for n in args.leases:
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--seconds", str(args.seconds)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['leases']:>7} {r['attach_s']:>8.2f} {r['false_expiries']:>9} "
            f"{r['revoked_sample']:>4}/{r['sample']:<3} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} "
            f"{r['max_ms']:>7.1f} {r['cpu_s_per_s']:>7.3f} {r['rss_mb']:>7.0f}"
        )


if __name__ == "__main__":
    main()
