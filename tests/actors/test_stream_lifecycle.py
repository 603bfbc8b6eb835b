"""A stream's lifecycle on the real actor tree (ManualClock, real SHM files): the status a
client of the admin plane sees is the Stream HSM's state, and an attach that arrives while
the StreamActor provisions waits in that machine, not in the actor's mailbox."""

from __future__ import annotations

import pytest

from messages.control import (
    ResponseCode,
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmDetachResponse,
)
from messages.wire import ShmPoolAnnounce
from tests.actors.harness import WAIT_S, BlockingProvisioner, Harness


@pytest.fixture
def h(blocked_h: Harness) -> Harness:
    return blocked_h


def stream_state(h: Harness) -> str:
    assert h.system is not None
    (stream,) = h.system.status().streams
    return stream.state


def test_status_shows_provisioning_and_a_consumer_waits_for_the_producers_epoch(
    h: Harness, prov: BlockingProvisioner
) -> None:
    assert stream_state(h) == "Stream.Unclaimed"
    for client_id, role in ((7, Role.PRODUCER), (8, Role.CONSUMER)):
        h.tell(
            ShmAttachRequest(
                correlation_id=client_id,
                stream_id=10000,
                client_id=client_id,
                role=role,
                expected_layout_version=0,
            )
        )
    assert prov.entered.wait(WAIT_S)
    assert stream_state(h) == "Stream.Provisioning"
    assert h.outbox.of_type(ShmAttachResponse) == []
    prov.release.set()
    producer, consumer = h.wait_count(ShmAttachResponse, 2)
    assert (producer.correlation_id, consumer.correlation_id) == (7, 8)
    assert producer.code == consumer.code == ResponseCode.OK
    assert producer.epoch == consumer.epoch
    assert stream_state(h) == "Stream.ProducerAttached"
    assert h.epochs_on_disk() == [producer.epoch]  # one bump for both

    h.detach(producer, 7, Role.PRODUCER)
    (detached,) = h.wait_count(ShmDetachResponse, 1)
    assert detached.code == ResponseCode.OK
    announces = h.outbox.of_type(ShmPoolAnnounce)
    assert announces[-1].epoch > producer.epoch  # announced before the detach's answer
    assert announces[-1] not in h.after(detached)
    assert stream_state(h) == "Stream.Ready"
