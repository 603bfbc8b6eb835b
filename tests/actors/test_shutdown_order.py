"""Shutdown has one order: children finish (or drop their work), then the parent stops.

A StreamActor still provisioning when the driver stops used to reply to the stopped
DriverActor: ``ActorDeadError``, then again from its failure report, both logged as
tracebacks after the driver's exit line; and the epoch it made stayed on disk, announced to
nobody. The provisioner here blocks until the test releases it, so the stop always lands
in the middle of provisioning.
"""

from __future__ import annotations

import logging
import threading

import pytest

from messages.control import (
    Role,
    ShmAttachRequest,
    ShmAttachResponse,
    ShmDriverShutdown,
    ShutdownReason,
)
from messages.events import ShutdownRequested
from messages.wire import ShmPoolAnnounce
from tests.actors.harness import WAIT_S, BlockingProvisioner, Harness


@pytest.fixture
def h(blocked_h: Harness) -> Harness:
    return blocked_h


def _attach_producer(h: Harness, prov: BlockingProvisioner) -> None:
    h.tell(
        ShmAttachRequest(
            correlation_id=1,
            stream_id=10000,
            client_id=7,
            role=Role.PRODUCER,
            expected_layout_version=0,
        )
    )
    assert prov.entered.wait(WAIT_S)


def _assert_stopped_cleanly(
    h: Harness, prov: BlockingProvisioner, caplog: pytest.LogCaptureFixture
) -> None:
    """Provisioning finished, nothing logged an error or a traceback, no epoch left behind
    that nobody announced, and the attach was never answered."""
    assert prov.done.is_set()
    errors = [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info is not None
    ]
    assert errors == []
    assert h.epochs_on_disk() == []
    assert h.outbox.of_type(ShmAttachResponse) == []


def test_stop_while_provisioning_drops_the_reply_quietly_and_removes_the_epoch(
    h: Harness, prov: BlockingProvisioner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _attach_producer(h, prov)
    system = h.system
    assert system is not None
    stopping = threading.Thread(target=system.stop)
    stopping.start()
    try:
        assert system._link.closed.wait(WAIT_S)  # the driver takes no child reply from here
    finally:
        prov.release.set()
        stopping.join(WAIT_S)
    assert not stopping.is_alive()
    _assert_stopped_cleanly(h, prov, caplog)
    assert system._link.dropped == 1  # the StreamReady, counted
    assert h.outbox.of_type(ShmPoolAnnounce) == []


def test_stopped_driver_discards_an_epoch_provisioned_after_its_shutdown(
    h: Harness, prov: BlockingProvisioner, caplog: pytest.LogCaptureFixture
) -> None:
    # A second SIGTERM during provisioning: the driver stops at once, the stream finishes later.
    caplog.set_level(logging.DEBUG)
    _attach_producer(h, prov)
    system = h.system
    assert system is not None
    h.tell(ShutdownRequested(ShutdownReason.NORMAL, "", skip_drain=True))
    assert system.wait_stopped(WAIT_S)
    prov.release.set()
    system.stop()
    _assert_stopped_cleanly(h, prov, caplog)
    assert len(h.outbox.of_type(ShmDriverShutdown)) == 1
