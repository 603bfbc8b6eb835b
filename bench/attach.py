"""Attach benchmark: a driver subprocess measured from a raw Aeron client in this process.

    .venv/bin/python bench/attach.py [--consumer-n 300] [--producer-n 150]

Prints start-up time (spawn -> first announce), attach round trips (consumer on a provisioned
stream; producer with a fresh epoch each time, detached in between), the keepalive rate the
driver absorbs, and the driver's idle CPU from /proc/<pid>/stat. Every directory it makes
(SHM base, run dir, Aeron dir) is removed at the end, and the driver is stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
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

REPO = Path(__file__).resolve().parents[1]
CHANNEL = "aeron:ipc?term-length=4m"
CONFIG = """\
[driver]
instance_id = "bench"
control_channel = "{ch}"
control_stream_id = 1000
announce_channel = "{ch}"
announce_stream_id = 1001
qos_channel = "{ch}"
qos_stream_id = 1200

[shm]
base_dir = "{base}"
namespace = "bench"

[policies]
announce_period_ms = 1000
node_id_reuse_cooldown_ms = 0
epoch_gc_keep = 2
epoch_gc_min_age_ns = 1

[profiles.small]
header_nslots = 1024
payload_pools = [ {{ pool_id = 1, stride_bytes = 4096 }} ]

[streams.cam]
stream_id = 10000
profile = "small"

[admin]
run_dir = "{run}"
"""


class Client:
    def __init__(self, aeron_dir: str) -> None:
        self.aeron = connect(aeron_dir, client_name="bench")
        self.control = self.aeron.add_subscription(CHANNEL, 1000)
        self.announce = self.aeron.add_subscription(CHANNEL, 1001)
        self.pub = self.aeron.add_exclusive_publication(CHANNEL, 1000)
        self.idle = pyaeron.IdleStrategy.backoff(max_park_ns=10_000)
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

    def attach(self, client_id: int, role: Role) -> tuple[int, ShmAttachResponse]:
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
        resp = self.wait(lambda m: isinstance(m, ShmAttachResponse) and m.correlation_id == cid)
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


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def pct(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def status_counters(config: Path) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, str(REPO / "launcher.py"), "status", "--config", str(config), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    counters: dict[str, int] = json.loads(out.stdout)["counters"]
    return counters


def measure_startup(client: Client, t_spawn: int) -> tuple[ShmAttachResponse, str]:
    """Retry the first attach until the driver serves it, then wait for its announce."""
    first: ShmAttachResponse | None = None
    while first is None:
        with contextlib.suppress(TimeoutError):
            _, first = client.attach(1, Role.CONSUMER)
    client.inbox.append(first)
    client.wait(lambda m: isinstance(m, ShmPoolAnnounce))
    return first, f"{(time.perf_counter_ns() - t_spawn) / 1e6:.0f} ms"


def measure_attach(client: Client, role: Role, n: int, first_id: int) -> str:
    rtts: list[int] = []
    for i in range(n):
        rtt, resp = client.attach(first_id + i, role)
        assert resp.code == ResponseCode.OK, resp
        rtts.append(rtt)
        client.detach(resp, first_id + i, role)
    return f"{pct(rtts, 0.5):.0f} / {pct(rtts, 0.99):.0f} / {pct(rtts, 0.999):.0f} us"


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
    hz = os.sysconf("SC_CLK_TCK")
    time.sleep(settle)
    t1, c1 = time.perf_counter(), cpu_ticks(pid)
    time.sleep(seconds)
    t2, c2 = time.perf_counter(), cpu_ticks(pid)
    return f"{100 * (c2 - c1) / hz / (t2 - t1):.1f} % of a core"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--consumer-n", type=int, default=300)
    parser.add_argument("--producer-n", type=int, default=150)
    parser.add_argument("--keepalive-s", type=float, default=2.0)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--settle-s", type=float, default=5.0)
    args = parser.parse_args()

    shm_root = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    base = Path(tempfile.mkdtemp(prefix="tp-bench-", dir=shm_root))
    tmp = Path(tempfile.mkdtemp(prefix="tp-bench-"))
    config = tmp / "driver.toml"
    config.write_text(CONFIG.format(ch=CHANNEL, base=base, run=tmp / "run"))
    aeron_dir = str(tmp / "aeron")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVER_", "AERON_"))}
    command = [sys.executable, str(REPO / "launcher.py"), "--config", str(config)]
    command += ["--aeron-dir", aeron_dir, "--log-level", "WARNING"]
    t_spawn = time.perf_counter_ns()
    proc = subprocess.Popen(command, cwd=REPO, env=env)
    rows: list[tuple[str, str]] = []
    client: Client | None = None
    try:
        while not Path(aeron_dir, "cnc.dat").exists():
            if proc.poll() is not None:
                raise SystemExit("driver exited during start-up")
            time.sleep(0.001)
        client = Client(aeron_dir)
        first, startup = measure_startup(client, t_spawn)
        rows.append(("start-up: spawn -> first announce", startup))
        client.detach(first, 1, Role.CONSUMER)
        rows.append(
            (
                "consumer attach RTT p50/p99/p99.9",
                measure_attach(client, Role.CONSUMER, args.consumer_n, 1000),
            )
        )
        rows.append(
            (
                "producer attach RTT p50/p99/p99.9 (new epoch)",
                measure_attach(client, Role.PRODUCER, args.producer_n, 5000),
            )
        )
        rows.append(
            (
                "keepalives absorbed (offered as fast as possible)",
                measure_keepalives(client, config, args.keepalive_s),
            )
        )
        client.aeron.close()
        client = None
        rows.append(
            (
                "driver idle CPU (no clients, 1 s announces)",
                measure_idle_cpu(proc.pid, args.idle_s, args.settle_s),
            )
        )
    finally:
        if client is not None:
            client.aeron.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
