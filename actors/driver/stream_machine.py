"""The Stream HSM: one stream's lifecycle, one machine per stream, run on the DriverActor's thread.

The machine is the one owner of what a stream is doing: its current epoch, its producer, the
attaches waiting for an epoch, and what waits for the new epoch after a producer's end. Its
rows decide what an attach, a lease's end, a provisioning outcome or a StreamActor failure
means in each state, and return effects; the driver performs them (``DriverModel.run_stream``)
and the StreamActor does the provisioning I/O it is asked for (``Provision``), in the order
asked. Rules (driver-behaviour.md §3 step 1, §6; A-6):

* a producer attach always provisions exactly one new epoch;
* a consumer attach provisions only while the stream has no epoch and none is being made;
  otherwise it is granted from the current epoch, or, if an epoch is being made, right after
  that attach's answer, from that epoch (as a driver that provisions in its loop would);
* losing the producer (detach, expiry, revoke) and a supervised restart provision a new epoch;
  meanwhile requests wait (``Settling``) and are replayed, and detaches answered, once the new
  epoch is announced (or, if provisioning fails, the old one is announced again);
* a failed provisioning leaves the previous epoch and URIs untouched.

States (flat, so that status shows ``Stream.<state>``)::

    Unclaimed --attach--> Provisioning --outcome, nothing left--> Ready | ProducerAttached
    Ready --producer attach--> Provisioning        ProducerAttached --producer lost--> Settling
    Settling --new epoch (or failure)--> Ready     any --StreamActor failed--> (per row)

A consumer attach in Ready or ProducerAttached is granted at once from the current epoch;
the DriverActor does that without a dispatch (``Stream.grants_at_once``: the attach fast
path), which is exactly what those states' attach row decides.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from actors.driver.commands import (
    EpochProvisioned,
    EpochProvisionFailed,
    PendingAttach,
    ProvisionFailed,
    StreamReady,
)
from actors.runtime.hsm import (
    HANDLED,
    Hsm,
    HsmModel,
    Machine,
    Outcome,
    State,
    Transition,
    effect_check,
)
from messages.control import Role, ShmAttachRequest

if TYPE_CHECKING:
    from collections.abc import Callable

    from actors.driver.commands import EpochInfo
    from tensorpool_config.model import Profile

logger = logging.getLogger(__name__)

UNCLAIMED: Final = "Unclaimed"
PROVISIONING: Final = "Provisioning"
READY: Final = "Ready"
PRODUCER_ATTACHED: Final = "ProducerAttached"
SETTLING: Final = "Settling"
TEXT_ACTOR_FAILED: Final = "stream actor failed: "

# --------------------------------------------------------------------------------------------
# Events the driver dispatches besides the attach itself (``PendingAttach``), the request it
# defers (``ShmAttachRequest``) and the StreamActor's replies (``StreamReady``,
# ``ProvisionFailed``, ``EpochProvisioned``, ``EpochProvisionFailed``).


@dataclass(frozen=True, slots=True)
class ProducerLost:
    """The producer's lease ended (its revoke is out); a detach that ended it waits for the
    new epoch's announce before its answer."""

    lease_id: int
    detach_correlation_id: int | None = None


@dataclass(frozen=True, slots=True)
class ActorFailed:
    """The stream's StreamActor raised: what it had in hand is lost; a new one is started."""

    detail: str


# --------------------------------------------------------------------------------------------
# Effects


@dataclass(frozen=True, slots=True)
class Provision:
    """Ask the StreamActor for a new epoch, for ``cause`` (an attach, the producer's end, or
    a restart)."""

    cause: PendingAttach | ProducerLost | ActorFailed


@dataclass(frozen=True, slots=True)
class Grant:
    """Grant ``attach`` on ``info``; ``new_epoch`` when the epoch was provisioned for it."""

    attach: PendingAttach
    info: EpochInfo
    new_epoch: bool


@dataclass(frozen=True, slots=True)
class FailAttach:
    """Answer ``attach`` INTERNAL_ERROR (``failed to provision SHM: <detail>``)."""

    attach: PendingAttach
    detail: str


@dataclass(frozen=True, slots=True)
class Announce:
    """Announce the current epoch; ``new_epoch``: it was just provisioned (count, report)."""

    new_epoch: bool


@dataclass(frozen=True, slots=True)
class AnswerDetach:
    """Answer OK the detach that ended the producer (after the announce)."""

    correlation_id: int


@dataclass(frozen=True, slots=True)
class Replay:
    """Handle a request deferred while settling, now that the new epoch is out."""

    request: ShmAttachRequest


@dataclass(frozen=True, slots=True)
class Respawn:
    """Start a new StreamActor holding the current epoch (supervised restart)."""


@dataclass(frozen=True, slots=True)
class RevokeProducer:
    """End the producer's lease (REVOKED): a restarted stream bumps through its loss."""

    lease_id: int


@dataclass(frozen=True, slots=True)
class Forget:
    """A dynamic stream whose creating attach failed: forget it and stop its actor."""


type StreamEffect = (
    Provision
    | Grant
    | FailAttach
    | Announce
    | AnswerDetach
    | Replay
    | Respawn
    | RevokeProducer
    | Forget
)
stream_effect: Final[Callable[[object], StreamEffect]] = effect_check(
    StreamEffect, "Stream HSM effect"
)


# --------------------------------------------------------------------------------------------
# State data


@dataclass(frozen=True, slots=True)
class InFlight:
    """An attach waiting for an epoch; ``provisioning``: the StreamActor was asked for one."""

    attach: PendingAttach
    provisioning: bool


class StreamModel(HsmModel):
    """One stream (driver-behaviour.md §1) and the state data of its lifecycle."""

    __slots__ = (
        "deferred",
        "detach_replies",
        "dynamic",
        "in_flight",
        "info",
        "name",
        "pending_producer",
        "producer_lease_id",
        "profile",
        "stream_id",
    )

    def __init__(
        self, *, stream_id: int, name: str | None, profile: Profile, dynamic: bool
    ) -> None:
        super().__init__()
        self.stream_id = stream_id
        self.name = name
        self.profile = profile
        self.dynamic = dynamic
        self.info: EpochInfo | None = None
        self.producer_lease_id: int | None = None
        # Attaches waiting for an epoch, in arrival order (Provisioning).
        self.in_flight: deque[InFlight] = deque()
        self.pending_producer: int | None = None  # lease id of a producer attach in flight
        # Settling: requests held until the new epoch is out, and detaches to answer then.
        self.deferred: list[ShmAttachRequest] = []
        self.detach_replies: list[int] = []


def _enqueue(m: StreamModel, attach: PendingAttach) -> Outcome:
    """The attach waits for an epoch: a producer's own, or (a consumer) the next one out."""
    if attach.role == Role.PRODUCER:
        m.pending_producer = attach.lease_id
        provisioning = True
    else:  # a first epoch, unless one is already being made
        provisioning = m.info is None and not any(i.provisioning for i in m.in_flight)
    m.in_flight.append(InFlight(attach, provisioning))
    if provisioning:
        m.emit(Provision(attach))
    return Transition(PROVISIONING)


def _attach_provisioned(m: StreamModel, attach: PendingAttach) -> Outcome:
    """Ready / ProducerAttached: a consumer is served from the current epoch (the fast path
    does the same without a dispatch); a producer gets a new epoch (A-6)."""
    if attach.role == Role.CONSUMER:
        assert m.info is not None  # provisioned states
        m.emit(Grant(attach, m.info, new_epoch=False))
        return HANDLED
    return _enqueue(m, attach)


def _attach_in_flight(m: StreamModel, attach: PendingAttach) -> Outcome:
    _enqueue(m, attach)
    return HANDLED


def _first_provisioning(m: StreamModel) -> InFlight | None:
    return next((i for i in m.in_flight if i.provisioning), None)


def _take_answered(m: StreamModel, attach: PendingAttach) -> bool:
    """Take ``attach`` out if it is the provisioning the StreamActor answers now (replies come
    in the order asked); False for a reply of a failed actor, answered already."""
    first = _first_provisioning(m)
    if first is None or first.attach.lease_id != attach.lease_id:
        return False
    m.in_flight.remove(first)
    if m.pending_producer == attach.lease_id:
        m.pending_producer = None
    return True


def _serve_waiting(m: StreamModel) -> Outcome:
    """Grant the consumers waiting before the next provisioning from the current epoch; with
    no epoch and none being made, the first of them asks for one. Leave Provisioning once
    nothing waits."""
    in_flight = m.in_flight
    while in_flight and not in_flight[0].provisioning:
        if m.info is None:
            if _first_provisioning(m) is None:
                waiting = in_flight.popleft()
                in_flight.appendleft(InFlight(waiting.attach, provisioning=True))
                m.emit(Provision(waiting.attach))
            break
        m.emit(Grant(in_flight.popleft().attach, m.info, new_epoch=False))
    if in_flight:
        return HANDLED
    return _at_rest(m)


def _at_rest(m: StreamModel) -> Outcome:
    if m.info is None:
        return Transition(UNCLAIMED)
    return Transition(READY if m.producer_lease_id is None else PRODUCER_ATTACHED)


def _on_ready(m: StreamModel, ev: StreamReady) -> Outcome:
    attach = ev.attach
    if not _take_answered(m, attach):
        return HANDLED
    m.info = ev.info
    if attach.role == Role.PRODUCER:
        m.producer_lease_id = attach.lease_id
    m.emit(Grant(attach, ev.info, new_epoch=True))
    return _serve_waiting(m)


def _on_failed(m: StreamModel, ev: ProvisionFailed) -> Outcome:
    if not _take_answered(m, ev.attach):
        return HANDLED
    m.emit(FailAttach(ev.attach, ev.detail))
    outcome = _serve_waiting(m)
    if m.dynamic and m.info is None and not m.in_flight:
        m.emit(Forget())
    return outcome


def _stale(_m: StreamModel, _ev: object) -> Outcome:
    """A reply to a provisioning nobody waits for (its actor failed and it was answered)."""
    return HANDLED


def _producer_lost(m: StreamModel, ev: ProducerLost) -> Outcome:
    m.producer_lease_id = None
    if ev.detach_correlation_id is not None:
        m.detach_replies.append(ev.detach_correlation_id)
    m.emit(Provision(ev))
    return Transition(SETTLING)


def _defer(m: StreamModel, req: ShmAttachRequest) -> Outcome:
    """Settling: answered once the new epoch is out, as a single-threaded driver would (its
    bump happens before this request); a consumer answered now would get the retiring epoch."""
    m.deferred.append(req)
    return HANDLED


def _settle(m: StreamModel) -> Outcome:
    for correlation_id in m.detach_replies:
        m.emit(AnswerDetach(correlation_id))
    for request in m.deferred:
        m.emit(Replay(request))
    m.detach_replies = []
    m.deferred = []
    return _at_rest(m)


def _settled(m: StreamModel, ev: EpochProvisioned) -> Outcome:
    m.info = ev.info
    m.emit(Announce(new_epoch=True))
    return _settle(m)


def _settle_failed(m: StreamModel, _ev: EpochProvisionFailed) -> Outcome:
    """The old epoch stays, announced again at once (announces were skipped while
    settling); a detach still answers OK (the lease is gone)."""
    m.emit(Announce(new_epoch=False))
    return _settle(m)


def _epoch_out_of_turn(m: StreamModel, ev: EpochProvisioned) -> Outcome:
    """A new epoch after settling was over (a failed actor's last reply): it is current."""
    m.info = ev.info
    m.emit(Announce(new_epoch=True))
    return HANDLED


def _epoch_failed_out_of_turn(m: StreamModel, _ev: EpochProvisionFailed) -> Outcome:
    m.emit(Announce(new_epoch=False))
    return HANDLED


def _actor_failed(m: StreamModel, ev: ActorFailed) -> Outcome:
    """Fail what the dead actor had in hand (lease id order), then restart the stream so that
    it bumps its epoch exactly once: through the producer's revoke if it has one."""
    failed = sorted(m.in_flight, key=lambda i: i.attach.lease_id)
    m.in_flight.clear()
    m.pending_producer = None
    for item in failed:
        m.emit(FailAttach(item.attach, TEXT_ACTOR_FAILED + ev.detail))
    if m.info is None:
        m.emit(Forget() if m.dynamic and failed else Respawn())
        return Transition(UNCLAIMED)
    m.emit(Respawn())
    if m.producer_lease_id is not None:
        m.emit(RevokeProducer(m.producer_lease_id))  # its end dispatches ProducerLost here
        return Transition(PRODUCER_ATTACHED)
    m.emit(Provision(ev))
    return Transition(SETTLING)


STREAM_MACHINE: Final = Machine[StreamModel](
    "Stream",
    states={
        "Stream": State(initial=UNCLAIMED),
        UNCLAIMED: State(parent="Stream"),
        PROVISIONING: State(parent="Stream"),
        READY: State(parent="Stream"),
        PRODUCER_ATTACHED: State(parent="Stream"),
        SETTLING: State(parent="Stream"),
    },
    handlers={
        (UNCLAIMED, PendingAttach): _enqueue,
        (READY, PendingAttach): _attach_provisioned,
        (PRODUCER_ATTACHED, PendingAttach): _attach_provisioned,
        (PROVISIONING, PendingAttach): _attach_in_flight,
        (PROVISIONING, StreamReady): _on_ready,
        (PROVISIONING, ProvisionFailed): _on_failed,
        ("Stream", StreamReady): _stale,
        ("Stream", ProvisionFailed): _stale,
        (PRODUCER_ATTACHED, ProducerLost): _producer_lost,
        (SETTLING, ShmAttachRequest): _defer,
        (SETTLING, EpochProvisioned): _settled,
        (SETTLING, EpochProvisionFailed): _settle_failed,
        ("Stream", EpochProvisioned): _epoch_out_of_turn,
        ("Stream", EpochProvisionFailed): _epoch_failed_out_of_turn,
        ("Stream", ActorFailed): _actor_failed,
    },
)

_GRANTS_AT_ONCE: Final = frozenset({READY, PRODUCER_ATTACHED})


def _unhandled(path: tuple[str, ...], event: object) -> None:
    logger.error("stream: event %r not expected in %s; ignored", event, ".".join(path))


class Stream:
    """One running Stream HSM and the read-only views the driver takes of it; the machine
    is their only writer."""

    __slots__ = ("_hsm", "model")

    def __init__(
        self, *, stream_id: int, name: str | None, profile: Profile, dynamic: bool
    ) -> None:
        self.model = StreamModel(stream_id=stream_id, name=name, profile=profile, dynamic=dynamic)
        self._hsm = Hsm(STREAM_MACHINE, self.model, on_unhandled=_unhandled)
        self._hsm.start()

    def __repr__(self) -> str:
        return f"Stream({self.model.stream_id}, {self._hsm.state})"

    def dispatch(self, event: object) -> list[StreamEffect]:
        return [stream_effect(effect) for effect in self._hsm.dispatch(event)]

    @property
    def state(self) -> str:
        return self._hsm.state

    @property
    def status_state(self) -> str:
        """The HSM path, as status reports it (``Stream.Ready``)."""
        return ".".join(self._hsm.path)

    @property
    def grants_at_once(self) -> bool:
        """A consumer attach is granted from the current epoch with nothing to wait for."""
        return self._hsm.state in _GRANTS_AT_ONCE

    @property
    def settling(self) -> bool:
        return self._hsm.state == SETTLING

    @property
    def announceable(self) -> bool:
        """Provisioned and not between a producer's end and its new epoch: announced then,
        the old epoch would name no producer while the producer's revoke may not be out yet.
        The new epoch's announce (or, if provisioning fails, the old one's) follows."""
        return self.model.info is not None and self._hsm.state != SETTLING

    # The views the attach checks take (``attach_policy.StreamView``) and status.

    @property
    def stream_id(self) -> int:
        return self.model.stream_id

    @property
    def name(self) -> str | None:
        return self.model.name

    @property
    def profile(self) -> Profile:
        return self.model.profile

    @property
    def profile_name(self) -> str:
        return self.model.profile.name

    @property
    def dynamic(self) -> bool:
        return self.model.dynamic

    @property
    def info(self) -> EpochInfo | None:
        return self.model.info

    @property
    def epoch(self) -> int:
        info = self.model.info
        return 0 if info is None else info.epoch

    @property
    def hugepages(self) -> bool:
        info = self.model.info
        return False if info is None else info.hugepages

    @property
    def producer_lease_id(self) -> int | None:
        return self.model.producer_lease_id

    @property
    def pending_producer(self) -> int | None:
        """The lease id of the producer attach in flight, whose answer comes first."""
        return self.model.pending_producer

    @property
    def producer_busy(self) -> bool:
        """An active producer, one being attached, or the previous one's bump in flight."""
        model = self.model
        return (
            model.producer_lease_id is not None
            or model.pending_producer is not None
            or self._hsm.state == SETTLING
        )
