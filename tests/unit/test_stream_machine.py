"""The Stream HSM's rows, state by state (driver-behaviour.md §3 step 1, §6; A-6, A-7).

The machine is pure: each test dispatches events and checks the effects it decides and the
state it reaches; ``test_driver_machine.py`` and ``test_wire_order.py`` check what the driver
makes of those effects on the wire.
"""

from __future__ import annotations

import logging

import pytest

from actors.driver.commands import (
    EpochInfo,
    EpochProvisioned,
    EpochProvisionFailed,
    PendingAttach,
    ProvisionFailed,
    StreamReady,
)
from actors.driver.stream_machine import (
    ActorFailed,
    Announce,
    AnswerDetach,
    FailAttach,
    Forget,
    Grant,
    ProducerLost,
    Provision,
    Replay,
    Respawn,
    RevokeProducer,
    Stream,
)
from messages.control import Role
from tensorpool_config.model import PoolSpec, Profile
from tests.unit.helpers import attach_request

PROFILE = Profile("tiny", 8, 256, (PoolSpec(1, 64),))


def info(epoch: int) -> EpochInfo:
    return EpochInfo(
        epoch=epoch, header_nslots=8, header_uri=f"h{epoch}", pools=(), hugepages=False
    )


def attach(lease_id: int, role: Role = Role.CONSUMER) -> PendingAttach:
    return PendingAttach(
        correlation_id=lease_id,
        lease_id=lease_id,
        node_id=lease_id,
        client_id=lease_id,
        role=role,
        stream_id=5,
    )


def ready(a: PendingAttach, epoch: int) -> StreamReady:
    return StreamReady(stream_id=5, info=info(epoch), attach=a)


def failed(a: PendingAttach, detail: str = "disk full") -> ProvisionFailed:
    return ProvisionFailed(stream_id=5, detail=detail, attach=a)


def new_stream(*, dynamic: bool = False) -> Stream:
    return Stream(stream_id=5, name=None, profile=PROFILE, dynamic=dynamic)


def with_epoch(epoch: int = 100) -> Stream:
    """A Ready stream: its first epoch was provisioned for a consumer (lease 90)."""
    stream = new_stream()
    first = attach(90)
    stream.dispatch(first)
    stream.dispatch(ready(first, epoch))
    assert stream.state == "Ready"
    return stream


def with_producer(lease_id: int = 1) -> Stream:
    stream = new_stream()
    producer = attach(lease_id, Role.PRODUCER)
    stream.dispatch(producer)
    stream.dispatch(ready(producer, 100))
    assert stream.state == "ProducerAttached"
    return stream


# ---------------------------------------------------------------- Unclaimed


def test_a_new_stream_is_unclaimed_and_status_reads_its_state() -> None:
    stream = new_stream()
    assert (stream.state, stream.status_state, stream.epoch) == ("Unclaimed", "Stream.Unclaimed", 0)
    assert not stream.grants_at_once
    assert not stream.announceable


def test_unclaimed_producer_attach_provisions_once_and_holds_the_producer_slot() -> None:
    stream = new_stream()
    producer = attach(1, Role.PRODUCER)
    assert stream.dispatch(producer) == [Provision(producer)]
    assert (stream.state, stream.pending_producer, stream.producer_busy) == (
        "Provisioning",
        1,
        True,
    )
    assert stream.dispatch(ready(producer, 100)) == [Grant(producer, info(100), new_epoch=True)]
    assert (stream.state, stream.producer_lease_id, stream.pending_producer) == (
        "ProducerAttached",
        1,
        None,
    )
    assert stream.epoch == 100


def test_unclaimed_consumer_attach_provisions_the_first_epoch() -> None:
    stream = new_stream()
    consumer = attach(2)
    assert stream.dispatch(consumer) == [Provision(consumer)]
    assert stream.status_state == "Stream.Provisioning"
    assert not stream.producer_busy
    assert stream.dispatch(ready(consumer, 100)) == [Grant(consumer, info(100), new_epoch=True)]
    assert stream.state == "Ready"


# ---------------------------------------------------------------- Provisioning


def test_a_consumer_attach_during_provisioning_waits_for_that_epoch() -> None:
    """Provisioning answers it from the epoch being made: no second bump (A-6)."""
    stream = new_stream()
    first, second = attach(2), attach(3)
    stream.dispatch(first)
    assert stream.dispatch(second) == []
    assert stream.state == "Provisioning"
    assert stream.dispatch(ready(first, 100)) == [
        Grant(first, info(100), new_epoch=True),
        Grant(second, info(100), new_epoch=False),
    ]
    assert stream.state == "Ready"


def test_a_producer_attach_during_provisioning_gets_its_own_epoch_after_it() -> None:
    stream = new_stream()
    consumer, producer, late = attach(2), attach(3, Role.PRODUCER), attach(4)
    stream.dispatch(consumer)
    assert stream.dispatch(producer) == [Provision(producer)]  # the StreamActor queues it
    assert stream.dispatch(late) == []
    assert stream.dispatch(ready(consumer, 100)) == [Grant(consumer, info(100), new_epoch=True)]
    assert stream.state == "Provisioning"  # the producer's epoch is still being made
    assert stream.dispatch(ready(producer, 101)) == [
        Grant(producer, info(101), new_epoch=True),
        Grant(late, info(101), new_epoch=False),
    ]
    assert (stream.state, stream.epoch) == ("ProducerAttached", 101)


def test_a_producer_attach_on_a_ready_stream_bumps_and_its_consumers_wait() -> None:
    stream = with_epoch(100)
    producer, consumer = attach(1, Role.PRODUCER), attach(2)
    assert stream.dispatch(producer) == [Provision(producer)]
    assert (stream.state, stream.announceable, stream.grants_at_once) == (
        "Provisioning",
        True,
        False,
    )
    assert stream.dispatch(consumer) == []
    assert stream.dispatch(ready(producer, 101)) == [
        Grant(producer, info(101), new_epoch=True),
        Grant(consumer, info(101), new_epoch=False),
    ]


def test_provisioning_failure_fails_the_attach_and_keeps_the_old_epoch() -> None:
    stream = with_epoch(100)
    producer, consumer = attach(1, Role.PRODUCER), attach(2)
    stream.dispatch(producer)
    stream.dispatch(consumer)
    assert stream.dispatch(failed(producer)) == [
        FailAttach(producer, "disk full"),
        Grant(consumer, info(100), new_epoch=False),  # the stream's epoch is still good
    ]
    assert (stream.state, stream.epoch, stream.pending_producer) == ("Ready", 100, None)


def test_a_failed_first_epoch_is_asked_again_for_the_next_waiting_consumer() -> None:
    stream = new_stream()
    first, second, third = attach(2), attach(3), attach(4)
    stream.dispatch(first)
    stream.dispatch(second)
    stream.dispatch(third)
    assert stream.dispatch(failed(first)) == [FailAttach(first, "disk full"), Provision(second)]
    assert stream.state == "Provisioning"
    assert stream.dispatch(ready(second, 100)) == [
        Grant(second, info(100), new_epoch=True),
        Grant(third, info(100), new_epoch=False),
    ]


def test_a_failed_first_epoch_with_nothing_waiting_is_unclaimed_again() -> None:
    stream = new_stream()
    consumer = attach(2)
    stream.dispatch(consumer)
    assert stream.dispatch(failed(consumer)) == [FailAttach(consumer, "disk full")]
    assert stream.state == "Unclaimed"


def test_a_dynamic_stream_whose_creating_attach_failed_is_forgotten() -> None:
    stream = new_stream(dynamic=True)
    producer = attach(1, Role.PRODUCER)
    stream.dispatch(producer)
    assert stream.dispatch(failed(producer)) == [FailAttach(producer, "disk full"), Forget()]
    assert stream.state == "Unclaimed"


def test_a_reply_nobody_waits_for_is_ignored() -> None:
    stream = new_stream()
    consumer = attach(2)
    stream.dispatch(consumer)
    assert stream.dispatch(ready(attach(77), 100)) == []
    assert stream.dispatch(failed(attach(77))) == []
    assert stream.state == "Provisioning"
    ready_stream = with_epoch()
    assert ready_stream.dispatch(ready(attach(77), 101)) == []
    assert ready_stream.epoch == 100


# ---------------------------------------------------------------- Ready, ProducerAttached


@pytest.mark.parametrize("state", ["Ready", "ProducerAttached"])
def test_the_fast_path_states_grant_a_consumer_from_the_current_epoch(state: str) -> None:
    """What the DriverActor does without a dispatch when ``grants_at_once``."""
    stream = with_epoch() if state == "Ready" else with_producer()
    assert stream.grants_at_once
    consumer = attach(5)
    assert stream.dispatch(consumer) == [Grant(consumer, info(100), new_epoch=False)]
    assert stream.state == state


def test_losing_the_producer_bumps_and_settles() -> None:
    stream = with_producer(1)
    lost = ProducerLost(1, detach_correlation_id=9)
    assert stream.dispatch(lost) == [Provision(lost)]
    assert (stream.state, stream.producer_lease_id, stream.producer_busy) == (
        "Settling",
        None,
        True,
    )
    assert not stream.announceable  # the old epoch would name no producer
    assert not stream.grants_at_once


def test_losing_a_producer_it_does_not_have_is_logged_and_changes_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stream = with_epoch()
    with caplog.at_level(logging.ERROR):
        assert stream.dispatch(ProducerLost(1)) == []
    assert stream.state == "Ready"
    assert "not expected in Stream.Ready" in caplog.text


# ---------------------------------------------------------------- Settling


def settling(detach_correlation_id: int | None = 9) -> Stream:
    stream = with_producer(1)
    stream.dispatch(ProducerLost(1, detach_correlation_id))
    return stream


def test_attaches_during_settling_are_deferred_and_replayed_after_the_new_epoch() -> None:
    stream = settling()
    first = attach_request(correlation_id=20, client_id=20, stream_id=5)
    second = attach_request(correlation_id=21, client_id=21, stream_id=5)
    assert stream.dispatch(first) == []
    assert stream.dispatch(second) == []
    assert stream.dispatch(EpochProvisioned(stream_id=5, info=info(101))) == [
        Announce(new_epoch=True),
        AnswerDetach(9),
        Replay(first),
        Replay(second),
    ]
    assert (stream.state, stream.epoch, stream.producer_busy) == ("Ready", 101, False)
    assert stream.model.deferred == []
    assert stream.model.detach_replies == []


def test_a_failed_bump_announces_the_old_epoch_and_still_answers_and_replays() -> None:
    stream = settling()
    request = attach_request(correlation_id=20, client_id=20, stream_id=5)
    stream.dispatch(request)
    assert stream.dispatch(EpochProvisionFailed(stream_id=5, detail="no space")) == [
        Announce(new_epoch=False),
        AnswerDetach(9),
        Replay(request),
    ]
    assert (stream.state, stream.epoch) == ("Ready", 100)


def test_an_expired_producer_settles_with_no_detach_to_answer() -> None:
    stream = settling(detach_correlation_id=None)
    assert stream.dispatch(EpochProvisioned(stream_id=5, info=info(101))) == [
        Announce(new_epoch=True)
    ]


def test_a_new_epoch_out_of_turn_is_current_and_announced() -> None:
    """A failed actor's last reply, after settling was over."""
    stream = with_epoch(100)
    assert stream.dispatch(EpochProvisioned(stream_id=5, info=info(102))) == [
        Announce(new_epoch=True)
    ]
    assert (stream.state, stream.epoch) == ("Ready", 102)
    failure = EpochProvisionFailed(stream_id=5, detail="x")
    assert stream.dispatch(failure) == [Announce(new_epoch=False)]


# ---------------------------------------------------------------- the StreamActor failed


def test_actor_failure_while_provisioning_fails_its_attaches_in_lease_order() -> None:
    stream = new_stream()
    first, second = attach(3), attach(2, Role.PRODUCER)
    stream.dispatch(first)
    stream.dispatch(second)
    assert stream.dispatch(ActorFailed("boom")) == [
        FailAttach(second, "stream actor failed: boom"),
        FailAttach(first, "stream actor failed: boom"),
        Respawn(),
    ]
    assert (stream.state, stream.pending_producer) == ("Unclaimed", None)


def test_actor_failure_of_a_dynamic_stream_being_created_forgets_it() -> None:
    stream = new_stream(dynamic=True)
    consumer = attach(2)
    stream.dispatch(consumer)
    assert stream.dispatch(ActorFailed("boom")) == [
        FailAttach(consumer, "stream actor failed: boom"),
        Forget(),
    ]


def test_actor_failure_with_a_producer_revokes_it_and_its_loss_settles() -> None:
    stream = with_producer(1)
    assert stream.dispatch(ActorFailed("boom")) == [Respawn(), RevokeProducer(1)]
    assert stream.state == "ProducerAttached"  # until the revoke's ProducerLost
    lost = ProducerLost(1)
    assert stream.dispatch(lost) == [Provision(lost)]
    assert stream.state == "Settling"


def test_actor_failure_of_a_ready_stream_bumps_through_settling() -> None:
    stream = with_epoch()
    failure = ActorFailed("boom")
    assert stream.dispatch(failure) == [Respawn(), Provision(failure)]
    assert stream.state == "Settling"


def test_actor_failure_while_settling_asks_again_and_keeps_what_waits() -> None:
    stream = settling()
    request = attach_request(correlation_id=20, client_id=20, stream_id=5)
    stream.dispatch(request)
    failure = ActorFailed("boom")
    assert stream.dispatch(failure) == [Respawn(), Provision(failure)]
    assert stream.state == "Settling"
    assert stream.dispatch(EpochProvisioned(stream_id=5, info=info(101))) == [
        Announce(new_epoch=True),
        AnswerDetach(9),
        Replay(request),
    ]
