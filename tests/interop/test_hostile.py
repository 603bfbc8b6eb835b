"""Hostile and truncated control messages against a running driver process."""

from __future__ import annotations

import random
import struct
from typing import TYPE_CHECKING

import pytest

import messages
from messages import (
    PublishMode,
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmDetachRequest,
    ShmDriverShutdown,
    ShmDriverShutdownRequest,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
    ShutdownReason,
)

from .conftest import status_json

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from .conftest import DriverProc
    from .rawclient import RawClient

pytestmark = pytest.mark.slow


def status_counters(config_path: Path) -> dict[str, int]:
    counters = status_json(config_path)["counters"]
    assert isinstance(counters, dict)
    assert all(isinstance(k, str) and isinstance(v, int) for k, v in counters.items()), counters
    return counters


def reheader(
    data: bytes,
    *,
    block: int | None = None,
    template: int | None = None,
    schema: int | None = None,
    version: int | None = None,
) -> bytes:
    b, t, s, v = struct.unpack_from("<HHHH", data)
    return (
        struct.pack(
            "<HHHH",
            b if block is None else block,
            t if template is None else template,
            s if schema is None else schema,
            v if version is None else version,
        )
        + data[8:]
    )


def hostile_messages() -> list[bytes]:
    attach = messages.encode(
        ShmAttachRequest(
            correlation_id=9,
            stream_id=10000,
            client_id=900,
            role=Role.PRODUCER,
            expected_layout_version=1,
            publish_mode=PublishMode.REQUIRE_EXISTING,
        )
    )
    shutdown = messages.encode(
        ShmDriverShutdownRequest(
            correlation_id=9, reason=ShutdownReason.ADMIN, token="nope", error_message="x"
        )
    )
    out = [attach[:cut] for cut in range(len(attach))]  # every truncation, the empty one too
    out += [shutdown[:cut] for cut in range(len(shutdown))]
    out += [
        reheader(attach, schema=902),
        reheader(attach, template=42),
        reheader(attach, block=26),
        reheader(attach, block=60000),
        reheader(attach, version=0xFFFF),  # newer version: answered UNSUPPORTED, no lease
    ]
    lying = bytearray(shutdown)
    struct.pack_into("<I", lying, 8 + 9, 0x7FFFFFFF)  # token length beyond the buffer
    out.append(bytes(lying))
    bad_enum = bytearray(attach)
    bad_enum[8 + 16] = 9  # role 9
    out.append(bytes(bad_enum))
    rng = random.Random(901)
    for _ in range(300):
        blob = bytearray(rng.getrandbits(8) for _ in range(rng.randint(0, 120)))
        if len(blob) >= 8 and rng.random() < 0.5:  # plausible headers reach the decoders
            struct.pack_into("<HHH", blob, 2, rng.choice([1, 3, 5, 8]), 901, 1)
        out.append(bytes(blob))
    return out


def test_hostile_input_leaves_a_concurrent_lease_untouched(
    driver: DriverProc, client_of: Callable[[DriverProc], RawClient]
) -> None:
    victim = client_of(driver)
    _, lease = victim.attach(client_id=910, role=Role.CONSUMER)
    assert lease.code == ResponseCode.OK
    attacker = client_of(driver)
    for i, data in enumerate(hostile_messages()):
        if data:
            attacker.send_raw(data)
        if i % 50 == 0:
            victim.keepalive(lease, 910, Role.CONSUMER)
            victim.poll()
    # Impostor messages for the victim's lease with one identifier wrong are refused.
    assert lease.lease_id is not None
    attacker.send(
        ShmLeaseKeepalive(
            lease_id=lease.lease_id,
            stream_id=10000,
            client_id=911,
            role=Role.CONSUMER,
            client_timestamp_ns=0,
        )
    )
    _, refused = attacker.detach(lease, 911, Role.CONSUMER)
    assert refused.code == ResponseCode.REJECTED
    attacker.send(
        ShmDetachRequest(
            correlation_id=1,
            lease_id=lease.lease_id,
            stream_id=10000,
            client_id=910,
            role=Role.PRODUCER,
        )
    )
    # The driver is alive and answering, and the victim's lease was never revoked.
    _, other = attacker.attach(client_id=912, role=Role.PRODUCER)
    assert other.code == ResponseCode.OK
    victim.keepalive(lease, 910, Role.CONSUMER)
    victim.pump(0.2)
    assert driver.proc is not None
    assert driver.proc.poll() is None
    assert not [
        m for m in victim.seen if isinstance(m, ShmLeaseRevoked) and m.lease_id == lease.lease_id
    ]
    assert not [m for m in victim.seen if isinstance(m, ShmDriverShutdown)]
    _, det = victim.detach(lease, 910, Role.CONSUMER)
    assert det.code == ResponseCode.OK  # the lease was still there, intact
    counters = status_counters(driver.config_path)  # the gateway saw and counted the garbage
    assert counters["gateway.decode_errors.TruncatedMessage"] >= 40
    assert counters["gateway.decode_errors.InvalidBlockLength"] >= 1
    assert counters["gateway.ignored"] >= 2


def test_newer_attach_version_is_answered_unsupported(
    driver: DriverProc, client_of: Callable[[DriverProc], RawClient]
) -> None:
    client = client_of(driver)
    cid = client.next_id()
    data = messages.encode(
        ShmAttachRequest(
            correlation_id=cid,
            stream_id=10000,
            client_id=920,
            role=Role.CONSUMER,
            expected_layout_version=1,
        )
    )
    client.send_raw(reheader(data, version=2))
    _, resp = client.wait_for(
        lambda m: isinstance(m, messages.ShmAttachResponse) and m.correlation_id == cid
    )
    assert resp.code == ResponseCode.UNSUPPORTED
    assert resp.error_message == "unsupported driver schema version"
    assert resp.lease_id is None
