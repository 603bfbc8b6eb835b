"""``DriverSystem.backlog()``: what the gateway reads to stop polling under a flood."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from actors import start_driver_system
from actors.runtime.clock import ManualClock
from actors.testing import small_config
from messages import Role, ShmDetachRequest, ShmLeaseKeepalive

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from messages import SbeMessage


class BlockingOutbox:
    """Holds the DriverActor inside its first ``send`` until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def send(self, message: SbeMessage) -> None:
        self.entered.set()
        assert self.release.wait(10), "test never released the driver"

    def send_all(self, messages: Iterable[SbeMessage]) -> None:
        for message in messages:
            self.send(message)


def test_backlog_counts_the_messages_the_driver_has_not_handled(tmp_path: Path) -> None:
    outbox = BlockingOutbox()
    system = start_driver_system(small_config(tmp_path), outbox=outbox, clock=ManualClock())
    try:
        assert system.backlog() == 0
        # An unknown lease's detach is answered at once: the driver blocks in that send.
        system.driver.tell(
            ShmDetachRequest(
                correlation_id=1, lease_id=99, stream_id=10000, client_id=5, role=Role.CONSUMER
            )
        )
        assert outbox.entered.wait(10)
        for lease_id in range(7):
            system.driver.tell(
                ShmLeaseKeepalive(
                    lease_id=lease_id,
                    stream_id=10000,
                    client_id=5,
                    role=Role.CONSUMER,
                    client_timestamp_ns=0,
                )
            )
        assert system.backlog() == 7
        outbox.release.set()
        system.status()  # a barrier: every earlier message has been handled
        assert system.backlog() == 0
    finally:
        outbox.release.set()
        system.stop()
