"""Pooled actors at 1 Hz: how long a round takes, CPU per second, and memory.

    .venv/bin/python bench/dispatcher.py [rounds] [counts...]

For each actor count (default 100, 1,000, 10,000), in a fresh child process: start that many
``PooledActor``s on a ``Dispatcher(workers=2, throughput=16)``, then once per second tell each
actor one message (a lease-check-like tick handled by a small HSM) for ``rounds`` rounds
(default 5). Reported per configuration:

* span: from the first tell of a round to the last handled message of that round (median/max);
* tell: how long the loop of tells itself took (median);
* CPU s/s: (user + sys CPU from getrusage) / wall time over the rounds;
* RSS: resident set after starting the actors and after the rounds (from /proc/self/statm);
* start / stop: seconds to start the actors and to stop them all (ActorRegistry.stop_all).
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pykka

from actors.runtime.dispatcher import Dispatcher, PooledActor
from actors.runtime.hsm import HANDLED, Hsm, HsmModel, Machine, Outcome, State, Transition
from messages.events import LeaseCheckTimerFired

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with Path("/proc/self/statm").open() as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class LeaseModel(HsmModel):
    def __init__(self) -> None:
        super().__init__()
        self.deadline_ns = 10**18


def on_check(m: LeaseModel, ev: LeaseCheckTimerFired) -> Outcome:
    return Transition("Expired") if ev.now_ns >= m.deadline_ns else HANDLED


LEASE: Machine[LeaseModel] = Machine(
    "Lease",
    {
        "Lease": State(initial="Active"),
        "Active": State(parent="Lease"),
        "Expired": State(parent="Lease"),
    },
    {("Active", LeaseCheckTimerFired): on_check},
)


class Round:
    """Counts handled messages of the current round; the last one stamps the time."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.counter = itertools.count(1)
        self.done = threading.Event()
        self.last_ns = 0

    def handled(self) -> None:
        if next(self.counter) == self.expected:
            self.last_ns = time.perf_counter_ns()
            self.done.set()


class LeaseActor(PooledActor):
    current: Round | None = None  # set by the ticker before each round's tells

    def __init__(self) -> None:
        super().__init__()
        self.hsm = Hsm(LEASE, LeaseModel())
        self.hsm.start()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, LeaseCheckTimerFired):
            self.hsm.dispatch(message)
            assert LeaseActor.current is not None
            LeaseActor.current.handled()
        return None


def child(count: int, rounds: int) -> dict[str, float]:
    LeaseActor.dispatcher = Dispatcher(workers=2, throughput=16)
    rss_start = rss_mb()
    t = time.perf_counter()
    refs = [LeaseActor.start() for _ in range(count)]
    started_s = time.perf_counter() - t
    for ref in refs:
        ref.ask("sync", block=True)  # every on_start has run
    rss_started = rss_mb()
    spans, tells = [], []
    wall0, cpu0 = time.perf_counter(), cpu_s()
    next_round = time.perf_counter()
    for r in range(rounds):
        time.sleep(max(0.0, next_round - time.perf_counter()))
        next_round += 1.0
        current = LeaseActor.current = Round(count)
        event = LeaseCheckTimerFired(r)
        t0 = time.perf_counter_ns()
        for ref in refs:
            ref.tell(event)
        tells.append((time.perf_counter_ns() - t0) / 1e6)
        if not current.done.wait(30.0):
            raise RuntimeError(f"round {r} did not complete")
        spans.append((current.last_ns - t0) / 1e6)
    wall, cpu = time.perf_counter() - wall0, cpu_s() - cpu0
    rss_running = rss_mb()
    t = time.perf_counter()
    pykka.ActorRegistry.stop_all()
    stopped_s = time.perf_counter() - t
    LeaseActor.dispatcher.shutdown()
    return {
        "actors": count,
        "span_med_ms": statistics.median(spans),
        "span_max_ms": max(spans),
        "tell_med_ms": statistics.median(tells),
        "cpu_s_per_s": cpu / wall,
        "rss_start_mb": rss_start,
        "rss_started_mb": rss_started,
        "rss_running_mb": rss_running,
        "start_s": started_s,
        "stop_s": stopped_s,
    }


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    counts = [int(a) for a in sys.argv[2:]] or [100, 1_000, 10_000]
    print(f"pooled actors, Dispatcher(workers=2, throughput=16), {rounds} rounds at 1 Hz")
    header = (
        f"{'actors':>7} | {'span med/max ms':>16} | {'tell ms':>7} | {'CPU s/s':>7} |"
        f" {'RSS start>actors>run MB':>24} | {'start/stop s':>12}"
    )
    print(header)
    print("-" * len(header))
    for count in counts:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(count), str(rounds)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{r['actors']:>7,} | {r['span_med_ms']:>7.1f} / {r['span_max_ms']:>6.1f} |"
            f" {r['tell_med_ms']:>7.1f} | {r['cpu_s_per_s']:>7.3f} |"
            f" {r['rss_start_mb']:>6.0f} > {r['rss_started_mb']:>5.0f} >"
            f" {r['rss_running_mb']:>5.0f}     | {r['start_s']:>5.2f} / {r['stop_s']:>4.2f}"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
