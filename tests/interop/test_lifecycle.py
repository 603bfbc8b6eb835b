"""A running driver process seen by raw Aeron clients: attach, keepalive, detach, expiry."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from messages import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmAttachResponse,
    ShmDetachResponse,
    ShmLeaseRevoked,
    ShmPoolAnnounce,
)
from shm import announced_regions, open_region

from .conftest import CHANNEL, CONTROL_STREAM, KEEPALIVE_MS, REPO, child_env

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import DriverFactory, DriverProc
    from .rawclient import RawClient

pytestmark = pytest.mark.slow

POOLS = ((1, 1024), (2, 4096))


def check_ok_response(resp: ShmAttachResponse, driver_base: Path) -> None:
    assert resp.code == ResponseCode.OK
    assert resp.error_message == ""
    assert resp.lease_id not in (None, 0)
    assert resp.lease_expiry_timestamp_ns is not None
    assert resp.lease_expiry_timestamp_ns > time.monotonic_ns()  # CLOCK_MONOTONIC, same host
    assert resp.stream_id == 10000
    assert resp.epoch not in (None, 0)
    assert resp.layout_version == 1
    assert resp.header_nslots == 64
    assert resp.header_slot_bytes == 256
    assert resp.node_id not in (None, 0, 0xFFFFFFFF)
    assert [(p.pool_id, p.pool_nslots, p.stride_bytes) for p in resp.payload_pools] == [
        (1, 64, 1024),
        (2, 64, 4096),
    ]
    assert resp.header_region_uri.startswith("shm:file?path=")
    validate_regions(resp, driver_base)


def validate_regions(msg: ShmAttachResponse | ShmPoolAnnounce, base: Path) -> None:
    assert msg.epoch is not None
    assert msg.stream_id is not None
    # The interop profile's geometry, pinned here rather than taken from the message.
    assert msg.header_nslots == 64
    assert all(pool.pool_nslots == 64 for pool in msg.payload_pools)
    regions = announced_regions(
        stream_id=msg.stream_id,
        epoch=msg.epoch,
        header_nslots=64,
        header_uri=msg.header_region_uri,
        pools=msg.payload_pools,
        activity_window_ns=None,
    )
    for uri, expected in regions:
        open_region(uri, expected, allowed_base_dirs=(base.resolve(),)).close()


def test_producer_and_consumer_attach_keepalive_and_detach_in_spec_order(
    driver: DriverProc, client_of: Callable[[DriverProc], RawClient]
) -> None:
    client = client_of(driver)
    # Producer attach: response, then the announce of the new epoch.
    i_resp, prod = client.attach(client_id=101, role=Role.PRODUCER)
    check_ok_response(prod, driver.base_dir)
    _, ann = client.wait_for(
        lambda m: isinstance(m, ShmPoolAnnounce) and m.epoch == prod.epoch, start=i_resp
    )
    assert ann.producer_id == 101
    assert ann.header_region_uri == prod.header_region_uri
    assert tuple(p.region_uri for p in ann.payload_pools) == tuple(
        p.region_uri for p in prod.payload_pools
    )
    validate_regions(ann, driver.base_dir)

    # A consumer on the provisioned stream: same epoch, no bump.
    _, cons = client.attach(client_id=102, role=Role.CONSUMER)
    check_ok_response(cons, driver.base_dir)
    assert cons.epoch == prod.epoch
    assert cons.lease_id != prod.lease_id

    # Keep both alive for twice the lease lifetime: nothing is revoked.
    mark = len(client.seen)
    for _ in range(2 * 3 * 2):
        client.keepalive(prod, 101, Role.PRODUCER)
        client.keepalive(cons, 102, Role.CONSUMER)
        client.pump(KEEPALIVE_MS / 2 / 1000)
    assert not [m for m in client.seen[mark:] if isinstance(m, ShmLeaseRevoked)]

    # Producer detach: ShmLeaseRevoked(DETACHED), ShmPoolAnnounce(new epoch), response.
    mark = len(client.seen)
    i_det, det = client.detach(prod, 101, Role.PRODUCER)
    assert det.code == ResponseCode.OK
    assert det.error_message == ""
    i_rev, rev = client.wait_for(
        lambda m: isinstance(m, ShmLeaseRevoked) and m.lease_id == prod.lease_id, start=mark
    )
    assert (rev.stream_id, rev.client_id, rev.role, rev.reason) == (
        10000,
        101,
        Role.PRODUCER,
        LeaseRevokeReason.DETACHED,
    )
    prod_epoch = prod.epoch
    assert prod_epoch is not None  # checked by check_ok_response; narrowed for the lambda
    i_ann, bumped = client.wait_for(
        lambda m: isinstance(m, ShmPoolAnnounce) and m.epoch > prod_epoch, start=mark
    )
    assert i_rev < i_ann < i_det
    assert bumped.producer_id == 0
    validate_regions(bumped, driver.base_dir)

    # Consumer detach: revoke, then response; no epoch change.
    mark = len(client.seen)
    i_det, det = client.detach(cons, 102, Role.CONSUMER)
    assert det.code == ResponseCode.OK
    i_rev, rev = client.wait_for(
        lambda m: isinstance(m, ShmLeaseRevoked) and m.lease_id == cons.lease_id, start=mark
    )
    assert rev.reason == LeaseRevokeReason.DETACHED
    assert rev.role == Role.CONSUMER
    assert i_rev < i_det

    # Detaching again is refused: the lease is gone.
    _, again = client.detach(cons, 102, Role.CONSUMER)
    assert again.code == ResponseCode.REJECTED


def test_killed_client_lease_expires_and_the_epoch_bumps(
    driver: DriverProc, client_of: Callable[[DriverProc], RawClient]
) -> None:
    observer = client_of(driver)
    child = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).with_name("rawclient.py")),
            driver.aeron_dir,
            CHANNEL,
            str(CONTROL_STREAM),
            str(driver.announce_stream),
            "202",
            str(KEEPALIVE_MS),
        ],
        cwd=REPO,
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        lease = json.loads(child.stdout.readline())
        assert lease["code"] == int(ResponseCode.OK)
        mark = len(observer.seen)
        observer.pump(3 * KEEPALIVE_MS / 1000)  # alive while the child keeps it alive
        assert not [
            m
            for m in observer.seen[mark:]
            if isinstance(m, ShmLeaseRevoked) and m.lease_id == lease["lease_id"]
        ]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        i_rev, rev = observer.wait_for(
            lambda m: isinstance(m, ShmLeaseRevoked) and m.lease_id == lease["lease_id"], start=mark
        )
        assert rev.reason == LeaseRevokeReason.EXPIRED
        assert (rev.client_id, rev.role, rev.stream_id) == (202, Role.PRODUCER, 10000)
        observer.wait_for(
            lambda m: isinstance(m, ShmPoolAnnounce) and m.epoch > lease["epoch"], start=i_rev
        )
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)


def test_separate_announce_stream_carries_the_announces(
    driver_factory: DriverFactory, client_of: Callable[[DriverProc], RawClient]
) -> None:
    drv = driver_factory(announce_stream=1001).start()
    client = client_of(drv)
    i_resp, cons = client.attach(client_id=303, role=Role.CONSUMER)
    assert cons.code == ResponseCode.OK
    _, ann = client.wait_for(
        lambda m: isinstance(m, ShmPoolAnnounce) and m.epoch == cons.epoch, start=i_resp
    )
    assert ann.stream_id == 10000
    _, det = client.detach(cons, 303, Role.CONSUMER)
    assert isinstance(det, ShmDetachResponse)
    assert det.code == ResponseCode.OK
