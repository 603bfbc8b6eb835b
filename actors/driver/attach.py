"""The attach path of the driver, top to bottom (driver-behaviour.md §3, §4; A-5, A-6, A-7).

``on_attach``: hold the request behind a pending attach that must be answered first, or
defer it while the stream's epoch bump is in flight; run the pure checks
(``attach_policy.decide_attach``); reserve the node id and lease id. A consumer of a
provisioned stream with nothing in flight is granted at once from the driver's mirror of the
stream (no StreamActor round trip); otherwise the attach is pending and the stream is asked
for an epoch, and ``on_stream_ready`` grants it. A grant sends the OK response, then the
announce, then starts the LeaseActor. ``on_provision_failed`` answers INTERNAL_ERROR and
releases everything the attach had reserved. Rejects are answered here, with the policy's
texts; the model only holds the state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from actors.driver.attach_policy import (
    TEXT_DRAINING,
    TEXT_NODE_ID_ALLOCATION,
    TEXT_PROVISION_PREFIX,
    TEXT_UNSUPPORTED_VERSION,
    AttachContext,
    AttachPlan,
    Reject,
    decide_attach,
)
from actors.driver.commands import GrantLease, PendingAttach
from actors.driver.effects import ForgetStream, SpawnStream, StartLease
from actors.driver.lease_table import LeaseRecord
from actors.driver.model import StreamEntry
from actors.driver.replies import attach_ok
from actors.runtime.hsm import HANDLED, Outcome
from messages.control import ResponseCode, Role, ShmAttachRequest, ShmAttachResponse
from messages.events import (
    COUNTER_ATTACH_OK,
    COUNTER_ATTACH_REJECTED,
    COUNTER_ATTACH_REJECTED_REASON,
    COUNTER_EPOCH_BUMPS,
    COUNTER_PROVISION_FAILED,
    EVENT_ATTACH,
    EVENT_ATTACH_REJECTED,
    EVENT_EPOCH_BUMP,
)

if TYPE_CHECKING:
    from actors.driver.commands import EpochInfo, ProvisionFailed, StreamReady
    from actors.driver.model import DriverModel
    from messages.events import AttachVersionUnsupported


def attach_context(m: DriverModel) -> AttachContext:
    return AttachContext(
        config=m.config,
        clients_in_use=m.clients_in_use,
        producer_pending=m.pending.producer_streams,
        streams=m.streams,
        dynamic_ids=m.dynamic_ids,
        node_ids=m.node_ids,
        hugepages_capable=m.hugepages_capable,
    )


def on_attach(m: DriverModel, req: ShmAttachRequest) -> Outcome:
    blocking = m.pending.blocking(req)
    if blocking is not None:
        # An attach still being provisioned holds this client id, the node id asked for
        # or the stream's producer slot. A single-threaded driver would have granted it
        # before reading this request, so this one (often the same request retried) is
        # answered after that OK, never before it.
        m.pending.hold(blocking, req)
        return HANDLED
    entry = m.streams.get(req.stream_id)
    if entry is not None and entry.settling:
        # The previous producer's epoch bump is in flight: answer once it is done, as a
        # single-threaded driver would have (its bump happens before this request). That holds
        # for consumers too: answered now, they would get the epoch about to be retired.
        entry.defer(req)
        return HANDLED
    decision = decide_attach(req, attach_context(m), m.now_ns)
    if isinstance(decision, Reject):
        reject_attach(m, req.correlation_id, decision.code, decision.text)
        return HANDLED
    _start_attach(m, req, decision)
    return HANDLED


def _start_attach(m: DriverModel, req: ShmAttachRequest, plan: AttachPlan) -> None:
    if plan.desired_node_id is not None:
        node_id: int | None = plan.desired_node_id
        m.node_ids.reserve(plan.desired_node_id, m.now_ns)
    else:
        node_id = m.node_ids.allocate(m.now_ns)
    if node_id is None:
        reject_attach(m, req.correlation_id, ResponseCode.INTERNAL_ERROR, TEXT_NODE_ID_ALLOCATION)
        return
    lease_id = m.lease_ids.next()
    if plan.create_dynamic:
        m.dynamic_ids.take(plan.stream_id)
        profile = m.config.profiles[plan.profile]
        m.streams[plan.stream_id] = StreamEntry(
            stream_id=plan.stream_id, name=None, profile=profile, dynamic=True
        )
        m.emit(SpawnStream(stream_id=plan.stream_id, profile=profile, info=None))
    entry = m.streams[plan.stream_id]
    attach = PendingAttach(
        correlation_id=req.correlation_id,
        lease_id=lease_id,
        node_id=node_id,
        client_id=req.client_id,
        role=plan.role,
        stream_id=plan.stream_id,
    )
    if (
        plan.role == Role.CONSUMER
        and entry.info is not None
        and not m.pending.any_for(entry.stream_id)
        and not entry.settling
    ):
        # Nothing is in flight to the StreamActor that could change what it would answer
        # (it serves a consumer of a provisioned stream from the same EpochInfo).
        _grant(m, entry, attach, entry.info)
        return
    m.pending.add(attach)
    m.ask_stream(attach)


def _release_pending(m: DriverModel, attach: PendingAttach) -> StreamEntry | None:
    """Forget the pending attach; the requests held behind it run after this handler's
    answer to it (``post`` queues them behind the current event)."""
    for request in m.pending.release(attach):
        m.post(request)
    return m.streams.get(attach.stream_id)


def on_stream_ready(m: DriverModel, ev: StreamReady) -> Outcome:
    attach = ev.attach
    if attach.lease_id not in m.pending:
        return HANDLED  # answered already (its stream failed and was restarted)
    settling = m.streams.get(attach.stream_id)
    if settling is not None and settling.settling and attach.role == Role.CONSUMER:
        # The producer ended after this consumer was asked for: granted now, it would get the
        # epoch about to be retired, announced with no producer while the producer's revoke
        # may not be out yet. Ask the stream again once the new epoch is provisioned (the
        # attach keeps its reservations meanwhile).
        settling.defer(attach)
        return HANDLED
    entry = _release_pending(m, attach)
    assert entry is not None  # a stream with pending attaches is never forgotten
    info = ev.info
    entry.info = info
    if ev.bumped:
        m.count(COUNTER_EPOCH_BUMPS)
        m.event(EVENT_EPOCH_BUMP, stream_id=entry.stream_id, epoch=info.epoch)
    _grant(m, entry, attach, info)
    return HANDLED


def _grant(m: DriverModel, entry: StreamEntry, attach: PendingAttach, info: EpochInfo) -> None:
    """The lease exists from here: OK response, announce, then its LeaseActor and timer."""
    expiry_ns = m.now_ns + m.ttl_ns
    m.leases.add(
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
    if attach.role == Role.PRODUCER:
        entry.producer_lease_id = attach.lease_id
    m.arm_lease_check()  # before the response: whoever sees it may move the clock
    m.send(attach_ok(attach, info, expiry_ns))
    m.count(COUNTER_ATTACH_OK)
    m.event(
        EVENT_ATTACH,
        lease_id=attach.lease_id,
        stream_id=attach.stream_id,
        client_id=attach.client_id,
        role=attach.role.name,
        node_id=attach.node_id,
        epoch=info.epoch,
    )
    m.announce(entry, report=True)
    m.emit(
        StartLease(
            lease_id=attach.lease_id,
            stream_id=attach.stream_id,
            client_id=attach.client_id,
            role=attach.role,
            grant=GrantLease(now_ns=m.now_ns),
        )
    )


def fail_pending(m: DriverModel, attach: PendingAttach, detail: str) -> None:
    """Answer a pending attach INTERNAL_ERROR and undo its reservations."""
    entry = _release_pending(m, attach)
    m.node_ids.unreserve(attach.node_id)
    m.count(COUNTER_PROVISION_FAILED)
    reject_attach(m,
        attach.correlation_id, ResponseCode.INTERNAL_ERROR, TEXT_PROVISION_PREFIX + detail
    )
    if (
        entry is not None
        and entry.dynamic
        and entry.info is None
        and not m.pending.any_for(entry.stream_id)
        and not m.leases.of_stream(entry.stream_id)
    ):
        del m.streams[entry.stream_id]
        m.emit(ForgetStream(entry.stream_id))


def on_provision_failed(m: DriverModel, ev: ProvisionFailed) -> Outcome:
    if ev.attach.lease_id in m.pending:
        fail_pending(m, ev.attach, ev.detail)
    return HANDLED


def on_attach_draining(m: DriverModel, req: ShmAttachRequest) -> Outcome:
    """Check 0 of §3: a draining driver refuses every attach, before any other check."""
    reject_attach(m, req.correlation_id, ResponseCode.REJECTED, TEXT_DRAINING)
    return HANDLED


def on_version_unsupported(m: DriverModel, ev: AttachVersionUnsupported) -> Outcome:
    reject_attach(m, ev.correlation_id, ResponseCode.UNSUPPORTED, TEXT_UNSUPPORTED_VERSION)
    return HANDLED


def reject_attach(m: DriverModel, correlation_id: int, code: ResponseCode, text: str) -> None:
    m.send(ShmAttachResponse(correlation_id=correlation_id, code=code, error_message=text))
    m.count(f"{COUNTER_ATTACH_REJECTED}.{code.name}")
    # Reasons are the spec's fixed texts, except a provisioning failure's detail (paths,
    # errno text): counted under its fixed prefix so the set of counters stays bounded.
    reason = TEXT_PROVISION_PREFIX.rstrip(": ") if text.startswith(TEXT_PROVISION_PREFIX) else text
    m.count(f"{COUNTER_ATTACH_REJECTED_REASON}.{reason}")
    kind = f"attach:{code.name}:{reason}"
    m.log.log(logging.INFO, kind, "attach %d rejected: %s %s", correlation_id, code.name, text)
    m.event(EVENT_ATTACH_REJECTED, correlation_id=correlation_id, code=code.name, error=text)
