"""Through the real actors: requests that arrive while an attach is being provisioned.

The reference drivers provision inside their single-threaded loop, so an attach is answered
before the next request is read. Here provisioning runs on a StreamActor; these tests hold
it at a gate and check the wire order is still the reference one.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from messages.control import ResponseCode, Role, ShmAttachRequest, ShmAttachResponse
from shm.provision import ProvisionedEpoch, ProvisionRequest, provision_epoch
from tests.actors.harness import Harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

GATE_TIMEOUT_S = 30.0


class GatedProvisioner:
    """Provisions only once ``gate`` is set, so a test decides when the attach completes."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()

    def __call__(self, request: ProvisionRequest) -> ProvisionedEpoch:
        self.entered.set()
        assert self.gate.wait(GATE_TIMEOUT_S), "the test never opened the gate"
        return provision_epoch(request)


@pytest.fixture
def gated() -> GatedProvisioner:
    return GatedProvisioner()


@pytest.fixture
def h(tmp_path: Path, gated: GatedProvisioner) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    harness.start(provisioner=gated)
    try:
        yield harness
    finally:
        gated.gate.set()
        assert harness.system is not None
        harness.system.stop()


def _request(correlation_id: int, client_id: int) -> ShmAttachRequest:
    return ShmAttachRequest(
        correlation_id=correlation_id,
        stream_id=10000,
        client_id=client_id,
        role=Role.PRODUCER,
        expected_layout_version=0,
    )


def test_a_retry_and_a_rival_producer_are_refused_after_the_ok(
    h: Harness, gated: GatedProvisioner
) -> None:
    h.tell(_request(77, client_id=7))
    assert gated.entered.wait(GATE_TIMEOUT_S)
    h.tell(_request(77, client_id=7))  # the client's retry
    h.tell(_request(88, client_id=8))  # another producer
    assert h.system is not None
    h.system.status()  # answered after both requests: the driver has decided them
    assert h.outbox.of_type(ShmAttachResponse) == []
    gated.gate.set()
    answers = [
        (r.correlation_id, r.code, r.error_message) for r in h.wait_count(ShmAttachResponse, 3)
    ]
    assert answers == [
        (77, ResponseCode.OK, ""),
        (77, ResponseCode.REJECTED, "client_id already attached"),
        (88, ResponseCode.REJECTED, "producer already attached"),
    ]
