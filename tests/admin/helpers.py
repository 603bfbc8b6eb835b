"""Helpers for the admin tests: a sample DriverStatus, a fake DriverActor, a REQ round trip."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import pykka
import zmq

from messages.control import Role
from messages.events import DriverStatus, LeaseStatus, StatusQuery, StreamStatus
from tensorpool_config import AdminSection, DriverConfig, default_config

if TYPE_CHECKING:
    from pathlib import Path

NOW_NS = 5_000_000_000


def sample_status(counters: Mapping[str, int] | None = None) -> DriverStatus:
    """A driver with one producer and one consumer on stream 10000, epoch 77."""
    return DriverStatus(
        instance_id="driver-01",
        state="Driver.Running",
        pid=4242,
        started_ns=NOW_NS - 1_500_000_000,
        now_ns=NOW_NS,
        streams=(
            StreamStatus(
                stream_id=10000,
                name="default",
                profile="default",
                dynamic=False,
                state="Stream.ProducerAttached",
                epoch=77,
                producer_lease_id=11,
                producer_client_id=501,
                consumer_lease_ids=(12,),
                hugepages=False,
                header_uri="shm:file?path=/dev/shm/x/header.ring",
                pool_uris=("shm:file?path=/dev/shm/x/1.pool",),
            ),
        ),
        leases=(
            LeaseStatus(
                lease_id=12,
                client_id=502,
                role=Role.CONSUMER,
                stream_id=10000,
                node_id=2,
                epoch=77,
                state="Lease.Active",
                expiry_ns=NOW_NS + 2_500_000_000,
            ),
            LeaseStatus(
                lease_id=11,
                client_id=501,
                role=Role.PRODUCER,
                stream_id=10000,
                node_id=1,
                epoch=77,
                state="Lease.Active",
                expiry_ns=NOW_NS + 3_000_000_000,
            ),
        ),
        counters=MappingProxyType(dict(counters or {"attach.ok": 2})),
    )


class FakeDriver(pykka.ThreadingActor):
    """Answers StatusQuery with a fixed status; ``hold`` makes it wait until released."""

    use_daemon_thread = True

    def __init__(self, status: DriverStatus) -> None:
        super().__init__()
        self.status = status
        self.hold: threading.Event | None = None
        self.queries = 0

    def on_receive(self, message: object) -> object:
        if isinstance(message, StatusQuery):
            self.queries += 1
            if self.hold is not None:
                self.hold.wait(10)
            return self.status
        if message == "hold":
            self.hold = threading.Event()
            return self.hold
        return None


def make_config(run_dir: Path, **admin: object) -> DriverConfig:
    config = default_config({})
    section = dataclasses.replace(config.admin, run_dir=run_dir, **admin)  # type: ignore[arg-type]
    assert isinstance(section, AdminSection)
    return dataclasses.replace(config, admin=section)


def zmq_context() -> zmq.Context[zmq.Socket[bytes]]:
    """The process-wide zmq context, typed (mypy cannot infer its socket type by itself)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    return ctx


def json_object(value: object) -> dict[str, object]:
    """``value`` (decoded JSON) as an object; fails the test when it is something else."""
    assert isinstance(value, dict), value
    return value


def json_list(value: object) -> list[object]:
    """``value`` (decoded JSON) as an array; fails the test when it is something else."""
    assert isinstance(value, list), value
    return value


def json_objects(value: object) -> list[dict[str, object]]:
    """``value`` (decoded JSON) as an array of objects."""
    return [json_object(item) for item in json_list(value)]


def json_int(value: object) -> int:
    """``value`` (decoded JSON) as an integer; fails the test when it is something else."""
    assert isinstance(value, int), value
    return value


def json_str(value: object) -> str:
    """``value`` (decoded JSON) as a string; fails the test when it is something else."""
    assert isinstance(value, str), value
    return value


def json_counters(value: object) -> dict[str, int]:
    """``value`` (decoded JSON) as a counters object: every value an integer."""
    counters: dict[str, int] = {}
    for name, n in json_object(value).items():
        assert isinstance(n, int), (name, n)
        counters[name] = n
    return counters


Request = Callable[..., dict[str, object]]


def request(endpoint: str, payload: bytes, timeout_s: float = 3.0) -> dict[str, object]:
    """One REQ round trip; raises zmq.Again when nothing answers in time."""
    ctx = zmq_context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
    try:
        sock.connect(endpoint)
        sock.send(payload)
        reply = json.loads(sock.recv())
    finally:
        sock.close(linger=0)
    assert isinstance(reply, dict)
    return reply
