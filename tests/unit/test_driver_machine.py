"""The Driver HSM without actors: handlers decide, effects say what the actor must do."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from actors.driver.commands import (
    ChildFailed,
    ChildKind,
    ConsumerAttach,
    DiscardEpoch,
    EndLease,
    EpochInfo,
    EpochProvisioned,
    PendingAttach,
    ProducerAttach,
    ProducerLeaseLost,
    ProvisionFailed,
    StreamReady,
)
from actors.driver.effects import (
    ArmLeaseCheck,
    ArmShutdown,
    Emit,
    EndLeaseActors,
    EnterStopped,
    Send,
    SendAll,
    SpawnStream,
    StartLease,
    TellStream,
    WantIntake,
)
from actors.driver.leases import INTAKE_RECHECK_NS, MAX_EXPIRY_DEFERRAL_NS
from actors.driver.machine import DriverStarted, new_driver_hsm
from actors.driver.model import LEASE_CHECK_MIN_GAP_NS as GAP
from actors.driver.model import DriverModel
from actors.testing import small_config
from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmAttachResponse,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmDriverShutdown,
    ShmDriverShutdownRequest,
    ShmLeaseKeepalive,
    ShmLeaseRevoked,
    ShutdownReason,
)
from messages.events import (
    COUNTER_EXPIRY_DEFERRED,
    IntakeCaughtUp,
    Keepalives,
    LeaseCheckTimerFired,
    ShutdownRequested,
    ShutdownTimerFired,
)
from messages.wire import Bool, ConsumerConfig, ConsumerHello, Mode, ShmPoolAnnounce
from tests.unit.helpers import INFO, TTL, attach_request, new_driver, sends

if TYPE_CHECKING:
    from pathlib import Path

    from actors.runtime.hsm import Hsm



@pytest.fixture
def driver(tmp_path: Path) -> Hsm[DriverModel]:
    return new_driver(tmp_path, shutdown_token="s3cret")


def detach_request(lease_id: int, /, **fields: Any) -> ShmDetachRequest:
    """Client 7's producer detach of ``lease_id`` (correlation 9); ``fields`` override."""
    base: dict[str, Any] = {
        "correlation_id": 9,
        "lease_id": lease_id,
        "stream_id": 10000,
        "client_id": 7,
        "role": Role.PRODUCER,
    }
    base.update(fields)
    return ShmDetachRequest(**base)


def keepalive(lease_id: int, role: Role = Role.PRODUCER) -> ShmLeaseKeepalive:
    """Client 7's keepalive of ``lease_id`` on stream 10000."""
    return ShmLeaseKeepalive(
        lease_id=lease_id, stream_id=10000, client_id=7, role=role, client_timestamp_ns=0
    )


def attach(hsm: Hsm[DriverModel], client_id: int = 7, role: Role = Role.PRODUCER) -> int:
    """Grant ``client_id`` a lease (through the stream unless a consumer is granted at once)."""
    effects = hsm.dispatch(attach_request(correlation_id=client_id, client_id=client_id, role=role))
    tells = [e for e in effects if isinstance(e, TellStream)]
    if tells:
        (tell,) = tells
        command = tell.command
        assert isinstance(command, ProducerAttach | ConsumerAttach)
        effects = hsm.dispatch(
            StreamReady(stream_id=10000, info=INFO, attach=command.attach)
        )
    (response, *_) = sends(effects)
    assert isinstance(response, ShmAttachResponse)
    assert response.lease_id is not None
    return response.lease_id


def test_attach_asks_the_stream_then_grants_response_before_announce(
    driver: Hsm[DriverModel],
) -> None:
    assert driver.path == ("Driver", "Running", "Serving")
    effects = driver.dispatch(attach_request(correlation_id=5))
    (tell,) = effects
    assert isinstance(tell, TellStream)
    assert isinstance(tell.command, ProducerAttach)
    pending = tell.command.attach
    assert (pending.lease_id, pending.node_id) == (1, 1)
    effects = driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=pending))
    kinds = [type(e) for e in effects if isinstance(e, StartLease | Send)]
    assert kinds == [Send, Send, StartLease]  # the wire first: the actor is not on its path
    response, announce = sends(effects)
    assert response == ShmAttachResponse(
        correlation_id=5,
        code=ResponseCode.OK,
        lease_id=1,
        lease_expiry_timestamp_ns=TTL,
        stream_id=10000,
        epoch=100,
        layout_version=1,
        header_nslots=8,
        header_slot_bytes=256,
        node_id=1,
        payload_pools=INFO.pools,
        header_region_uri=INFO.header_uri,
        error_message="",
    )
    assert isinstance(announce, ShmPoolAnnounce)
    assert (announce.producer_id, announce.epoch) == (7, 100)


def _answers(effects: list[object]) -> list[tuple[int, ResponseCode, str]]:
    """(correlation id, code, text) of each attach response, in wire order."""
    return [
        (msg.correlation_id, msg.code, msg.error_message)
        for msg in sends(effects)
        if isinstance(msg, ShmAttachResponse)
    ]


def _pending_of(effects: list[object]) -> PendingAttach:
    (tell,) = [e for e in effects if isinstance(e, TellStream)]
    return tell.command.attach  # type: ignore[union-attr]


def test_requests_behind_a_pending_attach_are_answered_after_its_ok(
    driver: Hsm[DriverModel],
) -> None:
    """A single-threaded driver grants an attach before it reads the next request, so a
    retry, a second producer or a second attach of the client is refused after that OK."""
    pending = _pending_of(driver.dispatch(attach_request(correlation_id=1)))
    assert driver.dispatch(attach_request(correlation_id=1)) == []  # the same request again
    assert driver.dispatch(attach_request(correlation_id=2, client_id=8)) == []
    assert driver.dispatch(attach_request(correlation_id=3, role=Role.CONSUMER)) == []
    effects = driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=pending))
    assert _answers(effects) == [
        (1, ResponseCode.OK, ""),
        (1, ResponseCode.REJECTED, "client_id already attached"),
        (2, ResponseCode.REJECTED, "producer already attached"),
        (3, ResponseCode.REJECTED, "client_id already attached"),
    ]


def test_other_clients_and_streams_are_not_held(driver: Hsm[DriverModel]) -> None:
    pending = _pending_of(driver.dispatch(attach_request(correlation_id=1)))
    consumer = driver.dispatch(attach_request(correlation_id=2, client_id=8, role=Role.CONSUMER))
    assert consumer == []  # waits in the Stream HSM for the producer's epoch, not held
    assert driver.model.pending.held() == {}
    effects = driver.dispatch(attach_request(correlation_id=3, client_id=9, stream_id=10001))
    assert _answers(effects) == [(3, ResponseCode.REJECTED, "stream not provisioned")]
    effects = driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=pending))
    assert _answers(effects) == [(1, ResponseCode.OK, ""), (2, ResponseCode.OK, "")]


def test_a_desired_node_id_of_a_pending_attach_is_answered_after_it(
    driver: Hsm[DriverModel],
) -> None:
    pending = _pending_of(driver.dispatch(attach_request(correlation_id=1, desired_node_id=5)))
    request = attach_request(correlation_id=2, client_id=8, role=Role.CONSUMER, desired_node_id=5)
    assert driver.dispatch(request) == []
    effects = driver.dispatch(StreamReady(stream_id=10000, info=INFO, attach=pending))
    assert [code for _, code, _ in _answers(effects)] == [ResponseCode.OK, ResponseCode.REJECTED]


def test_requests_behind_a_failed_attach_are_decided_after_its_error(
    driver: Hsm[DriverModel],
) -> None:
    pending = _pending_of(driver.dispatch(attach_request(correlation_id=1)))
    assert driver.dispatch(attach_request(correlation_id=2)) == []  # the retry
    effects = driver.dispatch(ProvisionFailed(stream_id=10000, detail="boom", attach=pending))
    assert _answers(effects) == [(1, ResponseCode.INTERNAL_ERROR, "failed to provision SHM: boom")]
    assert isinstance(_pending_of(effects), PendingAttach)  # the retry is a fresh attempt
    assert driver.model.pending.held() == {}


def test_provision_failure_answers_internal_error_and_releases(driver: Hsm[DriverModel]) -> None:
    effects = driver.dispatch(attach_request(correlation_id=1, stream_id=0, publish_mode=2))
    spawn, tell = effects
    assert isinstance(spawn, SpawnStream)
    assert isinstance(tell, TellStream)
    pending = tell.command.attach  # type: ignore[union-attr]
    assert pending.stream_id == 20000
    effects = driver.dispatch(ProvisionFailed(stream_id=20000, detail="boom", attach=pending))
    (response,) = sends(effects)
    assert (response.code, response.error_message) == (
        ResponseCode.INTERNAL_ERROR,
        "failed to provision SHM: boom",
    )
    model = driver.model
    assert 20000 not in model.streams
    assert len(model.pending) == 0
    assert model.node_ids.active == frozenset()


def test_provisioning_failures_count_under_one_reason_whatever_their_detail(
    driver: Hsm[DriverModel],
) -> None:
    for detail in ("/a: No space left", "/b: Permission denied"):
        pending = _pending_of(driver.dispatch(attach_request(correlation_id=1)))
        driver.dispatch(ProvisionFailed(stream_id=10000, detail=detail, attach=pending))
    reasons = {k: v for k, v in driver.model.counters.snapshot().items() if "rejected_reason" in k}
    assert reasons == {"attach.rejected_reason.failed to provision SHM": 2}


def test_a_flood_of_bad_requests_logs_a_line_per_kind_and_second(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    driver = new_driver(tmp_path, shutdown_token="s3cret")
    wrong = ShmDriverShutdownRequest(
        correlation_id=1, reason=ShutdownReason.ADMIN, token="guess", error_message=""
    )
    with caplog.at_level(logging.INFO, logger="actors.driver.actor"):
        for _ in range(1000):
            driver.dispatch(wrong)
            driver.dispatch(keepalive(12345))
            driver.dispatch(attach_request(correlation_id=2, role=9))
        driver.model.now_ns += 1_000_000_000  # a second later: one more line, with the tally
        driver.dispatch(wrong)
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count("shutdown request ignored: wrong token") == 1
    assert "shutdown request ignored: wrong token (999 similar suppressed)" in lines
    assert sum("keepalive ignored: no lease 12345" in line for line in lines) == 1
    assert sum("rejected: INVALID_PARAMS invalid role" in line for line in lines) == 1
    counters = driver.model.counters
    assert counters["shutdown_request.rejected"] == 1001
    assert counters["keepalive.ignored"] == 1000


def test_keepalive_needs_all_four_ids(driver: Hsm[DriverModel]) -> None:
    lease_id = attach(driver)
    model = driver.model
    model.now_ns = 1000
    driver.dispatch(keepalive(lease_id, role=Role.CONSUMER))
    driver.dispatch(keepalive(lease_id + 1))
    assert model.counters["keepalive.ignored"] == 2
    driver.dispatch(keepalive(lease_id))
    record = model.leases.get(lease_id)
    assert record is not None
    assert record.expiry_ns == 1000 + TTL


def test_a_batch_of_keepalives_is_each_keepalive_in_order(driver: Hsm[DriverModel]) -> None:
    producer = attach(driver)
    consumer = attach(driver, client_id=8, role=Role.CONSUMER)
    model = driver.model
    model.now_ns = 1000
    theirs = ShmLeaseKeepalive(
        lease_id=consumer, stream_id=10000, client_id=8, role=Role.CONSUMER, client_timestamp_ns=0
    )
    batch = Keepalives((keepalive(producer), keepalive(consumer), theirs, keepalive(999)))
    assert driver.dispatch(batch) == []
    assert model.counters["keepalive.accepted"] == 2
    assert model.counters["keepalive.ignored"] == 2  # client 7 holds no lease 999 or consumer's
    assert [r.expiry_ns for r in model.leases] == [1000 + TTL, 1000 + TTL]
    driver.dispatch(ShutdownRequested(ShutdownReason.NORMAL))
    assert driver.in_state("Draining")
    model.now_ns = 2000
    driver.dispatch(Keepalives((keepalive(producer),)))  # Draining still serves them
    record = model.leases.get(producer)
    assert record is not None
    assert record.expiry_ns == 2000 + TTL


def wire(effects: list[object]) -> list[object]:
    """Effects other than events and the lease-check arming."""
    return [e for e in effects if not isinstance(e, Emit | ArmLeaseCheck)]


def expired(lease_id: int, now_ns: int) -> list[object]:
    revoke = ShmLeaseRevoked(
        timestamp_ns=now_ns,
        lease_id=lease_id,
        stream_id=10000,
        client_id=7,
        role=Role.PRODUCER,
        reason=LeaseRevokeReason.EXPIRED,
        error_message="lease expired",
    )
    end = EndLease(reason=LeaseRevokeReason.EXPIRED, now_ns=now_ns)
    return [SendAll((revoke,)), EndLeaseActors(((lease_id, end),))]


def test_expiry_is_strict_and_puts_the_revoke_on_the_wire(driver: Hsm[DriverModel]) -> None:
    lease_id = attach(driver)
    assert driver.dispatch(LeaseCheckTimerFired(TTL - 2 * GAP)) == [ArmLeaseCheck(TTL + 1)]
    # Due at TTL + 1, not at TTL; the next check comes a gap after this one.
    assert driver.dispatch(LeaseCheckTimerFired(TTL)) == [ArmLeaseCheck(TTL + GAP)]
    effects = driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    assert wire(effects)[:2] == expired(lease_id, TTL + 1)
    assert isinstance(wire(effects)[2], TellStream)  # the producer's stream: ProducerLeaseLost
    assert driver.model.leases.get(lease_id) is None


def test_leases_due_within_a_gap_of_the_last_check_end_together_in_the_next(
    driver: Hsm[DriverModel],
) -> None:
    """One check per deadline would cost a timer firing and a driver turn per lease when
    thousands end each second: a check ends what is due, and the next one comes no sooner
    than a gap later and ends every lease due by then, in one batch."""
    first = attach(driver, client_id=7)
    driver.model.now_ns = GAP // 4
    second = attach(driver, client_id=8, role=Role.CONSUMER)
    driver.model.now_ns = GAP // 2
    third = attach(driver, client_id=9, role=Role.CONSUMER)
    effects = driver.dispatch(LeaseCheckTimerFired(TTL + 1))
    assert [m.lease_id for m in sends(effects)] == [first]
    assert ArmLeaseCheck(TTL + 1 + GAP) in effects  # not TTL + GAP // 4 + 1
    effects = driver.dispatch(LeaseCheckTimerFired(TTL + 1 + GAP))
    assert [m.lease_id for m in sends(effects)] == [second, third]
    assert len(driver.model.leases) == 0


def test_expiry_waits_for_the_gateway_to_have_read_past_the_deadline(
    driver: Hsm[DriverModel],
) -> None:
    """A keepalive may sit unread in the Aeron log (a flood holds the gateway back, or it is
    parked): a lease is only due once the gateway has read past its deadline and the driver
    has handled what it read; meanwhile the driver asks the gateway to say when it has."""
    lease_id = attach(driver)
    driver.dispatch(IntakeCaughtUp(TTL - 5))
    effects = driver.dispatch(LeaseCheckTimerFired(TTL + 500))  # read only up to TTL - 5
    assert wire(effects) == [WantIntake(TTL + 1)]
    assert ArmLeaseCheck(TTL + 500 + INTAKE_RECHECK_NS) in effects  # in case no answer comes
    assert driver.model.counters[COUNTER_EXPIRY_DEFERRED] == 1
    assert wire(driver.dispatch(IntakeCaughtUp(TTL - 10))) == [WantIntake(TTL + 1)]  # older
    effects = driver.dispatch(IntakeCaughtUp(TTL + 1))
    assert wire(effects)[:2] == expired(lease_id, TTL + 500)
    assert driver.model.counters[COUNTER_EXPIRY_DEFERRED] == 2


def test_a_gateway_that_never_catches_up_delays_expiry_by_at_most_the_cap(
    driver: Hsm[DriverModel],
) -> None:
    lease_id = attach(driver)
    driver.dispatch(IntakeCaughtUp(0))  # and never again: a flood that never drains
    late = TTL + MAX_EXPIRY_DEFERRAL_NS
    assert wire(driver.dispatch(LeaseCheckTimerFired(late))) == [WantIntake(TTL + 1)]
    effects = driver.dispatch(LeaseCheckTimerFired(late + 1))
    assert wire(effects)[:2] == expired(lease_id, late + 1)


def test_a_horizon_ahead_of_the_timer_does_not_expire_early(driver: Hsm[DriverModel]) -> None:
    attach(driver)
    driver.dispatch(IntakeCaughtUp(TTL * 10))
    assert driver.dispatch(LeaseCheckTimerFired(TTL)) == [ArmLeaseCheck(TTL + GAP)]
    assert len(driver.model.leases) == 1
    assert driver.model.counters[COUNTER_EXPIRY_DEFERRED] == 0


def test_producer_detach_chain(driver: Hsm[DriverModel]) -> None:
    lease_id = attach(driver)
    effects = wire(driver.dispatch(detach_request(lease_id)))
    assert [type(e) for e in effects] == [SendAll, EndLeaseActors, TellStream]
    (revoke,) = sends(effects)
    assert (revoke.lease_id, revoke.reason) == (lease_id, LeaseRevokeReason.DETACHED)
    tell = effects[2]
    assert isinstance(tell, TellStream)
    assert isinstance(tell.command, ProducerLeaseLost)
    new = EpochInfo(epoch=101, header_nslots=8, header_uri="h", pools=INFO.pools, hugepages=False)
    effects = driver.dispatch(EpochProvisioned(stream_id=10000, info=new))
    announce, response = sends(effects)
    assert isinstance(announce, ShmPoolAnnounce)
    assert (announce.epoch, announce.producer_id) == (101, 0)
    assert response == ShmDetachResponse(correlation_id=9, code=ResponseCode.OK)


def test_producer_attach_during_the_bump_is_answered_after_it(driver: Hsm[DriverModel]) -> None:
    lease_id = attach(driver)
    driver.dispatch(detach_request(lease_id))
    assert driver.dispatch(attach_request(correlation_id=11, client_id=8)) == []
    new = EpochInfo(epoch=101, header_nslots=8, header_uri="h", pools=INFO.pools, hugepages=False)
    effects = driver.dispatch(EpochProvisioned(stream_id=10000, info=new))
    (tell,) = [e for e in effects if isinstance(e, TellStream)]
    assert isinstance(tell.command, ProducerAttach)


def test_consumer_attach_during_the_bump_gets_the_new_epoch(driver: Hsm[DriverModel]) -> None:
    lease_id = attach(driver)
    driver.dispatch(detach_request(lease_id))
    consumer = attach_request(correlation_id=11, client_id=8, role=Role.CONSUMER)
    assert driver.dispatch(consumer) == []  # held: the stream is between epochs
    new = EpochInfo(epoch=101, header_nslots=8, header_uri="h", pools=INFO.pools, hugepages=False)
    effects = driver.dispatch(EpochProvisioned(stream_id=10000, info=new))
    responses = [m for m in sends(effects) if isinstance(m, ShmAttachResponse)]
    assert [(r.correlation_id, r.code, r.epoch) for r in responses] == [
        (11, ResponseCode.OK, 101)  # granted after the bump, from the new epoch
    ]


@pytest.mark.parametrize(
    ("code", "text", "fields"),
    [
        (ResponseCode.INVALID_PARAMS, "invalid role", {"role": 7}),
        (ResponseCode.REJECTED, "unknown lease", {"client_id": 8}),
        (ResponseCode.REJECTED, "unknown lease", {"lease_id": 12345}),
    ],
)
def test_detach_rejects(
    driver: Hsm[DriverModel], code: ResponseCode, text: str, fields: dict[str, Any]
) -> None:
    lease_id = attach(driver)
    (response,) = sends(driver.dispatch(detach_request(lease_id, **fields)))
    assert response == ShmDetachResponse(correlation_id=9, code=code, error_message=text)


def test_shutdown_request_token_and_drain(driver: Hsm[DriverModel]) -> None:
    attach(driver)
    bad = ShmDriverShutdownRequest(correlation_id=1, reason=ShutdownReason.ADMIN, token="nope")
    assert driver.dispatch(bad) == []
    assert driver.model.counters["shutdown_request.rejected"] == 1
    good = ShmDriverShutdownRequest(
        correlation_id=1, reason=ShutdownReason.ADMIN, token="s3cret", error_message="bye"
    )
    effects = driver.dispatch(good)
    assert driver.path == ("Driver", "Running", "Draining")
    assert [type(m) for m in sends(effects)] == [ShmPoolAnnounce]
    assert ArmShutdown(2_000_000_000) in effects
    assert driver.dispatch(good) == []  # a second request while draining is ignored
    (response,) = sends(
        driver.dispatch(attach_request(correlation_id=3, client_id=9, role=Role.CONSUMER))
    )
    assert response.error_message == "driver draining"
    effects = driver.dispatch(ShutdownTimerFired(2_000_000_000))
    assert sends(effects) == [
        ShmDriverShutdown(
            timestamp_ns=2_000_000_000, reason=ShutdownReason.ADMIN, error_message="bye"
        )
    ]
    assert EnterStopped(cleanup_shm=False) in effects
    assert driver.state == "Stopped"
    assert driver.dispatch(LeaseCheckTimerFired(10**12)) == []


def test_shutdown_request_ignored_without_configured_token(tmp_path: Path) -> None:
    hsm = new_driver_hsm(
        DriverModel(small_config(tmp_path), now_ns=0, pid=1, hugepages_capable=False)
    )
    hsm.dispatch(DriverStarted())
    request = ShmDriverShutdownRequest(correlation_id=1, reason=ShutdownReason.ADMIN, token="")
    assert hsm.dispatch(request) == []
    assert hsm.state == "Serving"


def test_lease_end_cools_down_its_node_id_and_frees_consumer_streams(
    driver: Hsm[DriverModel],
) -> None:
    """§3.3 cooldown and §12 release, through the driver's end of a consumer lease."""
    model = driver.model
    lease_id = attach(driver, role=Role.CONSUMER)
    record = model.leases.get(lease_id)
    assert record is not None
    hello = ConsumerHello(
        stream_id=10000,
        consumer_id=7,
        supports_shm=Bool.TRUE,
        supports_progress=Bool.FALSE,
        mode=Mode.STREAM,
        max_rate_hz=0,
        expected_layout_version=1,
        descriptor_stream_id=1,
        control_stream_id=1,
        descriptor_channel="aeron:ipc",
        control_channel="aeron:ipc",
    )
    driver.dispatch(hello)
    assert model.consumer_streams.assigned(7) == (31000, 32000)
    model.now_ns = 10
    driver.dispatch(detach_request(lease_id, role=Role.CONSUMER))
    # Released with the revoke on the wire, the node id into its cooldown.
    assert model.consumer_streams.assigned(7) == (None, None)
    assert not model.node_ids.is_available(record.node_id, 10)  # cooling down (1 s)
    assert model.node_ids.is_available(record.node_id, 10 + 1_000_000_000)


def test_hello_invalid_request_is_declined_and_non_consumers_are_ignored(
    driver: Hsm[DriverModel],
) -> None:
    """§12 steps 4-5: no consumer lease -> nothing; invalid part -> all declined."""
    attach(driver)  # client 7 holds a PRODUCER lease
    invalid = ConsumerHello(
        stream_id=10000,
        consumer_id=7,
        supports_shm=Bool.TRUE,
        supports_progress=Bool.FALSE,
        mode=Mode.STREAM,
        max_rate_hz=0,
        expected_layout_version=1,
        descriptor_stream_id=0,  # channel without an id: invalid
        control_stream_id=0,
        descriptor_channel="aeron:ipc",
        control_channel="",
    )
    assert sends(driver.dispatch(invalid)) == []
    attach(driver, client_id=8, role=Role.CONSUMER)
    (config,) = sends(driver.dispatch(replace(invalid, consumer_id=8)))
    assert isinstance(config, ConsumerConfig)
    assert (config.descriptor_stream_id, config.descriptor_channel) == (0, "")
    assert (config.control_stream_id, config.control_channel) == (0, "")
    assert driver.model.consumer_streams.assigned(8) == (None, None)


def test_producer_attach_held_during_the_bump_is_refused_once_draining(
    driver: Hsm[DriverModel],
) -> None:
    lease_id = attach(driver)
    driver.dispatch(detach_request(lease_id))
    assert driver.dispatch(attach_request(correlation_id=11, client_id=8)) == []  # held
    driver.dispatch(
        ShmDriverShutdownRequest(correlation_id=1, reason=ShutdownReason.ADMIN, token="s3cret")
    )
    new = EpochInfo(epoch=101, header_nslots=8, header_uri="h", pools=INFO.pools, hugepages=False)
    effects = driver.dispatch(EpochProvisioned(stream_id=10000, info=new))
    announce, detached, refused = sends(effects)
    assert isinstance(announce, ShmPoolAnnounce)
    assert detached == ShmDetachResponse(correlation_id=9, code=ResponseCode.OK)
    assert isinstance(refused, ShmAttachResponse)
    assert (refused.correlation_id, refused.code, refused.error_message) == (
        11,
        ResponseCode.REJECTED,
        "driver draining",
    )
    assert not [e for e in effects if isinstance(e, TellStream)]


def test_reply_of_a_failed_stream_actor_is_ignored(driver: Hsm[DriverModel]) -> None:
    """A StreamReady that the failed actor sent for an attach already answered is stale."""
    (tell,) = driver.dispatch(attach_request(correlation_id=5))
    assert isinstance(tell, TellStream)
    pending = tell.command.attach  # type: ignore[union-attr]
    effects = driver.dispatch(
        ChildFailed(kind=ChildKind.STREAM, key=10000, urn="urn:old", detail="RuntimeError()")
    )
    (failed,) = sends(effects)
    assert (failed.correlation_id, failed.code) == (5, ResponseCode.INTERNAL_ERROR)
    assert any(isinstance(e, SpawnStream) for e in effects)
    stale = StreamReady(stream_id=10000, info=INFO, attach=pending)
    assert driver.dispatch(stale) == []
    assert driver.model.leases.get(pending.lease_id) is None
    assert driver.model.node_ids.active == frozenset()


def test_draining_without_provisioned_streams_announces_nothing(driver: Hsm[DriverModel]) -> None:
    """A-8: the draining announce covers provisioned streams only (never epoch 0)."""
    effects = driver.dispatch(
        ShmDriverShutdownRequest(correlation_id=1, reason=ShutdownReason.ADMIN, token="s3cret")
    )
    assert sends(effects) == []
    assert driver.path == ("Driver", "Running", "Draining")


def test_a_stopped_driver_has_the_epochs_it_will_never_announce_removed(
    driver: Hsm[DriverModel],
) -> None:
    tell = driver.dispatch(attach_request(correlation_id=5))[0]
    assert isinstance(tell, TellStream)
    assert isinstance(tell.command, ProducerAttach)
    driver.dispatch(ShutdownRequested(ShutdownReason.NORMAL, "", skip_drain=True))
    assert driver.state == "Stopped"
    pending = tell.command.attach
    ready = StreamReady(stream_id=10000, info=INFO, attach=pending)
    assert driver.dispatch(ready) == [TellStream(10000, DiscardEpoch(INFO.epoch))]
    bumped = EpochProvisioned(stream_id=10000, info=INFO)
    assert driver.dispatch(bumped) == [TellStream(10000, DiscardEpoch(INFO.epoch))]


def test_draining_refuses_every_attach_by_its_own_row_before_any_other_check(
    driver: Hsm[DriverModel],
) -> None:
    driver.dispatch(ShutdownRequested(ShutdownReason.NORMAL, "", skip_drain=False))
    assert driver.path == ("Driver", "Running", "Draining")
    for fields in ({}, {"role": 9}, {"client_id": 0}, {"stream_id": 424242}):
        (response,) = sends(driver.dispatch(attach_request(correlation_id=3, **fields)))
        assert isinstance(response, ShmAttachResponse)
        assert (response.code, response.error_message) == (
            ResponseCode.REJECTED,
            "driver draining",
        )
