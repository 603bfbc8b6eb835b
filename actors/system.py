"""The public embedding API: ``start_driver_system`` and the ``DriverSystem`` handle.

The driver is an ordinary pykka actor tree (DriverActor, its StreamActors and LeaseActors,
and a TimerActor), so an application can embed it in its own pykka system: give it an outbox
(the gateway, or anything with ``send``), optionally a clock, an event sink, a dispatcher for
the lease actors and a provisioner, and keep the returned handle to ask for status, wait for
the driver to stop, and stop it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sized
from typing import TYPE_CHECKING, Any, Final, Self

import pykka

from actors.driver.actor import DriverActor
from actors.driver.commands import StopChildren, UseTimer
from actors.driver.model import NS_PER_MS
from actors.driver.supervision import SupervisorLink
from actors.lease.actor import LeaseActor
from actors.runtime.clock import MonotonicClock
from actors.runtime.dispatcher import Dispatcher, Scheduler
from actors.runtime.timer import TimerActor
from messages.events import DriverStatus, StatusQuery
from shm.hugepages import is_hugetlbfs

if TYPE_CHECKING:
    from actors.runtime.clock import Clock
    from actors.runtime.intake import IntakeHorizon
    from actors.stream.actor import Provisioner
    from messages.events import EventSink, Outbox
    from tensorpool_config.model import DriverConfig

logger = logging.getLogger(__name__)

DEFAULT_STATUS_TIMEOUT_S: Final = 5.0
_START_TIMEOUT_S: Final = 30.0


class DriverSystem:
    """A running driver actor tree; ``stop()`` is idempotent and safe from any thread."""

    def __init__(
        self,
        *,
        driver: pykka.ActorRef[Any],
        timer: pykka.ActorRef[Any],
        stopped: threading.Event,
        clock: Clock,
        own_clock: bool,
        dispatcher: Scheduler,
        own_dispatcher: bool,
        driver_scheduler: Scheduler,
        link: SupervisorLink,
    ) -> None:
        self.driver = driver
        self._link = link
        self.timer = timer
        self.clock = clock
        self.dispatcher = dispatcher
        self._stopped = stopped
        self._own_clock = own_clock
        self._own_dispatcher = own_dispatcher
        self._driver_scheduler = driver_scheduler
        self._stop_lock = threading.Lock()
        self._closed = False

    def status(self, timeout: float = DEFAULT_STATUS_TIMEOUT_S) -> DriverStatus:
        """Ask the DriverActor for a snapshot (raises ``pykka.Timeout`` or ``ActorDeadError``)."""
        result = self.driver.ask(StatusQuery(), timeout=timeout)
        if not isinstance(result, DriverStatus):
            raise TypeError(f"status query answered {result!r}")
        return result

    def backlog(self) -> int:
        """Messages waiting in the DriverActor's mailbox.

        The gateway stops reading the control stream while this is above its bound, so a flood
        waits in the Aeron log (its sender is back-pressured) instead of growing this mailbox
        and delaying every other client's keepalives without limit.
        """
        inbox = self.driver.actor_inbox
        return len(inbox) if isinstance(inbox, Sized) else 0

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """True once the driver reached Stopped (ShmDriverShutdown is on the outbox)."""
        return self._stopped.wait(timeout)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        """Stop the timer, the driver and its children; shut down what the system created."""
        with self._stop_lock:
            if self._closed:
                return
            self._closed = True
        # Children finish, then the parent stops (actors/driver/supervision.py): close the
        # link first, so every child reply already sent is ahead of StopChildren in the
        # driver's mailbox and none comes after it.
        with contextlib.suppress(pykka.ActorDeadError):
            self.timer.stop(block=True, timeout=_START_TIMEOUT_S)
        self._link.close()
        with contextlib.suppress(pykka.ActorDeadError):
            self.driver.ask(StopChildren(), timeout=_START_TIMEOUT_S)
        with contextlib.suppress(pykka.ActorDeadError):
            self.driver.stop(block=True, timeout=_START_TIMEOUT_S)
        self._driver_scheduler.shutdown(timeout=_START_TIMEOUT_S)
        if self._own_dispatcher:
            self.dispatcher.shutdown(timeout=_START_TIMEOUT_S)
        if self._own_clock:
            self.clock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _lease_class(dispatcher: Scheduler) -> type[LeaseActor]:
    """A LeaseActor subclass bound to this system's dispatcher (``dispatcher`` is per class)."""
    return type("LeaseActor", (LeaseActor,), {"dispatcher": dispatcher})


def _driver_class(scheduler: Scheduler) -> type[DriverActor]:
    return type("DriverActor", (DriverActor,), {"dispatcher": scheduler})


def _hugepages_capable(config: DriverConfig) -> bool:
    try:
        return is_hugetlbfs(config.shm.base_dir)
    except OSError:
        return False


def start_driver_system(
    config: DriverConfig,
    *,
    outbox: Outbox,
    clock: Clock | None = None,
    events: EventSink | None = None,
    dispatcher: Scheduler | None = None,
    provisioner: Provisioner | None = None,
    intake: IntakeHorizon | None = None,
    driver_host: Scheduler | None = None,
) -> DriverSystem:
    """Start the driver actor tree and return once it is Running with its timers armed.

    ``intake`` is the gateway's read horizon (``ControlGateway.intake``): with it, a lease
    expires only once every keepalive published before its deadline has been handled; without
    it (tests, embedding without a gateway) expiry follows the clock alone. ``driver_host``
    runs the DriverActor (``ControlGateway.host``: on the gateway's poll thread); without it
    the DriverActor gets a thread of its own.
    """
    own_clock = clock is None
    the_clock: Clock = MonotonicClock() if clock is None else clock
    own_dispatcher = dispatcher is None
    # One worker: LeaseActor handlers never block, and every extra runnable thread contends
    # with the gateway thread (where the DriverActor runs) for the GIL.
    pool = Dispatcher(workers=1, name="lease") if dispatcher is None else dispatcher
    stopped = threading.Event()
    link = SupervisorLink()
    policies = config.policies
    driver_scheduler = driver_host or Dispatcher(workers=1, name="driver")
    driver = _driver_class(driver_scheduler).start(
        config,
        outbox=outbox,
        clock=the_clock,
        events=events,
        provisioner=provisioner,
        intake=intake,
        lease_actor_class=_lease_class(pool),
        hugepages_capable=_hugepages_capable(config),
        stopped=stopped,
        link=link,
    )
    try:
        timer = TimerActor.start(the_clock, driver, policies.announce_period_ms * NS_PER_MS)
    except BaseException:
        driver.stop()
        driver_scheduler.shutdown()
        raise
    system = DriverSystem(
        driver=driver,
        timer=timer,
        stopped=stopped,
        clock=the_clock,
        own_clock=own_clock,
        dispatcher=pool,
        own_dispatcher=own_dispatcher,
        driver_scheduler=driver_scheduler,
        link=link,
    )
    try:
        driver.tell(UseTimer(timer))
        timer.proxy().actor_urn.get(timeout=_START_TIMEOUT_S)  # its on_start armed the timers
        system.status(timeout=_START_TIMEOUT_S)  # the driver's on_start ran: Running
    except BaseException:
        system.stop()
        raise
    return system
