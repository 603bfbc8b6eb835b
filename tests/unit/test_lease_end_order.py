"""A lease the driver has ended still exists on the wire until its ShmLeaseRevoked is out.

The driver decides an end (expiry, detach) on its own thread; the LeaseActor puts the revoke on
the outbox later and reports ``LeaseEnded``. In between, nothing the driver answers may show
the lease as gone while it is still alive on the wire (driver-behaviour.md §6: the revoke is
sent, *then* the lease is removed and its node id cools down; §7: a detach is answered after
the revoke). Found by ``tests/interop/test_stress.py``'s invariants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actors.commands import (
    ConsumerAttach,
    EpochInfo,
    EpochProvisioned,
    EpochProvisionFailed,
    LeaseEnded,
    ProducerAttach,
    StreamReady,
)
from actors.driver_effects import TellStream
from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmDetachRequest,
    ShmDetachResponse,
)
from messages.events import AnnounceTimerFired, LeaseCheckTimerFired
from messages.wire import ShmPoolAnnounce
from tests.unit.helpers import INFO, TTL, attach_request, new_driver, sends

if TYPE_CHECKING:
    from pathlib import Path

    from actors.driver_model import DriverModel
    from actors.hsm import Hsm



@pytest.fixture
def driver(tmp_path: Path) -> Hsm[DriverModel]:
    return new_driver(tmp_path, node_id_reuse_cooldown_ms=0)


def stream_commands(effects: list[object]) -> list[object]:
    return [e.command for e in effects if isinstance(e, TellStream)]


def grant(hsm: Hsm[DriverModel], client_id: int, role: Role, correlation_id: int) -> int:
    effects = hsm.dispatch(
        attach_request(correlation_id=correlation_id, client_id=client_id, role=role)
    )
    (command,) = stream_commands(effects)
    assert isinstance(command, ProducerAttach | ConsumerAttach)
    hsm.dispatch(StreamReady(stream_id=10000, info=INFO, attach=command.attach, bumped=True))
    return command.attach.lease_id


def ended(lease_id: int, reason: LeaseRevokeReason = LeaseRevokeReason.EXPIRED) -> LeaseEnded:
    return LeaseEnded(lease_id=lease_id, reason=reason, now_ns=TTL + 1)


def test_attach_by_the_client_of_an_expiring_lease_is_handled_after_its_revoke(
    driver: Hsm[DriverModel],
) -> None:
    lease_id = grant(driver, 7, Role.CONSUMER, 1)
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))  # expired; the revoke is not out yet
    again = attach_request(correlation_id=2, client_id=7, role=Role.CONSUMER)
    # Granting now would put two leases of client 7 on the wire (the new OK before the old
    # lease's revoke); refusing would answer 'client_id already attached' after the revoke.
    assert driver.dispatch(again) == []
    (command,) = stream_commands(driver.dispatch(ended(lease_id)))
    assert isinstance(command, ConsumerAttach)
    assert command.attach.correlation_id == 2


def test_detach_of_an_expiring_lease_is_answered_after_its_revoke(
    driver: Hsm[DriverModel],
) -> None:
    lease_id = grant(driver, 7, Role.CONSUMER, 1)
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    detach = ShmDetachRequest(
        correlation_id=9, lease_id=lease_id, stream_id=10000, client_id=7, role=Role.CONSUMER
    )
    assert driver.dispatch(detach) == []  # not 'unknown lease' while the lease is on the wire
    unknown = ShmDetachResponse(
        correlation_id=9, code=ResponseCode.REJECTED, error_message="unknown lease"
    )
    assert sends(driver.dispatch(ended(lease_id))) == [unknown]


def test_attach_asking_for_the_node_id_of_an_ending_lease_is_handled_after_its_revoke(
    driver: Hsm[DriverModel],
) -> None:
    """With the cooldown disabled, the node id is free once the revoke is out, not before."""
    lease_id = grant(driver, 7, Role.CONSUMER, 1)
    record = driver.model.leases.get(lease_id)
    assert record is not None
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    wants = attach_request(
        correlation_id=2, client_id=8, role=Role.CONSUMER, desired_node_id=record.node_id
    )
    # Either answer now could contradict the wire: OK (two leases with one node id) before
    # the revoke, or 'node_id unavailable' after it.
    assert driver.dispatch(wants) == []
    (command,) = stream_commands(driver.dispatch(ended(lease_id)))
    assert isinstance(command, ConsumerAttach)
    assert (command.attach.correlation_id, command.attach.node_id) == (2, record.node_id)


def test_no_periodic_announce_between_a_producer_end_and_its_new_epoch(
    driver: Hsm[DriverModel],
) -> None:
    """Announced then, the old epoch would name no producer before the producer's revoke."""
    lease_id = grant(driver, 7, Role.PRODUCER, 1)
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    assert sends(driver.dispatch(AnnounceTimerFired(TTL + 2))) == []
    driver.dispatch(ended(lease_id))
    assert sends(driver.dispatch(AnnounceTimerFired(TTL + 3))) == []  # the bump is in flight
    new = EpochInfo(epoch=101, header_nslots=8, header_uri="h", pools=INFO.pools, hugepages=False)
    (announce,) = sends(driver.dispatch(EpochProvisioned(stream_id=10000, info=new)))
    assert (announce.epoch, announce.producer_id) == (101, 0)
    (periodic,) = sends(driver.dispatch(AnnounceTimerFired(TTL + 4)))
    assert isinstance(periodic, ShmPoolAnnounce)
    assert periodic.epoch == 101


def test_failed_re_provisioning_announces_the_old_epoch_again(driver: Hsm[DriverModel]) -> None:
    lease_id = grant(driver, 7, Role.PRODUCER, 1)
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    driver.dispatch(ended(lease_id))
    (announce,) = sends(driver.dispatch(EpochProvisionFailed(stream_id=10000, detail="no space")))
    assert isinstance(announce, ShmPoolAnnounce)
    assert (announce.epoch, announce.producer_id) == (100, 0)


def test_consumer_asked_for_before_a_producer_end_gets_the_new_epoch(
    driver: Hsm[DriverModel],
) -> None:
    """A consumer attach already at the stream when the producer ends is not granted the epoch
    about to be retired (nor announced with no producer before the producer's revoke): it is
    asked of the stream again once the new epoch is provisioned."""
    producer = grant(driver, 7, Role.PRODUCER, 1)
    (asked,) = stream_commands(
        driver.dispatch(attach_request(correlation_id=2, client_id=8, role=Role.CONSUMER))
    )
    assert isinstance(asked, ConsumerAttach)
    driver.dispatch(LeaseCheckTimerFired(TTL + 1))  # the producer expires
    old = StreamReady(stream_id=10000, info=INFO, attach=asked.attach, bumped=False)
    assert sends(driver.dispatch(old)) == []
    driver.dispatch(ended(producer))
    new = EpochInfo(epoch=101, header_nslots=8, header_uri="h", pools=INFO.pools, hugepages=False)
    effects = driver.dispatch(EpochProvisioned(stream_id=10000, info=new))
    (announce,) = sends(effects)
    assert (announce.epoch, announce.producer_id) == (101, 0)
    (again,) = stream_commands(effects)
    assert isinstance(again, ConsumerAttach)
    assert again.attach == asked.attach  # same lease id, node id and correlation id
    response, _ = sends(
        driver.dispatch(StreamReady(stream_id=10000, info=new, attach=asked.attach, bumped=False))
    )
    assert (response.correlation_id, response.code, response.epoch) == (2, ResponseCode.OK, 101)
