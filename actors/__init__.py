"""The driver's actor system, and what code that embeds a driver needs from it.

``start_driver_system(config, outbox=..., clock=..., events=...)`` starts the actor tree (a
DriverActor supervising one StreamActor per stream and one LeaseActor per lease) and returns
a ``DriverSystem``; ``run_driver`` runs the whole process (lock, media driver, gateway, admin
plane, actor system) as ``tensorpool-driver`` does. ``actors.testing`` has a recording outbox
and event sink for tests. Everything else in this package is internal.

``run_driver`` lives in the composition root ``tensorpool_launcher``, which imports this
package; it is loaded on first use so ``import actors`` never imports the launcher.
"""

from typing import TYPE_CHECKING

from actors.runtime.clock import Clock, ManualClock, MonotonicClock
from actors.system import DriverSystem, start_driver_system
from messages.events import DriverStatus, EventSink, LeaseStatus, Outbox, StreamStatus

if TYPE_CHECKING:
    from tensorpool_launcher.process import run_driver

__all__ = [
    "Clock",
    "DriverStatus",
    "DriverSystem",
    "EventSink",
    "LeaseStatus",
    "ManualClock",
    "MonotonicClock",
    "Outbox",
    "StreamStatus",
    "run_driver",
    "start_driver_system",
]

if not TYPE_CHECKING:  # mypy reads the import above, so an unknown name stays an error

    def __getattr__(name: str) -> object:
        if name != "run_driver":
            raise AttributeError(f"module 'actors' has no attribute {name!r}")
        from tensorpool_launcher.process import run_driver  # noqa: PLC0415 - see the docstring

        globals()[name] = run_driver
        return run_driver
