"""Every transition of the Lease HSM."""

import pytest

from actors.driver.commands import EndLease, GrantLease
from actors.lease.machine import LEASE_MACHINE, LeaseModel, revoke_message
from actors.runtime.hsm import Hsm
from messages.control import LeaseRevokeReason, Role, ShmLeaseRevoked


def lease() -> Hsm[LeaseModel]:
    hsm = Hsm(LEASE_MACHINE, LeaseModel(lease_id=9, stream_id=3, client_id=4, role=Role.PRODUCER))
    assert hsm.start() == []
    return hsm


def test_starts_unattached_and_grant_activates() -> None:
    hsm = lease()
    assert hsm.state == "Unattached"
    assert hsm.dispatch(GrantLease(now_ns=1)) == []
    assert hsm.state == "Active"


@pytest.mark.parametrize(
    ("reason", "state", "text"),
    [
        (LeaseRevokeReason.DETACHED, "Detached", "lease detached"),
        (LeaseRevokeReason.EXPIRED, "Expired", "lease expired"),
        (LeaseRevokeReason.REVOKED, "Revoked", "lease revoked"),
    ],
)
def test_each_end_reaches_its_state_and_the_revoke_carries_its_text(
    reason: LeaseRevokeReason, state: str, text: str
) -> None:
    hsm = lease()
    hsm.dispatch(GrantLease(now_ns=1))
    assert hsm.dispatch(EndLease(reason=reason, now_ns=50)) == []  # the driver sent the revoke
    assert hsm.state == state
    assert hsm.model.reason == reason
    m = hsm.model
    assert revoke_message(
        now_ns=50,
        lease_id=m.lease_id,
        stream_id=m.stream_id,
        client_id=m.client_id,
        role=m.role,
        reason=reason,
    ) == ShmLeaseRevoked(
        timestamp_ns=50,
        lease_id=9,
        stream_id=3,
        client_id=4,
        role=Role.PRODUCER,
        reason=reason,
        error_message=text,
    )


def test_at_most_one_revoke_per_lease() -> None:
    hsm = lease()
    hsm.dispatch(GrantLease(now_ns=1))
    hsm.dispatch(EndLease(reason=LeaseRevokeReason.EXPIRED, now_ns=2))
    assert hsm.dispatch(EndLease(reason=LeaseRevokeReason.DETACHED, now_ns=3)) == []
    assert hsm.dispatch(GrantLease(now_ns=4)) == []
    assert hsm.state == "Expired"
    assert hsm.unhandled == 0


def test_end_before_grant_still_ends() -> None:
    hsm = lease()
    hsm.dispatch(EndLease(reason=LeaseRevokeReason.REVOKED, now_ns=2))
    assert hsm.state == "Revoked"


def test_second_grant_is_ignored() -> None:
    hsm = lease()
    hsm.dispatch(GrantLease(now_ns=1))
    assert hsm.dispatch(GrantLease(now_ns=1)) == []
    assert hsm.state == "Active"
