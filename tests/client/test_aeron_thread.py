"""AeronThread and the request table in isolation: fake Aeron objects, no media driver."""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any

import pyaeron
import pytest

from tensorpool_client import AeronThread, ClientClosed, DriverClient, aeron_thread
from tensorpool_client.requests import CorrelationIds, PendingRequests

if TYPE_CHECKING:
    from collections.abc import Callable


class FakeAeron:
    """Stands in for ``pyaeron.Aeron``: one subscription, one publication, a closable client."""

    def __init__(self) -> None:
        self.is_closed = False
        self.polls = 0
        self.closes = 0

    def add_subscription(self, _channel: str, _stream_id: int) -> FakeAeron:
        return self

    def add_exclusive_publication(self, _channel: str, _stream_id: int) -> FakeAeron:
        return self

    def poll(self, _handler: Callable[[Any, Any], None], _limit: int) -> int:
        self.polls += 1
        if self.is_closed:
            raise pyaeron.ResourceClosed("subscription closed")
        return 0

    def offer(self, _data: bytes) -> bool:
        return True

    def close(self) -> None:
        self.closes += 1


@pytest.fixture
def fake_aeron(monkeypatch: pytest.MonkeyPatch) -> FakeAeron:
    fake = FakeAeron()
    monkeypatch.setattr(pyaeron, "Aeron", lambda **_kwargs: fake)
    return fake


def test_the_thread_stops_once_aeron_closed_the_client(fake_aeron: FakeAeron) -> None:
    thread = AeronThread("/unused")
    thread.start()
    try:
        thread.subscription("aeron:ipc", 1)
        fake_aeron.is_closed = True  # what Aeron does at the media driver timeout
        thread._thread.join(5)
        assert not thread._thread.is_alive()
        assert not thread.running
        assert thread.handler_errors <= 1  # no endless stream of failed polls
        with pytest.raises(ClientClosed):
            thread.call(lambda _a: None)
    finally:
        thread.close()


class _ClosingOutbox(collections.deque[Any]):
    """An outbox whose first append happens just after the Aeron thread shut down."""

    def __init__(self, thread: AeronThread) -> None:
        super().__init__()
        self.thread = thread

    def append(self, item: Any) -> None:
        self.thread.close()  # the offer already checked "running"; now the thread is gone
        super().append(item)


def test_an_offer_racing_with_shutdown_fails_instead_of_hanging(fake_aeron: FakeAeron) -> None:
    thread = AeronThread("/unused")
    thread.start()
    pub = thread.publication("aeron:ipc", 1)
    pub._pub.outbox = _ClosingOutbox(thread)
    fut = pub.offer_nowait(b"late")
    assert fut.done()
    assert isinstance(fut.exception(), ClientClosed)


def test_a_call_racing_with_shutdown_fails_at_once(
    fake_aeron: FakeAeron, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = AeronThread("/unused")
    thread.start()
    thread.close()
    monkeypatch.setattr(AeronThread, "running", property(lambda _self: True))
    with pytest.raises(ClientClosed):
        thread.call(lambda _a: None, timeout=30.0)  # would wait 30 s for nobody


def test_a_client_whose_start_failed_stays_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_driver(**_kwargs: object) -> None:
        raise pyaeron.AeronError("driver timeout")

    monkeypatch.setattr(pyaeron, "Aeron", no_driver)
    client = DriverClient("/unused")
    with pytest.raises(ClientClosed, match="failed to start"):
        client.start()
    with pytest.raises(ClientClosed):
        client.start()  # not a silently dead client


def test_correlation_ids_skip_zero_without_deadlocking() -> None:
    ids: list[int] = []
    source = CorrelationIds(seed=0)
    worker = threading.Thread(target=lambda: ids.extend([source.next(), source.next()]),
                              daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "CorrelationIds(seed=0).next() deadlocked"
    assert ids == [1, 2]


def test_correlation_ids_wrap_to_one() -> None:
    ids = CorrelationIds(seed=(1 << 63) - 1)
    assert [ids.next(), ids.next()] == [(1 << 63) - 1, 1]


def test_an_answered_id_counts_later_responses_as_duplicates() -> None:
    table: PendingRequests[str] = PendingRequests()
    fut = table.register(5)
    assert table.resolve(5, "OK")
    assert not table.resolve(5, "REJECTED")  # a non-OK duplicate never overrides the OK
    assert not table.resolve(6, "foreign")
    assert fut.result(0) == "OK"
    assert (table.duplicates, table.unmatched) == (1, 1)
    table.register(7)
    table.abandon(7)  # timed out: a late answer is a duplicate, not a match
    assert not table.resolve(7, "late OK")
    assert table.duplicates == 2


def test_queued_work_ends_an_idle_park_instead_of_waiting_it_out(
    fake_aeron: FakeAeron, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With parks of an hour, only the wake-ups can make calls, offers and close return."""
    monkeypatch.setattr(aeron_thread, "MIN_PARK_S", 3600.0)
    monkeypatch.setattr(aeron_thread, "MAX_PARK_S", 3600.0)
    thread = AeronThread("/unused")
    thread.start()
    try:
        assert thread.call(lambda _a: 42, timeout=60) == 42
        pub = thread.publication("aeron:ipc", 1, timeout=60)
        assert pub.offer(b"x", timeout=60) is True
        with thread.expect_response():
            assert thread.call(lambda _a: "again", timeout=60) == "again"
    finally:
        thread.close()
    assert not thread._thread.is_alive()
