"""The admin plane against a fake DriverActor: status, ping, bad requests, events, stalls."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from typing import TYPE_CHECKING

import pytest
import zmq

from actors.admin import AdminPlane, AdminStartError, start_admin
from messages.events import DriverEvent
from tests.admin.helpers import (
    FakeDriver,
    json_counters,
    json_object,
    json_objects,
    request,
    zmq_context,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pykka

    from tensorpool_config import DriverConfig


def _status(plane: AdminPlane) -> dict[str, object]:
    reply = request(plane.endpoints[0], b'{"cmd": "status"}')
    assert reply["ok"] is True, reply
    status = reply["status"]
    assert isinstance(status, dict)
    return status


class TestStatus:
    def test_status_reports_driver_streams_leases_and_merged_counters(
        self, plane: AdminPlane
    ) -> None:
        status = _status(plane)
        assert status["driver"] == {
            "instance_id": "driver-01",
            "state": "Driver.Running",
            "pid": 4242,
            "uptime_ms": 1500,
            "aeron_dir": "/dev/shm/aeron-test",
            "shm_base_dir": "/dev/shm",
        }
        [stream] = json_objects(status["streams"])
        assert stream["stream_id"] == 10000
        assert stream["epoch"] == 77
        assert stream["producer_lease_id"] == 11
        assert stream["consumer_count"] == 1
        assert stream["pool_uris"] == ["shm:file?path=/dev/shm/x/1.pool"]
        assert [lease["lease_id"] for lease in json_objects(status["leases"])] == [11, 12]
        producer, consumer = json_objects(status["leases"])
        assert producer["role"] == "PRODUCER"
        assert producer["expires_in_ms"] == 3000
        assert consumer["role"] == "CONSUMER"
        assert consumer["expires_in_ms"] == 2500
        counters = json_counters(status["counters"])
        assert counters["attach.ok"] == 2
        assert counters["gateway.decode_errors"] == 3
        assert counters["admin.requests"] == 1

    def test_ping_answers_with_the_instance_id(self, plane: AdminPlane) -> None:
        reply = request(plane.endpoints[0], b'{"cmd": "ping"}')
        assert reply["ok"] is True
        assert reply["instance_id"] == "driver-01"

    def test_status_before_the_driver_is_bound_is_an_error_reply(
        self, config: DriverConfig
    ) -> None:
        admin = start_admin(config, dict)
        try:
            reply = request(admin.endpoints[0], b'{"cmd": "status"}')
            assert reply == {"ok": False, "error": "driver not started yet"}
        finally:
            admin.stop()

    def test_a_dead_driver_gets_an_error_reply(
        self, plane: AdminPlane, fake_driver: pykka.ActorRef[FakeDriver]
    ) -> None:
        fake_driver.stop()
        reply = request(plane.endpoints[0], b'{"cmd": "status"}')
        assert reply == {"ok": False, "error": "driver actor is not running"}

    def test_a_slow_driver_times_out_and_the_plane_keeps_serving(
        self, plane: AdminPlane, fake_driver: pykka.ActorRef[FakeDriver]
    ) -> None:
        hold = fake_driver.ask("hold")
        try:
            reply = request(plane.endpoints[0], b'{"cmd": "status"}')
            assert reply["ok"] is False
            assert "did not answer within 1 s" in str(reply["error"])
            assert request(plane.endpoints[0], b'{"cmd": "ping"}')["ok"] is True
        finally:
            hold.set()
        assert json_counters(_status(plane)["counters"])["admin.status_timeouts"] == 1

    def test_info_failure_is_reported_not_raised(
        self, config: DriverConfig, fake_driver: pykka.ActorRef[FakeDriver]
    ) -> None:
        def broken() -> dict[str, object]:
            raise RuntimeError("boom")

        admin = start_admin(config, broken)
        admin.bind_driver(fake_driver)
        try:
            status = _status(admin)
            assert json_object(status["driver"])["info_error"] == "RuntimeError('boom')"
        finally:
            admin.stop()


MALFORMED = [
    (b"not json", "request is not JSON"),
    (b"[1, 2]", "request is not a JSON object"),
    (b'{"command": "status"}', 'request has no string "cmd"'),
    (b'{"cmd": "reboot"}', "unknown cmd 'reboot'"),
    (b'{"cmd": "status", "pad": "' + b"x" * 70_000 + b'"}', "exceeds 65536 bytes"),
    (b"\xff\xfe", "request is not JSON"),
    (b'{"cmd": "probe"}', 'probe needs a "token" string of 1 to 64 characters'),
    (b'{"cmd": "probe", "token": 7}', 'probe needs a "token"'),
    (b'{"cmd": "probe", "token": ""}', 'probe needs a "token"'),
    (b'{"cmd": "probe", "token": "' + b"x" * 65 + b'"}', 'probe needs a "token"'),
]


class TestMalformedRequests:
    @pytest.mark.parametrize(("payload", "error"), MALFORMED)
    def test_each_malformed_request_gets_an_error_reply(
        self, plane: AdminPlane, payload: bytes, error: str
    ) -> None:
        reply = request(plane.endpoints[0], payload)
        assert reply["ok"] is False
        assert error in str(reply["error"])

    def test_malformed_requests_are_counted_and_serving_goes_on(self, plane: AdminPlane) -> None:
        for payload, _ in MALFORMED:
            assert request(plane.endpoints[0], payload)["ok"] is False
        counters = json_counters(_status(plane)["counters"])
        assert counters["admin.malformed_requests"] == len(MALFORMED)

    def test_a_multipart_request_from_a_dealer_gets_an_error_reply(self, plane: AdminPlane) -> None:
        sock = zmq_context().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVTIMEO, 3000)
        try:
            sock.connect(plane.endpoints[0])
            sock.send_multipart([b"", b'{"cmd": "ping"}', b"extra"])
            delimiter, body = sock.recv_multipart()
        finally:
            sock.close()
        assert delimiter == b""
        assert json.loads(body) == {"ok": False, "error": "expected one request frame, got 2"}

    def test_a_vanished_client_does_not_wedge_the_plane(
        self, plane: AdminPlane, fake_driver: pykka.ActorRef[FakeDriver]
    ) -> None:
        hold = fake_driver.ask("hold")
        sock = zmq_context().socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(plane.endpoints[0])
        sock.send(b'{"cmd": "status"}')
        sock.close()  # gone before its answer exists
        hold.set()
        for _ in range(3):
            assert json_object(_status(plane)["driver"])["instance_id"] == "driver-01"


def _next_event(sub: zmq.Socket[bytes]) -> dict[str, object]:
    """The next published event, decoded; the test fails if none comes within 3 s."""
    assert sub.poll(3000), "no event published within 3 s"
    return json_object(json.loads(sub.recv()))


def _subscribe(plane: AdminPlane) -> zmq.Socket[bytes]:
    """A SUB socket that has provably joined: it received a probe event."""
    sub = zmq_context().socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(plane.endpoints[1])
    for attempt in range(200):
        plane.events.emit(DriverEvent("probe", attempt))
        if sub.poll(20):
            while sub.poll(50):
                sub.recv()
            return sub
    sub.close()
    pytest.fail("the subscription never joined")


class TestProbe:
    def test_a_probe_is_answered_and_its_event_follows_earlier_events(
        self, plane: AdminPlane
    ) -> None:
        sub = _subscribe(plane)
        try:
            plane.events.emit(DriverEvent("attach", 1, {"lease_id": 7}))
            reply = request(plane.endpoints[0], b'{"cmd": "probe", "token": "t-1"}')
            assert reply == {"ok": True, "probe": "t-1"}
            first = _next_event(sub)
            second = _next_event(sub)
        finally:
            sub.close()
        assert first["kind"] == "attach"
        assert second["kind"] == "admin.probe"
        assert second["fields"] == {"token": "t-1"}

    def test_probes_are_counted_and_not_malformed(self, plane: AdminPlane) -> None:
        for token in ("a", "x" * 64):
            payload = json.dumps({"cmd": "probe", "token": token}).encode()
            assert request(plane.endpoints[0], payload)["ok"] is True
        counters = json_counters(_status(plane)["counters"])
        assert counters["admin.probes"] == 2
        assert "admin.malformed_requests" not in counters


class TestEvents:
    def test_events_are_published_as_json(self, plane: AdminPlane) -> None:
        sub = _subscribe(plane)
        try:
            plane.events.emit(DriverEvent("attach", 123, {"lease_id": 7, "role": "PRODUCER"}))
            plane.events.emit(DriverEvent("revoke", 456, {"lease_id": 7, "reason": "DETACHED"}))
            first = _next_event(sub)
            second = _next_event(sub)
        finally:
            sub.close()
        assert first["kind"] == "attach"
        assert first["timestamp_ns"] == 123
        assert first["fields"] == {"lease_id": 7, "role": "PRODUCER"}
        assert isinstance(first["wall_ns"], int)
        assert second["kind"] == "revoke"
        assert json_object(second["fields"])["reason"] == "DETACHED"

    def test_events_nobody_follows_are_counted_not_encoded(self, plane: AdminPlane) -> None:
        for i in range(5):
            plane.events.emit(DriverEvent("revoke", i, {"lease_id": i}))
        counters: dict[str, int] = {}
        for _ in range(200):  # bounded: until the admin thread has drained the five
            counters = json_counters(_status(plane)["counters"])
            if counters.get("admin.events_unobserved", 0) >= 5:
                break
        assert counters.get("admin.events_unobserved") == 5
        assert "admin.events_published" not in counters
        assert not plane.events.drain()  # counted at emit: the admin thread was never woken
        sub = _subscribe(plane)  # once someone follows, events are published again
        try:
            plane.events.emit(DriverEvent("attach", 9, {"lease_id": 9}))
            assert _next_event(sub)["kind"] == "attach"
        finally:
            sub.close()

    def test_a_subscriber_that_never_reads_does_not_stall_the_plane(
        self, plane: AdminPlane
    ) -> None:
        def emit_many() -> None:
            for i in range(30_000):
                plane.events.emit(DriverEvent("x", i))

        sub = _subscribe(plane)
        try:
            emitter = threading.Thread(target=emit_many)
            emitter.start()
            emitter.join(10)
            assert not emitter.is_alive()
            assert request(plane.endpoints[0], b'{"cmd": "ping"}')["ok"] is True
        finally:
            sub.close()
        counters = json_counters(_status(plane)["counters"])
        assert (
            counters["admin.events_published"] + counters["admin.events_dropped"] >= 30_000 - 10_000
        )

    def test_emit_never_blocks_when_the_queue_is_full(self, config: DriverConfig) -> None:
        admin = AdminPlane(config, dict, event_capacity=3)  # never started: nobody drains
        admin.events.observed = True  # as if someone subscribed
        try:
            for i in range(10):
                admin.events.emit(DriverEvent("x", i))
            assert admin.events.dropped == 7
        finally:
            admin.stop()

    def test_events_emitted_just_before_stop_still_go_out(self, plane: AdminPlane) -> None:
        sub = _subscribe(plane)
        try:
            plane.events.emit(DriverEvent("shutdown", 9, {"reason": "NORMAL"}))
            plane.stop()
            assert _next_event(sub)["kind"] == "shutdown"
        finally:
            sub.close()


class TestLifecycle:
    def test_stop_is_idempotent_and_removes_the_socket_files(self, config: DriverConfig) -> None:
        admin = start_admin(config, dict)
        assert config.admin.run_dir is not None
        assert (config.admin.run_dir / "admin.sock").exists()
        admin.stop()
        admin.stop()
        assert not (config.admin.run_dir / "admin.sock").exists()
        assert not (config.admin.run_dir / "events.sock").exists()

    def test_a_disabled_plane_binds_nothing_and_swallows_events(
        self, config: DriverConfig, fake_driver: pykka.ActorRef[FakeDriver]
    ) -> None:
        disabled = dataclasses.replace(
            config, admin=dataclasses.replace(config.admin, enabled=False)
        )
        admin = start_admin(disabled, dict)
        try:
            assert admin.endpoints == ()
            admin.events.emit(DriverEvent("attach", 1))
            admin.bind_driver(fake_driver)
            assert admin.events.unobserved == 1  # nobody can subscribe: counted, not queued
            assert admin.events.dropped == 0
            assert config.admin.run_dir is not None
            assert not config.admin.run_dir.exists()
        finally:
            admin.stop()

    def test_fake_driver_is_asked_once_per_status(
        self, plane: AdminPlane, fake_driver: pykka.ActorRef[FakeDriver]
    ) -> None:
        _status(plane)
        _status(plane)
        assert fake_driver.proxy().queries.get() == 2


class TestStartFailures:
    def test_an_unexpected_error_while_binding_fails_the_start(
        self, config: DriverConfig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(_path: Path) -> None:
            raise RuntimeError("boom")

        monkeypatch.setattr("actors.admin.plane.secure_socket_file", broken)
        with pytest.raises(AdminStartError, match="boom"):
            start_admin(config, dict)  # not a plane whose thread already died
        assert config.admin.run_dir is not None
        assert list(config.admin.run_dir.iterdir()) == []

    def test_a_failed_second_bind_leaves_no_socket_file_behind(
        self, config: DriverConfig, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def refuse_events(path: Path) -> None:
            if path.name == "events.sock":
                raise PermissionError("no chmod for you")
            path.chmod(0o600)

        monkeypatch.setattr("actors.admin.plane.secure_socket_file", refuse_events)
        with pytest.raises(AdminStartError, match="cannot bind"):
            start_admin(config, dict)
        assert config.admin.run_dir is not None
        assert list(config.admin.run_dir.iterdir()) == []


def test_events_emitted_after_stop_never_touch_a_reused_fd(config: DriverConfig) -> None:
    admin = start_admin(config, dict)
    wake_w = admin._wake_w
    admin.stop()
    r, w = os.pipe()
    try:
        if w != wake_w:  # the closed wake fd's number now belongs to someone else's pipe
            os.dup2(w, wake_w)
        admin.events.emit(DriverEvent("late", 1))
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 16)
    finally:
        for fd in {r, w, wake_w}:
            os.close(fd)
