"""Wire order when requests race a lease's end, on the real actor tree.

The LeaseActors run on a one-worker dispatcher that a blocking pooled actor keeps busy, so a
lease's ``ShmLeaseRevoked`` is held back while the DriverActor goes on handling requests (on a
loaded host that window is short but real; ``tests/interop/test_stress.py`` checks the
invariants end to end). Whatever the driver answers meanwhile must still read, on the wire, as
if the revoke had gone out first (driver-behaviour.md §6, §7).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from actors.dispatcher import Dispatcher, PooledActor
from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmDetachResponse,
    ShmLeaseRevoked,
)
from messages.wire import ShmPoolAnnounce
from tests.actors.harness import Harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from messages.sbe import SbeMessage

MS = 1_000_000
TTL = 3000 * MS


class Gate:
    """Holds the lease dispatcher's only worker until ``open()``."""

    def __init__(self) -> None:
        self.pool = Dispatcher(workers=1, name="gated-lease")
        self.event = threading.Event()
        event = self.event

        class Blocker(PooledActor):
            dispatcher = self.pool

            def on_receive(self, message: Any) -> None:
                event.wait(30)

        self.blocker = Blocker.start()

    def close(self) -> None:
        self.event.set()
        self.blocker.stop()
        self.pool.shutdown(timeout=10)

    def hold(self) -> None:
        self.blocker.tell("hold")

    def open(self) -> None:
        self.event.set()


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[tuple[Harness, Gate]]:
    gate = Gate()
    harness = Harness(tmp_path)
    harness.start(dispatcher=gate.pool)
    try:
        yield harness, gate
    finally:
        gate.open()
        assert harness.system is not None
        harness.system.stop()
        gate.close()


def answers(messages: list[SbeMessage], *correlation_ids: int) -> list[SbeMessage]:
    return [
        m
        for m in messages
        if isinstance(m, ShmAttachResponse | ShmDetachResponse)
        and m.correlation_id in correlation_ids
    ]


def test_attach_and_detach_racing_an_expiry_are_answered_after_its_revoke(
    gated: tuple[Harness, Gate],
) -> None:
    h, gate = gated
    assert h.system is not None
    lease = h.attach(7, Role.CONSUMER)
    gate.hold()
    h.clock.advance(TTL + 100 * MS)  # the lease check expires the lease; its revoke waits
    h.tell(
        ShmAttachRequest(
            correlation_id=8,
            stream_id=10000,
            client_id=7,
            role=Role.CONSUMER,
            expected_layout_version=0,
        )
    )
    h.detach(lease, 7, Role.CONSUMER, correlation_id=9)
    assert h.system.status().leases == ()  # barrier: both requests were handled
    assert answers(h.outbox.messages, 8, 9) == []  # neither answered before the revoke
    gate.open()
    assert h.outbox.wait_for(lambda ms: len(answers(ms, 8, 9)) == 2)
    messages = h.outbox.messages
    (revoke,) = [m for m in messages if isinstance(m, ShmLeaseRevoked)]
    assert (revoke.lease_id, revoke.reason) == (lease.lease_id, LeaseRevokeReason.EXPIRED)
    after = answers(h.after(revoke), 8, 9)
    (attach,) = [m for m in after if isinstance(m, ShmAttachResponse)]
    assert attach.code == ResponseCode.OK  # client 7 is free once its revoke is out
    (detach,) = [m for m in after if isinstance(m, ShmDetachResponse)]
    assert (detach.code, detach.error_message) == (ResponseCode.REJECTED, "unknown lease")


def test_no_announce_names_no_producer_before_the_producers_revoke(
    gated: tuple[Harness, Gate],
) -> None:
    h, gate = gated
    assert h.system is not None
    producer = h.attach(7, Role.PRODUCER)
    h.wait_count(ShmPoolAnnounce, 1)
    gate.hold()
    h.detach(producer, 7, Role.PRODUCER, correlation_id=9)
    h.clock.advance(1000 * MS)  # the announce period elapses while the revoke waits
    h.system.status()  # barrier: the detach and the announce timer were handled
    assert [m.producer_id for m in h.outbox.of_type(ShmPoolAnnounce)] == [7]
    gate.open()
    (response,) = h.wait_count(ShmDetachResponse, 1)
    assert response.code == ResponseCode.OK
    (revoke,) = h.outbox.of_type(ShmLeaseRevoked)
    announces = [m for m in h.outbox.messages if isinstance(m, ShmPoolAnnounce)]
    assert producer.epoch is not None
    assert [(m.producer_id, m.epoch > producer.epoch) for m in announces] == [(7, False), (0, True)]
    assert announces[1] in h.after(revoke)
