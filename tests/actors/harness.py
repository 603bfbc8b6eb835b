"""The real actor tree on a ManualClock, with a RecordingOutbox and SHM files under a tmp dir.

Shared by the actor-system tests (``test_driver_system``, ``test_supervision_actors``,
``test_shutdown_order``, ``test_stream_lifecycle``).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from actors import DriverSystem, start_driver_system
from actors.runtime.clock import ManualClock
from actors.testing import RecordingEventSink, RecordingOutbox, small_config
from messages.control import Role, ShmAttachRequest, ShmAttachResponse, ShmDetachRequest
from shm.paths import stream_dir
from shm.provision import ProvisionedEpoch, ProvisionRequest, provision_epoch

if TYPE_CHECKING:
    from pathlib import Path

    from messages.sbe import SbeMessage

START = 1_000_000_000
WAIT_S = 10.0


class BlockingProvisioner:
    """Provisions for real, once released: a test holds a stream in the middle of
    provisioning for as long as it needs."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()

    def __call__(self, request: ProvisionRequest) -> ProvisionedEpoch:
        self.entered.set()
        assert self.release.wait(WAIT_S)
        try:
            return provision_epoch(request)
        finally:
            self.done.set()


class Harness:
    def __init__(self, tmp_path: Path, **config: Any) -> None:
        self.base = tmp_path
        self.config = small_config(tmp_path, **config)
        self.clock = ManualClock(start_ns=START)
        self.outbox = RecordingOutbox()
        self.events = RecordingEventSink()
        self.system: DriverSystem | None = None

    def start(self, **kwargs: Any) -> DriverSystem:
        self.system = start_driver_system(
            self.config, outbox=self.outbox, clock=self.clock, events=self.events, **kwargs
        )
        return self.system

    def tell(self, message: object) -> None:
        assert self.system is not None
        self.system.driver.tell(message)

    def wait_count(self, cls: type[object], count: int) -> list[Any]:
        assert self.outbox.wait_for_count(cls, count), self.outbox.messages
        return self.outbox.of_type(cls)

    def attach(
        self, client_id: int, role: Role = Role.PRODUCER, stream_id: int = 10000, **fields: Any
    ) -> ShmAttachResponse:
        before = len(self.outbox.of_type(ShmAttachResponse))
        self.tell(
            ShmAttachRequest(
                correlation_id=client_id,
                stream_id=stream_id,
                client_id=client_id,
                role=role,
                expected_layout_version=0,
                **fields,
            )
        )
        response: ShmAttachResponse = self.wait_count(ShmAttachResponse, before + 1)[-1]
        assert response.correlation_id == client_id
        return response

    def detach(
        self, r: ShmAttachResponse, client_id: int, role: Role, correlation_id: int = 99
    ) -> None:
        assert r.lease_id is not None
        assert r.stream_id is not None
        self.tell(
            ShmDetachRequest(
                correlation_id=correlation_id,
                lease_id=r.lease_id,
                stream_id=r.stream_id,
                client_id=client_id,
                role=role,
            )
        )

    def epochs_on_disk(self, stream_id: int = 10000) -> list[int]:
        directory = stream_dir(self.base, "default", stream_id)
        if not directory.exists():
            return []
        return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())

    def after(self, message: object) -> list[SbeMessage]:
        messages = self.outbox.messages
        index = max(i for i, m in enumerate(messages) if m is message)
        return messages[index + 1 :]
