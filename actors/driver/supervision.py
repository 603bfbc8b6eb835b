"""Supervision of the driver's children: the written policy and the restart-intensity limit.

pykka has no supervision, so the DriverActor is the supervisor of every StreamActor and
LeaseActor it starts. The policy:

* **How a failure is seen.** A child whose handler raises while processing a ``tell`` is
  stopped by pykka, which then calls its ``on_failure``; the child's ``on_failure`` tells the
  driver ``ChildFailed(kind, key, urn, detail)``. Failures that the protocol expects (a
  provisioning error, a bad request) are not failures: they are answered in-band
  (``ProvisionFailed``, rejects). An exception means a bug, and bugs go to the supervisor.
* **A LeaseActor failed.** If its lease is still active (or was ending), the driver ends it
  with reason REVOKED and publishes the ``ShmLeaseRevoked`` itself (the dead actor cannot);
  a producer lease then follows the normal chain (epoch bump, announce). Other leases are
  untouched: one bad child never takes down another client's lease.
* **A StreamActor failed.** Its pending attaches are answered INTERNAL_ERROR and released; a
  fresh StreamActor is started for the same stream from the driver's mirror of it (epoch,
  URIs); its producer lease, if any, is revoked (REVOKED), which bumps the epoch through the
  new actor; with no producer the new actor bumps, provisions and announces at once (if the
  stream had ever been provisioned). Consumer leases are kept: they follow the new epoch
  through the announce, as after any producer change.
* **Stale reports.** A ``ChildFailed`` whose actor urn is no longer the current child for its
  key (a stream already restarted, a lease already gone) is counted and otherwise ignored.
* **Restart intensity.** ``max_failures`` (5) child failures within ``window_ns`` (10 s)
  escalates to a clean driver shutdown: ``ShutdownRequested(ERROR, "<n> child failures in
  <s> s; last: <cause>", skip_drain=True)``, i.e. Draining (one announce of every stream)
  and ``ShmDriverShutdown(ERROR)`` at once. A driver that keeps failing is better restarted
  by its own supervisor (systemd) than left half-working.
* **The DriverActor itself** never dies of one message: its ``on_receive`` catches, logs and
  counts any exception and carries on (the message is lost, the state is what the handler
  had reached).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final

from actors.driver.commands import ChildFailed

if TYPE_CHECKING:
    import pykka

DEFAULT_MAX_FAILURES: Final = 5
DEFAULT_WINDOW_NS: Final = 10_000_000_000

CHILD_LEASE: Final = "lease"
CHILD_STREAM: Final = "stream"


def report_failure(
    driver: pykka.ActorRef[Any], kind: str, key: int, urn: str, exception: BaseException | None
) -> None:
    """What a child's ``on_failure`` does: tell its supervisor ``ChildFailed``."""
    driver.tell(ChildFailed(kind=kind, key=key, urn=urn, detail=repr(exception)))


class RestartIntensity:
    """Counts child failures in a sliding time window; pure (the time is an argument)."""

    __slots__ = ("_failures", "max_failures", "window_ns")

    def __init__(
        self, max_failures: int = DEFAULT_MAX_FAILURES, window_ns: int = DEFAULT_WINDOW_NS
    ) -> None:
        if max_failures < 1 or window_ns <= 0:
            raise ValueError("max_failures must be >= 1 and window_ns > 0")
        self.max_failures = max_failures
        self.window_ns = window_ns
        self._failures: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._failures)

    def record(self, now_ns: int) -> bool:
        """Note one failure at ``now_ns``; True once ``max_failures`` are in the window."""
        failures = self._failures
        failures.append(now_ns)
        while failures and failures[0] <= now_ns - self.window_ns:
            failures.popleft()
        return len(failures) >= self.max_failures
