"""The real actor tree (DriverActor, StreamActors, LeaseActors, TimerActor) on a ManualClock,
with a RecordingOutbox and real SHM files under tmp_path. No test sleeps."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmDetachResponse,
    ShmDriverShutdown,
    ShmDriverShutdownRequest,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
    ShutdownReason,
)
from messages.events import ShutdownRequested
from messages.wire import Bool, ConsumerConfig, ConsumerHello, Mode, ShmPoolAnnounce
from tests.actors.harness import START, Harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


MS = 1_000_000
TTL = 3000 * MS


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path, policies={"shutdown_token": "tok"})
    harness.start()
    try:
        yield harness
    finally:
        assert harness.system is not None
        harness.system.stop()


def test_producer_attach_response_then_announce_with_files(h: Harness) -> None:
    r = h.attach(7)
    assert r.code == ResponseCode.OK
    assert r.lease_expiry_timestamp_ns == START + TTL
    assert (r.layout_version, r.header_slot_bytes, r.header_nslots, r.node_id) == (1, 256, 8, 1)
    assert [(p.pool_id, p.pool_nslots, p.stride_bytes) for p in r.payload_pools] == [
        (1, 8, 64),
        (2, 8, 128),
    ]
    (announce,) = h.wait_count(ShmPoolAnnounce, 1)
    assert h.outbox.messages == [r, announce]
    assert (announce.epoch, announce.producer_id) == (r.epoch, 7)
    assert h.epochs_on_disk() == [r.epoch]
    assert h.events.wait_for(lambda evs: "attach" in [e.kind for e in evs])


def test_producer_detach_orders_revoke_announce_response_and_bumps(h: Harness) -> None:
    r = h.attach(7)
    h.wait_count(ShmPoolAnnounce, 1)
    h.detach(r, 7, Role.PRODUCER)
    (response,) = h.wait_count(ShmDetachResponse, 1)
    revoke, announce, last = h.after(h.outbox.of_type(ShmPoolAnnounce)[0])
    assert isinstance(revoke, ShmLeaseRevoked)
    assert (revoke.reason, revoke.error_message, revoke.lease_id) == (
        LeaseRevokeReason.DETACHED,
        "lease detached",
        r.lease_id,
    )
    assert isinstance(announce, ShmPoolAnnounce)
    assert r.epoch is not None
    assert announce.epoch > r.epoch
    assert announce.producer_id == 0
    assert last == response == ShmDetachResponse(correlation_id=99, code=ResponseCode.OK)
    assert h.epochs_on_disk() == [r.epoch, announce.epoch]


def test_consumer_attach_does_not_bump_and_detach_is_revoke_then_response(h: Harness) -> None:
    p = h.attach(7)
    c = h.attach(8, Role.CONSUMER)
    assert c.epoch == p.epoch
    h.wait_count(ShmPoolAnnounce, 2)
    h.detach(c, 8, Role.CONSUMER)
    h.wait_count(ShmDetachResponse, 1)
    revoke, response = h.after(h.outbox.of_type(ShmPoolAnnounce)[-1])
    assert isinstance(revoke, ShmLeaseRevoked)
    assert revoke.role == Role.CONSUMER
    assert isinstance(response, ShmDetachResponse)
    assert h.epochs_on_disk() == [p.epoch]


def test_first_consumer_provisions_epoch_zero_stream_once(h: Harness) -> None:
    c = h.attach(8, Role.CONSUMER)
    assert c.code == ResponseCode.OK
    assert h.epochs_on_disk() == [c.epoch]


def test_keepalive_extends_and_expiry_revokes_then_bumps(h: Harness) -> None:
    r = h.attach(7)
    assert r.lease_id is not None
    h.clock.advance(2000 * MS)
    keepalive = ShmLeaseKeepalive(
        lease_id=r.lease_id, stream_id=10000, client_id=7, role=Role.PRODUCER, client_timestamp_ns=0
    )
    h.tell(keepalive)
    h.tell(replace(keepalive, client_id=8))  # ignored
    assert h.system is not None
    h.system.status()  # barrier: the keepalives are handled
    h.clock.advance(2900 * MS)  # t = 4.9 s < 2 s + 3 s
    assert h.system.status().leases
    assert h.outbox.of_type(ShmLeaseRevoked) == []
    h.clock.advance(200 * MS)
    (revoke,) = h.wait_count(ShmLeaseRevoked, 1)
    assert revoke.reason == LeaseRevokeReason.EXPIRED
    assert r.epoch is not None
    old = r.epoch
    assert h.outbox.wait_for(
        lambda ms: any(isinstance(m, ShmPoolAnnounce) and m.epoch > old for m in ms)
    )
    bumped = next(m for m in h.outbox.messages if isinstance(m, ShmPoolAnnounce) and m.epoch > old)
    assert bumped in h.after(revoke)
    assert h.epochs_on_disk() == [old, bumped.epoch]
    assert h.system.status().counters["keepalive.ignored"] == 1


def test_rejects_create_nothing(h: Harness) -> None:
    r = h.attach(7, stream_id=20003)  # null publish mode: REQUIRE_EXISTING
    assert (r.code, r.error_message) == (ResponseCode.REJECTED, "stream not provisioned")
    assert r.lease_id is None
    assert r.payload_pools == ()
    ok = h.attach(8)
    second = h.attach(9)
    assert (second.code, second.error_message) == (
        ResponseCode.REJECTED,
        "producer already attached",
    )
    dup = h.attach(8, Role.CONSUMER)
    assert dup.error_message == "client_id already attached"
    assert h.epochs_on_disk() == [ok.epoch]
    assert h.epochs_on_disk(20003) == []
    assert h.events.wait_for(lambda evs: [e.kind for e in evs].count("attach_rejected") == 3)


def test_dynamic_stream_is_created_in_range(h: Harness) -> None:
    r = h.attach(7, stream_id=0, publish_mode=2)
    assert (r.code, r.stream_id) == (ResponseCode.OK, 20000)
    assert h.epochs_on_disk(20000) == [r.epoch]
    r2 = h.attach(8, stream_id=20005, publish_mode=2)
    assert r2.stream_id == 20005
    assert h.system is not None
    dynamic = [s for s in h.system.status().streams if s.dynamic]
    assert [s.stream_id for s in dynamic] == [20000, 20005]


def test_hello_gets_config_for_a_consumer_lease(h: Harness) -> None:
    h.attach(8, Role.CONSUMER)
    hello = ConsumerHello(
        stream_id=10000,
        consumer_id=8,
        supports_shm=Bool.TRUE,
        supports_progress=Bool.FALSE,
        mode=Mode.STREAM,
        max_rate_hz=0,
        expected_layout_version=1,
        descriptor_stream_id=1,
        control_stream_id=0,
        descriptor_channel="aeron:ipc",
        control_channel="",
    )
    h.tell(hello)
    h.tell(replace(hello, consumer_id=99))  # no lease
    h.tell(hello)
    first, again = h.wait_count(ConsumerConfig, 2)
    assert first == again
    assert (first.descriptor_stream_id, first.descriptor_channel) == (31000, "aeron:ipc")
    assert (first.control_stream_id, first.control_channel) == (0, "")


def test_admin_shutdown_drains_then_stops(h: Harness) -> None:
    h.attach(7)
    h.tell(ShmDriverShutdownRequest(correlation_id=1, reason=ShutdownReason.ADMIN, token="bad"))
    h.tell(
        ShmDriverShutdownRequest(
            correlation_id=2, reason=ShutdownReason.ADMIN, token="tok", error_message="maintenance"
        )
    )
    h.wait_count(ShmPoolAnnounce, 2)  # the draining announce
    assert h.system is not None
    assert h.system.status().state == "Driver.Running.Draining"
    refused = h.attach(9, Role.CONSUMER)
    assert (refused.code, refused.error_message) == (ResponseCode.REJECTED, "driver draining")
    assert not h.system.wait_stopped(0)
    h.clock.advance(2000 * MS)
    (shutdown,) = h.wait_count(ShmDriverShutdown, 1)
    assert (shutdown.reason, shutdown.error_message) == (ShutdownReason.ADMIN, "maintenance")
    assert h.system.wait_stopped(5)
    assert h.outbox.of_type(ShmLeaseRevoked) == []  # no per-lease revokes at shutdown
    assert h.system.status().counters["shutdown_request.rejected"] == 1


def test_local_shutdown_skipping_the_drain(h: Harness) -> None:
    h.tell(ShutdownRequested(ShutdownReason.NORMAL, skip_drain=True))
    (shutdown,) = h.wait_count(ShmDriverShutdown, 1)
    assert shutdown.reason == ShutdownReason.NORMAL
    assert h.system is not None
    assert h.system.wait_stopped(5)
    assert h.system.status().state == "Driver.Stopped"


def test_periodic_announce_covers_provisioned_streams_only(h: Harness) -> None:
    h.attach(7, stream_id=0, publish_mode=2)
    h.wait_count(ShmPoolAnnounce, 1)
    h.clock.advance(1000 * MS)
    announces = h.wait_count(ShmPoolAnnounce, 2)
    assert [a.stream_id for a in announces] == [20000, 20000]  # static 10000 has epoch 0
    assert announces[-1].announce_timestamp_ns == START + 1000 * MS


def test_cleanup_shm_on_exit_removes_current_epochs(tmp_path: Path) -> None:
    harness = Harness(tmp_path, policies={"cleanup_shm_on_exit": True})
    system = harness.start()
    try:
        harness.attach(7)
        system.driver.tell(ShutdownRequested(ShutdownReason.NORMAL, skip_drain=True))
        assert system.wait_stopped(10)
        assert harness.epochs_on_disk() == []
    finally:
        system.stop()


def test_stop_is_idempotent(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    system = harness.start()
    harness.attach(7)
    system.stop()
    system.stop()
    assert not system.driver.is_alive()
