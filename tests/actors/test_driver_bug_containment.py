"""A bug while the DriverActor handles one message: it keeps running, and what the failed
handler had already decided is still carried out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from actors.driver.ids import NodeIdAllocator
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
    """The sweep puts both revokes on the outbox first; a bug in the bookkeeping after that
    (releasing the second lease's node id) does not keep them from the wire."""
    first = h.attach(7, Role.CONSUMER)
    second = h.attach(8, Role.CONSUMER)
    real_release = NodeIdAllocator.release
    calls: list[int] = []

    def release_then_fail_on_the_second(self: NodeIdAllocator, *args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("bug in the second lease's bookkeeping")
        real_release(self, *args)

    monkeypatch.setattr(NodeIdAllocator, "release", release_then_fail_on_the_second)
    h.clock.advance(3100 * MS)  # both leases pass their 3 s deadline in one sweep
    revokes = h.wait_count(ShmLeaseRevoked, 2)
    assert [(r.lease_id, r.reason) for r in revokes] == [
        (first.lease_id, LeaseRevokeReason.EXPIRED),
        (second.lease_id, LeaseRevokeReason.EXPIRED),
    ]
    assert h.system is not None
    status = h.system.status()  # the DriverActor is alive and answering
    assert status.counters["driver.handler_errors"] == 1
    assert status.leases == ()  # both left the table with their revokes
