"""The Driver HSM with the Stream HSMs it hosts: a stream's lifecycle seen from the wire.

Each test drives the driver's handlers with explicit times (no clock, no threads) and checks
both the stream's state (what status reports) and what goes on the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from actors.driver.commands import (
    ConsumerAttach,
    DiscardEpoch,
    EpochProvisioned,
    ProducerAttach,
    ProducerLeaseLost,
    ProvisionFailed,
    StreamReady,
)
from actors.driver.effects import SendAll, TellStream
from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmAttachResponse,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
    ShutdownReason,
)
from messages.events import LeaseCheckTimerFired, ShutdownRequested
from messages.wire import ShmPoolAnnounce
from tests.unit.helpers import INFO, NEW, TTL, attach_request, new_driver, sends

if TYPE_CHECKING:
    from pathlib import Path

    from actors.driver.model import DriverModel
    from actors.runtime.hsm import Hsm

@pytest.fixture
def driver(tmp_path: Path) -> Hsm[DriverModel]:
    return new_driver(tmp_path)


def state(driver: Hsm[DriverModel]) -> str:
    return driver.model.streams[10000].status_state


def asked(effects: list[object]) -> list[object]:
    return [e.command for e in effects if isinstance(e, TellStream)]


def answers(effects: list[object]) -> list[tuple[int, ResponseCode, int | None]]:
    return [
        (m.correlation_id, m.code, m.epoch)
        for m in sends(effects)
        if isinstance(m, ShmAttachResponse)
    ]


def producer_attached(driver: Hsm[DriverModel]) -> int:
    """Client 7 is the producer of stream 10000 on epoch INFO; returns its lease id."""
    (command,) = asked(driver.dispatch(attach_request(correlation_id=1, client_id=7)))
    assert isinstance(command, ProducerAttach)
    driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=command.attach))
    assert state(driver) == "Stream.ProducerAttached"
    return command.attach.lease_id


def test_status_follows_the_stream_through_its_lifecycle(driver: Hsm[DriverModel]) -> None:
    assert state(driver) == "Stream.Unclaimed"
    (command,) = asked(driver.dispatch(attach_request(correlation_id=1, client_id=7)))
    assert isinstance(command, ProducerAttach)
    assert state(driver) == "Stream.Provisioning"
    driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=command.attach))
    assert state(driver) == "Stream.ProducerAttached"
    lease_id = command.attach.lease_id
    driver.dispatch(
        ShmDetachRequest(
            correlation_id=9, lease_id=lease_id, stream_id=10000, client_id=7, role=Role.PRODUCER
        )
    )
    assert state(driver) == "Stream.Settling"
    driver.dispatch(EpochProvisioned(stream_id=10000, info=NEW))
    assert state(driver) == "Stream.Ready"


def test_a_consumer_lease_lost_during_provisioning_leaves_the_attach_in_flight(
    driver: Hsm[DriverModel],
) -> None:
    """Only the producer's end concerns the stream's lifecycle: a consumer's lease expiring
    while a producer's epoch is being made is revoked and the producer is still granted."""
    (first,) = asked(
        driver.dispatch(attach_request(correlation_id=1, client_id=9, role=Role.CONSUMER))
    )
    assert isinstance(first, ConsumerAttach)
    driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=first.attach))
    (producer,) = asked(driver.dispatch(attach_request(correlation_id=2, client_id=7)))
    assert isinstance(producer, ProducerAttach)
    effects = driver.dispatch(LeaseCheckTimerFired(TTL + 1))  # the consumer's lease expires
    (revokes,) = [e for e in effects if isinstance(e, SendAll)]
    (revoke,) = revokes.messages
    assert isinstance(revoke, ShmLeaseRevoked)
    assert (revoke.lease_id, revoke.reason) == (first.attach.lease_id, LeaseRevokeReason.EXPIRED)
    assert asked(effects) == []
    assert state(driver) == "Stream.Provisioning"
    effects = driver.dispatch(StreamReady(stream_id=10000, info=NEW, attach=producer.attach))
    assert answers(effects) == [(2, ResponseCode.OK, 101)]
    assert state(driver) == "Stream.ProducerAttached"


def test_a_producer_lost_to_expiry_settles_and_its_keepalive_comes_too_late(
    driver: Hsm[DriverModel],
) -> None:
    lease_id = producer_attached(driver)
    effects = driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    (lost,) = asked(effects)
    assert isinstance(lost, ProducerLeaseLost)
    assert state(driver) == "Stream.Settling"
    late = ShmLeaseKeepalive(
        lease_id=lease_id, stream_id=10000, client_id=7, role=Role.PRODUCER, client_timestamp_ns=0
    )
    assert sends(driver.dispatch(late)) == []
    effects = driver.dispatch(EpochProvisioned(stream_id=10000, info=NEW))
    (announce,) = sends(effects)
    assert isinstance(announce, ShmPoolAnnounce)
    assert (announce.epoch, announce.producer_id) == (101, 0)  # no detach to answer


def test_a_detach_and_an_attach_during_settling_are_answered_after_the_announce(
    driver: Hsm[DriverModel],
) -> None:
    lease_id = producer_attached(driver)
    detach = ShmDetachRequest(
        correlation_id=9, lease_id=lease_id, stream_id=10000, client_id=7, role=Role.PRODUCER
    )
    driver.dispatch(detach)
    consumer = attach_request(correlation_id=11, client_id=8, role=Role.CONSUMER)
    assert driver.dispatch(consumer) == []
    effects = driver.dispatch(EpochProvisioned(stream_id=10000, info=NEW))
    announce, detached, response, consumer_announce = sends(effects)
    assert isinstance(announce, ShmPoolAnnounce)
    assert announce.epoch == 101
    assert detached == ShmDetachResponse(correlation_id=9, code=ResponseCode.OK)
    assert (response.correlation_id, response.code, response.epoch) == (11, ResponseCode.OK, 101)
    assert isinstance(consumer_announce, ShmPoolAnnounce)
    assert state(driver) == "Stream.Ready"


def test_draining_during_provisioning_still_grants_the_attach_in_flight(
    driver: Hsm[DriverModel],
) -> None:
    """Check 0 refuses new attaches; one that passed its checks before is answered."""
    (command,) = asked(driver.dispatch(attach_request(correlation_id=1, client_id=7)))
    assert isinstance(command, ProducerAttach)
    driver.dispatch(ShutdownRequested(ShutdownReason.NORMAL, "", skip_drain=False))
    assert driver.path == ("Driver", "Running", "Draining")
    refused = driver.dispatch(attach_request(correlation_id=2, client_id=8, role=Role.CONSUMER))
    assert answers(refused) == [(2, ResponseCode.REJECTED, None)]
    assert state(driver) == "Stream.Provisioning"
    effects = driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=command.attach))
    assert answers(effects) == [(1, ResponseCode.OK, INFO.epoch)]
    assert state(driver) == "Stream.ProducerAttached"


def test_stopping_during_provisioning_discards_the_epoch_and_answers_nothing(
    driver: Hsm[DriverModel],
) -> None:
    (command,) = asked(driver.dispatch(attach_request(correlation_id=1, client_id=7)))
    assert isinstance(command, ProducerAttach)
    driver.dispatch(ShutdownRequested(ShutdownReason.NORMAL, "", skip_drain=True))
    assert driver.state == "Stopped"
    effects = driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=command.attach))
    assert effects == [TellStream(10000, DiscardEpoch(INFO.epoch))]
    assert state(driver) == "Stream.Provisioning"  # the Stopped driver feeds it nothing


def test_a_failed_provisioning_answers_internal_error_and_the_stream_is_unclaimed(
    driver: Hsm[DriverModel],
) -> None:
    (command,) = asked(driver.dispatch(attach_request(correlation_id=1, client_id=7)))
    assert isinstance(command, ProducerAttach)
    effects = driver.dispatch(
        ProvisionFailed(stream_id=10000, detail="no space", attach=command.attach)
    )
    (response,) = sends(effects)
    assert (response.code, response.error_message) == (
        ResponseCode.INTERNAL_ERROR,
        "failed to provision SHM: no space",
    )
    assert state(driver) == "Stream.Unclaimed"
    assert len(driver.model.pending) == 0
