"""Outbound path and lifetime of the ControlGateway over a real media driver."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import pyaeron
import pytest

import messages
from actors.gateway.control import ControlGateway, GatewayError
from actors.gateway.outbox import COUNTER_SOFT_DROPPED, COUNTER_STALLED, PublicationQueue
from actors.runtime.counters import Counters
from actors.runtime.rate_limited_log import RateLimitedLog
from messages import (
    ClockDomain,
    LeaseRevokeReason,
    PayloadPool,
    ResponseCode,
    Role,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmDriverShutdown,
    ShmLeaseRevoked,
    ShmPoolAnnounce,
    ShutdownReason,
)
from messages.events import COUNTER_PUBLISH_FAILED, COUNTER_PUBLISH_RETRIES

from .conftest import channels

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from .conftest import Peer, Recording


def announce(epoch: int) -> ShmPoolAnnounce:
    return ShmPoolAnnounce(
        stream_id=10000,
        producer_id=7,
        epoch=epoch,
        announce_timestamp_ns=epoch,
        announce_clock_domain=ClockDomain.MONOTONIC,
        layout_version=1,
        header_nslots=64,
        header_slot_bytes=256,
        payload_pools=(
            PayloadPool(
                pool_id=1,
                pool_nslots=64,
                stride_bytes=1024,
                region_uri="shm:file?path=/dev/shm/x/1.pool",
            ),
        ),
        header_region_uri="shm:file?path=/dev/shm/x/header.ring",
    )


def revoke(lease_id: int) -> ShmLeaseRevoked:
    return ShmLeaseRevoked(
        timestamp_ns=lease_id,
        lease_id=lease_id,
        stream_id=10000,
        client_id=7,
        role=Role.PRODUCER,
        reason=LeaseRevokeReason.DETACHED,
        error_message="lease detached",
    )


def detach_ok(correlation_id: int) -> ShmDetachResponse:
    return ShmDetachResponse(correlation_id=correlation_id, code=ResponseCode.OK)


def decoded(frames: list[bytes]) -> list[object]:
    return [messages.decode(f) for f in frames]


def test_messages_go_out_in_call_order_per_publication(
    make_gateway: Callable[..., ControlGateway], make_peer: Callable[..., Peer]
) -> None:
    gw = make_gateway()
    peer = make_peer()
    for i in range(1, 101):  # the spec's detach sequence, a hundred times
        gw.send(revoke(i))
        gw.send(announce(i))
        gw.send(detach_ok(i))
    peer.poll_until(lambda: len(peer.control) >= 200 and len(peer.announces) >= 100)
    control = decoded(peer.control)
    assert control == [m for i in range(1, 101) for m in (revoke(i), detach_ok(i))]
    assert decoded(peer.announces) == [announce(i) for i in range(1, 101)]


def test_shared_announce_stream_keeps_the_spec_order(
    make_gateway: Callable[..., ControlGateway], make_peer: Callable[..., Peer]
) -> None:
    gw = make_gateway(shared_announce=True)
    peer = make_peer(shared_announce=True)
    gw.send(revoke(1))
    gw.send(announce(2))
    gw.send(detach_ok(3))
    peer.poll_until(lambda: len(peer.control) >= 3)
    assert decoded(peer.control) == [revoke(1), announce(2), detach_ok(3)]


def test_announce_without_subscriber_is_dropped_at_once_and_control_still_flows(
    make_gateway: Callable[..., ControlGateway], make_peer: Callable[..., Peer]
) -> None:
    gw = make_gateway()
    peer = make_peer(announce_sub=False)
    gw.send(announce(1))
    gw.send(detach_ok(2))
    peer.poll_until(lambda: len(peer.control) >= 1)
    assert decoded(peer.control) == [detach_ok(2)]
    peer.poll_until(
        lambda: gw.counters().get(f"{COUNTER_SOFT_DROPPED}.ShmPoolAnnounce.NOT_CONNECTED") == 1
    )


def test_back_pressure_is_retried_in_order_until_the_subscriber_drains(
    make_gateway: Callable[..., ControlGateway],
    make_peer: Callable[..., Peer],
    recording: Recording,
) -> None:
    gw = make_gateway()
    peer = make_peer()
    # Unbound, the gateway does not poll its own control subscription: a 64 KiB term admits
    # ~32 KiB ahead of its slowest subscriber, so 100 responses of ~1 KiB back up.
    text = "x" * 1000
    sent = [
        ShmDetachResponse(correlation_id=i, code=ResponseCode.REJECTED, error_message=text)
        for i in range(1, 101)
    ]
    for m in sent:
        gw.send(m)

    def retried() -> bool:
        return gw.counters().get(COUNTER_PUBLISH_RETRIES, 0) > 0

    peer.poll_until(lambda: len(peer.control) >= 1)  # some went out before back-pressure
    gw.bind(recording.ref)  # now the gateway drains its own subscription too
    peer.poll_until(lambda: len(peer.control) >= 100, timeout=20)
    assert decoded(peer.control) == sent
    assert retried()
    assert gw.counters().get(COUNTER_PUBLISH_FAILED, 0) == 0


def test_replies_flow_while_a_full_mailbox_holds_requests_back(
    make_gateway: Callable[..., ControlGateway],
    make_peer: Callable[..., Peer],
    recording: Recording,
) -> None:
    """Throttled, the gateway still reads back its own messages: otherwise its own control
    subscription, left behind, would hold its replies to a window of 32 KiB."""
    gw = make_gateway(max_backlog=10)
    gw.bind(recording.ref, backlog=lambda: 10)  # the driver's mailbox is at the bound
    peer = make_peer()
    peer.send(
        messages.encode(
            ShmDetachRequest(
                correlation_id=1, lease_id=1, stream_id=10000, client_id=7, role=Role.PRODUCER
            )
        )
    )  # a request that must stay unread meanwhile
    text = "z" * 1000
    sent = [
        ShmDetachResponse(correlation_id=i, code=ResponseCode.REJECTED, error_message=text)
        for i in range(1, 101)
    ]
    for m in sent:
        gw.send(m)
    peer.poll_until(lambda: len(peer.control) >= 101, timeout=20)  # ours, and its own request
    assert [m for m in decoded(peer.control) if isinstance(m, ShmDetachResponse)] == sent
    assert gw.counters().get(COUNTER_PUBLISH_FAILED, 0) == 0
    assert recording.messages == []  # the request still waits in the log


def test_control_messages_outlive_any_back_pressure_and_arrive_in_order(
    make_gateway: Callable[..., ControlGateway],
    make_peer: Callable[..., Peer],
    recording: Recording,
) -> None:
    gw = make_gateway(soft_deadline_ns=200_000_000)
    peer = make_peer()  # does not poll until the stall is seen: the window stays full
    text = "y" * 1000
    sent = [
        ShmDetachResponse(correlation_id=i, code=ResponseCode.REJECTED, error_message=text)
        for i in range(1, 101)
    ]
    gw.send_all(sent)
    stalled = threading.Event()
    for _ in range(100):  # bounded: waiting on the gateway's own stall mark, not timing it
        if gw.counters().get(COUNTER_STALLED, 0) > 0:
            stalled.set()
            break
        stalled.wait(0.05)
    assert stalled.is_set()  # held past the soft deadline and the stall mark ...
    assert gw.counters().get(COUNTER_PUBLISH_FAILED, 0) == 0  # ... and nothing dropped
    gw.bind(recording.ref)  # the gateway drains its own subscription too
    peer.poll_until(lambda: len(peer.control) >= 100, timeout=20)
    assert decoded(peer.control) == sent
    assert gw.running


def test_close_flushes_the_final_shutdown(
    make_gateway: Callable[..., ControlGateway], make_peer: Callable[..., Peer]
) -> None:
    gw = make_gateway()
    peer = make_peer()
    for i in range(1, 51):
        gw.send(detach_ok(i))
    final = ShmDriverShutdown(timestamp_ns=5, reason=ShutdownReason.NORMAL)
    gw.send(final)
    gw.close(flush_timeout=5.0)
    assert gw.wait_stopped(0)
    peer.poll_until(lambda: len(peer.control) >= 51)
    assert decoded(peer.control)[-1] == final
    gw.send(detach_ok(99))  # after close: refused, counted, not raised
    assert gw.counters()[f"{COUNTER_PUBLISH_FAILED}.ShmDetachResponse.closed"] == 1


def test_unencodable_message_is_dropped_and_the_next_goes_out(
    make_gateway: Callable[..., ControlGateway], make_peer: Callable[..., Peer]
) -> None:
    gw = make_gateway()
    peer = make_peer()
    gw.send(ShmDetachResponse(correlation_id=1, code=ResponseCode.OK, error_message="é"))
    gw.send(detach_ok(2))
    peer.poll_until(lambda: len(peer.control) >= 1)
    assert decoded(peer.control) == [detach_ok(2)]
    assert gw.counters()[f"{COUNTER_PUBLISH_FAILED}.ShmDetachResponse.encode"] == 1


def test_start_without_a_media_driver_fails_with_a_clear_error(tmp_path: Path) -> None:
    gw = ControlGateway(str(tmp_path / "nothing"), channels(), driver_timeout_ms=300)
    with pytest.raises(GatewayError, match="cannot open Aeron"):
        gw.start(timeout=10)


def test_loss_of_the_media_driver_is_reported_as_fatal(tmp_path: Path) -> None:
    aeron_dir = str(tmp_path / "aeron")
    driver = pyaeron.MediaDriver(dir=aeron_dir, dir_delete_on_start=False)
    lost = threading.Event()
    reasons: list[str] = []

    def on_fatal(reason: str) -> None:
        reasons.append(reason)
        lost.set()

    gw = ControlGateway(aeron_dir, channels(), on_fatal=on_fatal, driver_timeout_ms=500)
    try:
        gw.start()
        driver.close()
        assert lost.wait(30)
        assert "media driver" in reasons[0]
        assert gw.wait_stopped(10)
    finally:
        gw.close(flush_timeout=0.1)
        driver.close()


class _SendsDuringOffer:
    """A publication whose first offer lets "another thread" send, then close the gateway."""

    def __init__(self, gw: ControlGateway, late: ShmDetachResponse) -> None:
        self.gw, self.late = gw, late
        self.offered: list[bytes] = []

    def offer(self, data: bytes) -> object:
        self.offered.append(bytes(data))
        if len(self.offered) == 1:
            return pyaeron.BACK_PRESSURED  # retried by the loop's drain, after routing
        if len(self.offered) == 2:
            self.gw.send(self.late)  # queued before close() is called ...
            self.gw.close(flush_timeout=5.0)  # ... so close must flush it (thread not started)
        return True


class _IdleAeron:
    is_closed = False


class _IdleSubscription:
    def poll(self, *_args: object) -> int:
        return 0


def test_close_flushes_a_message_sent_just_before_it() -> None:
    """A send that lands between routing and the close check must still go out."""
    gw = ControlGateway("/nonexistent", channels())
    late = detach_ok(2)
    publication = _SendsDuringOffer(gw, late)
    queue = PublicationQueue(
        "control",
        publication,
        soft_deadline_ns=10**9,
        counters=Counters(),
        rate_log=RateLimitedLog(logging.getLogger("test")),
    )
    gw.send(detach_ok(1))
    gw._loop(_IdleAeron(), _IdleSubscription(), queue, queue)  # the owner thread's loop
    assert [messages.decode(d) for d in publication.offered] == [detach_ok(1), detach_ok(1), late]
