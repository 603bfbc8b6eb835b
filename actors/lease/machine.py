"""The Lease HSM: ``Unattached -> Active -> Expired | Revoked | Detached``, and the revoke.

The driver decides when a lease ends (it owns the deadlines, the keepalives stop there) and
puts the lease's ``ShmLeaseRevoked`` (``revoke_message``: the reason and its short text,
A-34) on the outbox in the same step, batched with every other lease that step ends; it
takes the lease out of its table there, so no lease is revoked twice (driver-behaviour.md
§6). The LeaseActor hosting this machine is then told ``EndLease`` and records the terminal
state; a terminal lease ignores any further end request. The wire never waits for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from actors.driver.commands import EndLease, GrantLease
from actors.runtime.hsm import HANDLED, HsmModel, Machine, Outcome, State, Transition
from messages.control import LeaseRevokeReason, Role, ShmLeaseRevoked

if TYPE_CHECKING:
    from collections.abc import Callable

REVOKE_TEXT: Final = {
    LeaseRevokeReason.DETACHED: "lease detached",
    LeaseRevokeReason.EXPIRED: "lease expired",
    LeaseRevokeReason.REVOKED: "lease revoked",
}
_TERMINAL: Final = {
    LeaseRevokeReason.DETACHED: "Detached",
    LeaseRevokeReason.EXPIRED: "Expired",
    LeaseRevokeReason.REVOKED: "Revoked",
}


class LeaseModel(HsmModel):
    """The lease's identity and what the machine has seen."""

    __slots__ = ("client_id", "ended_ns", "lease_id", "reason", "role", "stream_id")

    def __init__(self, *, lease_id: int, stream_id: int, client_id: int, role: Role) -> None:
        super().__init__()
        self.lease_id = lease_id
        self.stream_id = stream_id
        self.client_id = client_id
        self.role = role
        self.ended_ns = 0
        self.reason: LeaseRevokeReason | None = None


def revoke_message(
    *,
    now_ns: int,
    lease_id: int,
    stream_id: int,
    client_id: int,
    role: Role,
    reason: LeaseRevokeReason,
) -> ShmLeaseRevoked:
    """The ShmLeaseRevoked for a lease ending with ``reason``."""
    return ShmLeaseRevoked(
        timestamp_ns=now_ns,
        lease_id=lease_id,
        stream_id=stream_id,
        client_id=client_id,
        role=role,
        reason=reason,
        error_message=REVOKE_TEXT[reason],
    )


def _ended(reason: LeaseRevokeReason) -> Callable[[LeaseModel], None]:
    def entry(m: LeaseModel) -> None:
        m.reason = reason

    return entry


def _on_grant(_m: LeaseModel, _ev: GrantLease) -> Outcome:
    return Transition("Active")


def _on_end(m: LeaseModel, ev: EndLease) -> Outcome:
    m.ended_ns = ev.now_ns
    return Transition(_TERMINAL[ev.reason])


def _ignore(_m: LeaseModel, _ev: object) -> Outcome:
    return HANDLED


LEASE_MACHINE: Final = Machine[LeaseModel](
    "Lease",
    states={
        "Lease": State(initial="Unattached"),
        "Unattached": State(parent="Lease"),
        "Active": State(parent="Lease"),
        "Ended": State(parent="Lease", initial="Revoked"),
        "Expired": State(parent="Ended", entry=_ended(LeaseRevokeReason.EXPIRED)),
        "Revoked": State(parent="Ended", entry=_ended(LeaseRevokeReason.REVOKED)),
        "Detached": State(parent="Ended", entry=_ended(LeaseRevokeReason.DETACHED)),
    },
    handlers={
        ("Unattached", GrantLease): _on_grant,
        ("Lease", EndLease): _on_end,
        ("Ended", EndLease): _ignore,
        ("Ended", GrantLease): _ignore,
        ("Active", GrantLease): _ignore,
    },
)
