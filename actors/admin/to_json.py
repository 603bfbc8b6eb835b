"""Turn a ``DriverStatus`` (plus the launcher's ``info()``) into the JSON the admin CLI reads.

Pure functions, no zmq: the admin thread calls them once a status future has resolved. The
JSON keys are documented in messages/admin.py; values are plain JSON scalars so a
client in any language can read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from messages.events import DriverEvent, DriverStatus, LeaseStatus, StreamStatus

JsonObject = dict[str, object]


def status_json(
    status: DriverStatus,
    info: Mapping[str, object],
    extra_counters: Mapping[str, int],
) -> JsonObject:
    """The ``status`` reply body. ``info`` keys other than ``counters`` describe the driver."""
    driver: JsonObject = {
        "instance_id": status.instance_id,
        "state": status.state,
        "pid": status.pid,
        "uptime_ms": max(0, status.now_ns - status.started_ns) // 1_000_000,
    }
    for key, value in info.items():
        if key != "counters":
            driver.setdefault(key, _scalar(value))
    counters: dict[str, int] = dict(status.counters)
    info_counters = info.get("counters")
    if isinstance(info_counters, Mapping):
        counters.update({str(k): int(v) for k, v in info_counters.items() if isinstance(v, int)})
    counters.update(extra_counters)
    return {
        "driver": driver,
        "streams": [_stream_json(s) for s in sorted(status.streams, key=lambda s: s.stream_id)],
        "leases": [
            _lease_json(lease, status.now_ns)
            for lease in sorted(status.leases, key=lambda lease: lease.lease_id)
        ],
        "counters": dict(sorted(counters.items())),
    }


def event_json(event: DriverEvent, wall_ns: int) -> JsonObject:
    """One published event."""
    return {
        "kind": event.kind,
        "timestamp_ns": event.timestamp_ns,
        "wall_ns": wall_ns,
        "fields": {str(k): _scalar(v) for k, v in event.fields.items()},
    }


def _stream_json(stream: StreamStatus) -> JsonObject:
    return {
        "stream_id": stream.stream_id,
        "name": stream.name,
        "profile": stream.profile,
        "dynamic": stream.dynamic,
        "state": stream.state,
        "epoch": stream.epoch,
        "producer_lease_id": stream.producer_lease_id,
        "producer_client_id": stream.producer_client_id,
        "consumer_count": len(stream.consumer_lease_ids),
        "consumer_lease_ids": list(stream.consumer_lease_ids),
        "hugepages": stream.hugepages,
        "header_uri": stream.header_uri,
        "pool_uris": list(stream.pool_uris),
    }


def _lease_json(lease: LeaseStatus, now_ns: int) -> JsonObject:
    return {
        "lease_id": lease.lease_id,
        "client_id": lease.client_id,
        "role": _scalar(lease.role),
        "stream_id": lease.stream_id,
        "node_id": lease.node_id,
        "epoch": lease.epoch,
        "state": lease.state,
        "expires_in_ms": (lease.expiry_ns - now_ns) // 1_000_000,
    }


def _scalar(value: object) -> object:
    """A JSON-ready value: enums by name, paths and other objects by ``str``."""
    if isinstance(value, Enum):
        return value.name
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_scalar(v) for v in value]
    return str(value)
