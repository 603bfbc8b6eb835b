"""DriverClient against a scripted fake driver on a real embedded Aeron media driver."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pyaeron
import pytest

from messages import (
    ClockDomain,
    LeaseRevokeReason,
    PublishMode,
    ResponseCode,
    Role,
    SbeMessage,
    ShmAttachRequest,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmDriverShutdown,
    ShmDriverShutdownRequest,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
    ShmPoolAnnounce,
    ShutdownReason,
)
from tensorpool_client import (
    AttachRejected,
    DetachRejected,
    DriverClient,
    RequestTimeout,
    default_aeron_dir,
)
from tests.client.fakes import FakeDriver, no_new_threads, ok_response, reject

if TYPE_CHECKING:
    from collections.abc import Callable

    from tensorpool_client import Lease

def grant_all(peer: FakeDriver) -> None:
    def respond(msg: SbeMessage) -> list[SbeMessage | bytes]:
        if isinstance(msg, ShmAttachRequest):
            return [ok_response(msg)]
        if isinstance(msg, ShmDetachRequest):
            return [ShmDetachResponse(correlation_id=msg.correlation_id, code=ResponseCode.OK)]
        return []

    peer.responder = respond


def revoke_of(
    lease: Lease, reason: LeaseRevokeReason = LeaseRevokeReason.REVOKED
) -> ShmLeaseRevoked:
    return ShmLeaseRevoked(timestamp_ns=time.monotonic_ns(), lease_id=lease.lease_id,
                           stream_id=lease.stream_id, client_id=lease.client_id, role=lease.role,
                           reason=reason, error_message="lease revoked")


def barrier(peer: FakeDriver, client: DriverClient, lease: Lease) -> None:
    """Everything the peer sent before this revoke has been handled by the client."""
    peer.send(revoke_of(lease))
    client.wait_for_revoke(lease, timeout=5.0)


class TestAttach:
    def test_ok_attach_returns_the_lease_and_sends_the_requested_fields(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        grant_all(fake_driver)
        client = make_client()
        lease = client.attach(10000, Role.PRODUCER, publish_mode=PublishMode.EXISTING_OR_CREATE,
                              desired_node_id=5)
        (req,) = fake_driver.of_type(ShmAttachRequest)
        assert req.client_id == client.client_id == lease.client_id != 0
        assert req.correlation_id != 0
        assert (req.stream_id, req.role, req.publish_mode, req.desired_node_id) == (
            10000, Role.PRODUCER, PublishMode.EXISTING_OR_CREATE, 5)
        assert lease.response.correlation_id == req.correlation_id
        assert (lease.stream_id, lease.role, lease.epoch, lease.header_nslots) == (
            10000, Role.PRODUCER, 42, 8)
        assert lease.payload_pools[0].stride_bytes == 256
        assert client.lease_valid(lease)

    def test_rejection_raises_with_code_and_text(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        fake_driver.responder = lambda m: (
            [reject(m, ResponseCode.REJECTED, "producer already attached")]
            if isinstance(m, ShmAttachRequest) else [])
        client = make_client()
        with pytest.raises(AttachRejected) as info:
            client.attach(10000, Role.PRODUCER)
        assert info.value.code == ResponseCode.REJECTED
        assert info.value.error_message == "producer already attached"

    def test_no_answer_times_out(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        client = make_client()
        with pytest.raises(RequestTimeout):
            client.attach(10000, Role.CONSUMER, timeout=0.3)
        fake_driver.wait_for(lambda r: any(isinstance(m, ShmAttachRequest) for m in r))

    def test_auto_client_id_retries_with_a_new_id_when_taken(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        taken: set[int] = set()

        def respond(msg: SbeMessage) -> list[SbeMessage | bytes]:
            if not isinstance(msg, ShmAttachRequest):
                return []
            if not taken:
                taken.add(msg.client_id)
                return [reject(msg, ResponseCode.REJECTED, "client_id already attached")]
            return [ok_response(msg)]

        fake_driver.responder = respond
        client = make_client()
        lease = client.attach(10000, Role.CONSUMER)
        first, second = fake_driver.of_type(ShmAttachRequest)
        assert first.client_id in taken
        assert second.client_id == lease.client_id != first.client_id
        assert second.correlation_id != first.correlation_id

    def test_explicit_client_id_is_never_replaced(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        fake_driver.responder = lambda m: (
            [reject(m, ResponseCode.REJECTED, "client_id already attached")]
            if isinstance(m, ShmAttachRequest) else [])
        client = make_client(client_id=77)
        with pytest.raises(AttachRejected):
            client.attach(10000, Role.CONSUMER)
        assert [r.client_id for r in fake_driver.of_type(ShmAttachRequest)] == [77]

    def test_response_with_another_correlation_id_is_ignored(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        def respond(msg: SbeMessage) -> list[SbeMessage | bytes]:
            if not isinstance(msg, ShmAttachRequest):
                return []
            foreign = ok_response(msg, correlation_id=msg.correlation_id + 1, lease_id=999_999)
            return [foreign, ok_response(msg, lease_id=123)]

        fake_driver.responder = respond
        client = make_client()
        assert client.attach(10000, Role.CONSUMER).lease_id == 123
        assert client._attaches.unmatched >= 1

    def test_non_ok_duplicate_after_ok_is_ignored(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        def respond(msg: SbeMessage) -> list[SbeMessage | bytes]:
            if not isinstance(msg, ShmAttachRequest):
                return []
            return [ok_response(msg, lease_id=321), reject(msg, ResponseCode.REJECTED, "late")]

        fake_driver.responder = respond
        client = make_client()
        lease = client.attach(10000, Role.CONSUMER)
        barrier(fake_driver, client, lease)
        assert lease.lease_id == 321
        assert client._attaches.duplicates == 1

    def test_ok_response_with_a_null_field_is_a_protocol_error(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        fake_driver.responder = lambda m: (
            [ok_response(m, node_id=None)] if isinstance(m, ShmAttachRequest) else [])
        client = make_client()
        with pytest.raises(Exception, match="null fields: node_id"):
            client.attach(10000, Role.CONSUMER)


class TestKeepaliveAndDetach:
    def test_keepalives_carry_the_lease_identity_and_stop_per_lease(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        grant_all(fake_driver)
        client = make_client(keepalive_interval_ms=20)
        a = client.attach(10000, Role.PRODUCER)
        b = client.attach(10001, Role.CONSUMER)  # second lease: the auto id rule applies

        def count(lease: Lease, msgs: list[SbeMessage]) -> int:
            return sum(1 for m in msgs if isinstance(m, ShmLeaseKeepalive)
                       and m.lease_id == lease.lease_id)

        fake_driver.wait_for(lambda r: count(a, r) >= 3 and count(b, r) >= 3)
        ka = next(m for m in fake_driver.of_type(ShmLeaseKeepalive) if m.lease_id == a.lease_id)
        assert (ka.stream_id, ka.client_id, ka.role) == (a.stream_id, a.client_id, Role.PRODUCER)
        assert ka.client_timestamp_ns > 0

        client.stop_keepalives(a)
        with fake_driver.cond:
            seen_a, seen_b = count(a, fake_driver.received), count(b, fake_driver.received)
        fake_driver.wait_for(lambda r: count(b, r) >= seen_b + 3)
        assert count(a, fake_driver.received) <= seen_a + 1  # at most one already in flight

    def test_one_shot_keepalive_without_auto_keepalive(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        grant_all(fake_driver)
        client = make_client(auto_keepalive=False)
        lease = client.attach(10000, Role.CONSUMER)
        assert client.keepalive(lease)
        fake_driver.wait_for(lambda r: any(isinstance(m, ShmLeaseKeepalive) for m in r))
        assert len(fake_driver.of_type(ShmLeaseKeepalive)) == 1

    def test_detach_sends_the_lease_identity_and_returns_the_response(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        grant_all(fake_driver)
        client = make_client()
        lease = client.attach(10000, Role.PRODUCER)
        resp = client.detach(lease)
        assert resp.code == ResponseCode.OK
        (req,) = fake_driver.of_type(ShmDetachRequest)
        assert (req.lease_id, req.stream_id, req.client_id, req.role) == (
            lease.lease_id, lease.stream_id, lease.client_id, Role.PRODUCER)
        assert req.correlation_id not in {r.correlation_id
                                          for r in fake_driver.of_type(ShmAttachRequest)}

    def test_detach_rejection_raises(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        def respond(msg: SbeMessage) -> list[SbeMessage | bytes]:
            if isinstance(msg, ShmAttachRequest):
                return [ok_response(msg)]
            if isinstance(msg, ShmDetachRequest):
                return [ShmDetachResponse(correlation_id=msg.correlation_id,
                                          code=ResponseCode.REJECTED,
                                          error_message="unknown lease")]
            return []

        fake_driver.responder = respond
        client = make_client()
        lease = client.attach(10000, Role.CONSUMER)
        with pytest.raises(DetachRejected, match="unknown lease"):
            client.detach(lease)


class TestNotices:
    def test_revoke_invalidates_only_the_matching_lease_and_duplicates_are_tolerated(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        grant_all(fake_driver)
        client = make_client()
        a = client.attach(10000, Role.PRODUCER)
        b = client.attach(10001, Role.CONSUMER)
        fake_driver.send(revoke_of(a, LeaseRevokeReason.EXPIRED))
        fake_driver.send(revoke_of(a, LeaseRevokeReason.EXPIRED))
        notice = client.wait_for_revoke(a)
        assert notice.reason == LeaseRevokeReason.EXPIRED
        assert not client.lease_valid(a)
        assert client.lease_valid(b)

    def test_shutdown_invalidates_every_lease(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        grant_all(fake_driver)
        client = make_client()
        lease = client.attach(10000, Role.CONSUMER)
        fake_driver.send(ShmDriverShutdown(timestamp_ns=time.monotonic_ns(),
                                           reason=ShutdownReason.ADMIN, error_message="bye"))
        assert client.wait_for_shutdown().error_message == "bye"
        assert not client.lease_valid(lease)

    def test_a_lease_granted_after_a_shutdown_is_valid(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        grant_all(fake_driver)
        client = make_client()
        before = client.attach(10000, Role.CONSUMER)
        fake_driver.send(ShmDriverShutdown(timestamp_ns=time.monotonic_ns(),
                                           reason=ShutdownReason.NORMAL, error_message=""))
        client.wait_for_shutdown()
        after = client.attach(10000, Role.CONSUMER)  # re-attach to the restarted driver
        assert after.lease_id != before.lease_id
        assert client.lease_valid(after)
        assert not client.lease_valid(before)

    def test_announces_keep_the_highest_fresh_epoch(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        grant_all(fake_driver)
        client = make_client()

        def announce(epoch: int, ts: int | None = None) -> ShmPoolAnnounce:
            return ShmPoolAnnounce(
                stream_id=10000, producer_id=0, epoch=epoch,
                announce_timestamp_ns=time.monotonic_ns() if ts is None else ts,
                announce_clock_domain=ClockDomain.MONOTONIC, layout_version=1,
                header_nslots=8, header_slot_bytes=256)

        fake_driver.send(announce(5), announce=True)
        assert client.wait_for_announce(10000, min_epoch=5).epoch == 5
        fake_driver.send(announce(3), announce=True)                      # lower epoch
        fake_driver.send(announce(9, ts=1), announce=True)                # before we joined
        fake_driver.send(announce(8, ts=time.monotonic_ns() - 10**10), announce=True)  # stale
        fake_driver.send(announce(7), announce=True)
        assert client.wait_for_announce(10000, min_epoch=6).epoch == 7
        assert client.latest_announce(10000) is not None
        assert client.notices.announces_ignored == 3
        assert client.latest_announce(10001) is None


class TestRawTraffic:
    def test_send_raw_and_shutdown_request_reach_the_peer(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        client = make_client()
        assert client.send_raw(b"\x01\x02garbage")
        cid = client.send_shutdown_request("secret", ShutdownReason.ADMIN, "maintenance")
        fake_driver.wait_for(lambda r: any(isinstance(m, ShmDriverShutdownRequest) for m in r))
        (req,) = fake_driver.of_type(ShmDriverShutdownRequest)
        assert (req.correlation_id, req.token, req.error_message) == (cid, "secret",
                                                                      "maintenance")
        assert b"\x01\x02garbage" in fake_driver.raw

    def test_undecodable_fragments_are_counted_and_the_client_keeps_working(
        self, fake_driver: FakeDriver, make_client: Callable[..., DriverClient]
    ) -> None:
        grant_all(fake_driver)
        client = make_client()
        lease = client.attach(10000, Role.CONSUMER)
        good = revoke_of(lease)
        from messages import encode  # noqa: PLC0415 - local: only this test needs raw bytes

        fake_driver.send(b"\x00" * 3)
        fake_driver.send(encode(good)[:20])                # truncated
        fake_driver.send(b"\x1a\x00\x07\x00\xe7\x03\x01\x00" + b"\x00" * 26)  # unknown schema
        barrier(fake_driver, client, lease)
        assert client.stats.undecodable == 2
        assert client.stats.unknown == 1
        assert client.attach(10001, Role.CONSUMER).stream_id == 10001


def test_close_leaves_no_thread_behind(fake_driver: FakeDriver, aeron_dir: str) -> None:
    grant_all(fake_driver)
    with no_new_threads():
        client = DriverClient(aeron_dir).start()
        client.attach(10000, Role.CONSUMER)
        client.close()
        client.close()


def test_default_aeron_dir_is_the_environment_else_aerons_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AERON_DIR", "/tmp/somewhere-else")
    assert default_aeron_dir() == "/tmp/somewhere-else"
    monkeypatch.delenv("AERON_DIR")
    assert default_aeron_dir() == pyaeron.default_path()
