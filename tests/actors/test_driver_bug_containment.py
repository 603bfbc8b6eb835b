"""A bug while the DriverActor handles one message: it keeps running, and what the failed
handler had already decided is still carried out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from actors.driver_model import DriverModel
from messages.control import LeaseRevokeReason, Role, ShmLeaseRevoked
from tests.actors.harness import Harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MS = 1_000_000


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    harness.start()
    try:
        yield harness
    finally:
        assert harness.system is not None
        harness.system.stop()


def test_leases_ended_before_a_handler_bug_are_still_revoked(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = h.attach(7, Role.CONSUMER)
    second = h.attach(8, Role.CONSUMER)
    real_end_lease = DriverModel.end_lease
    calls: list[int] = []

    def end_lease_then_fail_on_the_second(self: DriverModel, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("bug in the second lease's bookkeeping")
        real_end_lease(self, *args, **kwargs)

    monkeypatch.setattr(DriverModel, "end_lease", end_lease_then_fail_on_the_second)
    h.clock.advance(3100 * MS)  # both leases pass their 3 s deadline in one sweep
    (revoke,) = h.wait_count(ShmLeaseRevoked, 1)
    assert (revoke.lease_id, revoke.reason) == (first.lease_id, LeaseRevokeReason.EXPIRED)
    assert h.system is not None
    status = h.system.status()  # the DriverActor is alive and answering
    assert status.counters["driver.handler_errors"] == 1
    assert [lease.lease_id for lease in status.leases] == [second.lease_id]
    # The lease whose bookkeeping failed is still due: once the bug is gone, the next sweep
    # ends it (it was not left in the table without a deadline).
    monkeypatch.setattr(DriverModel, "end_lease", real_end_lease)
    h.clock.advance(100 * MS)
    revokes = h.wait_count(ShmLeaseRevoked, 2)
    assert revokes[1].lease_id == second.lease_id
    assert h.system.status().leases == ()
