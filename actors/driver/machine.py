"""The Driver HSM: ``Init -> Running{Serving, Draining} -> Stopped``.

``Running`` serves every request; ``Draining`` (a child of Running) differs only in that
attaches are refused (its own attach row: check 0 of §3), a second shutdown request is
ignored and so is the restart-intensity escalation; keepalives, detaches, expiry and
hellos keep working (A-35). Entering
Draining announces every provisioned stream once and arms the shutdown timer; the timer
publishes ``ShmDriverShutdown`` and enters Stopped, where everything is ignored
(driver-behaviour.md §10). No per-lease revokes are sent at shutdown.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Final

from actors.driver.attach import (
    on_attach,
    on_attach_draining,
    on_version_unsupported,
)
from actors.driver.children import on_child_failed
from actors.driver.commands import (
    ChildFailed,
    DiscardEpoch,
    EpochProvisioned,
    EpochProvisionFailed,
    IntensityExceeded,
    ProvisionFailed,
    StreamReady,
)
from actors.driver.consumer_streams import DECLINED, HelloRequest, HelloVerdict, classify
from actors.driver.effects import ArmShutdown, EnterStopped, TellStream
from actors.driver.leases import (
    on_detach,
    on_intake_caught_up,
    on_keepalive,
    on_keepalives,
    on_lease_check,
)
from actors.driver.model import NS_PER_MS, DriverModel
from actors.driver.stream_replies import on_epoch_provision_failed, on_stream_reply
from actors.runtime.hsm import HANDLED, Hsm, Machine, Outcome, State, Transition
from messages.control import (
    Role,
    ShmAttachRequest,
    ShmDetachRequest,
    ShmDriverShutdown,
    ShmDriverShutdownRequest,
    ShmLeaseKeepalive,
    ShutdownReason,
)
from messages.events import (
    COUNTER_HELLO_ANSWERED,
    COUNTER_SHUTDOWN_REQUEST_REJECTED,
    EVENT_DRAINING,
    EVENT_SHUTDOWN,
    AnnounceTimerFired,
    AttachVersionUnsupported,
    IntakeCaughtUp,
    Keepalives,
    LeaseCheckTimerFired,
    ShutdownRequested,
    ShutdownTimerFired,
)
from messages.wire import Bool, ConsumerConfig, ConsumerHello, Mode

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DriverStarted:
    """Init -> Running, dispatched by the actor once its children are up."""


def _started(_m: DriverModel, _ev: DriverStarted) -> Outcome:
    return Transition("Running")


def _on_announce_timer(m: DriverModel, ev: AnnounceTimerFired) -> Outcome:
    m.now_ns = ev.now_ns
    for stream in m.announceable_streams():
        m.announce(stream, report=False)
    return HANDLED


def on_hello(m: DriverModel, hello: ConsumerHello) -> Outcome:
    """§12: per-consumer descriptor/control streams."""
    req = HelloRequest(
        descriptor_channel=hello.descriptor_channel,
        descriptor_stream_id=hello.descriptor_stream_id,
        control_channel=hello.control_channel,
        control_stream_id=hello.control_stream_id,
    )
    verdict = classify(req)
    if verdict == HelloVerdict.NOTHING:
        return HANDLED
    record = m.leases.by_client(hello.consumer_id)
    if record is None or record.role != Role.CONSUMER or record.stream_id != hello.stream_id:
        return HANDLED
    answer = (
        DECLINED
        if verdict == HelloVerdict.INVALID
        else (m.consumer_streams.answer(hello.consumer_id, req))
    )
    m.send(
        ConsumerConfig(
            stream_id=hello.stream_id,
            consumer_id=hello.consumer_id,
            use_shm=Bool.TRUE,
            mode=Mode.STREAM,
            descriptor_stream_id=answer.descriptor_stream_id,
            control_stream_id=answer.control_stream_id,
            payload_fallback_uri="",
            descriptor_channel=answer.descriptor_channel,
            control_channel=answer.control_channel,
        )
    )
    m.count(COUNTER_HELLO_ANSWERED)
    return HANDLED


def _on_shutdown_request(m: DriverModel, req: ShmDriverShutdownRequest) -> Outcome:
    """§10: token-protected administrative shutdown (no response in any case)."""
    expected = m.config.policies.shutdown_token
    if not expected:
        m.count(f"{COUNTER_SHUTDOWN_REQUEST_REJECTED}.disabled")
        m.log.log(
            logging.INFO, "shutdown:disabled", "shutdown request ignored: no shutdown_token set"
        )
        return HANDLED
    if not hmac.compare_digest(req.token.encode(), expected.encode()):
        m.count(COUNTER_SHUTDOWN_REQUEST_REJECTED)
        m.log.log(logging.WARNING, "shutdown:token", "shutdown request ignored: wrong token")
        return HANDLED
    m.shutdown_reason = req.reason
    m.shutdown_message = req.error_message
    m.skip_drain = False
    return Transition("Draining")


def _on_shutdown_requested(m: DriverModel, ev: ShutdownRequested) -> Outcome:
    m.shutdown_reason = ev.reason
    m.shutdown_message = ev.error_message
    m.skip_drain = ev.skip_drain
    return Transition("Draining")


def _on_intensity_exceeded(m: DriverModel, ev: IntensityExceeded) -> Outcome:
    """Supervision escalates (``supervision.py``): a clean shutdown, ERROR, no drain."""
    return _on_shutdown_requested(
        m, ShutdownRequested(ShutdownReason.ERROR, ev.message, skip_drain=True)
    )


def _ignore(_m: DriverModel, _ev: object) -> Outcome:
    return HANDLED


def _draining_shutdown_requested(m: DriverModel, ev: ShutdownRequested) -> Outcome:
    """A local request while draining only shortens the drain (the first reason stays)."""
    if ev.skip_drain:
        m.post(ShutdownTimerFired(m.now_ns))
    return HANDLED


def _enter_draining(m: DriverModel) -> None:
    m.event(EVENT_DRAINING, reason=m.shutdown_reason.name, error_message=m.shutdown_message)
    for stream in m.announceable_streams():
        m.announce(stream, report=False)
    if m.skip_drain:
        m.post(ShutdownTimerFired(m.now_ns))
    else:
        m.emit(ArmShutdown(m.now_ns + m.config.policies.shutdown_timeout_ms * NS_PER_MS))


def _on_shutdown_timer(m: DriverModel, ev: ShutdownTimerFired) -> Outcome:
    m.now_ns = max(m.now_ns, ev.now_ns)
    return Transition("Stopped")


def _enter_stopped(m: DriverModel) -> None:
    m.send(
        ShmDriverShutdown(
            timestamp_ns=m.now_ns, reason=m.shutdown_reason, error_message=m.shutdown_message
        )
    )
    m.event(EVENT_SHUTDOWN, reason=m.shutdown_reason.name, error_message=m.shutdown_message)
    m.emit(EnterStopped(cleanup_shm=m.config.policies.cleanup_shm_on_exit))


def _discard_unannounced(m: DriverModel, ev: StreamReady | EpochProvisioned) -> Outcome:
    """A reply sent before the driver stopped: its new epoch will never be announced."""
    m.emit(TellStream(ev.stream_id, DiscardEpoch(ev.info.epoch)))
    return HANDLED


DRIVER_MACHINE: Final = Machine[DriverModel](
    "Driver",
    states={
        "Driver": State(initial="Init"),
        "Init": State(parent="Driver"),
        "Running": State(parent="Driver", initial="Serving"),
        "Serving": State(parent="Running"),
        "Draining": State(parent="Running", entry=_enter_draining),
        "Stopped": State(parent="Driver", entry=_enter_stopped),
    },
    handlers={
        ("Init", DriverStarted): _started,
        ("Driver", IntakeCaughtUp): on_intake_caught_up,
        ("Running", ShmAttachRequest): on_attach,
        ("Running", AttachVersionUnsupported): on_version_unsupported,
        ("Running", StreamReady): on_stream_reply,
        ("Running", ProvisionFailed): on_stream_reply,
        ("Running", ShmLeaseKeepalive): on_keepalive,
        ("Running", Keepalives): on_keepalives,
        ("Running", ShmDetachRequest): on_detach,
        ("Running", LeaseCheckTimerFired): on_lease_check,
        ("Running", EpochProvisioned): on_stream_reply,
        ("Running", EpochProvisionFailed): on_epoch_provision_failed,
        ("Running", ChildFailed): on_child_failed,
        ("Running", AnnounceTimerFired): _on_announce_timer,
        ("Running", ConsumerHello): on_hello,
        ("Running", ShmDriverShutdownRequest): _on_shutdown_request,
        ("Running", ShutdownRequested): _on_shutdown_requested,
        ("Running", IntensityExceeded): _on_intensity_exceeded,
        ("Running", ShutdownTimerFired): _ignore,
        ("Draining", ShmAttachRequest): on_attach_draining,
        ("Draining", ShmDriverShutdownRequest): _ignore,
        ("Draining", IntensityExceeded): _ignore,
        ("Draining", ShutdownRequested): _draining_shutdown_requested,
        ("Draining", ShutdownTimerFired): _on_shutdown_timer,
        ("Stopped", StreamReady): _discard_unannounced,
        ("Stopped", EpochProvisioned): _discard_unannounced,
        ("Stopped", object): _ignore,
    },
)


def new_driver_hsm(model: DriverModel) -> Hsm[DriverModel]:
    """A Driver HSM over ``model``, started (in Init)."""
    hsm = Hsm(DRIVER_MACHINE, model)
    hsm.start()
    return hsm
