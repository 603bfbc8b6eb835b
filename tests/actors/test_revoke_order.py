"""Wire order when requests race a lease's end, on the real actor tree.

The LeaseActors run on a one-worker dispatcher that a blocking pooled actor keeps busy, so no
LeaseActor can run. The revoke must not wait for them: the DriverActor puts it on the outbox
in the step that ends the lease, and whatever it answers afterwards reads, on the wire, after
the revoke (driver-behaviour.md §6, §7; ``tests/interop/test_stress.py`` checks the
invariants end to end).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import pytest

from actors.runtime.dispatcher import Dispatcher, PooledActor
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
    gate.hold()  # no LeaseActor runs from here on
    h.clock.advance(TTL + 100 * MS)  # the lease check expires the lease
    (revoke,) = h.wait_count(ShmLeaseRevoked, 1)  # on the wire, the LeaseActor still held
    assert (revoke.lease_id, revoke.reason) == (lease.lease_id, LeaseRevokeReason.EXPIRED)
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
    assert h.outbox.wait_for(lambda ms: len(answers(ms, 8, 9)) == 2)
    after = answers(h.after(revoke), 8, 9)
    (attach,) = [m for m in after if isinstance(m, ShmAttachResponse)]
    assert attach.code == ResponseCode.OK  # client 7 is free once its revoke is out
    (detach,) = [m for m in after if isinstance(m, ShmDetachResponse)]
    assert (detach.code, detach.error_message) == (ResponseCode.REJECTED, "unknown lease")
    gate.open()


def test_no_announce_names_no_producer_before_the_producers_revoke(
    gated: tuple[Harness, Gate],
) -> None:
    h, gate = gated
    assert h.system is not None
    producer = h.attach(7, Role.PRODUCER)
    h.wait_count(ShmPoolAnnounce, 1)
    gate.hold()
    h.detach(producer, 7, Role.PRODUCER, correlation_id=9)
    h.clock.advance(1000 * MS)  # the announce period elapses during the epoch bump
    (response,) = h.wait_count(ShmDetachResponse, 1)  # the LeaseActor is still held
    assert response.code == ResponseCode.OK
    (revoke,) = h.outbox.of_type(ShmLeaseRevoked)
    announces = [m for m in h.outbox.messages if isinstance(m, ShmPoolAnnounce)]
    assert producer.epoch is not None
    assert (announces[0].producer_id, announces[0].epoch) == (7, producer.epoch)
    assert all(m.producer_id == 0 and m.epoch > producer.epoch for m in announces[1:])
    assert announces[0] not in h.after(revoke)
    assert announces[1] in h.after(revoke)
    assert response in h.after(announces[1])
    gate.open()
