"""The state the Driver HSM works on, and the small helpers its handlers share.

Everything here is plain data owned by the DriverActor's thread: the lease table and
deadlines, the id allocators, the mirror of every stream's provisioned state, pending attaches,
the intake horizon, counters. Helpers record effects; they never perform I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from actors.driver.commands import (
    ConsumerAttach,
    EndLease,
    PendingAttach,
    ProducerAttach,
    ProducerLeaseLost,
)
from actors.driver.consumer_streams import ConsumerStreams
from actors.driver.effects import (
    ArmLeaseCheck,
    Emit,
    EndLeaseActors,
    Send,
    SendAll,
    TellStream,
    WantIntake,
)
from actors.driver.ids import LeaseIdAllocator, NodeIdAllocator
from actors.driver.lease_table import LeaseRecord, LeaseTable
from actors.driver.pending import PendingAttaches
from actors.driver.replies import pool_announce
from actors.driver.stream_ids import RangeAllocator
from actors.driver.supervision import RestartIntensity
from actors.lease.machine import revoke_message
from actors.runtime.counters import Counters
from actors.runtime.hsm import HsmModel
from actors.runtime.rate_limited_log import RateLimitedLog
from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmDetachResponse,
    ShutdownReason,
)
from messages.events import (
    COUNTER_ANNOUNCES,
    COUNTER_DETACH_OK,
    COUNTER_REVOKE,
    EVENT_ANNOUNCE,
    EVENT_REVOKE,
    DriverEvent,
    EventValue,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from actors.driver.commands import EpochInfo, PendingAttach
    from messages.sbe import SbeMessage
    from tensorpool_config.model import DriverConfig, Profile

NS_PER_MS: Final = 1_000_000
# The lease check runs at most once per this (see DriverModel.arm_lease_check).
LEASE_CHECK_MIN_GAP_NS: Final = 1_000_000


@dataclass(slots=True)
class Settling:
    """A stream between its producer's end and its new epoch: what waits for that epoch."""

    detach_replies: list[int] = field(default_factory=list)  # correlation ids to answer OK
    # requests held meanwhile, and consumer attaches (PendingAttach) to ask for again
    deferred: list[object] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class StreamEntry:
    """The driver's record of one stream (driver-behaviour.md §1): the one owner of who its
    producer is and of its lifecycle around a producer change; the StreamActor only
    provisions. The epoch is updated from the StreamActor's replies."""

    stream_id: int
    name: str | None
    profile: Profile
    dynamic: bool
    info: EpochInfo | None = None
    producer_lease_id: int | None = None
    # Present exactly while the new epoch after a producer's end (or a restart) is in flight.
    settling_for: Settling | None = None

    @property
    def settling(self) -> bool:
        return self.settling_for is not None

    def start_settling(self, detach_correlation_id: int | None = None) -> None:
        """The producer is gone (or the stream restarted): its new epoch is being made."""
        self.producer_lease_id = None
        if self.settling_for is None:
            self.settling_for = Settling()
        if detach_correlation_id is not None:
            self.settling_for.detach_replies.append(detach_correlation_id)

    def defer(self, request: object) -> None:
        """Handle ``request`` once the new epoch is out (only while settling)."""
        assert self.settling_for is not None
        self.settling_for.deferred.append(request)

    def finish_settling(self) -> Settling:
        """The new epoch is out (or failed): what waited for it, to answer and replay."""
        settling, self.settling_for = self.settling_for or Settling(), None
        return settling

    @property
    def profile_name(self) -> str:
        return self.profile.name

    @property
    def epoch(self) -> int:
        return 0 if self.info is None else self.info.epoch

    @property
    def hugepages(self) -> bool:
        return False if self.info is None else self.info.hugepages

    @property
    def producer_busy(self) -> bool:
        """An active producer, or the previous one's epoch bump still in flight (a pending
        producer attach is ``PendingAttaches.producer_streams``)."""
        return self.producer_lease_id is not None or self.settling

    @property
    def state(self) -> str:
        if self.info is None:
            return "Stream.Unclaimed"
        return "Stream.ProducerAttached" if self.producer_lease_id is not None else "Stream.Ready"


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
        self.streams: dict[int, StreamEntry] = {}
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
            self.streams[spec.stream_id] = StreamEntry(
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

    def provisioned_streams(self) -> Iterator[StreamEntry]:
        return (entry for entry in self.streams.values() if entry.info is not None)

    def announceable_streams(self) -> Iterator[StreamEntry]:
        """Provisioned streams not between a producer's end and their new epoch: announced
        then, the old epoch would name no producer while the producer's revoke may not be out
        yet. The new epoch's announce (or, if provisioning fails, the old one's) follows."""
        return (entry for entry in self.provisioned_streams() if not entry.settling)

    # ---------------------------------------------------------------- messages

    def producer_client_id(self, entry: StreamEntry) -> int:
        if entry.producer_lease_id is None:
            return 0
        record = self.leases.get(entry.producer_lease_id)
        return 0 if record is None else record.client_id

    def announce(self, entry: StreamEntry, *, report: bool) -> None:
        """Send the stream's ShmPoolAnnounce (never for epoch 0, A-8)."""
        info = entry.info
        if info is None:
            return
        self.send(
            pool_announce(entry.stream_id, self.producer_client_id(entry), info, self.now_ns)
        )
        self.count(COUNTER_ANNOUNCES)
        if report:
            self.event(EVENT_ANNOUNCE, stream_id=entry.stream_id, epoch=info.epoch)

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
            entry = self.streams.get(record.stream_id)
            if entry is not None and entry.producer_lease_id == record.lease_id:
                entry.start_settling(detach_correlation_id)
                self.emit(
                    TellStream(
                        record.stream_id,
                        ProducerLeaseLost(
                            record.lease_id, now, self.leases.epochs_of_stream(record.stream_id)
                        ),
                    )
                )
            elif detach_correlation_id is not None:
                self.answer_detach(detach_correlation_id)

    def ask_stream(self, attach: PendingAttach) -> None:
        """Tell the attach's StreamActor to serve it (a producer provisions a fresh epoch),
        with the epochs the stream's leases still reference, which its epoch GC must keep."""
        command = ProducerAttach if attach.role == Role.PRODUCER else ConsumerAttach
        referenced = self.leases.epochs_of_stream(attach.stream_id)
        self.emit(TellStream(attach.stream_id, command(attach, self.now_ns, referenced)))

    def answer_detach(self, correlation_id: int) -> None:
        self.send(ShmDetachResponse(correlation_id=correlation_id, code=ResponseCode.OK))
        self.count(COUNTER_DETACH_OK)
