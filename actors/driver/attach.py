"""The attach path of the driver, top to bottom (driver-behaviour.md §3, §4; A-5, A-6, A-7).

``on_attach``: hold the request behind a pending attach that must be answered first (its
client id, the node id asked for, or the stream's producer slot); let a settling stream
defer it (the Stream HSM's row); run the pure checks (``attach_policy.decide_attach``);
reserve the node id and lease id. A consumer of a stream whose HSM is Ready or
ProducerAttached is granted at once from its epoch (no StreamActor round trip, no dispatch:
what those states' row decides); otherwise the attach goes to the Stream HSM, which asks
its StreamActor for an epoch or queues it, and grants or fails it on the StreamActor's
reply (``stream_replies.py``). A grant sends the OK response, then
the announce, then starts the LeaseActor (``DriverModel.grant``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.driver.attach_policy import (
    TEXT_DRAINING,
    TEXT_NODE_ID_ALLOCATION,
    TEXT_UNSUPPORTED_VERSION,
    AttachContext,
    AttachPlan,
    Reject,
    decide_attach,
)
from actors.driver.commands import PendingAttach
from actors.driver.effects import SpawnStream
from actors.driver.stream_machine import Stream
from actors.runtime.hsm import HANDLED, Outcome
from messages.control import ResponseCode, Role, ShmAttachRequest

if TYPE_CHECKING:
    from actors.driver.model import DriverModel
    from messages.events import AttachVersionUnsupported


def attach_context(m: DriverModel) -> AttachContext:
    return AttachContext(
        config=m.config,
        clients_in_use=m.clients_in_use,
        streams=m.streams,
        dynamic_ids=m.dynamic_ids,
        node_ids=m.node_ids,
        hugepages_capable=m.hugepages_capable,
    )


def on_attach(m: DriverModel, req: ShmAttachRequest) -> Outcome:
    stream = m.streams.get(req.stream_id)
    blocking = m.pending.blocking(req, None if stream is None else stream.pending_producer)
    if blocking is not None:
        # An attach still being provisioned holds this client id, the node id asked for
        # or the stream's producer slot. A single-threaded driver would have granted it
        # before reading this request, so this one (often the same request retried) is
        # answered after that OK, never before it.
        m.pending.hold(blocking, req)
        return HANDLED
    if stream is not None and stream.settling:
        m.run_stream(stream, stream.dispatch(req))  # deferred until the new epoch is out
        return HANDLED
    decision = decide_attach(req, attach_context(m), m.now_ns)
    if isinstance(decision, Reject):
        m.reject_attach(req.correlation_id, decision.code, decision.text)
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
        m.reject_attach(req.correlation_id, ResponseCode.INTERNAL_ERROR, TEXT_NODE_ID_ALLOCATION)
        return
    lease_id = m.lease_ids.next()
    if plan.create_dynamic:
        m.dynamic_ids.take(plan.stream_id)
        profile = m.config.profiles[plan.profile]
        m.streams[plan.stream_id] = Stream(
            stream_id=plan.stream_id, name=None, profile=profile, dynamic=True
        )
        m.emit(SpawnStream(stream_id=plan.stream_id, profile=profile, info=None))
    stream = m.streams[plan.stream_id]
    attach = PendingAttach(
        correlation_id=req.correlation_id,
        lease_id=lease_id,
        node_id=node_id,
        client_id=req.client_id,
        role=plan.role,
        stream_id=plan.stream_id,
    )
    info = stream.info
    if plan.role == Role.CONSUMER and info is not None and stream.grants_at_once:
        m.grant(stream, attach, info)  # the fast path: the row of Ready / ProducerAttached
        return
    m.pending.add(attach)
    m.run_stream(stream, stream.dispatch(attach))


def on_attach_draining(m: DriverModel, req: ShmAttachRequest) -> Outcome:
    """Check 0 of §3: a draining driver refuses every attach, before any other check."""
    m.reject_attach(req.correlation_id, ResponseCode.REJECTED, TEXT_DRAINING)
    return HANDLED


def on_version_unsupported(m: DriverModel, ev: AttachVersionUnsupported) -> Outcome:
    m.reject_attach(ev.correlation_id, ResponseCode.UNSUPPORTED, TEXT_UNSUPPORTED_VERSION)
    return HANDLED
