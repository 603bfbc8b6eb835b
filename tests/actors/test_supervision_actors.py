"""Supervision through the real actors: failing provisioners, failing children, escalation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pykka
import pytest

from actors.lease.actor import LeaseActor
from actors.stream.actor import StreamActor
from messages.control import (
    LeaseRevokeReason,
    ResponseCode,
    Role,
    ShmDriverShutdown,
    ShmLeaseRevoked,
    ShutdownReason,
)
from messages.wire import ShmPoolAnnounce
from shm.errors import ProvisionError
from shm.provision import ProvisionedEpoch, ProvisionRequest, provision_epoch
from tests.actors.harness import Harness

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class Provisioner:
    """Delegates to shm.provision_epoch unless told to fail (expectedly or as a bug)."""

    def __init__(self) -> None:
        self.fail: type[Exception] | None = None
        self.calls = 0

    def __call__(self, request: ProvisionRequest) -> ProvisionedEpoch:
        self.calls += 1
        if self.fail is not None:
            raise self.fail("injected failure")
        return provision_epoch(request)


@pytest.fixture
def prov() -> Provisioner:
    return Provisioner()


@pytest.fixture
def h(tmp_path: Path, prov: Provisioner) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    harness.start(provisioner=prov)
    try:
        yield harness
    finally:
        assert harness.system is not None
        harness.system.stop()


def test_provision_error_is_internal_error_and_releases_everything(
    h: Harness, prov: Provisioner
) -> None:
    prov.fail = ProvisionError
    r = h.attach(7)
    assert (r.code, r.error_message) == (
        ResponseCode.INTERNAL_ERROR,
        "failed to provision SHM: injected failure",
    )
    assert h.epochs_on_disk() == []
    prov.fail = None
    again = h.attach(7)  # the client id and the producer slot were released
    assert again.code == ResponseCode.OK
    assert h.system is not None
    assert h.system.status().counters["provision.failed"] == 1


def test_failed_dynamic_stream_is_forgotten(h: Harness, prov: Provisioner) -> None:
    prov.fail = ProvisionError
    r = h.attach(7, stream_id=0, publish_mode=2)
    assert r.code == ResponseCode.INTERNAL_ERROR
    assert h.system is not None
    assert [s.stream_id for s in h.system.status().streams] == [10000]


def test_stream_actor_bug_answers_and_restarts_the_stream(h: Harness, prov: Provisioner) -> None:
    prov.fail = RuntimeError
    r = h.attach(7)
    assert r.code == ResponseCode.INTERNAL_ERROR
    assert r.error_message.startswith("failed to provision SHM: stream actor failed: RuntimeError")
    assert h.events.wait_for(lambda evs: "child_failed" in [e.kind for e in evs])
    prov.fail = None
    assert h.attach(7).code == ResponseCode.OK  # served by the restarted StreamActor


def test_repeated_child_failures_escalate_to_shutdown_error(h: Harness, prov: Provisioner) -> None:
    prov.fail = RuntimeError
    for client_id in range(1, 6):
        assert h.attach(client_id).code == ResponseCode.INTERNAL_ERROR
    (shutdown,) = h.wait_count(ShmDriverShutdown, 1)
    assert shutdown.reason == ShutdownReason.ERROR
    assert "5 child failures" in shutdown.error_message
    assert h.system is not None
    assert h.system.wait_stopped(5)


def test_failing_lease_actor_is_revoked_by_the_driver(h: Harness) -> None:
    r = h.attach(7)
    h.wait_count(ShmPoolAnnounce, 1)
    assert h.system is not None
    h.system.status()  # barrier: the grant's last effect, starting the LeaseActor, is done
    assert pykka.ActorRegistry.get_by_class(LeaseActor) == []  # kept by the driver alone
    driver = h.system.driver._actor_weakref()
    assert driver is not None
    lease_ref = driver._leases[r.lease_id]
    assert lease_ref.is_alive()
    lease_ref.tell("not a lease command")  # a bug in the child: it raises
    (revoke,) = h.wait_count(ShmLeaseRevoked, 1)
    assert (revoke.reason, revoke.error_message, revoke.lease_id) == (
        LeaseRevokeReason.REVOKED,
        "lease revoked",
        r.lease_id,
    )
    announces = h.wait_count(ShmPoolAnnounce, 2)  # the producer's epoch is bumped
    assert r.epoch is not None
    assert announces[-1].epoch > r.epoch
    assert h.system is not None
    assert h.system.status().leases == ()


def test_failing_stream_actor_revokes_producer_and_keeps_consumers(h: Harness) -> None:
    p = h.attach(7)
    c = h.attach(8, Role.CONSUMER)
    h.wait_count(ShmPoolAnnounce, 2)
    (stream_ref,) = pykka.ActorRegistry.get_by_class(StreamActor)
    stream_ref.tell("not a stream command")
    (revoke,) = h.wait_count(ShmLeaseRevoked, 1)
    assert (revoke.lease_id, revoke.reason) == (p.lease_id, LeaseRevokeReason.REVOKED)
    assert p.epoch is not None
    old = p.epoch
    assert h.outbox.wait_for(
        lambda ms: any(isinstance(m, ShmPoolAnnounce) and m.epoch > old for m in ms)
    )
    assert h.system is not None
    status = h.system.status()
    assert [lease.lease_id for lease in status.leases] == [c.lease_id]
    (new_ref,) = pykka.ActorRegistry.get_by_class(StreamActor)
    assert new_ref.actor_urn != stream_ref.actor_urn
