"""The state the Driver HSM works on, and the operations its handlers share.

Everything here is plain data owned by the DriverActor's thread: the lease table and
deadlines, the id allocators, every stream's HSM (``stream_machine.py``, the one owner of
its lifecycle), the reservations of pending attaches, the intake horizon, counters. The
operations record effects; they never perform I/O. ``run_stream`` carries out what a Stream
HSM decided: the grants, failures, announces and answers it asks for.
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, assert_never

from actors.driver.attach_policy import TEXT_PROVISION_PREFIX
from actors.driver.commands import (
    ConsumerAttach,
    EndLease,
    GrantLease,
    PendingAttach,
    ProducerAttach,
    ProducerLeaseLost,
    Reprovision,
)
from actors.driver.consumer_streams import ConsumerStreams
from actors.driver.effects import (
    ArmLeaseCheck,
    Emit,
    EndLeaseActors,
    ForgetStream,
    Send,
    SendAll,
    SpawnStream,
    StartLease,
    TellStream,
    WantIntake,
)
from actors.driver.ids import LeaseIdAllocator, NodeIdAllocator
from actors.driver.lease_table import LeaseRecord, LeaseTable
from actors.driver.pending import PendingAttaches
from actors.driver.replies import attach_ok, pool_announce
from actors.driver.stream_ids import RangeAllocator
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
    StreamEffect,
)
from actors.driver.supervision import RestartIntensity
from actors.lease.machine import revoke_message
from actors.runtime.counters import Counters
from actors.runtime.hsm import HsmModel
from actors.runtime.rate_limited_log import RateLimitedLog
from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmAttachResponse,
    ShmDetachResponse,
    ShutdownReason,
)
from messages.events import (
    COUNTER_ANNOUNCES,
    COUNTER_ATTACH_OK,
    COUNTER_ATTACH_REJECTED,
    COUNTER_ATTACH_REJECTED_REASON,
    COUNTER_DETACH_OK,
    COUNTER_EPOCH_BUMPS,
    COUNTER_PROVISION_FAILED,
    COUNTER_REVOKE,
    EVENT_ANNOUNCE,
    EVENT_ATTACH,
    EVENT_ATTACH_REJECTED,
    EVENT_EPOCH_BUMP,
    EVENT_REVOKE,
    DriverEvent,
    EventValue,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from actors.driver.commands import EpochInfo, ProvisionCommand
    from messages.sbe import SbeMessage
    from tensorpool_config.model import DriverConfig

NS_PER_MS: Final = 1_000_000
# The lease check runs at most once per this (see DriverModel.arm_lease_check).
LEASE_CHECK_MIN_GAP_NS: Final = 1_000_000


class _ClientsInUse:
    """``client_id in clients``: active leases and pending attaches, without building a set."""

    __slots__ = ("_leases", "_pending")

    def __init__(self, leases: LeaseTable, pending: PendingAttaches) -> None:
        self._leases, self._pending = leases, pending

    def __contains__(self, client_id: object) -> bool:
        if not isinstance(client_id, int):
            return False
        pending = self._pending.holds_client(client_id)
        return pending or self._leases.by_client(client_id) is not None


class DriverModel(HsmModel):
    """Mutable state of the Driver HSM."""

    def __init__(
        self,
        config: DriverConfig,
        *,
        now_ns: int,
        pid: int,
        hugepages_capable: bool,
        lease_id_seed: int | None = None,
        intensity: RestartIntensity | None = None,
    ) -> None:
        super().__init__()
        policies = config.policies
        self.config = config
        self.pid = pid
        self.started_ns = now_ns
        self.now_ns = now_ns
        self.hugepages_capable = hugepages_capable
        self.ttl_ns = (
            policies.lease_keepalive_interval_ms * NS_PER_MS * policies.lease_expiry_grace_intervals
        )
        self.leases = LeaseTable()
        self.lease_ids = LeaseIdAllocator(lease_id_seed)
        self.node_ids = NodeIdAllocator(policies.node_id_reuse_cooldown_ms * NS_PER_MS)
        self.streams: dict[int, Stream] = {}
        self.dynamic_ids = RangeAllocator(config.driver.stream_id_range, self.streams.__contains__)
        self.consumer_streams = ConsumerStreams(
            config.driver.descriptor_stream_id_range, config.driver.control_stream_id_range
        )
        self.pending = PendingAttaches()
        self.clients_in_use = _ClientsInUse(self.leases, self.pending)
        self.counters = Counters()
        self.intensity = intensity or RestartIntensity()
        # Per-request outcomes worth a log line (rejects, ignored requests) go through this:
        # a flood of bad requests must not become a flood of log lines.
        self.log = RateLimitedLog(
            logging.getLogger("actors.driver.actor"), clock=lambda: self.now_ns
        )
        # How far the gateway has read the control stream *and* the driver has handled what it
        # read (actors/runtime/intake.py); None: no gateway, expiry follows the clock alone.
        self.intake_ns: int | None = None
        self.lease_check_armed_ns: int | None = None  # the lease-check timer's deadline
        self.lease_checked_ns: int | None = None  # when the lease check last ran
        self.skip_drain = False
        self.shutdown_reason = ShutdownReason.NORMAL
        self.shutdown_message = ""
        for spec in config.streams.values():
            self.streams[spec.stream_id] = Stream(
                stream_id=spec.stream_id,
                name=spec.name,
                profile=config.profiles[spec.profile],
                dynamic=False,
            )

    # ---------------------------------------------------------------- recording helpers

    def count(self, name: str, amount: int = 1) -> None:
        self.counters.inc(name, amount)

    def send(self, message: SbeMessage) -> None:
        self.emit(Send(message))

    def observe_intake(self, read_ns: int) -> None:
        """The gateway's horizon, proven handled (mailbox empty, or ``IntakeCaughtUp``)."""
        self.intake_ns = read_ns if self.intake_ns is None else max(self.intake_ns, read_ns)

    def want_intake(self, ns: int) -> None:
        self.emit(WantIntake(ns))

    def arm_lease_check(self, *, not_before_ns: int | None = None) -> None:
        """Arm the lease-check timer for the earliest deadline (a lease expires once
        ``now > expiry_ns``), unless an earlier one is armed already.

        Never sooner than LEASE_CHECK_MIN_GAP_NS after the last check: with leases ending
        thousands of times a second (deadlines 100 us apart at 10,000 leases), one check per
        deadline would cost a timer firing and a driver turn per lease; this way one check ends
        every lease due in the gap, in one batch, at most that much later.
        """
        expiry_ns = self.leases.next_deadline()
        if expiry_ns is None:
            return
        deadline_ns = expiry_ns + 1
        if not_before_ns is not None:
            deadline_ns = max(deadline_ns, not_before_ns)
        if self.lease_checked_ns is not None:
            deadline_ns = max(deadline_ns, self.lease_checked_ns + LEASE_CHECK_MIN_GAP_NS)
        armed = self.lease_check_armed_ns
        if armed is None or deadline_ns < armed:
            self.lease_check_armed_ns = deadline_ns
            self.emit(ArmLeaseCheck(deadline_ns))

    def event(self, event_kind: str, /, **fields: EventValue) -> None:
        self.emit(Emit(DriverEvent(event_kind, self.now_ns, MappingProxyType(fields))))

    def provisioned_streams(self) -> Iterator[Stream]:
        return (stream for stream in self.streams.values() if stream.info is not None)

    def announceable_streams(self) -> Iterator[Stream]:
        return (stream for stream in self.streams.values() if stream.announceable)

    # ---------------------------------------------------------------- messages

    def producer_client_id(self, stream: Stream) -> int:
        lease_id = stream.producer_lease_id
        if lease_id is None:
            return 0
        record = self.leases.get(lease_id)
        return 0 if record is None else record.client_id

    def announce(self, stream: Stream, *, report: bool) -> None:
        """Send the stream's ShmPoolAnnounce (never for epoch 0, A-8)."""
        info = stream.info
        if info is None:
            return
        self.send(
            pool_announce(stream.stream_id, self.producer_client_id(stream), info, self.now_ns)
        )
        self.count(COUNTER_ANNOUNCES)
        if report:
            self.event(EVENT_ANNOUNCE, stream_id=stream.stream_id, epoch=info.epoch)

    def answer_detach(self, correlation_id: int) -> None:
        self.send(ShmDetachResponse(correlation_id=correlation_id, code=ResponseCode.OK))
        self.count(COUNTER_DETACH_OK)

    def reject_attach(self, correlation_id: int, code: ResponseCode, text: str) -> None:
        self.send(ShmAttachResponse(correlation_id=correlation_id, code=code, error_message=text))
        self.count(f"{COUNTER_ATTACH_REJECTED}.{code.name}")
        # Reasons are the spec's fixed texts, except a provisioning failure's detail (paths,
        # errno text): counted under its fixed prefix so the set of counters stays bounded.
        prefix = TEXT_PROVISION_PREFIX
        reason = prefix.rstrip(": ") if text.startswith(prefix) else text
        self.count(f"{COUNTER_ATTACH_REJECTED_REASON}.{reason}")
        kind = f"attach:{code.name}:{reason}"
        self.log.log(
            logging.INFO, kind, "attach %d rejected: %s %s", correlation_id, code.name, text
        )
        self.event(EVENT_ATTACH_REJECTED, correlation_id=correlation_id, code=code.name, error=text)

    # ---------------------------------------------------------------- what a Stream HSM decided

    def run_stream(self, stream: Stream, effects: list[StreamEffect]) -> None:  # noqa: C901, PLR0912 - one case per effect
        """Carry out the Stream HSM's decisions, in order (pure: they become driver effects)."""
        stream_id = stream.stream_id
        for effect in effects:
            match effect:
                case Provision(cause):
                    self.emit(TellStream(stream_id, self._provision_command(stream_id, cause)))
                case Grant(attach, info, new_epoch):
                    self._release_pending(attach)
                    if new_epoch:
                        self._count_bump(stream, info)
                    self.grant(stream, attach, info)
                case FailAttach(attach, detail):
                    self._release_pending(attach)
                    self.node_ids.unreserve(attach.node_id)
                    self.count(COUNTER_PROVISION_FAILED)
                    self.reject_attach(
                        attach.correlation_id,
                        ResponseCode.INTERNAL_ERROR,
                        TEXT_PROVISION_PREFIX + detail,
                    )
                case Announce(new_epoch):
                    if new_epoch and stream.info is not None:
                        self._count_bump(stream, stream.info)
                    self.announce(stream, report=new_epoch)
                case AnswerDetach(correlation_id):
                    self.answer_detach(correlation_id)
                case Replay(request):
                    self.post(request)
                case Respawn():
                    self.emit(
                        SpawnStream(
                            stream_id=stream.stream_id, profile=stream.profile, info=stream.info
                        )
                    )
                case RevokeProducer(lease_id):
                    record = self.leases.get(lease_id)
                    if record is not None:
                        self.end_leases((record,), LeaseRevokeReason.REVOKED)
                    else:
                        self.run_stream(stream, stream.dispatch(ProducerLost(lease_id)))
                case Forget():
                    del self.streams[stream.stream_id]
                    self.emit(ForgetStream(stream.stream_id))
                case _:
                    assert_never(effect)

    def _provision_command(
        self, stream_id: int, cause: PendingAttach | ProducerLost | ActorFailed
    ) -> ProvisionCommand:
        """The StreamActor's command for a provisioning, with the epochs the stream's leases
        still reference (its epoch GC must keep them)."""
        now, referenced = self.now_ns, self.leases.epochs_of_stream(stream_id)
        match cause:
            case PendingAttach(role=Role.PRODUCER):
                return ProducerAttach(cause, now, referenced)
            case PendingAttach():
                return ConsumerAttach(cause, now, referenced)
            case ProducerLost(lease_id):
                return ProducerLeaseLost(lease_id, now, referenced)
            case ActorFailed():
                return Reprovision(now, referenced)
            case _:
                assert_never(cause)

    def _release_pending(self, attach: PendingAttach) -> None:
        """Forget the pending attach; the requests held behind it run after the answer to it
        (``post`` queues them behind the current event)."""
        for request in self.pending.release(attach):
            self.post(request)

    def _count_bump(self, stream: Stream, info: EpochInfo) -> None:
        self.count(COUNTER_EPOCH_BUMPS)
        self.event(EVENT_EPOCH_BUMP, stream_id=stream.stream_id, epoch=info.epoch)

    def grant(self, stream: Stream, attach: PendingAttach, info: EpochInfo) -> None:
        """The lease exists from here: OK response, announce, then its LeaseActor and timer."""
        expiry_ns = self.now_ns + self.ttl_ns
        self.leases.add(
            LeaseRecord(
                lease_id=attach.lease_id,
                client_id=attach.client_id,
                role=attach.role,
                stream_id=attach.stream_id,
                node_id=attach.node_id,
                epoch=info.epoch,
                expiry_ns=expiry_ns,
            )
        )
        self.arm_lease_check()  # before the response: whoever sees it may move the clock
        self.send(attach_ok(attach, info, expiry_ns))
        self.count(COUNTER_ATTACH_OK)
        self.event(
            EVENT_ATTACH,
            lease_id=attach.lease_id,
            stream_id=attach.stream_id,
            client_id=attach.client_id,
            role=attach.role.name,
            node_id=attach.node_id,
            epoch=info.epoch,
        )
        self.announce(stream, report=True)
        self.emit(
            StartLease(
                lease_id=attach.lease_id,
                stream_id=attach.stream_id,
                client_id=attach.client_id,
                role=attach.role,
                grant=GrantLease(now_ns=self.now_ns),
            )
        )

    # ---------------------------------------------------------------- ending leases

    def end_leases(
        self,
        records: Sequence[LeaseRecord],
        reason: LeaseRevokeReason,
        detach_correlation_id: int | None = None,
    ) -> None:
        """End leases the driver decided on: their revokes go on the wire first, in one batch."""
        self.finish_ending(
            records, reason, self.take_leases(records, reason), detach_correlation_id
        )

    def take_leases(
        self, records: Sequence[LeaseRecord], reason: LeaseRevokeReason
    ) -> tuple[SbeMessage, ...]:
        """Take leases out of the table (no keepalive, hello or expiry applies to them any
        more) and build their revokes; ``finish_ending`` must follow in the same step."""
        now = self.now_ns
        revokes: list[SbeMessage] = []
        for record in records:
            self.leases.remove(record.lease_id)
            revokes.append(
                revoke_message(
                    now_ns=now,
                    lease_id=record.lease_id,
                    stream_id=record.stream_id,
                    client_id=record.client_id,
                    role=record.role,
                    reason=reason,
                )
            )
        return tuple(revokes)

    def finish_ending(
        self,
        records: Sequence[LeaseRecord],
        reason: LeaseRevokeReason,
        revokes: tuple[SbeMessage, ...],
        detach_correlation_id: int | None = None,
    ) -> None:
        """The revokes are the first wire effect, so the wire shows them before anything that
        observes the leases gone: a client or node id taken again, the producer's new epoch,
        the detach response. Then what the leases held is released, their LeaseActors record
        the end, and a producer's stream starts settling: the StreamActor provisions the new
        epoch, announced (and a producer's detach answered) on ``EpochProvisioned``.
        """
        if not revokes:
            return
        now = self.now_ns
        self.emit(SendAll(revokes))
        end = EndLease(reason=reason, now_ns=now)
        self.emit(EndLeaseActors(tuple((record.lease_id, end) for record in records)))
        self.count(f"{COUNTER_REVOKE}.{reason.name}", len(records))
        for record in records:
            self.node_ids.release(record.node_id, now)
            self.event(
                EVENT_REVOKE,
                lease_id=record.lease_id,
                stream_id=record.stream_id,
                client_id=record.client_id,
                role=record.role.name,
                reason=reason.name,
            )
            if record.role == Role.CONSUMER:
                self.consumer_streams.release(record.client_id)
            stream = self.streams.get(record.stream_id)
            if stream is not None and stream.producer_lease_id == record.lease_id:
                lost = ProducerLost(record.lease_id, detach_correlation_id)
                self.run_stream(stream, stream.dispatch(lost))
            elif detach_correlation_id is not None:
                self.answer_detach(detach_correlation_id)
