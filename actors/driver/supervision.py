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
  fresh StreamActor is started for the same stream from its Stream HSM's epoch; its producer
  lease, if any, is revoked (REVOKED), which bumps the epoch through the new actor; with no
  producer the new actor bumps, provisions and announces at once (if the stream had ever
  been provisioned). Consumer leases are kept: they follow the new epoch through the
  announce, as after any producer change. (The rows of ``ActorFailed`` in
  ``stream_machine.py`` decide all of this.)
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
* **Shutdown order.** Children finish, then the parent stops. A child tells its supervisor
  only through a ``SupervisorLink``, which the driver closes when it enters Stopped and
  ``DriverSystem.stop()`` closes before it stops the driver. The driver then stops its
  children (each finishes the message in hand) and only then itself. A child's reply after
  the close is dropped (counted, debug-logged): never a tell to a dead actor and a
  traceback. A StreamActor whose new epoch can no longer be announced removes it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar, Final

import pykka

from actors.driver.commands import ChildFailed, ChildKind

if TYPE_CHECKING:
    from types import TracebackType

DEFAULT_MAX_FAILURES: Final = 5
DEFAULT_WINDOW_NS: Final = 10_000_000_000

logger = logging.getLogger(__name__)


class SupervisorLink:
    """A child's only way to tell its supervisor; closed once the supervisor stops.

    ``tell`` and ``close`` exclude each other, so after ``close`` returns no child message
    can reach the supervisor's mailbox: what a child would say later is dropped and counted
    here (the supervisor is stopping; it would not handle it, and a tell to a stopped actor
    raises ``ActorDeadError``).
    """

    __slots__ = ("_closed", "_lock", "_ref", "dropped")

    def __init__(self) -> None:
        self._ref: pykka.ActorRef[Any] | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.dropped = 0

    def bind(self, ref: pykka.ActorRef[Any]) -> None:
        """The supervisor's ref, once it exists (it is made with its supervisor's actor)."""
        self._ref = ref

    @property
    def closed(self) -> threading.Event:
        return self._closed

    def close(self) -> None:
        with self._lock:
            self._closed.set()

    def tell(self, message: object) -> bool:
        """Tell the supervisor ``message``; False if it is stopping (the message is dropped)."""
        with self._lock:
            if not self._closed.is_set() and self._ref is not None:
                try:
                    self._ref.tell(message)
                except pykka.ActorDeadError:  # stopped without closing the link (embedding)
                    self._closed.set()
                else:
                    return True
            self.dropped += 1
        logger.debug("supervisor stopping; %r dropped", message)
        return False


class SupervisedChild:
    """Mixed into a child actor (before the pykka base): its ``on_failure`` tells the
    supervisor ``ChildFailed``, which is how supervision sees a bug in a child."""

    child_kind: ClassVar[ChildKind]
    actor_urn: str

    def __init__(self, supervisor: SupervisorLink, key: int) -> None:
        super().__init__()
        self._supervisor = supervisor
        self._child_key = key

    def on_failure(
        self,
        _exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        detail = repr(exception_value)
        key, urn = self._child_key, self.actor_urn
        self._supervisor.tell(ChildFailed(kind=self.child_kind, key=key, urn=urn, detail=detail))


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
