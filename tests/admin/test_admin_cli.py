"""``tensorpool status`` / ``tensorpool events`` against a plane with a fake driver."""

from __future__ import annotations

import argparse
import io
import json
import socket
import sys
import threading
from typing import TYPE_CHECKING

import pytest
import zmq

from actors.admin import start_admin
from messages.admin import PROBE_EVENT_KIND
from messages.events import DriverEvent
from tensorpool_client.admin_cli import _follow, events_main, status_main
from tensorpool_client.admin_format import format_event
from tests.admin.helpers import zmq_context

if TYPE_CHECKING:
    from pathlib import Path

    from actors.admin import AdminPlane
    from tensorpool_config import DriverConfig


class _StderrWatch(io.StringIO):
    """Stands in for sys.stderr; ``following`` is set once the CLI says it is following."""

    def __init__(self) -> None:
        super().__init__()
        self.following = threading.Event()

    def write(self, text: str, /) -> int:
        written = super().write(text)
        if ": following " in self.getvalue():
            self.following.set()
        return written


def _watch_stderr(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    watch = _StderrWatch()
    monkeypatch.setattr(sys, "stderr", watch)
    return watch.following


class TestStatusCommand:
    def test_no_driver_is_one_line_on_stderr_and_exit_1(
        self, config_file: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert status_main(["--config", str(config_file), "--timeout", "0.5"]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err == (
            f"tensorpool status: no driver answering at ipc://{run_dir}/admin.sock"
            " (is the driver running?)\n"
        )

    def test_a_socket_nobody_answers_on_is_exit_1_within_the_timeout(
        self, run_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        run_dir.mkdir(mode=0o700)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(run_dir / "admin.sock"))
        listener.listen()  # accepts connections, never speaks zmq
        try:
            code = status_main(["--endpoint", f"ipc://{run_dir}/admin.sock", "--timeout", "0.3"])
        finally:
            listener.close()
        assert code == 1
        assert capsys.readouterr().err.count("\n") == 1

    def test_json_output_parses(self, plane: AdminPlane, config_file: Path) -> None:
        out = io.StringIO()
        assert status_main(["--config", str(config_file), "--json"], out=out) == 0
        status = json.loads(out.getvalue())
        assert status["streams"][0]["epoch"] == 77
        assert {lease["lease_id"] for lease in status["leases"]} == {11, 12}

    def test_human_output_has_driver_line_tables_and_counters(
        self, plane: AdminPlane, config_file: Path
    ) -> None:
        out = io.StringIO()
        assert status_main(["--config", str(config_file)], out=out) == 0
        lines = out.getvalue().splitlines()
        assert lines[0].startswith("driver  instance_id=driver-01  state=Driver.Running  pid=4242")
        assert "aeron_dir=/dev/shm/aeron-test" in lines[0]
        text = out.getvalue()
        assert "streams (1)" in text
        assert "leases (2)" in text
        stream_header = next(line for line in lines if line.strip().startswith("STREAM  NAME"))
        stream_row = lines[lines.index(stream_header) + 1].split()
        assert stream_row[:6] == ["10000", "default", "Stream.ProducerAttached", "77", "11", "1"]
        lease_rows = [line.split() for line in lines if line.startswith("  1") and "Lease." in line]
        assert ["11", "501", "PRODUCER", "10000", "1", "77", "Lease.Active", "3000"] in lease_rows
        assert any(line.split() == ["gateway.decode_errors", "3"] for line in lines)

    def test_a_driver_error_reply_is_exit_1(
        self, config: DriverConfig, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        admin = start_admin(config, dict)  # no driver bound
        try:
            assert status_main(["--config", str(config_file)]) == 1
        finally:
            admin.stop()
        assert "driver not started yet" in capsys.readouterr().err

    def test_a_bad_config_file_is_exit_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        bad = tmp_path / "bad.toml"
        bad.write_text("[driver\n")
        assert status_main(["--config", str(bad)]) == 2
        assert capsys.readouterr().err.startswith("tensorpool status: ")


class TestEventsCommand:
    def test_no_driver_is_exit_1(
        self, config_file: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert events_main(["--config", str(config_file), "--timeout", "0.3"]) == 1
        assert "no driver answering" in capsys.readouterr().err

    @pytest.mark.parametrize("attempt", range(5))
    def test_an_event_emitted_right_after_following_is_shown(
        self,
        plane: AdminPlane,
        config_file: Path,
        monkeypatch: pytest.MonkeyPatch,
        attempt: int,
    ) -> None:
        following = _watch_stderr(monkeypatch)
        out = io.StringIO()
        result: list[int] = []
        follower = threading.Thread(
            target=lambda: result.append(
                events_main(
                    ["--config", str(config_file), "--json", "--count", "2", "--timeout", "10"],
                    out=out,
                )
            )
        )
        follower.start()
        try:
            assert following.wait(15), "events never said it was following"
            plane.events.emit(DriverEvent("attach", 1, {"lease_id": 9, "attempt": attempt}))
            plane.events.emit(DriverEvent("detach", 2, {"lease_id": 9}))
        finally:
            follower.join(15)
        assert result == [0]
        events = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [event["kind"] for event in events] == ["attach", "detach"]  # no admin.probe
        assert events[0]["fields"] == {"lease_id": 9, "attempt": attempt}

    def test_human_output_right_after_following(
        self, plane: AdminPlane, config_file: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        following = _watch_stderr(monkeypatch)
        out = io.StringIO()
        result: list[int] = []
        args = ["--config", str(config_file), "--count", "1", "--timeout", "10"]
        follower = threading.Thread(target=lambda: result.append(events_main(args, out=out)))
        follower.start()
        try:
            assert following.wait(15), "events never said it was following"
            plane.events.emit(DriverEvent("revoke", 1, {"lease_id": 4, "reason": "EXPIRED"}))
        finally:
            follower.join(15)
        assert result == [0]
        assert out.getvalue().split(" ", 1)[1] == "revoke lease_id=4 reason=EXPIRED\n"

    def test_a_wrong_events_endpoint_is_exit_1_not_a_silent_follow(
        self, plane: AdminPlane, run_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        args = [
            "--endpoint",
            plane.endpoints[0],
            "--events-endpoint",
            f"ipc://{run_dir}/nobody.sock",
            "--timeout",
            "0.3",
        ]
        assert events_main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "nothing arrived on" in err
        assert "following" not in err

    def test_endpoint_without_events_endpoint_is_exit_2(
        self, plane: AdminPlane, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert events_main(["--endpoint", plane.endpoints[0]]) == 2
        assert capsys.readouterr().err == (
            "tensorpool events: --endpoint needs --events-endpoint\n"
        )

    def test_count_not_reached_within_timeout_is_exit_1(
        self, plane: AdminPlane, config_file: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        args = ["--config", str(config_file), "--count", "1", "--timeout", "0.3"]
        assert events_main(args) == 1
        assert "0 of 1 events" in capsys.readouterr().err


def test_human_event_line() -> None:
    line = format_event(
        {
            "kind": "revoke",
            "timestamp_ns": 5,
            "wall_ns": 1_700_000_000_123_456_789,
            "fields": {"lease_id": 7, "reason": "EXPIRED", "error": None},
        }
    )
    stamp, rest = line.split(" ", 1)
    assert len(stamp) == len("HH:MM:SS.mmm")
    assert stamp.endswith(".123")
    assert rest == "revoke lease_id=7 reason=EXPIRED error=-"


def test_a_wall_clock_out_of_range_prints_a_placeholder_stamp() -> None:
    line = format_event({"kind": "attach", "wall_ns": 10**30, "fields": {"lease_id": 1}})
    assert line == "--:--:--.--- attach lease_id=1"


def test_an_event_that_is_json_but_not_an_object_is_shown_as_unreadable() -> None:
    context = zmq_context()
    sender, receiver = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    try:
        receiver.bind("inproc://admin-cli-follow")
        sender.connect("inproc://admin-cli-follow")
        sender.send(b"[1, 2]")
        sender.send(b'{"kind": "attach", "fields": {}}')
        out = io.StringIO()
        args = argparse.Namespace(count=2, timeout=5.0, json=False)
        assert _follow(receiver, args, out, "tensorpool events") == 0
    finally:
        sender.close(linger=0)
        receiver.close(linger=0)
    assert out.getvalue().splitlines() == ["(unreadable event: b'[1, 2]')", "--:--:--.--- attach"]


def test_events_received_while_joining_are_shown_first_and_probes_never() -> None:
    context = zmq_context()
    sender, receiver = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    probe = {"kind": PROBE_EVENT_KIND, "fields": {"token": "someone-elses"}}
    try:
        receiver.bind("inproc://admin-cli-early")
        sender.connect("inproc://admin-cli-early")
        sender.send(json.dumps(probe).encode())
        sender.send(b'{"kind": "detach", "fields": {"lease_id": 3}}')
        out = io.StringIO()
        args = argparse.Namespace(count=2, timeout=5.0, json=False)
        early = [b'{"kind": "attach", "fields": {"lease_id": 3}}']
        assert _follow(receiver, args, out, "tensorpool events", early) == 0
    finally:
        sender.close(linger=0)
        receiver.close(linger=0)
    assert out.getvalue().splitlines() == [
        "--:--:--.--- attach lease_id=3",
        "--:--:--.--- detach lease_id=3",
    ]
