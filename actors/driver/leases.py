"""Driver HSM handlers of a lease's life after the attach (driver-behaviour.md §5-§7, A-3).

Keepalives and expiry are decided here, against the driver's deadlines. The lease check runs
when the earliest deadline passes (a timer the driver arms on its clock, ``ArmLeaseCheck``),
not on a tick. Ending a lease puts its ``ShmLeaseRevoked`` on the wire in the deciding step
(``DriverModel.end_leases``); a producer's end then goes to its Stream HSM, which asks the
StreamActor for the new epoch, announces it on ``EpochProvisioned`` and only then answers
the detach.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from actors.driver.attach_policy import TEXT_INVALID_ROLE
from actors.runtime.hsm import HANDLED, Outcome
from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmDetachRequest,
    ShmDetachResponse,
    ShmLeaseKeepalive,
)
from messages.events import (
    COUNTER_DETACH_REJECTED,
    COUNTER_EXPIRY_DEFERRED,
    COUNTER_KEEPALIVE_ACCEPTED,
    COUNTER_KEEPALIVE_IGNORED,
    EVENT_DETACH,
    IntakeCaughtUp,
    Keepalives,
    LeaseCheckTimerFired,
)

if TYPE_CHECKING:
    from actors.driver.lease_table import LeaseRecord
    from actors.driver.model import DriverModel


TEXT_UNKNOWN_LEASE = "unknown lease"
MAX_EXPIRY_DEFERRAL_NS = 10_000_000_000  # how far expiry may wait for the gateway's intake
# While a due lease waits for the gateway's intake, the lease check also re-runs this often (in
# case the gateway's answer is lost to a race, or the gateway is held back by a flood).
INTAKE_RECHECK_NS = 10_000_000


def _matching_lease(
    m: DriverModel, msg: ShmLeaseKeepalive | ShmDetachRequest
) -> LeaseRecord | None:
    """C-style matching of all four identifiers (A-13)."""
    record = m.leases.get(msg.lease_id)
    if record is None:
        return None
    if (record.stream_id, record.client_id, int(record.role)) != (
        msg.stream_id,
        msg.client_id,
        int(msg.role),
    ):
        return None
    return record


def on_keepalive(m: DriverModel, msg: ShmLeaseKeepalive) -> Outcome:
    if _keep_alive(m, msg, m.now_ns + m.ttl_ns):
        m.count(COUNTER_KEEPALIVE_ACCEPTED)
    return HANDLED


def on_keepalives(m: DriverModel, ev: Keepalives) -> Outcome:
    """One poll's keepalives, in order (one driver step, one deadline and one count for all)."""
    expiry_ns = m.now_ns + m.ttl_ns
    accepted = sum(_keep_alive(m, msg, expiry_ns) for msg in ev.batch)
    if accepted:
        m.count(COUNTER_KEEPALIVE_ACCEPTED, accepted)
    return HANDLED


def _keep_alive(m: DriverModel, msg: ShmLeaseKeepalive, expiry_ns: int) -> bool:
    """Move the matching lease's deadline; False (counted, logged) if no lease matches."""
    record = _matching_lease(m, msg)
    if record is None:
        m.count(COUNTER_KEEPALIVE_IGNORED)
        m.log.log(
            logging.INFO,
            "keepalive:ignored",
            "keepalive ignored: no lease %d of client %d on stream %d",
            msg.lease_id,
            msg.client_id,
            msg.stream_id,
        )
        return False
    m.leases.touch(record.lease_id, expiry_ns)
    return True


def _reject_detach(m: DriverModel, msg: ShmDetachRequest, code: ResponseCode, text: str) -> None:
    m.send(ShmDetachResponse(correlation_id=msg.correlation_id, code=code, error_message=text))
    m.count(f"{COUNTER_DETACH_REJECTED}.{code.name}")
    kind = f"detach:{text}"
    m.log.log(
        logging.INFO,
        kind,
        "detach %d of lease %d rejected: %s",
        msg.correlation_id,
        msg.lease_id,
        text,
    )


def on_detach(m: DriverModel, msg: ShmDetachRequest) -> Outcome:
    if msg.role not in (Role.PRODUCER, Role.CONSUMER):
        _reject_detach(m, msg, ResponseCode.INVALID_PARAMS, TEXT_INVALID_ROLE)
        return HANDLED
    record = _matching_lease(m, msg)
    if record is None:
        _reject_detach(m, msg, ResponseCode.REJECTED, TEXT_UNKNOWN_LEASE)
        return HANDLED
    m.event(
        EVENT_DETACH,
        lease_id=record.lease_id,
        stream_id=record.stream_id,
        client_id=record.client_id,
        role=record.role.name,
    )
    m.end_leases((record,), LeaseRevokeReason.DETACHED, msg.correlation_id)
    return HANDLED


def on_lease_check(m: DriverModel, ev: LeaseCheckTimerFired) -> Outcome:
    m.now_ns = ev.now_ns
    m.lease_check_armed_ns = None  # the timer fired: it is no longer armed
    m.lease_checked_ns = ev.now_ns
    expire_due(m)
    return HANDLED


def on_intake_caught_up(m: DriverModel, ev: IntakeCaughtUp) -> Outcome:
    m.observe_intake(ev.now_ns)
    expire_due(m)
    return HANDLED


def expire_due(m: DriverModel) -> None:
    """Expire leases due by now, but only as far as the gateway has read and the driver has
    handled: a keepalive still unread in the Aeron log (a flood holds the gateway back, or it
    is in an idle park) is not missing. Then arm the timer for the next deadline.

    A due lease beyond the horizon waits for ``IntakeCaughtUp`` (asked for here), capped:
    a flood that never lets the gateway drain the log must not stop expiry (and so grow the
    lease table) for ever; a keepalive is never that late in the log.
    """
    now = m.now_ns
    horizon = (
        now if m.intake_ns is None else min(now, max(m.intake_ns, now - MAX_EXPIRY_DEFERRAL_NS))
    )
    due = m.leases.expired(horizon)
    revokes = m.take_leases(due, LeaseRevokeReason.EXPIRED)
    # The timer is armed before the revokes go out: whoever sees a revoke may move the clock.
    waiting = m.leases.next_deadline()
    if waiting is not None and waiting < now:
        # Due by the clock, not yet by the intake.
        m.count(COUNTER_EXPIRY_DEFERRED)
        m.want_intake(waiting + 1)
        m.arm_lease_check(not_before_ns=now + INTAKE_RECHECK_NS)
    else:
        m.arm_lease_check()
    m.finish_ending(due, LeaseRevokeReason.EXPIRED, revokes)
