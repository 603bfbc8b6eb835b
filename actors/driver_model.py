"""The state the Driver HSM works on, and the small helpers its handlers share.

Everything here is plain data owned by the DriverActor's thread: the lease table and
deadlines, the id allocators, the mirror of every stream's provisioned state, pending attaches,
leases whose end is in flight, counters. Helpers record effects; they never perform I/O.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from actors.attach_policy import LAYOUT_VERSION, TEXT_PROVISION_PREFIX
from actors.commands import (
    ConsumerAttach,
    EndLease,
    PendingAttach,
    ProducerAttach,
    ProducerLeaseLost,
)
from actors.consumer_streams import ConsumerStreams
from actors.driver_effects import Emit, Send, TellLease, TellStream
from actors.hsm import HsmModel
from actors.ids import LeaseIdAllocator, NodeIdAllocator
from actors.lease_table import LeaseRecord, LeaseTable
from actors.rate_limited_log import RateLimitedLog
from actors.stream_ids import RangeAllocator
from actors.supervision import RestartIntensity
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
    COUNTER_ATTACH_REJECTED,
    COUNTER_ATTACH_REJECTED_REASON,
    COUNTER_DETACH_OK,
    COUNTER_REVOKE,
    EVENT_ANNOUNCE,
    EVENT_ATTACH_REJECTED,
    EVENT_REVOKE,
    DriverEvent,
    EventValue,
)
from messages.wire import ClockDomain, ShmPoolAnnounce

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from actors.commands import EpochInfo, PendingAttach
    from messages.sbe import SbeMessage
    from tensorpool_config.model import DriverConfig, Profile

HEADER_SLOT_BYTES: Final = 256
NS_PER_MS: Final = 1_000_000


@dataclass(slots=True, kw_only=True)
class StreamEntry:
    """The driver's mirror of one stream (driver-behaviour.md §1), updated from its replies."""

    stream_id: int
    name: str | None
    profile: Profile
    dynamic: bool
    info: EpochInfo | None = None
    producer_lease_id: int | None = None
    pending_producer: int | None = None  # lease id of a producer attach being provisioned
    settling: bool = False  # producer lost, new epoch not provisioned yet
    detach_replies: list[int] = field(default_factory=list)  # correlation ids waiting on it
    # requests held meanwhile, and consumer attaches (PendingAttach) to ask for again
    deferred: list[object] = field(default_factory=list)
    pending: set[int] = field(default_factory=set)  # lease ids of pending attaches

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
        return (
            self.producer_lease_id is not None or self.pending_producer is not None or self.settling
        )

    @property
    def state(self) -> str:
        if self.info is None:
            return "Stream.Unclaimed"
        return "Stream.ProducerAttached" if self.producer_lease_id is not None else "Stream.Ready"


@dataclass(slots=True, kw_only=True)
class EndingLease:
    """A lease the driver ended; its LeaseActor has not confirmed the revoke yet."""

    record: LeaseRecord
    reason: LeaseRevokeReason
    detach_correlation_id: int | None


class _ClientsInUse:
    """``client_id in clients``: active leases and pending attaches, without building a set."""

    __slots__ = ("_leases", "_pending")

    def __init__(self, leases: LeaseTable, pending: Mapping[int, int]) -> None:
        self._leases, self._pending = leases, pending

    def __contains__(self, client_id: object) -> bool:
        if not isinstance(client_id, int):
            return False
        return client_id in self._pending or self._leases.by_client(client_id) is not None


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
        self.pending: dict[int, PendingAttach] = {}
        # What pending attaches hold, to the pending lease id: client ids and node ids.
        self.pending_clients: dict[int, int] = {}
        self.pending_nodes: dict[int, int] = {}
        self.clients_in_use = _ClientsInUse(self.leases, self.pending_clients)
        self.ending: dict[int, EndingLease] = {}
        # What an ending lease still holds on the wire until its revoke is out, and the
        # requests that would observe it, held until then (lease id -> requests; a pending
        # attach's lease id holds the requests that must be answered after it).
        self.ending_clients: dict[int, int] = {}  # client id -> lease id
        self.ending_nodes: dict[int, int] = {}  # node id -> lease id
        self.held: dict[int, list[object]] = {}
        self.counters: Counter[str] = Counter()
        self.intensity = intensity or RestartIntensity()
        self.draining = False
        # Per-request outcomes worth a log line (rejects, ignored requests) go through this:
        # a flood of bad requests must not become a flood of log lines.
        self.log = RateLimitedLog(logging.getLogger("actors.driver"), clock=lambda: self.now_ns)
        # How far the gateway has read the control stream (IntakeCaughtUp); None: no gateway.
        self.intake_ns: int | None = None
        self.stopped = False
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
        self.counters[name] += amount

    def send(self, message: SbeMessage) -> None:
        self.emit(Send(message))

    def event(self, event_kind: str, /, **fields: EventValue) -> None:
        self.emit(Emit(DriverEvent(event_kind, self.now_ns, MappingProxyType(fields))))

    def counters_snapshot(self) -> MappingProxyType[str, int]:
        return MappingProxyType(dict(self.counters))

    def provisioned_streams(self) -> Iterator[StreamEntry]:
        return (entry for entry in self.streams.values() if entry.info is not None)

    def announceable_streams(self) -> Iterator[StreamEntry]:
        """Provisioned streams not between a producer's end and their new epoch: announced
        then, the old epoch would name no producer while the producer's revoke may not be out
        yet. The new epoch's announce (or, if provisioning fails, the old one's) follows."""
        return (entry for entry in self.provisioned_streams() if not entry.settling)

    # ---------------------------------------------------------------- messages

    def reject_attach(self, correlation_id: int, code: ResponseCode, text: str) -> None:
        self.send(ShmAttachResponse(correlation_id=correlation_id, code=code, error_message=text))
        self.count(f"{COUNTER_ATTACH_REJECTED}.{code.name}")
        # Reasons are the spec's fixed texts, except a provisioning failure's detail (paths,
        # errno text): counted under its fixed prefix so the set of counters stays bounded.
        reason = (
            TEXT_PROVISION_PREFIX.rstrip(": ") if text.startswith(TEXT_PROVISION_PREFIX) else text
        )
        self.count(f"{COUNTER_ATTACH_REJECTED_REASON}.{reason}")
        kind = f"attach:{code.name}:{reason}"
        self.log.log(
            logging.INFO,
            kind,
            "attach %d rejected: %s %s",
            correlation_id,
            code.name,
            text,
        )
        self.event(EVENT_ATTACH_REJECTED, correlation_id=correlation_id, code=code.name, error=text)

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
            ShmPoolAnnounce(
                stream_id=entry.stream_id,
                producer_id=self.producer_client_id(entry),
                epoch=info.epoch,
                announce_timestamp_ns=self.now_ns,
                announce_clock_domain=ClockDomain.MONOTONIC,
                layout_version=LAYOUT_VERSION,
                header_nslots=info.header_nslots,
                header_slot_bytes=HEADER_SLOT_BYTES,
                payload_pools=info.pools,
                header_region_uri=info.header_uri,
            )
        )
        self.count(COUNTER_ANNOUNCES)
        if report:
            self.event(EVENT_ANNOUNCE, stream_id=entry.stream_id, epoch=info.epoch)

    # ---------------------------------------------------------------- ending leases

    def end_lease(
        self,
        record: LeaseRecord,
        reason: LeaseRevokeReason,
        detach_correlation_id: int | None,
        *,
        tell_actor: bool = True,
    ) -> None:
        """The driver decides the lease ends: it leaves the table (no keepalive, hello or
        expiry applies to it any more), and a producer's stream starts settling.

        The LeaseActor publishes the revoke and reports ``LeaseEnded``; the rest of the chain
        (producer epoch bump, announce, detach response) continues in ``finish_lease``. Until
        then the lease is still alive on the wire, so its client id, node id and per-consumer
        streams stay taken, and a request that would see them free is held (``hold_for``).
        """
        self.leases.remove(record.lease_id)
        entry = self.streams.get(record.stream_id)
        if (
            record.role == Role.PRODUCER
            and entry is not None
            and entry.producer_lease_id == record.lease_id
        ):
            entry.producer_lease_id = None
            entry.settling = True
        self.ending[record.lease_id] = EndingLease(
            record=record, reason=reason, detach_correlation_id=detach_correlation_id
        )
        self.ending_clients[record.client_id] = record.lease_id
        self.ending_nodes[record.node_id] = record.lease_id
        if tell_actor:
            self.emit(TellLease(record.lease_id, EndLease(reason=reason, now_ns=self.now_ns)))

    def ask_stream(self, attach: PendingAttach) -> None:
        """Tell the attach's StreamActor to serve it (a producer provisions a fresh epoch),
        with the epochs the stream's leases still reference, which its epoch GC must keep."""
        command = ProducerAttach if attach.role == Role.PRODUCER else ConsumerAttach
        referenced = self.leases.epochs_of_stream(attach.stream_id)
        self.emit(TellStream(attach.stream_id, command(attach, self.now_ns, referenced)))

    def hold_for(self, lease_id: int, request: object) -> None:
        """Handle ``request`` once ``lease_id`` is settled on the wire: the revoke of an
        ending lease is out, or the answer to a pending attach is."""
        self.held.setdefault(lease_id, []).append(request)

    def finish_lease(self, lease_id: int) -> None:
        """The revoke of ``lease_id`` is on the outbox: release what the lease held, replay
        the requests held for it, and continue the chain of §6/§7."""
        ending = self.ending.pop(lease_id, None)
        if ending is None:
            return
        record, reason = ending.record, ending.reason
        if self.ending_clients.get(record.client_id) == lease_id:
            del self.ending_clients[record.client_id]
        if self.ending_nodes.get(record.node_id) == lease_id:
            del self.ending_nodes[record.node_id]
        self.node_ids.release(record.node_id, self.now_ns)
        if record.role == Role.CONSUMER:
            self.consumer_streams.release(record.client_id)
        for request in self.held.pop(lease_id, ()):
            self.post(request)
        self.count(f"{COUNTER_REVOKE}.{reason.name}")
        self.event(
            EVENT_REVOKE,
            lease_id=record.lease_id,
            stream_id=record.stream_id,
            client_id=record.client_id,
            role=record.role.name,
            reason=reason.name,
        )
        entry = self.streams.get(record.stream_id)
        if record.role == Role.PRODUCER and entry is not None and entry.settling:
            if ending.detach_correlation_id is not None:
                entry.detach_replies.append(ending.detach_correlation_id)
            self.emit(
                TellStream(
                    record.stream_id,
                    ProducerLeaseLost(
                        record.lease_id,
                        self.now_ns,
                        self.leases.epochs_of_stream(record.stream_id),
                    ),
                )
            )
            return
        if ending.detach_correlation_id is not None:
            self.answer_detach(ending.detach_correlation_id)

    def answer_detach(self, correlation_id: int) -> None:
        self.send(ShmDetachResponse(correlation_id=correlation_id, code=ResponseCode.OK))
        self.count(COUNTER_DETACH_OK)
