"""Lease expiry benchmark: real leases through Aeron from other processes, measured from outside.

    .venv/bin/python bench/leases.py [--leases 1 1000 10000 30000] [--rounds 5] [--procs 2]

For each N: a driver subprocess (its media driver in a process of its own, so the driver's CPU
is its own) and load-generator processes (bench/lease_load.py) that attach N consumer leases
(pipelined, 256 outstanding each), keep every lease alive once a second with the keepalives
spread evenly over the second, send each lease's last keepalive and let them all expire. It
prints false revokes (a revoke before the lease's deadline: its last keepalive + 3 s), revoked
of total, lateness (arrival - deadline) p50/p99/max split into decided (revoke timestamp -
deadline) and transit (arrival - revoke timestamp), the attach rate, the driver's CPU while it
holds the leases and over the whole run, and the load generators' own CPU (while they keep the
leases alive, and while they wait for the revokes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import REPO, RunningDriver, pct, running_driver, status_counters, stop

LOAD = Path(__file__).with_name("lease_load.py")


def ms(values: list[int]) -> str:
    if not values:
        return "-"
    return " / ".join(f"{pct(values, q) / 1e6:.2f}" for q in (0.5, 0.99, 1.0))


def run(n: int, rounds: int, procs: int) -> dict[str, Any]:
    procs = max(1, min(procs, n))
    with running_driver() as driver:
        _wait_for_driver(driver)
        share = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
        loads = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(LOAD),
                    "--aeron-dir",
                    driver.aeron_dir,
                    "--leases",
                    str(k),
                    "--client-base",
                    str(1_000_000 * (i + 1)),
                    "--rounds",
                    str(rounds),
                    "--ttl-ns",
                    str(driver.ttl_ns),
                ],
                cwd=REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, k in enumerate(share)
        ]
        try:
            t_attach = time.monotonic()
            cpu_a = driver.cpu()
            attach_s = [json.loads(_line(p))["attached"] for p in loads]
            attach_wall = time.monotonic() - t_attach
            cpu_b = driver.cpu()
            start_ns = time.monotonic_ns() + 200_000_000
            for p in loads:
                assert p.stdin is not None
                p.stdin.write(f"{start_ns}\n")
                p.stdin.flush()
            # Holding: from one round in to the last keepalive round's end.
            time.sleep(1.2)
            t_hold, cpu_h = time.monotonic(), driver.cpu()
            time.sleep(max(0.5, rounds - 2.2))
            hold_cpu = (driver.cpu() - cpu_h) / (time.monotonic() - t_hold)
            results = [json.loads(_line(p)) for p in loads]
            cpu_c = driver.cpu()
            counters = status_counters(driver.config)
        finally:
            for p in loads:
                stop(p, 10)
    merged: dict[str, Any] = {
        "counters": counters,
        "leases": n,
        "attached": sum(r["attached"] for r in results),
        "rejected": sum(r["rejected"] for r in results),
        "revoked": sum(r["revoked"] for r in results),
        "false_revokes": sum(r["false_revokes"] for r in results),
        "decided": [v for r in results for v in r["decided"]],
        "transit": [v for r in results for v in r["transit"]],
        "lateness": [v for r in results for v in r["lateness"]],
        "attach_rate": n / max(attach_s) if max(attach_s) else 0.0,
        "attach_wall_s": attach_wall,
        "attach_s": max(attach_s),
        "driver_cpu_attach_s": cpu_b - cpu_a,
        "driver_hold_cpu": hold_cpu,
        "driver_cpu_total_s": cpu_c - cpu_a,
        "load_cpu_total_s": sum(r["cpu_total_s"] for r in results),
        "load_keepalive_cpu": sum(r["cpu_keepalive_s"] for r in results)
        / max(r["keepalive_s"] for r in results),
        # While they wait for the revokes (polling, 100 us naps): they share the cores with
        # the driver exactly when its lateness is measured.
        "load_expiry_cpu": sum(r["cpu_expiry_s"] for r in results)
        / max(r["expiry_s"] for r in results),
    }
    return merged


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"load generator exited ({proc.wait()})")
    return line


def _wait_for_driver(driver: RunningDriver) -> None:
    """The driver serves once its admin plane answers a status query."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if driver.proc.poll() is not None:
            raise SystemExit("the driver exited during start-up")
        out = subprocess.run(
            [sys.executable, str(REPO / "launcher.py"), "status", "--config", str(driver.config)],
            cwd=REPO,
            capture_output=True,
            check=False,
            timeout=30,
        )
        if out.returncode == 0:
            return
        time.sleep(0.1)
    raise SystemExit("the driver did not come up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leases", type=int, nargs="+", default=[1, 1000, 10000, 30000])
    parser.add_argument("--rounds", type=int, default=5, help="keepalive rounds before expiry")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--json", action="store_true", help="one JSON object per N")
    parser.add_argument("--counters", action="store_true", help="the driver's counters too")
    args = parser.parse_args()
    header = (
        f"{'leases':>7} {'false':>5} {'revoked':>13} {'lateness p50/p99/max ms':>24} "
        f"{'decided p50/p99/max':>22} {'transit p50/p99/max':>22} {'attach/s':>9} "
        f"{'hold CPU':>8} {'drv CPU s':>9} {'load CPU':>8} {'load exp':>8}"
    )
    if not args.json:
        print(header)
    for n in args.leases:
        r = run(n, args.rounds, args.procs)
        if args.json:
            print(json.dumps({k: v for k, v in r.items() if not isinstance(v, list | dict)}))
            continue
        print(
            f"{n:>7} {r['false_revokes']:>5} {r['revoked']:>6}/{r['attached']:<6} "
            f"{ms(r['lateness']):>24} {ms(r['decided']):>22} {ms(r['transit']):>22} "
            f"{r['attach_rate']:>9,.0f} {100 * r['driver_hold_cpu']:>7.1f}% "
            f"{r['driver_cpu_total_s']:>9.1f} {100 * r['load_keepalive_cpu']:>7.1f}% "
            f"{100 * r['load_expiry_cpu']:>7.1f}%",
            flush=True,
        )
        if args.counters:
            print("        ", json.dumps(r["counters"], sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
