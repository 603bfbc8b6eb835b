"""Data-plane benchmark: a producer process and a consumer process through a real driver.

    .venv/bin/python bench/dataplane.py [--runs 3] [--frames-4k 400000] [--frames-640k 40000]

A ``python launcher.py`` driver runs as a subprocess with its SHM base and Aeron directory in a
fresh directory under /dev/shm (removed at the end). Every scenario starts a consumer process,
then a producer process (this script with ``--role``), and every frame is checked: each payload
is a uint64 array whose first and last elements carry the frame's seq, the consumer compares
both with the descriptor's seq and re-checks the seqlock afterwards (``Frame.intact``), and
counts every lost frame the consumer reports.

Scenarios: throughput with 4 KiB and 640 KiB frames (the producer does not overwrite unread
slots, so nothing may be lost); one 4 KiB frame in flight (paced every 0.5 ms) with a spinning
and with a parking consumer, latency = consumer's CLOCK_MONOTONIC at read minus the frame's
timestampNs; an idle client (attached producer + consumer, nobody calls them) and a consumer
waiting in ``poll(timeout=1.0)`` with no frames. Beside them, in the same run, this process
copies the same frames into a /dev/shm mapping with numpy and with plain memcpy
(``ctypes.memmove``), and prints the ratios. CPU is per process (all threads), from
``time.process_time`` in the children and /proc for the driver. Medians over ``--runs``.

The machine may be shared: before each run the bench waits (up to ``--settle-max-s``) for the
1-minute load average to fall below ``--settle-load``, and prints the load before and after
every run next to the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import mmap
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tensorpool_client import Consumer, DriverClient, Producer  # noqa: E402

CHANNEL = "aeron:ipc?term-length=4m"
SMALL, LARGE, IDLE = 10000, 10001, 10002
SMALL_BYTES, LARGE_BYTES = 4096, 640 * 1024
SMALL_SLOTS, LARGE_SLOTS = 1024, 64
LARGE_STRIDE = 1 << 20
CONFIG = """\
[driver]
instance_id = "bench"

[shm]
base_dir = "{base}"
namespace = "bench"

[policies]
announce_period_ms = 1000

[profiles.small]
header_nslots = {small_slots}
payload_pools = [ {{ pool_id = 1, stride_bytes = 4096 }} ]

[profiles.large]
header_nslots = {large_slots}
payload_pools = [ {{ pool_id = 2, stride_bytes = {large_stride} }} ]

[streams.small]
stream_id = {small}
profile = "small"

[streams.large]
stream_id = {large}
profile = "large"

[streams.idle]
stream_id = {idle}
profile = "small"

[admin]
run_dir = "{run}"
"""


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def pct(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------- child roles


def run_consumer(args: argparse.Namespace) -> int:
    base = (Path(args.shm),)
    with DriverClient(args.aeron_dir) as client, Consumer(
        client, args.stream, allowed_base_dirs=base, wait=args.wait
    ) as consumer:
        emit({"ready": True})
        latencies: list[int] = []
        bad = 0
        seen = 0
        last_seq = -1
        cpu0 = wall0 = 0.0
        deadline = time.monotonic() + args.timeout
        while last_seq < args.frames - 1 and time.monotonic() < deadline:
            frames = consumer.poll_batch(256, timeout=0.5)
            now = time.monotonic_ns()
            for frame in frames:
                if seen == 0:
                    cpu0, wall0 = time.process_time(), time.monotonic()
                array = frame.array
                if not (array[0] == frame.seq == array[-1] and frame.intact()):
                    bad += 1
                latencies.append(now - frame.timestamp_ns)
                seen += 1
                last_seq = frame.seq
        cpu1, wall1 = time.process_time(), time.monotonic()
        emit({
            "frames": seen, "bad": bad, "lost": consumer.frames_lost,
            "losses": [f"{r.first_seq}-{r.last_seq}:{r.reason}" for r in consumer.losses][:5],
            "wall": wall1 - wall0, "cpu": (cpu1 - cpu0) / max(wall1 - wall0, 1e-9),
            "p50_us": pct(latencies, 0.5) / 1e3, "p99_us": pct(latencies, 0.99) / 1e3,
            "max_us": max(latencies, default=0) / 1e3,
        })
    return 0


def run_producer(args: argparse.Namespace) -> int:
    base = (Path(args.shm),)
    with DriverClient(args.aeron_dir) as client, Producer(
        client, args.stream, allowed_base_dirs=base, overwrite_unread=False, claim_timeout=10.0
    ) as producer:
        if producer.wait_for_consumers(timeout=10.0) < 1:
            emit({"error": "no consumer"})
            return 1
        frame = np.zeros(args.bytes // 8, dtype=np.uint64)
        cpu0, wall0 = time.process_time(), time.monotonic()
        for seq in range(args.frames):
            frame[0] = frame[-1] = seq
            producer.offer(frame)
            if args.pace_us:
                time.sleep(args.pace_us / 1e6)
        cpu1, wall1 = time.process_time(), time.monotonic()
        emit({"wall": wall1 - wall0, "cpu": (cpu1 - cpu0) / (wall1 - wall0),
              "not_sent": producer.descriptors_not_sent, "waits": producer.waits_for_consumers})
        time.sleep(0.5)  # let the consumer read the tail before the lease goes away
    return 0


def run_idle(args: argparse.Namespace) -> int:
    base = (Path(args.shm),)
    with DriverClient(args.aeron_dir) as client, Producer(
        client, args.stream, allowed_base_dirs=base
    ), Consumer(client, args.stream, allowed_base_dirs=base) as consumer:
        time.sleep(1.0)
        cpu0, wall0 = time.process_time(), time.monotonic()
        time.sleep(args.seconds)
        cpu1, wall1 = time.process_time(), time.monotonic()
        idle = (cpu1 - cpu0) / (wall1 - wall0)
        cpu0, wall0 = time.process_time(), time.monotonic()
        while time.monotonic() - wall0 < args.seconds:
            consumer.poll(timeout=1.0)
        cpu1, wall1 = time.process_time(), time.monotonic()
        emit({"idle": idle, "waiting": (cpu1 - cpu0) / (wall1 - wall0)})
    return 0


# ---------------------------------------------------------------------- orchestration


class Driver:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.shm = root / "shm"
        self.aeron_dir = str(root / "aeron")
        config = root / "driver.toml"
        config.write_text(CONFIG.format(
            base=self.shm, run=root / "run", small=SMALL, large=LARGE, idle=IDLE,
            small_slots=SMALL_SLOTS, large_slots=LARGE_SLOTS, large_stride=LARGE_STRIDE))
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "launcher.py"), "--config", str(config),
             "--aeron-dir", self.aeron_dir],
            cwd=REPO, env=child_env(), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
            text=True)
        self.lines: list[str] = []
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)
                if "running:" in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(60):
            self.stop()
            raise SystemExit(f"driver did not start: {''.join(self.lines)}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRIVER_", "TP_", "AERON_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


def spawn(driver: Driver, role: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--role", role, "--aeron-dir", driver.aeron_dir,
         "--shm", str(driver.shm), *extra],
        cwd=REPO, env=child_env(), stdout=subprocess.PIPE, text=True)


def read_json(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    assert proc.stdout is not None
    result: list[str] = []
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: result.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not result or not result[0]:
        raise RuntimeError(f"child {proc.pid} gave no result within {timeout} s")
    return dict(json.loads(result[0]))


def scenario(driver: Driver, stream: int, size: int, frames: int, *, wait: str,
             pace_us: int = 0) -> dict[str, Any]:
    common = ["--stream", str(stream), "--bytes", str(size), "--frames", str(frames)]
    procs: list[subprocess.Popen[str]] = []
    try:
        consumer = spawn(driver, "consumer", *common, "--wait", wait, "--timeout", "120")
        procs.append(consumer)
        read_json(consumer, 60)  # ready
        cpu0, wall0 = driver.cpu_seconds(), time.monotonic()
        producer = spawn(driver, "producer", *common, "--pace-us", str(pace_us))
        procs.append(producer)
        prod = read_json(producer, 180)
        cons = read_json(consumer, 180)
        cpu1, wall1 = driver.cpu_seconds(), time.monotonic()
        for proc in procs:
            proc.wait(60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            if proc.stdout is not None:
                proc.stdout.close()
    return {"producer": prod, "consumer": cons, "driver_cpu": (cpu1 - cpu0) / (wall1 - wall0)}


def idle_scenario(driver: Driver, seconds: float) -> dict[str, Any]:
    proc = spawn(driver, "idle", "--stream", str(IDLE), "--seconds", str(seconds))
    try:
        result = read_json(proc, 60 + 3 * seconds)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    return result


def copy_baselines(directory: Path, size: int, nslots: int, stride: int,
                   seconds: float = 1.0) -> tuple[float, float]:
    """GiB/s of a numpy copy and of memcpy of one frame into successive slots of a /dev/shm
    mapping with the stream's geometry (same frame, same ring size). Memory bandwidth on a
    shared VM drifts, so the caller measures right before and right after each scenario."""
    path = directory / f"baseline-{size}"
    with path.open("w+b") as file:
        file.truncate(nslots * stride)
        mapping = mmap.mmap(file.fileno(), nslots * stride)
    try:
        return _copy_rates(mapping, size, nslots, stride, seconds)
    finally:
        mapping.close()
        path.unlink()


def _copy_rates(mapping: mmap.mmap, size: int, nslots: int, stride: int,
                seconds: float) -> tuple[float, float]:
    ring = np.frombuffer(mapping, dtype=np.uint8).reshape(nslots, stride)
    src = np.arange(size // 8, dtype=np.uint64)
    src_bytes = src.view(np.uint8)
    slots = [ring[i, :size] for i in range(nslots)]
    base = ring.ctypes.data
    for i in range(nslots):  # fault every page in first, as the driver's prefault does
        slots[i][...] = src_bytes
    rates = []
    for kind in ("numpy", "memcpy"):
        n = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for i in range(nslots):
                if kind == "numpy":
                    slots[i][...] = src_bytes
                else:
                    ctypes.memmove(base + i * stride, src.ctypes.data, size)
            n += nslots
        rates.append(n * size / (time.perf_counter() - start) / 2**30)
    return rates[0], rates[1]


def settle(threshold: float, max_seconds: float) -> None:
    """On a shared machine: wait until the 1-minute load average is under ``threshold``
    (our own previous run included), at most ``max_seconds``; the load is printed anyway."""
    deadline = time.monotonic() + max_seconds
    while os.getloadavg()[0] >= threshold and time.monotonic() < deadline:
        time.sleep(5)


def one_run(driver: Driver, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, stream, size, frames in (("4k", SMALL, SMALL_BYTES, args.frames_4k),
                                       ("640k", LARGE, LARGE_BYTES, args.frames_640k)):
        if name not in args.only:
            continue
        geometry = ((SMALL_SLOTS, SMALL_BYTES) if size == SMALL_BYTES
                    else (LARGE_SLOTS, LARGE_STRIDE))
        before = copy_baselines(scratch, size, *geometry)
        result = scenario(driver, stream, size, frames, wait=args.throughput_wait)
        after = copy_baselines(scratch, size, *geometry)
        numpy_gib, memcpy_gib = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
        cons, prod = result["consumer"], result["producer"]
        rate = cons["frames"] / cons["wall"]
        out[name] = {
            "frames_s": rate, "gib_s": rate * size / 2**30, "p50": cons["p50_us"],
            "p99": cons["p99_us"], "max": cons["max_us"], "prod_cpu": prod["cpu"],
            "cons_cpu": cons["cpu"], "driver_cpu": result["driver_cpu"],
            "frames": cons["frames"], "bad": cons["bad"], "lost": cons["lost"],
            "waits": prod["waits"], "numpy": numpy_gib, "memcpy": memcpy_gib,
        }
    for wait in ("spin", "park"):
        if f"lat_{wait}" not in args.only:
            continue
        result = scenario(driver, SMALL, SMALL_BYTES, args.frames_latency, wait=wait,
                          pace_us=500)
        cons, prod = result["consumer"], result["producer"]
        out[f"lat_{wait}"] = {
            "p50": cons["p50_us"], "p99": cons["p99_us"], "max": cons["max_us"],
            "prod_cpu": prod["cpu"], "cons_cpu": cons["cpu"], "driver_cpu": result["driver_cpu"],
            "frames": cons["frames"], "bad": cons["bad"], "lost": cons["lost"],
        }
    if "idle" in args.only:
        out["idle"] = idle_scenario(driver, args.idle_seconds)
    return out


def report(runs: list[dict[str, Any]]) -> None:
    def med(*path: str) -> float:
        values = []
        for run in runs:
            value: Any = run
            for key in path:
                value = value[key]
            values.append(float(value))
        return statistics.median(values)

    print(f"\nmedians of {len(runs)} run(s); CPU in % of one core, all threads of the process; "
          "1-minute load average before/after each run: "
          + ", ".join(f"{run['load'][0]:.1f}/{run['load'][1]:.1f}" for run in runs))
    for name, size in (("4k", "4 KiB"), ("640k", "640 KiB")):
        if name not in runs[0]:
            continue
        gib = med(name, "gib_s")
        print(f"{size} frames: {med(name, 'frames_s'):,.0f} frames/s = {gib:.2f} GiB/s; "
              f"latency under load p50/p99/max {med(name, 'p50'):.0f}/{med(name, 'p99'):.0f}/"
              f"{med(name, 'max'):.0f} us; CPU producer {100 * med(name, 'prod_cpu'):.0f} %, "
              f"consumer {100 * med(name, 'cons_cpu'):.0f} %, driver "
              f"{100 * med(name, 'driver_cpu'):.1f} %")
        print(f"    same run: numpy copy into /dev/shm {med(name, 'numpy'):.2f} GiB/s "
              f"(ratio {gib / med(name, 'numpy'):.2f}), memcpy {med(name, 'memcpy'):.2f} GiB/s "
              f"(ratio {gib / med(name, 'memcpy'):.2f}); checked {med(name, 'frames'):.0f} "
              f"frames, bad {med(name, 'bad'):.0f}, lost {med(name, 'lost'):.0f}, "
              f"producer waits {med(name, 'waits'):.0f}")
    for wait in ("spin", "park"):
        key = f"lat_{wait}"
        if key not in runs[0]:
            continue
        print(f"one 4 KiB frame in flight, consumer {wait}s: p50/p99/max "
              f"{med(key, 'p50'):.1f}/{med(key, 'p99'):.1f}/{med(key, 'max'):.0f} us; CPU "
              f"producer {100 * med(key, 'prod_cpu'):.0f} %, consumer "
              f"{100 * med(key, 'cons_cpu'):.0f} %, driver {100 * med(key, 'driver_cpu'):.1f} %;"
              f" frames {med(key, 'frames'):.0f}, bad {med(key, 'bad'):.0f}, lost "
              f"{med(key, 'lost'):.0f}")
    if "idle" in runs[0]:
        print(f"idle client (producer + consumer attached, not called): "
              f"{100 * med('idle', 'idle'):.2f} % of a core; consumer waiting in poll(timeout=1) "
              f"(park): {100 * med('idle', 'waiting'):.2f} %")
    share = time.process_time() / max(time.monotonic() - START, 1e-9)
    print(f"bench orchestrator (this process, baselines included): {100 * share:.1f} %")


START = time.monotonic()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["consumer", "producer", "idle"])
    parser.add_argument("--aeron-dir")
    parser.add_argument("--shm")
    parser.add_argument("--stream", type=int)
    parser.add_argument("--bytes", type=int)
    parser.add_argument("--frames", type=int)
    parser.add_argument("--wait", default="spin")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--pace-us", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--frames-4k", type=int, default=400_000)
    parser.add_argument("--frames-640k", type=int, default=40_000)
    parser.add_argument("--frames-latency", type=int, default=4000)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--settle-load", type=float, default=1.0,
                        help="before each run, wait for a 1-minute load average below this")
    parser.add_argument("--settle-max-s", type=float, default=180.0)
    parser.add_argument("--only", default="4k,640k,lat_spin,lat_park,idle",
                        help="comma-separated scenarios to run")
    parser.add_argument("--throughput-wait", choices=["spin", "park"], default="park",
                        help="how the consumer waits in the throughput scenarios")
    args = parser.parse_args()
    args.only = set(args.only.split(","))
    if args.role == "consumer":
        return run_consumer(args)
    if args.role == "producer":
        return run_producer(args)
    if args.role == "idle":
        return run_idle(args)
    root = Path(tempfile.mkdtemp(prefix="tp-bench-", dir="/dev/shm"))  # tmpfs on purpose
    driver = None
    try:
        driver = Driver(root)
        runs = []
        for i in range(args.runs):
            settle(args.settle_load, args.settle_max_s)
            load_before = os.getloadavg()[0]
            run = one_run(driver, args, root)
            run["load"] = [load_before, os.getloadavg()[0]]
            print(f"run {i + 1}: {json.dumps(run)}", flush=True)
            runs.append(run)
        report(runs)
    finally:
        if driver is not None:
            driver.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
