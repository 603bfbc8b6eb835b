"""Keep the cyclic garbage collector's full passes off the control plane.

CPython's collector examines every tracked object in a full (oldest-generation) pass. A lease
is ~13 tracked objects (its LeaseActor, mailbox, HSM, record, ...), so with 30,000 leases a full
pass examines some 400,000 objects: 200 ms or more on the 2-core VM, with every thread
stopped, and the attach burst that creates them triggers several (measured: 7 passes, 1.4-2.8 s
in all, while 30,000 leases attached; a revoke due during one is that late). Leases live for seconds
to days; examining them again and again finds nothing, because the driver's long-lived objects
hold no reference cycles that die (actors and mailboxes let go of each other when they stop).

So the survivors of each middle-generation pass are moved to the permanent generation
(``gc.freeze``): full passes then examine only what arrived since, and young garbage is still
collected as usual. The cost is that a reference cycle which survives two young passes and
only then becomes garbage is never collected; ``uninstall`` (at stop) collects everything once
and logs how many unreachable objects the freezing had kept, so a leak would show.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any

__all__ = ["GcFreezer"]

log = logging.getLogger(__name__)


class GcFreezer:
    """Installed once per process (the driver's composition root); ``uninstall`` undoes it."""

    def __init__(self) -> None:
        self.freezes = 0
        self._lock = threading.Lock()
        self._installed = False

    def install(self) -> None:
        """Freeze what start-up made (modules, configuration), then every generation-1
        survivor."""
        with self._lock:
            if self._installed:
                return
            self._installed = True
            gc.collect()  # start-up garbage is collected, not frozen
            gc.freeze()
            gc.callbacks.append(self._on_gc)

    def uninstall(self) -> int:
        """Stop freezing, give the frozen objects back to the collector and collect once;
        returns how many unreachable objects that found (cycles the freezing kept alive)."""
        with self._lock:
            if not self._installed:
                return 0
            self._installed = False
            gc.callbacks.remove(self._on_gc)
        return collect_frozen()

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 1:
            gc.freeze()
            self.freezes += 1


def collect_frozen() -> int:
    """A full pass over everything, frozen objects included (a pause: call it when idle)."""
    gc.unfreeze()
    found = gc.collect()
    log.info("gc: a full pass over the frozen objects found %d unreachable", found)
    return found
