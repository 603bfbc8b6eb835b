"""The driver's actor system: Driver, Stream, Lease and Timer actors, and how to embed them.

``start_driver_system(config, outbox=...)`` starts the whole tree and returns a
``DriverSystem``; ``actors.testing`` has a recording outbox and event sink for tests.
"""

from actors.driver import DriverActor
from actors.lease import LeaseActor
from actors.stream import StreamActor
from actors.supervision import RestartIntensity
from actors.system import DriverSystem, start_driver_system

__all__ = [
    "DriverActor",
    "DriverSystem",
    "LeaseActor",
    "RestartIntensity",
    "StreamActor",
    "start_driver_system",
]
