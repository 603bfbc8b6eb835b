"""The DriverActor: hosts the Driver HSM, performs its effects, supervises the children.

All decisions are in the HSMs it hosts (``machine.py`` and its handler modules, and one
Stream HSM per stream, ``stream_machine.py``, run inside the Driver HSM's handlers); this
class is the shell that reads the clock, starts and tells children, and writes to the outbox
and the event sink. ``on_receive`` never lets an exception out: a bug in handling one message is
logged and counted and the driver carries on (``actors/driver/supervision.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any, assert_never

import pykka

from actors.driver.commands import ChildFailed, ChildKind, CleanupEpoch, StopChildren, UseTimer
from actors.driver.effects import (
    ArmLeaseCheck,
    ArmShutdown,
    Emit,
    EndLeaseActors,
    EnterStopped,
    ForgetStream,
    Send,
    SendAll,
    SpawnStream,
    StartLease,
    TellStream,
    WantIntake,
    driver_effect,
)
from actors.driver.machine import DriverStarted, new_driver_hsm
from actors.driver.model import DriverModel
from actors.driver.supervision import RestartIntensity, SupervisorLink
from actors.lease.actor import LeaseActor
from actors.runtime.dispatcher import PooledActor
from actors.runtime.timer import DeadlineTimer
from actors.stream.actor import StreamActor
from messages.control import Role
from messages.events import (
    ArmShutdownTimer,
    DriverStatus,
    LeaseCheckTimerFired,
    LeaseStatus,
    NullEventSink,
    ShutdownTimerFired,
    StatusQuery,
    StreamStatus,
)

if TYPE_CHECKING:
    from actors.runtime.clock import Clock
    from actors.runtime.intake import IntakeHorizon
    from actors.stream.actor import Provisioner
    from messages.events import EventSink, Outbox
    from tensorpool_config.model import DriverConfig

logger = logging.getLogger(__name__)

COUNTER_DRIVER_ERRORS = "driver.handler_errors"
COUNTER_STALE_CHILD = "supervision.stale_reports"
_STOP_TIMEOUT_S = 30.0


class DriverActor(PooledActor):
    """The supervisor and single owner of the driver's state.

    A pooled actor with a one-actor scheduler of its own: a thread of its own when embedded
    alone, or the control gateway's poll thread in the driver process
    (``start_driver_system(driver_host=gateway.host)``), so a request is read, decided and
    answered on one thread.
    """

    def __init__(
        self,
        config: DriverConfig,
        *,
        outbox: Outbox,
        clock: Clock,
        events: EventSink | None = None,
        provisioner: Provisioner | None = None,
        intake: IntakeHorizon | None = None,
        lease_actor_class: type[LeaseActor] = LeaseActor,
        hugepages_capable: bool = False,
        stopped: threading.Event | None = None,
        lease_id_seed: int | None = None,
        intensity: RestartIntensity | None = None,
        link: SupervisorLink | None = None,
    ) -> None:
        super().__init__()
        # The children's way back here; closed before this actor stops (supervision.py).
        self.link = link or SupervisorLink()
        self.link.bind(self.actor_ref)
        self._config = config
        self._outbox = outbox
        self._clock = clock
        self._events: EventSink = events or NullEventSink()
        self._provisioner = provisioner
        self._intake = intake
        self._lease_class = lease_actor_class
        self._hugepages = hugepages_capable
        self.stopped = stopped or threading.Event()
        self._model = DriverModel(
            config,
            now_ns=clock.now_ns(),
            pid=os.getpid(),
            hugepages_capable=hugepages_capable,
            lease_id_seed=lease_id_seed,
            intensity=intensity,
        )
        self._hsm = new_driver_hsm(self._model)
        self._streams: dict[int, pykka.ActorRef[Any]] = {}
        self._leases: dict[int, pykka.ActorRef[Any]] = {}
        self._timer: pykka.ActorRef[Any] | None = None
        self._lease_check: DeadlineTimer | None = None
        if intake is not None:
            self._model.observe_intake(intake.read_ns)

    # ------------------------------------------------------------------ lifecycle

    def on_start(self) -> None:
        self._lease_check = DeadlineTimer(self._clock, self.actor_ref, LeaseCheckTimerFired)
        gc_on_start = self._config.policies.epoch_gc_on_startup
        for stream in self._model.streams.values():
            self._spawn_stream(stream.stream_id, stream.profile, None, gc_on_start=gc_on_start)
        self._perform(self._hsm.dispatch(DriverStarted()))

    def on_stop(self) -> None:
        self._stop_children()  # a no-op after StopChildren (DriverSystem.stop)

    def _stop_children(self) -> None:
        """Close the link (a child's later reply is dropped, never told to a stopped actor),
        then stop every child and wait: each finishes the message in hand first."""
        self.link.close()
        if self._lease_check is not None:
            self._lease_check.cancel()
        futures = [ref.stop(block=False) for ref in self._leases.values()]
        futures += [ref.stop(block=False) for ref in self._streams.values()]
        self._leases.clear()
        self._streams.clear()
        try:
            pykka.get_all(futures, timeout=_STOP_TIMEOUT_S)
        except pykka.Timeout:
            logger.warning("driver stop: some children did not stop in %s s", _STOP_TIMEOUT_S)

    def on_receive(self, message: Any) -> Any:
        try:
            return self._receive(message)
        except Exception:
            logger.exception("driver failed handling %r; continuing", message)
            self._model.count(COUNTER_DRIVER_ERRORS)
            self._perform_abandoned()
            return None

    def _perform_abandoned(self) -> None:
        """Carry out what the failed handler had already decided (e.g. a lease it removed from
        the table must still be ended and revoked), so the model and the world stay in step."""
        try:
            self._perform(self._hsm.take_abandoned())
        except Exception:
            logger.exception("driver failed performing the effects of a failed handler")

    def _receive(self, message: object) -> Any:
        if isinstance(message, StatusQuery):
            return self.status()
        if isinstance(message, UseTimer):
            self._timer = message.timer
            return None
        if isinstance(message, StopChildren):
            self._stop_children()
            return None
        if isinstance(message, ChildFailed) and not self._current_child(message):
            self._model.count(COUNTER_STALE_CHILD)
            return None
        if isinstance(message, LeaseCheckTimerFired) and self._intake is not None:
            self._observe_intake(self._intake)
        self._model.now_ns = self._clock.now_ns()
        self._perform(self._hsm.dispatch(message))
        return None

    def _observe_intake(self, intake: IntakeHorizon) -> None:
        """Read the gateway's horizon; it counts only if nothing it told is still queued here
        (read first, then look at the mailbox: everything told before the write is either in
        the mailbox or handled, and this thread is the only one that takes from it)."""
        read_ns = intake.read_ns
        if self.actor_inbox.empty():
            self._model.observe_intake(read_ns)

    def _current_child(self, failed: ChildFailed) -> bool:
        children = self._leases if failed.kind == ChildKind.LEASE else self._streams
        ref = children.get(failed.key)
        if ref is None or ref.actor_urn != failed.urn:
            return False
        if failed.kind == ChildKind.LEASE:
            del children[failed.key]
        return True

    # ------------------------------------------------------------------ effects

    def _perform(self, effects: list[object]) -> None:
        for effect in effects:
            try:
                self._perform_one(effect)
            except Exception:
                logger.exception("driver failed performing %r; continuing", effect)
                self._model.count(COUNTER_DRIVER_ERRORS)

    def _perform_one(self, effect: object) -> None:  # noqa: C901, PLR0912 - one case per effect
        effect = driver_effect(effect)
        match effect:
            case Send(message):
                self._outbox.send(message)
            case SendAll(batch):
                self._outbox.send_all(batch)
            case Emit(event):
                self._events.emit(event)
            case TellStream(stream_id, command):
                self._tell(self._streams.get(stream_id), command)
            case EndLeaseActors(ends):
                leases = self._leases
                for lease_id, end in ends:
                    ref = leases.pop(lease_id, None)
                    if ref is not None:  # None: the actor failed first (supervision ended it)
                        self._tell(ref, end)
            case ArmLeaseCheck(deadline_ns):
                if self._lease_check is not None:
                    self._lease_check.arm(deadline_ns)
            case WantIntake(ns):
                if self._intake is not None:
                    self._intake.want(ns)
            case SpawnStream():
                self._spawn_stream(effect.stream_id, effect.profile, effect.info)
            case ForgetStream(stream_id):
                ref = self._streams.pop(stream_id, None)
                if ref is not None:
                    ref.stop(block=False)
            case StartLease():
                ref = self._lease_class.start(
                    supervisor=self.link,
                    lease_id=effect.lease_id,
                    stream_id=effect.stream_id,
                    client_id=effect.client_id,
                    role=effect.role,
                )
                self._leases[effect.lease_id] = ref
                ref.tell(effect.grant)
            case ArmShutdown(deadline_ns):
                if self._timer is None:
                    logger.error("no timer to arm the shutdown timer with; stopping at once")
                    self.actor_ref.tell(ShutdownTimerFired(self._clock.now_ns()))
                else:
                    self._timer.tell(ArmShutdownTimer(deadline_ns))
            case EnterStopped(cleanup_shm):
                self._enter_stopped(cleanup_shm=cleanup_shm)
            case _:
                assert_never(effect)

    def _tell(self, ref: pykka.ActorRef[Any] | None, command: object) -> None:
        if ref is None:
            logger.error("no actor for %r", command)
            return
        try:
            ref.tell(command)
        except pykka.ActorDeadError:
            # The child died; its ChildFailed is on the way and supervision takes over.
            logger.warning("child %s is dead; %r dropped", ref, command)

    def _spawn_stream(
        self, stream_id: int, profile: Any, info: Any, *, gc_on_start: bool = False
    ) -> None:
        self._streams[stream_id] = StreamActor.start(
            supervisor=self.link,
            config=self._config,
            stream_id=stream_id,
            profile=profile,
            hugepages=self._hugepages,
            provisioner=self._provisioner,
            info=info,
            gc_on_start=gc_on_start,
        )

    def _enter_stopped(self, *, cleanup_shm: bool) -> None:
        # ShmDriverShutdown is out: nothing a child provisions from here on is announced.
        # Replies already in the mailbox reach the Stopped state, which discards their epochs.
        self.link.close()
        if cleanup_shm:
            futures = [ref.ask(CleanupEpoch(), block=False) for ref in self._streams.values()]
            try:
                pykka.get_all(futures, timeout=_STOP_TIMEOUT_S)
            except Exception:
                logger.exception("cleanup_shm_on_exit: some epochs were not removed")
        self.stopped.set()

    # ------------------------------------------------------------------ status

    def status(self) -> DriverStatus:
        """A snapshot of the driver's own state (never asks a child)."""
        m = self._model
        streams = tuple(
            StreamStatus(
                stream_id=s.stream_id,
                name=s.name,
                profile=s.profile_name,
                dynamic=s.dynamic,
                state=s.status_state,
                epoch=s.epoch,
                producer_lease_id=s.producer_lease_id,
                producer_client_id=m.producer_client_id(s) or None,
                consumer_lease_ids=tuple(
                    r.lease_id for r in m.leases.of_stream(s.stream_id) if r.role == Role.CONSUMER
                ),
                hugepages=s.hugepages,
                header_uri=None if s.info is None else s.info.header_uri,
                pool_uris=() if s.info is None else tuple(p.region_uri for p in s.info.pools),
            )
            for s in sorted(m.streams.values(), key=lambda s: s.stream_id)
        )
        leases = tuple(
            LeaseStatus(
                lease_id=r.lease_id,
                client_id=r.client_id,
                role=r.role,
                stream_id=r.stream_id,
                node_id=r.node_id,
                epoch=r.epoch,
                state="Lease.Active",
                expiry_ns=r.expiry_ns,
            )
            for r in m.leases
        )
        return DriverStatus(
            instance_id=self._config.driver.instance_id,
            state=".".join(self._hsm.path),
            pid=m.pid,
            started_ns=m.started_ns,
            now_ns=self._clock.now_ns(),
            streams=streams,
            leases=leases,
            counters=m.counters.snapshot(),
        )
