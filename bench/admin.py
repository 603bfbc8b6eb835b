"""Admin plane cost: status round trips against a real actor system, and event throughput.

    .venv/bin/python bench/admin.py [--leases 1000] [--queries 300] [--events 20000]

A real DriverActor (no Aeron; a recording outbox) holds ``--leases`` consumer leases; a zmq
REQ client asks ``status`` ``--queries`` times and ``ping`` as many times (the zmq floor), then
the driver side emits ``--events`` lifecycle events while a SUB client counts what arrives.
Everything lives in a temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import zmq

from actors import start_driver_system
from actors.admin import start_admin
from actors.testing import RecordingOutbox, small_config
from messages.control import ResponseCode, Role, ShmAttachRequest, ShmAttachResponse
from messages.events import DriverEvent

if TYPE_CHECKING:
    from collections.abc import Callable


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def round_trips(sock: zmq.Socket[bytes], cmd: str, count: int) -> list[float]:
    request = json.dumps({"cmd": cmd}).encode()
    latencies: list[float] = []
    for _ in range(count):
        start = time.perf_counter()
        sock.send(request)
        reply = json.loads(sock.recv())
        latencies.append(time.perf_counter() - start)
        if not reply.get("ok"):
            raise RuntimeError(f"{cmd} failed: {reply}")
    latencies.sort()
    return latencies


def attach_consumers(
    driver_outbox: RecordingOutbox, tell: Callable[[ShmAttachRequest], None], leases: int
) -> None:
    for i in range(leases):
        request = ShmAttachRequest(
            correlation_id=i + 1,
            stream_id=10000,
            client_id=i + 1,
            role=Role.CONSUMER,
            expected_layout_version=1,
        )
        tell(request)
    if not driver_outbox.wait_for_count(ShmAttachResponse, leases, timeout=60):
        raise RuntimeError("attaches did not complete")
    ok = [r for r in driver_outbox.of_type(ShmAttachResponse) if r.code == ResponseCode.OK]
    if len(ok) != leases:
        raise RuntimeError(f"only {len(ok)} of {leases} attaches succeeded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="tp-bench-admin-"))
    config = small_config(base / "shm")
    config = dataclasses.replace(
        config, admin=dataclasses.replace(config.admin, enabled=True, run_dir=base / "run")
    )
    outbox = RecordingOutbox()
    plane = start_admin(config, dict)
    system = start_driver_system(config, outbox=outbox, events=plane.events)
    plane.bind_driver(system.driver)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    try:
        attach_consumers(outbox, system.driver.tell, args.leases)
        req = context.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(plane.endpoints[0])
        print(f"status / ping round trips, driver holding {args.leases} leases")
        print(f"{'cmd':<8} {'p50 us':>9} {'p99 us':>9} {'max us':>9} {'reply bytes':>12}")
        for cmd in ("ping", "status"):
            lat = round_trips(req, cmd, args.queries)
            req.send(json.dumps({"cmd": cmd}).encode())
            size = len(req.recv())
            print(
                f"{cmd:<8} {statistics.median(lat) * 1e6:9.0f} {percentile(lat, 0.99) * 1e6:9.0f}"
                f" {lat[-1] * 1e6:9.0f} {size:12d}"
            )
        req.close()

        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.setsockopt(zmq.RCVHWM, 0)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(plane.endpoints[1])
        joined = time.monotonic() + 10.0  # the slow-joiner handshake: wait for a probe event
        while True:
            plane.events.emit(DriverEvent("probe", 0))
            if sub.poll(20):
                break
            if time.monotonic() > joined:
                raise RuntimeError("the events subscriber never received a probe")
        while sub.poll(100):
            sub.recv()
        start = time.perf_counter()
        for i in range(args.events):
            plane.events.emit(DriverEvent("attach", i, {"lease_id": i}))
        emit_s = time.perf_counter() - start
        received = 0
        while received < args.events and sub.poll(1000):
            sub.recv()
            received += 1
        total_s = time.perf_counter() - start
        sub.close()
        print(
            f"events: emit {emit_s / args.events * 1e6:.1f} us/event (driver side, never blocks);"
            f" {received}/{args.events} delivered in {total_s:.2f} s"
            f" ({received / total_s:,.0f}/s)"
            + ("" if received == args.events else "; the rest dropped at the bounded queue")
        )
    finally:
        system.stop()
        plane.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
