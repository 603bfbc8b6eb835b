"""Driver HSM handler of ``ChildFailed``: the policy of ``supervision.py``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from actors.driver.commands import ChildKind, IntensityExceeded
from actors.driver.stream_machine import ActorFailed
from actors.runtime.hsm import HANDLED, Outcome
from messages.control import LeaseRevokeReason
from messages.events import COUNTER_CHILD_FAILED, EVENT_CHILD_FAILED

if TYPE_CHECKING:
    from actors.driver.commands import ChildFailed
    from actors.driver.model import DriverModel

logger = logging.getLogger(__name__)


def on_child_failed(m: DriverModel, ev: ChildFailed) -> Outcome:
    logger.error("%s actor %d (%s) failed: %s", ev.kind, ev.key, ev.urn, ev.detail)
    m.count(COUNTER_CHILD_FAILED)
    m.count(f"{COUNTER_CHILD_FAILED}.{ev.kind}")
    m.event(EVENT_CHILD_FAILED, kind=ev.kind, key=ev.key, detail=ev.detail)
    if ev.kind == ChildKind.LEASE:
        _lease_failed(m, ev.key)
    elif ev.kind == ChildKind.STREAM:
        _stream_failed(m, ev.key, ev.detail)
    if m.intensity.record(m.now_ns):  # Running shuts down; Draining ignores it
        window_s = m.intensity.window_ns / 1e9
        m.post(
            IntensityExceeded(
                f"{len(m.intensity)} child failures in {window_s:g} s; last: {ev.kind} "
                f"{ev.key}: {ev.detail}"
            )
        )
    return HANDLED


def _lease_failed(m: DriverModel, lease_id: int) -> None:
    """Revoke the lease (REVOKED) on the dead actor's behalf, unless it already ended."""
    record = m.leases.get(lease_id)
    if record is not None:
        m.end_leases((record,), LeaseRevokeReason.REVOKED)


def _stream_failed(m: DriverModel, stream_id: int, detail: str) -> None:
    """The Stream HSM fails what the dead actor had in hand and decides the restart."""
    stream = m.streams.get(stream_id)
    if stream is not None:
        m.run_stream(stream, stream.dispatch(ActorFailed(detail)))
