"""Wire order by construction: a lease's revoke is the first thing its end puts on the wire.

The driver decides an end (expiry, detach, supervision) and puts the ``ShmLeaseRevoked`` on
the outbox in the same step, before anything that observes the lease gone: its client id or
node id granted again, 'unknown lease' for its detach, the producer's new epoch
(driver-behaviour.md §6, §7). So requests that follow an end are answered at once, and the
periodic announce stays quiet between a producer's end and its new epoch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actors.driver.commands import (
    ConsumerAttach,
    EpochProvisioned,
    EpochProvisionFailed,
    ProducerAttach,
    ProducerLeaseLost,
    StreamReady,
)
from actors.driver.effects import ArmLeaseCheck, EndLeaseActors, SendAll, TellStream
from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmAttachResponse,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmLeaseRevoked,
)
from messages.events import AnnounceTimerFired, LeaseCheckTimerFired
from messages.wire import ShmPoolAnnounce
from tests.unit.helpers import INFO, NEW, TTL, attach_request, new_driver, sends

if TYPE_CHECKING:
    from pathlib import Path

    from actors.driver.model import DriverModel
    from actors.runtime.hsm import Hsm

@pytest.fixture
def driver(tmp_path: Path) -> Hsm[DriverModel]:
    return new_driver(tmp_path, node_id_reuse_cooldown_ms=0)


def stream_commands(effects: list[object]) -> list[object]:
    return [e.command for e in effects if isinstance(e, TellStream)]


def grant(hsm: Hsm[DriverModel], client_id: int, role: Role, correlation_id: int) -> int:
    """Attach ``client_id``; the stream is provisioned with INFO the first time."""
    effects = hsm.dispatch(
        attach_request(correlation_id=correlation_id, client_id=client_id, role=role)
    )
    commands = stream_commands(effects)
    if commands:
        (command,) = commands
        assert isinstance(command, ProducerAttach | ConsumerAttach)
        effects = hsm.dispatch(
            StreamReady(stream_id=10000, info=INFO, attach=command.attach)
        )
    (response, *_) = sends(effects)
    assert isinstance(response, ShmAttachResponse)
    assert response.code == ResponseCode.OK
    assert response.lease_id is not None
    return response.lease_id


def test_expiry_puts_every_due_revoke_on_the_wire_in_one_batch_first(
    driver: Hsm[DriverModel],
) -> None:
    leases = [grant(driver, client, Role.CONSUMER, client) for client in (7, 8, 9)]
    effects = driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    wire = [e for e in effects if isinstance(e, SendAll | EndLeaseActors)]
    assert isinstance(wire[0], SendAll)  # the revokes, before the actors hear of it
    revokes = [m for m in wire[0].messages if isinstance(m, ShmLeaseRevoked)]
    assert [m.lease_id for m in revokes] == leases
    assert len(revokes) == len(wire[0].messages)
    assert all(m.reason == LeaseRevokeReason.EXPIRED for m in revokes)
    assert isinstance(wire[1], EndLeaseActors)
    assert [lease_id for lease_id, _ in wire[1].ends] == leases


def test_an_attach_by_the_client_of_an_expired_lease_is_answered_at_once(
    driver: Hsm[DriverModel],
) -> None:
    grant(driver, 7, Role.CONSUMER, 1)
    (revoke,) = sends(driver.dispatch(LeaseCheckTimerFired(TTL + 1)))
    assert isinstance(revoke, ShmLeaseRevoked)
    response, _announce = sends(
        driver.dispatch(attach_request(correlation_id=2, client_id=7, role=Role.CONSUMER))
    )
    assert (response.correlation_id, response.code) == (2, ResponseCode.OK)


def test_a_detach_of_an_expired_lease_is_unknown_at_once(driver: Hsm[DriverModel]) -> None:
    lease_id = grant(driver, 7, Role.CONSUMER, 1)
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    detach = ShmDetachRequest(
        correlation_id=9, lease_id=lease_id, stream_id=10000, client_id=7, role=Role.CONSUMER
    )
    unknown = ShmDetachResponse(
        correlation_id=9, code=ResponseCode.REJECTED, error_message="unknown lease"
    )
    assert sends(driver.dispatch(detach)) == [unknown]


def test_the_node_id_of_an_expired_lease_is_free_once_its_revoke_is_out(
    driver: Hsm[DriverModel],
) -> None:
    """With the cooldown disabled."""
    lease_id = grant(driver, 7, Role.CONSUMER, 1)
    record = driver.model.leases.get(lease_id)
    assert record is not None
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    wants = attach_request(
        correlation_id=2, client_id=8, role=Role.CONSUMER, desired_node_id=record.node_id
    )
    response, _ = sends(driver.dispatch(wants))
    assert (response.code, response.node_id) == (ResponseCode.OK, record.node_id)


def test_a_consumer_detach_answers_after_the_revoke(driver: Hsm[DriverModel]) -> None:
    lease_id = grant(driver, 7, Role.CONSUMER, 1)
    detach = ShmDetachRequest(
        correlation_id=9, lease_id=lease_id, stream_id=10000, client_id=7, role=Role.CONSUMER
    )
    revoke, response = sends(driver.dispatch(detach))
    assert isinstance(revoke, ShmLeaseRevoked)
    assert revoke.reason == LeaseRevokeReason.DETACHED
    assert response == ShmDetachResponse(correlation_id=9, code=ResponseCode.OK)


def test_a_producer_detach_answers_after_the_revoke_and_the_new_epoch(
    driver: Hsm[DriverModel],
) -> None:
    lease_id = grant(driver, 7, Role.PRODUCER, 1)
    detach = ShmDetachRequest(
        correlation_id=9, lease_id=lease_id, stream_id=10000, client_id=7, role=Role.PRODUCER
    )
    effects = driver.dispatch(detach)
    (revoke,) = sends(effects)
    assert isinstance(revoke, ShmLeaseRevoked)
    (lost,) = stream_commands(effects)
    assert isinstance(lost, ProducerLeaseLost)
    announce, response = sends(driver.dispatch(EpochProvisioned(stream_id=10000, info=NEW)))
    assert (announce.epoch, announce.producer_id) == (101, 0)
    assert response == ShmDetachResponse(correlation_id=9, code=ResponseCode.OK)


def test_no_periodic_announce_between_a_producer_end_and_its_new_epoch(
    driver: Hsm[DriverModel],
) -> None:
    """Announced then, the old epoch would name no producer while its revoke is news."""
    grant(driver, 7, Role.PRODUCER, 1)
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    assert sends(driver.dispatch(AnnounceTimerFired(TTL + 2))) == []  # the bump is in flight
    (announce,) = sends(driver.dispatch(EpochProvisioned(stream_id=10000, info=NEW)))
    assert (announce.epoch, announce.producer_id) == (101, 0)
    (periodic,) = sends(driver.dispatch(AnnounceTimerFired(TTL + 4)))
    assert isinstance(periodic, ShmPoolAnnounce)
    assert periodic.epoch == 101


def test_failed_re_provisioning_announces_the_old_epoch_again(driver: Hsm[DriverModel]) -> None:
    grant(driver, 7, Role.PRODUCER, 1)
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    (announce,) = sends(driver.dispatch(EpochProvisionFailed(stream_id=10000, detail="no space")))
    assert isinstance(announce, ShmPoolAnnounce)
    assert (announce.epoch, announce.producer_id) == (100, 0)


def test_a_consumer_of_a_provisioned_stream_is_granted_without_asking_the_stream(
    driver: Hsm[DriverModel],
) -> None:
    grant(driver, 7, Role.PRODUCER, 1)
    effects = driver.dispatch(attach_request(correlation_id=2, client_id=8, role=Role.CONSUMER))
    assert stream_commands(effects) == []
    response, announce = sends(effects)
    assert (response.code, response.epoch) == (ResponseCode.OK, INFO.epoch)
    assert isinstance(announce, ShmPoolAnnounce)


def test_a_consumer_behind_a_pending_producer_attach_gets_the_producers_epoch_after_it(
    driver: Hsm[DriverModel],
) -> None:
    """The Stream HSM holds it until the producer's epoch is provisioned and grants it from
    that epoch right after the producer's OK, as a single-threaded driver that provisions
    inside its loop would; the stream is not asked twice."""
    grant(driver, 9, Role.CONSUMER, 1)
    (producer,) = stream_commands(
        driver.dispatch(attach_request(correlation_id=2, client_id=7, role=Role.PRODUCER))
    )
    assert isinstance(producer, ProducerAttach)
    waiting = driver.dispatch(attach_request(correlation_id=3, client_id=8, role=Role.CONSUMER))
    assert waiting == []
    effects = driver.dispatch(StreamReady(stream_id=10000, info=NEW, attach=producer.attach))
    assert stream_commands(effects) == []
    answers = [
        (m.correlation_id, m.code, m.epoch)
        for m in sends(effects)
        if isinstance(m, ShmAttachResponse)
    ]
    assert answers == [(2, ResponseCode.OK, 101), (3, ResponseCode.OK, 101)]


def test_a_consumer_waiting_for_the_producers_epoch_is_granted_before_the_producer_can_end(
    driver: Hsm[DriverModel],
) -> None:
    """Granted in the same step as the producer, a waiting consumer can never be left the
    epoch a producer's end is about to retire; after the end, its lease expires with the
    producer's and the new epoch is announced with no producer."""
    grant(driver, 9, Role.CONSUMER, 1)
    (producer,) = stream_commands(
        driver.dispatch(attach_request(correlation_id=2, client_id=7, role=Role.PRODUCER))
    )
    assert isinstance(producer, ProducerAttach)
    driver.dispatch(attach_request(correlation_id=3, client_id=8, role=Role.CONSUMER))
    driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=producer.attach))
    assert driver.model.streams[10000].state == "ProducerAttached"
    assert len(driver.model.leases) == 3
    effects = driver.dispatch(LeaseCheckTimerFired(TTL + 1))  # every lease expires
    (revokes,) = [e for e in effects if isinstance(e, SendAll)]
    assert len(revokes.messages) == 3
    (lost,) = stream_commands(effects)
    assert isinstance(lost, ProducerLeaseLost)
    effects = driver.dispatch(EpochProvisioned(stream_id=10000, info=NEW))
    (announce,) = sends(effects)
    assert (announce.epoch, announce.producer_id) == (101, 0)
    assert stream_commands(effects) == []


def test_the_lease_check_is_armed_for_the_earliest_deadline_before_the_grant_goes_out(
    driver: Hsm[DriverModel],
) -> None:
    effects = driver.dispatch(attach_request(correlation_id=1, client_id=7, role=Role.CONSUMER))
    (command,) = stream_commands(effects)
    assert isinstance(command, ConsumerAttach)
    effects = driver.dispatch(
        StreamReady(stream_id=10000, info=INFO, attach=command.attach)
    )
    arm = [i for i, e in enumerate(effects) if isinstance(e, ArmLeaseCheck)]
    first_send = min(i for i, e in enumerate(effects) if sends([e]))
    assert [effects[i].deadline_ns for i in arm] == [TTL + 1]  # type: ignore[attr-defined]
    assert arm[0] < first_send
