"""PublicationQueue on a scripted publication and a simulated clock (no media driver)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pyaeron

from actors.gateway.outbox import (
    COUNTER_SENT,
    COUNTER_SOFT_DROPPED,
    COUNTER_STALLED,
    PublicationQueue,
)
from actors.runtime.counters import Counters
from actors.runtime.rate_limited_log import RateLimitedLog
from messages.control import LeaseRevokeReason, ResponseCode, Role, ShmDetachResponse
from messages.control import ShmLeaseRevoked as Revoked
from messages.events import COUNTER_PUBLISH_FAILED, COUNTER_PUBLISH_RETRIES
from messages.wire import ClockDomain, ShmPoolAnnounce

if TYPE_CHECKING:
    import pytest

SECOND = 1_000_000_000
DEADLINE = SECOND
STALL = SECOND
STEP = SECOND // 5


class Scripted:
    """A publication that answers ``result`` until told otherwise, recording what it took."""

    def __init__(self, result: object = pyaeron.BACK_PRESSURED) -> None:
        self.result = result
        self.offers = 0
        self.taken: list[bytes] = []

    def offer(self, data: bytes) -> object:
        self.offers += 1
        if self.result is True:
            self.taken.append(data)
        return self.result


class Failing:
    def offer(self, data: bytes) -> object:
        raise pyaeron.AeronError(f"too long: {len(data)}")


def make_queue(pub: Scripted | Failing, counters: Counters | None = None) -> PublicationQueue:
    return PublicationQueue(
        "control",
        pub,
        soft_deadline_ns=DEADLINE,
        stall_log_ns=STALL,
        counters=counters if counters is not None else Counters(),
        rate_log=RateLimitedLog(logging.getLogger("test.outbox")),
    )


def revoke(i: int) -> Revoked:
    return Revoked(
        timestamp_ns=i,
        lease_id=i,
        stream_id=1,
        client_id=i,
        role=Role.CONSUMER,
        reason=LeaseRevokeReason.EXPIRED,
        error_message="lease expired",
    )


def announce(i: int) -> ShmPoolAnnounce:
    return ShmPoolAnnounce(
        stream_id=1,
        producer_id=0,
        epoch=i,
        announce_timestamp_ns=i,
        announce_clock_domain=ClockDomain.MONOTONIC,
        layout_version=1,
        header_nslots=8,
        header_slot_bytes=256,
        payload_pools=(),
        header_region_uri="shm:file?path=/dev/shm/x",
    )


def data(i: int) -> bytes:
    return f"m{i}".encode()


def test_control_messages_wait_out_any_back_pressure_and_all_go_in_order() -> None:
    pub = Scripted()
    counters = Counters()
    q = make_queue(pub, counters)
    for i in range(50):  # 10 s of revokes into a publication nobody drains
        now = i * STEP
        q.push(data(i), revoke(i), soft=False, now_ns=now)
        assert q.drain(now) == 0
        assert len(q) == i + 1  # nothing is dropped, however long it waits
    assert counters.get(COUNTER_PUBLISH_FAILED) == 0
    pub.result = True
    assert q.drain(50 * STEP) == 50
    assert pub.taken == [data(i) for i in range(50)]
    assert counters.get(f"{COUNTER_SENT}.ShmLeaseRevoked") == 50


def test_a_long_stall_is_counted_once_per_message_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pub = Scripted()
    counters = Counters()
    q = make_queue(pub, counters)
    q.push(data(1), revoke(1), soft=False, now_ns=0)
    with caplog.at_level(logging.WARNING, logger="test.outbox"):
        for now in (0, STALL - 1):
            q.drain(now)
        assert counters.get(COUNTER_STALLED) == 0
        for now in (STALL, STALL + STEP, 5 * STALL):
            q.drain(now)
    assert counters.get(COUNTER_STALLED) == 1
    assert counters.get(COUNTER_PUBLISH_RETRIES) == 5
    assert any("none is dropped" in r.getMessage() for r in caplog.records)


def test_the_head_blocks_the_rest_and_each_pass_offers_it_once() -> None:
    pub = Scripted()
    q = make_queue(pub)
    for i in range(5):
        q.push(data(i), revoke(i), soft=False, now_ns=i * STEP)
        q.drain(i * STEP)
        assert pub.offers == i + 1
    pub.result = True
    assert q.drain(4 * STEP) == 5
    assert pub.taken == [data(i) for i in range(5)]


def test_a_back_pressured_announce_is_dropped_at_its_deadline_and_the_control_behind_goes() -> None:
    pub = Scripted()
    counters = Counters()
    q = make_queue(pub, counters)
    q.push(data(1), announce(1), soft=True, now_ns=0)
    q.push(data(2), ShmDetachResponse(correlation_id=7, code=ResponseCode.OK), soft=False, now_ns=0)
    q.drain(DEADLINE - 1)
    assert len(q) == 2  # within its deadline the announce waits like anything else
    q.drain(DEADLINE)
    assert len(q) == 1
    assert counters.get(f"{COUNTER_SOFT_DROPPED}.ShmPoolAnnounce.BACK_PRESSURED") == 1
    pub.result = True
    q.drain(DEADLINE)
    assert pub.taken == [data(2)]
    assert counters.get(COUNTER_PUBLISH_FAILED) == 0  # soft state: not a lost control message


def test_an_announce_nobody_listens_to_is_dropped_at_once() -> None:
    pub = Scripted(pyaeron.NOT_CONNECTED)
    counters = Counters()
    q = make_queue(pub, counters)
    q.push(data(1), announce(1), soft=True, now_ns=0)
    q.push(data(2), announce(2), soft=True, now_ns=0)
    q.drain(0)
    assert len(q) == 0
    assert counters.get(f"{COUNTER_SOFT_DROPPED}.ShmPoolAnnounce.NOT_CONNECTED") == 2
    assert counters.get(COUNTER_SOFT_DROPPED) == 2


def test_a_control_message_with_no_subscriber_waits_for_one() -> None:
    pub = Scripted(pyaeron.NOT_CONNECTED)
    q = make_queue(pub)
    q.push(data(1), revoke(1), soft=False, now_ns=0)
    q.drain(10 * DEADLINE)
    assert len(q) == 1
    pub.result = True
    q.drain(10 * DEADLINE)
    assert pub.taken == [data(1)]


def test_a_message_aeron_refuses_outright_is_dropped_counted_and_the_rest_go_on() -> None:
    counters = Counters()
    q = make_queue(Failing(), counters)
    q.push(data(1), revoke(1), soft=False, now_ns=0)
    q.push(data(2), revoke(2), soft=False, now_ns=0)
    assert q.drain(0) == 0
    assert len(q) == 0
    assert counters.get(COUNTER_PUBLISH_FAILED) == 2
    assert counters.get(f"{COUNTER_PUBLISH_FAILED}.ShmLeaseRevoked.error") == 2
