"""PublicationQueue on a scripted publication and a simulated clock (no media driver)."""

from __future__ import annotations

import logging

import pyaeron
import pytest

from actors.gateway_counters import Counters
from actors.gateway_outbox import COUNTER_SENT, PublicationQueue
from actors.rate_limited_log import RateLimitedLog
from messages.events import COUNTER_PUBLISH_FAILED, COUNTER_PUBLISH_RETRIES

SECOND = 1_000_000_000
DEADLINE = SECOND
STEP = SECOND // 5  # announces go out at 5/s


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


def make_queue(pub: Scripted, counters: Counters | None = None) -> PublicationQueue:
    return PublicationQueue(
        "control",
        pub,
        deadline_ns=DEADLINE,
        counters=counters if counters is not None else Counters(),
        rate_log=RateLimitedLog(logging.getLogger("test.outbox")),
    )


def msg(i: int) -> bytes:
    return f"m{i}".encode()


def test_a_reader_that_never_reads_keeps_the_queue_bounded_by_one_deadline() -> None:
    pub = Scripted()
    counters = Counters()
    q = make_queue(pub, counters)
    pushed_at: list[int] = []
    for i in range(50):  # 10 s of announces + replies into a publication nobody drains
        now = i * STEP
        q.push(msg(i), name="ShmPoolAnnounce", detail=str(i), soft=False, now_ns=now)
        pushed_at.append(now)
        q.drain(now)
        within = sum(1 for t in pushed_at if now - t < DEADLINE)
        assert len(q) == within  # everything older than the deadline went in this one drain
        assert len(q) <= DEADLINE // STEP
    assert counters.get(COUNTER_PUBLISH_FAILED) == 50 - len(q)
    assert counters.get(f"{COUNTER_PUBLISH_FAILED}.ShmPoolAnnounce.BACK_PRESSURED") == 50 - len(q)


def test_one_drain_drops_every_expired_message_and_keeps_the_fresh_ones() -> None:
    pub = Scripted()
    q = make_queue(pub)
    for i in range(10):
        q.push(msg(i), name="ShmDetachResponse", detail="", soft=False, now_ns=i * STEP)
    q.drain(9 * STEP)  # ages 1.8 s .. 1.0 s (the fifth exactly at the deadline) go
    assert len(q) == 5
    pub.result = True
    q.drain(9 * STEP)
    assert pub.taken == [msg(i) for i in range(5, 10)]


def test_a_message_refused_for_less_than_the_deadline_is_retried_not_dropped() -> None:
    pub = Scripted()
    counters = Counters()
    q = make_queue(pub, counters)
    q.push(msg(1), name="ShmAttachResponse", detail="", soft=False, now_ns=0)
    for now in (0, STEP, 2 * STEP, DEADLINE - 1):
        assert q.drain(now) == 0
        assert len(q) == 1
    assert counters.get(COUNTER_PUBLISH_RETRIES) == 4
    assert counters.get(COUNTER_PUBLISH_FAILED) == 0
    pub.result = True
    assert q.drain(DEADLINE - 1) == 1
    assert pub.taken == [msg(1)]
    assert counters.get(f"{COUNTER_SENT}.ShmAttachResponse") == 1


def test_the_deadline_runs_from_push_not_from_reaching_the_head() -> None:
    pub = Scripted()
    q = make_queue(pub)
    q.push(msg(1), name="ShmLeaseRevoked", detail="", soft=False, now_ns=0)
    q.push(msg(2), name="ShmDetachResponse", detail="", soft=False, now_ns=0)
    q.drain(DEADLINE - 1)  # first refusal of either is only now
    q.drain(DEADLINE)
    assert len(q) == 0
    assert pub.offers == 3  # no pass offers past a fresh refused head


def test_order_is_kept_and_nothing_skipped_when_the_publication_recovers() -> None:
    pub = Scripted()
    q = make_queue(pub)
    for i in range(5):
        q.push(msg(i), name="ShmLeaseRevoked", detail="", soft=False, now_ns=i * STEP)
        q.drain(i * STEP)
        assert pub.offers == i + 1  # the head blocks the rest: each pass offers it once
    pub.result = True
    assert q.drain(4 * STEP) == 5
    assert pub.taken == [msg(i) for i in range(5)]


@pytest.mark.parametrize("refusal", [pyaeron.NOT_CONNECTED, pyaeron.ADMIN_ACTION])
def test_other_refusals_follow_the_same_deadline(refusal: object) -> None:
    pub = Scripted(refusal)
    q = make_queue(pub)
    q.push(msg(1), name="ShmDetachResponse", detail="", soft=False, now_ns=0)
    q.push(msg(2), name="ShmDetachResponse", detail="", soft=False, now_ns=STEP)
    q.drain(DEADLINE)
    assert len(q) == 1
    pub.result = True
    q.drain(DEADLINE)
    assert pub.taken == [msg(2)]


def test_an_announce_nobody_listens_to_is_dropped_at_once() -> None:
    pub = Scripted(pyaeron.NOT_CONNECTED)
    counters = Counters()
    q = make_queue(pub, counters)
    q.push(msg(1), name="ShmPoolAnnounce", detail="", soft=True, now_ns=0)
    q.push(msg(2), name="ShmPoolAnnounce", detail="", soft=True, now_ns=0)
    q.drain(0)
    assert len(q) == 0
    assert counters.get(f"{COUNTER_PUBLISH_FAILED}.ShmPoolAnnounce.NOT_CONNECTED") == 2
    assert counters.get(COUNTER_PUBLISH_FAILED) == 0  # soft state: not counted as a loss


def test_a_back_pressured_announce_waits_like_any_other_message() -> None:
    pub = Scripted()
    q = make_queue(pub)
    q.push(msg(1), name="ShmPoolAnnounce", detail="", soft=True, now_ns=0)
    q.drain(DEADLINE - 1)
    assert len(q) == 1
