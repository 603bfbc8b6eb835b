"""Bridge benchmark: producer -> driver A -> bridges over aeron:udp -> driver B -> consumer.

    .venv/bin/python bench/bridge.py [--sizes 655360,4096] [--seconds 5] [--latency-rate 1000]
                                     [--mtu 8192] [--driver-idle 1-0-1us-50us]

Everything runs on this host over 127.0.0.1: two tensorpool drivers (own Aeron dirs, SHM
namespaces), a sender and a receiver bridge process, a producer process on A and a consumer
process on B. Throughput runs closed-loop (the producer stays at most ``--window`` frames
ahead of the far consumer, so nothing is overrun); latency runs at a fixed low rate and
measures source commit (the slot's timestampNs, preserved by the bridge) -> far consumer.
Every delivered frame is checked (its first 8 bytes carry its seq, its last byte the seq);
the producer writes only those bytes into the claimed slot (zero-copy), so the load
generators take as little CPU from the rig as they can. The references are a bare Aeron UDP
publication -> subscription of the same message size through the same two media drivers, in
the same run: flat out (the throughput ratio is printed) and one way at the latency rate.
``--mtu`` sets the Aeron MTU of every UDP channel (bridge and bare alike); ``--driver-idle``
sets the back-off of the drivers' embedded media drivers (Aeron's SPINS-YIELDS-MIN-MAX).
CPU is read from /proc/<pid>/stat for every process, including the load generators and this
script, and printed per frame too, with the load average.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CHANNEL = "aeron:ipc?term-length=64m"
TICKS = os.sysconf("SC_CLK_TCK")
STALL_NAP = 0.00005
STAMP = struct.Struct("<Q")
DESCRIPTOR = struct.Struct("<HHHHIQQQIQ")
"""Message header + FrameDescriptor block (the consumer reads timestampNs from it)."""

DRIVER = """\
[driver]
instance_id = "{name}"
aeron_dir = "{aeron}"
control_channel = "{ch}"
announce_channel = "{ch}"
qos_channel = "{ch}"
[shm]
base_dir = "{base}"
namespace = "{name}"
[policies]
default_profile = "p"
announce_period_ms = 500
[profiles.p]
header_nslots = {nslots}
payload_pools = [ {{ pool_id = 1, stride_bytes = {stride} }} ]
[streams.s]
stream_id = {stream}
profile = "p"
[admin]
enabled = false
"""

BRIDGE = """\
[bridge]
instance_id = "{name}"
role = "{role}"
payload_channel = "aeron:udp?endpoint=127.0.0.1:{payload}{udp}"
payload_stream_id = 3000
control_channel = "aeron:udp?endpoint=127.0.0.1:{control}{udp}"
control_stream_id = 3001
forward_metadata = false
run_dir = "{run}"
[[mappings]]
source_stream_id = 10000
dest_stream_id = 20000
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVER_", "AERON_", "BRIDGE_"))}
    e["PYTHONPATH"] = str(REPO)
    return e


# ---------------------------------------------------------------- load generators


def producer_main(  # noqa: PLR0917 - multiprocessing passes args positionally
    aeron: str, base: str, size: int, mode: str, rate: float, window: int,
                  consumed: Any, start: Any, stop: Any) -> None:
    import numpy as np  # noqa: PLC0415 - child process

    from tensorpool_client import DriverClient, Producer  # noqa: PLC0415

    client = DriverClient(aeron).start()
    producer = Producer(client, 10000, allowed_base_dirs=(Path(base),))
    shape = (size,)
    start.wait()
    period = 1.0 / rate if rate else 0.0
    next_t = time.monotonic()
    stalled_since = None
    while True:
        seq = producer.next_seq
        if seq % 64 == 0 and stop.is_set():  # an mp.Event costs a lock: look now and then
            break
        if mode == "closed":
            if seq - consumed.value >= window:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since < 0.2:
                    time.sleep(STALL_NAP)  # a spinning generator takes a core from the rig
                    if stop.is_set():
                        break
                    continue
            stalled_since = None
        else:
            now = time.monotonic()
            if now < next_t:
                time.sleep(min(next_t - now, 0.001))
                if stop.is_set():
                    break
                continue
            next_t += period
        # Zero-copy: only the seq marks are written into the claimed slot (first 8 bytes,
        # last byte), which is all the far consumer checks.
        claim = producer.claim(shape, np.uint8)
        array = claim.array
        STAMP.pack_into(array, 0, seq)
        array[-1] = seq & 0xFF
        claim.commit()
    claim = array = None  # type: ignore[assignment] # the last slot view pins the pool's mapping
    producer.close()
    client.close()


def consumer_main(  # noqa: PLR0917 - multiprocessing passes args positionally
    aeron: str, base: str, size: int, consumed: Any, ready: Any, stop: Any,
                  measure_from: Any, results: Any) -> None:
    from tensorpool_client import Consumer, DriverClient  # noqa: PLC0415
    from tensorpool_client.aeron_connect import connect  # noqa: PLC0415

    client = DriverClient(aeron).start()
    consumer = Consumer(client, 20000, allowed_base_dirs=(Path(base),))
    raw = connect(aeron)
    descriptors = raw.add_subscription(CHANNEL, 1100)
    published: dict[int, int] = {}

    def on_descriptor(buf: Any, _header: Any) -> None:
        if len(buf) >= DESCRIPTOR.size:
            fields = DESCRIPTOR.unpack_from(buf)
            if fields[1] == 4 and fields[2] == 900:
                published[fields[6]] = fields[7]

    ready.set()
    frames = 0
    bad = 0
    latencies: list[int] = []
    added: list[int] = []
    t_first = t_last = 0.0
    while not stop.is_set():
        batch = consumer.poll_batch(64, 0.05)
        if not batch:
            descriptors.poll(on_descriptor, 4096)
            continue
        now = time.monotonic_ns()
        descriptors.poll(on_descriptor, 4096)
        measuring = now >= measure_from.value
        for frame in batch:
            arr = frame.array
            ok = arr.size == size and STAMP.unpack_from(arr)[0] == frame.seq \
                and arr[-1] == frame.seq & 0xFF
            if not ok or not frame.intact():
                bad += 1
                continue
            if not measuring:
                continue
            if frames == 0:
                t_first = time.monotonic()
            frames += 1
            latencies.append(now - frame.timestamp_ns)
            stamp = published.pop(frame.seq, None)
            if stamp is not None:
                added.append(stamp - frame.timestamp_ns)
        t_last = time.monotonic()
        consumed.value = batch[-1].seq + 1
        if len(published) > 4096:
            published.clear()
    results.put({"frames": frames, "bad": bad, "seconds": t_last - t_first,
                 "latencies": latencies, "added": added, "drops": dict(consumer.drops)})
    raw.close()
    consumer.close()
    client.close()


def bare_pub(aeron: str, channel: str, size: int, rate: float, stop: Any) -> None:
    """Flat out (``rate`` 0), or ``rate`` messages a second stamped with their send time."""
    import pyaeron  # noqa: PLC0415

    from tensorpool_client.aeron_connect import connect  # noqa: PLC0415

    a = connect(aeron)
    pub = a.add_exclusive_publication(channel, 4000)
    data = bytearray(size)
    idle = pyaeron.IdleStrategy.backoff(max_park_ns=50_000)
    next_t = time.monotonic()
    while not stop.is_set():
        if rate:
            now = time.monotonic()
            if now < next_t:
                time.sleep(min(next_t - now, 0.001))
                continue
            next_t += 1.0 / rate
            STAMP.pack_into(data, 0, time.monotonic_ns())
            while pub.offer(data) is not True and not stop.is_set():
                idle.idle(0)
            continue
        idle.idle(1 if pub.offer(data) is True else 0)
    a.close()


def bare_sub(  # noqa: PLR0917 - multiprocessing passes args positionally
    aeron: str, channel: str, ready: Any, stop: Any, measure_from: Any,
             results: Any) -> None:
    import pyaeron  # noqa: PLC0415

    from tensorpool_client.aeron_connect import connect  # noqa: PLC0415

    a = connect(aeron)
    sub = a.add_subscription(channel, 4000)
    count = [0, 0.0, 0.0]
    latencies: list[int] = []

    def handler(buf: Any, _header: Any) -> None:
        now = time.monotonic()
        now_ns = time.monotonic_ns()
        if now_ns >= measure_from.value:
            if count[0] == 0:
                count[1] = now
            count[0] += 1
            count[2] = now
            stamp = STAMP.unpack_from(buf)[0]
            if stamp:
                latencies.append(now_ns - stamp)

    ready.set()
    idle = pyaeron.IdleStrategy.backoff(max_spins=1, max_yields=0, max_park_ns=50_000)
    while not stop.is_set():
        idle.idle(sub.poll(handler, 64))
    results.put({"frames": count[0], "seconds": count[2] - count[1], "latencies": latencies})
    a.close()


# ---------------------------------------------------------------- orchestration


class Rig:
    def __init__(self, root: Path, stride: int, nslots: int, udp: str,
                 driver_env: dict[str, str]) -> None:
        self.root = root
        self.udp = udp
        """Extra UDP channel parameters (``|mtu=8192``), for the bridge and the bare run."""
        self.procs: list[subprocess.Popen[bytes]] = []
        self.hosts: dict[str, tuple[Path, Path]] = {}
        payload, control = free_ports(2)
        for name, stream in (("a", 10000), ("b", 20000)):
            home = root / name
            home.mkdir(parents=True)
            cfg = home / "driver.toml"
            cfg.write_text(DRIVER.format(name=f"bench{name}", aeron=home / "aeron", ch=CHANNEL,
                                         base=home / "shm", stream=stream, stride=stride,
                                         nslots=nslots))
            self.hosts[name] = (home, cfg)
            self._spawn([str(REPO / "launcher.py"), "--config", str(cfg)], driver_env)
        time.sleep(1.5)
        for name, role in (("a", "sender"), ("b", "receiver")):
            home, dcfg = self.hosts[name]
            bcfg = home / "bridge.toml"
            bcfg.write_text(BRIDGE.format(name=f"bb{name}", role=role, payload=payload,
                                          control=control, run=root / f"r{name}", udp=udp))
            self._spawn([str(REPO / "launcher.py"), "bridge", "--config", str(bcfg),
                         "--driver-config", str(dcfg), "--log-level", "WARNING"])
        time.sleep(1.5)
        self.names = ["driver A", "driver B", "bridge sender", "bridge receiver"]

    def _spawn(self, argv: list[str], extra: dict[str, str] | None = None) -> None:
        self.procs.append(subprocess.Popen([sys.executable, *argv], cwd=REPO,
                                           env={**env(), **(extra or {})},
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))

    def aeron(self, name: str) -> str:
        return str(self.hosts[name][0] / "aeron")

    def base(self, name: str) -> str:
        return str(self.hosts[name][0] / "shm")

    def counters(self) -> str:
        """The bridges' non-zero drop and flow counters (their status sockets)."""
        parts = []
        for name in ("a", "b"):
            home, dcfg = self.hosts[name]
            out = subprocess.run(
                [sys.executable, str(REPO / "launcher.py"), "bridge", "status", "--json",
                 "--config", str(home / "bridge.toml"), "--driver-config", str(dcfg)],
                cwd=REPO, env=env(), capture_output=True, text=True, timeout=60, check=False)
            try:
                body = json.loads(out.stdout)
            except json.JSONDecodeError:
                parts.append(f"{name}: no status ({out.stderr.strip()[-200:]})")
                continue
            for m in body["mappings"]:
                c = {k: v for k, v in m["counters"].items()
                     if v and not k.startswith(("bytes_", "announces_", "assembly_"))
                     and k not in ("source_epoch", "local_epoch")}
                parts.append(f"{m['role']} {c}")
        return "; ".join(parts)

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def measure(pids: dict[str, int | None], seconds: float, measure_from: Any) -> dict[str, float]:
    """Open the measuring window for ``seconds``; the CPU share of every process in it."""
    cpu0 = {n: cpu_seconds(pid) for n, pid in pids.items() if pid}
    measure_from.value = time.monotonic_ns()
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    return {n: (cpu_seconds(pid) - cpu0[n]) / wall for n, pid in pids.items() if pid}


def run_bridge(  # noqa: PLR0917 - multiprocessing passes args positionally
    rig: Rig, size: int, seconds: float, mode: str, rate: float,
               window: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    consumed, measure_from = ctx.Value("q", 0, lock=False), ctx.Value("q", 1 << 62, lock=False)
    start, ready, stop = ctx.Event(), ctx.Event(), ctx.Event()
    results = ctx.Queue()
    cons = ctx.Process(target=consumer_main, args=(rig.aeron("b"), rig.base("b"), size,
                                                   consumed, ready, stop, measure_from, results))
    cons.start()
    ready.wait(30)
    prod = ctx.Process(target=producer_main, args=(rig.aeron("a"), rig.base("a"), size, mode,
                                                   rate, window, consumed, start, stop))
    prod.start()
    time.sleep(1.0)  # the producer attached; the receiver re-attached; the consumer remapped
    start.set()
    time.sleep(1.5)  # warm-up
    pids = {**dict(zip(rig.names, [p.pid for p in rig.procs], strict=True)),
            "producer": prod.pid, "consumer": cons.pid, "bench": os.getpid()}
    cpu = measure(pids, seconds, measure_from)
    stop.set()
    out: dict[str, Any] = results.get(timeout=30)
    prod.join(30)
    cons.join(30)
    out["cpu"] = cpu
    return out


def run_bare(rig: Rig, size: int, seconds: float, rate: float = 0.0) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    (port,) = free_ports(1)
    channel = f"aeron:udp?endpoint=127.0.0.1:{port}{rig.udp}"
    measure_from = ctx.Value("q", 1 << 62, lock=False)
    ready, stop = ctx.Event(), ctx.Event()
    results = ctx.Queue()
    sub = ctx.Process(target=bare_sub, args=(rig.aeron("b"), channel, ready, stop, measure_from,
                                             results))
    sub.start()
    ready.wait(30)
    pub = ctx.Process(target=bare_pub, args=(rig.aeron("a"), channel, size, rate, stop))
    pub.start()
    time.sleep(1.5)
    pids = {"bare pub": pub.pid, "bare sub": sub.pid, "driver A": rig.procs[0].pid,
            "driver B": rig.procs[1].pid}
    cpu = measure(pids, seconds, measure_from)
    stop.set()
    out: dict[str, Any] = results.get(timeout=30)
    pub.join(30)
    sub.join(30)
    out["cpu"] = cpu
    return out


def pct(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def first_last(values: list[int]) -> str:
    return f"{values[0] / 1000:.0f}/{values[-1] / 1000:.0f} us" if values else "-"


def fmt_cpu(cpu: dict[str, float]) -> str:
    total = sum(cpu.values())
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (", ".join(f"{n} {100 * v:.0f}%" for n, v in cpu.items())
            + f"; all {100 * total:.0f}% of 200%; load average {load}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="655360,4096")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=0, help="0: half the ring")
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    parser.add_argument("--driver-idle", default="",
                        help="the drivers' embedded media driver back-off as Aeron's "
                        "SPINS-YIELDS-MINPARK-MAXPARK (e.g. 1-0-1us-50us); default: Aeron's "
                        "(10-20-1us-1ms)")
    parser.add_argument("--mtu", type=int, default=0,
                        help="Aeron MTU of the UDP channels (bridge and bare alike); 0: default")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tpbb-"))
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            stride = 1 << max(size - 1, 63).bit_length()
            nslots = max(64, min(1024, (256 << 20) // stride))
            window = min(args.window, nslots // 2) if args.window else nslots // 2
            driver_env = {"AERON_SHARED_IDLE_STRATEGY": "backoff",
                          "AERON_SHARED_IDLE_STRATEGY_INIT_ARGS": args.driver_idle,
                          } if args.driver_idle else {}
            rig = Rig(root / str(size), stride, nslots, f"|mtu={args.mtu}" if args.mtu else "",
                      driver_env)
            try:
                # Latency at a rate the link sustains (§13.2): large frames at 50 frames/s.
                rate = args.latency_rate if size <= 65536 else min(args.latency_rate, 50.0)
                one_size(rig, size, args.seconds, window, rate)
            finally:
                rig.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def one_size(rig: Rig, size: int, seconds: float, window: int, rate: float) -> None:
    if os.environ.get("BENCH_LATENCY_ONLY"):
        lat = run_bridge(rig, size, seconds, "rate", rate, window)
        bare_lat = run_bare(rig, size, seconds, rate)
        print(f"latency only {size}: added p50 {pct(lat['added'], 0.5):.0f} us, "
              f"e2e p50 {pct(lat['latencies'], 0.5):.0f} us {first_last(lat['latencies'])}; "
              f"bare Aeron p50 {pct(bare_lat['latencies'], 0.5):.0f} us; "
              f"CPU {fmt_cpu(lat['cpu'])}")
        return
    # Latency first, on a fresh rig: a run after a saturating one inherits its queues.
    lat = run_bridge(rig, size, seconds, "rate", rate, window)
    print(f"  at {rate:.0f} frames/s: added latency (source commit -> far descriptor) "
          f"p50 {pct(lat['added'], 0.5):.0f} us, p99 {pct(lat['added'], 0.99):.0f} us; "
          f"end to end (-> far consumer) p50 {pct(lat['latencies'], 0.5):.0f} us, "
          f"p99 {pct(lat['latencies'], 0.99):.0f} us; frames {lat['frames']}, bad {lat['bad']}; "
          f"first/last end-to-end sample {first_last(lat['latencies'])}")
    print(f"  CPU (share of one core): {fmt_cpu(lat['cpu'])}")
    bare_lat = run_bare(rig, size, seconds, rate)
    print(f"  bare Aeron UDP one way at {rate:.0f} msg/s (same media drivers): "
          f"p50 {pct(bare_lat['latencies'], 0.5):.0f} us, "
          f"p99 {pct(bare_lat['latencies'], 0.99):.0f} us")
    res = run_bridge(rig, size, seconds, "closed", 0.0, window)
    fps = res["frames"] / max(res["seconds"], 1e-9)
    print(f"bridge {size} B frames (window {window}): {fps:,.0f} frames/s, "
          f"{fps * size / 2**30:.3f} GiB/s, bad {res['bad']}, consumer drops {res['drops']}")
    print(f"  latency under load p50 {pct(res['latencies'], 0.5):.0f} us, "
          f"p99 {pct(res['latencies'], 0.99):.0f} us")
    print(f"  CPU (share of one core): {fmt_cpu(res['cpu'])}")
    print(f"  bridge counters so far: {rig.counters()}")
    print("  CPU per frame: " + ", ".join(
        f"{n} {1e6 * v / fps:.1f} us" for n, v in res["cpu"].items() if fps and v))
    bare = run_bare(rig, size, seconds)
    bfps = bare["frames"] / max(bare["seconds"], 1e-9)
    print(f"  bare Aeron UDP {size} B: {bfps:,.0f} msg/s, {bfps * size / 2**30:.3f} GiB/s; "
          f"bridge/bare = {fps / bfps if bfps else float('nan'):.2f}")
    print(f"  CPU (share of one core): {fmt_cpu(bare['cpu'])}")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
